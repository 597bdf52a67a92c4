// Types for asyncqueue-js. The API contract is docs/api.md of AsyncQueue.

export declare const VERSION: string;

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type FinalTaskStatus = 'completed' | 'failed' | 'cancelled';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS';
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ClientOptions {
  /** Default: ASYNCQUEUE_URL, else http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Default: ASYNCQUEUE_API_KEY. Sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Default: the global fetch. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Per request attempt, in milliseconds (default 30000; long-polls add their wait). */
  timeoutMs?: number;
  /** Retries of 429/503 and, for idempotent requests, network failures (default 2). */
  maxRetries?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRetries?: number;
}

export interface CreateOptions extends RequestOptions {
  /**
   * Default: `input.idempotencyKey` (null there too sends none), else a new
   * random UUID per call, so that a retried create never makes a second task.
   * `null` sends no key.
   */
  idempotencyKey?: string | null;
}

export interface CreateManyOptions extends RequestOptions {
  /**
   * Default: each item's own `idempotencyKey`, else a new random UUID per item,
   * so that a retried batch never makes a second set of tasks. `null`
   * generates none (items keep their own; a network failure is then retried
   * only if every item has one). One key cannot key many tasks: no string.
   */
  idempotencyKey?: null;
}

/** Fields of `POST /v1/tasks`. */
export interface TaskInput {
  /** http(s) URL of the target. A bare `host/path` gets https:// (http:// for loopback). */
  callbackUrl: string;
  method?: HttpMethod | Lowercase<HttpMethod>;
  headers?: Record<string, string> | null;
  /** Sent as the JSON body. Not with `body`. */
  payload?: unknown;
  /** Sent as the body exactly. Not with `payload`. */
  body?: string;
  /** Where the signed outcome is POSTed. A bare `host/path` gets https:// (http:// for loopback). */
  webhookUrl?: string | null;
  retries?: number;
  /** Seconds one attempt may take. */
  timeout?: number;
  /** Seconds before the first attempt. Not with `runAt`. */
  delay?: number;
  runAt?: string | Date;
  queue?: string | null;
  metadata?: unknown;
  /** Follow up to the daemon's max_redirects redirects, each checked as a new target. */
  followRedirects?: boolean;
  idempotencyKey?: string | null;
}

/** Fields a replay may change (`tasks.retry(id, overrides)`). */
export type TaskOverrides = Partial<Omit<TaskInput, 'idempotencyKey'>>;

export interface TaskError {
  code: string;
  message: string;
}

export interface TaskResponse {
  statusCode: number;
  headers: Record<string, string>;
  durationMs: number;
}

export interface Attempt {
  n: number;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  statusCode: number | null;
  error: TaskError | null;
}

export interface WebhookState {
  id: string;
  url: string;
  status: 'pending' | 'delivering' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
}

export interface Task<Result = unknown, Metadata = unknown> {
  id: string;
  status: TaskStatus;
  queue: string;
  callbackUrl: string;
  method: string;
  headers: Record<string, string>;
  payload?: unknown;
  body?: string;
  webhookUrl: string | null;
  retries: number;
  timeout: number;
  followRedirects: boolean;
  metadata: Metadata | null;
  attempts: number;
  replays: number;
  idempotencyKey: string | null;
  /** The schedule whose run made the task, or null. */
  schedule: string | null;
  createdAt: string;
  updatedAt: string;
  runAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  result: Result | null;
  resultEncoding?: 'base64';
  response: TaskResponse | null;
  error: TaskError | null;
  /** In `get`, `wait` and `cancel` answers, and a create replayed by its idempotency key; not in lists, a 202 or a replay's answer. */
  attemptHistory?: Attempt[];
  /** Where `attemptHistory` is, once a task with a webhookUrl has finished (after a replay: the last run's, until this one finishes). */
  webhook?: WebhookState;
  /** From `create` and `createMany`: the idempotency key found the task it had already made. */
  replayed?: true;
}

export interface ListParams {
  status?: TaskStatus | TaskStatus[];
  queue?: string;
  /** Only tasks this schedule made. */
  schedule?: string;
  createdAfter?: string | Date;
  createdBefore?: string | Date;
  /** 1 to 200 (default 50). */
  limit?: number;
  order?: 'desc' | 'asc';
  cursor?: string;
}

export interface TaskFilter {
  status?: TaskStatus | TaskStatus[];
  queue?: string;
  createdAfter?: string | Date;
  createdBefore?: string | Date;
}

