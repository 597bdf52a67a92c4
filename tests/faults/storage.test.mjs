// Storage faults: the disk fills up, the database file becomes read-only,
// another process holds the database's write lock. In each, creates that
// cannot be stored get 503 with a JSON error and Retry-After (never a 202
// without a stored task, never a task stored behind a 503), /readyz says
// unavailable, and once the fault is gone the same process recovers by
// itself; the database passes PRAGMA integrity_check. See lib/storage.mjs.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { storageFault } from './lib/storage.mjs';
import { makeSmallFs, smallFsUnavailable, holdWriteLock, tempDir } from './lib/faults.mjs';

const noFs = smallFsUnavailable();

test('disk full: 503 + Retry-After while full, recovers by itself when space returns',
  { skip: noFs ?? false, timeout: 180000 }, async (t) => {
    const fs = makeSmallFs(8);
    t.after(() => fs.cleanup());
    let filler = 0;
    await storageFault(t, {
      name: 'disk-full',
      dir: fs.dir,
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
    t.after(() => fs.cleanup());
    const files = (db) => [db, `${db}-wal`].filter((f) => existsSync(f));
    await storageFault(t, {
      name: 'read-only',
      dir: fs.dir,
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
    t.after(() => tmp.cleanup());
    let lock = null;
    t.after(async () => { if (lock) await lock.release(); });
    let heldMs = 0, t0 = 0;
    await storageFault(t, {
      name: 'db-locked',
      dir: tmp.dir,
      args: ['--busy-timeout', '200ms'],
      inject: async (db) => { lock = await holdWriteLock(db); t0 = Date.now(); return lock; },
      heal: async (l) => { await l.release(); heldMs = Date.now() - t0; lock = null; },
      extra: () => ({ busyTimeoutMs: 200, lockHeldMs: heldMs, how: 'sqlite3 CLI: BEGIN EXCLUSIVE + a write, held open' }),
    });
  });

