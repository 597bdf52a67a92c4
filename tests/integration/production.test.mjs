// docs/production.md, the parts a test can run here: the online backup with
// sqlite3's .backup while the daemon writes, and a daemon started on the copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, api, tempDir } from './lib/harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const hasSqlite = spawnSync('sqlite3', ['-version'], { stdio: 'ignore' }).status === 0;

test('the backup command of docs/production.md copies a live database that a daemon starts on', {
  skip: hasSqlite ? false : 'the sqlite3 command is not installed',
}, async (t) => {
  const doc = readFileSync(join(root, 'docs/production.md'), 'utf8');
  assert.match(doc, /sqlite3 \/var\/lib\/asyncqueue\/asyncqueue\.db "\.backup '\$f'"/, 'the guide uses .backup');

  const tmp = tempDir('aq-backup-');
  const d = await startDaemon({ db: join(tmp.dir, 'live.db') });
  t.after(async () => { await d.stop(); tmp.cleanup(); });
  const ids = [];
  const writes = (async () => {
    for (let i = 0; i < 40; i++) {
      const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'https://example.com/x', delay: 3600, metadata: { i } });
      assert.equal(r.status, 202);
      ids.push(r.body.id);
    }
  })();
  while (ids.length < 10) await new Promise((r) => setImmediate(r));
  const copy = join(tmp.dir, 'backup.db');
  // The daemon keeps writing meanwhile: .backup must still give a consistent file.
  const b = spawnSync('sqlite3', [d.db, `.backup '${copy}'`], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  await writes;
  const check = spawnSync('sqlite3', [copy, 'PRAGMA integrity_check;'], { encoding: 'utf8' });
  assert.equal(check.stdout.trim(), 'ok');

  const restored = await startDaemon({ db: copy });
  try {
    const list = await api(restored.url, 'GET', '/v1/tasks?limit=200');
    assert.equal(list.status, 200);
    const have = new Set(list.body.tasks.map((x) => x.id));
    assert.ok(have.size >= 10 && have.size <= 40, `the copy holds the tasks stored before it (${have.size})`);
    for (const id of have) assert.ok(ids.includes(id));
    // Every task in the copy is whole, not just its id.
    for (const task of list.body.tasks) assert.equal(task.callbackUrl, 'https://example.com/x');
  } finally {
    const exit = await restored.stop();
    assert.equal(exit.code, 0);
  }
});
