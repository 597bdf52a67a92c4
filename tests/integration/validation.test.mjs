// Bad requests: each gets the documented status, error code and field, the
// error is JSON with a message, and nothing is stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope, api, rawRequest, countTasks } from './lib/harness.mjs';

const MAX_BODY = 1024; // the smallest max_body_bytes the daemon accepts

/** Asserts an API error: status, error.code, error.field (undefined = absent). */
function assertError(r, status, code, field, what) {
  const ctx = `${what}: got ${r.status} ${JSON.stringify(r.body)}`;
  assert.equal(r.status, status, ctx);
  assert.match(String(r.headers.get?.('content-type') ?? r.headers['content-type']), /^application\/json/, ctx);
  assert.equal(r.body?.error?.code, code, ctx);
  assert.equal(r.body.error.field, field, ctx);
  assert.equal(typeof r.body.error.message, 'string', ctx);
  assert.ok(r.body.error.message.length > 10, `${ctx}: the message says what to fix`);
}

test('invalid task bodies: right status, code and field, and the task count does not change', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const d = await s.daemon();
  const url = target.url('/ok');
  // One valid task first, so "unchanged" is not just "still empty".
  const ok = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, delay: 3600 });
  assert.equal(ok.status, 202);
  assert.equal(await countTasks(d.db), 1);

  const cases = [
    ['malformed JSON', '{"callbackUrl": "http://x/",', 'invalid_json'],
    ['trailing garbage', `{"callbackUrl": "${url}"} x`, 'invalid_json'],
    ['empty body', '', 'invalid_json'],
    ['duplicate key', `{"callbackUrl": "${url}", "callbackUrl": "${url}"}`, 'invalid_json'],
    ['NUL in a string', `{"callbackUrl": "${url}", "body": "a\\u0000b"}`, 'invalid_json'],
    // cJSON reads these; JSON does not allow them, and kept as written they
    // went on to the target (the payload) or came out cut (a \u with no
    // hex digits read as NUL: the header value "a\uZZZZb" stored as "a").
    ['a number with a leading zero', `{"callbackUrl": "${url}", "payload": {"n": 01}}`, 'invalid_json'],
    ['a number ending in a point', `{"callbackUrl": "${url}", "payload": [1.]}`, 'invalid_json'],
    ['a number starting with a point', `{"callbackUrl": "${url}", "metadata": {"n": -.5}}`, 'invalid_json'],
    ['\\u without hex digits', `{"callbackUrl": "${url}", "headers": {"X-A": "a\\uZZZZb"}}`, 'invalid_json'],
    ['an escape JSON does not have', `{"callbackUrl": "${url}", "payload": ["\\x41"]}`, 'invalid_json'],
    ['nested deeper than 32', `{"callbackUrl": "${url}", "payload": ${'['.repeat(40)}${']'.repeat(40)}}`, 'invalid_json'],
    ['not an object', '[1, 2]', 'invalid_body'],
    ['a string', '"hello"', 'invalid_body'],
    ['missing callbackUrl', { payload: { a: 1 } }, 'missing_field', 'callbackUrl'],
    ['callbackUrl not a string', { callbackUrl: 42 }, 'invalid_field', 'callbackUrl'],
    ['callbackUrl relative', { callbackUrl: '/just/a/path' }, 'invalid_field', 'callbackUrl'],
    ['callbackUrl ftp', { callbackUrl: 'ftp://example.com/file' }, 'invalid_field', 'callbackUrl'],
    ['callbackUrl file', { callbackUrl: 'file:///etc/passwd' }, 'invalid_field', 'callbackUrl'],
    ['callbackUrl gopher', { callbackUrl: 'gopher://example.com/' }, 'invalid_field', 'callbackUrl'],
    ['callbackUrl too long', { callbackUrl: `http://example.com/${'a'.repeat(8200)}` }, 'invalid_field', 'callbackUrl'],
    ['unknown field (typo)', { callbackURL: url }, 'unknown_field', 'callbackURL'],
    ['unknown field beside valid ones', { callbackUrl: url, retry: 3 }, 'unknown_field', 'retry'],
    ['retries as a string', { callbackUrl: url, retries: '3' }, 'invalid_field', 'retries'],
    ['retries fractional', { callbackUrl: url, retries: 1.5 }, 'invalid_field', 'retries'],
    ['retries negative', { callbackUrl: url, retries: -1 }, 'invalid_field', 'retries'],
    ['retries above max_retries', { callbackUrl: url, retries: 101 }, 'invalid_field', 'retries'],
    ['timeout as a string', { callbackUrl: url, timeout: '30' }, 'invalid_field', 'timeout'],
    ['timeout too small', { callbackUrl: url, timeout: 0.01 }, 'invalid_field', 'timeout'],
    ['timeout above max_timeout', { callbackUrl: url, timeout: 86401 }, 'invalid_field', 'timeout'],
    ['delay negative', { callbackUrl: url, delay: -5 }, 'invalid_field', 'delay'],
    ['method unknown', { callbackUrl: url, method: 'FETCH' }, 'invalid_field', 'method'],
    ['method not a string', { callbackUrl: url, method: 1 }, 'invalid_field', 'method'],
    ['headers an array', { callbackUrl: url, headers: ['X-A: 1'] }, 'invalid_field', 'headers'],
    ['header value a number', { callbackUrl: url, headers: { 'X-A': 1 } }, 'invalid_field', 'headers'],
    ['header value with a line break', { callbackUrl: url, headers: { 'X-A': 'a\r\nX-Injected: 1' } }, 'invalid_field', 'headers'],
    ['header value with a control character', { callbackUrl: url, headers: { 'X-A': 'a\u0001b' } }, 'invalid_field', 'headers'],
    ['header value with DEL', { callbackUrl: url, headers: { 'X-A': 'a\u007fb' } }, 'invalid_field', 'headers'],
    ['header name not a token', { callbackUrl: url, headers: { 'X A': 'v' } }, 'invalid_field', 'headers'],
    ['hop-by-hop header', { callbackUrl: url, headers: { 'Transfer-Encoding': 'chunked' } }, 'invalid_field', 'headers'],
    ['Host header', { callbackUrl: url, headers: { Host: 'evil.example' } }, 'invalid_field', 'headers'],
    ['reserved AsyncQueue- header', { callbackUrl: url, headers: { 'AsyncQueue-Attempt': '9' } }, 'invalid_field', 'headers'],
    ['body not a string', { callbackUrl: url, body: { a: 1 } }, 'invalid_field', 'body'],
    ['payload with GET', { callbackUrl: url, method: 'GET', payload: { a: 1 } }, 'invalid_field', 'payload'],
    ['payload and body', { callbackUrl: url, payload: { a: 1 }, body: 'x' }, 'conflicting_fields', 'body'],
    ['delay and runAt', { callbackUrl: url, delay: 1, runAt: '2030-01-01T00:00:00Z' }, 'conflicting_fields', 'runAt'],
    ['runAt not a time', { callbackUrl: url, runAt: 'tomorrow' }, 'invalid_field', 'runAt'],
    ['webhookUrl not http', { callbackUrl: url, webhookUrl: 'mailto:a@b.c' }, 'invalid_field', 'webhookUrl'],
    ['queue with a space', { callbackUrl: url, queue: 'my queue' }, 'invalid_field', 'queue'],
    ['queue too long', { callbackUrl: url, queue: 'q'.repeat(65) }, 'invalid_field', 'queue'],
    ['queue "." (a URL path resolves it away)', { callbackUrl: url, queue: '.' }, 'invalid_field', 'queue'],
    ['queue ".."', { callbackUrl: url, queue: '..' }, 'invalid_field', 'queue'],
  ];
  for (const [what, body, code, field] of cases) {
    const r = await api(d.url, 'POST', '/v1/tasks', body);
    assertError(r, 400, code, field, what);
  }
  const ftp = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'ftp://example.com/file' });
  assert.match(ftp.body.error.message, /http/, 'the message says which schemes are allowed');
  assert.equal(await countTasks(d.db), 1, 'no invalid request stored anything');
  assert.equal(target.requests.length, 0);
});

