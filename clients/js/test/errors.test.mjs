// Error mapping: each status the daemon answers becomes its typed error with
// status, code, field, message and retryAfter, straight from the real daemon
// (400, 401, 404, 405, 409, 413, 422, 429, 431); 503 is in retry.test.mjs (a locked
// database) along with the retries themselves. Also: network failures,
// timeouts and answers that are not the API's JSON.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  AsyncQueue, AsyncQueueError, ValidationError, AuthenticationError, PermissionDeniedError, NotFoundError,
  ConflictError, RateLimitError, UnavailableError, NetworkError, TimeoutError,
} from 'asyncqueue-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startDaemon, startFake, startProxy, recordingFetch, closedPort, api, stopDaemon, tempDir,
} from './helpers.mjs';

let d, target, aq;
before(async () => {
  target = await startFake([{ status: 200, body: { ok: true } }]);
  d = await startDaemon({ args: ['--max-body-bytes', '4096'] });
  aq = new AsyncQueue({ baseUrl: d.url, maxRetries: 0 });
});
after(async () => { await target?.close(); await stopDaemon(d); });

function check(Cls, fields) {
  return (e) => {
    assert.ok(e instanceof Cls, `expected ${Cls.name}, got ${e?.name}: ${e?.message}`);
    assert.ok(e instanceof AsyncQueueError);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e[k], v, `${k}`);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 10);
    return true;
  };
}

test('400 invalid_field: ValidationError with the field and the daemon\'s message', async () => {
  await assert.rejects(aq.tasks.create({ callbackUrl: 'ftp://files.example.com/x' }),
    check(ValidationError, { status: 400, code: 'invalid_field', field: 'callbackUrl', retryAfter: null }));
  await assert.rejects(aq.tasks.create({ callbackUrl: target.url('/'), retries: 101 }),
    check(ValidationError, { status: 400, code: 'invalid_field', field: 'retries' }));
});

test('400 unknown_field, missing_field, conflicting_fields', async () => {
  await assert.rejects(aq.tasks.create({ callbackURL: target.url('/') }),
    check(ValidationError, { code: 'unknown_field', field: 'callbackURL' }));
  await assert.rejects(aq.tasks.create({ payload: {} }),
    check(ValidationError, { code: 'missing_field', field: 'callbackUrl' }));
  await assert.rejects(aq.tasks.create({ callbackUrl: target.url('/'), payload: {}, body: 'x' }),
    check(ValidationError, { code: 'conflicting_fields' }));
  await assert.rejects(aq.tasks.cancelMany({}), check(ValidationError, { code: 'missing_field' }));
  await assert.rejects(aq.tasks.list({ limit: 500 }), check(ValidationError, { code: 'invalid_field', field: 'limit' }));
});

test('a URL built from an unset variable gets a hint in the message', async () => {
  await assert.rejects(aq.tasks.create({ callbackUrl: target.url('/'), webhookUrl: `${undefined}/api/on-complete` }),
    (e) => e instanceof ValidationError && e.field === 'webhookUrl' && /environment variable/.test(e.message));
});

test('413 body_too_large is a ValidationError; nothing is stored', async () => {
  await assert.rejects(aq.tasks.create({ callbackUrl: target.url('/'), payload: 'x'.repeat(10_000) }),
    check(ValidationError, { status: 413, code: 'body_too_large' }));
  assert.equal((await aq.tasks.list()).tasks.some((t) => typeof t.payload === 'string'), false);
});

test('431 headers_too_large is a ValidationError; nothing is stored', async () => {
  const before = (await aq.tasks.list()).tasks.length;
  await assert.rejects(aq.request('POST', '/v1/tasks', { body: { callbackUrl: target.url('/') }, headers: { 'x-pad': 'a'.repeat(16 * 1024) } }),
    check(ValidationError, { status: 431, code: 'headers_too_large' }));
  assert.equal((await aq.tasks.list()).tasks.length, before);
});

test('401 unauthorized: AuthenticationError, for a wrong key and for none', async () => {
  const dk = await startDaemon({ args: ['--api-key', 'key-one,key-two'] });
  try {
    const wrong = new AsyncQueue({ baseUrl: dk.url, apiKey: 'nope' });
    await assert.rejects(wrong.tasks.list(), check(AuthenticationError, { status: 401, code: 'unauthorized', field: null }));
    const none = new AsyncQueue({ baseUrl: dk.url });
    await assert.rejects(none.queues.list(), check(AuthenticationError, { status: 401, code: 'unauthorized' }));
    assert.equal((await wrong.tasks.list().catch((e) => e)).headers.get('www-authenticate'), 'Bearer');
    const right = new AsyncQueue({ baseUrl: dk.url, apiKey: 'key-two' });
    const page = await right.tasks.list();
    assert.deepEqual(page.tasks, []);
  } finally { await stopDaemon(dk); }
});

