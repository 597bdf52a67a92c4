// The walk-through of the README, end to end: accept, call, webhook, GET.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, startFake, api, waitForStatus } from './lib/harness.mjs';

test('a task is accepted, its target called with the payload, and its webhook delivered', async (t) => {
  const target = await startFake([{ status: 200, body: { image: 'x.png' } }]);
  const hook = await startFake([{ status: 200 }]);
  const d = await startDaemon();
  t.after(async () => { await d.stop(); d.cleanup(); await target.close(); await hook.close(); });

  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/generate'), payload: { prompt: 'hi' },
    webhookUrl: hook.url('/on-complete'), retries: 3,
  });
  assert.equal(created.status, 202);
  assert.equal(created.body.status, 'queued');
  assert.equal(created.headers.get('location'), `/v1/tasks/${created.body.id}`);

  const [call] = await target.waitForRequests(1);
  assert.equal(call.method, 'POST');
  assert.deepEqual(JSON.parse(call.body), { prompt: 'hi' });

  const [delivery] = await hook.waitForRequests(1);
  const body = JSON.parse(delivery.body);
  assert.equal(body.taskId, created.body.id);
  assert.equal(body.status, 'completed');
  assert.deepEqual(body.result, { image: 'x.png' });
  assert.equal(body.response.statusCode, 200);

  const task = await waitForStatus(d.url, created.body.id, 'completed');
  assert.equal(task.attempts, 1);
  assert.equal(task.attemptHistory.length, 1);
  assert.deepEqual(task.result, { image: 'x.png' });
  const exit = await d.stop();
  assert.equal(exit.code, 0);
});