export interface WaitOptions {
  /** Give up after this many ms (default 300000) with WaitTimeoutError. */
  timeoutMs?: number;
  /** Longest single long-poll, seconds (default 60; halved, down to 1, while the daemon's max_wait refuses it). */
  pollSeconds?: number;
  signal?: AbortSignal;
}

export interface AttemptsAnswer {
  taskId: string;
  attempts: Attempt[];
  webhookDeliveries: Array<{
    webhookId: string;
    n: number;
    startedAt: string;
    finishedAt: string | null;
    durationMs: number | null;
    statusCode: number | null;
    /** A message, or null when the receiver answered 2xx. */
    error: string | null;
  }>;
}

/** One page of tasks; `for await` over it yields its tasks and those of every later page. */
export declare class Page implements AsyncIterable<Task> {
  tasks: Task[];
  nextCursor: string | null;
  hasNextPage(): boolean;
  /** The next page, or null after the last. */
  nextPage(): Promise<Page | null>;
  /** This page and every later one. */
  pages(): AsyncGenerator<Page, void, undefined>;
  [Symbol.asyncIterator](): AsyncGenerator<Task, void, undefined>;
}

/**
 * `await` it for the first page, or `for await` it for every item of every
 * page: a Page of tasks (`tasks.list()`), a QueuePage (`queues.page()`) or
 * a SchedulePage (`schedules.page()`).
 */