test('a body over max_body_bytes is refused with 413, by Content-Length and while streaming a chunked upload', async (t) => {
  const s = scope(t);
  const d = await s.daemon({ args: ['--max-body-bytes', String(MAX_BODY)] });
  const big = JSON.stringify({ callbackUrl: 'http://127.0.0.1:9/', body: 'x'.repeat(MAX_BODY) });

  const byLength = await rawRequest(`${d.url}/v1/tasks`, {
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) },
    body: big,
  });
  assertError(byLength, 413, 'body_too_large', undefined, 'Content-Length over the limit');

  const chunks = [];
  for (let i = 0; i < big.length; i += 100) chunks.push(big.slice(i, i + 100));
  const chunked = await rawRequest(`${d.url}/v1/tasks`, {
    headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    chunks,
  });
  assertError(chunked, 413, 'body_too_large', undefined, 'chunked upload without Content-Length');

  // The limit is the limit, not a rough guess: a chunked body just under it
  // is accepted.
  const fits = JSON.stringify({ callbackUrl: 'http://127.0.0.1:9/', delay: 3600, body: 'x'.repeat(MAX_BODY - 100) });
  assert.ok(Buffer.byteLength(fits) <= MAX_BODY);
  const small = await rawRequest(`${d.url}/v1/tasks`, {
    headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    chunks: [fits.slice(0, 500), fits.slice(500)],
  });
  assert.equal(small.status, 202, JSON.stringify(small.body));
  assert.equal(await countTasks(d.db), 1, 'only the task that fits was stored');
});

