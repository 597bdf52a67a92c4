// queues.* against the real daemon: list (every page), page and iterate,
// get, update, pause, resume, delete, and that a paused queue really holds
// its tasks until resumed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, AsyncQueueError, NotFoundError, QueuePage, ValidationError } from 'asyncqueue-js';
import { startDaemon, startFake, startProxy, stopDaemon, recordingFetch } from './helpers.mjs';

let d, target, aq;
before(async () => {
  target = await startFake([{ status: 200, body: { ok: true } }]);
  d = await startDaemon();
  aq = new AsyncQueue({ baseUrl: d.url });
});
after(async () => { await target?.close(); await stopDaemon(d); });

test('update sets every setting; get and list show the queue', async () => {
  const q = await aq.queues.update('emails', {
    maxConcurrency: 5, ratePerSecond: 10, burst: 20, defaultRetries: 7, defaultTimeout: 30,
  });
  assert.equal(q.name, 'emails');
  assert.equal(q.maxConcurrency, 5);
  assert.equal(q.ratePerSecond, 10);
  assert.equal(q.burst, 20);
  assert.equal(q.defaultRetries, 7);
  assert.equal(q.defaultTimeout, 30);
  assert.equal(q.paused, false);
  assert.equal(q.configured, true);
  assert.deepEqual(Object.keys(q.lastMinute).sort(), ['accepted', 'cancelled', 'completed', 'dispatched', 'failed']);

  assert.deepEqual(await aq.queues.get('emails'), q);
  const all = await aq.queues.list();
  assert.ok(Array.isArray(all));
  assert.deepEqual(all.find((x) => x.name === 'emails'), q);

  // A task of the queue takes its defaults.
  const task = await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'emails', delay: 3600 });
  assert.equal(task.retries, 7);
  assert.equal(task.timeout, 30);
  assert.equal((await aq.queues.get('emails')).queued, 1);
  await aq.tasks.cancel(task.id);

  // update replaces every setting: absent ones go back to their defaults.
  const reset = await aq.queues.update('emails', { maxConcurrency: 1 });
  assert.equal(reset.maxConcurrency, 1);
  assert.equal(reset.ratePerSecond, 0);
  assert.equal(reset.defaultRetries, null);
  assert.equal(reset.defaultTimeout, null);
});

test('pause holds the queue\'s tasks, resume lets them run', async () => {
  const paused = await aq.queues.pause('held');
  assert.equal(paused.paused, true);
  assert.equal(paused.name, 'held');
  const task = await aq.tasks.create({ callbackUrl: target.url('/held'), queue: 'held' });
  // Held: a long-poll of 0.5 s ends with the task still queued, and the target saw nothing.
  const still = await aq.tasks.get(task.id);
  const waited = await aq.request('GET', `/v1/tasks/${task.id}`, { query: { wait: 0.5 } });
  assert.equal(still.status, 'queued');
  assert.equal(waited.status, 'queued');
  assert.equal(target.requests.filter((r) => r.url === '/held').length, 0);
  assert.equal((await aq.queues.get('held')).queued, 1);

  const resumed = await aq.queues.resume('held');
  assert.equal(resumed.paused, false);
  const done = await aq.tasks.wait(task.id, { pollSeconds: 10 });
  assert.equal(done.status, 'completed');
  assert.equal(target.requests.filter((r) => r.url === '/held').length, 1);
});

test('pause and resume keep the other settings', async () => {
  await aq.queues.update('keep', { maxConcurrency: 3, ratePerSecond: 2.5, burst: 4 });
  const p = await aq.queues.pause('keep');
  assert.deepEqual([p.paused, p.maxConcurrency, p.ratePerSecond, p.burst], [true, 3, 2.5, 4]);
  const r = await aq.queues.resume('keep');
  assert.deepEqual([r.paused, r.maxConcurrency, r.ratePerSecond, r.burst], [false, 3, 2.5, 4]);
});

