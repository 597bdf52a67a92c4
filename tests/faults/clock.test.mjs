// The wall clock jumping under the daemon.
//
// What can be simulated here: `unshare --time` only offsets CLOCK_MONOTONIC
// and CLOCK_BOOTTIME (Linux time namespaces cannot move CLOCK_REALTIME), and
// setting the machine's clock would move every other process too. So the
// daemon runs with libfaketime preloaded (Debian's `faketime` package):
// FAKETIME_TIMESTAMP_FILE names a file holding an offset ("+7200", "-3600")
// that is re-read on every call (FAKETIME_NO_CACHE), and
// FAKETIME_DONT_FAKE_MONOTONIC keeps CLOCK_MONOTONIC real. The daemon's
// CLOCK_REALTIME then jumps whenever the test rewrites the file, while the
// monotonic clock runs on, as with an NTP step or a VM resume. What cannot
// be simulated: a jump seen by the kernel's own timers (e.g. timerfd with
// TFD_TIMER_CANCEL_ON_SET), and code that reads the time without libc
// (raw syscalls); neither is used by the daemon or libcurl here.
//
// Guarantees checked: a call's timeout fires after its length on the
// monotonic clock whatever the wall clock does, and the target sees no more
// calls than the retry policy allows (no retry storm, no second call while
// the first is still running).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startDaemon, startFake, Client, request, tempDir, waitFor, recordResult, sleep, mono,
} from './lib/faults.mjs';

const LIB = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/faketime/libfaketimeMT.so.1']
  .find((p) => existsSync(p));
const FINAL = ['completed', 'failed', 'cancelled'];

async function setup(t, behave, args = []) {
  const tmp = tempDir('aq-clock-');
  const offset = join(tmp.dir, 'offset');
  writeFileSync(offset, '+0\n');
  let target = null, daemon = null;
  t.after(async () => { if (daemon) await daemon.kill(); if (target) await target.close(); tmp.cleanup(); });
  target = await startFake(behave, { name: 'target' });
  daemon = await startDaemon({
    db: join(tmp.dir, 'aq.db'),
    env: {
      LD_PRELOAD: LIB, FAKETIME_TIMESTAMP_FILE: offset, FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_DONT_RESET: '1',
    },
    args: ['--retry-jitter', 'false', '--lease-grace', '1s', ...args],
  });
  const jump = (s) => writeFileSync(offset, `${s >= 0 ? '+' : ''}${s}\n`);
  const client = new Client();
  return { daemon, target, client, jump };
}

