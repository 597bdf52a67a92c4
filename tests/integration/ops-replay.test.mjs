// Replay (POST /v1/tasks/{id}/retry): a finished task runs again as a new
// series of attempts, optionally with overrides; unfinished tasks are 409;
// bad overrides change nothing; bulk retry by filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitForStatus, waitForTask, waitForWebhook } from './lib/harness.mjs';
import { daemon, fake, create, assertError, taskIdOf, getTask, perTask } from './lib/ops.mjs';
import { rawRequest } from './lib/security.mjs';

const RETRY = ['--retry-base', '50ms', '--retry-jitter', 'false'];

test('a failed task replayed is queued, then completed, with replays 1 and its old attempts kept', async (t) => {
  // Per task: two 500s (retries 1 => failed), then 200 on the replay.
  const target = await fake(t, perTask([{ status: 500 }, { status: 500 }, { status: 200, body: { v: 2 } }]));
  const d = await daemon(t, { args: RETRY });
  const task = await create(d, { callbackUrl: target.url('/job'), retries: 1 });
  const failed = await waitForStatus(d.url, task.id, 'failed');
  assert.equal(failed.attempts, 2);
  assert.equal(failed.replays, 0);

  const r = await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.id, task.id);
  // The answer is the task as it is after the replay committed; the
  // dispatcher may already have claimed it (seen under load), so running
  // is possible here. (Create always answers queued: reported as a doubt.)
  assert.ok(['queued', 'running'].includes(r.body.status), r.body.status);
  assert.equal(r.body.replays, 1);

  const done = await waitForStatus(d.url, task.id, 'completed');
  assert.equal(done.replays, 1);
  assert.equal(done.attempts, 3, 'attempts count over all replays');
  assert.deepEqual(done.result, { v: 2 });
  assert.deepEqual(done.attemptHistory.map((a) => a.statusCode), [500, 500, 200], 'the old attempts stay');
  assert.deepEqual(done.attemptHistory.map((a) => a.n), [1, 2, 3]);
  const viaAttempts = (await api(d.url, 'GET', `/v1/tasks/${task.id}/attempts`)).body.attempts;
  assert.deepEqual(viaAttempts.map((a) => a.statusCode), [500, 500, 200]);
  assert.equal(target.requests.length, 3);
  assert.ok(target.requests.every((q) => taskIdOf(q) === task.id));

  // A completed task can be replayed too, here with a delay, so it is
  // surely queued first; the retry budget starts afresh (retries 1 again).
  const again = await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`, { delay: 0.5 });
  assert.equal(again.status, 202);
  assert.equal(again.body.replays, 2);
  assert.equal(again.body.status, 'queued');
  assert.equal((await getTask(d, task.id)).status, 'queued');
  assert.equal((await waitForStatus(d.url, task.id, 'completed')).attempts, 4);
});

test('replay with overrides: the new callbackUrl gets the call with the new timeout', async (t) => {
  const first = await fake(t, [{ status: 500 }]);
  const second = await fake(t, [{ status: 200, body: 'v2' }]);
  const d = await daemon(t, { args: RETRY });
  const task = await create(d, { callbackUrl: first.url('/v1'), retries: 0, timeout: 30, payload: { a: 1 } });
  await waitForStatus(d.url, task.id, 'failed');

  const r = await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`,
    { callbackUrl: second.url('/v2'), timeout: 7.5, payload: { a: 2 } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.callbackUrl, second.url('/v2'));
  assert.equal(r.body.timeout, 7.5);

  const done = await waitForStatus(d.url, task.id, 'completed');
  assert.equal(done.callbackUrl, second.url('/v2'));
  assert.equal(done.timeout, 7.5);
  assert.deepEqual(done.payload, { a: 2 });
  assert.equal(done.result, 'v2');
  assert.equal(first.requests.length, 1, 'the old target is not called again');
  assert.equal(second.requests.length, 1);
  assert.equal(second.requests[0].url, '/v2');
  assert.deepEqual(JSON.parse(second.requests[0].body), { a: 2 });
  assert.equal(taskIdOf(second.requests[0]), task.id);
});

