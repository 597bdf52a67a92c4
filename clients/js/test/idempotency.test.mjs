// Idempotency keys: the key generated for each create makes a create whose
// answer was lost (the proxy forwards it to the daemon, then drops the
// connection) come back as the same task when the client retries it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue, NetworkError } from 'asyncqueue-js';
import { startDaemon, startFake, startProxy, recordingFetch, api, stopDaemon } from './helpers.mjs';

let d, target;
before(async () => {
  target = await startFake([{ status: 200, body: { ok: true } }]);
  d = await startDaemon();
});
after(async () => { await target?.close(); await stopDaemon(d); });

async function tasksIn(queue) {
  return (await api(d.url, 'GET', `/v1/tasks?queue=${queue}&limit=200`)).body.tasks;
}

test('a create whose answer is lost is retried with the same key and returns the same task', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? 'forward-drop' : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const task = await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'lost', delay: 3600, payload: { n: 1 } });
    assert.equal(proxy.requests.length, 2);
    const [first, second] = proxy.requests;
    assert.equal(first.upstreamStatus, 202, 'the daemon stored the task the first time');
    assert.equal(second.upstreamStatus, 200, 'the retry was answered as a replay');
    assert.equal(first.headers['idempotency-key'], second.headers['idempotency-key']);
    const stored = await tasksIn('lost');
    assert.equal(stored.length, 1, 'one task, not two');
    assert.equal(stored[0].id, task.id);
    assert.equal(task.idempotencyKey, first.headers['idempotency-key']);
  } finally { await proxy.close(); }
});

test('without a key (idempotencyKey: null) a lost answer is not retried: that is what the key is for', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? 'forward-drop' : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    await assert.rejects(
      aq.tasks.create({ callbackUrl: target.url('/'), queue: 'nokey', delay: 3600 }, { idempotencyKey: null }),
      NetworkError);
    assert.equal(proxy.requests.length, 1);
    assert.equal(proxy.requests[0].headers['idempotency-key'], undefined);
    const stored = await tasksIn('nokey');
    assert.equal(stored.length, 1, 'stored although the caller saw an error');
    assert.equal(stored[0].idempotencyKey, null);
  } finally { await proxy.close(); }
});

test('a key of one\'s own: the same key and request give the same task, answered 200 with Idempotent-Replayed', async () => {
  const log = [];
  const aq = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const input = { callbackUrl: target.url('/'), queue: 'own', delay: 3600, metadata: { order: 1234 } };
  const a = await aq.tasks.create(input, { idempotencyKey: 'order-1234-report' });
  const b = await aq.tasks.create({ ...input }, { idempotencyKey: 'order-1234-report' });
  assert.equal(a.id, b.id);
  assert.equal(b.idempotencyKey, 'order-1234-report');
  assert.equal(a.replayed, undefined);
  assert.equal(b.replayed, true, 'the second create says it found the first one\'s task');
  assert.deepEqual(log.map((l) => l.status), [202, 200]);
  assert.equal(log[0].responseHeaders.get('idempotent-replayed'), null);
  assert.equal(log[1].responseHeaders.get('idempotent-replayed'), 'true');
  assert.equal((await tasksIn('own')).length, 1);
});

test('input.idempotencyKey is sent as the header as well', async () => {
  const log = [];
  const aq = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const a = await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'field', delay: 3600, idempotencyKey: 'k-77' });
  const b = await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'field', delay: 3600, idempotencyKey: 'k-77' });
  assert.equal(a.id, b.id);
  assert.equal(log[0].headers['Idempotency-Key'], 'k-77');
  assert.equal((await tasksIn('field')).length, 1);
});

test('input.idempotencyKey: null sends no key, as options.idempotencyKey null does', async () => {
  const log = [];
  const aq = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const input = { callbackUrl: target.url('/'), queue: 'nullkey', delay: 3600, idempotencyKey: null };
  const a = await aq.tasks.create(input);
  assert.equal(log[0].headers['Idempotency-Key'], undefined, 'no key generated');
  assert.equal(a.idempotencyKey, null);
});

test('two creates without keys of their own make two tasks (a new key per call)', async () => {
  const aq = new AsyncQueue({ baseUrl: d.url });
  const input = { callbackUrl: target.url('/'), queue: 'twice', delay: 3600 };
  const a = await aq.tasks.create(input);
  const b = await aq.tasks.create(input);
  assert.notEqual(a.id, b.id);
  assert.equal((await tasksIn('twice')).length, 2);
});

test('a key that cannot go in a header is a TypeError at once, not a network failure retried', async () => {
  const log = [];
  const aq = new AsyncQueue({ baseUrl: d.url, fetch: recordingFetch(log) });
  const input = { callbackUrl: target.url('/'), queue: 'badkey', delay: 3600 };
  for (const key of ['ключ', 'a\nb', ' padded ', 42]) {
    await assert.rejects(aq.tasks.create(input, { idempotencyKey: key }), TypeError, JSON.stringify(key));
    await assert.rejects(aq.tasks.create({ ...input, idempotencyKey: key }), TypeError, JSON.stringify(key));
  }
  assert.equal(log.length, 0, 'no request was sent');
  assert.equal((await tasksIn('badkey')).length, 0);
  // A key the daemon refuses for its length is still the daemon's to say.
  const { ValidationError } = await import('asyncqueue-js');
  await assert.rejects(aq.tasks.create(input, { idempotencyKey: 'k'.repeat(256) }),
    (e) => e instanceof ValidationError && e.field === 'Idempotency-Key');
});

test('a baseUrl with a space or line break after it (a pasted environment variable) still works', async () => {
  const aq = new AsyncQueue({ baseUrl: `${d.url} \n`, maxRetries: 0 });
  assert.equal(aq.baseUrl, d.url);
  assert.ok(Array.isArray((await aq.tasks.list({ limit: 1 })).tasks));
});
