#!/usr/bin/env node
// The soak: the real daemon under steady load at about 70 % of its measured
// capacity for SOAK_MINUTES (default 30), sampling every few seconds what
// leaks show in: RSS, open files (/proc/<pid>/fd), threads, the WAL file's
// size, and the p99 accept latency (as the client saw it, and as the
// daemon's own histogram says). Flat lines are expected: the slope of each
// is fitted (Theil-Sen) and judged. At the end everything drains, the daemon
// stops with SIGTERM, and the checker counts every task of the run.
//
//   node tests/faults/soak.mjs [--minutes 30] [--rate N] [--sample-seconds 5]
//
// --rate skips the capacity ramp and sends N creates a second. The result
// goes to build/faults/results/soak.json; tests/faults/report.mjs turns it,
// with the fault results, into docs/reliability.md. Exits 1 when the
// checker fails, the daemon dies or does not exit 0, the run does not drain,
// or a leak line (RSS, threads, WAL, non-socket descriptors) rises.
import { spawn, execFile } from 'node:child_process';
import { createWriteStream, statSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import {
  ROOT, RESULTS_DIR, startDaemon, request, tempDir, procStats, sleep, mono, percentile, recordResult, waitFor,
} from './lib/faults.mjs';
import { check, readJsonl, formatReport } from './lib/checker.mjs';

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string' },
    rate: { type: 'string' },
    'sample-seconds': { type: 'string', default: '5' },
    'keep-db': { type: 'boolean', default: false },
  },
});
const MINUTES = Number(opt.minutes ?? process.env.SOAK_MINUTES ?? 30);
if (!(MINUTES > 0 && MINUTES <= 24 * 60)) {
  console.error('soak: --minutes (SOAK_MINUTES) must be between 0 and 1440');
  process.exit(2);
}
const SAMPLE_MS = Number(opt['sample-seconds']) * 1000;
const FIXED_RATE = opt.rate ?? process.env.SOAK_RATE;
const MAX_INFLIGHT = 512;
const log = (...a) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);

// ---------------------------------------------------------------- set-up

const tmp = tempDir('aq-soak-');
const db = join(tmp.dir, 'aq.db');
const runDir = join(ROOT, 'build/faults/soak');
mkdirSync(runDir, { recursive: true });
const files = {
  accepted: join(runDir, 'accepted.jsonl'), target: join(runDir, 'target.jsonl'), webhooks: join(runDir, 'webhooks.jsonl'),
};
const fakes = spawn(process.execPath, [join(ROOT, 'tests/faults/lib/fakes-child.mjs'), files.target, files.webhooks, '2'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const fakeLines = createInterface({ input: fakes.stdout });
const [portsLine] = await once(fakeLines, 'line');
const ports = JSON.parse(portsLine);
const daemon = await startDaemon({ db, quiet: true, keepLogBytes: 4 * 1024 * 1024 });
let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (daemon.alive()) await daemon.kill();
  if (fakes.exitCode === null) fakes.kill('SIGKILL');
  if (!opt['keep-db']) tmp.cleanup();
}
process.on('SIGINT', async () => { await cleanup(); process.exit(130); });
log(`daemon pid ${daemon.pid} on ${daemon.url}, db ${db}; target :${ports.target}, receiver :${ports.receiver}`);

const out = createWriteStream(files.accepted);
let seq = 0;
let inflight = 0;
let window = { sent: 0, ok: 0, refused: 0, errors: 0, skipped: 0, lat: [] };
function create() {
  const key = `s-${seq++}`;
  inflight++;
  window.sent++;
  const body = { callbackUrl: `http://127.0.0.1:${ports.target}/run`, webhookUrl: `http://127.0.0.1:${ports.receiver}/hook`,
    payload: { key }, retries: 3, timeout: 30 };
  return request(daemon.url, 'POST', '/v1/tasks', body, { timeoutMs: 10000, headers: { 'idempotency-key': key } })
    .then((r) => {
      inflight--;
      const e = { key, status: r.status };
      if (r.status === 202 || r.status === 200) { e.id = r.body.id; window.ok++; window.lat.push(r.ms); }
      else if (r.status) { e.code = r.body?.error?.code; window.refused++; }
      else { e.error = r.error; window.errors++; }
      out.write(JSON.stringify(e) + '\n');
      return r;
    });
}

/** Scrapes the counters and the accept-latency histogram from /metrics. */
async function metrics() {
  const r = await request(daemon.url, 'GET', '/metrics', undefined, { timeoutMs: 10000 });
  const text = typeof r.body === 'string' ? r.body : '';
  const val = (re) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  const buckets = [...text.matchAll(/^asyncqueue_accept_latency_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)]
    .map((m) => [m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  return {
    accepted: val(/^asyncqueue_tasks_accepted_total(?:\{[^}]*\})? (\d+)/gm),
    completed: val(/^asyncqueue_tasks_completed_total(?:\{[^}]*\})? (\d+)/gm),
    failed: val(/^asyncqueue_tasks_failed_total(?:\{[^}]*\})? (\d+)/gm),
    depth: val(/^asyncqueue_queue_depth(?:\{[^}]*\})? (\d+)/gm),
    inflight: val(/^asyncqueue_queue_inflight(?:\{[^}]*\})? (\d+)/gm),
    buckets,
  };
}

