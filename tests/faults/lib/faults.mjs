// Fault-injection helpers: start the real daemon (optionally under a low
// `ulimit -n` or with libfaketime preloaded), scripted fake targets and
// webhook receivers that log every call, a client that logs every create it
// sends (so the checker can count), SQLite reads through the sqlite3 CLI, a
// small loop-mounted file system, and the result files docs/reliability.md
// is written from.
//
// Nothing here listens anywhere but 127.0.0.1 on port 0, and every helper
// that starts something returns a way to stop it that the tests call from
// t.after.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import {
  mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync, readFileSync, readdirSync, statSync, readlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../../..');
export const BIN = process.env.AQ_BIN ? resolve(process.env.AQ_BIN) : join(ROOT, 'build/asyncqueue');
/** FAULTS_LONG=1 (make soak): more rounds, longer outages. */
export const LONG = process.env.FAULTS_LONG === '1';
export const RESULTS_DIR = process.env.FAULTS_RESULTS
  ? resolve(process.env.FAULTS_RESULTS)
  : join(ROOT, 'build/faults/results');
export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
export const WEBHOOK_SECRET = 'whsec_' + Buffer.from('fault-suite-secret-0123456789abcdef').toString('base64');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value; returns it. Throws after timeout. */
export async function waitFor(fn, { timeout = 10000, interval = 20, what = 'condition' } = {}) {
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
    await sleep(interval);
  }
}

/** A temporary directory; cleanup() removes it. */
export function tempDir(prefix = 'aq-fault-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Milliseconds since an arbitrary start, from the monotonic clock. */
export const mono = () => Number(process.hrtime.bigint() / 1000000n);

// ---------------------------------------------------------------- daemon

/**
 * Starts build/asyncqueue on 127.0.0.1:0. Options:
 *   db         database path (required: fault tests restart on the same one)
 *   args       extra flags
 *   env        extra environment (ASYNCQUEUE_* from the outer environment are dropped)
 *   nofile     run under `ulimit -n nofile` (soft and hard, so the daemon cannot raise it)
 *   logLevel   'debug' for --log-level debug (else info: the port is read from an info line)
 *   quiet      --log-level warn; the port is then found through /proc
 * Returns { url, port, pid, proc, logs(), stop(signal, timeout), kill(), alive() }.
 */
export async function startDaemon(opts) {
  // The port is read from the 'asyncqueue.started' line, an info line; a
  // quiet daemon (warn) is found through /proc instead.
  const level = opts.quiet ? 'warn' : opts.logLevel === 'debug' ? 'debug' : 'info';
  const args = ['--listen', '127.0.0.1:0', '--db', opts.db, '--allow-private-targets',
    '--log-level', level, ...(opts.args ?? [])];
  const env = { ...process.env, ...(opts.env ?? {}) };
  for (const k of Object.keys(env)) {
    if (k.startsWith('ASYNCQUEUE_') && !(opts.env && k in opts.env)) delete env[k];
  }
  let cmd = BIN, argv = args;
  if (opts.nofile) {
    // exec keeps the pid, so the pid we hold is the daemon's.
    cmd = '/bin/sh';
    argv = ['-c', `ulimit -n ${Number(opts.nofile)} && exec "$0" "$@"`, BIN, ...args];
  }
  const proc = spawn(cmd, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const chunks = [];
  let size = 0;
  const keep = opts.keepLogBytes ?? 64 * 1024 * 1024;
  proc.stderr.on('data', (d) => {
    if (process.env.AQ_TEST_VERBOSE) process.stderr.write(d);
    if (size < keep) { chunks.push(d); size += d.length; }
  });
  const logs = () => Buffer.concat(chunks).toString('utf8');
  let exitInfo = null;
  const exited = new Promise((res) => proc.on('exit', (code, signal) => {
    exitInfo = { code, signal, at: mono() };
    res(exitInfo);
  }));
  let port;
  try {
    port = await waitFor(() => {
      if (exitInfo) throw new Error(`daemon exited (${JSON.stringify(exitInfo)}):\n${logs().slice(-4000)}`);
      if (opts.quiet) return listeningPort(proc.pid);
      const m = logs().match(/asyncqueue\.started .*port=(\d+)/);
      return m ? Number(m[1]) : null;
    }, { timeout: opts.startTimeout ?? 15000, what: 'the daemon to start' });
  } catch (e) {
    if (!exitInfo) proc.kill('SIGKILL'); // never leave a half-started daemon behind
    await exited;
    throw e;
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url, port, pid: proc.pid, proc, logs, exited,
    alive: () => exitInfo === null,
    exitInfo: () => exitInfo,
    /** Sends signal, waits for exit; { code, signal, ms } (ms from signal to exit). */
    async stop(signal = 'SIGTERM', timeout = 30000) {
      const t0 = mono();
      if (!exitInfo) proc.kill(signal);
      const t = setTimeout(() => { if (!exitInfo) proc.kill('SIGKILL'); }, timeout);
      const e = await exited;
      clearTimeout(t);
      return { ...e, ms: e.at - t0 };
    },
    /** kill -9; the database stays for a restart. */
    async kill() {
      if (!exitInfo) proc.kill('SIGKILL');
      return exited;
    },
  };
}

/** The TCP port pid listens on (its first listening socket), from /proc; null if none yet. */
export function listeningPort(pid) {
  let inodes;
  try {
    inodes = new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try { return readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1]; } catch { return null; }
    }).filter(Boolean));
  } catch { return null; }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(table, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) return parseInt(f[1].split(':')[1], 16);
    }
  }
  return null;
}