test('403 forbidden: PermissionDeniedError, for a read key that changes and an enqueue key that looks', async () => {
  const dir = tempDir('aq-js-403-');
  const conf = join(dir.dir, 'keys.conf');
  writeFileSync(conf, 'key.reader = reader-key-0123456789 scope=read\nkey.writer = writer-key-0123456789 scope=enqueue\n');
  const dk = await startDaemon({ args: ['--config', conf] });
  try {
    const reader = new AsyncQueue({ baseUrl: dk.url, apiKey: 'reader-key-0123456789', maxRetries: 0 });
    await assert.rejects(reader.tasks.create({ callbackUrl: target.url('/') }),
      check(PermissionDeniedError, { status: 403, code: 'forbidden', field: null }));
    const writer = new AsyncQueue({ baseUrl: dk.url, apiKey: 'writer-key-0123456789', maxRetries: 0 });
    await assert.rejects(writer.queues.list(), check(PermissionDeniedError, { status: 403, code: 'forbidden' }));
    assert.deepEqual((await reader.tasks.list()).tasks, []);
  } finally { await stopDaemon(dk); dir.cleanup(); }
});

test('404 not_found: NotFoundError for an unknown task, its attempts, cancel, retry', async () => {
  const id = '01a221b7-4f1f-707d-9c40-a269a508bd38';
  for (const call of [() => aq.tasks.get(id), () => aq.tasks.attempts(id), () => aq.tasks.cancel(id),
    () => aq.tasks.retry(id), () => aq.tasks.get('not-a-uuid')]) {
    await assert.rejects(call(), check(NotFoundError, { status: 404, code: 'not_found' }));
  }
});

test('405 method_not_allowed stays a plain AsyncQueueError', async () => {
  await assert.rejects(aq.request('DELETE', '/v1/tasks'), (e) => {
    assert.equal(e.constructor, AsyncQueueError);
    assert.equal(e.status, 405);
    assert.equal(e.code, 'method_not_allowed');
    assert.equal(e.headers.get('allow'), 'GET, HEAD, POST');
    return true;
  });
});

test('409 task_finished and task_not_finished: ConflictError', async () => {
  const done = await aq.tasks.create({ callbackUrl: target.url('/') });
  await aq.tasks.wait(done.id, { pollSeconds: 10 });
  await assert.rejects(aq.tasks.cancel(done.id), check(ConflictError, { status: 409, code: 'task_finished' }));
  const open = await aq.tasks.create({ callbackUrl: target.url('/'), delay: 3600 });
  await assert.rejects(aq.tasks.retry(open.id), check(ConflictError, { status: 409, code: 'task_not_finished' }));
  await aq.tasks.cancel(open.id);
});

test('422 idempotency_key_reused: ConflictError naming idempotencyKey', async () => {
  await aq.tasks.create({ callbackUrl: target.url('/a'), delay: 3600 }, { idempotencyKey: 'order-1' });
  await assert.rejects(aq.tasks.create({ callbackUrl: target.url('/b'), delay: 3600 }, { idempotencyKey: 'order-1' }),
    check(ConflictError, { status: 422, code: 'idempotency_key_reused', field: 'idempotencyKey' }));
});

test('429 queue_full (--max-backlog 1): RateLimitError with retryAfter; nothing stored', async () => {
  const db = await startDaemon({ args: ['--max-backlog', '1'] });
  try {
    const client = new AsyncQueue({ baseUrl: db.url, maxRetries: 0 });
    await client.tasks.create({ callbackUrl: target.url('/'), delay: 3600 });
    await assert.rejects(client.tasks.create({ callbackUrl: target.url('/'), delay: 3600 }),
      check(RateLimitError, { status: 429, code: 'queue_full', retryAfter: 1, field: null }));
    assert.equal((await client.tasks.list()).tasks.length, 1);
  } finally { await stopDaemon(db); }
});

test('503 answers map to UnavailableError (unavailable and shutting_down), with retryAfter', async () => {
  // The daemon's own 503s are produced for real in retry.test.mjs; here the
  // two documented bodies are served by a fake, so every field is checked.
  const fake = await startFake([
    { status: 503, headers: { 'retry-after': '7' }, body: { error: { code: 'unavailable', message: 'the change could not be stored' } } },
    { status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'shutting_down', message: 'the server is shutting down; retry shortly' } } },
  ]);
  try {
    const client = new AsyncQueue({ baseUrl: fake.url(''), maxRetries: 0 });
    await assert.rejects(client.tasks.get('x'), check(UnavailableError, { status: 503, code: 'unavailable', retryAfter: 7 }));
    await assert.rejects(client.tasks.get('x'), check(UnavailableError, { status: 503, code: 'shutting_down', retryAfter: 1 }));
  } finally { await fake.close(); }
});

