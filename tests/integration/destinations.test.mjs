// Without allow_private_targets, loopback and private destinations are
// refused: address literals at creation (400), names that resolve to such an
// address when connecting (the attempt fails, nothing reaches the server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope, api, waitForTask, countTasks, sleep } from './lib/harness.mjs';

test('address literals in refused ranges are rejected at creation with 400 blocked_destination', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const d = await s.daemon({ private: false });
  assert.doesNotMatch(d.logs(), /private_allowed/);
  const literals = [
    `http://127.0.0.1:${target.port}/`,
    `http://127.1:${target.port}/`,
    `http://[::1]:${target.port}/`,
    `http://[::ffff:127.0.0.1]:${target.port}/`,
    'http://0.0.0.0/',
    'http://10.1.2.3/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.0.1/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
  ];
  for (const callbackUrl of literals) {
    const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl });
    assert.equal(r.status, 400, `${callbackUrl}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'blocked_destination', callbackUrl);
    assert.equal(r.body.error.field, 'callbackUrl');
    assert.match(r.body.error.message, /allow_private_targets/, 'the message says how to allow it');
  }
  const hook = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: 'https://example.com/', webhookUrl: `http://127.0.0.1:${target.port}/hook`,
  });
  assert.equal(hook.status, 400);
  assert.equal(hook.body.error.code, 'blocked_destination');
  assert.equal(hook.body.error.field, 'webhookUrl');

  assert.equal(await countTasks(d.db), 0);
  // A public destination is still accepted (delayed: never called here).
  const pub = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'https://example.com/hook', delay: 3600 });
  assert.equal(pub.status, 202, JSON.stringify(pub.body));
  assert.equal(await countTasks(d.db), 1);
  assert.equal(target.requests.length, 0);
});

test('a host name that resolves to loopback is accepted, but the call is refused: blocked_destination, no retry, the server gets nothing', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon({ private: false, args: ['--retry-base', '20ms', '--retry-jitter', 'false', '--webhook-schedule', '20ms'] });
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: `http://localhost:${target.port}/`,
    webhookUrl: `http://localhost:${hook.port}/hook`,
    retries: 3,
  });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id;

  // The webhook message is written when the task fails and is itself refused.
  const task = await waitForTask(d.url, id, (x) => x.status === 'failed' && x.webhook?.status === 'failed',
    { what: 'failed task and failed webhook' });
  assert.equal(task.error.code, 'blocked_destination');
  assert.match(task.error.message, /loopback/);
  assert.equal(task.response, null);
  assert.equal(task.attempts, 1, 'a blocked destination is not retried');
  assert.equal(task.attemptHistory.length, 1);
  assert.equal(task.attemptHistory[0].error.code, 'blocked_destination');
  assert.equal(task.attemptHistory[0].statusCode, null);
  assert.equal(task.webhook.attempts, 1, 'a blocked webhook is not retried either');
  assert.equal(task.webhook.lastStatusCode, null);

  // Proving a negative: with 20 ms backoff and schedule, 300 ms would hold
  // several retries. The fakes must have received nothing at all.
  await sleep(300);
  assert.equal(target.requests.length, 0, 'the target received nothing');
  assert.equal(hook.requests.length, 0, 'the webhook receiver received nothing');
  const again = await api(d.url, 'GET', `/v1/tasks/${id}`);
  assert.equal(again.body.attempts, 1);
});
