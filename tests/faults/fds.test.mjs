// Running out of file descriptors: the daemon starts under `ulimit -n 64`
// (soft and hard, so it cannot raise it), then many clients create tasks
// whose targets answer slowly, so client connections, target calls and
// webhook deliveries all want descriptors at once. The daemon must keep
// serving what it can (some requests fail or wait), not crash, not spin,
// and once the load drops recover without a restart: new creates get 202
// and their targets are called. Nothing accepted is lost (the checker).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  LONG, startDaemon, startFake, Client, request, tempDir, waitFor, recordResult, procStats, drain, saveRun,
  sleep, mono, pool, sql, dbProgress,
} from './lib/faults.mjs';
import { check, formatReport } from './lib/checker.mjs';

const NOFILE = 64;
const CLIENTS = 150;
const OVERLOAD_MS = LONG ? 30000 : 5000;
// Bounded in count too: how many get in depends on the machine, and the
// backlog drains only as fast as the few descriptors allow.
const MAX_CREATES = LONG ? 6000 : 2000;
const TICK_MS = 1000 / 100; // USER_HZ
let fdRun = null;

test(`file descriptors run out (ulimit -n ${NOFILE}, ${CLIENTS} clients): keeps serving, recovers without restart`,
  { timeout: LONG ? 600000 : 120000 }, async (t) => {
    const tmp = tempDir('aq-fds-');
    const db = join(tmp.dir, 'aq.db');
    let target = null, receiver = null, daemon = null;
    t.after(async () => {
      if (daemon) await daemon.kill();
      if (target) await target.close();
      if (receiver) await receiver.close();
      tmp.cleanup();
    });
    // Slow enough that calls pile up on the descriptors; the daemon then runs
    // only as many at once as its limit allows, so the drain takes a while.
    const targetDelayMs = 300;
    target = await startFake(() => ({ status: 200, delayMs: targetDelayMs }), { name: 'target' });
    receiver = await startFake(() => ({ status: 200 }), { name: 'receiver' });
    daemon = await startDaemon({
      db, nofile: NOFILE,
      args: ['--retry-base', '200ms', '--retry-cap', '1s', '--retry-jitter', 'false', '--lease-grace', '1s',
        '--webhook-schedule', Array(60).fill('250ms').join(',')],
    });
    const pid = daemon.pid;
    const client = new Client();
    // The default retries (3): what a client that sets none gets.
    const body = (key) => ({ callbackUrl: target.url('/slow'), webhookUrl: receiver.url('/hook'),
      payload: { key }, timeout: 5 });
    const base = procStats(pid);

    // Overload.
    const samples = [];
    let stop = false;
    const sampler = (async () => {
      while (!stop) {
        const s = procStats(pid);
        if (s) samples.push({ at: mono(), ...s });
        await sleep(200);
      }
    })();
    let seq = 0;
    const t0 = mono();
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (mono() - t0 < OVERLOAD_MS && seq < MAX_CREATES) {
        const key = `o-${seq++}`;
        await client.create(daemon.url, key, body(key), { timeoutMs: 4000 });
      }
    }));
    const overload = client.log.slice();
    stop = true;
    await sampler;
    assert.ok(daemon.alive(), `the daemon died under fd exhaustion: ${JSON.stringify(daemon.exitInfo())}`);

    // Load gone: the same process must serve again by itself.
    const calm = mono();
    await waitFor(async () => (await request(daemon.url, 'GET', '/healthz')).status === 200,
      { timeout: 30000, interval: 200, what: '/healthz after the overload' });
    let recoverMs = null;
    await waitFor(async () => {
      const r = await client.create(daemon.url, `after-${seq++}`, body(`after-${seq}`));
      if (r.status === 202) recoverMs = mono() - calm;
      return r.status === 202;
    }, { timeout: 30000, interval: 200, what: 'a create to get 202 after the overload' });
    const newIds = [];
    for (let i = 0; i < 10; i++) {
      const key = `new-${i}`;
      const r = await client.create(daemon.url, key, body(key));
      assert.equal(r.status, 202, `create ${i} after recovery: ${r.status} ${JSON.stringify(r.body)}`);
      newIds.push(r.body.id);
    }
    // The backlog the overload left is worked off first (in due order), the
    // new tasks with it; the drain bound scales with how much was accepted.
    const backlog = dbProgress(db).open;
    const d = await drain(db, { timeout: 60000 + backlog * 100 });
    const newTasks = sql(db, `SELECT id, status, attempts, error_code AS code FROM tasks WHERE idempotency_key LIKE 'new-%'`);
    const newCalled = newIds.filter((id) => target.log.some((c) => c.taskId === id)).length;
    // Once the backlog is gone, tasks must run normally again: same process.
    const laterIds = [];
    for (let i = 0; i < 10; i++) {
      const r = await client.create(daemon.url, `later-${i}`, body(`later-${i}`));
      assert.equal(r.status, 202, `create ${i} after the drain: ${r.status}`);
      laterIds.push(r.body.id);
    }
    const later = await drain(db, { timeout: 30000 });
    const laterTasks = sql(db, `SELECT status FROM tasks WHERE idempotency_key LIKE 'later-%'`).map((x) => x.status);
    const laterCalled = laterIds.filter((id) => target.log.some((c) => c.taskId === id)).length;
    // CPU while idle after the storm: a daemon spinning on a failing accept() shows here.
    await sleep(200);
    const idle0 = procStats(pid);
    await sleep(2000);
    const idle1 = procStats(pid);
    const idleCpuPct = ((idle1.cpuTicks - idle0.cpuTicks) * TICK_MS) / 2000 * 100;
    assert.equal(daemon.pid, pid, 'no restart');
    const exit = await daemon.stop('SIGTERM');

    const r = check({ accepted: client.log, db, target: target.entries(), webhooks: receiver.entries() });
    const report = formatReport(r);
    t.diagnostic(report.replace(/\n/g, ' | '));
    const statuses = {};
    for (const e of overload) {
      const k = e.status ? String(e.status) + (e.code ? ` ${e.code}` : '') : `no answer (${e.error})`;
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    const cpuOverload = samples.length > 1
      ? ((samples.at(-1).cpuTicks - samples[0].cpuTicks) * TICK_MS) / (samples.at(-1).at - samples[0].at) * 100 : null;
    const logs = daemon.logs();
    const errs = {};
    for (const m of logs.matchAll(/^\S+ (?:WARN|ERROR) (\S+)/gm)) errs[m[1]] = (errs[m[1]] ?? 0) + 1;
    const attemptErrors = Object.fromEntries(sql(db, 'SELECT COALESCE(error_code, \'none\') AS code, count(*) AS n FROM attempts GROUP BY 1')
      .map((x) => [x.code, x.n]));
    const result = {
      ok: r.ok, nofile: NOFILE, clients: CLIENTS, overloadMs: OVERLOAD_MS,
      targetDelayMs, baseFds: base.fds, peakFds: Math.max(...samples.map((s) => s.fds)), peakThreads: Math.max(...samples.map((s) => s.threads)),
      overloadStatuses: statuses, createsPerSecDuringOverload: Math.round(overload.filter((e) => e.status === 202).length / (OVERLOAD_MS / 1000)),
      cpuPctDuringOverload: cpuOverload === null ? null : Math.round(cpuOverload),
      idleCpuPctAfter: Math.round(idleCpuPct), recoverCreateMs: Math.round(recoverMs),
      backlogWhenLoadStopped: backlog, newTasks: newTasks.map((x) => `${x.status}/${x.attempts}${x.code ? '/' + x.code : ''}`),
      newTasksCalled: newCalled, laterTasks, laterCalled, laterDrainMs: Math.round(later.ms),
      statusesAtEnd: r.summary.statuses,
      failedWithoutContact: sql(db, "SELECT id FROM tasks WHERE status = 'failed' AND error_code = 'connection_failed'")
        .filter((x) => !target.log.some((c) => c.taskId === x.id)).length,
      drained: d.drained, drainMs: Math.round(d.ms), exitCode: exit.code,
      logWarnings: errs, attemptErrors, checker: { summary: r.summary, failures: r.failures },
    };
    // ok: what this test asserts.
    result.ok = overload.some((e) => e.status === 202) && d.drained && laterCalled === 10 &&
      laterTasks.every((x) => x === 'completed') && idleCpuPct < 25 && exit.code === 0 &&
      Object.values(r.failures).every((n) => n === 0);
    result.evidence = saveRun('fds', { client, target, receiver, db, logs });
    recordResult('fd-exhaustion', result);
    fdRun = result;

    assert.ok(overload.some((e) => e.status === 202), 'some creates were served during the overload');
    assert.ok(d.drained, `the backlog of ${backlog} tasks did not drain: ${JSON.stringify(d.progress)}`);
    assert.equal(laterCalled, laterIds.length, `after the drain only ${laterCalled} of 10 new tasks reached their target`);
    assert.deepEqual(laterTasks, Array(10).fill('completed'), 'after the drain new tasks complete');
    assert.ok(result.peakFds >= NOFILE - 8, `the overload did not reach the limit (peak ${result.peakFds} fds)`);
    assert.ok(idleCpuPct < 25, `the daemon uses ${idleCpuPct.toFixed(0)} % CPU idle after the overload`);
    assert.equal(r.failures.lost, 0, report);
    assert.equal(r.failures.unexpected, 0, report);
    assert.equal(r.failures.stuck, 0, report);
    // Every other count must be zero too, webhooks given up included: the
    // daemon's own EMFILE neither counts as an attempt nor uses up a schedule.
    const others = Object.entries(r.failures).filter(([, n]) => n > 0);
    assert.deepEqual(others, [], report);
    assert.equal(exit.code, 0);
  });

