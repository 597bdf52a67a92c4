// schedules.* against the real daemon: put (create and replace), get, list
// (every page), page and iterate, pause, resume, run (the task it makes now),
// delete; and the errors: 404, 400 naming the field (cron, task.<field>).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  AsyncQueue, AsyncQueueError, NetworkError, NotFoundError, SchedulePage, ValidationError,
} from 'asyncqueue-js';
import { startDaemon, startFake, startProxy, stopDaemon, recordingFetch } from './helpers.mjs';

// Once a year, at a time no test run reaches: only run() makes tasks here.
const YEARLY = '0 0 1 1 *';

let d, target, aq;
before(async () => {
  target = await startFake((req) => ({ status: 200, body: { ok: true, path: req.url } }));
  d = await startDaemon();
  aq = new AsyncQueue({ baseUrl: d.url });
});
after(async () => { await target?.close(); await stopDaemon(d); });

test('put creates a schedule (201), get shows it, put again replaces it (200) and keeps createdAt and runs', async () => {
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const task = { callbackUrl: target.url('/nightly'), payload: { report: 'daily', n: [1, 2.5] }, queue: 'reports', retries: 2 };
  const s = await client.schedules.put('nightly', { cron: '0 3 * * *', task });
  assert.equal(log[0].method, 'PUT');
  assert.match(log[0].url, /\/v1\/schedules\/nightly$/);
  assert.equal(log[0].status, 201, 'a new schedule');
  assert.equal(s.name, 'nightly');
  assert.equal(s.cron, '0 3 * * *');
  assert.deepEqual(s.task, task, 'the template as written');
  assert.equal(s.paused, false);
  assert.equal(typeof s.nextRunAt, 'string');
  assert.ok(Date.parse(s.nextRunAt) > Date.now());
  assert.equal(new Date(s.nextRunAt).getUTCHours(), 3);
  assert.deepEqual([s.lastRunAt, s.lastTaskId, s.lastError, s.runs], [null, null, null, 0]);
  assert.equal(typeof s.createdAt, 'string');
  assert.equal(typeof s.updatedAt, 'string');
  assert.deepEqual(await aq.schedules.get('nightly'), s);

  await aq.schedules.run('nightly');
  const replaced = await client.schedules.put('nightly', { cron: '@hourly', task: { callbackUrl: target.url('/hourly') }, paused: true });
  assert.equal(log.at(-1).status, 200, 'a replace');
  assert.equal(replaced.cron, '@hourly');
  assert.deepEqual(replaced.task, { callbackUrl: target.url('/hourly') });
  assert.equal(replaced.paused, true);
  assert.equal(replaced.createdAt, s.createdAt);
  assert.equal(replaced.runs, 1, 'a replace keeps runs');
  assert.equal(typeof replaced.lastTaskId, 'string');
});

test('run makes a task from the template now and returns it; the schedule counts it, nextRunAt unchanged', async () => {
  const s = await aq.schedules.put('run-now', {
    cron: YEARLY, task: { callbackUrl: target.url('/run-now'), payload: { from: 'schedule' }, metadata: { k: 1 } },
  });
  const task = await aq.schedules.run('run-now');
  assert.match(task.id, /^[0-9a-f-]{36}$/);
  assert.equal(task.callbackUrl, target.url('/run-now'));
  assert.deepEqual(task.payload, { from: 'schedule' });
  assert.deepEqual(task.metadata, { k: 1 });
  const done = await aq.tasks.wait(task.id, { pollSeconds: 10, timeoutMs: 20000 });
  assert.equal(done.status, 'completed');
  const call = target.requests.find((r) => r.url === '/run-now');
  assert.deepEqual(JSON.parse(call.body), { from: 'schedule' });

  const after = await aq.schedules.get('run-now');
  assert.equal(after.runs, 1);
  assert.equal(after.lastTaskId, task.id);
  assert.equal(typeof after.lastRunAt, 'string');
  assert.equal(after.lastError, null);
  assert.equal(after.nextRunAt, s.nextRunAt, 'run does not move the next time');
});

test('pause and resume: the schedule as it is then; resume fires from now on', async () => {
  await aq.schedules.put('held', { cron: '*/5 * * * *', task: { callbackUrl: target.url('/held') } });
  const paused = await aq.schedules.pause('held');
  assert.equal(paused.name, 'held');
  assert.equal(paused.paused, true);
  assert.equal(paused.cron, '*/5 * * * *', 'pause keeps the rest');
  assert.equal((await aq.schedules.get('held')).paused, true);
  const resumed = await aq.schedules.resume('held');
  assert.equal(resumed.paused, false);
  assert.equal(typeof resumed.nextRunAt, 'string');
  const next = Date.parse(resumed.nextRunAt);
  assert.ok(next > Date.now() - 1000 && next <= Date.now() + 5 * 60_000 + 1000, resumed.nextRunAt);
});

