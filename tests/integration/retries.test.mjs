// Retry decisions against the real binary: which answers are retried, the
// backoff between attempts, Retry-After, timeouts, and what the task and its
// webhook record. Backoff runs without jitter (--retry-jitter false), so the
// wait before retry n is exactly retry_base * 2^(n-1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { scope, api, waitForStatus, waitForWebhook, sleep } from './lib/harness.mjs';

const BASE_MS = 250;
// Date.now() at the fake vs the daemon's clock, and the fake recording a
// request a little after the daemon decided: only a lower bound is exact.
const SLACK_MS = 25;

test('500, 500, 200: three attempts with growing gaps, all recorded, one webhook with attempts 3', async (t) => {
  const s = scope(t);
  const target = await s.fake([
    { status: 500, body: 'boom 1' },
    { status: 500, body: 'boom 2' },
    { status: 200, body: { done: true } },
  ]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon({ args: ['--retry-base', `${BASE_MS}ms`, '--retry-jitter', 'false'] });

  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/flaky'), payload: { x: 1 }, webhookUrl: hook.url('/hook'), retries: 3,
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;

  const calls = await target.waitForRequests(3);
  assert.deepEqual(calls.map((c) => c.headers['asyncqueue-attempt']), ['1', '2', '3']);
  for (const c of calls) {
    assert.equal(c.headers['asyncqueue-task-id'], id);
    assert.deepEqual(JSON.parse(c.body), { x: 1 }, 'every attempt carries the same payload');
  }
  const gap1 = calls[1].at - calls[0].at;
  const gap2 = calls[2].at - calls[1].at;
  assert.ok(gap1 >= BASE_MS - SLACK_MS, `first retry waited ${gap1} ms, want >= ~${BASE_MS}`);
  // The doubled lower bound is what proves the backoff grows; a gap1 < gap2
  // comparison would add nothing but a way to flake on a loaded machine.
  assert.ok(gap2 >= 2 * BASE_MS - SLACK_MS, `second retry waited ${gap2} ms, want >= ~${2 * BASE_MS}`);

  const task = await waitForWebhook(d.url, id, 'delivered');
  assert.equal(task.status, 'completed');
  assert.equal(task.attempts, 3);
  assert.deepEqual(task.result, { done: true });
  assert.equal(task.error, null);
  assert.deepEqual(task.attemptHistory.map((a) => a.n), [1, 2, 3]);
  assert.deepEqual(task.attemptHistory.map((a) => a.statusCode), [500, 500, 200]);
  assert.deepEqual(task.attemptHistory.map((a) => a.error?.code ?? null), ['http_error', 'http_error', null]);
  for (const a of task.attemptHistory) {
    assert.ok(Date.parse(a.finishedAt) >= Date.parse(a.startedAt), 'an attempt ends after it starts');
  }
  assert.ok(Date.parse(task.attemptHistory[1].startedAt) - Date.parse(task.attemptHistory[0].finishedAt) >= BASE_MS - SLACK_MS);

  // Delivered means the receiver's answer was recorded, so every delivery
  // the daemon made is already in hook.requests.
  assert.equal(hook.requests.length, 1, 'the webhook is sent once, for the final outcome only');
  const body = JSON.parse(hook.requests[0].body);
  assert.equal(body.taskId, id);
  assert.equal(body.status, 'completed');
  assert.equal(body.attempts, 3);
  assert.equal(body.error, null);
  assert.deepEqual(body.result, { done: true });
  assert.equal(task.webhook.attempts, 1);
  assert.equal(target.requests.length, 3);
});

test('retries run out: 503 on every attempt fails the task after retries + 1 attempts', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 503 }]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon({ args: ['--retry-base', '20ms', '--retry-jitter', 'false'] });
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/down'), webhookUrl: hook.url('/hook'), retries: 2,
  });
  assert.equal(created.status, 202);
  const task = await waitForWebhook(d.url, created.body.id, 'delivered');
  assert.equal(task.status, 'failed');
  assert.equal(task.attempts, 3);
  assert.equal(task.error.code, 'http_error');
  assert.equal(task.response.statusCode, 503);
  assert.deepEqual(task.attemptHistory.map((a) => a.statusCode), [503, 503, 503]);
  assert.equal(target.requests.length, 3);
  const body = JSON.parse(hook.requests[0].body);
  assert.equal(body.status, 'failed');
  assert.equal(body.attempts, 3);
  assert.equal(body.error.code, 'http_error');
});

