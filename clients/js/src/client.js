// The AsyncQueue REST client: tasks, queues, retries, idempotency keys.
// Web standards only (fetch, AbortController, URLSearchParams, Web Crypto).
import {
  AsyncQueueError, NetworkError, RateLimitError, TimeoutError, UnavailableError, ValidationError, WaitTimeoutError,
  errorFromResponse,
} from './errors.js';
import { env, randomUUID } from './platform.js';

export const VERSION = '0.1.0';

const DEFAULT_URL = 'http://127.0.0.1:8080';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RETRIES = 2;
/** A Retry-After longer than this is not waited for: the error is thrown at once. */
const MAX_RETRY_AFTER_MS = 60_000;
/** The longest delay setTimeout takes (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const FINAL = new Set(['completed', 'failed', 'cancelled']);
/**
 * The 429 and 503 codes of the daemon (and of deploy/nginx.conf's proxy),
 * each answered only when nothing was done. A 429 or 503 of something else
 * in front (a mesh's "upstream reset" 503) may come after the request
 * reached the daemon.
 */
const UNDONE_CODES = new Set(['queue_full', 'rate_limited', 'unavailable', 'shutting_down']);

/**
 * Parses Retry-After (delta seconds or an HTTP date) into seconds from now,
 * or null when absent or unreadable.
 */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (value == null) return null;
  const v = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  if (!/^[A-Za-z]{3}, /.test(v) && !/^[A-Za-z]+day, /.test(v) && !/^[A-Za-z]{3} [A-Za-z]{3} /.test(v)) return null;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, (at - nowMs) / 1000);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    function onAbort() { clearTimeout(t); reject(signal.reason); }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Backoff without Retry-After: 0.5 s, 1 s, 2 s ... capped at 8 s, with jitter (50–100 %). */
