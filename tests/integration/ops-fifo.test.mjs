// A queue with max concurrency 1 is strictly FIFO: one call at a time, in
// creation order, and a task waiting for its retry holds the ones behind it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, waitFor, waitForStatus, tempDir, startDaemon } from './lib/harness.mjs';
import { daemon, fake, create, taskIdOf, gate } from './lib/ops.mjs';

/** No two calls overlap: each starts after the previous answer was sent. */
function assertOneAtATime(requests) {
  for (let i = 1; i < requests.length; i++) {
    const prev = requests[i - 1];
    const cur = requests[i];
    assert.ok(prev.endAt !== undefined && cur.at >= prev.endAt,
      `call ${i + 1} started at ${cur.at}, before call ${i} was answered (${prev.endAt})`);
  }
}

test('FIFO queue from the config file: 10 tasks run one at a time in creation order', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const conf = join(tmp.dir, 'aq.conf');
  writeFileSync(conf, 'queue.fifo.max_concurrency = 1\n');
  // The first call is held until every task is queued behind it, so all ten
  // are due at once when it ends; the others answer after 40 ms.
  const held = gate();
  const target = await fake(t, (req) => (req.url === '/first' ? { until: held } : { delayMs: 40 }));
  const d = await daemon(t, { args: ['--config', conf] });

  const tasks = [await create(d, { callbackUrl: target.url('/first'), queue: 'fifo' })];
  await target.waitForRequests(1);
  for (let i = 1; i < 10; i++) tasks.push(await create(d, { callbackUrl: target.url(`/n${i}`), queue: 'fifo' }));

  const q = (await api(d.url, 'GET', '/v1/queues/fifo')).body;
  assert.equal(q.maxConcurrency, 1);
  assert.equal(q.configured, true);
  assert.equal(q.inflight, 1);
  assert.equal(q.queued, 9);
  assert.equal(target.requests.length, 1, 'nothing else starts while the first runs');

  held.open();
  for (const x of tasks) await waitForStatus(d.url, x.id, 'completed');
  assert.deepEqual(target.requests.map(taskIdOf), tasks.map((x) => x.id), 'creation order');
  assertOneAtATime(target.requests);
  assert.equal(target.maxInflight, 1);
});