test('delete (204): the schedule is gone, the tasks it made stay; again is NotFoundError', async () => {
  await aq.schedules.put('gone', { cron: YEARLY, task: { callbackUrl: target.url('/gone'), delay: 3600 } });
  const task = await aq.schedules.run('gone');
  assert.equal(await aq.schedules.delete('gone'), undefined);
  await assert.rejects(aq.schedules.get('gone'), (e) => e instanceof NotFoundError && e.code === 'not_found');
  await assert.rejects(aq.schedules.delete('gone'), (e) => e instanceof NotFoundError && e.status === 404);
  assert.equal((await aq.tasks.get(task.id)).status, 'queued', 'its task stays');
  assert.equal((await aq.schedules.list()).some((s) => s.name === 'gone'), false);
  await aq.tasks.cancel(task.id);
});

test('a schedule that does not exist: get, pause, resume, run and delete are NotFoundError', async () => {
  for (const call of [
    () => aq.schedules.get('never-made'), () => aq.schedules.pause('never-made'),
    () => aq.schedules.resume('never-made'), () => aq.schedules.run('never-made'),
    () => aq.schedules.delete('never-made'),
  ]) {
    await assert.rejects(call(), (e) => e instanceof NotFoundError && e.status === 404 && e.code === 'not_found');
  }
});

test('a bad cron, template field or name is a ValidationError naming the field', async () => {
  const task = { callbackUrl: target.url('/x') };
  await assert.rejects(aq.schedules.put('bad', { cron: '61 * * * *', task }),
    (e) => e instanceof ValidationError && e.status === 400 && e.code === 'invalid_field' && e.field === 'cron');
  await assert.rejects(aq.schedules.put('bad', { cron: 'every day', task }),
    (e) => e instanceof ValidationError && e.field === 'cron');
  await assert.rejects(aq.schedules.put('bad', { cron: YEARLY, task: { callbackUrl: 'ftp://x.example' } }),
    (e) => e instanceof ValidationError && e.code === 'invalid_field' && e.field === 'task.callbackUrl');
  await assert.rejects(aq.schedules.put('bad', { task }),
    (e) => e instanceof ValidationError && e.code === 'missing_field' && e.field === 'cron');
  await assert.rejects(aq.schedules.put('bad', { cron: YEARLY }),
    (e) => e instanceof ValidationError && e.code === 'missing_field' && e.field === 'task');
  await assert.rejects(aq.schedules.put('bad', { cron: YEARLY, task, pausd: true }),
    (e) => e instanceof ValidationError && e.code === 'unknown_field');
  await assert.rejects(aq.schedules.put('bad', { cron: YEARLY, task: { ...task, runAt: new Date().toISOString() } }),
    (e) => e instanceof ValidationError && e.field === 'task.runAt');
  await assert.rejects(aq.schedules.get('bad'), NotFoundError, 'nothing was stored');
  await assert.rejects(aq.schedules.put('bad name!', { cron: YEARLY, task }),
    (e) => e instanceof ValidationError && e.field === 'name');
});

test('a template URL built from an unset variable gets the hint, as tasks.create does', async () => {
  await assert.rejects(aq.schedules.put('hint', { cron: YEARLY, task: { callbackUrl: 'undefined/api/cron' } }),
    (e) => e instanceof ValidationError && e.field === 'task.callbackUrl' && /environment variable/.test(e.message));
});

test('names are URL-encoded; "." and ".." and a missing schedule object are refused before a request', async () => {
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  await assert.rejects(client.schedules.get('a/b?c'), AsyncQueueError);
  assert.match(log[0].url, /\/v1\/schedules\/a%2Fb%3Fc$/);
  await assert.rejects(client.schedules.run('x y'), AsyncQueueError);
  assert.match(log[1].url, /\/v1\/schedules\/x%20y\/run$/);
  for (const call of [
    () => client.schedules.get('.'), () => client.schedules.delete('..'), () => client.schedules.pause('.'),
    () => client.schedules.resume('..'), () => client.schedules.run('.'), () => client.schedules.get(''),
    () => client.schedules.put('.', { cron: YEARLY, task: { callbackUrl: 'https://x.example' } }),
    () => client.schedules.put('ok', null), () => client.schedules.put('ok', 'x'),
  ]) {
    await assert.rejects(call(), TypeError);
  }
  assert.equal(log.length, 2, 'nothing more was sent');
});

test('put is repeated after a lost answer (a PUT is idempotent); run is not (it may have made a task)', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1 || n === 3 ? 'forward-drop' : 'forward'));
  try {
    const viaProxy = new AsyncQueue({ baseUrl: proxy.url });
    const s = await viaProxy.schedules.put('lost', { cron: YEARLY, task: { callbackUrl: target.url('/lost'), delay: 3600 } });
    assert.equal(s.name, 'lost');
    assert.equal(proxy.requests.length, 2, 'sent twice');
    await assert.rejects(viaProxy.schedules.run('lost'), NetworkError);
    assert.equal(proxy.requests.length, 3, 'run was sent once');
  } finally { await proxy.close(); }
  const s = await aq.schedules.get('lost');
  assert.equal(s.runs, 1, 'the run whose answer was lost made its task');
  await aq.tasks.cancel(s.lastTaskId);
});

