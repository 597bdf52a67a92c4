// Compiled with tsc --noEmit by package.test.mjs: the hand-written .d.ts
// files must describe the API as it is used (and refuse misuse).
import {
  AsyncQueue, AsyncQueueError, ConflictError, Page, QueuePage, RateLimitError, ValidationError, WaitTimeoutError,
  WebhookVerificationError, verifyWebhook, signWebhook, parseRetryAfter,
  SchedulePage,
  type Task, type Queue, type WebhookEvent, type TaskStatus, type WhoAmI, type Stats,
  type Schedule, type ScheduleInput, type ScheduleTaskInput,
} from 'asyncqueue-js';
import { webhookHandler } from 'asyncqueue-js/next';

declare const data: { prompt: string };

export async function seed(): Promise<Response> {
  const aq = new AsyncQueue({ apiKey: process.env.ASYNCQUEUE_API_KEY });
  const task = await aq.tasks.create({
    callbackUrl: 'https://ai-service.example.com/generate',
    payload: data,
    webhookUrl: `${process.env.VERCEL_URL}/api/on-complete`,
    retries: 3,
  });
  return Response.json({ taskId: task.id, status: 'processing' });
}

export async function everything(aq: AsyncQueue): Promise<void> {
  const t: Task = await aq.tasks.create({ callbackUrl: 'https://x.example', runAt: new Date(), method: 'put' },
    { idempotencyKey: 'k', signal: AbortSignal.timeout(1000) });
  const s: TaskStatus = t.status;
  const again: Task = await aq.tasks.get(t.id);
  const done: Task = await aq.tasks.wait(t.id, { timeoutMs: 1000, pollSeconds: 5 });
  const page: Page = await aq.tasks.list({ status: ['failed', 'cancelled'], limit: 10, createdAfter: new Date() });
  const cursor: string | null = page.nextCursor;
  const next: Page | null = await page.nextPage();
  for await (const x of aq.tasks.list({ queue: 'emails' })) { const id: string = x.id; void id; }
  for await (const x of page) { void x.status; }
  for await (const x of aq.tasks.iterate()) { void x.queue; }
  const a = await aq.tasks.attempts(t.id);
  const n: number | null = a.attempts[0].statusCode;
  await aq.tasks.cancel(t.id);
  const { cancelled }: { cancelled: number } = await aq.tasks.cancelMany({ queue: 'q', status: 'queued' });
  await aq.tasks.retry(t.id, { timeout: 900, callbackUrl: 'https://v2.example' });
  await aq.tasks.retry(t.id);
  const { retried }: { retried: number } = await aq.tasks.retryMany();
  const qs: Queue[] = await aq.queues.list();
  const qp: QueuePage = await aq.queues.page({ limit: 100 });
  const qnext: QueuePage | null = await qp.nextPage();
  const qcursor: string | null = qp.nextCursor;
  const more: QueuePage = await aq.queues.page({ limit: 10, cursor: qcursor }, { signal: AbortSignal.timeout(1000) });
  for await (const x of aq.queues.page()) { const name: string = x.name; void name; }
  for await (const x of qp) { void x.queued; }
  for await (const x of aq.queues.iterate({ cursor: qcursor })) { void x.paused; }
  for await (const p of qp.pages()) { const page: Queue[] = p.queues; void page; }
  void [qnext, more];
  const q: Queue = await aq.queues.update('emails', { maxConcurrency: 5, ratePerSecond: 0.5, defaultRetries: null });
  await aq.queues.pause('emails');
  await aq.queues.resume('emails');
  const g: Queue = await aq.queues.get('emails');
  const del: void = await aq.queues.delete('emails');
  void [s, again, done, cursor, next, n, cancelled, retried, qs, q, g, del];

  const many: Task[] = await aq.tasks.createMany([
    { callbackUrl: 'https://x.example/1', idempotencyKey: 'fan-1' },
    { callbackUrl: 'https://x.example/2', payload: { n: 2 } },
  ], { signal: AbortSignal.timeout(1000) });
  const replayed: true | undefined = many[0].replayed;
  await aq.tasks.createMany([{ callbackUrl: 'https://x.example' }], { idempotencyKey: null });
  void replayed;
  // @ts-expect-error one key cannot key many tasks
  await aq.tasks.createMany([{ callbackUrl: 'https://x.example' }], { idempotencyKey: 'k' });
  // @ts-expect-error callbackUrl is required in every item
  await aq.tasks.createMany([{ callbackUrl: 'https://x.example' }, { payload: 1 }]);
  // @ts-expect-error callbackUrl is required
  await aq.tasks.create({ payload: 1 });
  // @ts-expect-error not a status
  await aq.tasks.list({ status: 'done' });
  // @ts-expect-error an unknown queue setting
  await aq.queues.update('q', { maxConcurency: 1 });
  // @ts-expect-error list() is not a Promise of an array
  const arr: Task[] = await aq.tasks.list();
  void arr;
  // @ts-expect-error a page of queues holds no tasks
  const wrong: Page = await aq.queues.page();
  void wrong;
  // @ts-expect-error queues.list() takes request options, not paging
  await aq.queues.list({ limit: 10 });
}