test('FIFO queue set by PUT: a task waiting for its retry holds the tasks behind it', async (t) => {
  const held = gate();
  let firstCalls = 0;
  const target = await fake(t, (req) => {
    if (req.url !== '/first') return { delayMs: 20 };
    firstCalls++;
    return firstCalls === 1 ? { until: held, status: 500 } : { status: 200 };
  });
  const d = await daemon(t, { args: ['--retry-base', '300ms', '--retry-jitter', 'false'] });
  const put = await api(d.url, 'PUT', '/v1/queues/fifo2', { maxConcurrency: 1 });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.maxConcurrency, 1);

  const tasks = [await create(d, { callbackUrl: target.url('/first'), queue: 'fifo2', retries: 2 })];
  await target.waitForRequests(1);
  for (let i = 1; i < 5; i++) tasks.push(await create(d, { callbackUrl: target.url(`/n${i}`), queue: 'fifo2' }));
  held.open();

  for (const x of tasks) await waitForStatus(d.url, x.id, 'completed');
  const order = target.requests.map(taskIdOf);
  assert.deepEqual(order, [tasks[0].id, ...tasks.map((x) => x.id)],
    'the first task failed, waited 300 ms for its retry, and only then did the others run, in order');
  assertOneAtATime(target.requests);
  // The hold really spanned the backoff: nothing ran in the 300 ms gap.
  assert.ok(target.requests[1].at - target.requests[0].endAt >= 250);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${tasks[0].id}`)).body.attempts, 2);
});

test('FIFO: cancelling the head task while it waits for its retry lets the next one run', async (t) => {
  const target = await fake(t, (req) => (req.url === '/first' ? { status: 500 } : { status: 200 }));
  // A 5 s backoff: far longer than the test waits for the next task.
  const d = await daemon(t, { args: ['--retry-base', '5s', '--retry-jitter', 'false'] });
  assert.equal((await api(d.url, 'PUT', '/v1/queues/fifo3', { maxConcurrency: 1 })).status, 200);
  const head = await create(d, { callbackUrl: target.url('/first'), queue: 'fifo3', retries: 3 });
  await target.waitForRequests(1);
  const next = await create(d, { callbackUrl: target.url('/next'), queue: 'fifo3' });
  await waitFor(async () => (await api(d.url, 'GET', `/v1/tasks/${head.id}`)).body.attempts === 1,
    { what: 'the first attempt to be recorded' });
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${next.id}`)).body.status, 'queued', 'held behind the head');

  const t0 = Date.now();
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${head.id}/cancel`)).status, 200);
  await waitForStatus(d.url, next.id, 'completed', { timeout: 4000 });
  assert.ok(Date.now() - t0 < 4000, 'the next task did not wait for the cancelled head\'s backoff');
  assert.deepEqual(target.requests.map(taskIdOf), [head.id, next.id]);
});

/** Starts a daemon on db (kept when it stops); stopped and removed at the end of t. */
async function daemonOn(t, db, args) {
  const d = await startDaemon({ db, args });
  t.after(async () => { if (!d.exitInfo()) await d.stop(); });
  return d;
}

test('FIFO across a restart: the hold of a task waiting for its retry, and the place of an interrupted task, are kept', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'fifo.db');
  const held = gate();
  let firstCalls = 0;
  const target = await fake(t, (req) => {
    if (req.url === '/retrying') return ++firstCalls === 1 ? { status: 500 } : { status: 200 };
    if (req.url === '/held') return { until: held };
    return { delayMs: 10 };
  });
  const args = ['--retry-base', '2s', '--retry-jitter', 'false', '--shutdown-grace', '200ms'];
  let d = await daemonOn(t, db, args);
  assert.equal((await api(d.url, 'PUT', '/v1/queues/rf', { maxConcurrency: 1 })).status, 200);
  // The head fails its first attempt and waits 2 s for its retry; two more behind it.
  const a = await create(d, { callbackUrl: target.url('/retrying'), queue: 'rf', retries: 1 });
  await waitFor(async () => (await api(d.url, 'GET', `/v1/tasks/${a.id}`)).body.attempts === 1, { what: 'the first attempt' });
  const b = await create(d, { callbackUrl: target.url('/b'), queue: 'rf' });
  const c = await create(d, { callbackUrl: target.url('/c'), queue: 'rf' });
  await d.stop();
  d = await daemonOn(t, db, args);
  for (const x of [a, b, c]) await waitForStatus(d.url, x.id, 'completed', { timeout: 8000 });
  assert.deepEqual(target.requests.map(taskIdOf), [a.id, a.id, b.id, c.id], 'the retry first, as before the restart');

  // A call cut by the stop keeps its place: it runs again before those behind it.
  const h = await create(d, { callbackUrl: target.url('/held'), queue: 'rf' });
  await target.waitForRequests(5);
  const e = await create(d, { callbackUrl: target.url('/e'), queue: 'rf' });
  await d.stop(); // its grace (200 ms) ends the held call: interrupted
  held.open();
  d = await daemonOn(t, db, args);
  for (const x of [h, e]) await waitForStatus(d.url, x.id, 'completed', { timeout: 8000 });
  assert.deepEqual(target.requests.slice(4).map(taskIdOf), [h.id, h.id, e.id]);
  await d.stop();
});

test('FIFO set or unset while a task waits for its retry: the hold follows the setting', async (t) => {
  const target = await fake(t, (req) => (req.url.startsWith('/fails') ? { status: 500 } : { status: 200 }));
  const d = await daemon(t, { args: ['--retry-base', '4s', '--retry-jitter', 'false'] });
  // Not FIFO: a task waits for its retry; made FIFO, it holds the next one.
  const a = await create(d, { callbackUrl: target.url('/fails-a'), queue: 'sw', retries: 1 });
  await waitFor(async () => (await api(d.url, 'GET', `/v1/tasks/${a.id}`)).body.attempts === 1, { what: 'a first attempt' });
  assert.equal((await api(d.url, 'PUT', '/v1/queues/sw', { maxConcurrency: 1 })).status, 200);
  const b = await create(d, { callbackUrl: target.url('/b'), queue: 'sw' });
  await new Promise((r) => setTimeout(r, 500)); // b would have run by now, were it not held
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${b.id}`)).body.status, 'queued', 'held behind the retry');
  // No longer FIFO: nothing holds it any more.
  assert.equal((await api(d.url, 'PUT', '/v1/queues/sw', { maxConcurrency: 0 })).status, 200);
  await waitForStatus(d.url, b.id, 'completed', { timeout: 2000 });
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${a.id}`)).body.attempts, 1, 'before the retry was due');
});