/** Schedules named prefix0000 ...; returns the names. */
async function makeSchedules(prefix, n) {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
  for (const name of names) await aq.schedules.put(name, { cron: YEARLY, task: { callbackUrl: target.url('/p') } });
  return names;
}

test('page({limit, cursor}): a SchedulePage with nextCursor, nextPage, pages and for await; iterate(); list()', async () => {
  // '0' sorts before letters: these are the first schedules by name.
  const names = await makeSchedules('0pg', 7);
  const everything = (await aq.schedules.list()).map((s) => s.name);
  assert.deepEqual(everything.slice(0, 7), names);
  assert.deepEqual(everything, [...everything].sort(), 'by name');
  assert.equal(new Set(everything).size, everything.length, 'no schedule twice');

  const page = await aq.schedules.page({ limit: 3 });
  assert.ok(page instanceof SchedulePage);
  assert.deepEqual(page.schedules.map((s) => s.name), names.slice(0, 3));
  assert.equal(typeof page.nextCursor, 'string');
  assert.equal(page.hasNextPage(), true);
  const p2 = await page.nextPage();
  assert.deepEqual(p2.schedules.map((s) => s.name), names.slice(3, 6));
  assert.deepEqual(JSON.parse(JSON.stringify(p2)), { schedules: JSON.parse(JSON.stringify(p2.schedules)), nextCursor: p2.nextCursor },
    'a SchedulePage serialises as the API answer');
  const fromCursor = await aq.schedules.page({ limit: 2, cursor: p2.nextCursor });
  assert.deepEqual(fromCursor.schedules.map((s) => s.name), [names[6], everything[7]]);

  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const seen = [];
  for await (const s of client.schedules.page({ limit: 4, cursor: page.nextCursor })) seen.push(s.name);
  assert.deepEqual(seen, everything.slice(3));
  assert.equal(log.length, Math.ceil(seen.length / 4), 'one request a page: the last page says it is the last');
  assert.match(log[0].url, /\/v1\/schedules\?limit=4&cursor=[A-Za-z0-9_-]+$/);
  const viaIterate = [];
  for await (const s of aq.schedules.iterate({ limit: 5 })) viaIterate.push(s.name);
  assert.deepEqual(viaIterate, everything);
  let pages = 0;
  let last = null;
  for await (const pg of (await aq.schedules.page({ limit: 4 })).pages()) { pages++; last = pg; assert.ok(pg.schedules.length <= 4); }
  assert.ok(pages >= Math.ceil(everything.length / 4));
  assert.equal(last.nextCursor, null);
  assert.equal(await last.nextPage(), null);
});

test('page() with a bad limit or cursor is a ValidationError naming it', async () => {
  for (const limit of [0, 1001]) {
    await assert.rejects(aq.schedules.page({ limit }),
      (e) => e instanceof ValidationError && e.code === 'invalid_field' && e.field === 'limit');
  }
  await assert.rejects(aq.schedules.page({ cursor: 'not a cursor' }),
    (e) => e instanceof ValidationError && e.code === 'invalid_field' && e.field === 'cursor');
});

test('list() follows nextCursor over every page, and stops with an error on a repeated cursor', async () => {
  const pages = {
    '': { schedules: [{ name: 'a' }, { name: 'b' }], nextCursor: 'Yg' },
    Yg: { schedules: [{ name: 'c' }], nextCursor: null },
  };
  const paged = await startProxy(d.url, (req) => {
    const u = new URL(req.url, 'http://x');
    return { status: 200, body: pages[u.searchParams.get('cursor') ?? ''] };
  });
  try {
    const viaProxy = new AsyncQueue({ baseUrl: paged.url });
    assert.deepEqual((await viaProxy.schedules.list()).map((s) => s.name), ['a', 'b', 'c']);
    assert.deepEqual(paged.requests.map((r) => r.url), ['/v1/schedules', '/v1/schedules?cursor=Yg']);
  } finally { await paged.close(); }

  const looping = await startProxy(d.url, () => ({ status: 200, body: { schedules: [{ name: 'x' }], nextCursor: 'eA' } }));
  try {
    const viaProxy = new AsyncQueue({ baseUrl: looping.url });
    await assert.rejects(viaProxy.schedules.list(),
      (e) => e instanceof AsyncQueueError && e.code === 'invalid_response' && /cursor/.test(e.message));
    assert.equal(looping.requests.length, 2, 'no loop');
  } finally { await looping.close(); }
});
