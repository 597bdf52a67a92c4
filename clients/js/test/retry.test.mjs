// Automatic retries: 429 and 503 honouring Retry-After (seconds or an HTTP
// date), bounded by maxRetries; network failures and 502/504 only for
// idempotent requests.
//
// How the 503s are made:
//  - a real one: the daemon's database is locked by the sqlite3 CLI holding a
//    write transaction (with --busy-timeout 100ms), so the daemon cannot
//    commit and answers `503 unavailable` with `Retry-After: 1`; the test
//    releases the lock when it sees that 503, and the client's retry succeeds;
//  - scripted ones: a small proxy in front of the daemon answers 503 with a
//    chosen Retry-After (twice, then forwards to the daemon), which shows
//    the client waits what Retry-After says, in both of its forms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { AsyncQueue, RateLimitError, UnavailableError, NetworkError, parseRetryAfter } from 'asyncqueue-js';
import { startDaemon, startFake, startProxy, recordingFetch, api, waitFor, stopDaemon } from './helpers.mjs';

let d, target;
before(async () => {
  target = await startFake([{ status: 200, body: { ok: true } }]);
  d = await startDaemon({ args: ['--busy-timeout', '100ms'] });
});
after(async () => { await target?.close(); await stopDaemon(d); });

const unavailable = (retryAfter) => ({
  status: 503,
  headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter },
  body: { error: { code: 'unavailable', message: 'the change could not be stored; retry later' } },
});

async function countTasks(base, query = '') {
  return (await api(base, 'GET', `/v1/tasks?limit=200${query}`)).body.tasks.length;
}

test('503 with Retry-After: 1 twice, then the daemon: the create succeeds after waiting ~1 s each time', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n <= 2 ? unavailable('1') : 'forward'));
  try {
    const before = await countTasks(d.url, '&queue=r503');
    const aq = new AsyncQueue({ baseUrl: proxy.url, maxRetries: 3 });
    const t0 = Date.now();
    const task = await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'r503', delay: 3600 });
    const took = Date.now() - t0;
    assert.equal(task.status, 'queued');
    assert.equal(proxy.requests.length, 3);
    const [a, b, c] = proxy.requests;
    assert.ok(b.at - a.at >= 950, `waited ${b.at - a.at} ms after the first 503`);
    assert.ok(c.at - b.at >= 950, `waited ${c.at - b.at} ms after the second 503`);
    assert.ok(took < 5000, `took ${took} ms`);
    // The same request three times, with the same Idempotency-Key; one task.
    assert.equal(new Set(proxy.requests.map((r) => r.headers['idempotency-key'])).size, 1);
    assert.equal(new Set(proxy.requests.map((r) => r.body)).size, 1);
    assert.equal(await countTasks(d.url, '&queue=r503'), before + 1);
  } finally { await proxy.close(); }
});

test('Retry-After as an HTTP date is honoured too', async () => {
  let sentAt;
  const proxy = await startProxy(d.url, (req, n) => {
    if (n > 1) return 'forward';
    sentAt = Date.now();
    return unavailable(new Date(Date.now() + 2500).toUTCString());
  });
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const page = await aq.tasks.list({ limit: 1 });
    assert.ok(Array.isArray(page.tasks));
    assert.equal(proxy.requests.length, 2);
    // The date has whole seconds, so the wait is between 1.5 and 2.5 s.
    const waited = proxy.requests[1].at - sentAt;
    assert.ok(waited >= 1400 && waited < 4000, `waited ${waited} ms`);
  } finally { await proxy.close(); }
});

test('retries stop after maxRetries and throw the last error', async () => {
  const proxy = await startProxy(d.url, () => unavailable('0'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url, maxRetries: 3 });
    await assert.rejects(aq.tasks.get('x'), (e) => e instanceof UnavailableError && e.retryAfter === 0);
    assert.equal(proxy.requests.length, 4, '1 try + 3 retries');
    const none = new AsyncQueue({ baseUrl: proxy.url, maxRetries: 0 });
    await assert.rejects(none.queues.list(), UnavailableError);
    assert.equal(proxy.requests.length, 5);
  } finally { await proxy.close(); }
});

