// asyncqueue-js: the client for AsyncQueue, a self-hosted HTTP task queue.
export { AsyncQueue, Page, PagePromise, QueuePage, SchedulePage, VERSION, parseRetryAfter } from './client.js';
export {
  AsyncQueueError, ValidationError, AuthenticationError, PermissionDeniedError, NotFoundError, ConflictError,
  RateLimitError, UnavailableError, NetworkError, TimeoutError, WaitTimeoutError,
  WebhookVerificationError,
} from './errors.js';
export { verifyWebhook, signWebhook } from './webhooks.js';
