// Every tasks.* method against the real daemon: create, get, wait, list (a
// page, and the async iterator over all pages), iterate, attempts, cancel,
// cancelMany, retry (with overrides), retryMany.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, Page, WaitTimeoutError } from 'asyncqueue-js';
import { startDaemon, startFake, recordingFetch, waitFor, stopDaemon } from './helpers.mjs';

let d, target, aq;
before(async () => {
  target = await startFake((req) => (req.url.startsWith('/slow')
    ? { status: 200, body: { slow: true }, delayMs: 400 }
    : req.url.startsWith('/fail')
      ? { status: 400, body: { bad: true } }
      : { status: 200, body: { image: 'x.png', got: JSON.parse(req.body || 'null') } }));
  d = await startDaemon();
  aq = new AsyncQueue({ baseUrl: d.url });
});
after(async () => { await target?.close(); await stopDaemon(d); });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('create sends every field, answers the stored task, and carries a generated Idempotency-Key', async () => {
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const task = await client.tasks.create({
    callbackUrl: target.url('/generate'), method: 'PUT', headers: { 'X-Model': 'big' },
    payload: { prompt: 'hi' }, retries: 5, timeout: 12.5, delay: 3600, queue: 'create-q',
    metadata: { userId: 42 },
  });
  assert.match(task.id, UUID);
  assert.equal(task.status, 'queued');
  assert.equal(task.method, 'PUT');
  assert.deepEqual(task.headers, { 'X-Model': 'big' });
  assert.deepEqual(task.payload, { prompt: 'hi' });
  assert.equal(task.retries, 5);
  assert.equal(task.timeout, 12.5);
  assert.equal(task.queue, 'create-q');
  assert.deepEqual(task.metadata, { userId: 42 });
  assert.ok(Date.parse(task.runAt) - Date.parse(task.createdAt) >= 3_599_000, 'delay applied');
  assert.equal(log.length, 1);
  assert.equal(log[0].status, 202);
  const key = log[0].headers['Idempotency-Key'];
  assert.match(key, UUID, 'a random UUID per create');
  assert.equal(task.idempotencyKey, key);

  const second = await client.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600 });
  assert.notEqual(log[1].headers['Idempotency-Key'], key, 'a new key for every call');
  assert.notEqual(second.id, task.id);
  assert.equal(second.idempotencyKey, log[1].headers['Idempotency-Key']);
  await client.tasks.cancelMany({ queue: 'create-q' });
  await client.tasks.cancel(second.id);
});

test('runAt may be a Date; a bare host/path callback URL gets a scheme', async () => {
  const at = new Date(Date.now() + 3_600_000);
  const bare = target.url('/generate').replace('http://', '');
  const task = await aq.tasks.create({ callbackUrl: bare, runAt: at });
  assert.equal(task.callbackUrl, `http://${bare}`, 'loopback hosts get http://');
  assert.equal(task.runAt, at.toISOString());
  await aq.tasks.cancel(task.id);
});

test('get answers the task with attemptHistory; wait long-polls until it is final', async () => {
  const task = await aq.tasks.create({ callbackUrl: target.url('/slow'), payload: { n: 1 } });
  const got = await aq.tasks.get(task.id);
  assert.equal(got.id, task.id);
  assert.ok(Array.isArray(got.attemptHistory));

  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const t0 = Date.now();
  const done = await client.tasks.wait(task.id, { pollSeconds: 20 });
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.result, { slow: true });
  assert.equal(done.attemptHistory.length, 1);
  assert.ok(Date.now() - t0 < 10_000);
  assert.equal(log.length, 1, 'one long-poll was enough: the answer came when the task finished');
  assert.match(log[0].url, /\?wait=20$/);

  // Already final: answered at once.
  const again = await client.tasks.wait(task.id);
  assert.equal(again.status, 'completed');
});

test('wait gives up after timeoutMs with WaitTimeoutError carrying the task', async () => {
  const task = await aq.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600 });
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const t0 = Date.now();
  await assert.rejects(client.tasks.wait(task.id, { timeoutMs: 700, pollSeconds: 0.3 }), (e) => {
    assert.ok(e instanceof WaitTimeoutError);
    assert.equal(e.code, 'wait_timeout');
    assert.equal(e.task.id, task.id);
    assert.equal(e.task.status, 'queued');
    return true;
  });
  const took = Date.now() - t0;
  assert.ok(took >= 650 && took < 5000, `took ${took} ms`);
  assert.ok(log.length >= 2 && log.length <= 4, `${log.length} polls of at most 0.3 s`);
  // The server really held each poll: fewer polls than a busy loop would make.
  for (const l of log) assert.match(l.url, /\?wait=0(\.\d+)?$/);

  // timeoutMs 0: one look (wait=0), then the error.
  log.length = 0;
  await assert.rejects(client.tasks.wait(task.id, { timeoutMs: 0 }), WaitTimeoutError);
  assert.deepEqual(log.map((l) => l.url.split('?')[1]), ['wait=0']);
  await aq.tasks.cancel(task.id);
});