/** Reads /proc/<pid> for RSS (KiB), threads, open fds (and how many are sockets) and CPU ticks. */
export function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0);
    const threads = Number(status.match(/^Threads:\s+(\d+)/m)?.[1] ?? 0);
    const fdList = readdirSync(`/proc/${pid}/fd`);
    const fds = fdList.length;
    let sockets = 0;
    for (const fd of fdList) {
      try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++; } catch { /* closed meanwhile */ }
    }
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(f[11]) + Number(f[12]); // utime + stime
    return { rssKiB: rss, threads, fds, sockets, fileFds: fds - sockets, cpuTicks };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- HTTP

/** One JSON request; never throws: { status (0: no answer), headers, body, error, ms }. */
export async function request(base, method, path, body, { timeoutMs = 5000, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] ??= 'application/json';
  }
  const t0 = mono();
  try {
    const res = await fetch(base + path, init);
    const text = await res.text();
    let parsed = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, body: parsed, ms: mono() - t0 };
  } catch (e) {
    return { status: 0, error: String(e.cause?.code ?? e.name ?? e), ms: mono() - t0 };
  }
}

/**
 * The client side of a run: sends creates and logs each one as the checker
 * reads it: { key, status, id?, code?, retryAfter?, error?, ms }.
 * A create with no answer (status 0) is remembered as pending, and
 * retryPending() sends it again with the same Idempotency-Key and body.
 */
export class Client {
  constructor() {
    this.log = [];
    this.bodies = new Map();   // key -> body
    this.pending = new Set();  // keys whose last try got no answer
    this.acceptedKeys = new Set();
  }

  async create(base, key, body, { timeoutMs = 5000 } = {}) {
    this.bodies.set(key, body);
    const r = await request(base, 'POST', '/v1/tasks', body, {
      timeoutMs, headers: { 'idempotency-key': key },
    });
    const entry = { key, status: r.status, ms: Math.round(r.ms) };
    if (r.status === 202 || r.status === 200) {
      entry.id = r.body?.id;
      this.acceptedKeys.add(key);
      this.pending.delete(key);
    } else if (r.status === 0) {
      entry.error = r.error;
      if (!this.acceptedKeys.has(key)) this.pending.add(key);
    } else {
      entry.code = r.body?.error?.code ?? null;
      const ra = r.headers.get('retry-after');
      if (ra !== null) entry.retryAfter = ra;
      entry.json = typeof r.body === 'object' && r.body !== null;
      // An answered failure stored nothing; the key may be sent again later.
      if (!this.acceptedKeys.has(key)) this.pending.add(key);
    }
    this.log.push(entry);
    return { ...r, entry };
  }