test('404 is not retried: one attempt, failed with http_error, webhook says so', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 404, body: { error: 'no such thing' } }, { status: 200 }]);
  const hook = await s.fake([{ status: 200 }]);
  // A tiny backoff: a wrongful retry would come within ~20 ms.
  const d = await s.daemon({ args: ['--retry-base', '20ms', '--retry-jitter', 'false'] });
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/missing'), webhookUrl: hook.url('/hook'), retries: 5,
  });
  assert.equal(created.status, 202);
  const id = created.body.id;

  const [delivery] = await hook.waitForRequests(1);
  const body = JSON.parse(delivery.body);
  assert.equal(body.taskId, id);
  assert.equal(body.status, 'failed');
  assert.equal(body.attempts, 1);
  assert.equal(body.error.code, 'http_error');
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(body.response.statusCode, 404);
  assert.deepEqual(body.result, { error: 'no such thing' });

  // Proving a negative: with a 20 ms backoff, 300 ms is >10 retry periods.
  await sleep(300);
  assert.equal(target.requests.length, 1, 'a 404 is never retried');
  const task = await waitForStatus(d.url, id, 'failed');
  assert.equal(task.attempts, 1);
  assert.equal(task.error.code, 'http_error');
  assert.equal(task.response.statusCode, 404);
  assert.equal(task.attemptHistory.length, 1);
  assert.equal(task.attemptHistory[0].statusCode, 404);
  assert.equal(task.attemptHistory[0].error.code, 'http_error');
});

test('408, 425 and 429 are retried, other 4xx (400, 401, 403, 410, 422) are not', async (t) => {
  const s = scope(t);
  const first = {};
  const target = await s.fake((req, n) => {
    const code = Number(req.url.slice(1));
    first[code] = (first[code] ?? 0) + 1;
    return { status: first[code] === 1 ? code : 200 };
  });
  const d = await s.daemon({ args: ['--retry-base', '20ms', '--retry-jitter', 'false'] });
  const codes = [408, 425, 429, 400, 401, 403, 410, 422];
  const ids = {};
  for (const code of codes) {
    const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url(`/${code}`), retries: 1 });
    assert.equal(r.status, 202);
    ids[code] = r.body.id;
  }
  for (const code of [408, 425, 429]) {
    const task = await waitForStatus(d.url, ids[code], ['completed', 'failed']);
    assert.equal(task.status, 'completed', `${code} is retried`);
    assert.deepEqual(task.attemptHistory.map((a) => a.statusCode), [code, 200]);
  }
  for (const code of [400, 401, 403, 410, 422]) {
    const task = await waitForStatus(d.url, ids[code], ['completed', 'failed']);
    assert.equal(task.status, 'failed', `${code} is not retried`);
    assert.equal(task.attempts, 1);
    assert.equal(task.error.code, 'http_error');
  }
});

test('a target that hangs past the task timeout: failed with timeout, and the target saw the request', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ hang: true }]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon();
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/slow'), payload: { p: 1 }, webhookUrl: hook.url('/hook'), retries: 0, timeout: 0.5,
  });
  assert.equal(created.status, 202);
  const id = created.body.id;
  const [call] = await target.waitForRequests(1);
  assert.equal(call.headers['asyncqueue-task-id'], id);

  const task = await waitForStatus(d.url, id, 'failed');
  assert.equal(task.attempts, 1);
  assert.equal(task.error.code, 'timeout');
  assert.equal(task.response, null, 'no response arrived');
  assert.equal(task.attemptHistory.length, 1);
  assert.equal(task.attemptHistory[0].statusCode, null);
  assert.equal(task.attemptHistory[0].error.code, 'timeout');
  assert.ok(task.attemptHistory[0].durationMs >= 450, `the attempt lasted ${task.attemptHistory[0].durationMs} ms, the timeout is 500`);
  const [delivery] = await hook.waitForRequests(1);
  const body = JSON.parse(delivery.body);
  assert.equal(body.status, 'failed');
  assert.equal(body.error.code, 'timeout');
  assert.equal(body.response, null);
  assert.equal(target.requests.length, 1, 'retries: 0 means one attempt');
});

test('a timed-out attempt is retried when retries remain', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ hang: true }, { status: 200, body: { late: 'but fine' } }]);
  const d = await s.daemon({ args: ['--retry-base', '20ms', '--retry-jitter', 'false'] });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/slow'), retries: 1, timeout: 0.3 });
  assert.equal(created.status, 202);
  const task = await waitForStatus(d.url, created.body.id, ['completed', 'failed']);
  assert.equal(task.status, 'completed');
  assert.deepEqual(task.attemptHistory.map((a) => a.error?.code ?? null), ['timeout', null]);
  assert.equal(target.requests.length, 2);
});

test('Retry-After (seconds) replaces the backoff: the second attempt waits >= 1 s although retry_base is 10 ms', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 503, headers: { 'Retry-After': '1' } }, { status: 200 }]);
  const d = await s.daemon({ args: ['--retry-base', '10ms', '--retry-jitter', 'false'] });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/busy'), retries: 3 });
  assert.equal(created.status, 202);
  const calls = await target.waitForRequests(2);
  const gap = calls[1].at - calls[0].at;
  assert.ok(gap >= 1000 - SLACK_MS, `the retry came ${gap} ms after the 503 with Retry-After: 1`);
  assert.equal(calls[1].headers['asyncqueue-attempt'], '2');
  const task = await waitForStatus(d.url, created.body.id, 'completed');
  assert.deepEqual(task.attemptHistory.map((a) => a.statusCode), [503, 200]);
});

