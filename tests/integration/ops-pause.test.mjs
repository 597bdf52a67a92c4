// Pause and resume a queue: a paused queue starts nothing (a running call
// finishes), accepts tasks, and runs them once resumed; GET /v1/queues shows
// the state and the counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitForStatus } from './lib/harness.mjs';
import { daemon, fake, create, taskIdOf, gate, assertError } from './lib/ops.mjs';

test('pause stops dispatch, a running call still finishes, resume runs the waiting tasks', async (t) => {
  const held = gate();
  const target = await fake(t, (req) => (req.url === '/running' ? { until: held } : { status: 200 }));
  const d = await daemon(t);

  // A call already running in queue p when it is paused.
  const running = await create(d, { callbackUrl: target.url('/running'), queue: 'p' });
  await waitForStatus(d.url, running.id, 'running');

  const paused = await api(d.url, 'POST', '/v1/queues/p/pause');
  assert.equal(paused.status, 200, JSON.stringify(paused.body));
  assert.equal(paused.body.name, 'p');
  assert.equal(paused.body.paused, true);

  const waiting = [];
  for (let i = 0; i < 3; i++) waiting.push(await create(d, { callbackUrl: target.url(`/p${i}`), queue: 'p' }));
  const later = await create(d, { callbackUrl: target.url('/later'), queue: 'p', delay: 3600 });

  const q = (await api(d.url, 'GET', '/v1/queues/p')).body;
  assert.equal(q.paused, true);
  assert.equal(q.inflight, 1);
  assert.equal(q.queued, 4, 'queued counts delayed tasks too');
  assert.equal(q.due, 3, 'due counts only those whose time has come');
  const all = (await api(d.url, 'GET', '/v1/queues')).body.queues;
  const listed = all.find((x) => x.name === 'p');
  assert.ok(listed, JSON.stringify(all));
  assert.equal(listed.paused, true);
  assert.equal(listed.queued, 4);
  assert.equal(listed.due, 3);
  assert.equal(listed.inflight, 1);

  // The running call finishes while paused.
  held.open();
  await waitForStatus(d.url, running.id, 'completed');

  // A control task in another queue, created after the paused ones: once it
  // has completed, the dispatcher has had its chance at the paused tasks.
  const control = await create(d, { callbackUrl: target.url('/control') });
  await waitForStatus(d.url, control.id, 'completed');
  const called = target.requests.map(taskIdOf);
  for (const x of waiting) assert.ok(!called.includes(x.id), 'a task of a paused queue was called');
  for (const x of waiting) assert.equal((await api(d.url, 'GET', `/v1/tasks/${x.id}`)).body.status, 'queued');
  const q2 = (await api(d.url, 'GET', '/v1/queues/p')).body;
  assert.equal(q2.inflight, 0);
  assert.equal(q2.due, 3);

  const resumed = await api(d.url, 'POST', '/v1/queues/p/resume');
  assert.equal(resumed.status, 200);
  assert.equal(resumed.body.paused, false);
  for (const x of waiting) await waitForStatus(d.url, x.id, 'completed');
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${later.id}`)).body.status, 'queued');
  const q3 = (await api(d.url, 'GET', '/v1/queues/p')).body;
  assert.equal(q3.paused, false);
  assert.equal(q3.queued, 1);
  assert.equal(q3.due, 0);
  assert.equal(q3.inflight, 0);
  assert.equal(q3.sinceStart.dispatched, 4);
  assert.equal(q3.sinceStart.completed, 4);
  assert.equal(q3.lastMinute.completed, 4);
});

test('pause and resume keep the other settings; an unknown queue is 404', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t);
  const put = await api(d.url, 'PUT', '/v1/queues/keep', { maxConcurrency: 3, ratePerSecond: 2.5, burst: 4 });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const p = (await api(d.url, 'POST', '/v1/queues/keep/pause')).body;
  assert.deepEqual([p.paused, p.maxConcurrency, p.ratePerSecond, p.burst], [true, 3, 2.5, 4]);
  const task = await create(d, { callbackUrl: target.url('/k'), queue: 'keep' });
  const r = (await api(d.url, 'POST', '/v1/queues/keep/resume')).body;
  assert.deepEqual([r.paused, r.maxConcurrency, r.ratePerSecond, r.burst], [false, 3, 2.5, 4]);
  await waitForStatus(d.url, task.id, 'completed');
  assertError(await api(d.url, 'GET', '/v1/queues/never-heard-of'), 404, 'not_found');
});
