// Named queue settings: from the config file (queue.<name>.<key>) and from
// PUT /v1/queues/{name}; the queue's default retries/timeout apply to tasks
// that give none; validation; DELETE forgets the settings, not the tasks.
// GET /v1/queues in pages: limit, cursor, nextCursor, by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, tempDir } from './lib/harness.mjs';
import { daemon, create, assertError, listQueues } from './lib/ops.mjs';

const url = 'http://127.0.0.1:9/never'; // delayed or paused: never called

test('queue settings from the config file show in GET /v1/queues and give tasks their defaults', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const conf = join(tmp.dir, 'aq.conf');
  writeFileSync(conf, [
    'queue.cq.max_concurrency = 4', 'queue.cq.rate = 120/m', 'queue.cq.burst = 2',
    'queue.cq.retries = 1', 'queue.cq.timeout = 7s', 'queue.cq.paused = true', '',
  ].join('\n'));
  const d = await daemon(t, { args: ['--config', conf] });

  const q = await api(d.url, 'GET', '/v1/queues/cq');
  assert.equal(q.status, 200);
  assert.deepEqual(
    [q.body.name, q.body.configured, q.body.paused, q.body.maxConcurrency, q.body.ratePerSecond, q.body.burst,
      q.body.defaultRetries, q.body.defaultTimeout],
    ['cq', true, true, 4, 2, 2, 1, 7]);
  const own = await create(d, { callbackUrl: url, queue: 'cq' });
  assert.equal(own.retries, 1, "the queue's default retries");
  assert.equal(own.timeout, 7, "the queue's default timeout");
  const given = await create(d, { callbackUrl: url, queue: 'cq', retries: 5, timeout: 9 });
  assert.equal(given.retries, 5, 'a task that gives retries keeps them');
  assert.equal(given.timeout, 9);
  const plain = await create(d, { callbackUrl: url, delay: 3600 });
  assert.equal(plain.retries, 3, 'other queues keep the daemon default');
  assert.equal(plain.timeout, 300);

  const all = (await api(d.url, 'GET', '/v1/queues')).body.queues;
  const names = all.map((x) => x.name);
  assert.ok(names.includes('cq') && names.includes('default'), names.join(','));
  assert.equal(all.find((x) => x.name === 'cq').queued, 2);
});