  /** Sends every pending key again (same body) until each is answered 2xx. */
  async retryPending(base, { concurrency = 8, timeoutMs = 5000 } = {}) {
    const keys = [...this.pending];
    await pool(keys, concurrency, (k) => this.create(base, k, this.bodies.get(k), { timeoutMs }));
  }

  acceptedIds() {
    return new Set(this.log.filter((e) => e.id).map((e) => e.id));
  }
}

/** Runs fn over items with at most n in flight. */
export async function pool(items, n, fn) {
  let i = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

// ---------------------------------------------------------------- fakes

/**
 * A fake target or webhook receiver on 127.0.0.1:0 that logs every request:
 * { n, port, taskId (AsyncQueue-Task-Id, or the webhook body's taskId),
 *   attempt, webhookId, status (what it answered; 0 none), at, closedAt }.
 * behave(rec, req) picks the answer, an object with one of:
 *   { status, headers, body, delayMs }       a normal answer (after delayMs)
 *   { hang: true }                           never answer
 *   { drip: { intervalMs } }                 200 headers, then one byte per interval, forever
 *   { endless: true }                        200, then an unending body as fast as it goes
 *   { resetMidBody: true }                   headers and part of the body, then a TCP reset
 *   { destroy: true }                        close the connection without answering
 * `down()` stops listening (connections refused) and `up()` listens again on
 * the same port.
 */
export async function startFake(behave = () => ({ status: 200 }), { name = 'fake' } = {}) {
  const log = [];
  const sockets = new Set();
  const timers = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let taskId = req.headers['asyncqueue-task-id'] ?? null;
      if (!taskId && req.headers['webhook-id']) {
        try { taskId = JSON.parse(body).taskId ?? null; } catch { /* not JSON */ }
      }
      const rec = {
        n: log.length + 1, name, taskId,
        attempt: req.headers['asyncqueue-attempt'] ? Number(req.headers['asyncqueue-attempt']) : null,
        webhookId: req.headers['webhook-id'] ?? null,
        status: 0, at: mono(), wallAt: Date.now(), closedAt: null,
      };
      rec.headers = req.headers;
      rec.body = body;
      log.push(rec);
      // For hang and drip, 'close' is when the caller gave up the connection.
      res.on('close', () => { rec.closedAt = mono(); });
      let b;
      try { b = (await behave(rec, req)) ?? { status: 200 }; } catch { b = { status: 500 }; }
      if (b.delayMs) await sleep(b.delayMs);
      if (req.socket.destroyed) return;
      if (b.hang) return;
      if (b.destroy) { req.socket.destroy(); return; }
      if (b.drip) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const t = setInterval(() => { if (!res.destroyed) res.write('.'); }, b.drip.intervalMs ?? 1000);
        timers.add(t);
        res.on('close', () => { clearInterval(t); timers.delete(t); });
        rec.status = 200;
        return;
      }
      if (b.endless) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        rec.sentBytes = 0;
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) rec.sentBytes += chunk.length;
          if (!res.destroyed) { rec.sentBytes += chunk.length; res.once('drain', pump); }
        };
        pump();
        rec.status = 200;
        return;
      }
      if (b.resetMidBody) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial": "');
        // Let the partial body leave, then reset the connection (RST, not FIN).
        setTimeout(() => req.socket.resetAndDestroy(), 50);
        rec.status = 200;
        return;
      }
      const payload = b.body === undefined ? '' : typeof b.body === 'string' ? b.body : JSON.stringify(b.body);
      const headers = { ...(b.headers ?? {}) };
      if (b.body !== undefined && typeof b.body !== 'string') headers['content-type'] ??= 'application/json';
      rec.status = b.status ?? 200;
      res.writeHead(rec.status, headers);
      res.end(payload);
    });
  });
  server.keepAliveTimeout = 2000;
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r, j) => { server.once('error', j); server.listen(0, '127.0.0.1', r); });
  const port = server.address().port;
  let listening = true;
  const closeAll = async () => {
    for (const s of sockets) s.destroy();
    if (listening) await new Promise((r) => server.close(r));
    listening = false;
  };
  return {
    port, log, name,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    /** Calls for task ids (webhook: deliveries) as the checker reads them. */
    entries: () => log.map((r) => ({ taskId: r.taskId, attempt: r.attempt, webhookId: r.webhookId, status: r.status })),
    async waitForCount(n, timeout = 10000) {
      await waitFor(() => log.length >= n, { timeout, what: `${n} request(s) at ${name}` });
      return log;
    },
    async down() { await closeAll(); },
    async up() {
      if (listening) return;
      await new Promise((r, j) => { server.once('error', j); server.listen(port, '127.0.0.1', r); });
      listening = true;
    },
    async close() {
      for (const t of timers) clearInterval(t);
      await closeAll();
    },
  };
}

