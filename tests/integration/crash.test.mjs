// Nothing accepted is lost: kill -9 during a call and right after many 202s,
// and SIGTERM with a call in flight. Each restart uses the same database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope, api, waitFor, waitForStatus, waitForWebhook, queryDb, countTasks } from './lib/harness.mjs';

test('kill -9 while the target holds the call: after restart the task completes, its webhook arrives, and the history shows the interrupted attempt', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ hang: true }, { status: 200, body: { after: 'restart' } }]);
  const hook = await s.fake([{ status: 200 }]);
  const d1 = await s.daemon();
  // retries: 0 — the daemon's own stop must not use up the task's retries.
  const created = await api(d1.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/long'), payload: { job: 1 }, webhookUrl: hook.url('/h'), retries: 0,
  });
  assert.equal(created.status, 202);
  const id = created.body.id;
  await target.waitForRequests(1);
  await waitForStatus(d1.url, id, 'running');

  const exit = await d1.kill();
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(hook.requests.length, 0, 'nothing was finished before the crash');

  const d2 = await s.daemon({ db: d1.db });
  const calls = await target.waitForRequests(2);
  assert.equal(calls[1].headers['asyncqueue-task-id'], id);
  assert.equal(calls[1].headers['asyncqueue-attempt'], '2');
  assert.deepEqual(JSON.parse(calls[1].body), { job: 1 });

  const task = await waitForWebhook(d2.url, id, 'delivered');
  assert.equal(task.status, 'completed');
  assert.deepEqual(task.result, { after: 'restart' });
  assert.equal(task.attemptHistory.length, 2);
  assert.equal(task.attemptHistory[0].n, 1);
  assert.equal(task.attemptHistory[0].error?.code, 'interrupted');
  assert.equal(task.attemptHistory[0].statusCode, null);
  assert.equal(task.attemptHistory[1].statusCode, 200);
  assert.equal(task.attemptHistory[1].error, null);
  assert.equal(hook.requests.length, 1);
  const body = JSON.parse(hook.requests[0].body);
  assert.equal(body.taskId, id);
  assert.equal(body.status, 'completed');
  assert.equal(body.attempts, 2);
  assert.match(d2.logs(), /tasks\.requeued count=1/);
});