test('wait works with a daemon whose max_wait is below pollSeconds: the poll is halved until it is taken', async () => {
  const small = await startDaemon({ args: ['--max-wait', '5s'] });
  try {
    const log = [];
    const client = new AsyncQueue({ baseUrl: small.url, fetch: recordingFetch(log) });
    const task = await client.tasks.create({ callbackUrl: target.url('/generate'), delay: 1 });
    const done = await client.tasks.wait(task.id); // pollSeconds 60 by default
    assert.equal(done.status, 'completed');
    const waits = log.slice(1).map((l) => Number(new URL(l.url).searchParams.get('wait')));
    assert.deepEqual(waits.slice(0, 5), [60, 30, 15, 7.5, 3.75], 'halved until the daemon took it');
    assert.ok(waits.slice(4).every((w) => w <= 5));
    // A max_wait below 1 s is not searched for: the daemon's error comes back.
    const none = await startDaemon({ args: ['--max-wait', '0s'] });
    try {
      const c2 = new AsyncQueue({ baseUrl: none.url });
      const t2 = await c2.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600 });
      await assert.rejects(c2.tasks.wait(t2.id, { pollSeconds: 4 }), (e) => e.code === 'invalid_field' && e.field === 'wait');
    } finally { await stopDaemon(none); }
  } finally { await stopDaemon(small); }
});

test('list: a Page, filters, order, and the async iterator over every page', async () => {
  const ids = [];
  const t0 = new Date(Date.now() - 1);
  for (let i = 0; i < 7; i++) {
    ids.push((await aq.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600, queue: 'iter' })).id);
  }
  const page = await aq.tasks.list({ queue: 'iter', limit: 3 });
  assert.ok(page instanceof Page);
  assert.deepEqual(page.tasks.map((t) => t.id), ids.slice(-3).reverse(), 'newest first');
  assert.equal(typeof page.nextCursor, 'string');
  assert.equal(page.hasNextPage(), true);
  const p2 = await page.nextPage();
  assert.deepEqual(p2.tasks.map((t) => t.id), ids.slice(1, 4).reverse());
  const p3 = await p2.nextPage();
  assert.deepEqual(p3.tasks.map((t) => t.id), [ids[0]]);
  assert.equal(p3.nextCursor, null);
  assert.equal(await p3.nextPage(), null);
  assert.deepEqual(JSON.parse(JSON.stringify(p3)), { tasks: JSON.parse(JSON.stringify(p3.tasks)), nextCursor: null },
    'a Page serialises as the API answer');

  // for await over list(): every task of every page, one request per page.
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const seen = [];
  for await (const t of client.tasks.list({ queue: 'iter', limit: 3 })) seen.push(t.id);
  assert.deepEqual(seen, [...ids].reverse());
  assert.equal(log.length, 3);
  assert.match(log[1].url, /cursor=d\d+/);

  // for await over an awaited Page too, and asc order, and iterate().
  const asc = [];
  for await (const t of await aq.tasks.list({ queue: 'iter', limit: 2, order: 'asc' })) asc.push(t.id);
  assert.deepEqual(asc, ids);
  const viaIterate = [];
  for await (const t of aq.tasks.iterate({ queue: 'iter', limit: 4, order: 'asc' })) viaIterate.push(t.id);
  assert.deepEqual(viaIterate, ids);
  let pages = 0;
  for await (const pg of page.pages()) { pages++; assert.ok(pg.tasks.length <= 3); }
  assert.equal(pages, 3);

  // Filters: status as an array, createdAfter as a Date.
  await aq.tasks.cancel(ids[0]);
  const cancelled = await aq.tasks.list({ queue: 'iter', status: ['cancelled', 'failed'] });
  assert.deepEqual(cancelled.tasks.map((t) => t.id), [ids[0]]);
  const recent = [];
  for await (const t of aq.tasks.list({ queue: 'iter', createdAfter: t0, status: 'queued' })) recent.push(t.id);
  assert.deepEqual(recent, ids.slice(1).reverse());
  const none = await aq.tasks.list({ queue: 'iter', createdBefore: t0 });
  assert.deepEqual(none.tasks, []);

  // A PagePromise requests nothing until used.
  const lazy = [];
  const lazyClient = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(lazy) });
  const pending = lazyClient.tasks.list({ queue: 'iter' });
  await new Promise((r) => setImmediate(r));
  assert.equal(lazy.length, 0);
  assert.equal((await pending).tasks.length, 7);
  assert.equal(lazy.length, 1);
  await aq.tasks.cancelMany({ queue: 'iter' });
});

