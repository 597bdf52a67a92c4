// tasks.createMany: many creates in one request (POST /v1/tasks/batch), with
// an idempotency key in every item so that a batch whose answer was lost is
// retried and gets the same tasks back, as create does for one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, ConflictError, NetworkError, ValidationError } from 'asyncqueue-js';
import { startDaemon, startFake, startProxy, recordingFetch, api, stopDaemon } from './helpers.mjs';

let d, target;
before(async () => {
  target = await startFake([{ status: 200, body: { ok: true } }]);
  d = await startDaemon();
});
after(async () => { await target?.close(); await stopDaemon(d); });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function tasksIn(queue) {
  return (await api(d.url, 'GET', `/v1/tasks?queue=${queue}&limit=200&order=asc`)).body.tasks;
}
const items = (queue, n, extra = {}) =>
  Array.from({ length: n }, (_, i) => ({ callbackUrl: target.url(`/${i}`), queue, delay: 3600, metadata: { i }, ...extra }));

test('createMany answers the stored tasks in the order given, each with a generated key', async () => {
  const log = [];
  const aq = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const input = items('many', 3);
  input[1].idempotencyKey = 'own-key';
  const tasks = await aq.tasks.createMany(input);
  assert.equal(tasks.length, 3);
  assert.deepEqual(tasks.map((x) => x.metadata.i), [0, 1, 2]);
  assert.deepEqual(tasks.map((x) => x.status), ['queued', 'queued', 'queued']);
  assert.match(tasks[0].idempotencyKey, UUID);
  assert.equal(tasks[1].idempotencyKey, 'own-key');
  assert.match(tasks[2].idempotencyKey, UUID);
  assert.notEqual(tasks[0].idempotencyKey, tasks[2].idempotencyKey);
  assert.equal(log.length, 1);
  assert.equal(log[0].method, 'POST');
  assert.equal(new URL(log[0].url).pathname, '/v1/tasks/batch');
  assert.equal(log[0].headers['Idempotency-Key'], undefined, 'the keys are in the items');
  assert.deepEqual((await tasksIn('many')).map((x) => x.id), tasks.map((x) => x.id));
  // The caller's objects are left as they were.
  assert.equal(input[0].idempotencyKey, undefined);
});

test('a batch whose answer is lost is retried with the same keys and returns the same tasks, none twice', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? 'forward-drop' : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const tasks = await aq.tasks.createMany(items('lost-many', 4));
    assert.equal(proxy.requests.length, 2);
    const [first, second] = proxy.requests;
    assert.equal(first.upstreamStatus, 202, 'the daemon stored the batch the first time');
    assert.equal(second.upstreamStatus, 200, 'the retry was answered as a replay');
    assert.equal(first.body, second.body, 'the same keys were sent again');
    assert.deepEqual(tasks.map((x) => x.replayed), [true, true, true, true]);
    const stored = await tasksIn('lost-many');
    assert.equal(stored.length, 4, 'four tasks, not eight');
    assert.deepEqual(stored.map((x) => x.id), tasks.map((x) => x.id));
  } finally { await proxy.close(); }
});

test('idempotencyKey: null generates no keys: a lost answer is then not retried, unless every item has its own', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n <= 3 ? 'forward-drop' : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    await assert.rejects(aq.tasks.createMany(items('nokey-many', 2), { idempotencyKey: null }), NetworkError);
    assert.equal(proxy.requests.length, 1);
    assert.ok(JSON.parse(proxy.requests[0].body).tasks.every((x) => !('idempotencyKey' in x)));
    const stored = await tasksIn('nokey-many');
    assert.equal(stored.length, 2, 'stored although the caller saw an error');
    // One item without a key: not retried either.
    await assert.rejects(aq.tasks.createMany([...items('nokey-many', 1, { idempotencyKey: 'a1' }), ...items('nokey-many', 1)],
      { idempotencyKey: null }), NetworkError);
    assert.equal(proxy.requests.length, 2);
    // Every item with its own key: retried, and the same tasks come back.
    const own = await aq.tasks.createMany(items('own-many', 2).map((x, i) => ({ ...x, idempotencyKey: `own-${i}` })),
      { idempotencyKey: null });
    assert.equal(proxy.requests.length, 4);
    assert.deepEqual((await tasksIn('own-many')).map((x) => x.id), own.map((x) => x.id));
  } finally { await proxy.close(); }
});

test('an invalid item is a ValidationError naming it, with the hint for a URL built from an unset variable', async () => {
  const aq = new AsyncQueue({ baseUrl: d.url });
  const input = items('bad-many', 3);
  input[2] = { ...input[2], webhookUrl: `${process.env.AQ_SURELY_UNSET_VAR}/api/on-complete` };
  const err = await aq.tasks.createMany(input).catch((e) => e);
  assert.ok(err instanceof ValidationError, String(err));
  assert.equal(err.status, 400);
  assert.equal(err.field, 'tasks[2].webhookUrl');
  assert.match(err.message, /tasks\[2\]: /);
  assert.match(err.message, /is the environment variable it is built from set\?/);
  assert.equal((await tasksIn('bad-many')).length, 0, 'nothing stored');
});

test('a key used for another request is a ConflictError for the whole batch', async () => {
  const aq = new AsyncQueue({ baseUrl: d.url });
  await aq.tasks.create({ callbackUrl: target.url('/x'), queue: 'conflict-many', delay: 3600 }, { idempotencyKey: 'taken' });
  const err = await aq.tasks.createMany([...items('conflict-many', 1), { callbackUrl: target.url('/y'), delay: 60, idempotencyKey: 'taken' }])
    .catch((e) => e);
  assert.ok(err instanceof ConflictError, String(err));
  assert.equal(err.code, 'idempotency_key_reused');
  assert.equal(err.field, 'tasks[1].idempotencyKey');
  assert.equal((await tasksIn('conflict-many')).length, 1, 'only the create before');
});

test('a 429 (nothing stored) is retried after Retry-After', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1
    ? { status: 429, headers: { 'retry-after': '0' }, body: { error: { code: 'queue_full', message: 'full' } } }
    : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const tasks = await aq.tasks.createMany(items('full-many', 2), { idempotencyKey: null });
    assert.equal(proxy.requests.length, 2);
    assert.equal(tasks.length, 2);
  } finally { await proxy.close(); }
});

test('mistakes of the caller are said at once, without a request', async () => {
  const log = [];
  const aq = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  await assert.rejects(aq.tasks.createMany([]), TypeError);
  await assert.rejects(aq.tasks.createMany({ callbackUrl: 'https://x.example' }), TypeError);
  await assert.rejects(aq.tasks.createMany([{ callbackUrl: 'https://x.example' }, null]), /items\[1\]/);
  await assert.rejects(aq.tasks.createMany([{ callbackUrl: 'https://x.example' }], { idempotencyKey: 'k' }),
    /give each item its own idempotencyKey/);
  assert.equal(log.length, 0);
});