/** The most calls for one task that were open at the same moment. */
function maxOverlap(calls) {
  const ev = calls.flatMap((c) => [[c.at, 1], [c.closedAt ?? Infinity, -1]]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0, max = 0;
  for (const [, d] of ev) { open += d; max = Math.max(max, open); }
  return max;
}

const SKIP = LIB ? false : 'libfaketime is not installed (apt-get install faketime)';
let forward = null;
let backward = null;

test('the wall clock jumps 2 h forward during a hanging call: every timeout fires on the monotonic clock',
  { skip: SKIP, timeout: 60000 }, async (t) => {
    const s = await setup(t, () => ({ hang: true }), ['--retry-base', '300ms']);
    const clockSeen = await request(s.daemon.url, 'GET', '/healthz');
    const r = await s.client.create(s.daemon.url, 'fwd', { callbackUrl: s.target.url('/h'), timeout: 2, retries: 2 });
    assert.equal(r.status, 202);
    const id = r.body.id;
    await s.target.waitForCount(1);
    s.jump(7200); // the first call is in flight: the wall clock leaps past its lease
    const jumpedAt = mono();
    // Policy: 3 attempts of 2 s plus 0.3 + 0.6 s of backoff: done within ~8 s.
    const task = await waitFor(async () => {
      const g = await request(s.daemon.url, 'GET', `/v1/tasks/${id}`);
      return FINAL.includes(g.body?.status) ? g.body : null;
    }, { timeout: 30000, interval: 100, what: 'the task to finish' });
    await sleep(1500); // any late extra call would show up now
    const calls = s.target.log.filter((c) => c.taskId === id);
    const held = calls.map((c) => Math.round((c.closedAt ?? mono()) - c.at));
    const result = {
      jumpS: 7200, timeoutMs: 2000, retries: 2, status: task.status, calls: calls.length,
      attemptNumbers: calls.map((c) => c.attempt), attempts: task.attempts,
      attemptErrors: task.attemptHistory.map((a) => a.error?.code ?? null),
      attemptDurationsMs: task.attemptHistory.map((a) => a.durationMs),
      connectionHeldMs: held, maxConcurrentCalls: maxOverlap(calls),
      finishedAfterJumpMs: Math.round(mono() - jumpedAt), dateBefore: clockSeen.headers?.get('date'),
      leaseRequeues: (s.daemon.logs().match(/tasks\.requeued .*lease expired/g) ?? []).length,
    };
    recordResult('clock-forward', { ok: calls.length <= 3 && result.maxConcurrentCalls === 1, ...result });
    t.diagnostic(JSON.stringify(result));
    forward = result;
    for (const h of held) assert.ok(h >= 1800 && h <= 3000, `a call was held ${h} ms for a 2 s timeout`);
    assert.equal(task.status, 'failed');
  });

test('the wall clock jumps 2 h forward during a hanging call: no second call while the first runs, no extra calls',
  { skip: SKIP }, () => {
    assert.ok(forward, 'the forward-jump scenario ran');
    assert.equal(forward.maxConcurrentCalls, 1, `the target saw ${forward.maxConcurrentCalls} calls of one task at once`);
    assert.ok(forward.calls <= 3, `the target was called ${forward.calls} times; the policy allows 3`);
    assert.equal(forward.leaseRequeues, 0, 'no lease expired while its call was running');
  });

test('the wall clock jumps 1 h back while a retry waits, then forward again: no retry storm',
  { skip: SKIP, timeout: 60000 }, async (t) => {
    const s = await setup(t, () => ({ status: 503 }), ['--retry-base', '500ms']);
    const r = await s.client.create(s.daemon.url, 'back', { callbackUrl: s.target.url('/f'), timeout: 2, retries: 3 });
    assert.equal(r.status, 202);
    const id = r.body.id;
    // Jump only once the retry is scheduled (its runAt written on the old clock).
    await waitFor(async () => {
      const g = await request(s.daemon.url, 'GET', `/v1/tasks/${id}`);
      return g.body?.status === 'queued' && g.body.attempts === 1;
    }, { timeout: 10000, interval: 20, what: 'the first attempt to be recorded and its retry scheduled' });
    s.jump(-3600);
    const jumpedAt = mono();
    // With 500 ms of backoff due, does the retry come on the monotonic clock?
    let retriedAfterMs = null;
    try {
      await s.target.waitForCount(2, 5000);
      retriedAfterMs = Math.round(mono() - jumpedAt);
    } catch { /* stalled: it waits for the wall clock to catch up */ }
    const stalledCalls = s.target.log.length;
    // Put the clock back (a jump forward by the same hour): it must resume, without a burst.
    s.jump(0);
    const back = mono();
    const task = await waitFor(async () => {
      const g = await request(s.daemon.url, 'GET', `/v1/tasks/${id}`);
      return FINAL.includes(g.body?.status) ? g.body : null;
    }, { timeout: 20000, interval: 100, what: 'the task to finish after the clock came back' });
    await sleep(1000);
    const calls = s.target.log.filter((c) => c.taskId === id);
    const gaps = calls.slice(1).map((c, i) => Math.round(c.at - calls[i].at));
    const result = {
      jumpS: -3600, retryBaseMs: 500, retries: 3, retriedAfterBackJumpMs: retriedAfterMs,
      callsWhileBack: stalledCalls, calls: calls.length, gapsMs: gaps, status: task.status,
      finishedAfterClockRestoredMs: Math.round(mono() - back),
    };
    recordResult('clock-backward', { ok: calls.length <= 4, ...result });
    t.diagnostic(JSON.stringify(result));
    backward = result;
    assert.equal(task.status, 'failed');
    assert.ok(calls.length <= 4, `the target was called ${calls.length} times; the policy allows 4`);
    assert.equal(task.attempts, 4);
    // No burst when the clock comes back: retries keep their backoff.
    for (const g of gaps.slice(1)) assert.ok(g >= 900, `retries ${g} ms apart after the clock came back`);
  });

test('the wall clock jumps 1 h back while a retry waits: the retry still comes after its backoff',
  { skip: SKIP }, () => {
    assert.ok(backward, 'the backward-jump scenario ran');
    assert.ok(backward.retriedAfterBackJumpMs !== null && backward.retriedAfterBackJumpMs <= 2000,
      `the 500 ms retry came ${backward.retriedAfterBackJumpMs ?? 'not within 5000'} ms after the jump`);
  });

test('the wall clock jumps 1 h back: schedules go on at their cron times on the new clock, with no run at a time not theirs',
  { skip: SKIP, timeout: 60000 }, async (t) => {
    const s = await setup(t, () => ({ status: 200 }));
    const later = { callbackUrl: s.target.url('/s'), delay: 3600 }; // stays queued: nothing is called
    const put = (name, cron) => request(s.daemon.url, 'PUT', `/v1/schedules/${name}`, { cron, task: later });
    assert.equal((await put('every-second', '* * * * * *')).status, 201);
    assert.equal((await put('nightly', '0 3 * * *')).status, 201);
    const get = async (name) => (await request(s.daemon.url, 'GET', `/v1/schedules/${name}`)).body;
    await waitFor(async () => (await get('every-second')).runs >= 2, { timeout: 10000, what: 'two runs before the jump' });
    s.jump(-3600);
    const jumpedAt = mono();
    const runsThen = (await get('every-second')).runs;
    // Before: its next time was an hour ahead on the new clock, and nothing
    // ran for that hour.
    await waitFor(async () => (await get('every-second')).runs >= runsThen + 2,
      { timeout: 10000, what: 'runs after the jump' });
    const resumedMs = mono() - jumpedAt;
    const nightly = await get('nightly');
    const next = new Date(nightly.nextRunAt);
    const result = { jumpS: -3600, resumedAfterMs: resumedMs, nightlyNext: nightly.nextRunAt, nightlyRuns: nightly.runs };
    recordResult('clock-back-schedules', { ok: next.getUTCHours() === 3 && nightly.runs === 0, ...result });
    t.diagnostic(JSON.stringify(result));
    assert.ok(resumedMs < 5000, `runs resumed ${resumedMs} ms after the jump`);
    assert.equal(next.getUTCHours(), 3, `the nightly one still runs at 03:00 (next ${nightly.nextRunAt})`);
    assert.equal(next.getUTCMinutes(), 0);
    assert.equal(nightly.runs, 0, 'moved, not run');
  });