test('Retry-After as an HTTP date is honoured too', async (t) => {
  const s = scope(t);
  let retryAt = 0;
  const target = await s.fake((req, n) => {
    if (n > 1) return { status: 200 };
    // Two seconds ahead, rounded down to the second by the date format:
    // the daemon must wait until at least retryAt (>= 1 s from now).
    const date = new Date(Date.now() + 2000);
    retryAt = Math.floor(date.getTime() / 1000) * 1000;
    return { status: 429, headers: { 'Retry-After': date.toUTCString() } };
  });
  const d = await s.daemon({ args: ['--retry-base', '10ms', '--retry-jitter', 'false'] });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/busy'), retries: 3 });
  assert.equal(created.status, 202);
  const calls = await target.waitForRequests(2);
  assert.ok(calls[1].at >= retryAt - SLACK_MS, `the retry came ${retryAt - calls[1].at} ms before the Retry-After date`);
  await waitForStatus(d.url, created.body.id, 'completed');
});

test('what an attempt keeps: no result from a cut body; an oversized 503 is retried; a redirect loop is final', async (t) => {
  const s = scope(t);
  // Cut short: a status and headers, then 7 of 100 bytes and a close.
  const cut = createServer((sock) => sock.once('data', () => {
    sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\npartial');
  }));
  await new Promise((r) => cut.listen(0, '127.0.0.1', r));
  s.defer(() => new Promise((r) => cut.close(r)));
  const big = await s.fake([{ status: 503, body: 'x'.repeat(4096) }, { status: 200, body: { ok: true } }]);
  const loop = await s.fake((req) => ({ status: 302, headers: { location: req.url } }));
  const d = await s.daemon({ args: ['--max-response-bytes', '1024', '--retry-base', '50ms', '--retry-jitter', 'false'] });

  const c = (await api(d.url, 'POST', '/v1/tasks', { callbackUrl: `http://127.0.0.1:${cut.address().port}/c`, retries: 0 })).body;
  const cutTask = await waitForStatus(d.url, c.id, 'failed');
  assert.equal(cutTask.error.code, 'connection_failed');
  assert.equal(cutTask.result, null, 'seven bytes of a hundred are no result');
  assert.equal(cutTask.response.statusCode, 200);

  const b = (await api(d.url, 'POST', '/v1/tasks', { callbackUrl: big.url('/b'), retries: 2 })).body;
  const bigTask = await waitForStatus(d.url, b.id, 'completed');
  assert.equal(bigTask.attempts, 2, 'the oversized 503 was retried');
  const att = (await api(d.url, 'GET', `/v1/tasks/${b.id}/attempts`)).body.attempts;
  assert.equal(att[0].statusCode, 503);
  assert.equal(att[0].error.code, 'response_too_large');

  const l = (await api(d.url, 'POST', '/v1/tasks', { callbackUrl: loop.url('/l'), followRedirects: true, retries: 3 })).body;
  const loopTask = await waitForStatus(d.url, l.id, 'failed');
  assert.equal(loopTask.attempts, 1, 'the same chain would loop again: not retried');
  assert.equal(loopTask.error.code, 'http_error');
  assert.match(loopTask.error.message, /max_redirects \(5\)/);
  assert.equal(loop.requests.length, 6);
});

test('followRedirects with a PUT body: 307 repeats it whole; 301 is not followed (it would arrive empty) and says why', async (t) => {
  const s = scope(t);
  const target = await s.fake((req) => (req.url === '/moved' ? { status: 301, headers: { location: '/final' } }
    : req.url === '/temp' ? { status: 307, headers: { location: '/final' } }
      : { status: 200, body: { got: req.body } }));
  const d = await s.daemon({ args: ['--retry-base', '50ms', '--retry-jitter', 'false'] });
  const make = (path) => api(d.url, 'POST', '/v1/tasks',
    { callbackUrl: target.url(path), method: 'PUT', payload: { p: 1 }, followRedirects: true, retries: 2 });
  const temp = (await make('/temp')).body;
  const done = await waitForStatus(d.url, temp.id, 'completed');
  assert.deepEqual(done.result, { got: '{"p":1}' }, 'the 307 repeated the PUT with its body');
  const moved = (await make('/moved')).body;
  const refused = await waitForStatus(d.url, moved.id, 'failed');
  assert.equal(refused.attempts, 1, 'not retried: the same redirect would come again');
  assert.equal(refused.error.code, 'http_error');
  assert.equal(refused.response.statusCode, 301);
  assert.match(refused.error.message, /without its body \(only 307 and 308 keep it\)/);
  const finals = target.requests.filter((r) => r.url === '/final');
  assert.equal(finals.length, 1, 'only the 307 reached /final');
  assert.equal(finals[0].method, 'PUT');
});