/** p99 from the difference of two cumulative histograms: the bucket's upper bound. */
function histP99(a, b) {
  const d = b.buckets.map(([le, n], i) => [le, n - (a.buckets[i]?.[1] ?? 0)]);
  const total = d.at(-1)?.[1] ?? 0;
  if (!total) return null;
  const want = total * 0.99;
  return d.find(([, n]) => n >= want)?.[0] ?? null;
}

async function backlogDrained(timeout) {
  try {
    await waitFor(async () => { const m = await metrics(); return m.depth + m.inflight === 0; },
      { timeout, interval: 250, what: 'the backlog to drain' });
    return true;
  } catch { return false; }
}

// ---------------------------------------------------------------- capacity

async function measureCapacity() {
  const levels = [8, 16, 32, 64, 128];
  const STEP_MS = 6000;
  const steps = [];
  for (const c of levels) {
    const m0 = await metrics();
    const t0 = mono();
    window = { sent: 0, ok: 0, refused: 0, errors: 0, skipped: 0, lat: [] };
    await Promise.all(Array.from({ length: c }, async () => { while (mono() - t0 < STEP_MS) await create(); }));
    const secs = (mono() - t0) / 1000;
    const m1 = await metrics();
    const acceptedPerS = window.ok / secs;
    const completedPerS = (m1.completed + m1.failed - m0.completed - m0.failed) / secs;
    const step = { concurrency: c, acceptedPerS: Math.round(acceptedPerS), completedPerS: Math.round(completedPerS),
      sustainablePerS: Math.round(Math.min(acceptedPerS, completedPerS)), p99Ms: Math.round(percentile(window.lat, 99)) };
    steps.push(step);
    log('ramp', JSON.stringify(step));
    if (!(await backlogDrained(60000))) log('ramp: backlog did not drain within 60 s');
    const best = Math.max(...steps.map((s) => s.sustainablePerS));
    if (steps.length >= 2 && step.sustainablePerS < 0.9 * best) break; // past the knee
  }
  return { steps, capacityPerS: Math.max(...steps.map((s) => s.sustainablePerS)) };
}

// ---------------------------------------------------------------- soak

const ramp = FIXED_RATE ? null : await measureCapacity();
const rate = FIXED_RATE ? Number(FIXED_RATE) : Math.max(1, Math.round(0.7 * ramp.capacityPerS));
log(`soak: ${rate} creates/s for ${MINUTES} min (${ramp ? `70 % of ${ramp.capacityPerS}/s measured` : 'rate given'})`);

