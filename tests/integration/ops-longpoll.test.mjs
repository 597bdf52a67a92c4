// Long-poll: GET /v1/tasks/{id}?wait=S returns as soon as the task is final,
// or with the unchanged task when the wait ends; waiting costs no thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { api, waitFor } from './lib/harness.mjs';
import { daemon, fake, create, assertError, gate, threadCount, fdCount, getOwnConnection } from './lib/ops.mjs';

test('wait=5 returns as soon as the task completes, well before 5 s', async (t) => {
  const target = await fake(t, [{ status: 200, delayMs: 300, body: { done: 1 } }]);
  const d = await daemon(t);
  const task = await create(d, { callbackUrl: target.url('/slowish') });
  const t0 = Date.now();
  const r = await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=5`);
  const took = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'completed');
  assert.deepEqual(r.body.result, { done: 1 });
  assert.ok(Array.isArray(r.body.attemptHistory), 'the full task, as GET gives it');
  assert.ok(took < 4000, `returned after ${took} ms: it waited for the timeout, not the completion`);
});

test('wait=1 on a delayed task returns the unchanged queued task after about 1 s', async (t) => {
  const d = await daemon(t);
  const task = await create(d, { callbackUrl: 'http://127.0.0.1:9/later', delay: 3600 });
  const t0 = Date.now();
  const r = await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=1`);
  const took = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'queued');
  assert.equal(r.body.updatedAt, task.updatedAt);
  assert.ok(took >= 900, `returned after ${took} ms`);
  assert.ok(took < 4000, `returned after ${took} ms`);

  // Fractions and 0 are fine; wait=0 answers at once.
  const zero = await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=0`);
  assert.equal(zero.status, 200);
  assert.equal(zero.body.status, 'queued');
  const frac = await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=0.2`);
  assert.equal(frac.status, 200);
  // As Python's str() prints a small float.
  const tiny = await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=5e-05`);
  assert.equal(tiny.status, 200, JSON.stringify(tiny.body));

  // strtod would take the last five: wait is a number as JSON writes it.
  for (const bad of ['-1', '301', 'abc', '1e9', 'NaN', '0x10', '%205', '+5', '.5', 'inf']) {
    assertError(await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=${bad}`), 400, 'invalid_field', 'wait');
  }
  // Unknown tasks are 404 at once, not after the wait.
  const t1 = Date.now();
  assertError(await api(d.url, 'GET', '/v1/tasks/01a221b7-4f1f-707d-9c40-a269a508bd38?wait=5'), 404, 'not_found');
  assert.ok(Date.now() - t1 < 4000);
});

test('a cancel wakes a waiter; the wait honours --max-wait', async (t) => {
  const d = await daemon(t, { args: ['--max-wait', '2s'] });
  const task = await create(d, { callbackUrl: 'http://127.0.0.1:9/later', delay: 3600 });
  assertError(await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=3`), 400, 'invalid_field', 'wait');
  const waiting = api(d.url, 'GET', `/v1/tasks/${task.id}?wait=2`);
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`)).status, 200);
  const r = await waiting;
  assert.equal(r.body.status, 'cancelled');
});

test('50 concurrent waiters on 50 tasks all return, and waiting holds no thread each', async (t) => {
  const held = gate();
  const target = await fake(t, [{ status: 200, until: held }]);
  const d = await daemon(t);
  const baseThreads = threadCount(d.proc.pid);

  // 50 running tasks whose target answers only when the gate opens.
  const tasks = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    create(d, { callbackUrl: target.url(`/w${i}`) })));
  await target.waitForRequests(50);
  const threadsRunning = threadCount(d.proc.pid);
  const fdsBefore = fdCount(d.proc.pid);

  let returned = 0;
  const waiters = tasks.map((x) => getOwnConnection(`${d.url}/v1/tasks/${x.id}?wait=30`)
    .then((r) => { returned++; return r; }));
  // Every waiter has its own connection, open at the daemon before we look.
  await waitFor(() => fdCount(d.proc.pid) >= fdsBefore + 50, { what: '50 waiting connections' });
  let maxThreads = 0;
  for (let i = 0; i < 10; i++) {
    maxThreads = Math.max(maxThreads, threadCount(d.proc.pid));
    await new Promise((r) => setTimeout(r, 20)); // sampling while they wait
  }
  // If waiters blocked the HTTP threads (2 by default), nothing else would be
  // served now: the daemon must still answer at once.
  const t0 = Date.now();
  const health = await api(d.url, 'GET', '/healthz');
  const other = await api(d.url, 'GET', `/v1/tasks/${tasks[0].id}`);
  assert.equal(health.status, 200);
  assert.equal(other.body.status, 'running');
  assert.ok(Date.now() - t0 < 2000, `the daemon took ${Date.now() - t0} ms to answer while 50 waited`);
  assert.equal(returned, 0, 'no waiter returned before its task finished');
  assert.ok(maxThreads <= threadsRunning + 2,
    `threads: ${baseThreads} at start, ${threadsRunning} with 50 calls running, ${maxThreads} with 50 waiters`);

  held.open();
  const answers = await Promise.all(waiters);
  for (const [i, r] of answers.entries()) {
    assert.equal(r.status, 200);
    assert.equal(r.body.id, tasks[i].id);
    assert.equal(r.body.status, 'completed');
  }
});

