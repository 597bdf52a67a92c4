// Typed errors. Every error the client throws is an AsyncQueueError (or a
// WebhookVerificationError from verifyWebhook), so one `instanceof` check
// separates AsyncQueue's answers from bugs in the caller's own code.

/** An error answered by the daemon, or a failure to reach it. */
export class AsyncQueueError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, field?: string|null, retryAfter?: number|null,
   *          headers?: Headers|null, body?: unknown, cause?: unknown}} [info]
   */
  constructor(message, info = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = new.target.name;
    /** HTTP status (0 when no response arrived). */
    this.status = info.status ?? 0;
    /** The API's error code, e.g. `invalid_field`, `queue_full`, `network_error`. */
    this.code = info.code ?? 'unknown_error';
    /** The field at fault, when one is. */
    this.field = info.field ?? null;
    /** Seconds the server asked to wait (Retry-After), or null. */
    this.retryAfter = info.retryAfter ?? null;
    /** Response headers (null when no response arrived). */
    this.headers = info.headers ?? null;
    /** The parsed response body, when there was one. */
    this.body = info.body;
  }
}

/** 400 (and 413, 415, 431): the request is wrong; `field` says which part. */
export class ValidationError extends AsyncQueueError {}
/** 401: missing or wrong API key. */
export class AuthenticationError extends AsyncQueueError {}
/** 403 `forbidden`: the key's scope (read, enqueue) or tenant does not allow this call. */
export class PermissionDeniedError extends AsyncQueueError {}
/** 404: no such task, queue or route. */
export class NotFoundError extends AsyncQueueError {}
/** 409 (`task_finished`, `task_not_finished`) and 422 (`idempotency_key_reused`). */
export class ConflictError extends AsyncQueueError {}
/** 429 `queue_full`: the backlog is full; `retryAfter` says when to try again. */
export class RateLimitError extends AsyncQueueError {}
/** 503 `unavailable` / `shutting_down`: nothing was stored; retry later. */
export class UnavailableError extends AsyncQueueError {}
/** The daemon could not be reached, or the connection broke before an answer. */
export class NetworkError extends AsyncQueueError {}
/** No answer within `timeoutMs` (a NetworkError with code `timeout`). */
export class TimeoutError extends NetworkError {}
/** `tasks.wait()` gave up before the task finished; `task` is how it was last seen. */
export class WaitTimeoutError extends AsyncQueueError {
  constructor(message, info = {}) {
    super(message, { ...info, code: 'wait_timeout' });
    this.task = info.task ?? null;
  }
}

/** verifyWebhook() refused the message; `code` says why. */
export class WebhookVerificationError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
  }
}

const byStatus = {
  400: ValidationError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: ValidationError,
  415: ValidationError,
  422: ConflictError,
  429: RateLimitError,
  431: ValidationError,
  503: UnavailableError,
};

/** Builds the typed error for a non-2xx response. */
export function errorFromResponse(status, statusText, headers, body, retryAfter) {
  const err = body && typeof body === 'object' && body.error && typeof body.error === 'object'
    ? body.error : null;
  const code = typeof err?.code === 'string' ? err.code : `http_${status}`;
  const message = typeof err?.message === 'string' && err.message
    ? err.message
    : `the server answered ${status}${statusText ? ` ${statusText}` : ''}`;
  const Cls = byStatus[status] ?? AsyncQueueError;
  return new Cls(message, {
    status, code, field: typeof err?.field === 'string' ? err.field : null, retryAfter, headers, body,
  });
}