const samples = [];
const startAt = mono();
const endAt = startAt + MINUTES * 60000;
let m0 = await metrics();
window = { sent: 0, ok: 0, refused: 0, errors: 0, skipped: 0, lat: [] };
let credit = 0;
let lastTick = mono();
let nextSample = startAt + SAMPLE_MS;
const pending = new Set();
while (mono() < endAt && daemon.alive()) {
  const now = mono();
  credit += ((now - lastTick) / 1000) * rate;
  lastTick = now;
  while (credit >= 1) {
    credit--;
    if (inflight >= MAX_INFLIGHT) { window.skipped++; continue; }
    const p = create();
    pending.add(p);
    p.finally(() => pending.delete(p));
  }
  if (now >= nextSample) {
    nextSample += SAMPLE_MS;
    const m1 = await metrics();
    const ps = procStats(daemon.pid) ?? {};
    const wal = existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0;
    const dbSize = existsSync(db) ? statSync(db).size : 0;
    const s = {
      t: Math.round((now - startAt) / 1000), rssMiB: +(ps.rssKiB / 1024).toFixed(1), fds: ps.fds, fileFds: ps.fileFds,
      sockets: ps.sockets, threads: ps.threads,
      walMiB: +(wal / 1048576).toFixed(2), dbMiB: +(dbSize / 1048576).toFixed(1),
      sentPerS: Math.round(window.sent / (SAMPLE_MS / 1000)), acceptedPerS: Math.round(window.ok / (SAMPLE_MS / 1000)),
      completedPerS: Math.round((m1.completed - m0.completed) / (SAMPLE_MS / 1000)),
      refused: window.refused, errors: window.errors, skipped: window.skipped, backlog: m1.depth + m1.inflight,
      p50Ms: +(percentile(window.lat, 50) ?? 0).toFixed(2), p99Ms: +(percentile(window.lat, 99) ?? 0).toFixed(2),
      serverP99Ms: histP99(m0, m1) === null ? null : +(histP99(m0, m1) * 1000).toFixed(2),
      cpuTicks: ps.cpuTicks,
    };
    samples.push(s);
    if (samples.length % 6 === 1) log(JSON.stringify(s));
    m0 = m1;
    window = { sent: 0, ok: 0, refused: 0, errors: 0, skipped: 0, lat: [] };
  }
  await sleep(10);
}
const died = !daemon.alive();
await Promise.all([...pending]);
log(`load stopped after ${((mono() - startAt) / 60000).toFixed(1)} min; draining`);
const drained = died ? false : await backlogDrained(180000);
if (!died) {
  // Webhooks too: every outbox row delivered.
  await waitFor(async () => {
    const r = await new Promise((res) => execFile('sqlite3', ['-readonly', '-cmd', '.timeout 5000', db,
      "SELECT count(*) FROM webhooks WHERE status NOT IN ('delivered','failed')"], (e, so) => res(e ? -1 : Number(so))));
    return r === 0;
  }, { timeout: 120000, interval: 500, what: 'webhooks to settle' }).catch(() => log('webhooks did not settle'));
}
const exit = await daemon.stop('SIGTERM', 60000);
await new Promise((r) => out.end(r));
fakes.kill('SIGTERM');
await once(fakes, 'exit');

// ---------------------------------------------------------------- verdict

/**
 * Slope (per minute) of y over t (seconds), by Theil-Sen: the median of the
 * slopes between all pairs of samples, so a few spikes (another job on the
 * machine, a checkpoint) do not tilt the line the way least squares would.
 */