function backoffMs(attempt) {
  const base = Math.min(8000, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/**
 * `${VERCEL_URL}/api/on-complete` has no scheme (Vercel's VERCEL_URL is a bare
 * host name), so a URL that starts with a host name (one with a dot, or a
 * loopback host) and no scheme gets https:// (http:// for loopback, as under
 * `vercel dev`). Anything else is sent as given, for the daemon to judge.
 */
export function withScheme(url) {
  if (typeof url !== 'string' || /^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::\d{1,5})?(?:[/?#]|$)/i.exec(url);
  if (!m) return url;
  const host = m[1].toLowerCase();
  const loopback = host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' ||
    /^127\.\d+\.\d+\.\d+$/.test(host);
  if (loopback) return `http://${url}`;
  if (!host.includes('.')) return url; // e.g. "undefined/api/on-complete": left for the daemon to refuse
  return `https://${url}`;
}

function normaliseUrls(input) {
  if (!input || typeof input !== 'object') return input;
  const out = { ...input };
  if ('callbackUrl' in out) out.callbackUrl = withScheme(out.callbackUrl);
  if ('webhookUrl' in out) out.webhookUrl = withScheme(out.webhookUrl);
  return out;
}

function requireId(id, what = 'task id') {
  if (typeof id !== 'string' || id === '') throw new TypeError(`a ${what} (non-empty string) is required`);
  // URL parsing removes "." and ".." segments (encoded or not): /v1/tasks/./retry
  // would reach /v1/tasks/retry, the bulk replay. No id or name is either.
  if (id === '.' || id === '..') throw new TypeError(`'${id}' is not a ${what}`);
  return encodeURIComponent(id);
}

function isoTime(v) {
  if (!(v instanceof Date)) return v;
  if (Number.isNaN(v.getTime())) throw new TypeError('an invalid Date was given as a time filter');
  return v.toISOString();
}

/** Turns a filter (status string or array, Dates) into its JSON body form. */
function filterBody(filter) {
  const out = {};
  for (const [k, v] of Object.entries(filter ?? {})) {
    if (v === undefined) continue;
    out[k] = isoTime(v);
  }
  return out;
}

function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null) continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(isoTime(v)));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * What a page of a list has: its items (under the API's key, `tasks`,
 * `queues` or `schedules`), its cursor, the pages after it, and iteration over their items.
 */
class CursorPage {
  constructor(key, data, fetchNext) {
    /** @type {object[]} */
    this[key] = Array.isArray(data?.[key]) ? data[key] : [];
    /** @type {string|null} */
    this.nextCursor = data?.nextCursor ?? null;
    Object.defineProperty(this, '_key', { value: key, enumerable: false });
    Object.defineProperty(this, '_fetchNext', { value: fetchNext, enumerable: false });
  }

  hasNextPage() {
    return this.nextCursor !== null;
  }

  /** The next page, or null after the last one. */
  async nextPage() {
    return this.hasNextPage() ? this._fetchNext(this.nextCursor) : null;
  }

  /** Every page from this one on. */
  async *pages() {
    for (let page = this; page; page = await page.nextPage()) yield page;
  }

  /** Every item of this page and of the pages after it. */
  async *[Symbol.asyncIterator]() {
    for await (const page of this.pages()) yield* page[page._key];
  }
}

/** One page of `tasks.list()`; also an async iterable over this and every later page's tasks. */
export class Page extends CursorPage {
  constructor(data, fetchNext) {
    super('tasks', data, fetchNext);
  }
}

/** One page of `queues.page()`; also an async iterable over this and every later page's queues. */
export class QueuePage extends CursorPage {
  constructor(data, fetchNext) {
    super('queues', data, fetchNext);
  }
}

/** One page of `schedules.page()`; also an async iterable over this and every later page's schedules. */
export class SchedulePage extends CursorPage {
  constructor(data, fetchNext) {
    super('schedules', data, fetchNext);
  }
}

/**
 * What `tasks.list()`, `queues.page()` and `schedules.page()` return: a promise of the first page
 * (`await` it), and an async iterable over the items of all pages (`for
 * await` it). Nothing is requested until one of the two is used.
 */
export class PagePromise {
  constructor(load) {
    Object.defineProperty(this, '_load', { value: load, enumerable: false });
    Object.defineProperty(this, '_promise', { value: null, writable: true, enumerable: false });
  }

  _start() {
    this._promise ??= this._load();
    return this._promise;
  }

  then(onFulfilled, onRejected) { return this._start().then(onFulfilled, onRejected); }
  catch(onRejected) { return this._start().catch(onRejected); }
  finally(onFinally) { return this._start().finally(onFinally); }

  async *[Symbol.asyncIterator]() {
    yield* await this._start();
  }

  get [Symbol.toStringTag]() { return 'PagePromise'; }
}

/**
 * Pages of a list cut by name (GET /v1/queues, GET /v1/schedules): params
 * limit and cursor; each page a PageClass. Nothing is requested until the
 * PagePromise is used.
 */
function namePages(client, path, PageClass, params, options) {
  const fetchPage = async (cursor) => {
    const p = cursor === undefined ? params : { ...params, cursor };
    const data = await client.request('GET', `${path}${queryString(p)}`, {
      idempotent: true, ...options,
    });
    // The daemon's cursors only move on: the same one again would loop.
    if (cursor !== undefined && data?.nextCursor === cursor) {
      throw new AsyncQueueError(`GET ${path} answered the cursor it was given (${cursor}) as the next one`, {
        status: 200, code: 'invalid_response', body: data,
      });
    }
    return new PageClass(data, fetchPage);
  };
  return new PagePromise(() => fetchPage(undefined));
}

class Tasks {
  constructor(client) {
    Object.defineProperty(this, '_client', { value: client, enumerable: false });
  }

  /**
   * Creates a task. Every call carries an Idempotency-Key (a new random UUID
   * unless `idempotencyKey` is given, or taken from `input.idempotencyKey`),
   * so when a network failure hides the answer the client retries and gets
   * the same task back, never a second one. `idempotencyKey: null` sends none
   * (and then a network failure is not retried).
   */
  async create(input, options = {}) {
    if (!input || typeof input !== 'object' || Array.isArray(input)) {
      throw new TypeError('tasks.create(input): input must be an object with at least callbackUrl');
    }
    let key = options.idempotencyKey;
    // The input's own key, null included (no key, as the option's null).
    if (key === undefined) key = input.idempotencyKey === undefined ? await randomUUID() : input.idempotencyKey;
    // fetch refuses a header value outside Latin-1 or with a line break (a
    // TypeError that would pass for a network failure, and be retried) and
    // trims spaces around it (another key than the one given).
    if (key !== null && (typeof key !== 'string' || !/^[\x20-\x7e]*$/.test(key) || key !== key.trim())) {
      throw new TypeError('tasks.create: idempotencyKey must be printable ASCII without spaces around it ' +
        '(it goes in the Idempotency-Key header)');
    }
    const headers = key === null ? {} : { 'Idempotency-Key': key };
    return this._client.request('POST', '/v1/tasks', {
      body: normaliseUrls(input), headers, idempotent: key !== null, ...options,
    });
  }

  /**
   * Creates many tasks in one request (POST /v1/tasks/batch), all or none,
   * and returns them in the order given. Each item is what `create` takes.
   * Like `create`, every item carries an idempotency key (its own
   * `idempotencyKey`, else a new random UUID), so a batch whose answer was
   * lost is sent again and gets the same tasks back (those items come with
   * `replayed: true`), never a second set. `idempotencyKey: null` generates
   * none: then a network failure is retried only if every item has its own.
   */
  async createMany(items, options = {}) {
    if (!Array.isArray(items) || items.length === 0) {
      throw new TypeError('tasks.createMany(items): items must be a non-empty array of tasks');
    }
    items.forEach((input, i) => {
      if (!input || typeof input !== 'object' || Array.isArray(input)) {
        throw new TypeError(`tasks.createMany(items): items[${i}] must be an object with at least callbackUrl`);
      }
    });
    const { idempotencyKey, ...rest } = options;
    if (idempotencyKey !== undefined && idempotencyKey !== null) {
      throw new TypeError('tasks.createMany(items, options): one idempotencyKey cannot key many tasks; ' +
        'give each item its own idempotencyKey (or pass null to generate none)');
    }
    const tasks = await Promise.all(items.map(async (input) => {
      const out = normaliseUrls(input);
      if (idempotencyKey !== null && out.idempotencyKey == null) out.idempotencyKey = await randomUUID();
      return out;
    }));
    const idempotent = tasks.every((x) => typeof x.idempotencyKey === 'string');
    const data = await this._client.request('POST', '/v1/tasks/batch', { body: { tasks }, idempotent, ...rest });
    return data.tasks;
  }

  /** The task, with attemptHistory and webhook. */
  async get(id, options = {}) {
    return this._client.request('GET', `/v1/tasks/${requireId(id)}`, { idempotent: true, ...options });
  }

  /**
   * Waits until the task is completed, failed or cancelled, with long-polls
   * of at most `pollSeconds` (GET /v1/tasks/{id}?wait=). Throws
   * WaitTimeoutError (with `.task`) when `timeoutMs` passes first.
   */
  async wait(id, options = {}) {
    const { timeoutMs = 300_000, pollSeconds = 60, signal } = options;
    requireId(id);
    if (!(pollSeconds > 0)) throw new TypeError('pollSeconds must be a positive number');
    const deadline = Date.now() + timeoutMs;
    let poll = pollSeconds;
    let task = null;
    let seen = false; // the daemon knew the task: an outage after that is a restart
    for (;;) {
      const left = Math.floor(deadline - Date.now());
      if (task && left < 1) {
        throw new WaitTimeoutError(
          `task ${id} is still ${task.status} after ${timeoutMs} ms`, { task });
      }
      // The first poll always happens (wait=0 when timeoutMs is 0: just a look).
      const wait = Math.max(0, Math.min(poll, left / 1000));
      let polled;
      try {
        // No retries inside a poll: this loop retries, within the deadline.
        polled = await this._client.request('GET', `/v1/tasks/${requireId(id)}`, {
          query: { wait: Number(wait.toFixed(3)) }, idempotent: true, signal, maxRetries: 0,
          timeoutMs: this._client.timeoutMs + wait * 1000,
        });
      } catch (e) {
        // A daemon whose max_wait is below pollSeconds (set to stay under a
        // proxy's read timeout) refuses the wait: ask for half, down to 1 s.
        if (e instanceof ValidationError && e.field === 'wait' && wait > 1) {
          poll = Math.max(1, wait / 2);
          continue;
        }
        // A daemon restarting answers 503 (shutting_down), then nothing (or
        // a proxy's 502) until it is back: ask again while the wait lasts,
        // never sleeping past its end.
        const restart = e instanceof UnavailableError || e instanceof RateLimitError ||
          (seen && (e instanceof NetworkError || e.status === 502 || e.status === 504));
        const pause = Math.min((e.retryAfter ?? 1) * 1000, deadline - Date.now());
        if (!restart || pause <= 0) throw e;
        await sleep(pause, signal);
        continue;
      }
      seen = true;
      task = polled;
      if (FINAL.has(task?.status)) return task;
    }
  }

  /**
   * One page of tasks (`await`), or every task of every page (`for await`).
   * params: status (string or array), queue, schedule, createdAfter, createdBefore
   * (string or Date), limit (1–200), order ('desc' | 'asc'), cursor.
   */
  list(params = {}, options = {}) {
    const fetchPage = async (cursor) => {
      const p = cursor === undefined ? params : { ...params, cursor };
      const data = await this._client.request('GET', `/v1/tasks${queryString(p)}`, {
        idempotent: true, ...options,
      });
      return new Page(data, fetchPage);
    };
    return new PagePromise(() => fetchPage(undefined));
  }

  /** Every task matching params, over all pages (same as `for await` over list()). */
  iterate(params = {}, options = {}) {
    return this.list(params, options)[Symbol.asyncIterator]();
  }

  /** { taskId, attempts: [...], webhookDeliveries: [...] } */
  async attempts(id, options = {}) {
    return this._client.request('GET', `/v1/tasks/${requireId(id)}/attempts`, { idempotent: true, ...options });
  }

  /** Cancels a queued or running task; ConflictError (task_finished) when it is already final. */
  async cancel(id, options = {}) {
    return this._client.request('POST', `/v1/tasks/${requireId(id)}/cancel`, options);
  }

  /** Cancels every queued/running task matching filter; returns { cancelled }. */
  async cancelMany(filter, options = {}) {
    if (!filter || typeof filter !== 'object') {
      throw new TypeError('tasks.cancelMany(filter): give a filter, e.g. { queue: "emails" }');
    }
    return this._client.request('POST', '/v1/tasks/cancel', { body: filterBody(filter), ...options });
  }

  /**
   * Runs a completed, failed or cancelled task again, optionally changing
   * create fields first; ConflictError (task_not_finished) while it is open.
   */
  async retry(id, overrides, options = {}) {
    const body = overrides === undefined || overrides === null ? undefined : normaliseUrls(overrides);
    return this._client.request('POST', `/v1/tasks/${requireId(id)}/retry`, { body, ...options });
  }

  /** Replays every final task matching filter (default status: failed); returns { retried }. */
  async retryMany(filter = {}, options = {}) {
    const body = filterBody(filter);
    // The daemon wants a filter said out loud; with none, this means the
    // dead-letter list (failed tasks), as documented.
    if (Object.keys(body).length === 0) body.status = ['failed'];
    return this._client.request('POST', '/v1/tasks/retry', { body, ...options });
  }
}

class Queues {
  constructor(client) {
    Object.defineProperty(this, '_client', { value: client, enumerable: false });
  }

  /**
   * Every queue the daemon knows (with settings, counters or waiting tasks),
   * by name: one request per 1000 queues, following nextCursor.
   */
  async list(options = {}) {
    const all = [];
    for await (const q of this.page({}, options)) all.push(q);
    return all;
  }

  /**
   * One page of queues (`await`: a QueuePage), or every queue from there on
   * (`for await`). params: limit (1–1000, default 1000), cursor (a page's
   * nextCursor). Pages are cut by name, so queues made or forgotten between
   * two pages skip or repeat no other queue.
   */
  page(params = {}, options = {}) {
    return namePages(this._client, '/v1/queues', QueuePage, params, options);
  }

  /** Every queue from params.cursor on, over all pages (same as `for await` over page()). */
  iterate(params = {}, options = {}) {
    return this.page(params, options)[Symbol.asyncIterator]();
  }

  async get(name, options = {}) {
    return this._client.request('GET', `/v1/queues/${requireId(name, 'queue name')}`, {
      idempotent: true, ...options,
    });
  }

  /** Sets every setting of the queue (absent ones take their defaults); returns the queue. */
  async update(name, settings, options = {}) {
    return this._client.request('PUT', `/v1/queues/${requireId(name, 'queue name')}`, {
      body: settings ?? {}, idempotent: true, ...options,
    });
  }

  async pause(name, options = {}) {
    return this._client.request('POST', `/v1/queues/${requireId(name, 'queue name')}/pause`, {
      idempotent: true, ...options,
    });
  }

  async resume(name, options = {}) {
    return this._client.request('POST', `/v1/queues/${requireId(name, 'queue name')}/resume`, {
      idempotent: true, ...options,
    });
  }

  /** Forgets the queue's settings (its tasks stay); NotFoundError when it had none. */
  async delete(name, options = {}) {
    await this._client.request('DELETE', `/v1/queues/${requireId(name, 'queue name')}`, {
      idempotent: true, ...options,
    });
  }
}

class Schedules {
  constructor(client) {
    Object.defineProperty(this, '_client', { value: client, enumerable: false });
  }

  /**
   * Creates or replaces the schedule `name`: `cron` (5 fields, 6 with
   * seconds first, or @hourly ... @yearly), `timezone` (an IANA name it is
   * read in; UTC by default), `task` (what tasks.create takes, without runAt
   * and idempotencyKey) and `paused` (default false).
   * A replace keeps the schedule's runs and last run. Returns the schedule.
   */
  async put(name, schedule, options = {}) {
    const path = `/v1/schedules/${requireId(name, 'schedule name')}`;
    if (!schedule || typeof schedule !== 'object' || Array.isArray(schedule)) {
      throw new TypeError('schedules.put(name, schedule): schedule must be an object with cron and task');
    }
    const body = { ...schedule };
    if (body.task && typeof body.task === 'object' && !Array.isArray(body.task)) body.task = normaliseUrls(body.task);
    return this._client.request('PUT', path, { body, idempotent: true, ...options });
  }

  async get(name, options = {}) {
    return this._client.request('GET', `/v1/schedules/${requireId(name, 'schedule name')}`, {
      idempotent: true, ...options,
    });
  }

  /** Every schedule, by name: one request per 1000 schedules, following nextCursor. */
  async list(options = {}) {
    const all = [];
    for await (const s of this.page({}, options)) all.push(s);
    return all;
  }

  /**
   * One page of schedules (`await`: a SchedulePage), or every schedule from
   * there on (`for await`). params: limit (1–1000, default 1000), cursor (a
   * page's nextCursor).
   */
  page(params = {}, options = {}) {
    return namePages(this._client, '/v1/schedules', SchedulePage, params, options);
  }

  /** Every schedule from params.cursor on, over all pages (same as `for await` over page()). */
  iterate(params = {}, options = {}) {
    return this.page(params, options)[Symbol.asyncIterator]();
  }

  /** Deletes the schedule (the tasks it made stay); NotFoundError when there is none. */
  async delete(name, options = {}) {
    await this._client.request('DELETE', `/v1/schedules/${requireId(name, 'schedule name')}`, {
      idempotent: true, ...options,
    });
  }

  /** Makes no more tasks until resumed; returns the schedule. */
  async pause(name, options = {}) {
    return this._client.request('POST', `/v1/schedules/${requireId(name, 'schedule name')}/pause`, {
      idempotent: true, ...options,
    });
  }

  /** Fires again from now on (times missed while paused are not made up); returns the schedule. */
  async resume(name, options = {}) {
    return this._client.request('POST', `/v1/schedules/${requireId(name, 'schedule name')}/resume`, {
      idempotent: true, ...options,
    });
  }

  /**
   * Makes one task from the template now (its next time is unchanged) and
   * returns that task, as tasks.create does. Not repeated after a network
   * failure: the first request may have made the task.
   */
  async run(name, options = {}) {
    return this._client.request('POST', `/v1/schedules/${requireId(name, 'schedule name')}/run`, options);
  }
}

export class AsyncQueue {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl]  default: ASYNCQUEUE_URL, else http://127.0.0.1:8080
   * @param {string} [options.apiKey]   default: ASYNCQUEUE_API_KEY
   * @param {typeof fetch} [options.fetch]
   * @param {number} [options.timeoutMs]  per request attempt (default 30000)
   * @param {number} [options.maxRetries] retries of 429/503 and network failures (default 2)
   */
  constructor(options = {}) {
    const e = env();
    // Trimmed: an environment variable pasted with a space or a line break
    // after it would make every request's URL invalid (a TypeError from fetch).
    this.baseUrl = String(options.baseUrl || e.ASYNCQUEUE_URL || DEFAULT_URL).trim().replace(/\/+$/, '');
    // Mistakes of the caller, said at once, not retried as outages.
    let parsed = null;
    try { parsed = new URL(this.baseUrl); } catch { /* below */ }
    if (!parsed || !/^https?:$/.test(parsed.protocol)) {
      throw new TypeError(`baseUrl must be an http:// or https:// URL, not '${this.baseUrl}'`);
    }
    const apiKey = options.apiKey || e.ASYNCQUEUE_API_KEY || null;
    if (apiKey !== null && !/^[\x21-\x7e]+$/.test(apiKey)) {
      throw new TypeError('apiKey must be printable ASCII without spaces (it goes in a header)');
    }
    Object.defineProperty(this, 'apiKey', { value: apiKey, enumerable: false, writable: true });
    const f = options.fetch ?? (typeof globalThis.fetch === 'function'
      ? (input, init) => globalThis.fetch(input, init) : null);
    if (typeof f !== 'function') throw new TypeError('no fetch: pass options.fetch');
    Object.defineProperty(this, '_fetch', { value: f, enumerable: false });
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.tasks = new Tasks(this);
    this.queues = new Queues(this);
    this.schedules = new Schedules(this);
  }

  /**
   * What the key may do: { scope: 'admin' | 'read', tenant, key, authRequired }
   * (GET /v1/whoami). An enqueue key gets PermissionDeniedError.
   */
  async whoami(options = {}) {
    return this.request('GET', '/v1/whoami', { idempotent: true, ...options });
  }

  /**
   * Per-minute counts and latency of the last `minutes` (default 60), oldest
   * first, with backlog, inflight and subscribers (GET /v1/stats).
   */
  async stats(params = {}, options = {}) {
    return this.request('GET', '/v1/stats', { query: { minutes: params?.minutes }, idempotent: true, ...options });
  }

  /**
   * One API call with the retry policy: the daemon's 429 and 503 are retried
   * (they mean nothing was done; those of another proxy only when the
   * request is idempotent); network failures, timeouts, 502 and 504 only when the
   * request is idempotent (GET, PUT, DELETE, pause/resume, and creates, which
   * carry an Idempotency-Key, or a key in every item of a batch). The wait is Retry-After when the server sent
   * one, else an exponential backoff; at most maxRetries retries.
   */
  async request(method, path, opts = {}) {
    // GET and HEAD only look: safe to repeat unless the caller says otherwise.
    const { query, body, headers: extra, idempotent = method === 'GET' || method === 'HEAD', signal } = opts;
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const maxRetries = opts.maxRetries ?? this.maxRetries;
    const url = this.baseUrl + path + queryString(query);
    const headers = { Accept: 'application/json', ...extra };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }

    // Whether an earlier try may have reached the daemon and acted (its
    // answer lost): not after the daemon's own 429 or 503, which did nothing.
    let mayHaveActed = false;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw signal.reason;
      const controller = new AbortController();
      let timedOut = false;
      // setTimeout takes at most 2^31 - 1 ms; more (or Infinity) fired at once.
      const timer = setTimeout(() => { timedOut = true; controller.abort(); }, Math.min(timeoutMs, MAX_TIMER_MS));
      const onAbort = () => controller.abort(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      let res, text, failure;
      try {
        // Never followed: fetch turns a POST answered 301, 302 or 303 into a
        // GET without its body, so a create would come back as a task list.
        res = await this._fetch(url, { method, headers, body: payload, signal: controller.signal, redirect: 'manual' });
        text = await res.text();
      } catch (cause) {
        if (signal?.aborted) throw signal.reason;
        failure = timedOut
          ? new TimeoutError(`no answer from ${this.baseUrl} within ${timeoutMs} ms (${method} ${path})`,
            { code: 'timeout', cause })
          : new NetworkError(`cannot reach ${this.baseUrl} (${method} ${path}): ${cause?.cause?.code ?? cause?.message ?? cause}`,
            { code: 'network_error', cause });
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }

      if (failure) {
        if (!idempotent || attempt >= maxRetries) throw failure;
        mayHaveActed = true;
        await sleep(backoffMs(attempt), signal);
        continue;
      }

      let data;
      if (text) {
        try {
          data = JSON.parse(text);
        } catch {
          data = text;
        }
      }
      // The API never redirects: a 3xx is a proxy in front (http to https,
      // another host), and the request did nothing. In browsers a manual
      // redirect is an opaque response with status 0 and no Location.
      if (res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400)) {
        const location = res.headers.get('location');
        throw new AsyncQueueError(`${method} ${path} was redirected (${res.status || 'opaque'}` +
          `${location ? ` to ${location}` : ''}); the client follows no redirect: set baseUrl to where the API answers`, {
          status: res.status, code: 'unexpected_redirect', headers: res.headers, body: data,
        });
      }
      if (res.ok) {
        if (res.status !== 204 && typeof data !== 'object') {
          throw new AsyncQueueError(`the server answered ${res.status} without JSON (${method} ${path})`, {
            status: res.status, code: 'invalid_response', headers: res.headers, body: data,
          });
        }
        return data;
      }
      // A DELETE sent again after its answer was lost: 404 says the first one
      // got there (the state asked for holds), not that there was nothing.
      if (res.status === 404 && method === 'DELETE' && mayHaveActed) return undefined;
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      const error = errorFromResponse(res.status, res.statusText, res.headers, data, retryAfter);
      hint(error, body);
      const transient = ((res.status === 429 || res.status === 503) && (idempotent || UNDONE_CODES.has(error.code))) ||
        (idempotent && (res.status === 502 || res.status === 504));
      if (transient && attempt < maxRetries) {
        const delay = retryAfter !== null ? retryAfter * 1000 : backoffMs(attempt);
        if (delay <= MAX_RETRY_AFTER_MS) {
          if (!UNDONE_CODES.has(error.code)) mayHaveActed = true;
          await sleep(delay, signal);
          continue;
        }
      }
      throw error;
    }
  }
}

/** Adds a hint when a URL field was built from an unset environment variable. */
function hint(error, body) {
  if (error.status !== 400 || !error.field || !body || typeof body !== 'object') return;
  // A batch names the item: tasks[3].callbackUrl; a schedule its template: task.callbackUrl.
  const item = /^tasks\[(\d+)\]\.(.+)$/.exec(error.field);
  const template = /^task\.(.+)$/.exec(error.field);
  const v = item ? body.tasks?.[Number(item[1])]?.[item[2]]
    : template ? body.task?.[template[1]] : body[error.field];
  if (typeof v === 'string' && /^(undefined|null)(\/|$)/.test(v)) {
    error.message += ` (it is "${v}": is the environment variable it is built from set?)`;
  }
}
