// Delay and runAt: a delayed task is not called before its time and is
// called after it; a past runAt runs now; max_delay bounds both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitForStatus, countTasks } from './lib/harness.mjs';
import { daemon, fake, create, assertError } from './lib/ops.mjs';

test('a task with delay 1 is called after about a second, not before', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t);
  const sentAt = Date.now();
  const task = await create(d, { callbackUrl: target.url('/later'), delay: 1 });
  assert.equal(Date.parse(task.runAt) - Date.parse(task.createdAt), 1000, 'runAt is createdAt + delay');
  assert.equal(task.status, 'queued');

  const [call] = await target.waitForRequests(1, 10000);
  // Lower bound only (the clock is shared; 50 ms for rounding to ms).
  assert.ok(call.at - sentAt >= 950, `called ${call.at - sentAt} ms after creation`);
  const done = await waitForStatus(d.url, task.id, 'completed');
  assert.ok(Date.parse(done.attemptHistory[0].startedAt) >= Date.parse(task.runAt));
});

test('a fractional delay and a runAt a moment ahead are honoured too', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t);
  const sentAt = Date.now();
  const a = await create(d, { callbackUrl: target.url('/frac'), delay: 0.4 });
  const runAt = new Date(sentAt + 700).toISOString();
  const b = await create(d, { callbackUrl: target.url('/at'), runAt });
  assert.equal(b.runAt, runAt);
  await waitForStatus(d.url, a.id, 'completed');
  await waitForStatus(d.url, b.id, 'completed');
  const at = (path) => target.requests.find((r) => r.url === path).at;
  assert.ok(at('/frac') - sentAt >= 350, `delay 0.4 called after ${at('/frac') - sentAt} ms`);
  assert.ok(at('/at') >= Date.parse(runAt) - 50, `runAt called ${Date.parse(runAt) - at('/at')} ms early`);
});

test('a runAt in the past runs now', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t);
  const task = await create(d, { callbackUrl: target.url('/past'), runAt: '2001-02-03T04:05:06.789Z' });
  // "Now": a generous bound, far below any real scheduling delay.
  await target.waitForRequests(1, 3000);
  await waitForStatus(d.url, task.id, 'completed');
});

test('delay or runAt beyond --max-delay is 400 and stores nothing', async (t) => {
  const d = await daemon(t, { args: ['--max-delay', '10s'] });
  const url = 'http://127.0.0.1:9/x';
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, delay: 10.5 }), 400, 'invalid_field', 'delay');
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, delay: 3600 }), 400, 'invalid_field', 'delay');
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, delay: -1 }), 400, 'invalid_field', 'delay');
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, delay: '5' }), 400, 'invalid_field', 'delay');
  const tooLate = new Date(Date.now() + 60000).toISOString();
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, runAt: tooLate }), 400, 'invalid_field', 'runAt');
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, runAt: 'tomorrow' }), 400, 'invalid_field', 'runAt');
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, delay: 1, runAt: new Date().toISOString() }),
    400, 'conflicting_fields');
  assert.equal(await countTasks(d.db), 0);
  // Within the bound it is accepted.
  await create(d, { callbackUrl: url, delay: 9 });
  assert.equal(await countTasks(d.db), 1);
});
