// Integration test harness: starts the real asyncqueue binary on port 0 with
// a fresh SQLite file, fake targets and webhook receivers that answer from a
// script and record what they got, and wait-for helpers (no fixed sleeps).
// scope(t) gives a test daemons, fakes and temp dirs that are cleaned up
// when it ends (and checks that each daemon still running exits 0).
//
// The binary is AQ_BIN (set by tools/test.sh), else ../../build/asyncqueue.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
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

/**
 * Resolves after ms. Only for proving that something did NOT happen (no
 * retry, no second delivery): say in a comment why the wait is long enough.
 * To wait for something that should happen, use waitFor.
 */
export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
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
 * Returns { url, port, db, proc, logs(), stdout(), exited, exitInfo(),
 * waitForLog(re), stop(signal), kill(), cleanup() }. `exited` resolves with
 * { code, signal } once the process has exited and its output is all read.
 * If the daemon does not start, it is killed, its temp dir removed, and the
 * error (with its log) thrown.
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
  const exited = new Promise((res) => proc.on('close', (code, signal) => res({ code, signal })));
  let exitInfo = null;
  exited.then((e) => { exitInfo = e; });

  let port;
  try {
    port = await waitFor(() => {
      if (exitInfo) throw new Error(`daemon exited (${JSON.stringify(exitInfo)}):\n${stderr}`);
      const m = stderr.match(/asyncqueue\.started .*port=(\d+)/);
      return m ? Number(m[1]) : null;
    }, { timeout: 15000, what: 'the daemon to start' });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, { what: '/healthz' });
  } catch (e) {
    if (!exitInfo) { proc.kill('SIGKILL'); await exited; }
    if (tmp) tmp.cleanup();
    throw e;
  }
  const url = `http://127.0.0.1:${port}`;
  let stoppedByTest = false;

  const daemon = {
    url, port, db, proc,
    logs: () => stderr,
    stdout: () => stdout,
    exited,
    /** The exit info once the process has exited, else null. */
    exitInfo: () => exitInfo,
    /** True once stop() or kill() was called. */
    stoppedByTest: () => stoppedByTest,
    async waitForLog(re, timeout = 10000) {
      return waitFor(() => stderr.match(re), { timeout, what: `log ${re}` });
    },
    /** Sends signal (default SIGTERM) and resolves with the exit info. */
    async stop(signal = 'SIGTERM', timeout = 20000) {
      stoppedByTest = true;
      if (!exitInfo) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeout);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
    /** kill -9, keeping the database for a restart. */
    async kill() {
      stoppedByTest = true;
      if (!exitInfo) proc.kill('SIGKILL');
      return exited;
    },
    cleanup() { if (tmp) tmp.cleanup(); },
  };
  return daemon;
}

