// Storage faults: the disk fills up, the database file becomes read-only,
// another process holds the database's write lock. In each, creates that
// cannot be stored get 503 with a JSON error and Retry-After (never a 202
// without a stored task, never a task stored behind a 503), /readyz says
// unavailable, and once the fault is gone the same process recovers by
// itself; the database passes PRAGMA integrity_check. See lib/storage.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { storageFault } from './lib/storage.mjs';
import {
  makeSmallFs, smallFsUnavailable, holdWriteLock, tempDir, startDaemon, Client, pool, recordResult, request, sleep,
} from './lib/faults.mjs';

const noFs = smallFsUnavailable();

test('disk full: 503 + Retry-After while full, recovers by itself when space returns',
  { skip: noFs ?? false, timeout: 180000 }, async (t) => {
    const fs = makeSmallFs(8);
    let filler = 0;
    await storageFault(t, {
      name: 'disk-full',
      dir: fs.dir,
      cleanup: () => fs.cleanup(),
      padBytes: 4096, // uses the space up faster
      inject: () => { filler = fs.fill(); return { availAfterFill: fs.avail() }; },
      heal: () => fs.unfill(),
      extra: () => ({ fsMiB: 8, fillerBytes: filler }),
    });
  });

test('read-only database file (chattr +i): 503 while it lasts, recovers when writable again',
  { skip: noFs ?? false, timeout: 180000 }, async (t) => {
    // Root ignores file modes, and a file system with files open for writing
    // cannot be remounted read-only, so the files are made immutable: ext4
    // then refuses writes even through descriptors already open. The -shm
    // file is left alone: SQLite maps it, and a refused write there is a
    // SIGBUS, which is not the fault under test.
    const fs = makeSmallFs(16);
    const files = (db) => [db, `${db}-wal`].filter((f) => existsSync(f));
    await storageFault(t, {
      name: 'read-only',
      dir: fs.dir,
      cleanup: () => fs.cleanup(), // also clears the immutable flags
      inject: (db) => {
        const fsFiles = files(db);
        const r = spawnSync('chattr', ['+i', ...fsFiles], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`chattr +i: ${r.stderr}`);
        return fsFiles;
      },
      heal: (fsFiles) => {
        const r = spawnSync('chattr', ['-i', ...fsFiles], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`chattr -i: ${r.stderr}`);
      },
      extra: () => ({ how: 'chattr +i on the database and its -wal file' }),
    });
  });

test('database locked by another process past --busy-timeout: 503, recovers on release',
  { timeout: 180000 }, async (t) => {
    const tmp = tempDir('aq-locked-');
    let lock = null;
    let heldMs = 0, t0 = 0;
    await storageFault(t, {
      name: 'db-locked',
      dir: tmp.dir,
      cleanup: async () => { if (lock) await lock.release(); tmp.cleanup(); },
      args: ['--busy-timeout', '200ms'],
      inject: async (db) => { lock = await holdWriteLock(db); t0 = Date.now(); return lock; },
      heal: async (l) => { await l.release(); heldMs = Date.now() - t0; lock = null; },
      extra: () => ({ busyTimeoutMs: 200, lockHeldMs: heldMs, how: 'sqlite3 CLI: BEGIN EXCLUSIVE + a write, held open' }),
    });
  });


test('database locked past --busy-timeout with many creates waiting: each is refused within a few busy timeouts',
  { timeout: 120000 },
  async (t) => {
    const tmp = tempDir('aq-locked-latency-');
    const db = join(tmp.dir, 'aq.db');
    let lock = null, daemon = null;
    t.after(async () => { if (lock) await lock.release(); if (daemon) await daemon.kill(); tmp.cleanup(); });
    daemon = await startDaemon({ db, args: ['--busy-timeout', '200ms'] });
    const client = new Client();
    const body = { callbackUrl: 'http://127.0.0.1:9/never', delay: 3600 };
    assert.equal((await client.create(daemon.url, 'first', body)).status, 202);
    lock = await holdWriteLock(db);
    const N = 16;
    await pool([...Array(N).keys()], N, (i) => client.create(daemon.url, `w-${i}`, body, { timeoutMs: 60000 }));
    await lock.release();
    lock = null;
    const waiting = client.log.slice(1);
    const ms = waiting.map((e) => e.ms);
    recordResult('db-locked-latency', {
      ok: Math.max(...ms) <= 1400, busyTimeoutMs: 200, concurrentCreates: N,
      statuses: [...new Set(waiting.map((e) => e.status))], maxAnswerMs: Math.max(...ms), minAnswerMs: Math.min(...ms),
    });
    assert.ok(waiting.every((e) => e.status === 503), 'all refused while locked');
    assert.ok(Math.max(...ms) <= 1400,
      `${N} creates waiting on a lock with busy_timeout 200 ms were answered after up to ${Math.max(...ms)} ms`);
  });

test('disk full and no new creates: /readyz stays unavailable until a write succeeds again',
  { skip: noFs ?? false, timeout: 120000 },
  async (t) => {
    const fs = makeSmallFs(8);
    let daemon = null;
    t.after(async () => { if (daemon) await daemon.kill(); fs.cleanup(); });
    daemon = await startDaemon({ db: join(fs.dir, 'aq.db') });
    const client = new Client();
    const body = { callbackUrl: 'http://127.0.0.1:9/never', delay: 3600, payload: { pad: 'x'.repeat(4096) } };
    assert.equal((await client.create(daemon.url, 'first', body)).status, 202);
    fs.fill();
    // Creates until one is refused: the daemon now knows the disk is full.
    for (let i = 0; i < 2000; i++) {
      if ((await client.create(daemon.url, `fill-${i}`, body)).status === 503) break;
    }
    assert.equal(client.log.at(-1).status, 503, 'a create was refused on the full disk');
    // Watch /readyz for longer than the sweep interval (5 s), sending nothing else.
    const samples = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 6500) {
      const r = await request(daemon.url, 'GET', '/readyz');
      samples.push({ at: Date.now() - t0, status: r.status });
      await sleep(100);
    }
    const probe = await client.create(daemon.url, 'probe', body); // still full: must be refused
    const ready = samples.filter((s) => s.status === 200);
    const falseRecoveries = (daemon.logs().match(/store\.recovered ops=0/g) ?? []).length;
    recordResult('disk-full-readyz', {
      ok: ready.length === 0, samples: samples.length, readySamples: ready.length,
      firstReadyAtMs: ready[0]?.at ?? null, probeStatus: probe.status, falseRecoveryLogLines: falseRecoveries,
    });
    assert.equal(probe.status, 503, 'the disk is still full');
    assert.equal(ready.length, 0,
      `/readyz said ready ${ready.length} of ${samples.length} times (first after ${ready[0]?.at} ms) while the disk was full`);
  });
