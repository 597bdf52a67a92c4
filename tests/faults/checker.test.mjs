// The checker checked: each kind of failure it exists to find, planted in
// small made-up records (and once in a real SQLite file read through the
// CLI), must be found; a clean run must pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, readDb, readJsonl } from './lib/checker.mjs';
import { tempDir, writeJsonl } from './lib/faults.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const task = (id, status, extra = {}) => ({
  id, status, key: `key-${id}`, attempts: 1, uncounted: 0, retries: 3, hasWebhook: 1, attemptRows: 1, ...extra,
});
const wh = (taskId, status = 'delivered') => ({ id: `msg_${taskId}`, taskId, status, attempts: 1 });

/** A SQLite file with the columns the checker reads, and rows (SQL). */
function makeDb(db, rows) {
  execFileSync('sqlite3', [db, `
    CREATE TABLE tasks (seq INTEGER PRIMARY KEY, id TEXT, status TEXT, idempotency_key TEXT, attempts INT,
      attempts_uncounted INT, max_retries INT, webhook_url TEXT);
    CREATE TABLE attempts (task_seq INT, n INT);
    CREATE TABLE webhooks (id TEXT, task_seq INT, task_id TEXT, status TEXT, attempts INT);
    CREATE TABLE idempotency (key TEXT, request_hash TEXT, task_id TEXT, created_at INT);
    ${rows}`]);
}

function clean() {
  return {
    accepted: [
      { key: 'key-a', status: 202, id: 'a' },
      { key: 'key-b', status: 0, error: 'ECONNRESET' },
      { key: 'key-b', status: 200, id: 'b' },
    ],
    dbData: { tasks: [task('a', 'completed'), task('b', 'failed', { attempts: 2 })], webhooks: [wh('a'), wh('b')] },
    target: [{ taskId: 'a', attempt: 1 }, { taskId: 'b', attempt: 1 }, { taskId: 'b', attempt: 2 }],
    webhooks: [{ webhookId: 'msg_a', taskId: 'a', status: 200 }, { webhookId: 'msg_b', taskId: 'b', status: 500 },
      { webhookId: 'msg_b', taskId: 'b', status: 200 }],
  };
}

test('a clean run passes, and retries are not counted as duplicates', () => {
  const r = check(clean());
  assert.ok(r.ok, JSON.stringify(r.failures));
  assert.equal(r.summary.accepted, 2);
  assert.equal(r.summary.tasksCalledMoreThanOnce, 1);
  assert.equal(r.summary.duplicateWebhooks, 0);
});

test('an accepted task missing from the database is lost', () => {
  const run = clean();
  run.dbData.tasks = run.dbData.tasks.filter((t) => t.id !== 'a');
  const r = check(run);
  assert.equal(r.ok, false);
  assert.deepEqual(r.lost, ['a']);
});

test('an accepted task still queued or running is stuck', () => {
  const run = clean();
  run.dbData.tasks[0].status = 'running';
  const r = check({ ...run, webhooks: null });
  assert.deepEqual(r.stuck, ['a']);
  assert.equal(r.ok, false);
});

test('a stored task is unexpected unless its create went unanswered', () => {
  const run = clean();
  run.dbData.tasks.push(task('c', 'completed'));          // never asked for
  run.dbData.tasks.push(task('d', 'completed'));          // asked, refused with 503
  run.dbData.tasks.push(task('e', 'completed'));          // asked, no answer
  run.accepted.push({ key: 'key-d', status: 503, code: 'unavailable' });
  run.accepted.push({ key: 'key-e', status: 0, error: 'TimeoutError' });
  const r = check({ ...run, target: null, webhooks: null });
  assert.deepEqual(r.unexpected.sort(), ['c', 'd']);
  assert.deepEqual(r.storedWithout202, ['e']);
  assert.equal(r.ok, false);
});

test('one key making two tasks, or answered with two ids, breaks idempotency', () => {
  const run = clean();
  run.dbData.tasks.push(task('a2', 'completed', { key: 'key-a' }));
  run.accepted.push({ key: 'key-a', status: 200, id: 'a2' });
  const r = check({ ...run, target: null, webhooks: null });
  assert.deepEqual(r.keyStoredTwice, ['key-a']);
  assert.deepEqual(r.keyAnsweredTwice, ['key-a']);
});

test('calls: the same attempt twice, more calls than attempts, a completed task never called', () => {
  const run = clean();
  run.target.push({ taskId: 'a', attempt: 1 });
  let r = check(run);
  assert.deepEqual(r.repeatedAttemptNumber, ['a']);
  assert.deepEqual(r.callsBeyondAttempts, ['a']);
  r = check({ ...clean(), target: [{ taskId: 'b', attempt: 1 }] });
  assert.deepEqual(r.completedWithoutCall, ['a']);
  r = check({ ...clean(), target: [...clean().target, { taskId: 'zzz', attempt: 1 }] });
  assert.deepEqual(r.callsForUnknownTasks, ['zzz']);
});