test('replaying a queued or running task is 409; a bad override is 400 and leaves the task unchanged', async (t) => {
  const target = await fake(t, (req) => (req.url === '/hold' ? { hang: true } : { status: 500 }));
  const d = await daemon(t, { args: RETRY });
  const queued = await create(d, { callbackUrl: target.url('/later'), delay: 3600 });
  const running = await create(d, { callbackUrl: target.url('/hold') });
  await waitForStatus(d.url, running.id, 'running');
  assertError(await api(d.url, 'POST', `/v1/tasks/${queued.id}/retry`), 409, 'task_not_finished');
  assertError(await api(d.url, 'POST', `/v1/tasks/${running.id}/retry`), 409, 'task_not_finished');
  assertError(await api(d.url, 'POST', `/v1/tasks/${queued.id}/retry`, { timeout: 5 }), 409, 'task_not_finished');
  assert.equal((await getTask(d, queued.id)).timeout, 300, 'a refused replay changes nothing');
  assertError(await api(d.url, 'POST', '/v1/tasks/01a221b7-4f1f-707d-9c40-a269a508bd38/retry'), 404, 'not_found');

  const failed = await create(d, { callbackUrl: target.url('/fail'), retries: 0 });
  await waitForStatus(d.url, failed.id, 'failed');
  const before = await getTask(d, failed.id);
  const bad = [
    [{ timeout: -1 }, 'invalid_field', 'timeout'],
    [{ timeout: 0 }, 'invalid_field', 'timeout'],
    [{ callbackUrl: 'ftp://example.com/x' }, 'invalid_field', 'callbackUrl'],
    [{ retries: 1000 }, 'invalid_field', 'retries'],
    [{ callbakUrl: target.url('/typo') }, 'unknown_field', 'callbakUrl'],
    [{ payload: { a: 1 }, body: 'x' }, 'conflicting_fields', undefined],
    [{ queue: 'bad queue name' }, 'invalid_field', 'queue'],
    [{ idempotencyKey: 'k' }, 'unknown_field', 'idempotencyKey'],
    [{ delay: 1, runAt: new Date().toISOString() }, 'conflicting_fields', undefined],
  ];
  for (const [body, code, field] of bad) {
    assertError(await api(d.url, 'POST', `/v1/tasks/${failed.id}/retry`, body), 400, code, field);
  }
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${failed.id}/retry`, '[1]')).status, 400);
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${failed.id}/retry`, '{"timeout":')).status, 400);
  assert.deepEqual(await getTask(d, failed.id), before, 'the task is exactly as before');
  assert.equal(target.requests.filter((q) => q.url === '/fail').length, 1, 'and it was not run again');
});