test('delete forgets the settings (204); deleting again answers 404; get of an unknown queue 404', async () => {
  await aq.queues.update('gone', { maxConcurrency: 2, paused: true });
  assert.equal(await aq.queues.delete('gone'), undefined);
  const after = await aq.queues.list();
  const g = after.find((q) => q.name === 'gone');
  assert.ok(!g || (g.configured === false && g.maxConcurrency === 0 && g.paused === false), 'settings forgotten');
  await assert.rejects(aq.queues.delete('gone'), (e) => e instanceof NotFoundError && e.status === 404);
  await assert.rejects(aq.queues.get('never-seen'), (e) => e instanceof NotFoundError && e.code === 'not_found');
});

// docs/api.md: "GET /v1/queues/{name}: one queue; 404 when it has no settings
// and no tasks". After DELETE of a queue that never had tasks, the daemon
// still answers 200 (configured: false, all counts 0) and lists it.
test('get answers 404 after delete of a queue with no tasks', async () => {
  await aq.queues.update('gone2', { maxConcurrency: 2 });
  await aq.queues.delete('gone2');
  await assert.rejects(aq.queues.get('gone2'), (e) => e instanceof NotFoundError);
  assert.equal((await aq.queues.list()).some((q) => q.name === 'gone2'), false);
});

test('a bad setting or name is a ValidationError naming the field', async () => {
  await assert.rejects(aq.queues.update('emails', { maxConcurrency: -1 }),
    (e) => e instanceof ValidationError && e.field === 'maxConcurrency' && e.code === 'invalid_field');
  await assert.rejects(aq.queues.update('emails', { maxConcurency: 1 }),
    (e) => e instanceof ValidationError && e.code === 'unknown_field' && e.field === 'maxConcurency');
  await assert.rejects(aq.queues.get('bad name!'),
    (e) => e instanceof ValidationError && e.field === 'name');
});

// docs/api.md: "burst | 1 (default)". The daemon reports burst 0 for a queue
// without settings and after a PUT that leaves burst out.
test('a queue without settings reports the documented default burst of 1', async () => {
  await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'plain', delay: 3600 });
  assert.equal((await aq.queues.get('plain')).burst, 1);
  assert.equal((await aq.queues.update('plain2', {})).burst, 1);
});

test('a delete whose answer was lost is sent again, and the 404 it then gets means done', async () => {
  await aq.queues.update('lostanswer', { maxConcurrency: 2 });
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? 'forward-drop' : 'forward'));
  try {
    const viaProxy = new AsyncQueue({ baseUrl: proxy.url });
    assert.equal(await viaProxy.queues.delete('lostanswer'), undefined);
    assert.equal(proxy.requests.length, 2, 'sent twice');
  } finally { await proxy.close(); }
  await assert.rejects(aq.queues.get('lostanswer'), NotFoundError);
  // Without a lost answer, a 404 is still a NotFoundError.
  await assert.rejects(aq.queues.delete('lostanswer'), NotFoundError);
});

test('a delete retried after the daemon\'s 503 (which did nothing) and then answered 404 is a NotFoundError', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1
    ? { status: 503, headers: { 'retry-after': '0' }, body: { error: { code: 'unavailable', message: 'retry later' } } }
    : 'forward'));
  try {
    const viaProxy = new AsyncQueue({ baseUrl: proxy.url });
    await assert.rejects(viaProxy.queues.delete('neverset'), NotFoundError);
    assert.equal(proxy.requests.length, 2, 'retried once after the 503');
  } finally { await proxy.close(); }
});

test('"." and ".." are no id or name: refused before a request (a URL would resolve them to another route)', async () => {
  for (const call of [() => aq.queues.get('.'), () => aq.queues.delete('..'), () => aq.queues.pause('.')]) {
    await assert.rejects(call(), TypeError);
  }
  for (const call of [() => aq.tasks.retry('.', { queue: 'x' }), () => aq.tasks.cancel('..'), () => aq.tasks.get('.')]) {
    await assert.rejects(call(), TypeError);
  }
  await assert.rejects(aq.tasks.list({ createdAfter: new Date('not a date') }), TypeError);
});

/** Settings for each name (PUT), 50 at a time; returns the names. */
async function makeQueues(prefix, n) {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
  for (let i = 0; i < n; i += 50) await Promise.all(names.slice(i, i + 50).map((q) => aq.queues.update(q, {})));
  return names;
}