test('an answer that is not the API\'s JSON: http_<status> codes, invalid_response for 2xx', async () => {
  const fake = await startFake([
    { status: 502, headers: { 'content-type': 'text/html' }, body: '<html>Bad Gateway</html>' },
    { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>hello</html>' },
  ]);
  try {
    const client = new AsyncQueue({ baseUrl: fake.url(''), maxRetries: 0 });
    await assert.rejects(client.tasks.cancel('x'), (e) => {
      assert.equal(e.constructor, AsyncQueueError);
      assert.equal(e.status, 502);
      assert.equal(e.code, 'http_502');
      assert.equal(e.body, '<html>Bad Gateway</html>');
      return true;
    });
    await assert.rejects(client.tasks.cancel('x'), (e) => e.code === 'invalid_response' && e.status === 200);
  } finally { await fake.close(); }
});

test('nothing listening: NetworkError (status 0, network_error); GETs retried, a cancel not', async () => {
  const port = await closedPort();
  const log = [];
  const client = new AsyncQueue({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 2, fetch: recordingFetch(log) });
  await assert.rejects(client.tasks.get('x'), check(NetworkError, { status: 0, code: 'network_error' }));
  assert.equal(log.length, 3, 'GET: the first try and 2 retries');
  log.length = 0;
  await assert.rejects(client.tasks.cancel('x'), check(NetworkError, { code: 'network_error' }));
  assert.equal(log.length, 1, 'a cancel is not repeated after a network failure');
  const e = await client.tasks.cancel('x').catch((err) => err);
  assert.ok(e.cause, 'the underlying fetch error is the cause');
});

test('no answer within timeoutMs: TimeoutError (a NetworkError with code timeout)', async () => {
  const hang = await startFake([{ hang: true }]);
  try {
    const client = new AsyncQueue({ baseUrl: hang.url(''), timeoutMs: 200, maxRetries: 1 });
    const t0 = Date.now();
    await assert.rejects(client.tasks.get('x'), check(TimeoutError, { code: 'timeout', status: 0 }));
    assert.ok(Date.now() - t0 >= 400, 'two tries of 200 ms');
    assert.equal(hang.requests.length, 2);
    await assert.rejects(client.tasks.cancel('x'), (e) => e instanceof NetworkError && e.code === 'timeout');
    assert.equal(hang.requests.length, 3, 'a cancel is tried once');
  } finally { await hang.close(); }
});

test('an AbortSignal stops a call, and the abort reason is thrown as is', async () => {
  const hang = await startFake([{ hang: true }]);
  try {
    const client = new AsyncQueue({ baseUrl: hang.url('') });
    const ac = new AbortController();
    const p = client.tasks.get('x', { signal: ac.signal });
    await hang.waitForRequests(1);
    ac.abort(new Error('user gave up'));
    await assert.rejects(p, /user gave up/);
    await assert.rejects(client.tasks.wait('x', { signal: AbortSignal.abort() }), (e) => e.name === 'AbortError');
  } finally { await hang.close(); }
});

test('the errors raised are what the raw API answers', async () => {
  const raw = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'ftp://x.example.com' });
  const e = await aq.tasks.create({ callbackUrl: 'ftp://x.example.com' }).catch((err) => err);
  assert.equal(e.status, raw.status);
  assert.deepEqual(e.body, raw.body);
  assert.equal(e.message, raw.body.error.message);
});

test('a redirect in front of the API is an error, never followed (a POST would come back a GET)', async () => {
  // A proxy that answers the first request 301 (as an http -> https
  // redirect does) and forwards the rest to the daemon.
  const proxy = await startProxy(d.url, (req, n) => (n === 1
    ? { status: 301, headers: { location: `${proxy.url}${req.url}` }, body: '' } : 'forward'));
  try {
    const client = new AsyncQueue({ baseUrl: proxy.url, maxRetries: 2 });
    const before = (await aq.tasks.list({ limit: 200 })).tasks.length;
    const got = await client.tasks.create({ callbackUrl: target.url('/r'), delay: 3600 }).then(
      (v) => ({ value: v }), (e) => ({ error: e }));
    assert.ok(got.error, `create resolved with ${JSON.stringify(got.value)?.slice(0, 120)}`);
    assert.equal(got.error.constructor, AsyncQueueError);
    assert.equal(got.error.status, 301);
    assert.equal(got.error.code, 'unexpected_redirect');
    assert.match(got.error.message, new RegExp(`redirected \\(301 to ${proxy.url}/v1/tasks\\)`));
    assert.equal(proxy.requests.length, 1, 'not followed, not retried');
    assert.equal((await aq.tasks.list({ limit: 200 })).tasks.length, before, 'no task made');
  } finally { await proxy.close(); }
});