test('a Retry-After longer than a minute is not waited for: the error comes at once', async () => {
  const proxy = await startProxy(d.url, () => ({ ...unavailable('120') }));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url, maxRetries: 3 });
    const t0 = Date.now();
    await assert.rejects(aq.tasks.get('x'), (e) => e instanceof UnavailableError && e.retryAfter === 120);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(proxy.requests.length, 1);
  } finally { await proxy.close(); }
});

test('503 without Retry-After: retried after a short backoff', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? unavailable() : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    await aq.queues.list();
    const gap = proxy.requests[1].at - proxy.requests[0].at;
    assert.ok(gap >= 240 && gap < 2000, `backoff ${gap} ms`);
  } finally { await proxy.close(); }
});

test('a real 503 from the daemon (database locked) is retried after its Retry-After', async () => {
  const sq = spawn('sqlite3', [d.db], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  sq.stdout.on('data', (c) => { out += c; });
  const exited = new Promise((r) => sq.on('exit', r));
  try {
    sq.stdin.write("BEGIN IMMEDIATE; SELECT 'locked';\n");
    await waitFor(() => out.includes('locked'), { what: 'sqlite3 to hold the write lock' });
    const before = await countTasks(d.url, '&queue=locked');
    const log = [];
    const recording = recordingFetch(log);
    // Unlock the database as soon as the daemon has answered 503.
    const unlockingFetch = async (url, init) => {
      const res = await recording(url, init);
      if (res.status === 503 && !sq.stdin.destroyed) sq.stdin.end('ROLLBACK;\n.quit\n');
      return res;
    };
    const aq = new AsyncQueue({ baseUrl: d.url, fetch: unlockingFetch, maxRetries: 3 });
    const task = await aq.tasks.create({ callbackUrl: target.url('/'), queue: 'locked', delay: 3600 });
    assert.equal(task.status, 'queued');
    assert.deepEqual(log.map((l) => l.status), [503, 202], 'the real daemon said 503, then took it');
    assert.ok(log[1].at - log[0].at >= 950, `waited ${log[1].at - log[0].at} ms (Retry-After: 1)`);
    assert.equal(await countTasks(d.url, '&queue=locked'), before + 1, 'exactly one task');

    // And without retries, the same situation is an UnavailableError.
    const sq2 = spawn('sqlite3', [d.db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out2 = '';
    sq2.stdout.on('data', (c) => { out2 += c; });
    sq2.stdin.write("BEGIN IMMEDIATE; SELECT 'locked';\n");
    await waitFor(() => out2.includes('locked'), { what: 'the second lock' });
    try {
      const once = new AsyncQueue({ baseUrl: d.url, maxRetries: 0 });
      await assert.rejects(once.tasks.create({ callbackUrl: target.url('/'), queue: 'locked', delay: 3600 }),
        (e) => e instanceof UnavailableError && e.code === 'unavailable' && e.retryAfter === 1);
    } finally {
      sq2.stdin.end('ROLLBACK;\n.quit\n');
      await new Promise((r) => sq2.on('exit', r));
    }
    assert.equal(await countTasks(d.url, '&queue=locked'), before + 1, 'nothing stored by the refused create');
  } finally {
    if (!sq.stdin.destroyed) sq.stdin.end('ROLLBACK;\n.quit\n');
    await exited;
  }
});

test('429 queue_full from the real daemon is retried after Retry-After, and succeeds once there is room', async () => {
  const full = await startDaemon({ args: ['--max-backlog', '1'] });
  try {
    const first = (await api(full.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/'), delay: 3600 })).body;
    const log = [];
    const recording = recordingFetch(log);
    let freed = false;
    const freeingFetch = async (url, init) => {
      const res = await recording(url, init);
      if (res.status === 429 && !freed) {
        freed = true; // make room: cancel the task that fills the backlog
        assert.equal((await api(full.url, 'POST', `/v1/tasks/${first.id}/cancel`)).status, 200);
      }
      return res;
    };
    const aq = new AsyncQueue({ baseUrl: full.url, fetch: freeingFetch });
    const task = await aq.tasks.create({ callbackUrl: target.url('/'), delay: 3600 });
    assert.deepEqual(log.map((l) => l.status), [429, 202]);
    assert.ok(log[1].at - log[0].at >= 950, `waited ${log[1].at - log[0].at} ms (Retry-After: 1)`);
    assert.equal(log[0].headers['Idempotency-Key'], log[1].headers['Idempotency-Key']);
    assert.equal(task.status, 'queued');

    // Still full after every retry: RateLimitError.
    const aq1 = new AsyncQueue({ baseUrl: full.url, maxRetries: 1 });
    const t0 = Date.now();
    await assert.rejects(aq1.tasks.create({ callbackUrl: target.url('/'), delay: 3600 }),
      (e) => e instanceof RateLimitError && e.code === 'queue_full' && e.retryAfter === 1);
    assert.ok(Date.now() - t0 >= 950);
  } finally { await stopDaemon(full); }
});

test('network failures: retried for GETs and creates, not for cancel or retry', async () => {
  const drops = new Set([1, 3, 5]);
  const proxy = await startProxy(d.url, (req, n) => (drops.has(n) ? 'drop' : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const page = await aq.tasks.list({ limit: 1 }); // 1 dropped, 2 forwarded
    assert.ok(Array.isArray(page.tasks));
    const task = await aq.tasks.create({ callbackUrl: target.url('/'), delay: 3600 }); // 3 dropped, 4 forwarded
    assert.equal(proxy.requests.length, 4);
    assert.equal(proxy.requests[2].headers['idempotency-key'], proxy.requests[3].headers['idempotency-key']);
    await assert.rejects(aq.tasks.cancel(task.id), NetworkError); // 5 dropped, not retried
    assert.equal(proxy.requests.length, 5);
    assert.equal((await aq.tasks.get(task.id)).status, 'queued', 'the dropped cancel never reached the daemon');
  } finally { await proxy.close(); }
});

test('502 and 504 from a proxy: retried for idempotent requests only', async () => {
  const gateway = (status) => ({ status, headers: { 'content-type': 'text/html' }, body: '<h1>gateway</h1>' });
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? gateway(502) : n === 2 ? gateway(504) : n === 4 ? gateway(502) : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    await aq.queues.list(); // 502, 504, then ok
    assert.equal(proxy.requests.length, 3);
    const task = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/'), delay: 3600 });
    await assert.rejects(aq.tasks.cancel(task.body.id), (e) => e.status === 502 && e.code === 'http_502');
    assert.equal(proxy.requests.length, 4, 'the cancel was not repeated');
  } finally { await proxy.close(); }
});

test('aq.request: a GET is retried after a dropped connection by default, a POST only when told it is idempotent', async () => {
  const proxy = await startProxy(d.url, (req, n) => (n === 1 || n === 3 ? 'drop' : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const who = await aq.request('GET', '/v1/whoami'); // dropped, then forwarded
    assert.equal(who.scope, 'admin');
    assert.equal(proxy.requests.length, 2);
    await assert.rejects(aq.request('POST', '/v1/tasks', { body: { callbackUrl: target.url('/'), delay: 3600 } }),
      (e) => e instanceof NetworkError);
    assert.equal(proxy.requests.length, 3, 'the POST was not repeated');
  } finally { await proxy.close(); }
});

test('a 503 or 429 that is not the daemon\'s (a mesh proxy\'s upstream reset) is retried for idempotent requests only', async () => {
  // Envoy and other proxies answer 503 when the upstream connection broke,
  // which may be after the daemon took the request.
  const reset = (status) => ({ status, headers: { 'content-type': 'text/plain' }, body: 'upstream connect error or disconnect/reset before headers' });
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? reset(503) : n === 3 ? { forward: true, ...reset(503) } : 'forward'));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    assert.ok(Array.isArray((await aq.tasks.list({ limit: 1 })).tasks)); // 503, then ok
    assert.equal(proxy.requests.length, 2);
    const before = await countTasks(d.url, '&queue=mesh');
    await assert.rejects(
      aq.tasks.create({ callbackUrl: target.url('/'), delay: 3600, queue: 'mesh' }, { idempotencyKey: null }),
      (e) => e instanceof UnavailableError && e.code === 'http_503');
    assert.equal(proxy.requests.length, 3, 'a create without a key was not sent again');
    assert.equal(await countTasks(d.url, '&queue=mesh'), before + 1, 'one task, not two');
  } finally { await proxy.close(); }
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  const now = Date.parse('2026-11-28T10:00:00Z');
  assert.equal(parseRetryAfter('5', now), 5);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Sat, 28 Nov 2026 10:00:30 GMT', now), 30);
  assert.equal(parseRetryAfter('Sat, 28 Nov 2026 09:00:00 GMT', now), 0, 'a past date: no wait');
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter('soon', now), null);
  assert.equal(parseRetryAfter('-3', now), null);
});

test('tasks.wait rides through a daemon restart: 503 shutting_down, then no answer, then the outcome', async () => {
  const task = (await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/w'), delay: 2 })).body;
  // Before: each poll had maxRetries retries, and a restart longer than
  // about 1.5 s ended the wait with a NetworkError.
  const proxy = await startProxy(d.url, (req, n) => {
    if (n === 1) return 'forward';
    if (n === 2) return { status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'shutting_down', message: 'stopping' } } };
    if (n <= 6) return 'drop';
    return 'forward';
  });
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url, maxRetries: 1 });
    const done = await aq.tasks.wait(task.id, { timeoutMs: 30_000, pollSeconds: 0.05 });
    assert.equal(done.status, 'completed');
    assert.ok(proxy.requests.length >= 7, `${proxy.requests.length} polls`);
  } finally {
    await proxy.close();
  }
});

