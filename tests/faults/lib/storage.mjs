// One scenario for every storage fault (disk full, read-only file, database
// locked by another process): run normally, inject the fault, keep creating
// tasks and watching /readyz, heal, and check that
//   - while it lasts, creates that cannot be stored answer 503 `unavailable`
//     with a JSON error and Retry-After, and /readyz says unavailable;
//   - every 202 has its task in the database at the end, and no refused
//     create left a task behind (the checker: lost 0, unexpected 0);
//   - once healed, the service recovers by itself (same process): creates
//     get 202 and /readyz is ready again, and every task finishes;
//   - the database passes PRAGMA integrity_check.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  LONG, startDaemon, startFake, Client, request, sleep, mono, drain, saveRun, recordResult,
  integrityCheck, waitFor, pool,
} from './faults.mjs';
import { check, formatReport } from './checker.mjs';

/**
 * opts: name, dir (where the db lives), inject(db) -> undo-able fault,
 * heal(), args (extra daemon flags), faultMs (how long to keep trying),
 * padBytes (payload size, to use space up faster), cleanup() (run after the
 * daemon is dead, even on failure: unmount, release a lock).
 */
export async function storageFault(t, opts) {
  const db = join(opts.dir, 'aq.db');
  let daemon = null, target = null, receiver = null;
  // One hook, registered first, in this order: the daemon dies before its
  // file system goes.
  t.after(async () => {
    if (daemon) await daemon.kill();
    if (target) await target.close();
    if (receiver) await receiver.close();
    if (opts.cleanup) await opts.cleanup();
  });
  target = await startFake(() => ({ status: 200, body: { ok: true } }), { name: 'target' });
  receiver = await startFake(() => ({ status: 200 }), { name: 'receiver' });
  daemon = await startDaemon({
    db,
    args: ['--retry-base', '100ms', '--retry-jitter', 'false', '--lease-grace', '1s',
      '--webhook-schedule', Array(40).fill('250ms').join(','), ...(opts.args ?? [])],
  });
  const pid = daemon.pid;
  const client = new Client();
  const pad = 'x'.repeat(opts.padBytes ?? 0);
  let seq = 0;
  const create = (phase) => {
    const key = `${phase}-${seq++}`;
    return client.create(daemon.url, key, {
      callbackUrl: target.url('/run'), webhookUrl: receiver.url('/hook'),
      payload: { key, pad }, retries: 5, timeout: 2,
    }, { timeoutMs: 15000 });
  };

  // 1. Normal service.
  await pool([...Array(10).keys()], 4, () => create('before'));
  assert.ok(client.log.every((e) => e.status === 202), `creates before the fault: ${JSON.stringify(client.log)}`);
  await drain(db, { timeout: 20000 });

  // 2. The fault. Creates keep coming; /readyz is sampled alongside.
  const injectInfo = await opts.inject(db);
  const faultStart = mono();
  const faultMs = opts.faultMs ?? Number(process.env.FAULTS_STORAGE_MS ?? (LONG ? 20000 : 4000));
  const ready = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await request(daemon.url, 'GET', '/readyz', undefined, { timeoutMs: 3000 });
      ready.push({ at: mono() - faultStart, status: r.status, body: r.body });
      await sleep(100);
    }
  })();
  const faultFrom = client.log.length;
  // Keep going for faultMs, and at least until some creates were refused.
  const deadline = faultStart + faultMs;
  const hardDeadline = faultStart + faultMs + 30000;
  await Promise.all([...Array(4)].map(async () => {
    for (;;) {
      const refused = client.log.slice(faultFrom).filter((e) => e.status === 503).length;
      const now = mono();
      if (now > hardDeadline || (now > deadline && refused >= 3)) break;
      await create('during');
    }
  }));
  sampling = false;
  await sampler;
  const during = client.log.slice(faultFrom);
  const refused = during.filter((e) => e.status === 503);
  const faultLastedMs = mono() - faultStart;

  // 3. Heal; the same process must recover by itself.
  await opts.heal(injectInfo);
  const healStart = mono();
  const healFrom = client.log.length;
  await waitFor(async () => (await create('recover')).status === 202,
    { timeout: 30000, interval: 100, what: 'a create to get 202 after the fault was healed' });
  const recoverCreateMs = mono() - healStart;
  await waitFor(async () => (await request(daemon.url, 'GET', '/readyz')).status === 200,
    { timeout: 30000, interval: 100, what: '/readyz to say ready after the fault was healed' });
  const recoverReadyMs = mono() - healStart;
  await pool([...Array(20).keys()], 4, () => create('after'));
  const after = client.log.slice(healFrom);
  const d = await drain(db, { timeout: 60000 });
  assert.equal(daemon.pid, pid);
  const exit = await daemon.stop('SIGTERM');
  const logs = daemon.logs();
  daemon = null;
  const integrity = integrityCheck(db);

  const r = check({ accepted: client.log, db, target: target.entries(), webhooks: receiver.entries() });
  const report = formatReport(r);
  t.diagnostic(report.replace(/\n/g, ' | '));
  // /readyz while creates were being refused: a ready answer between two
  // refused creates (within 250 ms either side) is a lie to the load balancer.
  const unavailable = ready.filter((s) => s.status === 503);
  const firstUnavailable = unavailable.length ? unavailable[0].at : Infinity;
  const readyAfterFirstUnavailable = ready.filter((s) => s.status === 200 && s.at > firstUnavailable);
  const result = {
    ok: r.ok,
    faultLastedMs: Math.round(faultLastedMs),
    createsDuring: during.length,
    acceptedDuring: during.filter((e) => e.status === 202).length,
    refusedDuring: refused.length,
    otherDuring: during.filter((e) => e.status !== 503 && e.status !== 202).map((e) => e.status),
    refusalsWellFormed: refused.every((e) => e.code === 'unavailable' && e.retryAfter && e.json),
    maxRefusalMs: refused.length ? Math.max(...refused.map((e) => e.ms)) : null,
    readySamples: ready.length,
    readyUnavailableSamples: unavailable.length,
    readyFlapsDuringFault: readyAfterFirstUnavailable.length,
    readyFlapsAtMs: readyAfterFirstUnavailable.slice(0, 10).map((x) => x.at),
    readyReasons: [...new Set(unavailable.map((s) => s.body?.reason))],
    firstUnavailableAtMs: unavailable.length ? unavailable[0].at : null,
    recoverCreateMs: Math.round(recoverCreateMs),
    recoverReadyMs: Math.round(recoverReadyMs),
    acceptedAfter: after.filter((e) => e.status === 202).length,
    drained: d.drained, drainMs: Math.round(d.ms),
    integrity, exitCode: exit.code,
    commitFailures: (logs.match(/store\.commit_failed/g) ?? []).length,
    recoveredLines: (logs.match(/store\.recovered/g) ?? []).length,
    checker: { summary: r.summary, failures: r.failures },
    ...(opts.extra ? opts.extra() : {}),
  };
  result.evidence = saveRun(opts.name, { client, target, receiver, db, logs });
  recordResult(opts.name, result);

  assert.ok(refused.length > 0, `no create was refused during the fault: ${JSON.stringify(result)}`);
  assert.ok(result.refusalsWellFormed,
    `a 503 without code "unavailable", JSON or Retry-After: ${JSON.stringify(refused.slice(0, 3))}`);
  assert.deepEqual(result.otherDuring, [], 'during the fault a create gets 202 or 503, nothing else');
  assert.ok(unavailable.length > 0, '/readyz never said unavailable during the fault');
  assert.equal(r.failures.lost, 0, `a 202 without a stored task:\n${report}`);
  assert.equal(r.failures.unexpected, 0, `a refused create left a task behind:\n${report}`);
  assert.equal(r.failures.stuck, 0, `tasks not final after recovery:\n${report}`);
  assert.ok(r.ok, report);
  assert.equal(result.acceptedAfter, after.length, 'every create after recovery got 202');
  assert.equal(integrity, 'ok', 'PRAGMA integrity_check');
  assert.equal(exit.code, 0);
  return result;
}
