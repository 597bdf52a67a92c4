// Retention: finished tasks (with their attempts and webhook records) older
// than --retention are purged in the background; queued tasks, recent ones
// and those whose webhook is still pending stay. The clock seam is the
// database: finished_at is moved into the past while the daemon is stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { api, waitFor, waitForStatus, tempDir } from './lib/harness.mjs';
import { daemon, fake, create, sql, getTask } from './lib/ops.mjs';

const HOUR = 3600 * 1000;

test('with --retention 10m, tasks finished an hour ago are purged with their attempts; the rest stay', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'aq.db');
  const target = await fake(t, (req) => (req.url.startsWith('/fail') ? { status: 500 } : { status: 200 }));
  const hook = await fake(t, (req) => (req.url === '/down' ? { status: 500 } : { status: 200 }));
  const args = ['--retention', '10m', '--idempotency-window', '10m', '--webhook-schedule', '1h', '--retry-base', '20ms',
    '--retry-jitter', 'false'];

  // Interleaved, so purging must pick the old ones out from the others.
  const d1 = await daemon(t, { db, args });
  const oldDone = await create(d1, { callbackUrl: target.url('/ok'), webhookUrl: hook.url('/up') });
  const recentDone = await create(d1, { callbackUrl: target.url('/ok') });
  const oldFailed = await create(d1, { callbackUrl: target.url('/fail'), retries: 1 });
  const queued = await create(d1, { callbackUrl: target.url('/later'), delay: 3600 });
  const oldCancelled = await create(d1, { callbackUrl: target.url('/later'), delay: 3600 });
  const oldPendingHook = await create(d1, { callbackUrl: target.url('/ok'), webhookUrl: hook.url('/down') });
  const oldFailedToo = await create(d1, { callbackUrl: target.url('/fail'), retries: 0 });
  const oldKey = await create(d1, { callbackUrl: target.url('/later'), delay: 3600 }, { 'idempotency-key': 'old-key' });
  const freshKey = await create(d1, { callbackUrl: target.url('/later'), delay: 3600 }, { 'idempotency-key': 'fresh-key' });
  assert.equal((await api(d1.url, 'POST', `/v1/tasks/${oldCancelled.id}/cancel`)).status, 200);
  for (const x of [oldDone, recentDone, oldPendingHook]) await waitForStatus(d1.url, x.id, 'completed');
  for (const x of [oldFailed, oldFailedToo]) await waitForStatus(d1.url, x.id, 'failed');
  await waitFor(async () => (await getTask(d1, oldDone.id)).webhook?.status === 'delivered', { what: 'webhook delivered' });
  await waitFor(async () => (await getTask(d1, oldPendingHook.id)).webhook?.attempts === 1, { what: 'webhook tried once' });
  assert.equal((await getTask(d1, oldPendingHook.id)).webhook.status, 'pending', 'its retry is an hour away');
  const exit = await d1.stop();
  assert.equal(exit.code, 0);

  const old = [oldDone, oldFailed, oldCancelled, oldPendingHook, oldFailedToo];
  const seqOf = Object.fromEntries([...old, recentDone, queued].map((x) =>
    [x.id, Number(sql(db, `SELECT seq FROM tasks WHERE id = '${x.id}'`))]));
  const oldIds = old.map((x) => `'${x.id}'`).join(',');
  // Every finished task has finished_at (cancelled ones too); move it an hour back.
  assert.equal(sql(db, `SELECT count(*) FROM tasks WHERE id IN (${oldIds}) AND finished_at IS NULL`), '0');
  sql(db, `UPDATE tasks SET finished_at = finished_at - ${HOUR} WHERE id IN (${oldIds})`);
  // An idempotency key from 25 hours ago: past the 10-minute window.
  sql(db, `UPDATE idempotency SET created_at = created_at - ${25 * HOUR} WHERE task_id = '${oldKey.id}'`);
  assert.equal(sql(db, `SELECT count(*) FROM idempotency WHERE task_id = '${oldKey.id}'`), '1');
  const attemptsOf = (x) => Number(sql(db, `SELECT count(*) FROM attempts WHERE task_seq = ${seqOf[x.id]}`));
  const webhooksOf = (x) => Number(sql(db, `SELECT count(*) FROM webhooks WHERE task_seq = ${seqOf[x.id]}`));
  assert.equal(attemptsOf(oldDone), 1);
  assert.equal(attemptsOf(oldFailed), 2);
  assert.equal(webhooksOf(oldDone), 1);
  const hookAttempts = () => Number(sql(db, 'SELECT count(*) FROM webhook_attempts'));
  assert.equal(hookAttempts(), 2);

  const d2 = await daemon(t, { db, args });
  const purged = [oldDone, oldFailed, oldCancelled, oldFailedToo];
  await waitFor(async () => {
    for (const x of purged) if ((await api(d2.url, 'GET', `/v1/tasks/${x.id}`)).status !== 404) return false;
    return true;
  }, { timeout: 10000, what: 'the old finished tasks to be purged' });

  for (const x of purged) {
    assert.equal((await api(d2.url, 'GET', `/v1/tasks/${x.id}/attempts`)).status, 404);
    assert.equal(attemptsOf(x), 0, `attempts of ${x.id} are gone`);
    assert.equal(webhooksOf(x), 0, `webhooks of ${x.id} are gone`);
  }
  assert.equal(hookAttempts(), 1, 'only the pending webhook keeps its attempt record');
  const listed = (await api(d2.url, 'GET', '/v1/tasks?limit=200')).body.tasks.map((x) => x.id);
  for (const x of purged) assert.ok(!listed.includes(x.id));

  // What must stay: a recent finished task, a queued one, and an old one
  // whose webhook is still to be delivered.
  assert.equal((await getTask(d2, recentDone.id)).status, 'completed');
  assert.equal(attemptsOf(recentDone), 1);
  assert.equal((await getTask(d2, queued.id)).status, 'queued');
  const pending = await getTask(d2, oldPendingHook.id);
  assert.equal(pending.status, 'completed');
  assert.equal(pending.webhook.status, 'pending');
  assert.equal(attemptsOf(oldPendingHook), 1);
  assert.deepEqual(listed.sort(), [recentDone.id, queued.id, oldPendingHook.id, oldKey.id, freshKey.id].sort());

  // The expired key is forgotten (its task stays: it is queued); the fresh
  // one still guards its task.
  await waitFor(() => sql(db, `SELECT count(*) FROM idempotency WHERE task_id = '${oldKey.id}'`) === '0',
    { what: 'the expired idempotency key to be purged' });
  assert.equal(sql(db, `SELECT count(*) FROM idempotency WHERE task_id = '${freshKey.id}'`), '1');
  const other = { callbackUrl: target.url('/other'), delay: 3600 };
  const reused = await api(d2.url, 'POST', '/v1/tasks', other, { 'idempotency-key': 'old-key' });
  assert.equal(reused.status, 202, JSON.stringify(reused.body));
  assert.notEqual(reused.body.id, oldKey.id);
  assert.equal((await api(d2.url, 'POST', '/v1/tasks', other, { 'idempotency-key': 'fresh-key' })).status, 422);
});