test('kill -9 right after many 202s: every task that got a 202 is in the database and readable after restart', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const d1 = await s.daemon();
  const total = 400;
  const killAfter = 250;
  const accepted = [];
  let next = 0;
  let killed = false;
  // 32 clients in parallel; the daemon is killed the moment the 250th 202
  // arrives, while the remaining requests are still in flight.
  const client = async () => {
    while (next < total && !killed) {
      const i = next++;
      let r;
      try {
        r = await api(d1.url, 'POST', '/v1/tasks', {
          callbackUrl: target.url(`/t/${i}`), delay: 3600, metadata: { i },
        });
      } catch {
        continue; // the daemon is gone: this request got no 202
      }
      if (r.status !== 202) continue;
      accepted.push(r.body.id);
      if (accepted.length === killAfter && !killed) {
        killed = true;
        d1.proc.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, client));
  assert.ok(killed, `the daemon was killed (only ${accepted.length} 202s)`);
  const exit = await d1.kill();
  assert.equal(exit.signal, 'SIGKILL');

  const stored = new Set(queryDb(d1.db, 'SELECT id FROM tasks').map((r) => r.id));
  const missing = accepted.filter((id) => !stored.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${accepted.length} tasks answered 202 are not in the database`);
  assert.ok(await countTasks(d1.db) >= accepted.length);

  const d2 = await s.daemon({ db: d1.db });
  for (let i = 0; i < accepted.length; i += 50) {
    const batch = accepted.slice(i, i + 50);
    const rs = await Promise.all(batch.map((id) => api(d2.url, 'GET', `/v1/tasks/${id}`)));
    rs.forEach((r, j) => {
      assert.equal(r.status, 200, `GET ${batch[j]} after restart`);
      assert.equal(r.body.status, 'queued');
      assert.equal(typeof r.body.metadata.i, 'number');
    });
  }
  assert.equal(target.requests.length, 0, 'delayed tasks did not run');
});

test('SIGTERM with a call in flight: exit 0 after shutdown_grace, the task is requeued, and completes after restart', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ hang: true }, { status: 200, body: { second: true } }]);
  const hook = await s.fake([{ status: 200 }]);
  const graceMs = 300;
  const d1 = await s.daemon({ args: ['--shutdown-grace', `${graceMs}ms`] });
  const created = await api(d1.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/long'), webhookUrl: hook.url('/h'), retries: 0,
  });
  assert.equal(created.status, 202);
  const id = created.body.id;
  await target.waitForRequests(1);
  await waitForStatus(d1.url, id, 'running');

  const t0 = Date.now();
  const exit = await d1.stop('SIGTERM');
  const elapsed = Date.now() - t0;
  assert.deepEqual(exit, { code: 0, signal: null }, d1.logs().slice(-3000));
  assert.ok(elapsed >= graceMs - 50, `the call in flight was given its grace (${elapsed} ms)`);
  // Loose on purpose: only catches a daemon that ignores shutdown_grace
  // (the default is 10 s) or hangs; sanitizer builds are slow to exit.
  assert.ok(elapsed < 8000, `exited ${elapsed} ms after SIGTERM with shutdown_grace ${graceMs} ms`);
  assert.match(d1.logs(), /asyncqueue\.stopped status=clean/);

  const [row] = queryDb(d1.db, `SELECT status, error_code FROM tasks WHERE id = '${id}'`);
  assert.deepEqual(row, { status: 'queued', error_code: 'interrupted' }, 'requeued on disk');
  assert.equal(hook.requests.length, 0, 'an interrupted task is not reported as finished');

  const d2 = await s.daemon({ db: d1.db });
  const task = await waitForWebhook(d2.url, id, 'delivered');
  assert.equal(task.status, 'completed');
  assert.deepEqual(task.result, { second: true });
  assert.deepEqual(task.attemptHistory.map((a) => a.error?.code ?? null), ['interrupted', null]);
  assert.equal(target.requests.length, 2);
  assert.equal(JSON.parse(hook.requests[0].body).status, 'completed');
});

test('SIGTERM lets a call that finishes within shutdown_grace complete; its webhook is delivered after restart', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200, delayMs: 400, body: { finished: 'during drain' } }]);
  const hook = await s.fake([{ status: 200 }]);
  const d1 = await s.daemon({ args: ['--shutdown-grace', '5s'] });
  const created = await api(d1.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/slowish'), webhookUrl: hook.url('/h'), retries: 0,
  });
  assert.equal(created.status, 202);
  const id = created.body.id;
  await target.waitForRequests(1);

  const exit = await d1.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, d1.logs().slice(-3000));
  const [row] = queryDb(d1.db, `SELECT status, attempts FROM tasks WHERE id = '${id}'`);
  assert.deepEqual(row, { status: 'completed', attempts: 1 }, 'the call finished during the drain and was recorded');

  const d2 = await s.daemon({ db: d1.db });
  const task = await waitForWebhook(d2.url, id, 'delivered');
  assert.equal(task.attempts, 1);
  assert.deepEqual(task.result, { finished: 'during drain' });
  await waitFor(() => hook.requests.length >= 1, { what: 'the webhook' });
  assert.equal(hook.requests.length, 1);
  assert.equal(target.requests.length, 1, 'a completed task is not called again after restart');
});

test('kill -9 during a webhook delivery: after restart the message is delivered, with the same webhook-id', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200, body: { r: 1 } }]);
  const hook = await s.fake([{ hang: true }, { status: 200 }]);
  const d1 = await s.daemon();
  const created = await api(d1.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/t'), webhookUrl: hook.url('/h') });
  assert.equal(created.status, 202);
  const id = created.body.id;
  await hook.waitForRequests(1);
  await d1.kill();

  const d2 = await s.daemon({ db: d1.db });
  const task = await waitForWebhook(d2.url, id, 'delivered');
  assert.equal(hook.requests.length, 2);
  assert.equal(hook.requests[1].headers['webhook-id'], hook.requests[0].headers['webhook-id'],
    'the redelivery carries the same webhook-id, so the receiver can drop a duplicate');
  assert.ok(hook.requests[1].raw.equals(hook.requests[0].raw), 'and the same body');
  assert.equal(task.webhook.id, hook.requests[0].headers['webhook-id']);
  assert.equal(JSON.parse(hook.requests[1].body).taskId, id);
  assert.equal(target.requests.length, 1, 'the finished task is not run again');
});

// docs/api.md, attempt error `interrupted`: "the attempt does not count
// against its retries: the daemon never fails a task for its own stop".
test('an attempt interrupted by a crash does not use up one of the task\'s retries', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ hang: true }, { status: 500 }, { status: 200 }]);
  const args = ['--retry-base', '20ms', '--retry-jitter', 'false'];
  const d1 = await s.daemon({ args });
  const created = await api(d1.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/t'), retries: 1 });
  assert.equal(created.status, 202);
  await target.waitForRequests(1);
  await d1.kill();
  const d2 = await s.daemon({ db: d1.db, args });
  const task = await waitForStatus(d2.url, created.body.id, ['completed', 'failed']);
  assert.deepEqual(task.attemptHistory.map((a) => a.statusCode ?? a.error?.code),
    ['interrupted', 500, 200], 'retries: 1 allows one retry after the 500, whatever the daemon went through');
  assert.equal(task.status, 'completed', `the task ${task.status}: ${JSON.stringify(task.error)}`);
});