export async function schedules(aq: AsyncQueue): Promise<void> {
  const sc: Schedule = await aq.schedules.put('nightly', {
    cron: '0 3 * * *',
    timezone: 'Europe/Berlin',
    task: { callbackUrl: 'https://x.example/report', payload: { full: true }, queue: 'reports', delay: 5 },
  });
  await aq.schedules.put('paused-one', { cron: '@hourly', task: { callbackUrl: 'https://x.example' }, paused: true },
    { signal: AbortSignal.timeout(1000) });
  const next: string | null = sc.nextRunAt;
  const lastTask: string | null = sc.lastTaskId;
  const lastError: string | null = sc.lastError;
  const runs: number = sc.runs;
  const zone: string = sc.timezone;
  const template: ScheduleTaskInput = sc.task;
  const url: string = template.callbackUrl;
  const got: Schedule = await aq.schedules.get('nightly');
  const all: Schedule[] = await aq.schedules.list();
  const sp: SchedulePage = await aq.schedules.page({ limit: 10 });
  const spNext: SchedulePage | null = await sp.nextPage();
  const spCursor: string | null = sp.nextCursor;
  for await (const x of aq.schedules.page({ cursor: spCursor })) { const n: string = x.name; void n; }
  for await (const x of aq.schedules.iterate({ limit: 100 })) { const c: string = x.cron; void c; }
  for await (const p of sp.pages()) { const l: Schedule[] = p.schedules; void l; }
  const paused: Schedule = await aq.schedules.pause('nightly');
  const resumed: Schedule = await aq.schedules.resume('nightly');
  const task: Task = await aq.schedules.run('nightly');
  const del: void = await aq.schedules.delete('nightly');
  const input: ScheduleInput = { cron: '*/5 * * * *', task: { callbackUrl: 'https://x.example' } };
  void [next, lastTask, lastError, runs, zone, url, got, all, spNext, paused, resumed, task, del, input];
  // @ts-expect-error a template has no runAt: each run is made now
  await aq.schedules.put('x', { cron: '@daily', task: { callbackUrl: 'https://x.example', runAt: new Date() } });
  // @ts-expect-error a template has no idempotencyKey
  await aq.schedules.put('x', { cron: '@daily', task: { callbackUrl: 'https://x.example', idempotencyKey: 'k' } });
  // @ts-expect-error cron is required
  await aq.schedules.put('x', { task: { callbackUrl: 'https://x.example' } });
  // @ts-expect-error the template needs callbackUrl
  await aq.schedules.put('x', { cron: '@daily', task: { payload: 1 } });
  // @ts-expect-error a page of schedules holds no queues
  const wrongPage: QueuePage = await aq.schedules.page();
  void wrongPage;
}

export async function observe(aq: AsyncQueue): Promise<void> {
  const me: WhoAmI = await aq.whoami({ timeoutMs: 1000 });
  const scope: 'admin' | 'read' = me.scope;
  const tenant: string | null = me.tenant;
  const stats: Stats = await aq.stats({ minutes: 5 });
  const p95: number = stats.minutes[0].p95Ms;
  void scope; void tenant; void p95; void (await aq.stats()).backlog;
}

export async function errors(aq: AsyncQueue): Promise<void> {
  try {
    await aq.tasks.wait('x');
  } catch (e) {
    if (e instanceof WaitTimeoutError) { const st: TaskStatus | undefined = e.task?.status; void st; }
    if (e instanceof ValidationError) { const f: string | null = e.field; void f; }
    if (e instanceof RateLimitError) { const r: number | null = e.retryAfter; void r; }
    if (e instanceof ConflictError || e instanceof AsyncQueueError) { const c: string = e.code; const st: number = e.status; void c; void st; }
  }
  const secs: number | null = parseRetryAfter('5');
  void secs;
}

export async function webhooks(request: Request, secret: string): Promise<void> {
  const event: WebhookEvent = await verifyWebhook(await request.text(), request.headers, secret);
  const id: string = event.taskId;
  await verifyWebhook(new Uint8Array(), { 'webhook-id': 'x' }, [secret, secret], { toleranceSeconds: 60, now: Date.now() });
  const sig: string = await signWebhook(secret, 'msg', 1, '{}');
  try { await verifyWebhook('', request.headers, secret); } catch (e) {
    if (e instanceof WebhookVerificationError) { const c: 'missing_headers' | string = e.code; void c; }
  }
  void id; void sig;
}

export const POST: (request: Request) => Promise<Response> = webhookHandler({
  secret: process.env.ASYNCQUEUE_WEBHOOK_SECRET,
  onEvent: async (event, { webhookId, timestamp }) => {
    const s: 'completed' | 'failed' | 'cancelled' = event.status;
    void s; void webhookId; void timestamp;
  },
});