test('attempts lists the task attempts and webhook deliveries', async () => {
  const hook = await startFake([{ status: 200 }]);
  try {
    const task = await aq.tasks.create({ callbackUrl: target.url('/generate'), webhookUrl: hook.url('/hook') });
    await aq.tasks.wait(task.id, { pollSeconds: 10 });
    await hook.waitForRequests(1);
    const a = await waitFor(async () => {
      const r = await aq.tasks.attempts(task.id);
      return r.webhookDeliveries.length ? r : null;
    }, { what: 'the delivery to be recorded' });
    assert.equal(a.taskId, task.id);
    assert.equal(a.attempts.length, 1);
    assert.equal(a.attempts[0].statusCode, 200);
    assert.equal(a.attempts[0].error, null);
    assert.equal(a.webhookDeliveries[0].statusCode, 200);
    assert.match(a.webhookDeliveries[0].webhookId, /^msg_/);
  } finally { await hook.close(); }
});

test('cancel cancels a queued task; cancelMany by filter; retryMany replays them', async () => {
  // Paused, so replayed tasks (due at once) stay queued.
  await aq.queues.pause('bulk');
  const one = await aq.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600, queue: 'bulk' });
  const cancelled = await aq.tasks.cancel(one.id);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal(cancelled.id, one.id);

  const ids = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await aq.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600, queue: 'bulk' })).id);
  }
  await aq.tasks.create({ callbackUrl: target.url('/generate'), delay: 3600, queue: 'other-bulk' });
  assert.deepEqual(await aq.tasks.cancelMany({ queue: 'bulk', status: 'queued' }), { cancelled: 3 });
  for (const id of ids) assert.equal((await aq.tasks.get(id)).status, 'cancelled');
  assert.equal((await aq.tasks.list({ queue: 'other-bulk', status: 'queued' })).tasks.length, 1, 'other queues untouched');

  assert.deepEqual(await aq.tasks.retryMany({ queue: 'bulk', status: ['cancelled'] }), { retried: 4 });
  for (const id of [one.id, ...ids]) {
    const t = await aq.tasks.get(id);
    assert.equal(t.status, 'queued');
    assert.equal(t.replays, 1);
  }
  assert.deepEqual(await aq.tasks.cancelMany({ queue: 'bulk', createdAfter: new Date(0) }), { cancelled: 4 });
  assert.deepEqual(await aq.tasks.cancelMany({ status: ['queued', 'running'], queue: 'other-bulk' }), { cancelled: 1 });
  await aq.queues.delete('bulk');
});

test('retryMany with no filter replays failed tasks (the dead-letter list)', async () => {
  const task = await aq.tasks.create({ callbackUrl: target.url('/fail'), retries: 0, queue: 'dlq' });
  const failed = await aq.tasks.wait(task.id, { pollSeconds: 10 });
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error.code, 'http_error');
  const before = target.requests.filter((r) => r.url === '/fail').length;
  const { retried } = await aq.tasks.retryMany();
  assert.ok(retried >= 1);
  const again = await aq.tasks.wait(task.id, { pollSeconds: 10 });
  assert.equal(again.status, 'failed');
  assert.equal(again.replays, 1);
  assert.equal(target.requests.filter((r) => r.url === '/fail').length, before + 1, 'called again');
});

test('retry replays a finished task, with overrides (a bare loopback URL gets http://)', async () => {
  const task = await aq.tasks.create({ callbackUrl: target.url('/generate'), payload: { v: 1 } });
  const first = await aq.tasks.wait(task.id, { pollSeconds: 10 });
  assert.deepEqual(first.result.got, { v: 1 });

  const replayed = await aq.tasks.retry(task.id, {
    callbackUrl: target.url('/generate?second').replace('http://', ''), payload: { v: 2 },
  });
  assert.equal(replayed.id, task.id);
  assert.equal(replayed.status, 'queued');
  assert.equal(replayed.replays, 1);
  const second = await aq.tasks.wait(task.id, { pollSeconds: 10 });
  assert.equal(second.status, 'completed');
  assert.deepEqual(second.result.got, { v: 2 });
  assert.equal(second.attempts, 2);
  assert.ok(target.requests.some((r) => r.url === '/generate?second'));

  // Without overrides: no body at all.
  const third = await aq.tasks.retry(task.id);
  assert.equal(third.replays, 2);
  assert.equal((await aq.tasks.wait(task.id, { pollSeconds: 10 })).attempts, 3);
});

test('methods refuse a missing id before any request', async () => {
  await assert.rejects(aq.tasks.get(''), TypeError);
  await assert.rejects(aq.tasks.cancel(undefined), TypeError);
  await assert.rejects(aq.queues.get(''), TypeError);
  await assert.rejects(aq.tasks.create(null), TypeError);
  await assert.rejects(aq.tasks.cancelMany(), TypeError);
});