function fit(xs, ys) {
  const n = xs.length;
  const mean = n ? ys.reduce((a, b) => a + b, 0) / n : 0;
  if (n < 3) return { slopePerMin: 0, mean };
  const slopes = [];
  for (let i = 0; i < n; i++) for (let k = i + 1; k < n; k++) if (xs[k] !== xs[i]) slopes.push((ys[k] - ys[i]) / (xs[k] - xs[i]));
  slopes.sort((a, b) => a - b);
  const m = slopes.length >> 1;
  const med = slopes.length % 2 ? slopes[m] : (slopes[m - 1] + slopes[m]) / 2;
  return { slopePerMin: med * 60, mean };
}
// Warm-up is left out: SQLite's page caches (16 MB a connection) fill as the
// database grows, so RSS climbs for the first minute or so. The first 2
// minutes, or the first 20 % of a shorter run.
const warm = Math.min(120, (MINUTES * 60) / 5);
const steady = samples.filter((s) => s.t >= warm);
const spanMin = steady.length ? (steady.at(-1).t - steady[0].t) / 60 : 0;
// A line is flat when its fitted change over the steady part is within the
// tolerance: a share of its mean, or an absolute floor for small counts.
// Leaks show in RSS, threads, the WAL and descriptors that are not sockets
// (files, pipes, eventfds): those decide the verdict. Sockets follow the
// clients' connections and latency follows the machine's other work: they
// are judged and reported, but do not fail the soak.
const tolerances = {
  rssMiB: [0.10, 4, true], fileFds: [0, 2, true], threads: [0, 1, true], walMiB: [0.25, 4, true],
  sockets: [0.5, 20, false], p99Ms: [0.5, 10, false], serverP99Ms: [0.5, 10, false],
};
const lines = {};
for (const [k, [rel, abs, gates]] of Object.entries(tolerances)) {
  const pts = steady.filter((s) => s[k] !== null && s[k] !== undefined);
  const f = fit(pts.map((s) => s.t), pts.map((s) => s[k]));
  const change = f.slopePerMin * spanMin;
  const limit = Math.max(abs, rel * Math.abs(f.mean));
  lines[k] = { slopePerMin: +f.slopePerMin.toFixed(4), changeOverRun: +change.toFixed(3), mean: +f.mean.toFixed(3),
    min: Math.min(...pts.map((s) => s[k])), max: Math.max(...pts.map((s) => s[k])), limit: +limit.toFixed(3),
    verdict: Math.abs(change) <= limit ? 'flat' : change > 0 ? 'rising' : 'falling', gates };
}

log('checking every task of the run');
const r = check({ accepted: readJsonl(files.accepted), db, target: readJsonl(files.target), webhooks: readJsonl(files.webhooks) });
log(formatReport(r));
const cpuSecs = samples.length > 1 ? (samples.at(-1).cpuTicks - samples[0].cpuTicks) / 100 : 0;
const result = {
  ok: r.ok && !died && exit.code === 0 && drained && Object.values(lines).every((l) => !l.gates || l.verdict !== 'rising'),
  minutes: MINUTES, sampleSeconds: SAMPLE_MS / 1000, ratePerS: rate, ramp, warmupSeconds: warm,
  daemonDied: died, exitCode: exit.code, drained,
  totals: {
    creates: r.summary.creates, accepted: r.summary.accepted, refused: r.summary.refused, unanswered: r.summary.uncertain,
    skippedAtInflightCap: samples.reduce((a, s) => a + s.skipped, 0),
    meanAcceptedPerS: Math.round(steady.reduce((a, s) => a + s.acceptedPerS, 0) / (steady.length || 1)),
    daemonCpuPct: samples.length > 1 ? Math.round((cpuSecs / (samples.at(-1).t - samples[0].t)) * 100) : null,
    finalDbMiB: samples.at(-1)?.dbMiB,
  },
  lines, checker: { summary: r.summary, failures: r.failures }, samples,
};
recordResult('soak', result);
log(`lines: ${Object.entries(lines).map(([k, l]) => `${k} ${l.verdict} (${l.changeOverRun >= 0 ? '+' : ''}${l.changeOverRun} over ${spanMin.toFixed(1)} min)`).join(', ')}`);
log(`result: ${result.ok ? 'PASS' : 'FAIL'} -> ${join(RESULTS_DIR, 'soak.json')}`);
await cleanup();
process.exit(result.ok ? 0 : 1);
