// Webhook delivery: retried on its own schedule while the receiver fails,
// the same webhook-id on every attempt, and Standard Webhooks signatures
// checked by the npm `standardwebhooks` library (not by our own code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { scope, api, waitForStatus, waitForWebhook, runBinary, sleep } from './lib/harness.mjs';

const SCHEDULE_MS = 200;
const SLACK_MS = 25;

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Verifies one recorded delivery with the library; returns the parsed body or throws. */
function verify(secret, delivery, body = delivery.raw.toString('utf8')) {
  return new Webhook(secret).verify(body, {
    'webhook-id': delivery.headers['webhook-id'],
    'webhook-timestamp': delivery.headers['webhook-timestamp'],
    'webhook-signature': delivery.headers['webhook-signature'],
  });
}

test('receiver answers 500 twice, then 200: delivered on the third attempt, same webhook-id and body each time, each signed afresh', async (t) => {
  const s = scope(t);
  const secret = newSecret();
  const target = await s.fake([{ status: 200, body: { ok: 1 } }]);
  const hook = await s.fake([{ status: 500 }, { status: 500 }, { status: 200 }]);
  const d = await s.daemon({
    args: ['--webhook-schedule', `${SCHEDULE_MS}ms,${SCHEDULE_MS}ms,${SCHEDULE_MS}ms`, '--webhook-secret', secret],
  });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/t'), webhookUrl: hook.url('/h') });
  assert.equal(created.status, 202);
  const id = created.body.id;

  const task = await waitForWebhook(d.url, id, 'delivered');
  const deliveries = hook.requests;
  assert.equal(deliveries.length, 3, 'two failures and one success');
  const ids = new Set(deliveries.map((r) => r.headers['webhook-id']));
  assert.equal(ids.size, 1, `one webhook-id for every attempt, got ${[...ids]}`);
  assert.equal(task.webhook.id, deliveries[0].headers['webhook-id']);
  for (const r of deliveries) {
    assert.ok(r.raw.equals(deliveries[0].raw), 'the same body on every attempt');
    assert.equal(verify(secret, r).taskId, id, 'every attempt carries a valid signature');
    const ts = Number(r.headers['webhook-timestamp']);
    assert.ok(Math.abs(ts * 1000 - r.at) < 5000, 'the timestamp is the time of this attempt');
  }
  assert.ok(deliveries[1].at - deliveries[0].at >= SCHEDULE_MS - SLACK_MS, 'the first retry waits webhook_schedule[0]');
  assert.ok(deliveries[2].at - deliveries[1].at >= SCHEDULE_MS - SLACK_MS, 'the second retry waits webhook_schedule[1]');

  assert.equal(task.status, 'completed');
  assert.equal(task.webhook.status, 'delivered');
  assert.equal(task.webhook.attempts, 3);
  assert.equal(task.webhook.lastStatusCode, 200);
  assert.equal(task.webhook.lastError, null);
  assert.equal(task.webhook.nextAttemptAt, null);
  assert.match(task.webhook.deliveredAt, /Z$/);
  assert.equal(target.requests.length, 1, 'a failing receiver never causes the target to be called again');
});

test('receiver drops the connection without answering, then recovers: delivered with attempts 3', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const hook = await s.fake([{ destroy: true }, { destroy: true }, { status: 202 }]);
  const d = await s.daemon({ args: ['--webhook-schedule', '100ms,100ms,100ms'] });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/t'), webhookUrl: hook.url('/h') });
  assert.equal(created.status, 202);
  const task = await waitForWebhook(d.url, created.body.id, 'delivered');
  assert.equal(hook.requests.length, 3);
  assert.equal(new Set(hook.requests.map((r) => r.headers['webhook-id'])).size, 1);
  assert.equal(task.webhook.attempts, 3);
  assert.equal(task.webhook.lastStatusCode, 202);
});

