// A webhook route for the Next.js App Router (and any framework whose
// handlers take a Fetch API Request and return a Response: SvelteKit, Astro,
// Remix, Hono, Nuxt's web handlers):
//
//   // app/api/on-complete/route.js
//   import { webhookHandler } from 'asyncqueue-js/next';
//   export const POST = webhookHandler({ onEvent: async (event) => { ... } });
import { WebhookVerificationError } from './errors.js';
import { env } from './platform.js';
import { checkTolerance, verifyWebhook } from './webhooks.js';

function json(status, value) {
  return new Response(JSON.stringify(value), {
    status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
  });
}

/**
 * Returns `async (request: Request) => Response` that reads the raw body,
 * verifies the Standard Webhooks signature and calls `onEvent(event, meta)`:
 *   401 when the signature, timestamp or headers do not verify (onEvent is not called);
 *   200 when onEvent returns (or the Response it returns);
 *   500 when onEvent throws, or no secret is configured: the daemon retries
 *       the delivery later with the same webhook-id.
 * secret: a `whsec_...` string or an array of them (key rotation); default:
 * ASYNCQUEUE_WEBHOOK_SECRET (one, or several separated by commas, as the
 * daemon reads it), read at each request. A malformed secret answers 500.
 */
export function webhookHandler({ secret, onEvent, toleranceSeconds = 300 } = {}) {
  if (typeof onEvent !== 'function') throw new TypeError('webhookHandler({ onEvent }) needs an onEvent function');
  checkTolerance(toleranceSeconds);
  return async function POST(request) {
    const secrets = secret ?? env().ASYNCQUEUE_WEBHOOK_SECRET;
    if (!secrets || (Array.isArray(secrets) && secrets.length === 0)) {
      console.error('asyncqueue-js: no webhook secret: set ASYNCQUEUE_WEBHOOK_SECRET or pass { secret }');
      return json(500, { error: { code: 'not_configured', message: 'no webhook secret configured' } });
    }
    const raw = new Uint8Array(await request.arrayBuffer());
    let event;
    try {
      event = await verifyWebhook(raw, request.headers, secrets, { toleranceSeconds });
    } catch (e) {
      if (e instanceof WebhookVerificationError) {
        return json(401, { error: { code: e.code, message: e.message } });
      }
      if (e instanceof TypeError) { // the secret itself is malformed: a set-up fault, retried later
        console.error(`asyncqueue-js: the webhook secret cannot be used: ${e.message}`);
        return json(500, { error: { code: 'not_configured', message: 'the webhook secret is malformed' } });
      }
      throw e;
    }
    const meta = {
      webhookId: request.headers.get('webhook-id'),
      timestamp: Number(request.headers.get('webhook-timestamp')),
      request,
    };
    let result;
    try {
      result = await onEvent(event, meta);
    } catch (e) {
      console.error(`asyncqueue-js: onEvent failed for webhook ${meta.webhookId}:`, e);
      return json(500, { error: { code: 'handler_failed', message: 'the webhook handler failed; it will be retried' } });
    }
    if (result instanceof Response) return result;
    return json(200, { ok: true });
  };
}

export { verifyWebhook } from './webhooks.js';
export { WebhookVerificationError } from './errors.js';
