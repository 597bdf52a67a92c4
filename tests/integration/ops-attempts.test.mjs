// GET /v1/tasks/{id}/attempts: every target attempt and every webhook
// delivery attempt, in order, with what happened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitFor, waitForStatus } from './lib/harness.mjs';
import { daemon, fake, create, assertError } from './lib/ops.mjs';

const ms = (s) => Date.parse(s);

test('attempts lists two failed attempts, the success, and a webhook that failed once then was delivered', async (t) => {
  const target = await fake(t, [{ status: 500 }, { status: 503 }, { status: 200, body: { ok: true } }]);
  const hook = await fake(t, [{ status: 500 }, { status: 200 }]);
  const d = await daemon(t, {
    args: ['--retry-base', '50ms', '--retry-jitter', 'false', '--webhook-schedule', '100ms,100ms'],
  });

  const task = await create(d, { callbackUrl: target.url('/job'), webhookUrl: hook.url('/hook'), retries: 3 });
  await waitForStatus(d.url, task.id, 'completed');
  await hook.waitForRequests(2);
  const done = await waitFor(async () => {
    const x = (await api(d.url, 'GET', `/v1/tasks/${task.id}`)).body;
    return x.webhook?.status === 'delivered' ? x : null;
  }, { what: 'the webhook to be delivered' });

  const r = await api(d.url, 'GET', `/v1/tasks/${task.id}/attempts`);
  assert.equal(r.status, 200);
  assert.equal(r.body.taskId, task.id);

  const { attempts, webhookDeliveries } = r.body;
  assert.deepEqual(attempts.map((a) => a.n), [1, 2, 3]);
  assert.deepEqual(attempts.map((a) => a.statusCode), [500, 503, 200]);
  assert.deepEqual(attempts.map((a) => a.error?.code ?? null), ['http_error', 'http_error', null]);
  assert.match(attempts[0].error.message, /500/);
  assert.match(attempts[1].error.message, /503/);
  let prevEnd = ms(task.createdAt);
  for (const a of attempts) {
    assert.ok(ms(a.startedAt) >= prevEnd, `attempt ${a.n} starts after the previous one ended`);
    assert.ok(ms(a.finishedAt) >= ms(a.startedAt));
    assert.equal(typeof a.durationMs, 'number');
    assert.ok(a.durationMs >= 0);
    prevEnd = ms(a.finishedAt);
  }
  // The retries waited for the backoff (50 ms, then 100 ms, no jitter).
  assert.ok(ms(attempts[1].startedAt) - ms(attempts[0].finishedAt) >= 40);
  assert.ok(ms(attempts[2].startedAt) - ms(attempts[1].finishedAt) >= 90);
  // The same history as the task's attemptHistory.
  assert.deepEqual(done.attemptHistory, attempts);
  assert.equal(done.attempts, 3);

  assert.equal(webhookDeliveries.length, 2);
  assert.deepEqual(webhookDeliveries.map((w) => w.n), [1, 2]);
  assert.deepEqual(webhookDeliveries.map((w) => w.statusCode), [500, 200]);
  assert.ok(webhookDeliveries[0].error, 'the failed delivery says why');
  assert.equal(webhookDeliveries[1].error, null);
  // Every delivery is of the same message: the webhook-id the receiver saw.
  const sentId = hook.requests[0].headers['webhook-id'];
  assert.equal(hook.requests[1].headers['webhook-id'], sentId);
  for (const w of webhookDeliveries) assert.equal(w.webhookId, sentId);
  assert.equal(done.webhook.id, sentId);
  assert.equal(done.webhook.attempts, 2);
  assert.ok(ms(webhookDeliveries[0].startedAt) >= ms(attempts[2].finishedAt), 'the webhook follows the final attempt');
  assert.ok(ms(webhookDeliveries[1].startedAt) - ms(webhookDeliveries[0].finishedAt) >= 90, 'the 100 ms schedule');
  for (const w of webhookDeliveries) {
    assert.ok(ms(w.finishedAt) >= ms(w.startedAt));
    assert.equal(typeof w.durationMs, 'number');
  }
});

test('attempts of a task not yet run are empty; unknown or malformed ids are 404', async (t) => {
  const d = await daemon(t);
  const task = await create(d, { callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 });
  const r = await api(d.url, 'GET', `/v1/tasks/${task.id}/attempts`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { taskId: task.id, attempts: [], webhookDeliveries: [] });
  assertError(await api(d.url, 'GET', '/v1/tasks/01a221b7-4f1f-707d-9c40-a269a508bd38/attempts'), 404, 'not_found');
  assertError(await api(d.url, 'GET', '/v1/tasks/not-a-uuid/attempts'), 404, 'not_found');
});