test('list() returns every queue, by name, following nextCursor past 1000 queues', async () => {
  const names = await makeQueues('many', 1050);
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const all = await client.queues.list();
  assert.ok(Array.isArray(all));
  const mine = all.map((q) => q.name).filter((n) => n.startsWith('many'));
  assert.deepEqual(mine, names, 'each queue once, in order');
  const sorted = all.map((q) => q.name);
  assert.deepEqual(sorted, [...sorted].sort(), 'by name');
  assert.equal(new Set(sorted).size, sorted.length, 'no queue twice');
  assert.equal(log.length, 2, 'pages of 1000: two requests');
  assert.match(log[0].url, /\/v1\/queues$/, 'the first asks with no parameter (an older daemon takes none)');
  assert.match(log[1].url, /\/v1\/queues\?cursor=[A-Za-z0-9_-]+$/);
});

test('page({limit, cursor}): a QueuePage with nextCursor, nextPage, pages and for await; iterate()', async () => {
  // '0' sorts before letters: these are the first queues by name.
  const names = await makeQueues('0pg', 7);
  const everything = (await aq.queues.list()).map((q) => q.name);
  assert.deepEqual(everything.slice(0, 7), names);

  const page = await aq.queues.page({ limit: 3 });
  assert.ok(page instanceof QueuePage);
  assert.deepEqual(page.queues.map((q) => q.name), names.slice(0, 3));
  assert.equal(typeof page.nextCursor, 'string');
  assert.equal(page.hasNextPage(), true);
  const p2 = await page.nextPage();
  assert.deepEqual(p2.queues.map((q) => q.name), names.slice(3, 6));
  assert.deepEqual(JSON.parse(JSON.stringify(p2)), { queues: JSON.parse(JSON.stringify(p2.queues)), nextCursor: p2.nextCursor },
    'a QueuePage serialises as the API answer');
  const fromCursor = await aq.queues.page({ limit: 2, cursor: p2.nextCursor });
  assert.deepEqual(fromCursor.queues.map((q) => q.name), [names[6], everything[7]]);

  // for await over page(): every queue from the cursor on, one request per page.
  const log = [];
  const client = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const seen = [];
  for await (const q of client.queues.page({ limit: 400, cursor: page.nextCursor })) seen.push(q.name);
  assert.deepEqual(seen, everything.slice(3));
  assert.equal(log.length, Math.ceil(seen.length / 400));
  assert.match(log[0].url, /\?limit=400&cursor=[A-Za-z0-9_-]+$/);
  const viaIterate = [];
  for await (const q of aq.queues.iterate({ limit: 500 })) viaIterate.push(q.name);
  assert.deepEqual(viaIterate, everything);
  let pages = 0;
  let last = null;
  for await (const pg of (await aq.queues.page({ limit: 400 })).pages()) { pages++; last = pg; assert.ok(pg.queues.length <= 400); }
  assert.equal(pages, Math.ceil(everything.length / 400));
  assert.equal(last.nextCursor, null);
  assert.equal(await last.nextPage(), null);
});

test('page() with a bad limit or cursor is a ValidationError naming it', async () => {
  for (const limit of [0, 1001]) {
    await assert.rejects(aq.queues.page({ limit }),
      (e) => e instanceof ValidationError && e.code === 'invalid_field' && e.field === 'limit');
  }
  await assert.rejects(aq.queues.page({ cursor: 'not a cursor' }),
    (e) => e instanceof ValidationError && e.code === 'invalid_field' && e.field === 'cursor');
});

test('list() stops with an error when the daemon answers the same cursor again', async () => {
  const page = { queues: [{ name: 'x' }], nextCursor: 'eA' };
  const proxy = await startProxy(d.url, () => ({ status: 200, body: page }));
  try {
    const viaProxy = new AsyncQueue({ baseUrl: proxy.url });
    await assert.rejects(viaProxy.queues.list(),
      (e) => e instanceof AsyncQueueError && e.code === 'invalid_response' && /cursor/.test(e.message));
    assert.equal(proxy.requests.length, 2, 'no loop');
  } finally { await proxy.close(); }
});