/** Standard Webhooks check: does any v1 signature in headers verify? */
export function verifyWebhook(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const want = createHmac('sha256', key)
    .update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`).digest('base64');
  return String(headers['webhook-signature'] ?? '').split(' ').some((s) => s === `v1,${want}`);
}

// ---------------------------------------------------------------- SQLite

/** Runs a query through the sqlite3 CLI (read-only) and returns rows as objects. */
export function sql(db, query) {
  const out = execFileSync('sqlite3', ['-readonly', '-json', '-cmd', '.timeout 5000', db, query],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return out.trim() ? JSON.parse(out) : [];
}

/** PRAGMA integrity_check through the CLI: 'ok' or the problems. */
export function integrityCheck(db) {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, 'PRAGMA integrity_check;'],
    { encoding: 'utf8' }).trim();
}

/** Counts of tasks by status, and webhooks not yet delivered or failed. */
export function dbProgress(db) {
  const rows = sql(db, "SELECT status, count(*) AS n FROM tasks GROUP BY status;");
  const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
  const wh = sql(db, "SELECT count(*) AS n FROM webhooks WHERE status NOT IN ('delivered','failed');")[0].n;
  const open = (by.queued ?? 0) + (by.running ?? 0);
  return { by, open, webhooksOpen: wh };
}

/**
 * Holds the database's write lock from another process: the sqlite3 CLI runs
 * BEGIN EXCLUSIVE in a child and keeps the transaction open until release().
 */
export async function holdWriteLock(db) {
  const child = spawn('sqlite3', ['-cmd', '.timeout 10000', db], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => child.on('exit', r));
  // A write inside the transaction makes the lock certain whatever the journal mode.
  child.stdin.write("BEGIN EXCLUSIVE;\nCREATE TABLE IF NOT EXISTS fault_lock_probe (x);\nSELECT 'lock-held';\n");
  await waitFor(() => {
    if (/Error/i.test(out)) throw new Error(`sqlite3 could not take the lock: ${out}`);
    return out.includes('lock-held');
  }, { timeout: 15000, what: 'sqlite3 to hold the write lock' });
  return {
    pid: child.pid,
    async release() {
      if (child.exitCode !== null) return;
      child.stdin.end('ROLLBACK;\n.quit\n');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------- file systems

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Why a small loop-mounted file system cannot be made here, or null. */
export function smallFsUnavailable() {
  if (!IS_ROOT) return 'needs root (mount -o loop)';
  for (const tool of ['mkfs.ext4', 'mount', 'umount', 'chattr']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (e2fsprogs, mount)`;
  }
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control';
  return null;
}

/**
 * Makes an ext4 image of sizeMiB, loop-mounts it on a temp dir, and returns
 * { dir, fill(), unfill(), cleanup() }. fill() writes a filler file until the
 * file system is full; unfill() deletes it.
 */
