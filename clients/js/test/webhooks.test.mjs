// verifyWebhook against real deliveries of the daemon (secret from
// `asyncqueue --print-webhook-secret --db <db>`), and the ways a delivery
// must be refused: forged, stale (either direction), tampered body, missing
// headers; and key rotation (several signatures, several secrets). The
// reference Standard Webhooks library (npm `standardwebhooks`, a test-only
// dependency) must agree with verifyWebhook on every case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { AsyncQueue, verifyWebhook, signWebhook, WebhookVerificationError } from 'asyncqueue-js';
import { startDaemon, startFake, webhookSecret, stopDaemon } from './helpers.mjs';

let d, target, hook, secret, deliveries, aq, tasks;
before(async () => {
  target = await startFake([{ status: 200, body: { image: 'x.png', text: 'naïve ✓' } }]);
  // The first delivery of the second task is refused, so it is retried.
  hook = await startFake((req) => (JSON.parse(req.body).metadata?.refuseOnce && req.n === 2 ? { status: 500 } : { status: 200 }));
  d = await startDaemon({ args: ['--webhook-schedule', '200ms'] });
  secret = await webhookSecret(d.db);
  aq = new AsyncQueue({ baseUrl: d.url });
  tasks = [
    await aq.tasks.create({ callbackUrl: target.url('/'), webhookUrl: hook.url('/hook'), metadata: { n: 1 } }),
  ];
  await hook.waitForRequests(1);
  tasks.push(await aq.tasks.create({ callbackUrl: target.url('/'), webhookUrl: hook.url('/hook'), metadata: { refuseOnce: true } }));
  deliveries = await hook.waitForRequests(3);
});
after(async () => { await target?.close(); await hook?.close(); await stopDaemon(d); });