/** Runs the binary to completion and returns { code, signal, stdout, stderr }. */
export function runBinary(args, { env = {}, timeout = 15000 } = {}) {
  return new Promise((res, rej) => {
    const clean = { ...process.env, ...env };
    for (const k of Object.keys(clean)) if (k.startsWith('ASYNCQUEUE_') && !(k in env)) delete clean[k];
    const p = spawn(BIN, args, { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); rej(new Error(`timed out: ${args.join(' ')}`)); }, timeout);
    p.on('close', (code, signal) => { clearTimeout(t); res({ code, signal, stdout, stderr }); });
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
 * Every request is recorded as { n, method, url, headers, body, raw, at }
 * (body: UTF-8 text, raw: the exact bytes as a Buffer, at: Date.now() when
 * the whole request had arrived), and later gets endAt (the answer was
 * sent), closedAt (the exchange ended, answered or not) and aborted (true
 * when the connection closed before the answer was sent: the client gave
 * up, as a cancelled call does, or a destroy entry dropped it).
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
        raw: Buffer.concat(chunks),
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

/**
 * Waits until GET /v1/tasks/{id} returns a task for which pred(task) is
 * truthy; returns the task. `what` names the condition in the timeout error.
 */
export async function waitForTask(base, id, pred, { timeout = 15000, headers = {}, what = 'a condition' } = {}) {
  let last;
  return waitFor(async () => {
    const r = await api(base, 'GET', `/v1/tasks/${id}`, undefined, headers);
    last = r.body;
    return r.status === 200 && pred(r.body) ? r.body : null;
  }, { timeout, what: `task ${id}: ${what} (last: ${JSON.stringify(last)?.slice(0, 600)})` });
}

/** Waits until the task's webhook has the given status; returns the task. */
export function waitForWebhook(base, id, status = 'delivered', opts = {}) {
  return waitForTask(base, id, (t) => t.webhook?.status === status, { what: `webhook ${status}`, ...opts });
}

/** Counts rows in the tasks table through the real sqlite3 CLI. */
export async function countTasks(db) {
  if (!existsSync(db)) return 0;
  return Number(execFileSync('sqlite3', [db, 'SELECT count(*) FROM tasks;']).toString().trim());
}

/**
 * Runs one SQL query through the real sqlite3 CLI (read it as another
 * process would) and returns the rows as objects (column names as keys).
 */
export function queryDb(db, sql) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', db, sql]).toString().trim();
  return out ? JSON.parse(out) : [];
}

/**
 * A plain node:http request, for what fetch() cannot send: a body streamed
 * in `chunks` (Transfer-Encoding: chunked, no Content-Length) or exact
 * headers. Resolves with { status, headers, body } (body parsed when JSON);
 * rejects only if no response arrived at all.
 */
export function rawRequest(url, { method = 'POST', headers = {}, body, chunks } = {}) {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(url, { method, headers });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let parsed = text;
        try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolvePromise({ status: res.statusCode, headers: res.headers, body: parsed });
      });
      res.on('error', reject);
    });
    // The server may answer and close before the whole body is sent (413):
    // a write error after the answer is expected, not a failure.
    req.on('error', (e) => { if (!answered) reject(e); });
    if (chunks) {
      (async () => {
        for (const c of chunks) {
          if (answered || req.destroyed) break;
          req.write(c);
          await new Promise((r) => setImmediate(r));
        }
        req.end();
      })();
    } else {
      req.end(body);
    }
  });
}

/**
 * Per-test resources, released in reverse order by one t.after hook:
 *   const s = scope(t);
 *   const d = await s.daemon({ args: [...] });   // startDaemon(opts)
 *   const target = await s.fake([{ status: 500 }, { status: 200 }]);
 *   const dir = s.tempDir();                        // { dir }
 *   s.defer(async () => ...);
 * A daemon still running at the end is stopped with SIGTERM and must exit
 * with code 0: that is how a leak found by LeakSanitizer, or a crash on
 * shutdown, fails the test that caused it. A daemon that exited without the
 * test asking for it (stop() or kill()) also fails the test.
 */
export function scope(t) {
  const stack = [];
  t.after(async () => {
    const errors = [];
    while (stack.length) {
      try { await stack.pop()(); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw errors[0];
  });
  return {
    defer(fn) { stack.push(fn); },
    tempDir(prefix) {
      const d = tempDir(prefix);
      stack.push(d.cleanup);
      return d;
    },
    async fake(script) {
      const f = await startFake(script);
      stack.push(() => f.close());
      return f;
    },
    async daemon(opts) {
      const d = await startDaemon(opts);
      stack.push(async () => {
        try {
          let e = d.exitInfo();
          if (e && d.stoppedByTest()) return; // the test stopped it and checked what it wanted
          const unexpected = Boolean(e);
          if (!e) e = await d.stop('SIGTERM');
          if (unexpected || e.code !== 0) {
            throw new Error(`daemon ${unexpected ? 'exited unexpectedly' : 'did not exit cleanly on SIGTERM'}` +
              ` (${JSON.stringify(e)}); log tail:\n${d.logs().slice(-3000)}`);
          }
        } finally {
          d.cleanup();
        }
      });
      return d;
    },
  };
}