export declare class PagePromise<P = Page, T = Task> implements PromiseLike<P>, AsyncIterable<T> {
  then<T1 = P, T2 = never>(
    onfulfilled?: ((value: P) => T1 | PromiseLike<T1>) | null,
    onrejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2>;
  catch<T3 = never>(onrejected?: ((reason: unknown) => T3 | PromiseLike<T3>) | null): Promise<P | T3>;
  finally(onfinally?: (() => void) | null): Promise<P>;
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined>;
}

export interface Tasks {
  create(input: TaskInput, options?: CreateOptions): Promise<Task>;
  /** 1 to 1000 tasks in one request, all or none; the tasks in the order given. */
  createMany(items: TaskInput[], options?: CreateManyOptions): Promise<Task[]>;
  get(id: string, options?: RequestOptions): Promise<Task>;
  wait(id: string, options?: WaitOptions): Promise<Task>;
  list(params?: ListParams, options?: RequestOptions): PagePromise;
  iterate(params?: ListParams, options?: RequestOptions): AsyncGenerator<Task, void, undefined>;
  attempts(id: string, options?: RequestOptions): Promise<AttemptsAnswer>;
  cancel(id: string, options?: RequestOptions): Promise<Task>;
  /** At least one filter is required; status may be queued and/or running. */
  cancelMany(filter: TaskFilter, options?: RequestOptions): Promise<{ cancelled: number }>;
  retry(id: string, overrides?: TaskOverrides | null, options?: RequestOptions): Promise<Task>;
  /** status may be completed, failed and/or cancelled (default failed). */
  retryMany(filter?: TaskFilter, options?: RequestOptions): Promise<{ retried: number }>;
}

export interface QueueSettings {
  maxConcurrency?: number;
  ratePerSecond?: number;
  burst?: number;
  paused?: boolean;
  defaultRetries?: number | null;
  defaultTimeout?: number | null;
}

export interface QueueCounts {
  accepted: number;
  cancelled: number;
  dispatched: number;
  completed: number;
  failed: number;
}

export interface Queue {
  name: string;
  paused: boolean;
  maxConcurrency: number;
  ratePerSecond: number;
  burst: number;
  defaultRetries: number | null;
  defaultTimeout: number | null;
  configured: boolean;
  queued: number;
  due: number;
  inflight: number;
  lastMinute: QueueCounts;
  sinceStart: QueueCounts;
}

export interface QueueListParams {
  /** Queues per page, 1–1000 (default 1000). */
  limit?: number;
  /** The nextCursor of the previous page. */
  cursor?: string | null;
}

/** One page of queues, by name; `for await` over it yields its queues and those of every later page. */
export declare class QueuePage implements AsyncIterable<Queue> {
  queues: Queue[];
  nextCursor: string | null;
  hasNextPage(): boolean;
  /** The next page, or null after the last. */
  nextPage(): Promise<QueuePage | null>;
  /** This page and every later one. */
  pages(): AsyncGenerator<QueuePage, void, undefined>;
  [Symbol.asyncIterator](): AsyncGenerator<Queue, void, undefined>;
}

export interface Queues {
  /** Every queue, by name, over as many pages as it takes. */
  list(options?: RequestOptions): Promise<Queue[]>;
  /** One page (`await`), or every queue from there on (`for await`). */
  page(params?: QueueListParams, options?: RequestOptions): PagePromise<QueuePage, Queue>;
  iterate(params?: QueueListParams, options?: RequestOptions): AsyncGenerator<Queue, void, undefined>;
  get(name: string, options?: RequestOptions): Promise<Queue>;
  /** Sets every setting: absent ones take their defaults. */
  update(name: string, settings: QueueSettings, options?: RequestOptions): Promise<Queue>;
  pause(name: string, options?: RequestOptions): Promise<Queue>;
  resume(name: string, options?: RequestOptions): Promise<Queue>;
  delete(name: string, options?: RequestOptions): Promise<void>;
}

/** What a schedule makes a task from: the fields of `POST /v1/tasks` but runAt and idempotencyKey. */
export type ScheduleTaskInput = Omit<TaskInput, 'runAt' | 'idempotencyKey'>;

/** The body of `PUT /v1/schedules/{name}`. */
export interface ScheduleInput {
  /** `min hour dom month dow`, or 6 fields with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly. */
  cron: string;
  /** The IANA time zone cron is read in, e.g. 'Europe/Berlin' (default UTC). */
  timezone?: string | null;
  /** Kept as written; each run makes a task from it. */
  task: ScheduleTaskInput;
  /** Default false. */
  paused?: boolean;
}

export interface Schedule {
  name: string;
  cron: string;
  /** The IANA time zone cron is read in ('UTC' unless one was given). */
  timezone: string;
  /** The template, as written. */
  task: ScheduleTaskInput;
  paused: boolean;
  /** When it fires next; null while paused. */
  nextRunAt: string | null;
  lastRunAt: string | null;
  /** The last task a run made; null before the first. */
  lastTaskId: string | null;
  /** Why the last run made no task (destination refused, backlog full), or null. */
  lastError: string | null;
  runs: number;
  createdAt: string;
  updatedAt: string;
}

export interface ScheduleListParams {
  /** Schedules per page, 1–1000 (default 1000). */
  limit?: number;
  /** The nextCursor of the previous page. */
  cursor?: string | null;
}

/** One page of schedules, by name; `for await` over it yields its schedules and those of every later page. */
export declare class SchedulePage implements AsyncIterable<Schedule> {
  schedules: Schedule[];
  nextCursor: string | null;
  hasNextPage(): boolean;
  /** The next page, or null after the last. */
  nextPage(): Promise<SchedulePage | null>;
  /** This page and every later one. */
  pages(): AsyncGenerator<SchedulePage, void, undefined>;
  [Symbol.asyncIterator](): AsyncGenerator<Schedule, void, undefined>;
}

export interface Schedules {
  /** Creates or replaces the schedule (a replace keeps its runs and last run). */
  put(name: string, schedule: ScheduleInput, options?: RequestOptions): Promise<Schedule>;
  get(name: string, options?: RequestOptions): Promise<Schedule>;
  /** Every schedule, by name, over as many pages as it takes. */
  list(options?: RequestOptions): Promise<Schedule[]>;
  /** One page (`await`), or every schedule from there on (`for await`). */
  page(params?: ScheduleListParams, options?: RequestOptions): PagePromise<SchedulePage, Schedule>;
  iterate(params?: ScheduleListParams, options?: RequestOptions): AsyncGenerator<Schedule, void, undefined>;
  /** The tasks it made stay. */
  delete(name: string, options?: RequestOptions): Promise<void>;
  pause(name: string, options?: RequestOptions): Promise<Schedule>;
  /** Fires from now on; times missed while paused are not made up. */
  resume(name: string, options?: RequestOptions): Promise<Schedule>;
  /** Makes a task from the template now (nextRunAt unchanged) and returns it. */
  run(name: string, options?: RequestOptions): Promise<Task>;
}

export interface WhoAmI {
  scope: 'admin' | 'read';
  /** The key's tenant, or null. */
  tenant: string | null;
  /** The key's label (`api_key` keys: "admin"; no keys configured: "none"). */
  key: string;
  /** Whether the daemon has API keys. */
  authRequired: boolean;
}

export interface StatsMinute {
  /** The minute's start, RFC 3339. */
  minute: string;
  accepted: number;
  completed: number;
  failed: number;
  cancelled: number;
  attempts: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface Stats {
  /** Oldest first, always `minutes` entries. */
  minutes: StatsMinute[];
  backlog: number;
  inflight: number;
  /** Open /v1/events streams. */
  subscribers: number;
}

export declare class AsyncQueue {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  readonly tasks: Tasks;
  readonly queues: Queues;
  readonly schedules: Schedules;
  /** GET /v1/whoami: what the key may do (an enqueue key gets PermissionDeniedError). */
  whoami(options?: RequestOptions): Promise<WhoAmI>;
  /** GET /v1/stats: the last `minutes` (1 to 60, default 60); not for keys with a tenant. */
  stats(params?: { minutes?: number }, options?: RequestOptions): Promise<Stats>;
  /** A raw API call with the client's authentication, errors and retries. */
  request<T = unknown>(method: string, path: string, options?: RequestOptions & {
    query?: Record<string, string | number | boolean | Date | string[] | undefined | null>;
    body?: unknown;
    headers?: Record<string, string>;
    /** Safe to repeat after a network failure (default: true for GET and HEAD, else false). */
    idempotent?: boolean;
  }): Promise<T>;
}

/** Seconds from now that a Retry-After value (seconds or HTTP date) asks for, or null. */
export declare function parseRetryAfter(value: string | null | undefined, nowMs?: number): number | null;

export interface ErrorInfo {
  status?: number;
  code?: string;
  field?: string | null;
  retryAfter?: number | null;
  headers?: Headers | null;
  body?: unknown;
  cause?: unknown;
}

export declare class AsyncQueueError extends Error {
  constructor(message: string, info?: ErrorInfo);
  /** HTTP status; 0 when no response arrived. */
  readonly status: number;
  /** e.g. invalid_field, unauthorized, not_found, task_finished, queue_full, unavailable, network_error, timeout, unexpected_redirect. */
  readonly code: string;
  readonly field: string | null;
  /** Seconds from Retry-After, or null. */
  readonly retryAfter: number | null;
  readonly headers: Headers | null;
  readonly body: unknown;
}
export declare class ValidationError extends AsyncQueueError {}
export declare class AuthenticationError extends AsyncQueueError {}
export declare class PermissionDeniedError extends AsyncQueueError {}
export declare class NotFoundError extends AsyncQueueError {}
export declare class ConflictError extends AsyncQueueError {}
export declare class RateLimitError extends AsyncQueueError {}
export declare class UnavailableError extends AsyncQueueError {}
export declare class NetworkError extends AsyncQueueError {}
export declare class TimeoutError extends NetworkError {}
export declare class WaitTimeoutError extends AsyncQueueError {
  constructor(message: string, info?: ErrorInfo & { task?: Task | null });
  /** The task as last seen (still queued or running). */
  readonly task: Task | null;
}

export type WebhookVerificationErrorCode =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'no_matching_signature'
  | 'invalid_payload';

export declare class WebhookVerificationError extends Error {
  constructor(code: WebhookVerificationErrorCode, message: string);
  readonly code: WebhookVerificationErrorCode;
}

/** The body the daemon POSTs to a task's webhookUrl. */
export interface WebhookEvent<Result = unknown, Metadata = unknown> {
  taskId: string;
  status: FinalTaskStatus;
  queue: string;
  result: Result | null;
  resultEncoding?: 'base64';
  response: TaskResponse | null;
  attempts: number;
  /** The run this is the outcome of: 0, then one more for each replay. */
  replays: number;
  error: TaskError | null;
  metadata: Metadata | null;
  createdAt: string;
  finishedAt: string | null;
}

export type WebhookHeaders =
  | Headers
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

export type WebhookSecret = string | Uint8Array;

export interface VerifyOptions {
  /** Allowed distance of webhook-timestamp from now, both ways (default 300 s); a number >= 0, else TypeError. */
  toleranceSeconds?: number;
  /** "Now" for the timestamp check: a Date or ms since the epoch (default: the clock). */
  now?: Date | number;
}

/**
 * Verifies a Standard Webhooks signature over the raw body and returns the
 * parsed JSON. Throws WebhookVerificationError when it does not verify, and
 * TypeError for a malformed secret or a body that is not raw.
 */
export declare function verifyWebhook<T = WebhookEvent>(
  rawBody: string | Uint8Array | ArrayBuffer | ArrayBufferView,
  headers: WebhookHeaders,
  secret: WebhookSecret | WebhookSecret[],
  options?: VerifyOptions,
): Promise<T>;

/** The `webhook-signature` value (`v1,<base64>`) the daemon would send; for testing receivers. */
export declare function signWebhook(
  secret: WebhookSecret,
  id: string,
  timestamp: number | string,
  rawBody: string | Uint8Array | ArrayBuffer | ArrayBufferView,
): Promise<string>;