test('PUT sets every setting (absent ones take defaults), validates, and DELETE forgets them', async (t) => {
  const d = await daemon(t);
  const put = await api(d.url, 'PUT', '/v1/queues/api-q', { defaultRetries: 0, defaultTimeout: 2.5, maxConcurrency: 2 });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual([put.body.configured, put.body.defaultRetries, put.body.defaultTimeout, put.body.maxConcurrency, put.body.paused],
    [true, 0, 2.5, 2, false]);
  const task = await create(d, { callbackUrl: url, queue: 'api-q', delay: 3600 });
  assert.equal(task.retries, 0);
  assert.equal(task.timeout, 2.5);

  // A second PUT replaces all settings: maxConcurrency goes back to 0.
  const again = await api(d.url, 'PUT', '/v1/queues/api-q', { ratePerSecond: 0.5 });
  assert.deepEqual([again.body.maxConcurrency, again.body.ratePerSecond, again.body.defaultRetries],
    [0, 0.5, null]);

  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { maxConcurrency: -1 }), 400, 'invalid_field', 'maxConcurrency');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { ratePerSecond: -2 }), 400, 'invalid_field', 'ratePerSecond');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { maxConcurency: 1 }), 400, 'unknown_field');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { defaultRetries: 1000 }), 400, 'invalid_field', 'defaultRetries');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { defaultTimeout: 0 }), 400, 'invalid_field', 'defaultTimeout');
  assert.equal((await api(d.url, 'PUT', `/v1/queues/${'q'.repeat(65)}`, {})).status, 400);
  assert.equal((await api(d.url, 'GET', '/v1/queues/api-q')).body.ratePerSecond, 0.5, 'refused PUTs change nothing');

  assert.equal((await api(d.url, 'DELETE', '/v1/queues/api-q')).status, 204);
  assertError(await api(d.url, 'DELETE', '/v1/queues/api-q'), 404, 'not_found');
  const gone = await api(d.url, 'GET', '/v1/queues/api-q');
  assert.equal(gone.status, 200, 'the queue still has a task');
  assert.deepEqual([gone.body.configured, gone.body.ratePerSecond, gone.body.queued], [false, 0, 1]);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${task.id}`)).body.status, 'queued', 'tasks stay');
  assertError(await api(d.url, 'DELETE', '/v1/queues/never-configured'), 404, 'not_found');
});

test('every queue is listed and reachable however many there are (a fixed 1024 hid the rest: 404 after a PUT that took)', async (t) => {
  const N = 1100;
  // /metrics gives at most metrics_max_queues (1000) queues series of their
  // own (ops-metrics.test.mjs); here it may give them all.
  const d = await daemon(t, { args: ['--metrics-max-queues', String(N)] });
  const names = Array.from({ length: N }, (_, i) => `m${String(i).padStart(4, '0')}`);
  for (let i = 0; i < N; i += 50) {
    const rs = await Promise.all(names.slice(i, i + 50).map((n) => api(d.url, 'PUT', `/v1/queues/${n}`, { maxConcurrency: 2 })));
    for (const r of rs) assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  // One page holds at most 1000: the rest follow nextCursor.
  const first = await api(d.url, 'GET', '/v1/queues');
  assert.equal(first.body.queues.length, 1000);
  assert.equal(typeof first.body.nextCursor, 'string');
  const list = await listQueues(d);
  assert.deepEqual(list.pages, [1000, 100]);
  assert.deepEqual(list.queues.map((q) => q.name), names);
  const last = await api(d.url, 'GET', `/v1/queues/${names[N - 1]}`);
  assert.equal(last.status, 200);
  assert.equal(last.body.maxConcurrency, 2);
  const paused = await api(d.url, 'POST', `/v1/queues/${names[N - 7]}/pause`);
  assert.equal(paused.status, 200, JSON.stringify(paused.body));
  assert.equal(paused.body.paused, true);
  const metrics = (await api(d.url, 'GET', '/metrics')).body;
  assert.match(metrics, new RegExp(`queue="${names[N - 1]}"`));
  assert.match(metrics, /^asyncqueue_queues_folded 0$/m);
});

/**
 * 25 queues q00..q24: the even ones have settings only (PUT), the odd ones
 * one waiting task only (the store's count), so pages join both sources.
 */
async function twentyFive(d) {
  const names = Array.from({ length: 25 }, (_, i) => `q${String(i).padStart(2, '0')}`);
  await Promise.all(names.map(async (n, i) => {
    if (i % 2 === 0) assert.equal((await api(d.url, 'PUT', `/v1/queues/${n}`, { maxConcurrency: i })).status, 200);
    else await create(d, { callbackUrl: url, queue: n, delay: 3600 });
  }));
  return names;
}

async function page(d, query) {
  const r = await api(d.url, 'GET', `/v1/queues?${query}`);
  assert.equal(r.status, 200, `?${query}: ${JSON.stringify(r.body)}`);
  return r.body;
}

test('GET /v1/queues pages by name: limit 10 over 25 queues gives 10, 10, 5, each queue once, in order', async (t) => {
  const d = await daemon(t);
  const names = await twentyFive(d);

  const p1 = await page(d, 'limit=10');
  assert.deepEqual(p1.queues.map((q) => q.name), names.slice(0, 10));
  assert.equal(typeof p1.nextCursor, 'string');
  assert.match(p1.nextCursor, /^[A-Za-z0-9_-]+$/, 'a cursor needs no escaping in a URL');
  const p2 = await page(d, `limit=10&cursor=${p1.nextCursor}`);
  assert.deepEqual(p2.queues.map((q) => q.name), names.slice(10, 20));
  const p3 = await page(d, `limit=10&cursor=${p2.nextCursor}`);
  assert.deepEqual(p3.queues.map((q) => q.name), names.slice(20));
  assert.equal(p3.nextCursor, null, 'the last page says so');

  // Each queue as the whole list shows it: settings, and the store's counts.
  const all = await listQueues(d, { limit: 10 });
  assert.deepEqual(all.pages, [10, 10, 5]);
  for (const [i, q] of all.queues.entries()) {
    assert.equal(q.name, names[i]);
    assert.deepEqual([q.configured, q.maxConcurrency, q.queued], i % 2 === 0 ? [true, i, 0] : [false, 0, 1], q.name);
  }
  // A page that ends at the last queue has no next one (no empty page).
  assert.equal((await page(d, 'limit=25')).nextCursor, null);
  const p24 = await page(d, 'limit=24');
  assert.equal(p24.queues.length, 24);
  const rest = await page(d, `limit=24&cursor=${p24.nextCursor}`);
  assert.deepEqual([rest.queues.map((q) => q.name), rest.nextCursor], [['q24'], null]);
  // An empty cursor is no cursor, as in the task list.
  assert.deepEqual((await page(d, 'limit=3&cursor=')).queues.map((q) => q.name), ['q00', 'q01', 'q02']);
});

test('pages stay consistent while queues come and go: none skipped, none repeated', async (t) => {
  const d = await daemon(t);
  const names = await twentyFive(d);
  const p1 = await page(d, 'limit=10');
  assert.deepEqual(p1.queues.map((q) => q.name), names.slice(0, 10));

  // Between the pages: q02 (settings only) is forgotten and q05a made,
  // both before the cursor; q15a is made and q12 forgotten after it.
  assert.equal((await api(d.url, 'DELETE', '/v1/queues/q02')).status, 204);
  assert.equal((await api(d.url, 'DELETE', '/v1/queues/q12')).status, 204);
  await create(d, { callbackUrl: url, queue: 'q05a', delay: 3600 });
  assert.equal((await api(d.url, 'PUT', '/v1/queues/q15a', {})).status, 200);

  // Page 2 starts right after q09, whatever changed before it.
  const p2 = await page(d, `limit=10&cursor=${p1.nextCursor}`);
  assert.deepEqual(p2.queues.map((q) => q.name),
    ['q10', 'q11', 'q13', 'q14', 'q15', 'q15a', 'q16', 'q17', 'q18', 'q19']);
  const p3 = await page(d, `limit=10&cursor=${p2.nextCursor}`);
  assert.deepEqual(p3.queues.map((q) => q.name), ['q20', 'q21', 'q22', 'q23', 'q24']);
  assert.equal(p3.nextCursor, null);
  const seen = [...p1.queues, ...p2.queues, ...p3.queues].map((q) => q.name);
  assert.equal(new Set(seen).size, seen.length, 'no queue twice');

  // The cursor of a queue that is gone still means "after that name".
  const upTo14 = await page(d, 'limit=14');
  assert.equal(upTo14.queues.at(-1).name, 'q14');
  assert.equal((await api(d.url, 'DELETE', '/v1/queues/q14')).status, 204);
  const afterGone = await page(d, `limit=2&cursor=${upTo14.nextCursor}`);
  assert.deepEqual(afterGone.queues.map((q) => q.name), ['q15', 'q15a']);
});

test('bad limit and cursor are refused with 400 invalid_field naming the parameter; unknown parameters too', async (t) => {
  const d = await daemon(t);
  await twentyFive(d);
  for (const v of ['0', '1001', 'x', '-1', '1.5', '10e1', '', '%2010']) {
    const r = await api(d.url, 'GET', `/v1/queues?limit=${v}`);
    assertError(r, 400, 'invalid_field', 'limit');
    assert.match(r.body.error.message, /limit must be a whole number from 1 to 1000/);
  }
  const nameCursor = (s) => Buffer.from(s).toString('base64url');
  const bad = [
    '!!!', 'q', 'd1234', '+/+/', // not base64url, or a task list's cursor
    nameCursor('bad name!'), nameCursor('x'.repeat(65)), nameCursor('..'), nameCursor('q\u0000'),
    Buffer.from('q0').toString('base64'), // padded: 'cTA='
    'cTB', // 'cTA' is q0; 'cTB' sets bits a name does not have: not the one spelling of it
  ];
  for (const c of bad) {
    const r = await api(d.url, 'GET', `/v1/queues?cursor=${encodeURIComponent(c)}`);
    assertError(r, 400, 'invalid_field', 'cursor');
    assert.match(r.body.error.message, /nextCursor of an earlier page/);
  }
  // A well-formed cursor is any name: the page starts after it.
  assert.deepEqual((await page(d, `cursor=${nameCursor('q2')}`)).queues.map((q) => q.name),
    ['q20', 'q21', 'q22', 'q23', 'q24']);
  assertError(await api(d.url, 'GET', '/v1/queues?limt=5'), 400, 'unknown_field', 'limt');
  assert.match((await api(d.url, 'GET', '/v1/queues?limt=5')).body.error.message, /takes limit, cursor/);
  assertError(await api(d.url, 'GET', '/v1/queues?limit=5&limit=6'), 400, 'invalid_field', 'limit');
  assertError(await api(d.url, 'GET', '/v1/queues?cursor'), 400, 'invalid_field', 'cursor');
  // GET /v1/queues/{name} takes no paging.
  assertError(await api(d.url, 'GET', '/v1/queues/q01?limit=5'), 400, 'unknown_field', 'limit');
});

test('without limit, one answer holds every queue of a small set, and nextCursor is null', async (t) => {
  const d = await daemon(t);
  const names = await twentyFive(d);
  await create(d, { callbackUrl: url, delay: 3600 }); // the default queue
  const r = await api(d.url, 'GET', '/v1/queues');
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.body), ['queues', 'nextCursor']);
  assert.deepEqual(r.body.queues.map((q) => q.name), [...names.slice(), 'default'].sort());
  assert.equal(r.body.nextCursor, null);
});
