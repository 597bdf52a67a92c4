// Misbehaving targets and a webhook receiver that is away for a long time.
// Each test starts its own daemon and fakes, and measures what the target
// saw from its side (when each call arrived, when its connection was
// closed), so a timeout that fires late, or a retry that comes too early,
// is caught by the clock of the party it hurts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  LONG, startDaemon, startFake, Client, request, tempDir, waitFor, recordResult, procStats, verifyWebhook,
  WEBHOOK_SECRET, sleep, mono,
} from './lib/faults.mjs';
import { check, formatReport } from './lib/checker.mjs';

const FINAL = ['completed', 'failed', 'cancelled'];

/** A daemon, a client, and a helper to wait for one task's end. */
async function setup(t, args = [], behave, receiverBehave) {
  const tmp = tempDir('aq-target-');
  let target = null, receiver = null, daemon = null;
  t.after(async () => {
    if (daemon) await daemon.kill();
    if (target) await target.close();
    if (receiver) await receiver.close();
    tmp.cleanup();
  });
  target = await startFake(behave, { name: 'target' });
  receiver = receiverBehave ? await startFake(receiverBehave, { name: 'receiver' }) : null;
  daemon = await startDaemon({
    db: join(tmp.dir, 'aq.db'),
    args: ['--retry-base', '100ms', '--retry-jitter', 'false', '--lease-grace', '2s',
      '--webhook-secret', WEBHOOK_SECRET, ...args],
  });
  const client = new Client();
  const create = async (body, key = `k-${client.log.length}`) => {
    const r = await client.create(daemon.url, key, { callbackUrl: target.url('/t'), ...body });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id;
  };
  const finished = async (id, timeout = 20000) => waitFor(async () => {
    const r = await request(daemon.url, 'GET', `/v1/tasks/${id}`);
    return FINAL.includes(r.body?.status) ? r.body : null;
  }, { timeout, interval: 50, what: `task ${id} to finish` });
  const checkRun = () => check({ accepted: client.log, db: daemon.db ?? join(tmp.dir, 'aq.db'),
    target: target.entries(), webhooks: receiver ? receiver.entries() : null });
  return { daemon, target, receiver, client, create, finished, checkRun };
}

test('a target that hangs: the task timeout fires on time, every attempt', { timeout: 60000 }, async (t) => {
  const s = await setup(t, [], () => ({ hang: true }));
  const t0 = mono();
  const id = await s.create({ timeout: 1, retries: 1 });
  const task = await s.finished(id);
  const total = mono() - t0;
  const calls = s.target.log;
  const heldMs = calls.map((c) => (c.closedAt ?? mono()) - c.at);
  const r = s.checkRun();
  recordResult('target-hang', {
    ok: r.ok, timeoutMs: 1000, attempts: task.attempts, status: task.status,
    errors: task.attemptHistory.map((a) => a.error?.code), durationsMs: task.attemptHistory.map((a) => a.durationMs),
    connectionHeldMs: heldMs.map(Math.round), totalMs: Math.round(total),
  });
  assert.equal(task.status, 'failed');
  assert.equal(task.attempts, 2, 'one try and one retry, no more');
  assert.equal(calls.length, 2);
  for (const a of task.attemptHistory) {
    assert.equal(a.error?.code, 'timeout');
    assert.ok(a.durationMs >= 950 && a.durationMs <= 1800, `attempt took ${a.durationMs} ms for a 1 s timeout`);
  }
  for (const h of heldMs) assert.ok(h >= 900 && h <= 1900, `the target's connection was held ${h} ms`);
  assert.ok(r.ok, formatReport(r));
});

