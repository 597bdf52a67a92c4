// kill -9 at random moments while clients create tasks and the daemon calls
// targets and delivers webhooks, many times in a row on the same database.
// Clients resend every create that got no answer with the same
// Idempotency-Key, as a real client would. Afterwards every accepted task
// must reach a final state, none may be lost or appear unasked, and every
// webhook must arrive with its stored webhook-id.
//
// What would fail it: a 202 sent before the commit (the task is missing
// after the kill: lost), a task stored although its create was refused
// (unexpected), a task left running after restart (stuck), an idempotent
// retry making a second task (keyStoredTwice), a webhook lost between
// finishing and notifying (webhooksUndelivered).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  LONG, startDaemon, startFake, Client, tempDir, sleep, drain, saveRun, recordResult, logEvents, mono,
  dbProgress,
} from './lib/faults.mjs';
import { check, formatReport } from './lib/checker.mjs';

const ROUNDS = Number(process.env.FAULTS_KILL_ROUNDS ?? (LONG ? 60 : 5));
const PRODUCERS = Number(process.env.FAULTS_PRODUCERS ?? 24);
const MAX_RUN_MS = 1500;

// Seeded randomness (FAULTS_SEED): the seed fixes the kill moments and the
// fakes' answers in the order requests arrive; the interleaving still varies.
const SEED = Number(process.env.FAULTS_SEED ?? Date.now() % 100000);
let state = SEED || 1;
const rand = () => { state = (state * 48271) % 2147483647; return state / 2147483647; };

test(`kill -9 at random moments, ${ROUNDS} rounds on one database (seed ${SEED})`,
  { timeout: LONG ? 30 * 60000 : 120000 }, async (t) => {
    const tmp = tempDir('aq-kill9-');
    const db = join(tmp.dir, 'aq.db');
    let target = null, receiver = null, daemon = null;
    t.after(async () => {
      if (daemon) await daemon.kill();
      if (target) await target.close();
      if (receiver) await receiver.close();
      tmp.cleanup();
    });
    // A target that mostly answers after a short delay (so kills land
    // mid-call), sometimes 503 (a retry), sometimes slowly.
    target = await startFake(() => {
      const x = rand();
      if (x < 0.08) return { status: 503 };
      if (x < 0.15) return { status: 200, delayMs: 800 + Math.floor(rand() * 700) };
      return { status: 200, body: { ok: true }, delayMs: Math.floor(rand() * 300) };
    }, { name: 'target' });
    receiver = await startFake(() => (rand() < 0.12
      ? { status: 500 } : { status: 200, delayMs: Math.floor(rand() * 150) }), { name: 'receiver' });

    const args = ['--retry-base', '100ms', '--retry-cap', '2s', '--retry-jitter', 'false',
      '--webhook-schedule', Array(30).fill('200ms').join(','), '--lease-grace', '1s',
      '--shutdown-grace', '2s', '--http-threads', '4'];
    const client = new Client();
    const body = (key) => ({
      callbackUrl: target.url('/run'), webhookUrl: receiver.url('/hook'),
      payload: { key }, retries: 8, timeout: 5,
    });
    const rounds = [];
    let logs = '';
    let seq = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const t0 = mono();
      daemon = await startDaemon({ db, args });
      const startMs = mono() - t0;
      const before = client.log.length;
      let stop = false;
      const producers = Array.from({ length: PRODUCERS }, async (_, p) => {
        // The first producer resends what the last kill left unanswered.
        if (p === 0) {
          for (const k of [...client.pending]) {
            if (stop) return;
            await client.create(daemon.url, k, client.bodies.get(k), { timeoutMs: 3000 });
          }
        }
        while (!stop) {
          const key = `k${round}-${seq++}`;
          await client.create(daemon.url, key, body(key), { timeoutMs: 3000 });
        }
      });
      // The fault: a random moment into the round.
      const runMs = Math.floor(rand() * MAX_RUN_MS);
      await sleep(runMs);
      // Nothing synchronous may run between here and the kill: a blocked
      // event loop stops the producers and lets the daemon go idle, and a
      // kill of an idle daemon proves nothing.
      await daemon.kill();
      stop = true;
      const progress = dbProgress(db); // as the kill left it
      await Promise.all(producers);
      logs += `---- round ${round}\n` + daemon.logs();
      const mine = client.log.slice(before);
      rounds.push({
        round, startMs: Math.round(startMs), killAtMs: runMs,
        creates: mine.length, accepted: mine.filter((e) => e.id).length,
        unanswered: mine.filter((e) => !e.status).length,
        requeuedAtStart: logEvents(daemon.logs(), 'tasks.requeued', 'count').sum,
        runningAtKill: progress.by.running ?? 0,
      });
    }

    // Last start: resend what is still unanswered, then let everything finish.
    daemon = await startDaemon({ db, args });
    for (let i = 0; i < 5 && client.pending.size; i++) await client.retryPending(daemon.url);
    const d = await drain(db, { timeout: 60000 });
    const exit = await daemon.stop('SIGTERM');
    logs += '---- final\n' + daemon.logs();
    daemon = null;

    const r = check({ accepted: client.log, db, target: target.entries(), webhooks: receiver.entries() });
    const dir = saveRun('kill9', { client, target, receiver, db, logs });
    const report = formatReport(r);
    t.diagnostic(report.replace(/\n/g, ' | '));
    const totals = {
      rounds: ROUNDS, seed: SEED,
      creates: client.log.length,
      unansweredCreates: rounds.reduce((a, x) => a + x.unanswered, 0),
      requeuedAtStart: rounds.reduce((a, x) => a + x.requeuedAtStart, 0) + logEvents(logs.split('---- final')[1] ?? '', 'tasks.requeued', 'count').sum,
      meanRestartMs: Math.round(rounds.reduce((a, x) => a + x.startMs, 0) / rounds.length),
      maxRestartMs: Math.max(...rounds.map((x) => x.startMs)),
      drainMs: Math.round(d.ms), drained: d.drained, exitCode: exit.code,
    };
    recordResult('kill9', { ok: r.ok, totals, checker: { summary: r.summary, failures: r.failures }, rounds, evidence: dir });

    assert.equal(r.failures.lost, 0, `accepted tasks lost after kill -9:\n${report}`);
    assert.equal(r.failures.unexpected, 0, `tasks stored that were never accepted:\n${report}`);
    assert.equal(r.failures.stuck, 0, `tasks not final after the drain:\n${report}`);
    assert.ok(r.ok, report);
    assert.ok(d.drained, `the run did not drain within 60 s: ${JSON.stringify(d.progress)}`);
    assert.equal(exit.code, 0, 'the last daemon exits 0 on SIGTERM');
    // The run must have exercised what it claims: tasks accepted across the
    // kills, calls made and webhooks delivered.
    assert.ok(r.summary.accepted >= ROUNDS * 5, `too few tasks accepted to mean anything: ${r.summary.accepted}`);
    assert.ok(r.summary.targetCalls > 0 && r.summary.webhookIdsTaken > 0, report);
  });