test('a finished task answers a wait at once; SIGTERM answers the waiters 503 shutting_down (not the state the stop is about to change) and exits 0', async (t) => {
  const held = gate();
  const target = await fake(t, (req) => (req.url === '/held' ? { status: 200, until: held } : { status: 200 }));
  t.after(() => held.open());
  const d = await daemon(t, { args: ['--shutdown-grace', '1s'] });
  const done = await create(d, { callbackUrl: target.url('/x') });
  await api(d.url, 'GET', `/v1/tasks/${done.id}?wait=10`); // waits for completion
  const t0 = Date.now();
  const r = await api(d.url, 'GET', `/v1/tasks/${done.id}?wait=10`);
  assert.equal(r.body.status, 'completed');
  assert.ok(Date.now() - t0 < 3000, 'an already final task is not held');

  const queued = [];
  for (let i = 0; i < 5; i++) queued.push(await create(d, { callbackUrl: target.url('/later'), delay: 3600 }));
  // A running call the stop puts back in the queue: answered "running", its
  // waiter took that for the outcome of its wait.
  const running = await create(d, { callbackUrl: target.url('/held') });
  await target.waitForRequests(2);
  const fdsBefore = fdCount(d.proc.pid);
  const waiters = [...queued, running].map((x) => getOwnConnection(`${d.url}/v1/tasks/${x.id}?wait=60`).catch((e) => e));
  await waitFor(() => fdCount(d.proc.pid) >= fdsBefore + 6, { what: '6 waiting connections' });
  const exit = await d.stop();
  assert.deepEqual(exit, { code: 0, signal: null });
  const answers = await Promise.all(waiters);
  for (const a of answers) {
    assert.ok(!(a instanceof Error), `a waiter got no answer: ${a.message}`);
    assert.equal(a.status, 503, JSON.stringify(a.body));
    assert.equal(a.body.error.code, 'shutting_down');
  }
});

test('a waiter whose client went away frees its connection within seconds, not at the end of its wait', async (t) => {
  // 16 is the fewest connections the daemon takes: 15 waiters and one left
  // to look with; before, the abandoned waiters held their slots for the
  // whole wait and, all 16 taken, nothing was served for 60 s.
  const d = await daemon(t, { args: ['--http-max-connections', '16'] });
  const task = await create(d, { callbackUrl: 'http://127.0.0.1:9/later', delay: 3600 });
  const sockets = [];
  t.after(() => { for (const s of sockets) s.destroy(); });
  for (let i = 0; i < 15; i++) {
    const s = connect({ port: d.port, host: '127.0.0.1' });
    s.on('error', () => {});
    await new Promise((r) => s.on('connect', r));
    s.write(`GET /v1/tasks/${task.id}?wait=60 HTTP/1.1\r\nHost: x\r\n\r\n`);
    sockets.push(s);
  }
  const waiters = async () => Number(/^asyncqueue_longpoll_waiters (\d+)$/m.exec((await api(d.url, 'GET', '/metrics')).body)[1]);
  await waitFor(async () => (await waiters()) === 15, { what: '15 waiters' });
  for (const s of sockets) s.destroy(); // gone without a word, as a killed client
  await waitFor(async () => (await waiters()) === 0, { timeout: 5000, what: 'the abandoned waiters resumed' });
  // Every slot is free again: 15 new connections are all served.
  const more = await Promise.all(Array.from({ length: 15 }, () => api(d.url, 'GET', `/v1/tasks/${task.id}`)));
  for (const r of more) assert.equal(r.status, 200);
  // A client that stays gets its full wait: only hung-up ones are let go.
  const t0 = Date.now();
  const stays = await api(d.url, 'GET', `/v1/tasks/${task.id}?wait=2`);
  assert.equal(stays.status, 200);
  assert.ok(Date.now() - t0 >= 1900, `waited ${Date.now() - t0} ms`);
});

test('a wait on a task replayed the moment it finished answers a final task, not the new run at once', async (t) => {
  const target = await fake(t, [{ status: 200, delayMs: 100 }]);
  const d = await daemon(t);
  let early = 0;
  for (let i = 0; i < 20; i++) {
    const task = await create(d, { callbackUrl: target.url(`/r${i}`), retries: 0 });
    const started = Date.now();
    const waited = api(d.url, 'GET', `/v1/tasks/${task.id}?wait=5`).then((r) => ({ ...r, ms: Date.now() - started }));
    // Replayed as soon as it is final (409 while it runs): the waiter, woken
    // by the finish, read the task after the replay and answered "queued".
    for (let k = 0; k < 2000; k++) {
      if ((await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`)).status === 202) break;
    }
    const r = await waited;
    assert.equal(r.status, 200);
    if (!['completed', 'failed', 'cancelled'].includes(r.body.status) && r.ms < 4900) early++;
  }
  assert.equal(early, 0, `${early} of 20 waits answered a task that was not final, before their wait`);
});