test('a target that drips one byte a second: the timeout still fires on time', { timeout: 60000 }, async (t) => {
  const s = await setup(t, [], () => ({ drip: { intervalMs: 1000 } }));
  const id = await s.create({ timeout: 2.5, retries: 0 });
  const task = await s.finished(id);
  const [call] = s.target.log;
  await waitFor(() => call.closedAt !== null, { what: 'the dripping connection to be closed' });
  const held = call.closedAt - call.at;
  recordResult('target-drip', {
    ok: true, timeoutMs: 2500, status: task.status, error: task.attemptHistory[0].error?.code,
    durationMs: task.attemptHistory[0].durationMs, connectionHeldMs: Math.round(held),
  });
  assert.equal(task.status, 'failed');
  assert.equal(task.attemptHistory[0].error?.code, 'timeout');
  assert.ok(task.attemptHistory[0].durationMs >= 2450 && task.attemptHistory[0].durationMs <= 3300,
    `attempt took ${task.attemptHistory[0].durationMs} ms for a 2.5 s timeout`);
  assert.ok(held >= 2400 && held <= 3400, `the dripping connection was held ${held} ms`);
});

test('a target that resets mid-body: connection_failed, retried, then completed', { timeout: 60000 }, async (t) => {
  const s = await setup(t, [], (rec) => (rec.n === 1 ? { resetMidBody: true } : { status: 200, body: { ok: 1 } }));
  const id = await s.create({ timeout: 5, retries: 2 });
  const task = await s.finished(id);
  const r = s.checkRun();
  recordResult('target-reset', {
    ok: r.ok, status: task.status, attempts: task.attempts,
    errors: task.attemptHistory.map((a) => a.error?.code ?? null),
    firstError: task.attemptHistory[0].error?.message,
  });
  assert.equal(task.status, 'completed');
  assert.equal(task.attempts, 2);
  assert.equal(task.attemptHistory[0].error?.code, 'connection_failed');
  assert.deepEqual(task.result, { ok: 1 });
  assert.ok(r.ok, formatReport(r));
});

test('a target with an endless body: cut at max_response_bytes, response_too_large, not retried',
  { timeout: 60000 }, async (t) => {
    const s = await setup(t, ['--max-response-bytes', '64KiB'], () => ({ endless: true }));
    const before = procStats(s.daemon.pid);
    const id = await s.create({ timeout: 20, retries: 3 });
    const task = await s.finished(id);
    const [call] = s.target.log;
    await waitFor(() => call.closedAt !== null, { what: 'the endless connection to be closed' });
    const held = call.closedAt - call.at;
    await sleep(300);
    const after = procStats(s.daemon.pid);
    recordResult('target-endless', {
      ok: true, capBytes: 65536, status: task.status, attempts: task.attempts,
      error: task.attemptHistory[0].error?.code, durationMs: task.attemptHistory[0].durationMs,
      connectionHeldMs: Math.round(held), bytesSentBeforeCut: call.sentBytes,
      rssBeforeKiB: before.rssKiB, rssAfterKiB: after.rssKiB,
    });
    assert.equal(task.status, 'failed');
    assert.equal(task.attempts, 1, 'response_too_large is final');
    assert.equal(task.attemptHistory[0].error?.code, 'response_too_large');
    assert.equal(task.result ?? null, null, 'no partial body is kept');
    assert.ok(held < 3000, `the endless connection was held ${held} ms`);
    assert.ok(after.rssKiB - before.rssKiB < 32 * 1024, `RSS grew by ${after.rssKiB - before.rssKiB} KiB`);
  });

test('a target answering Retry-After: the next attempt waits that long, not the backoff', { timeout: 60000 },
  async (t) => {
    const httpDate = () => new Date(Date.now() + 3000).toUTCString();
    const s = await setup(t, [], (rec) => {
      if (rec.taskId && rec.attempt === 1 && rec.body.includes('secs')) return { status: 503, headers: { 'retry-after': '2' } };
      if (rec.taskId && rec.attempt === 1) return { status: 429, headers: { 'retry-after': httpDate() } };
      return { status: 200 };
    });
    const idSecs = await s.create({ timeout: 5, retries: 3, payload: { kind: 'secs' } });
    const idDate = await s.create({ timeout: 5, retries: 3, payload: { kind: 'date' } });
    const [a, b] = [await s.finished(idSecs), await s.finished(idDate)];
    const gap = (id) => {
      const calls = s.target.log.filter((c) => c.taskId === id);
      return calls.length === 2 ? calls[1].at - calls[0].at : null;
    };
    const r = s.checkRun();
    const gaps = { seconds: gap(idSecs), httpDate: gap(idDate) };
    recordResult('target-retry-after', { ok: r.ok, retryBaseMs: 100, gapsMs: gaps, statuses: [a.status, b.status] });
    assert.equal(a.status, 'completed');
    assert.equal(b.status, 'completed');
    assert.ok(gaps.seconds >= 1950 && gaps.seconds <= 3500, `Retry-After: 2 gave a ${gaps.seconds} ms gap`);
    // An HTTP date has whole seconds: 3 s ahead means 2 to 3 s.
    assert.ok(gaps.httpDate >= 1950 && gaps.httpDate <= 4500, `Retry-After: <date +3 s> gave ${gaps.httpDate} ms`);
    assert.ok(r.ok, formatReport(r));
  });