test('fds run out: tasks accepted during the overload, and those queued behind it, reach their targets and webhooks',
  () => {
    assert.ok(fdRun, 'the overload scenario ran');
    assert.equal(fdRun.failedWithoutContact, 0, `${fdRun.failedWithoutContact} tasks failed with connection_failed, their target never called`);
    assert.equal(fdRun.newTasksCalled, 10, `tasks created right after the overload: ${fdRun.newTasks.join(', ')}`);
    assert.equal(fdRun.checker.failures.webhooksUndelivered, 0,
      `${fdRun.checker.failures.webhooksUndelivered} webhooks given up: their deliveries failed on the daemon's own EMFILE too`);
  });

test('descriptors taken by slow calls: a task to a healthy target is not failed for the daemon\'s own EMFILE',
  { timeout: 120000 },
  async (t) => {
    const tmp = tempDir('aq-emfile-');
    const db = join(tmp.dir, 'aq.db');
    let target = null, daemon = null;
    t.after(async () => { if (daemon) await daemon.kill(); if (target) await target.close(); tmp.cleanup(); });
    target = await startFake((rec) => (rec.body.includes('"hang"') ? { hang: true } : { status: 200 }),
      { name: 'target' });
    daemon = await startDaemon({ db, nofile: 40, args: ['--retry-base', '200ms', '--retry-jitter', 'false'] });
    const client = new Client();
    // The healthy task runs half a second from now, when the slow calls hold every descriptor.
    const ok = await client.create(daemon.url, 'ok', { callbackUrl: target.url('/ok'), delay: 0.5, retries: 2, timeout: 5 });
    assert.equal(ok.status, 202);
    await pool([...Array(40).keys()], 8, (i) => client.create(daemon.url, `hang-${i}`,
      { callbackUrl: target.url('/hang'), payload: 'hang', retries: 0, timeout: 4 }));
    const task = await waitFor(async () => {
      const g = await request(daemon.url, 'GET', `/v1/tasks/${ok.body.id}`);
      return ['completed', 'failed'].includes(g.body?.status) ? g.body : null;
    }, { timeout: 30000, interval: 100, what: 'the healthy task to finish' });
    const called = target.log.some((c) => c.taskId === ok.body.id);
    const hangs = sql(db, "SELECT status, error_code AS code, count(*) AS n FROM tasks WHERE idempotency_key LIKE 'hang-%' GROUP BY 1, 2");
    const notCalled = sql(db, "SELECT id FROM tasks WHERE idempotency_key LIKE 'hang-%' AND status = 'failed' AND error_code = 'connection_failed'")
      .filter((r) => !target.log.some((c) => c.taskId === r.id)).length;
    recordResult('fd-exhaustion-retries', {
      ok: task.status === 'completed', nofile: 40, healthyTask: { status: task.status, attempts: task.attempts,
        errors: task.attemptHistory.map((a) => a.error?.code ?? null), targetCalled: called,
        message: task.error?.message ?? null },
      slowTasks: hangs, failedWithoutContact: notCalled,
    });
    assert.equal(task.status, 'completed',
      `the healthy task ended ${task.status} after ${task.attempts} attempts (${task.error?.message}); target called: ${called}`);
  });
