// Cancel: a queued task is never called; a running call is aborted (the
// target sees its connection closed) and never retried; finished tasks are
// 409; bulk cancel by filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitFor, waitForStatus, countTasks } from './lib/harness.mjs';
import { daemon, fake, create, assertError, taskIdOf, getTask } from './lib/ops.mjs';

const RETRY = ['--retry-base', '50ms', '--retry-jitter', 'false'];

test('cancelling a delayed task: 200 cancelled, the target is never called, the webhook says cancelled', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const hook = await fake(t, [{ status: 200 }]);
  const d = await daemon(t, { args: RETRY });

  const victim = await create(d, { callbackUrl: target.url('/victim'), webhookUrl: hook.url('/h'), delay: 0.5,
    metadata: { k: 1 } });
  const r = await api(d.url, 'POST', `/v1/tasks/${victim.id}/cancel`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.id, victim.id);
  assert.equal(r.body.status, 'cancelled');

  const [delivery] = await hook.waitForRequests(1);
  const payload = JSON.parse(delivery.body);
  assert.equal(payload.taskId, victim.id);
  assert.equal(payload.status, 'cancelled');
  assert.deepEqual(payload.metadata, { k: 1 });

  // A control task due later than the victim was: once the target saw it,
  // the victim's time had long come, and it must not have been called.
  const control = await create(d, { callbackUrl: target.url('/control'), delay: 0.8 });
  await waitForStatus(d.url, control.id, 'completed');
  assert.deepEqual(target.requests.map(taskIdOf), [control.id]);

  const after = await getTask(d, victim.id);
  assert.equal(after.status, 'cancelled');
  assert.equal(after.attempts, 0);
  assert.deepEqual(after.attemptHistory, []);
  assertError(await api(d.url, 'POST', `/v1/tasks/${victim.id}/cancel`), 409, 'task_finished');
});

