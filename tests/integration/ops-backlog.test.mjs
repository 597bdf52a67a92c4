// --max-backlog: beyond it POST /v1/tasks answers 429 queue_full with
// Retry-After and stores nothing; once a slot frees, creates work again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, countTasks, waitForStatus } from './lib/harness.mjs';
import { daemon, fake, create, assertError } from './lib/ops.mjs';

test('max-backlog 3: the 4th create is 429 with Retry-After and nothing stored; after a cancel it works again', async (t) => {
  const d = await daemon(t, { args: ['--max-backlog', '3'] });
  const mk = (i) => ({ callbackUrl: `http://127.0.0.1:9/b${i}`, delay: 3600 });
  const made = [await create(d, mk(0)), await create(d, mk(1)), await create(d, mk(2))];

  const full = await api(d.url, 'POST', '/v1/tasks', mk(3));
  assertError(full, 429, 'queue_full');
  const retryAfter = full.headers.get('retry-after');
  assert.match(retryAfter ?? '', /^\d+$/, `Retry-After: ${retryAfter}`);
  assert.ok(Number(retryAfter) >= 1);
  assert.equal(await countTasks(d.db), 3, 'nothing stored');
  // Idempotent or not, another queue or not: the backlog is global.
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...mk(4), queue: 'elsewhere' }), 429, 'queue_full');
  assertError(await api(d.url, 'POST', '/v1/tasks', mk(5), { 'idempotency-key': 'k' }), 429, 'queue_full');
  assert.equal(await countTasks(d.db), 3);

  assert.equal((await api(d.url, 'POST', `/v1/tasks/${made[0].id}/cancel`)).status, 200);
  const again = await create(d, mk(6));
  assert.equal(again.status, 'queued');
  assert.equal(await countTasks(d.db), 4, 'the cancelled task stays, but no longer counts');
  assertError(await api(d.url, 'POST', '/v1/tasks', mk(7)), 429, 'queue_full');
  // The idempotency key of the refused request was not burnt.
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${made[1].id}/cancel`)).status, 200);
  assert.equal((await api(d.url, 'POST', '/v1/tasks', mk(5), { 'idempotency-key': 'k' })).status, 202);
});

test('a full backlog still answers the retry of a keyed request it took: 200 with the first task, not 429', async (t) => {
  const d = await daemon(t, { args: ['--max-backlog', '1'] });
  const body = { callbackUrl: 'http://127.0.0.1:9/k', delay: 3600 };
  const first = await api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'k1' });
  assert.equal(first.status, 202);
  // Full now: a new key is refused, the retry of the taken one is replayed,
  // with the key in the header or in the body alike.
  assertError(await api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'k2' }), 429, 'queue_full');
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: 'k3' }), 429, 'queue_full');
  const again = await api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'k1' });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.id, first.body.id);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  const inBody = await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: 'k1' });
  assert.equal(inBody.status, 200);
  assert.equal(inBody.body.id, first.body.id);
  assert.equal(await countTasks(d.db), 1);
});

test('finished tasks free backlog slots', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t, { args: ['--max-backlog', '2'] });
  const a = await create(d, { callbackUrl: target.url('/a') });
  const b = await create(d, { callbackUrl: target.url('/b') });
  await waitForStatus(d.url, a.id, 'completed');
  await waitForStatus(d.url, b.id, 'completed');
  await create(d, { callbackUrl: target.url('/c'), delay: 3600 });
  await create(d, { callbackUrl: target.url('/d'), delay: 3600 });
  assertError(await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/e') }), 429, 'queue_full');
});

test('creates arriving at once are held to max-backlog: exactly the room left is taken, the rest 429, plain and keyed alike', async (t) => {
  const d = await daemon(t, { args: ['--max-backlog', '10'] });
  for (let i = 0; i < 7; i++) await create(d, { callbackUrl: `http://127.0.0.1:9/first${i}`, delay: 3600 });
  // 200 at once land in the same writer batches; the bound counted only
  // committed tasks, and plain creates took 10 (a backlog of 17 for a limit of 10).
  for (const keyed of [false, true]) {
    const room = 10 - (await api(d.url, 'GET', '/v1/stats?minutes=1')).body.backlog;
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => api(d.url, 'POST', '/v1/tasks',
      { callbackUrl: `http://127.0.0.1:9/burst${i}`, delay: 3600 }, keyed ? { 'idempotency-key': `burst-${i}` } : {})));
    const taken = answers.filter((r) => r.status === 202).length;
    const refused = answers.filter((r) => r.status === 429 && r.body.error.code === 'queue_full').length;
    assert.deepEqual([taken, refused], [room, 200 - room], keyed ? 'keyed' : 'plain');
    assert.equal((await api(d.url, 'GET', '/v1/stats?minutes=1')).body.backlog, 10);
    assert.equal(await countTasks(d.db), keyed ? 13 : 10, 'stored: the backlog, and the 3 cancelled to make room');
    if (!keyed) { // make room for the keyed round
      const page = await api(d.url, 'GET', '/v1/tasks?limit=3');
      for (const task of page.body.tasks) assert.equal((await api(d.url, 'POST', `/v1/tasks/${task.id}/cancel`)).status, 200);
    }
  }
});