test('bulk retry replays the failed tasks of one queue and nothing else', async (t) => {
  const target = await fake(t, perTask([{ status: 500 }, { status: 200 }]));
  const d = await daemon(t, { args: RETRY });
  const mk = (queue) => create(d, { callbackUrl: target.url(`/${queue}`), queue, retries: 0 });
  const dlq = [await mk('dlq'), await mk('dlq'), await mk('dlq')];
  const other = await mk('other');
  for (const x of [...dlq, other]) await waitForStatus(d.url, x.id, 'failed');
  // A completed task in the same queue: a replay of it would run it again.
  const ok = await create(d, { callbackUrl: target.url('/ok'), queue: 'dlq', retries: 1 });
  await waitForStatus(d.url, ok.id, 'completed');
  const queued = await create(d, { callbackUrl: target.url('/later'), queue: 'dlq', delay: 3600 });

  // (Whether {} must be refused as for bulk cancel is unclear in docs/api.md:
  // today it replays every failed task. Not asserted; reported to the lead.)
  assertError(await api(d.url, 'POST', '/v1/tasks/retry', { queue: 'dlq', status: 'queued' }), 400, 'invalid_field', 'status');

  const r = await api(d.url, 'POST', '/v1/tasks/retry', { queue: 'dlq' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { retried: 3 });
  for (const x of dlq) {
    const done = await waitForStatus(d.url, x.id, 'completed');
    assert.equal(done.replays, 1);
    assert.equal(done.attempts, 2);
  }
  const o = await getTask(d, other.id);
  assert.equal(o.status, 'failed', 'another queue is untouched');
  assert.equal(o.replays, 0);
  const k = await getTask(d, ok.id);
  assert.equal(k.replays, 0, 'completed tasks are not replayed by default (status defaults to failed)');
  assert.equal(k.attempts, 2);
  assert.equal((await getTask(d, queued.id)).status, 'queued');
  assert.equal(target.requests.filter((q) => q.url === '/ok').length, 2);
  assert.equal(target.requests.filter((q) => q.url === '/other').length, 1);
});

test('a cancelled task is on the dead-letter list and can be replayed', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t);
  const task = await create(d, { callbackUrl: target.url('/x'), delay: 3600 });
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`)).status, 200);
  const dead = (await api(d.url, 'GET', '/v1/tasks?status=failed,cancelled')).body.tasks.map((x) => x.id);
  assert.deepEqual(dead, [task.id]);
  // Replayed with delay 0: it runs now instead of in an hour.
  const r = await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`, { delay: 0 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.status, 'queued');
  const done = await waitForStatus(d.url, task.id, 'completed');
  assert.equal(done.replays, 1);
  assert.equal(done.attempts, 1);
  assert.equal(target.requests.length, 1);
  // Bulk retry of cancelled tasks needs the status filter (default: failed).
  const other = await create(d, { callbackUrl: target.url('/y'), delay: 3600, queue: 'cq' });
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${other.id}/cancel`)).status, 200);
  assert.deepEqual((await api(d.url, 'POST', '/v1/tasks/retry', { queue: 'cq' })).body, { retried: 0 });
  assert.deepEqual((await api(d.url, 'POST', '/v1/tasks/retry', { queue: 'cq', status: ['cancelled'] })).body, { retried: 1 });
  // A replay runs now: the original hour's delay is not applied again.
  assert.equal((await waitForStatus(d.url, other.id, 'completed')).replays, 1);
});

test('after a replay, the task shows its latest webhook message as it was sent (its own url), and each run\'s payload says its run', async (t) => {
  const target = await fake(t, [{ status: 200, body: { ok: 1 } }]);
  const hookA = await fake(t, [{ status: 200 }]);
  const hookB = await fake(t, [{ status: 200 }]);
  const d = await daemon(t, { args: RETRY });
  const task = await create(d, { callbackUrl: target.url('/r'), webhookUrl: hookA.url('/a') });
  const first = (await hookA.waitForRequests(1))[0];
  assert.equal(JSON.parse(first.body.toString()).replays, 0);
  const done = await waitForWebhook(d.url, task.id, 'delivered');
  assert.equal(done.webhook.url, hookA.url('/a'));

  // Replayed later, to another receiver: until this run finishes, the
  // message shown is the first run's, with the url it went to.
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`, { webhookUrl: hookB.url('/b'), delay: 3600 })).status, 202);
  const waiting = await getTask(d, task.id);
  assert.equal(waiting.status, 'queued');
  assert.equal(waiting.webhook.id, done.webhook.id);
  assert.equal(waiting.webhook.url, hookA.url('/a'));

  // Run now, to the second receiver: a new message, its own url, replays 1.
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`)).status, 200);
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`)).status, 202);
  const [, second] = await hookB.waitForRequests(2); // the cancel's message, then the run's
  assert.deepEqual(hookB.requests.map((r) => JSON.parse(r.body.toString()).replays), [1, 2]);
  assert.equal(JSON.parse(second.body.toString()).status, 'completed');
  const last = await waitForTask(d.url, task.id, (x) => x.webhook?.status === 'delivered' && x.replays === 2);
  assert.notEqual(last.webhook.id, done.webhook.id);
  assert.equal(last.webhook.url, hookB.url('/b'));

  // A replay that drops the webhookUrl still shows the last message sent.
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/retry`, { webhookUrl: null, delay: 3600 })).status, 202);
  const dropped = await getTask(d, task.id);
  assert.equal(dropped.webhookUrl, null);
  assert.equal(dropped.webhook?.id, last.webhook.id);
});

test('a replay with an empty chunked body needs no Content-Type; a chunked body that is not JSON is 415', async (t) => {
  const d = await daemon(t);
  const task = await create(d, { callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 });
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`)).status, 200);
  const replay = (chunks, type) => rawRequest(d.port, `POST /v1/tasks/${task.id}/retry HTTP/1.1\r\nHost: x\r\n` +
    `${type ? `Content-Type: ${type}\r\n` : ''}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}0\r\n\r\n`);
  const text = await replay('e\r\n{"delay":3600}\r\n', 'text/plain');
  assert.equal(text.status, 415, text.text);
  assert.equal((await getTask(d, task.id)).status, 'cancelled', 'not replayed');
  const empty = await replay('', undefined); // was 415: any Transfer-Encoding counted as a body
  assert.equal(empty.status, 202, empty.text);
  assert.equal((await getTask(d, task.id)).replays, 1);
});
