// Integration test harness: starts the real asyncqueue binary on port 0 with
// a fresh SQLite file, fake targets and webhook receivers that answer from a
// script and record what they got, and wait-for helpers (no fixed sleeps).
//
// The binary is AQ_BIN (set by tools/test.sh), else ../../build/asyncqueue.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.AQ_BIN
  ? resolve(process.env.AQ_BIN)
  : resolve(here, '../../../build/asyncqueue');

/** Polls fn until it returns a truthy value; returns that value. */
export async function waitFor(fn, { timeout = 10000, interval = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
        (last instanceof Error ? `: ${last.message}` : ''));
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A temporary directory removed by cleanup(). */
export function tempDir(prefix = 'aq-test-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts the daemon. Options:
 *   db:      database path (default: a new temp file)
 *   args:    extra command-line arguments
 *   env:     extra environment variables
 *   private: pass --allow-private-targets (default true: fakes live on loopback)
 * Returns { url, port, db, proc, logs(), waitForLog(re), stop(signal), kill() }.
 */
export async function startDaemon(opts = {}) {
  const tmp = opts.db ? null : tempDir();
  const db = opts.db ?? join(tmp.dir, 'aq.db');
  const args = ['--listen', '127.0.0.1:0', '--db', db];
  if (opts.private !== false) args.push('--allow-private-targets');
  args.push(...(opts.args ?? []));
  const env = { ...process.env, ...(opts.env ?? {}) };
  for (const k of Object.keys(env)) {
    if (k.startsWith('ASYNCQUEUE_') && !(opts.env && k in opts.env)) delete env[k];
  }
  const proc = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.AQ_TEST_VERBOSE) process.stderr.write(d); });
  proc.stdout.on('data', (d) => { stdout += d; });
  const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  let exitInfo = null;
  exited.then((e) => { exitInfo = e; });

  const port = await waitFor(() => {
    if (exitInfo) throw new Error(`daemon exited (${JSON.stringify(exitInfo)}):\n${stderr}`);
    const m = stderr.match(/asyncqueue\.started .*port=(\d+)/);
    return m ? Number(m[1]) : null;
  }, { timeout: 15000, what: 'the daemon to start' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, { what: '/healthz' });

  const daemon = {
    url, port, db, proc,
    logs: () => stderr,
    stdout: () => stdout,
    exited,
    async waitForLog(re, timeout = 10000) {
      return waitFor(() => stderr.match(re), { timeout, what: `log ${re}` });
    },
    /** Sends signal (default SIGTERM) and resolves with the exit info. */
    async stop(signal = 'SIGTERM', timeout = 20000) {
      if (!exitInfo) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeout);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
    /** kill -9, keeping the database for a restart. */
    async kill() {
      proc.kill('SIGKILL');
      return exited;
    },
    cleanup() { if (tmp) tmp.cleanup(); },
  };
  return daemon;
}

/** Runs the binary to completion and returns { code, stdout, stderr }. */
export function runBinary(args, { env = {}, timeout = 15000 } = {}) {
  return new Promise((res, rej) => {
    const clean = { ...process.env, ...env };
    for (const k of Object.keys(clean)) if (k.startsWith('ASYNCQUEUE_') && !(k in env)) delete clean[k];
    const p = spawn(BIN, args, { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); rej(new Error(`timed out: ${args.join(' ')}`)); }, timeout);
    p.on('exit', (code) => { clearTimeout(t); res({ code, stdout, stderr }); });
  });
}

/**
 * A fake HTTP server on 127.0.0.1, port 0. `script` decides each answer:
 * an array (one entry per request, the last one repeats) or a function
 * (req, n) => entry. An entry is
 *   { status = 200, headers = {}, body = '', delayMs = 0, hang = false, destroy = false }
 * (hang: never answer; destroy: drop the connection without answering).
 * An entry may also carry `until: Promise`: the answer waits until it settles
 * (a gate the test opens), after delayMs.
 * Every request is recorded as { n, method, url, headers, body, at }, and
 * later gets endAt (the answer was sent), closedAt (the exchange ended,
 * answered or not) and aborted (true when the connection closed before the
 * answer was sent: the client gave up, as a cancelled call does, or a
 * destroy entry dropped it).
 * The fake also tracks inflight (requests received and not yet closed) and
 * maxInflight; waitForAborted(n) waits for n aborted requests.
 */
export async function startFake(script = [{ status: 200 }]) {
  const requests = [];
  const sockets = new Set();
  const pick = (req, n) => (typeof script === 'function'
    ? script(req, n)
    : script[Math.min(n - 1, script.length - 1)]);
  let inflight = 0;
  let maxInflight = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    let rec = null;
    let closedEarly = false;
    const onClose = () => {
      if (!rec) { closedEarly = true; return; }
      if (rec.closedAt !== undefined) return;
      rec.closedAt = Date.now();
      rec.aborted = !res.writableFinished;
      inflight--;
    };
    res.on('close', onClose);
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      rec = {
        n: requests.length + 1,
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      requests.push(rec);
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      if (closedEarly) onClose();
      res.on('finish', () => { rec.endAt = Date.now(); });
      const entry = pick(rec, rec.n) ?? { status: 200 };
      if (entry.delayMs) await new Promise((r) => setTimeout(r, entry.delayMs));
      if (entry.until) await entry.until.catch(() => {});
      if (entry.hang) return;
      if (res.destroyed) return;
      if (entry.destroy) { req.socket.destroy(); return; }
      const body = typeof entry.body === 'string' || Buffer.isBuffer(entry.body)
        ? entry.body
        : entry.body === undefined ? '' : JSON.stringify(entry.body);
      const headers = { ...(entry.headers ?? {}) };
      if (entry.body !== undefined && typeof entry.body !== 'string' && !Buffer.isBuffer(entry.body)) {
        headers['content-type'] ??= 'application/json';
      }
      res.writeHead(entry.status ?? 200, headers);
      res.end(body);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    requests,
    get inflight() { return inflight; },
    get maxInflight() { return maxInflight; },
    async waitForAborted(n = 1, timeout = 10000) {
      await waitFor(() => requests.filter((r) => r.aborted).length >= n,
        { timeout, what: `${n} aborted request(s) at the fake on ${port}` });
      return requests.filter((r) => r.aborted);
    },
    async waitForRequests(n, timeout = 10000) {
      await waitFor(() => requests.length >= n, { timeout, what: `${n} request(s) at the fake on ${port}` });
      return requests;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** JSON API call: returns { status, headers, body } with body parsed when JSON. */
export async function api(base, method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Waits until GET /v1/tasks/{id} shows a status in `statuses`; returns the task. */
export async function waitForStatus(base, id, statuses, { timeout = 15000, headers = {} } = {}) {
  const want = Array.isArray(statuses) ? statuses : [statuses];
  let last;
  return waitFor(async () => {
    const r = await api(base, 'GET', `/v1/tasks/${id}`, undefined, headers);
    last = r.body;
    return want.includes(r.body?.status) ? r.body : null;
  }, { timeout, what: `task ${id} to be ${want.join('|')} (last: ${JSON.stringify(last?.status)})` });
}

/** Counts rows in the tasks table through the real sqlite3 CLI. */
export async function countTasks(db) {
  if (!existsSync(db)) return 0;
  const { execFileSync } = await import('node:child_process');
  return Number(execFileSync('sqlite3', [db, 'SELECT count(*) FROM tasks;']).toString().trim());
}