test('retention starts where the oldest task is, however many came and went before, and keeps the newest', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'aq.db');
  const target = await fake(t, [{ status: 200 }]);
  const args = ['--retention', '1m', '--idempotency-window', '1m'];
  const d1 = await daemon(t, { db, args });
  const made = [];
  for (let i = 0; i < 3; i++) made.push(await create(d1, { callbackUrl: target.url(`/t${i}`) }));
  for (const x of made) await waitForStatus(d1.url, x.id, 'completed');
  // A cursor a client keeps from before (oldest first, after the first task).
  const stale = (await api(d1.url, 'GET', '/v1/tasks?order=asc&limit=1')).body.nextCursor;
  assert.ok(stale);
  assert.equal((await d1.stop()).code, 0);
  // As if four million tasks had come and gone before these three, which
  // finished an hour ago. Each pass walked from seq 0, 2,000 at a step: it
  // reached them after about 200 s.
  const GAP = 4000000;
  sql(db, `UPDATE attempts SET task_seq = task_seq + ${GAP}`);
  sql(db, `UPDATE webhooks SET task_seq = task_seq + ${GAP}`);
  sql(db, `UPDATE tasks SET seq = seq + ${GAP}, finished_at = finished_at - ${HOUR}`);
  const newest = Number(sql(db, 'SELECT max(seq) FROM tasks'));
  const d2 = await daemon(t, { db, args });
  await waitFor(async () => (await api(d2.url, 'GET', `/v1/tasks/${made[0].id}`)).status === 404 &&
    (await api(d2.url, 'GET', `/v1/tasks/${made[1].id}`)).status === 404, { timeout: 15000, what: 'the two older tasks purged' });
  // The newest stays, whatever its age: a new task takes the highest seq + 1,
  // and with the highest gone it took one already handed out (a cursor a
  // client may hold).
  assert.equal((await getTask(d2, made[2].id)).status, 'completed');
  const next = await create(d2, { callbackUrl: target.url('/next'), delay: 3600 });
  assert.ok(Number(sql(db, `SELECT seq FROM tasks WHERE id = '${next.id}'`)) > newest, 'a new seq');
  // The kept cursor goes on from the oldest task stored, in one page (it
  // walked the purged seqs a window at a time, in empty pages).
  const page = await api(d2.url, 'GET', `/v1/tasks?order=asc&limit=10&cursor=${encodeURIComponent(stale)}`);
  assert.equal(page.status, 200, JSON.stringify(page.body));
  assert.deepEqual(page.body.tasks.map((x) => x.id), [made[2].id, next.id]);
});