export function makeSmallFs(sizeMiB = 8) {
  const base = tempDir('aq-fs-');
  const img = join(base.dir, 'fs.img');
  const dir = join(base.dir, 'mnt');
  mkdirSync(dir);
  run('truncate', ['-s', `${sizeMiB}M`, img]);
  run('mkfs.ext4', ['-q', '-F', '-m', '0', img]);
  run('mount', ['-o', 'loop', img, dir]);
  const filler = join(dir, 'filler');
  let mounted = true;
  return {
    dir,
    fill() {
      // dd stops with ENOSPC; that is the point, so its exit status is ignored.
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'status=none'], { encoding: 'utf8' });
      spawnSync('sync', ['-f', filler]);
      return existsSync(filler) ? statSync(filler).size : 0;
    },
    unfill() { rmSync(filler, { force: true }); spawnSync('sync', ['-f', dir]); },
    avail() { return Number(run('df', ['--output=avail', '-B1', dir]).split('\n')[1].trim()); },
    cleanup() {
      if (mounted) {
        spawnSync('chattr', ['-R', '-i', dir]);
        let r = spawnSync('umount', [dir]);
        if (r.status !== 0) r = spawnSync('umount', ['-l', dir]);
        mounted = false;
      }
      base.cleanup();
    },
  };
}

// ---------------------------------------------------------------- results

/** Writes this fault's numbers for docs/reliability.md. */
export function recordResult(name, data) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const doc = { name, mode: LONG ? 'long' : 'short', at: new Date().toISOString(), ...data };
  writeFileSync(join(RESULTS_DIR, `${name}.json`), JSON.stringify(doc, null, 2) + '\n');
}

/** Percentile p (0..100) of numbers. */
export function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Writes an array as JSON lines. */
export function writeJsonl(path, rows) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
}

/**
 * Keeps a run's evidence under build/faults/runs/<name>: the client's log,
 * the fakes' logs (as check.mjs reads them), the daemon's log and a copy of
 * the database, so a failure can be replayed with the checker CLI.
 */
export function saveRun(name, { client, target, receiver, db, logs }) {
  const dir = join(ROOT, 'build/faults/runs', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (client) writeJsonl(join(dir, 'accepted.jsonl'), client.log);
  if (target) writeJsonl(join(dir, 'target.jsonl'), target.entries());
  if (receiver) writeJsonl(join(dir, 'webhooks.jsonl'), receiver.entries());
  if (logs) writeFileSync(join(dir, 'daemon.log'), logs);
  if (db && existsSync(db)) {
    // A consistent copy, WAL included, through SQLite itself.
    spawnSync('sqlite3', ['-cmd', '.timeout 5000', db, `.backup '${join(dir, 'aq.db')}'`]);
  }
  return dir;
}

/** Waits until every task is final and every webhook delivered or failed. */
export async function drain(db, { timeout = 60000, extra = () => true } = {}) {
  const t0 = mono();
  try {
    await waitFor(() => {
      const p = dbProgress(db);
      return p.open === 0 && p.webhooksOpen === 0 && extra();
    }, { timeout, interval: 100, what: 'every task final and every webhook settled' });
    return { drained: true, ms: mono() - t0 };
  } catch {
    return { drained: false, ms: mono() - t0, progress: dbProgress(db) };
  }
}

/** Counts log lines of an event (e.g. 'tasks.requeued') and sums a field. */
export function logEvents(text, event, field) {
  const re = new RegExp(`^\\S+ \\S+ ${event.replace('.', '\\.')}\\b(.*)$`, 'gm');
  let n = 0, sum = 0;
  for (const m of text.matchAll(re)) {
    n++;
    if (field) {
      const f = m[1].match(new RegExp(`${field}=(\\d+)`));
      if (f) sum += Number(f[1]);
    }
  }
  return field ? { n, sum } : n;
}
