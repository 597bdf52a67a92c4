// Helpers shared by the ops-*.test.mjs files (issue 3: operating the queue).
// Everything here builds on harness.mjs; each helper that starts something
// registers its own cleanup on the test, so a failing test leaves nothing
// running.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { startDaemon, startFake, api } from './harness.mjs';

/**
 * Starts a daemon for test t; on cleanup it is stopped with SIGTERM and must
 * exit 0 (the sanitized build reports leaks and errors through the exit code).
 */
export async function daemon(t, opts = {}) {
  const d = await startDaemon(opts);
  t.after(async () => {
    const exit = await d.stop();
    const logs = d.logs();
    d.cleanup();
    assert.deepEqual(exit, { code: 0, signal: null },
      `the daemon must exit 0 on SIGTERM; log tail:\n${logs.slice(-3000)}`);
  });
  return d;
}

/** Starts a fake target/receiver for test t, closed on cleanup. */
export async function fake(t, script) {
  const f = await startFake(script);
  t.after(() => f.close());
  return f;
}

/** The AsyncQueue-Task-Id header of a request recorded by a fake. */
export const taskIdOf = (req) => req.headers['asyncqueue-task-id'];

/**
 * A fake script that answers by the attempt number of each task (counted per
 * AsyncQueue-Task-Id), so concurrent tasks do not consume each other's
 * entries: entries[k] answers the task's (k+1)-th call, the last one repeats.
 * `byTask` may map a task id to its own entries list.
 */
export function perTask(entries, byTask = new Map()) {
  const seen = new Map();
  return (req) => {
    const id = taskIdOf(req);
    const k = (seen.get(id) ?? 0) + 1;
    seen.set(id, k);
    const list = byTask.get(id) ?? entries;
    return list[Math.min(k, list.length) - 1];
  };
}

/** A promise with its resolve function, used to gate fake answers. */
export function gate() {
  let open;
  const p = new Promise((r) => { open = r; });
  p.open = open;
  return p;
}

/** POST /v1/tasks that must answer 202; returns the task. */
export async function create(d, body, headers = {}) {
  const r = await api(d.url, 'POST', '/v1/tasks', body, headers);
  assert.equal(r.status, 202, `create: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** GET /v1/tasks/{id} that must answer 200; returns the task. */
export async function getTask(d, id) {
  const r = await api(d.url, 'GET', `/v1/tasks/${id}`);
  assert.equal(r.status, 200, `get ${id}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Asserts an error answer: status and error code (and field when given). */
export function assertError(r, status, code, field) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body?.error?.code, code, JSON.stringify(r.body));
  if (field !== undefined) assert.equal(r.body.error.field, field, JSON.stringify(r.body));
}

/** Runs SQL through the sqlite3 CLI; returns stdout trimmed. */
export function sql(db, query) {
  return execFileSync('sqlite3', [db, query]).toString().trim();
}

/** Threads of a process, from /proc/<pid>/status. */
export function threadCount(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Threads:\s+(\d+)/m);
  return Number(m[1]);
}

/** Open file descriptors of a process. */
export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A short pause, only to show something does NOT happen (callers say why). */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * GET on a connection of its own (no keep-alive reuse), so each call is one
 * more socket at the daemon; resolves { status, body } with body parsed.
 */
export function getOwnConnection(url) {
  return new Promise((res, rej) => {
    const req = httpRequest(url, { agent: false, headers: { connection: 'close' } }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        res({ status: r.statusCode, body });
      });
    });
    req.on('error', rej);
    req.end();
  });
}

/**
 * Every queue of GET /v1/queues, following nextCursor page by page (limit
 * per page when given). Each page must answer 200, hold at most limit
 * queues (1000 by default), and every page but the last a nextCursor.
 * Returns { queues, pages } (pages: the number of queues on each page).
 */
export async function listQueues(d, { limit, headers = {} } = {}) {
  const queues = [];
  const pages = [];
  let cursor = null;
  for (;;) {
    const q = new URLSearchParams();
    if (limit !== undefined) q.set('limit', String(limit));
    if (cursor !== null) q.set('cursor', cursor);
    const path = `/v1/queues${q.size ? `?${q}` : ''}`;
    const r = await api(d.url, 'GET', path, undefined, headers);
    assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    assert.ok(Array.isArray(r.body.queues), `${path}: ${JSON.stringify(r.body).slice(0, 200)}`);
    assert.ok(r.body.queues.length <= (limit ?? 1000), `${path}: ${r.body.queues.length} queues`);
    assert.ok('nextCursor' in r.body, `${path}: no nextCursor`);
    queues.push(...r.body.queues);
    pages.push(r.body.queues.length);
    if (r.body.nextCursor === null) return { queues, pages };
    assert.equal(typeof r.body.nextCursor, 'string');
    assert.notEqual(r.body.nextCursor, cursor, 'the cursor moves on');
    cursor = r.body.nextCursor;
  }
}
