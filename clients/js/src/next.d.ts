import type { WebhookEvent, WebhookSecret } from './index.js';

export { verifyWebhook, WebhookVerificationError } from './index.js';

export interface WebhookMeta {
  /** The webhook-id header: the same on every retry of one message, for dropping duplicates. */
  webhookId: string;
  /** The webhook-timestamp header (Unix seconds). */
  timestamp: number;
  request: Request;
}

export interface WebhookHandlerOptions<T = WebhookEvent> {
  /** `whsec_...`, or several during key rotation. Default: ASYNCQUEUE_WEBHOOK_SECRET (read per request). */
  secret?: WebhookSecret | WebhookSecret[];
  /** Called once the signature verifies. Return a Response to answer with it; throw to answer 500 (the daemon retries). */
  onEvent: (event: T, meta: WebhookMeta) => void | Response | Promise<void | Response>;
  /** Default 300. */
  toleranceSeconds?: number;
}

/** A route handler: 401 on a bad signature, 200 after onEvent, 500 when onEvent throws. */
export declare function webhookHandler<T = WebhookEvent>(
  options: WebhookHandlerOptions<T>,
): (request: Request) => Promise<Response>;
