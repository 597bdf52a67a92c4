// Webhook verification per Standard Webhooks (https://www.standardwebhooks.com):
//   signed content:  `${webhook-id}.${webhook-timestamp}.${raw body}`
//   signature:       base64(HMAC-SHA256(key, signed content)), key = base64-decoded
//                    secret after its `whsec_` prefix
//   webhook-signature: space-separated `v1,<base64>` entries; any match passes,
//                    entries of other versions are ignored
//   webhook-timestamp: Unix seconds, within the tolerance (default 5 min) of now,
//                    in either direction
// Only Web Crypto, TextEncoder and atob/btoa are used, so it runs on edge runtimes.
import { WebhookVerificationError } from './errors.js';
import { webCrypto } from './platform.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });
const SECRET_PREFIX = 'whsec_';

function headerValue(headers, name) {
  if (!headers) return null;
  // A Map's keys are as the caller wrote them ('Webhook-Id'): looked up
  // without regard to case, as an object's are.
  const keys = headers instanceof Map ? [...headers.keys()] : null;
  if (keys) {
    const key = keys.find((k) => typeof k === 'string' && k.toLowerCase() === name);
    const v = key === undefined ? null : headers.get(key);
    if (Array.isArray(v)) return v.join(' ');
    return v == null ? null : String(v);
  }
  if (typeof headers.get === 'function') {
    return headers.get(name); // Headers (case-insensitive by itself)
  }
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === name) {
      const v = headers[key];
      if (Array.isArray(v)) return v.join(' ');
      return v == null ? null : String(v);
    }
  }
  return null;
}

function toBytes(body) {
  if (typeof body === 'string') return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError(
    'verifyWebhook needs the raw request body (a string, Uint8Array or ArrayBuffer, e.g. ' +
    '`await request.text()`), not parsed JSON: the signature covers the exact bytes sent');
}

function base64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** The HMAC key bytes of a `whsec_...` secret (the prefix is optional, as in the spec's libraries). */
function secretKey(secret) {
  if (secret instanceof Uint8Array) return secret;
  if (typeof secret !== 'string' || !secret) {
    throw new TypeError('the webhook secret must be a non-empty string like whsec_...');
  }
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  let key;
  try {
    key = base64ToBytes(b64);
  } catch {
    throw new TypeError('the webhook secret is not whsec_ followed by base64');
  }
  if (key.length === 0) throw new TypeError('the webhook secret is empty');
  return key;
}

async function hmac(key, content) {
  const { subtle } = await webCrypto();
  const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, content));
}

/** Compares two strings in time that depends only on their lengths. */
function timingSafeEqual(a, b) {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function signedContent(id, timestamp, bodyBytes) {
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.length + bodyBytes.length);
  content.set(prefix, 0);
  content.set(bodyBytes, prefix.length);
  return content;
}

function nowSeconds(now) {
  if (now === undefined || now === null) return Math.floor(Date.now() / 1000);
  const ms = now instanceof Date ? now.getTime() : Number(now);
  if (!Number.isFinite(ms)) throw new TypeError('now must be a Date or milliseconds since the epoch');
  return Math.floor(ms / 1000);
}

/**
 * A tolerance that is not a number would switch the timestamp check off
 * without a word (NaN compares false; a string is concatenated), so a
 * replayed message would pass: refused instead.
 */
export function checkTolerance(toleranceSeconds) {
  if (typeof toleranceSeconds !== 'number' || !(toleranceSeconds >= 0)) {
    throw new TypeError(`toleranceSeconds must be a number of seconds >= 0, not ${String(toleranceSeconds)}`);
  }
}

/**
 * Signs a message the way the daemon does: returns the `webhook-signature`
 * value `v1,<base64>`. For testing receivers; the daemon signs real deliveries.
 */
export async function signWebhook(secret, id, timestamp, rawBody) {
  const sig = await hmac(secretKey(secret), signedContent(id, String(timestamp), toBytes(rawBody)));
  return `v1,${bytesToBase64(sig)}`;
}

/**
 * Verifies a webhook delivery and returns its parsed JSON body.
 * Throws WebhookVerificationError (code: missing_headers, invalid_timestamp,
 * timestamp_too_old, timestamp_too_new, no_matching_signature, invalid_payload).
 */
export async function verifyWebhook(rawBody, headers, secret, options = {}) {
  const { toleranceSeconds = 300, now } = options;
  checkTolerance(toleranceSeconds);
  const body = toBytes(rawBody);
  // A string may list several, separated by commas, as the daemon's own
  // webhook_secret does (rotation); base64 has no comma, so it is unambiguous.
  const list = Array.isArray(secret) ? secret
    : typeof secret === 'string' && secret.includes(',') ? secret.split(',').map((s) => s.trim()).filter(Boolean)
      : [secret];
  const secrets = list.map(secretKey);
  if (secrets.length === 0) throw new TypeError('give at least one webhook secret');

  const id = headerValue(headers, 'webhook-id');
  const timestamp = headerValue(headers, 'webhook-timestamp');
  const signature = headerValue(headers, 'webhook-signature');
  if (!id || !timestamp || !signature) {
    throw new WebhookVerificationError('missing_headers',
      'missing webhook-id, webhook-timestamp or webhook-signature header');
  }
  if (!/^[0-9]{1,15}$/.test(timestamp)) {
    throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not Unix seconds');
  }
  const ts = Number(timestamp);
  const current = nowSeconds(now);
  if (current - ts > toleranceSeconds) {
    throw new WebhookVerificationError('timestamp_too_old',
      `webhook-timestamp is more than ${toleranceSeconds} s old (a replayed or delayed message?)`);
  }
  if (ts > current + toleranceSeconds) {
    throw new WebhookVerificationError('timestamp_too_new',
      `webhook-timestamp is more than ${toleranceSeconds} s in the future (check the clocks)`);
  }

  // Signed over the timestamp as a number, as the spec's reference libraries do.
  const content = signedContent(id, String(ts), body);
  const expected = [];
  for (const key of secrets) expected.push(bytesToBase64(await hmac(key, content)));
  let matched = false;
  for (const entry of signature.split(' ')) {
    // `v1,<sig>`; other versions (e.g. `v1a` for asymmetric keys) are skipped.
    const [version, given] = entry.split(',');
    if (version !== 'v1' || given === undefined) continue;
    for (const e of expected) if (timingSafeEqual(given, e)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError('no_matching_signature', 'no matching signature found');

  if (body.length === 0) return undefined; // as the reference library: verified, but nothing to parse
  try {
    return JSON.parse(decoder.decode(body));
  } catch {
    throw new WebhookVerificationError('invalid_payload', 'the signed body is not JSON');
  }
}
