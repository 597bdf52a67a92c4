// The happy path in detail: what the target receives (method, headers, body
// as given), what the webhook says, and what GET shows afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { scope, api, waitForStatus, waitForWebhook, runBinary } from './lib/harness.mjs';

test('a JSON payload reaches the target as application/json with the AsyncQueue headers, and the outcome reaches the webhook', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200, headers: { 'X-Answer': 'yes' }, body: { image: 'x.png', n: 1 } }]);
  const hook = await s.fake([{ status: 204 }]);
  const d = await s.daemon();
  const version = (await runBinary(['--version'])).stdout.trim().split(' ')[1];

  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/generate?model=big'),
    headers: { 'X-Model': 'big' },
    payload: { prompt: 'a lighthouse', n: [1, 2, 3], nested: { ok: true } },
    webhookUrl: hook.url('/on-complete'),
    queue: 'images',
    retries: 2,
    timeout: 30,
    metadata: { userId: 42 },
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7');
  assert.equal(created.headers.get('location'), `/v1/tasks/${id}`);
  assert.equal(created.body.status, 'queued');
  assert.equal(created.body.method, 'POST');
  assert.equal(created.body.queue, 'images');
  assert.equal(created.body.retries, 2);
  assert.equal(created.body.timeout, 30);
  assert.deepEqual(created.body.headers, { 'X-Model': 'big' });
  assert.deepEqual(created.body.metadata, { userId: 42 });

  const [call] = await target.waitForRequests(1);
  assert.equal(call.method, 'POST');
  assert.equal(call.url, '/generate?model=big');
  assert.equal(call.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(call.body), { prompt: 'a lighthouse', n: [1, 2, 3], nested: { ok: true } });
  assert.equal(call.headers['x-model'], 'big');
  assert.equal(call.headers['asyncqueue-task-id'], id);
  assert.equal(call.headers['asyncqueue-attempt'], '1');
  assert.equal(call.headers['asyncqueue-queue'], 'images');
  assert.equal(call.headers['user-agent'], `AsyncQueue/${version}`);
  assert.ok(!call.body.includes('userId') && !JSON.stringify(call.headers).includes('userId'),
    'metadata is never sent to the target');

  const [delivery] = await hook.waitForRequests(1);
  assert.equal(delivery.method, 'POST');
  assert.equal(delivery.url, '/on-complete');
  assert.equal(delivery.headers['content-type'], 'application/json');
  assert.match(delivery.headers['webhook-id'], /^msg_/);
  assert.match(delivery.headers['webhook-timestamp'], /^\d+$/);
  assert.match(delivery.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/);
  const body = JSON.parse(delivery.body);
  assert.equal(body.taskId, id);
  assert.equal(body.status, 'completed');
  assert.equal(body.queue, 'images');
  assert.deepEqual(body.result, { image: 'x.png', n: 1 });
  assert.equal(body.response.statusCode, 200);
  assert.equal(body.response.headers['x-answer'], 'yes', 'response header names are lower case');
  assert.equal(body.response.headers['content-type'], 'application/json');
  assert.equal(typeof body.response.durationMs, 'number');
  assert.equal(body.attempts, 1);
  assert.equal(body.error, null);
  assert.deepEqual(body.metadata, { userId: 42 });
  assert.match(body.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.match(body.finishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const task = await waitForStatus(d.url, id, 'completed');
  assert.equal(task.attempts, 1);
  assert.deepEqual(task.result, { image: 'x.png', n: 1 });
  assert.equal(task.error, null);
  assert.equal(task.attemptHistory.length, 1);
  assert.equal(task.attemptHistory[0].n, 1);
  assert.equal(task.attemptHistory[0].statusCode, 200);
  assert.equal(task.attemptHistory[0].error, null);
  const wh = (await waitForWebhook(d.url, id, 'delivered')).webhook;
  assert.equal(wh.id, delivery.headers['webhook-id'], 'the task shows the id its webhook carried');
  assert.equal(wh.attempts, 1);
  assert.equal(wh.lastStatusCode, 204);
  assert.equal(hook.requests.length, 1);
  assert.equal(target.requests.length, 1);
});