test('wrong or missing Content-Type is 415', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const body = JSON.stringify({ callbackUrl: 'http://127.0.0.1:9/' });
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data; boundary=x']) {
    const r = await api(d.url, 'POST', '/v1/tasks', body, { 'content-type': ct });
    assertError(r, 415, 'unsupported_media_type', undefined, ct);
  }
  const none = await rawRequest(`${d.url}/v1/tasks`, { headers: { 'content-length': String(body.length) }, body });
  assertError(none, 415, 'unsupported_media_type', undefined, 'no Content-Type');
  const withCharset = await api(d.url, 'POST', '/v1/tasks', JSON.stringify({ callbackUrl: 'http://127.0.0.1:9/', delay: 3600 }),
    { 'content-type': 'Application/JSON; charset=utf-8' });
  assert.equal(withCharset.status, 202, 'media type parameters and case do not matter');
  assert.equal(await countTasks(d.db), 1);
});

test('unknown routes are 404, wrong methods 405 with Allow, bad or unknown task ids 404', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  for (const path of ['/v2/tasks', '/v1/task', '/v1/tasks/', '/healthz/extra', '/v1', '/nothing']) {
    const r = await api(d.url, 'GET', path);
    assertError(r, 404, 'not_found', undefined, `GET ${path}`);
  }
  // The root is the way to the dashboard.
  const root = await fetch(`${d.url}/`, { redirect: 'manual' });
  assert.equal(root.status, 302);
  assert.equal(root.headers.get('location'), '/dashboard/');
  const m1 = await api(d.url, 'DELETE', '/v1/tasks');
  assertError(m1, 405, 'method_not_allowed', undefined, 'DELETE /v1/tasks');
  assert.equal(m1.headers.get('allow'), 'GET, HEAD, POST');
  const m2 = await api(d.url, 'PUT', '/v1/tasks');
  assertError(m2, 405, 'method_not_allowed', undefined, 'PUT /v1/tasks');
  assert.equal(m2.headers.get('allow'), 'GET, HEAD, POST');
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/', delay: 3600 });
  assert.equal(created.status, 202);
  const m3 = await api(d.url, 'POST', `/v1/tasks/${created.body.id}`, {});
  assertError(m3, 405, 'method_not_allowed', undefined, 'POST /v1/tasks/{id}');
  assert.match(m3.headers.get('allow'), /\bGET\b/);
  const m4 = await api(d.url, 'DELETE', '/healthz');
  assertError(m4, 405, 'method_not_allowed', undefined, 'DELETE /healthz');
  assert.match(m4.headers.get('allow'), /\bGET\b/);

  for (const id of ['not-a-uuid', '123', `${created.body.id}x`, created.body.id.slice(0, -1), '01a221b7-4f1f-707d-9c40-a269a508bd38']) {
    const r = await api(d.url, 'GET', `/v1/tasks/${id}`);
    assertError(r, 404, 'not_found', undefined, `GET /v1/tasks/${id}`);
  }
  const upper = await api(d.url, 'GET', `/v1/tasks/${created.body.id.toUpperCase()}`);
  assert.equal(upper.status, 200, 'ids are case-insensitive UUIDs');
  assert.equal(upper.body.id, created.body.id);
  assert.equal(await countTasks(d.db), 1);
});

test('an error that quotes a name cut inside a character is still UTF-8 JSON', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const name = `${'a'.repeat(63)}é`; // the message and the field keep 63 and 64 bytes of it
  const res = await fetch(`${d.url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"callbackUrl":"https://example.com/","${name}":1}`,
  });
  assert.equal(res.status, 400);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(await res.arrayBuffer()));
  const { error } = JSON.parse(text);
  assert.equal(error.code, 'unknown_field');
  assert.equal(error.field, `${'a'.repeat(63)}`);
  assert.ok(error.message.includes(`'${'a'.repeat(63)}\ufffd'`), error.message);
  assert.equal(await countTasks(d.db), 0);
});