test('tasks.wait never sleeps past its timeoutMs on a long Retry-After', async () => {
  const task = (await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/w2'), delay: 3600 })).body;
  const proxy = await startProxy(d.url, (req, n) => (n === 1 ? 'forward' : unavailable('30')));
  try {
    const aq = new AsyncQueue({ baseUrl: proxy.url });
    const started = Date.now();
    // Before: two 30 s Retry-After sleeps inside one poll, then UnavailableError.
    await assert.rejects(aq.tasks.wait(task.id, { timeoutMs: 1500, pollSeconds: 0.5 }),
      (e) => e.name === 'WaitTimeoutError' || e instanceof UnavailableError);
    assert.ok(Date.now() - started < 10_000, `returned after ${Date.now() - started} ms`);
  } finally {
    await proxy.close();
  }
});

test('caller mistakes are TypeErrors at once, not retried outages; timeoutMs: Infinity means none', async () => {
  assert.throws(() => new AsyncQueue({ baseUrl: '127.0.0.1:8080' }), TypeError);
  assert.throws(() => new AsyncQueue({ baseUrl: 'ftp://127.0.0.1/' }), TypeError);
  assert.throws(() => new AsyncQueue({ baseUrl: d.url, apiKey: 'clé-secrète' }), TypeError);
  assert.throws(() => new AsyncQueue({ baseUrl: d.url, apiKey: 'a key' }), TypeError);
  // setTimeout(Infinity) fires at once: every request timed out after ~1 ms.
  const aq = new AsyncQueue({ baseUrl: d.url, timeoutMs: Infinity });
  assert.ok(Array.isArray((await aq.tasks.list({ limit: 1 })).tasks));
});