test('webhooks: taken twice is reported; for a task not final, an unknown id, or missing are failures', () => {
  let run = clean();
  run.webhooks.push({ webhookId: 'msg_a', taskId: 'a', status: 200 });
  let r = check(run);
  assert.ok(r.ok, 'a duplicate delivery is at-least-once, not a failure');
  assert.deepEqual(r.duplicateWebhooks, ['msg_a']);

  run = clean();
  run.dbData.tasks[0].status = 'running';
  r = check(run);
  assert.deepEqual(r.webhookForNonFinal, ['a']);

  run = clean();
  run.webhooks.push({ webhookId: 'msg_other', taskId: 'a', status: 200 });
  r = check(run);
  assert.deepEqual(r.webhookIdUnknown, ['msg_other']);
  assert.deepEqual(r.webhookIdChanged, ['a']);

  run = clean();
  run.webhooks = run.webhooks.filter((d) => d.taskId !== 'b' || d.status !== 200);
  r = check(run);
  assert.deepEqual(r.webhooksUndelivered, ['b']);
});

test('rows a half-done write leaves behind are failures', () => {
  const run = clean();
  run.dbData.halfStored = { keyWithoutTask: 1, taskWithoutKey: 0, attemptWithoutTask: 0, webhookWithoutTask: 0, finalWithoutOutbox: 0 };
  const r = check(run);
  assert.equal(r.ok, false);
  assert.deepEqual(r.halfStored, ['keyWithoutTask: 1']);
});

test('the CLI reads a real database and JSON-lines logs, and exits 1 on a lost task', (t) => {
  const tmp = tempDir('aq-checker-');
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'x.db');
  makeDb(db, `
    INSERT INTO tasks VALUES (1, 'a', 'completed', 'ka', 1, 0, 3, 'http://127.0.0.1/h');
    INSERT INTO attempts VALUES (1, 1);
    INSERT INTO webhooks VALUES ('msg_a', 1, 'a', 'delivered', 1);
    INSERT INTO idempotency VALUES ('ka', 'h', 'a', 0);`);
  const acc = join(tmp.dir, 'a.jsonl'), tgt = join(tmp.dir, 't.jsonl'), hooks = join(tmp.dir, 'w.jsonl');
  writeJsonl(acc, [{ key: 'ka', status: 202, id: 'a' }]);
  writeJsonl(tgt, [{ taskId: 'a', attempt: 1 }]);
  writeJsonl(hooks, [{ webhookId: 'msg_a', taskId: 'a', status: 200 }]);
  const cli = (a) => spawnSync(process.execPath, [join(here, 'check.mjs'), ...a], { encoding: 'utf8' });
  let r = cli(['--accepted', acc, '--db', db, '--target', tgt, '--webhooks', hooks]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /checker: PASS/);
  writeFileSync(acc, JSON.stringify({ key: 'kb', status: 202, id: 'b' }) + '\n', { flag: 'a' });
  r = cli(['--accepted', acc, '--db', db, '--json']);
  assert.equal(r.status, 1);
  assert.deepEqual(JSON.parse(r.stdout).lost, ['b']);
  assert.equal(cli(['--db', db]).status, 2, 'usage error');
});

test('the database is read in pages and JSON-lines files line by line: every row once, in order', (t) => {
  const tmp = tempDir('aq-checker-');
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'x.db');
  const ids = ['a', 'b', 'c', 'd', 'e'];
  makeDb(db, `
    ${ids.map((id, i) => `INSERT INTO tasks VALUES (${i * 7 + 3}, '${id}', 'completed', NULL, 1, 0, 3, NULL);
      INSERT INTO webhooks VALUES ('msg_${id}', ${i * 7 + 3}, '${id}', 'delivered', 1);`).join('\n')}`);
  for (const page of [1, 2, 5, 6]) {
    const d = readDb(db, { page });
    assert.deepEqual(d.tasks.map((x) => x.id), ids, `tasks, pages of ${page}`);
    assert.deepEqual(d.webhooks.map((x) => x.taskId), ids, `webhooks, pages of ${page}`);
    assert.equal(Object.hasOwn(d.tasks[0], '_seq'), false, 'the paging column is not left in the rows');
  }
  const file = join(tmp.dir, 'l.jsonl');
  writeFileSync(file, '{"n":1}\n\n{"n":"é"}\n{"n":3}');
  assert.deepEqual(readJsonl(file), [{ n: 1 }, { n: 'é' }, { n: 3 }]);
  writeFileSync(file, '{"n":1}\n{oops}\n');
  assert.throws(() => readJsonl(file), /l\.jsonl:2:/);
});