test('when webhook_schedule runs out the message is marked failed and not sent again', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const hook = await s.fake([{ status: 500 }]);
  const d = await s.daemon({ args: ['--webhook-schedule', '50ms,50ms'] });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/t'), webhookUrl: hook.url('/h') });
  assert.equal(created.status, 202);
  const task = await waitForWebhook(d.url, created.body.id, 'failed');
  assert.equal(task.status, 'completed', 'a lost webhook does not change the task');
  assert.equal(task.webhook.attempts, 3, 'the first delivery plus one retry per schedule entry');
  assert.equal(task.webhook.lastStatusCode, 500);
  assert.equal(typeof task.webhook.lastError, 'string');
  assert.equal(task.webhook.deliveredAt, null);
  // Proving a negative: 400 ms is 8 schedule periods.
  await sleep(400);
  assert.equal(hook.requests.length, 3, 'no delivery after the schedule ran out');
});

test('the generated secret (--print-webhook-secret) verifies the delivery with standardwebhooks; a tampered body, id or secret does not', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200, body: { image: 'ü.png' } }]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon();
  const created = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: target.url('/t'), webhookUrl: hook.url('/h'), metadata: { note: 'naïve ☃' },
  });
  assert.equal(created.status, 202);
  const [delivery] = await hook.waitForRequests(1);

  const printed = await runBinary(['--print-webhook-secret', '--db', d.db]);
  assert.equal(printed.code, 0, printed.stderr);
  const secret = printed.stdout.trim();
  assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
  const again = await runBinary(['--print-webhook-secret', '--db', d.db]);
  assert.equal(again.stdout.trim(), secret, 'the secret is kept in the database, not made anew');
  assert.doesNotMatch(printed.stderr + again.stderr, /no database/);
  // A path no daemon uses gets a database of its own, with another secret: said on stderr.
  const elsewhere = await runBinary(['--print-webhook-secret', '--db', `${d.db}-other`]);
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  assert.notEqual(elsewhere.stdout.trim(), secret);
  assert.match(elsewhere.stderr, /there was no database at .*-other: it was created, with this new secret/);

  const body = verify(secret, delivery);
  assert.equal(body.taskId, created.body.id);
  assert.deepEqual(body.metadata, { note: 'naïve ☃' });
  assert.deepEqual(body.result, { image: 'ü.png' });

  const text = delivery.raw.toString('utf8');
  const tampered = text.replace('"completed"', '"failed"');
  assert.notEqual(tampered, text);
  assert.throws(() => verify(secret, delivery, tampered), /signature/i, 'a changed body fails');
  assert.throws(() => verify(secret, delivery, `${text} `), /signature/i, 'one added byte fails');
  assert.throws(() => verify(secret, { ...delivery, headers: { ...delivery.headers, 'webhook-id': 'msg_other' } }),
    /signature/i, 'a changed webhook-id fails');
  assert.throws(() => verify(newSecret(), delivery), /signature/i, 'another secret fails');
});

test('a configured --webhook-secret signs deliveries and is what --print-webhook-secret prints', async (t) => {
  const s = scope(t);
  const secret = newSecret();
  const target = await s.fake([{ status: 200 }]);
  const hook = await s.fake([{ status: 200 }]);
  const d = await s.daemon({ args: ['--webhook-secret', secret] });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/t'), webhookUrl: hook.url('/h') });
  assert.equal(created.status, 202);
  const [delivery] = await hook.waitForRequests(1);
  assert.equal(verify(secret, delivery).taskId, created.body.id);
  assert.throws(() => verify(secret, delivery, delivery.raw.toString().replace(created.body.id, '0'.repeat(36))),
    /signature/i);

  const printed = await runBinary(['--print-webhook-secret', '--webhook-secret', secret, '--db', d.db]);
  assert.equal(printed.code, 0);
  assert.equal(printed.stdout.trim(), secret);
  const fromEnv = await runBinary(['--print-webhook-secret', '--db', d.db], { env: { ASYNCQUEUE_WEBHOOK_SECRET: secret } });
  assert.equal(fromEnv.stdout.trim(), secret);
  await waitForStatus(d.url, created.body.id, 'completed');
});

test('a malformed --webhook-secret is refused at start-up (exit 3)', async () => {
  for (const bad of ['not-a-secret', 'whsec_', 'whsec_c2hvcnQ=' /* 5 bytes */]) {
    const r = await runBinary(['--check-config', '--webhook-secret', bad]);
    assert.equal(r.code, 3, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /webhook_secret/);
  }
});