test('a webhook receiver down for a long time, then back: delivered once, same webhook-id, signed',
  { timeout: LONG ? 180000 : 60000 }, async (t) => {
    const DOWN_MS = LONG ? 30000 : 3000;
    const TASKS = 5;
    let failing = true;
    const s = await setup(t, ['--webhook-schedule', Array(LONG ? 200 : 60).fill('200ms').join(',')],
      () => ({ status: 200 }), () => (failing ? { status: 503 } : { status: 200 }));
    // Down: first refusing connections, then up but answering 503.
    await s.receiver.down();
    const ids = [];
    for (let i = 0; i < TASKS; i++) {
      ids.push(await s.create({ timeout: 5, retries: 0, webhookUrl: s.receiver.url('/hook'), payload: { i } }));
    }
    const t0 = mono();
    // While it is away, the webhooks are retried and stay pending.
    await waitFor(async () => {
      const r = await request(s.daemon.url, 'GET', `/v1/tasks/${ids[0]}`);
      return r.body?.webhook?.attempts >= 3 ? r.body : null;
    }, { timeout: 15000, what: 'several failed deliveries while the receiver is down' });
    await sleep(Math.max(0, DOWN_MS / 2 - (mono() - t0)));
    await s.receiver.up();
    await sleep(DOWN_MS / 2);
    const during = await request(s.daemon.url, 'GET', `/v1/tasks/${ids[0]}`);
    failing = false;
    const tasks = [];
    for (const id of ids) {
      tasks.push(await waitFor(async () => {
        const r = await request(s.daemon.url, 'GET', `/v1/tasks/${id}`);
        return r.body?.webhook?.status === 'delivered' ? r.body : null;
      }, { timeout: 20000, what: `the webhook of ${id} to be delivered` }));
    }
    const taken = s.receiver.log.filter((d) => d.status === 200);
    const r = s.checkRun();
    recordResult('webhook-receiver-down', {
      ok: r.ok, downMs: DOWN_MS, tasks: TASKS, schedule: '200ms x ' + (LONG ? 200 : 60),
      deliveryAttempts: tasks.map((x) => x.webhook.attempts), receiverSaw: s.receiver.log.length,
      taken: taken.length, pendingWhileDown: during.body.webhook.status, lastErrorWhileDown: during.body.webhook.lastError,
      duplicateWebhooks: r.summary.duplicateWebhooks,
    });
    assert.equal(during.body.webhook.status, 'pending', 'while the receiver fails, the webhook stays pending');
    for (const x of tasks) {
      assert.ok(x.webhook.attempts > 3, `${x.id}: only ${x.webhook.attempts} delivery attempts`);
      const got = taken.filter((d) => d.taskId === x.id);
      assert.equal(got.length, 1, `${x.id}: the receiver took ${got.length} deliveries`);
      assert.equal(got[0].webhookId, x.webhook.id, 'the delivered webhook-id is the stored one');
      // Every try (the failed ones the receiver saw too) carried the same id.
      const seen = new Set(s.receiver.log.filter((d) => d.taskId === x.id).map((d) => d.webhookId));
      assert.deepEqual([...seen], [x.webhook.id]);
      assert.ok(verifyWebhook(WEBHOOK_SECRET, got[0].headers, got[0].body), 'the delivery is signed');
      assert.ok(Math.abs(Number(got[0].headers['webhook-timestamp']) * 1000 - got[0].wallAt) < 2000,
        'the signature timestamp is fresh, not the first try\'s');
    }
    assert.ok(r.ok, formatReport(r));
  });
