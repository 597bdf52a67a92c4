// webhookHandler (asyncqueue-js/next): the route handler's answers, driven
// with real Request objects signed by signWebhook (whose signatures are
// checked against the daemon's own in webhooks.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { webhookHandler, verifyWebhook, WebhookVerificationError } from 'asyncqueue-js/next';
import { signWebhook } from 'asyncqueue-js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const event = { taskId: 't1', status: 'completed', result: { ok: true }, metadata: null };

async function signed(body = JSON.stringify(event), { key = secret, ts = Math.floor(Date.now() / 1000), id = 'msg_1' } = {}) {
  return new Request('http://localhost/api/on-complete', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': await signWebhook(key, id, ts, body) },
    body,
  });
}

test('200 after onEvent, which gets the event and its webhook id and timestamp', async () => {
  const seen = [];
  const POST = webhookHandler({ secret, onEvent: (e, meta) => { seen.push([e, meta]); } });
  const ts = Math.floor(Date.now() / 1000);
  const res = await POST(await signed(undefined, { ts, id: 'msg_abc' }));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  assert.deepEqual(seen[0][0], event);
  assert.equal(seen[0][1].webhookId, 'msg_abc');
  assert.equal(seen[0][1].timestamp, ts);
  assert.ok(seen[0][1].request instanceof Request);
});

test('401 with the reason when the signature does not verify; onEvent is not called', async () => {
  let called = 0;
  const POST = webhookHandler({ secret, onEvent: () => { called++; } });
  const other = `whsec_${randomBytes(32).toString('base64')}`;
  for (const [req, code] of [
    [await signed(undefined, { key: other }), 'no_matching_signature'],
    [await signed(undefined, { ts: Math.floor(Date.now() / 1000) - 600 }), 'timestamp_too_old'],
    [new Request('http://localhost/', { method: 'POST', body: '{}' }), 'missing_headers'],
  ]) {
    const res = await POST(req);
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, code);
  }
  assert.equal(called, 0);
});

test('the raw bytes are verified: a body that is not valid UTF-8 still verifies byte for byte', async () => {
  const POST = webhookHandler({ secret, onEvent: () => {} });
  const bytes = new Uint8Array([0x22, 0xff, 0xfe, 0x22]); // "\xff\xfe": signed as bytes
  const ts = Math.floor(Date.now() / 1000);
  const req = new Request('http://localhost/', {
    method: 'POST', body: bytes,
    headers: { 'webhook-id': 'm', 'webhook-timestamp': String(ts), 'webhook-signature': await signWebhook(secret, 'm', ts, bytes) },
  });
  const res = await POST(req);
  assert.equal(res.status, 200, 'verified over the exact bytes (a text() round trip would change them)');
});

test('500 when onEvent throws (the daemon will retry), or when no secret is configured', async () => {
  const errors = [];
  const orig = console.error;
  console.error = (...a) => errors.push(a);
  try {
    const failing = webhookHandler({ secret, onEvent: () => { throw new Error('db down'); } });
    const res = await failing(await signed());
    assert.equal(res.status, 500);
    assert.equal((await res.json()).error.code, 'handler_failed');
    assert.ok(errors.some((a) => a.some((x) => x instanceof Error && x.message === 'db down')));

    const saved = process.env.ASYNCQUEUE_WEBHOOK_SECRET;
    delete process.env.ASYNCQUEUE_WEBHOOK_SECRET;
    try {
      const none = webhookHandler({ onEvent: () => {} });
      const r = await none(await signed());
      assert.equal(r.status, 500);
      assert.equal((await r.json()).error.code, 'not_configured');
      // Read at each request: setting it later is enough.
      process.env.ASYNCQUEUE_WEBHOOK_SECRET = secret;
      assert.equal((await none(await signed())).status, 200);
      // A comma list, as the daemon reads the same variable (rotation): each verifies.
      const old = `whsec_${randomBytes(24).toString('base64')}`;
      process.env.ASYNCQUEUE_WEBHOOK_SECRET = ` ${secret} , ${old}`;
      assert.equal((await none(await signed())).status, 200);
      assert.equal((await none(await signed(undefined, { key: old }))).status, 200);
      // A malformed secret is the set-up's fault: 500 not_configured, not a throw.
      process.env.ASYNCQUEUE_WEBHOOK_SECRET = 'whsec_%%%';
      const bad = await none(await signed());
      assert.equal(bad.status, 500);
      assert.equal((await bad.json()).error.code, 'not_configured');
    } finally {
      if (saved === undefined) delete process.env.ASYNCQUEUE_WEBHOOK_SECRET;
      else process.env.ASYNCQUEUE_WEBHOOK_SECRET = saved;
    }
  } finally { console.error = orig; }
});

test('verifyWebhook takes a comma list as the daemon writes it (ASYNCQUEUE_WEBHOOK_SECRET=new,old)', async () => {
  const old = `whsec_${randomBytes(24).toString('base64')}`;
  const req = await signed(undefined, { key: old });
  const got = await verifyWebhook(new Uint8Array(await req.arrayBuffer()), req.headers, `${secret}, ${old}`);
  assert.deepEqual(got, event);
  const POST = webhookHandler({ secret: `${old},${secret}`, onEvent: () => {} });
  assert.equal((await POST(await signed())).status, 200);
});

test('a Response returned by onEvent is the answer; several secrets for rotation', async () => {
  const old = `whsec_${randomBytes(24).toString('base64')}`;
  const POST = webhookHandler({ secret: [secret, old], onEvent: () => new Response('accepted', { status: 202 }) });
  const res = await POST(await signed(undefined, { key: old }));
  assert.equal(res.status, 202);
  assert.equal(await res.text(), 'accepted');
});

test('webhookHandler needs onEvent; the module re-exports verifyWebhook and its error', () => {
  assert.throws(() => webhookHandler({ secret }), TypeError);
  // A tolerance read from an unset variable (NaN) would switch the timestamp check off.
  for (const toleranceSeconds of [NaN, '300', -1]) {
    assert.throws(() => webhookHandler({ secret, onEvent() {}, toleranceSeconds }), TypeError, String(toleranceSeconds));
  }
  assert.equal(typeof verifyWebhook, 'function');
  assert.equal(new WebhookVerificationError('x', 'y').code, 'x');
});