test('cancelling a running task aborts the call, never retries it, and records the attempt as cancelled', async (t) => {
  const target = await fake(t, (req) => (req.url === '/hold' ? { hang: true } : { status: 200 }));
  const hook = await fake(t, [{ status: 200 }]);
  const d = await daemon(t, { args: RETRY });

  const task = await create(d, { callbackUrl: target.url('/hold'), webhookUrl: hook.url('/h'), retries: 5 });
  await target.waitForRequests(1);
  await waitForStatus(d.url, task.id, 'running');
  const r = await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, 'cancelled');

  // The target sees its connection closed without having answered.
  const [aborted] = await target.waitForAborted(1);
  assert.equal(taskIdOf(aborted), task.id);

  const [delivery] = await hook.waitForRequests(1);
  assert.equal(JSON.parse(delivery.body).status, 'cancelled');
  assert.equal(JSON.parse(delivery.body).taskId, task.id);

  // With retries 5 and a 50 ms backoff, a retry would be due long before a
  // control task delayed by 0.5 s; once the control ran, none came.
  const control = await create(d, { callbackUrl: target.url('/control'), delay: 0.5 });
  await waitForStatus(d.url, control.id, 'completed');
  assert.deepEqual(target.requests.map(taskIdOf), [task.id, control.id]);

  const after = await getTask(d, task.id);
  assert.equal(after.status, 'cancelled');
  assert.equal(after.attempts, 1);
  assert.equal(after.attemptHistory.length, 1);
  assert.equal(after.attemptHistory.at(-1).error?.code, 'cancelled');
  assert.equal(after.attemptHistory.at(-1).statusCode, null);
  assertError(await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`), 409, 'task_finished');
});

test('cancelling completed or failed tasks is 409 task_finished; unknown ids are 404', async (t) => {
  const ok = await fake(t, [{ status: 200 }]);
  const bad = await fake(t, [{ status: 404 }]);
  const d = await daemon(t);
  const done = await create(d, { callbackUrl: ok.url('/') });
  const failed = await create(d, { callbackUrl: bad.url('/'), retries: 0 });
  await waitForStatus(d.url, done.id, 'completed');
  await waitForStatus(d.url, failed.id, 'failed');

  assertError(await api(d.url, 'POST', `/v1/tasks/${done.id}/cancel`), 409, 'task_finished');
  assertError(await api(d.url, 'POST', `/v1/tasks/${failed.id}/cancel`), 409, 'task_finished');
  assert.equal((await getTask(d, done.id)).status, 'completed', 'a refused cancel changes nothing');
  assert.equal((await getTask(d, failed.id)).status, 'failed');
  assertError(await api(d.url, 'POST', '/v1/tasks/01a221b7-4f1f-707d-9c40-a269a508bd38/cancel'), 404, 'not_found');
  assertError(await api(d.url, 'POST', '/v1/tasks/nope/cancel'), 404, 'not_found');
});

test('bulk cancel by queue and by status answers counts; a filter is required', async (t) => {
  const target = await fake(t, (req) => (req.url === '/hold' ? { hang: true } : { status: 200 }));
  const d = await daemon(t);
  const mk = (queue, extra = {}) => create(d, { callbackUrl: target.url('/later'), queue, delay: 3600, ...extra });
  const qa = [await mk('bulk-a'), await mk('bulk-a'), await mk('bulk-a')];
  const qb = [await mk('bulk-b'), await mk('bulk-b')];
  const done = await create(d, { callbackUrl: target.url('/now'), queue: 'bulk-b' });
  await waitForStatus(d.url, done.id, 'completed');
  const running = await create(d, { callbackUrl: target.url('/hold'), queue: 'bulk-c' });
  await waitForStatus(d.url, running.id, 'running');

  // No filter at all is refused, and nothing changes.
  assertError(await api(d.url, 'POST', '/v1/tasks/cancel', {}), 400, 'missing_field');
  assert.equal((await api(d.url, 'POST', '/v1/tasks/cancel', '')).status, 400, 'an empty body is no filter');
  assertError(await api(d.url, 'POST', '/v1/tasks/cancel', { status: 'completed' }), 400, 'invalid_field', 'status');
  assertError(await api(d.url, 'POST', '/v1/tasks/cancel', { queue: 'bulk-a', colour: 'red' }), 400, 'unknown_field');
  // An empty status list names no status: refused, not read as every status.
  assertError(await api(d.url, 'POST', '/v1/tasks/cancel', { status: [] }), 400, 'invalid_field', 'status');
  assertError(await api(d.url, 'POST', '/v1/tasks/retry', { status: [] }), 400, 'invalid_field', 'status');
  for (const x of [...qa, ...qb]) assert.equal((await getTask(d, x.id)).status, 'queued');
  assert.equal((await getTask(d, running.id)).status, 'running');

  const byQueue = await api(d.url, 'POST', '/v1/tasks/cancel', { queue: 'bulk-a' });
  assert.equal(byQueue.status, 200, JSON.stringify(byQueue.body));
  assert.deepEqual(byQueue.body, { cancelled: 3 });
  for (const x of qa) assert.equal((await getTask(d, x.id)).status, 'cancelled');
  for (const x of qb) assert.equal((await getTask(d, x.id)).status, 'queued', 'other queues are untouched');
  assert.equal((await getTask(d, running.id)).status, 'running');

  // By status: only the running one, and its call is aborted.
  const byRunning = await api(d.url, 'POST', '/v1/tasks/cancel', { status: ['running'] });
  assert.deepEqual(byRunning.body, { cancelled: 1 });
  await target.waitForAborted(1);
  assert.equal((await getTask(d, running.id)).status, 'cancelled');
  for (const x of qb) assert.equal((await getTask(d, x.id)).status, 'queued');

  const byQueued = await api(d.url, 'POST', '/v1/tasks/cancel', { status: 'queued' });
  assert.deepEqual(byQueued.body, { cancelled: 2 });
  for (const x of qb) assert.equal((await getTask(d, x.id)).status, 'cancelled');
  assert.equal((await getTask(d, done.id)).status, 'completed', 'finished tasks are not touched');

  // Nothing left to cancel: a count of 0, not an error.
  assert.deepEqual((await api(d.url, 'POST', '/v1/tasks/cancel', { status: ['queued', 'running'] })).body, { cancelled: 0 });
  assert.equal(await countTasks(d.db), 7, 'cancel deletes nothing');
});

test('bulk cancel by created time', async (t) => {
  const d = await daemon(t);
  const made = [];
  for (let i = 0; i < 5; i++) made.push(await create(d, { callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 }));
  // Expected sets from createdAt (equal milliseconds are possible).
  const cut = made[3].createdAt;
  const late = made.filter((x) => x.createdAt >= cut).map((x) => x.id);
  const early = made.filter((x) => x.createdAt < cut).map((x) => x.id);
  const r1 = await api(d.url, 'POST', '/v1/tasks/cancel', { createdAfter: cut });
  assert.deepEqual(r1.body, { cancelled: late.length });
  for (const x of made) {
    assert.equal((await getTask(d, x.id)).status, late.includes(x.id) ? 'cancelled' : 'queued');
  }
  const r2 = await api(d.url, 'POST', '/v1/tasks/cancel', { createdBefore: cut });
  assert.deepEqual(r2.body, { cancelled: early.length });
  for (const x of made) assert.equal((await getTask(d, x.id)).status, 'cancelled');
  assertError(await api(d.url, 'POST', '/v1/tasks/cancel', { createdAfter: 'soon' }), 400, 'invalid_field', 'createdAfter');
});

test('a cancel racing replays answers the task as its own transaction left it: cancelled, never a later run', async (t) => {
  const target = await fake(t, [{ status: 400 }]);
  const d = await daemon(t);
  const ids = [];
  for (let i = 0; i < 40; i++) ids.push((await create(d, { callbackUrl: target.url(`/r${i}`), retries: 0 })).id);
  for (const id of ids) await waitForStatus(d.url, id, 'failed');
  // Replays and cancels of each task at once: the cancel's answer was read
  // after its commit, and a replay in between made it show the next run
  // (running or queued, replays one higher) as what was cancelled.
  const answers = await Promise.all(ids.map((id) => Promise.all([
    api(d.url, 'POST', `/v1/tasks/${id}/retry`), api(d.url, 'POST', `/v1/tasks/${id}/cancel`),
    api(d.url, 'POST', `/v1/tasks/${id}/retry`), api(d.url, 'POST', `/v1/tasks/${id}/cancel`),
  ])));
  let cancels = 0;
  for (const four of answers) {
    for (const r of [four[1], four[3]]) {
      if (r.status !== 200) {
        assert.ok([409].includes(r.status), JSON.stringify(r.body));
        continue;
      }
      cancels++;
      assert.equal(r.body.status, 'cancelled', JSON.stringify({ status: r.body.status, replays: r.body.replays }));
      assert.ok(r.body.finishedAt);
    }
  }
  assert.ok(cancels > 0, 'some cancels won');
});

test('attempts_total counts what was stored: a call a cancel overtook is not a success', async (t) => {
  let d;
  // The target answers 200 just as the cancel of its own task goes out: the
  // worker decided "success" and the metric counted it before the writer
  // found the task cancelled and stored the attempt as cancelled.
  const target = await fake(t, (req) => ({
    status: 200,
    until: new Promise((res) => {
      api(d.url, 'POST', `/v1/tasks/${req.headers['asyncqueue-task-id']}/cancel`).catch(() => {});
      setTimeout(res, req.n % 3);
    }),
  }));
  d = await daemon(t);
  const ids = [];
  for (let i = 0; i < 60; i++) ids.push((await create(d, { callbackUrl: target.url(`/m${i}`), retries: 0 })).id);
  const final = [];
  for (const id of ids) final.push(await waitForStatus(d.url, id, ['completed', 'cancelled']));
  const completed = final.filter((x) => x.status === 'completed').length;
  const successes = async () => [...(await (await fetch(`${d.url}/metrics`)).text())
    .matchAll(/^asyncqueue_attempts_total\{outcome="success",status_class="[^"]+"\} (\d+)$/gm)]
    .reduce((n, m) => n + Number(m[1]), 0);
  // Counted once the result is on disk, a moment after a read can see it.
  await waitFor(async () => (await successes()) >= completed, { timeout: 5000, what: 'the metric catches up' });
  const success = await successes();
  assert.equal(success, completed, `success ${success}, completed ${completed}, cancelled ${final.length - completed}`);
});

test('cancels and queue changes are logged, with the key that made them', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t, { args: RETRY });
  const one = await create(d, { callbackUrl: target.url('/one'), delay: 3600, queue: 'logq' });
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${one.id}/cancel`)).status, 200);
  await d.waitForLog(new RegExp(`task\\.cancelled id=${one.id} queue=logq was=queued key=none`));
  const two = await create(d, { callbackUrl: target.url('/two'), delay: 3600, queue: 'logq' });
  const bulk = await api(d.url, 'POST', '/v1/tasks/cancel', { queue: 'logq', status: ['queued'] });
  assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
  await d.waitForLog(new RegExp(`task\\.cancelled id=${two.id} queue=logq was=queued key=none`));
  assert.equal((await api(d.url, 'PUT', '/v1/queues/logq', { maxConcurrency: 2 })).status, 200);
  await d.waitForLog(/queue\.updated name=logq paused=false maxConcurrency=2 /);
  assert.equal((await api(d.url, 'POST', '/v1/queues/logq/pause')).status, 200);
  await d.waitForLog(/queue\.paused name=logq paused=true maxConcurrency=2 /);
  assert.equal((await api(d.url, 'POST', '/v1/queues/logq/resume')).status, 200);
  await d.waitForLog(/queue\.resumed name=logq paused=false /);
  assert.equal((await api(d.url, 'DELETE', '/v1/queues/logq')).status, 204);
  await d.waitForLog(/queue\.deleted name=logq key=none/);
  assert.equal(target.requests.length, 0);
});