test('method and headers are passed through; a Content-Type in headers replaces the default', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 201, body: 'created' }]);
  const d = await s.daemon();
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/items/7'),
    method: 'put',
    headers: {
      'Content-Type': 'application/vnd.api+json',
      'X-Trace': 'abc 123',
      Authorization: 'Bearer downstream-token',
      'X-Empty': '',
      'X-Blank': '   ',
      'X-Padded': ' \tvalue\t ',
    },
    payload: { data: { id: 7 } },
    retries: 0,
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  assert.equal(created.body.method, 'PUT', 'the method is normalised to upper case');

  const [call] = await target.waitForRequests(1);
  assert.equal(call.method, 'PUT');
  assert.equal(call.url, '/items/7');
  assert.equal(call.headers['content-type'], 'application/vnd.api+json', 'one Content-Type, the task\'s own');
  assert.equal(call.headers['x-trace'], 'abc 123');
  assert.equal(call.headers.authorization, 'Bearer downstream-token');
  assert.equal(call.headers['x-empty'], '', 'an empty header value is sent, not dropped');
  // Spaces and tabs around a value are not part of it (RFC 9110 5.5); a
  // value of only spaces was dropped (libcurl's "remove this header").
  assert.equal(call.headers['x-blank'], '', 'a value of only spaces is sent empty');
  assert.equal(call.headers['x-padded'], 'value');
  assert.deepEqual(JSON.parse(call.body), { data: { id: 7 } });

  const task = await waitForStatus(d.url, created.body.id, 'completed');
  assert.equal(task.response.statusCode, 201);
  assert.equal(task.result, 'created', 'a non-JSON answer is kept as a string');
});

test('a raw body string is sent byte for byte as text/plain; charset=utf-8', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200, headers: { 'content-type': 'text/plain' }, body: 'plain answer' }]);
  const d = await s.daemon();
  const raw = 'line one\nline "two" \\ ü € 😀\n{not json';
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/raw'), body: raw });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  assert.equal(created.body.body, raw);

  const [call] = await target.waitForRequests(1);
  assert.equal(call.method, 'POST');
  assert.equal(call.headers['content-type'], 'text/plain; charset=utf-8');
  assert.ok(call.raw.equals(Buffer.from(raw, 'utf8')), `exact bytes, got ${JSON.stringify(call.body)}`);
  assert.equal(call.headers['content-length'], String(Buffer.byteLength(raw)));

  const task = await waitForStatus(d.url, created.body.id, 'completed');
  assert.equal(task.result, 'plain answer');
});

test('each method reaches the target as that method; without payload or body the call has no body', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const d = await s.daemon();
  const cases = [
    { method: 'GET' }, { method: 'HEAD' }, { method: 'DELETE' }, { method: 'OPTIONS' },
    { method: 'PATCH', payload: { op: 'x' } }, { method: 'POST' },
  ];
  const ids = {};
  for (const c of cases) {
    const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url(`/m/${c.method}`), retries: 0, ...c });
    assert.equal(r.status, 202, `${c.method}: ${JSON.stringify(r.body)}`);
    ids[c.method] = r.body.id;
  }
  await target.waitForRequests(cases.length);
  for (const c of cases) {
    const call = target.requests.find((q) => q.url === `/m/${c.method}`);
    assert.ok(call, `a call for ${c.method}`);
    assert.equal(call.method, c.method);
    assert.equal(call.headers['asyncqueue-task-id'], ids[c.method]);
    if (c.payload) {
      assert.deepEqual(JSON.parse(call.body), c.payload);
      assert.equal(call.headers['content-type'], 'application/json');
    } else {
      assert.equal(call.body, '', `${c.method} has no body`);
      assert.ok(!call.headers['content-length'] || call.headers['content-length'] === '0', `${c.method}: no body bytes`);
    }
    if (c.method === 'GET' || c.method === 'HEAD') {
      assert.equal(call.headers['content-type'], undefined, `${c.method} has no Content-Type`);
    }
  }
  for (const c of cases) {
    const task = await waitForStatus(d.url, ids[c.method], 'completed');
    assert.equal(task.attempts, 1);
  }
});

// docs/api.md: payload is sent with application/json, body with text/plain,
// each "unless headers sets one"; a task with neither has no Content-Type to
// send (libcurl would add a form Content-Type to an empty POSTFIELDS body).
test('a task without payload or body sends no invented Content-Type (POST, DELETE, OPTIONS)', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const d = await s.daemon();
  for (const method of ['POST', 'DELETE', 'OPTIONS']) {
    const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url(`/m/${method}`), method, retries: 0 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  await target.waitForRequests(3);
  for (const call of target.requests) {
    assert.equal(call.headers['content-type'], undefined, `${call.method} carries Content-Type ${call.headers['content-type']}`);
  }
});