function otherSecret() {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** The signature computed here, independently of the client, with node:crypto. */
function sign(sec, id, ts, body) {
  const key = Buffer.from(sec.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`;
}

function reject(code) {
  return (e) => {
    assert.ok(e instanceof WebhookVerificationError, `expected WebhookVerificationError, got ${e}`);
    assert.equal(e.code, code);
    return true;
  };
}

test('real deliveries verify, and return the parsed body', async () => {
  assert.match(secret, /^whsec_/);
  const first = deliveries[0];
  const event = await verifyWebhook(first.body, first.headers, secret);
  assert.equal(event.taskId, tasks[0].id);
  assert.equal(event.status, 'completed');
  assert.deepEqual(event.result, { image: 'x.png', text: 'naïve ✓' });
  assert.deepEqual(event.metadata, { n: 1 });
  // The daemon signs exactly as the spec says (checked with node:crypto).
  assert.equal(first.headers['webhook-signature'],
    sign(secret, first.headers['webhook-id'], first.headers['webhook-timestamp'], first.body));
  assert.equal(await signWebhook(secret, first.headers['webhook-id'], first.headers['webhook-timestamp'], first.body),
    first.headers['webhook-signature']);
});

test('a retried delivery keeps its webhook-id and verifies too', async () => {
  const [refused, retried] = deliveries.slice(1);
  assert.equal(refused.headers['webhook-id'], retried.headers['webhook-id']);
  assert.notEqual(refused.headers['webhook-id'], deliveries[0].headers['webhook-id']);
  for (const r of [refused, retried]) {
    const event = await verifyWebhook(r.body, r.headers, secret);
    assert.equal(event.taskId, tasks[1].id);
  }
});

test('headers as a Headers object, a Map or a plain object, in any case; body as bytes', async () => {
  const r = deliveries[0];
  const h = r.headers;
  await verifyWebhook(r.body, new Headers(h), secret);
  await verifyWebhook(r.body, {
    'Webhook-Id': h['webhook-id'], 'WEBHOOK-TIMESTAMP': h['webhook-timestamp'], 'Webhook-Signature': h['webhook-signature'],
  }, secret);
  // A Map with the names as a framework may keep them (not lower case).
  await verifyWebhook(r.body, new Map([['Webhook-Id', h['webhook-id']],
    ['Webhook-Timestamp', h['webhook-timestamp']], ['Webhook-Signature', h['webhook-signature']]]), secret);
  await verifyWebhook(new TextEncoder().encode(r.body), h, secret);
  await verifyWebhook(Buffer.from(r.body), h, secret);
  await verifyWebhook(new TextEncoder().encode(r.body).buffer, h, secret);
  await assert.rejects(verifyWebhook(JSON.parse(r.body), h, secret), TypeError, 'parsed JSON is refused');
});

test('forged: a signature made with another secret is refused', async () => {
  const r = deliveries[0];
  const forged = sign(otherSecret(), r.headers['webhook-id'], r.headers['webhook-timestamp'], r.body);
  await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-signature': forged }, secret),
    reject('no_matching_signature'));
  await assert.rejects(verifyWebhook(r.body, r.headers, otherSecret()), reject('no_matching_signature'));
  await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-signature': 'v1,' }, secret), reject('no_matching_signature'));
});

test('tampered: a changed body, id or timestamp no longer matches', async () => {
  const r = deliveries[0];
  const tampered = r.body.replace('"completed"', '"failed"');
  assert.notEqual(tampered, r.body);
  await assert.rejects(verifyWebhook(tampered, r.headers, secret), reject('no_matching_signature'));
  await assert.rejects(verifyWebhook(`${r.body} `, r.headers, secret), reject('no_matching_signature'));
  await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-id': `${r.headers['webhook-id']}x` }, secret),
    reject('no_matching_signature'));
  const ts = Number(r.headers['webhook-timestamp']);
  await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-timestamp': String(ts + 1) }, secret),
    reject('no_matching_signature'));
});

test('stale: a timestamp outside the tolerance, either way, is refused', async () => {
  const r = deliveries[0];
  const ts = Number(r.headers['webhook-timestamp']);
  // Five minutes exactly is still in; one second more is not.
  assert.ok(await verifyWebhook(r.body, r.headers, secret, { now: (ts + 300) * 1000 }));
  assert.ok(await verifyWebhook(r.body, r.headers, secret, { now: new Date((ts - 300) * 1000) }));
  await assert.rejects(verifyWebhook(r.body, r.headers, secret, { now: (ts + 301) * 1000 }), reject('timestamp_too_old'));
  await assert.rejects(verifyWebhook(r.body, r.headers, secret, { now: (ts - 301) * 1000 }), reject('timestamp_too_new'));
  await assert.rejects(verifyWebhook(r.body, r.headers, secret, { now: (ts + 11) * 1000, toleranceSeconds: 10 }),
    reject('timestamp_too_old'));
  // A stale message re-signed correctly is still stale: the signature does not excuse the time.
  const old = Math.floor(Date.now() / 1000) - 3600;
  const headers = { ...r.headers, 'webhook-timestamp': String(old), 'webhook-signature': sign(secret, r.headers['webhook-id'], old, r.body) };
  await assert.rejects(verifyWebhook(r.body, headers, secret), reject('timestamp_too_old'));
});

test('a toleranceSeconds that is not a number is a TypeError, never a timestamp check switched off', async () => {
  const r = deliveries[0];
  const old = Math.floor(Date.now() / 1000) - 3600;
  const headers = { ...r.headers, 'webhook-timestamp': String(old), 'webhook-signature': sign(secret, r.headers['webhook-id'], old, r.body) };
  // Number(process.env.UNSET) is NaN; an environment variable is a string.
  for (const toleranceSeconds of [NaN, '300', -1, null]) {
    await assert.rejects(verifyWebhook(r.body, headers, secret, { toleranceSeconds }), TypeError, String(toleranceSeconds));
  }
  await assert.rejects(verifyWebhook(r.body, headers, secret, { toleranceSeconds: 60 }), reject('timestamp_too_old'));
});

test('missing or malformed headers are refused', async () => {
  const r = deliveries[0];
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const h = { ...r.headers };
    delete h[name];
    await assert.rejects(verifyWebhook(r.body, h, secret), reject('missing_headers'));
  }
  await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-timestamp': 'yesterday' }, secret), reject('invalid_timestamp'));
  await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-timestamp': '-5' }, secret), reject('invalid_timestamp'));
});

test('rotation: any one of several signatures may match; other versions are ignored', async () => {
  const r = deliveries[0];
  const real = r.headers['webhook-signature'];
  const forged = sign(otherSecret(), r.headers['webhook-id'], r.headers['webhook-timestamp'], r.body);
  for (const sig of [`${forged} ${real}`, `${real} ${forged}`, `v1a,bm90IGEgc2lnbmF0dXJl ${real}`]) {
    assert.ok(await verifyWebhook(r.body, { ...r.headers, 'webhook-signature': sig }, secret), sig);
  }
  const realValue = real.slice(3);
  for (const sig of [`v2,${realValue}`, realValue, `v1a,${realValue}`, `${forged} v1,AAAA`]) {
    await assert.rejects(verifyWebhook(r.body, { ...r.headers, 'webhook-signature': sig }, secret),
      reject('no_matching_signature'), sig);
  }
});

test('rotation: several secrets, any one may have signed it', async () => {
  const r = deliveries[0];
  assert.ok(await verifyWebhook(r.body, r.headers, [otherSecret(), secret]));
  assert.ok(await verifyWebhook(r.body, r.headers, [secret, otherSecret()]));
  await assert.rejects(verifyWebhook(r.body, r.headers, [otherSecret(), otherSecret()]), reject('no_matching_signature'));
  // The secret without its whsec_ prefix, as the spec's libraries accept it.
  assert.ok(await verifyWebhook(r.body, r.headers, secret.slice(6)));
  await assert.rejects(verifyWebhook(r.body, r.headers, 'whsec_!!!not base64!!!'), TypeError);
  await assert.rejects(verifyWebhook(r.body, r.headers, ''), TypeError);
  await assert.rejects(verifyWebhook(r.body, r.headers, []), TypeError);
});

test('the reference Standard Webhooks library agrees on every case', async () => {
  const r = deliveries[0];
  const id = r.headers['webhook-id'];
  const now = Math.floor(Date.now() / 1000);
  const real = r.headers['webhook-signature'];
  const forged = sign(otherSecret(), id, r.headers['webhook-timestamp'], r.body);
  const at = (ts, sig = sign(secret, id, ts, r.body)) => ({ 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sig });
  const cases = [
    ['real delivery', r.body, r.headers],
    ['retried delivery', deliveries[2].body, deliveries[2].headers],
    ['tampered body', r.body.replace('completed', 'cancelled'), r.headers],
    ['forged', r.body, { ...r.headers, 'webhook-signature': forged }],
    ['rotation, forged first', r.body, { ...r.headers, 'webhook-signature': `${forged} ${real}` }],
    ['v1a entry then real', r.body, { ...r.headers, 'webhook-signature': `v1a,xyz ${real}` }],
    ['v2 only', r.body, { ...r.headers, 'webhook-signature': `v2,${real.slice(3)}` }],
    ['no version', r.body, { ...r.headers, 'webhook-signature': real.slice(3) }],
    ['4 min old', r.body, at(now - 240)],
    ['4 min ahead', r.body, at(now + 240)],
    ['10 min old', r.body, at(now - 600)],
    ['10 min ahead', r.body, at(now + 600)],
    ['no signature header', r.body, { 'webhook-id': id, 'webhook-timestamp': String(now) }],
    ['empty signature', r.body, { ...r.headers, 'webhook-signature': '' }],
    ['trailing space', r.body, { ...r.headers, 'webhook-signature': `${real} ` }],
    ['double space', r.body, { ...r.headers, 'webhook-signature': `${forged}  ${real}` }],
  ];
  const reference = new Webhook(secret);
  for (const [name, body, headers] of cases) {
    let theirs, ours;
    try { reference.verify(body, headers); theirs = true; } catch { theirs = false; }
    try { await verifyWebhook(body, headers, secret); ours = true; } catch (e) {
      assert.ok(e instanceof WebhookVerificationError, `${name}: ${e}`);
      ours = false;
    }
    assert.equal(ours, theirs, `${name}: reference says ${theirs}, verifyWebhook says ${ours}`);
  }
  // Both directions: the reference library's own signatures verify here.
  const ts = new Date();
  const sig = reference.sign('msg_x', ts, '{"a":1}');
  assert.deepEqual(await verifyWebhook('{"a":1}', {
    'webhook-id': 'msg_x', 'webhook-timestamp': String(Math.floor(ts / 1000)), 'webhook-signature': sig,
  }, secret), { a: 1 });
});