// payload and metadata are kept as the client wrote them: a number a double
// cannot hold (a 20-digit order id) reaches the target, the API and the
// webhook unchanged, and so does the target's JSON result.
test('JSON is passed through verbatim: big numbers in payload, metadata and result are not rounded', async (t) => {
  const s = scope(t);
  const result = '{"invoice": 98765432109876543210, "total": 10.50}';
  const target = await s.fake([{ status: 200, body: result, headers: { 'content-type': 'application/json' } }]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon();
  const raw = `{"callbackUrl": "${target.url('/x')}", "webhookUrl": "${hook.url('/h')}",
    "payload": {"order": 12345678901234567890, "price": 1.0},
    "metadata": {"user": 12345678901234567891}}`;
  const created = await api(d.url, 'POST', '/v1/tasks', raw);
  assert.equal(created.status, 202);
  const [call] = await target.waitForRequests(1);
  assert.equal(call.body, '{"order": 12345678901234567890, "price": 1.0}');
  const [delivery] = await hook.waitForRequests(1);
  assert.match(delivery.body, /"result":\{"invoice": 98765432109876543210, "total": 10.50\}/);
  assert.match(delivery.body, /"metadata":\{"user": 12345678901234567891\}/);
  await waitForStatus(d.url, created.body.id, 'completed');
  const res = await fetch(`${d.url}/v1/tasks/${created.body.id}`);
  const text = await res.text();
  assert.match(text, /"payload":\{"order": 12345678901234567890, "price": 1.0\}/);
  assert.match(text, /"result":\{"invoice": 98765432109876543210, "total": 10.50\}/);
  JSON.parse(text); // and it is still one valid JSON document
});

test('response header lines whose names are not HTTP tokens are dropped, so the task and its webhook stay strict UTF-8 JSON', async (t) => {
  const s = scope(t);
  // A target that writes its answer by hand: Node's own server refuses such names.
  const sockets = new Set();
  const target = createNetServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.once('data', () => {
      sock.end(Buffer.concat([
        Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Good: yes\r\n'),
        Buffer.from([0xff, 0xfe]), Buffer.from('-bad: 1\r\n'),
        Buffer.from('X Space: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'),
      ]));
    });
  });
  await new Promise((r) => target.listen(0, '127.0.0.1', r));
  s.defer(async () => {
    for (const sock of sockets) sock.destroy();
    await new Promise((r) => target.close(r));
  });
  const hook = await s.fake([{ status: 204 }]);
  const d = await s.daemon();
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: `http://127.0.0.1:${target.address().port}/run`,
    webhookUrl: hook.url('/done'),
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const [delivery] = await hook.waitForRequests(1);
  const strict = new TextDecoder('utf-8', { fatal: true });
  const webhook = JSON.parse(strict.decode(delivery.raw));
  assert.equal(webhook.status, 'completed');
  assert.deepEqual(webhook.response.headers,
    { 'content-type': 'application/json', 'x-good': 'yes', 'content-length': '2', connection: 'close' });
  const res = await fetch(`${d.url}/v1/tasks/${created.body.id}`);
  const task = JSON.parse(strict.decode(new Uint8Array(await res.arrayBuffer())));
  assert.deepEqual(task.response.headers, webhook.response.headers);
});

test('a JSON answer with numbers JSON does not allow (01, 1.) is kept as text, so the task and its webhook stay JSON', async (t) => {
  const s = scope(t);
  const answer = '{"n": 01, "m": 1.}';
  const target = await s.fake([{ status: 200, body: answer, headers: { 'content-type': 'application/json' } }]);
  const hook = await s.fake([{ status: 204 }]);
  const d = await s.daemon();
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/x'), webhookUrl: hook.url('/h') });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const [delivery] = await hook.waitForRequests(1);
  const webhook = JSON.parse(delivery.body); // throws if the answer went in raw
  assert.equal(webhook.status, 'completed');
  assert.equal(webhook.result, answer);
  const res = await fetch(`${d.url}/v1/tasks/${created.body.id}`);
  assert.equal(JSON.parse(await res.text()).result, answer);
});
