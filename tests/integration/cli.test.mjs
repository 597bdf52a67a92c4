// The command-line client (`asyncqueue task ...`, `queue ...`, `schedule ...`):
// the real binary against a real daemon, checking what it prints and the exit
// code that tells each outcome apart (cli.h, asyncqueue(1)).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, startDaemon, startFake, api, tempDir, waitFor, waitForStatus, waitForTask } from './lib/harness.mjs';

const KEY = 'cli-test-key';
const AUTH = { authorization: `Bearer ${KEY}` };
const EXIT = { OK: 0, TASK_FAILED: 1, USAGE: 2, WAIT_TIMEOUT: 3, API: 4, SERVER: 5 };

/**
 * Runs the binary with args and returns { code, stdout, stderr, json }.
 * env replaces the ASYNCQUEUE_* variables of this process; input is fed to
 * stdin; wrapper (e.g. valgrind and its flags) is put in front.
 */
function run(args, { env = {}, input, wrapper = [], timeout = 30000 } = {}) {
  return new Promise((res, rej) => {
    const clean = { ...process.env };
    for (const k of Object.keys(clean)) if (k.startsWith('ASYNCQUEUE_')) delete clean[k];
    const cmd = [...wrapper, BIN, ...args];
    const p = spawn(cmd[0], cmd.slice(1), {
      env: { ...clean, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); rej(new Error(`timed out: ${args.join(' ')}`)); }, timeout);
    // 'close', not 'exit': on 'exit' the pipes may still hold output not
    // yet read (an empty stdout was asserted against, once, under load).
    p.on('close', (code) => {
      clearTimeout(t);
      let json;
      try { json = stdout.trim() ? JSON.parse(stdout) : undefined; } catch { json = undefined; }
      res({ code, stdout, stderr, json });
    });
    if (input !== undefined) {
      p.stdin.on('error', () => {}); // the process may exit before reading it all
      p.stdin.end(input);
    }
  });
}

/** Asserts stderr is exactly one line (the CLI's error rule) and returns it. */
function oneLine(r) {
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `stderr is one line: ${JSON.stringify(r.stderr)}`);
  return lines[0];
}

/** A port on 127.0.0.1 with nothing listening: 1 (tcpmux), below the range
 * the OS hands out for port 0, so no server of the suite can take it. A port
 * bound and closed here was taken meanwhile by another test's daemon, which
 * answered 401 where "no answer" was asserted. */
async function deadPort() {
  return 1;
}

let d, tgt, hook, tmp, env;

before(async () => {
  tgt = await startFake((req) => {
    const path = req.url.split('?')[0];
    if (path === '/fail') return { status: 500, body: { error: 'boom' } };
    if (path === '/slow') return { status: 200, body: { slow: true }, delayMs: 300 };
    if (path === '/hang') return { hang: true };
    return { status: 200, body: { ok: true, path } };
  });
  hook = await startFake([{ status: 200 }]);
  d = await startDaemon({ args: ['--api-key', KEY, '--retry-jitter', 'false', '--retry-base', '50ms'] });
  tmp = tempDir('aq-cli-');
  env = { ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: KEY };
});

after(async () => {
  await tgt.close(); // a hanging call must not hold the daemon's stop for its grace
  await hook.close();
  await d.stop();
  d.cleanup();
  tmp.cleanup();
});

test('task create sends every field, prints the 202 task, exits 0', async () => {
  const r = await run(['task', 'create', '--url', tgt.url('/create'), '--payload', '{"prompt":"hi","n":[1,2.5]}',
    '--method', 'put', '--header', 'X-Model: big', '--header', 'X-Empty:', '--webhook', hook.url('/h'),
    '--retries', '2', '--timeout', '30.5', '--queue', 'cli', '--metadata', '{"userId":42}'], { env });
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.json.status, 'queued');
  assert.equal(r.json.method, 'PUT');
  assert.deepEqual(r.json.headers, { 'X-Model': 'big', 'X-Empty': '' });
  assert.deepEqual(r.json.payload, { prompt: 'hi', n: [1, 2.5] });
  assert.equal(r.json.webhookUrl, hook.url('/h'));
  assert.equal(r.json.retries, 2);
  assert.equal(r.json.timeout, 30.5);
  assert.equal(r.json.queue, 'cli');
  assert.deepEqual(r.json.metadata, { userId: 42 });
  const stored = await api(d.url, 'GET', `/v1/tasks/${r.json.id}`, undefined, AUTH);
  assert.equal(stored.status, 200);
  const call = await waitFor(() => tgt.requests.find((q) => q.url === '/create'), { what: 'the target call' });
  assert.equal(call.method, 'PUT');
  assert.equal(call.headers['x-model'], 'big');
  assert.deepEqual(JSON.parse(call.body), { prompt: 'hi', n: [1, 2.5] });
});

test('task create --payload @file and @- (stdin), --body, --delay, --run-at', async () => {
  const file = join(tmp.dir, 'payload.json');
  writeFileSync(file, '{\n  "from": "file",\n  "list": [1, 2, 3]\n}\n');
  const a = await run(['task', 'create', '--url', tgt.url('/file'), '--payload', `@${file}`, '--delay', '3600'], { env });
  assert.equal(a.code, EXIT.OK, a.stderr);
  assert.deepEqual(a.json.payload, { from: 'file', list: [1, 2, 3] });
  assert.ok(Date.parse(a.json.runAt) - Date.parse(a.json.createdAt) >= 3599e3);

  const b = await run(['task', 'create', '--url', tgt.url('/stdin'), '--payload', '@-', '--delay', '3600'],
    { env, input: '{"from": "stdin"}' });
  assert.equal(b.code, EXIT.OK, b.stderr);
  assert.deepEqual(b.json.payload, { from: 'stdin' });

  const text = 'line one\nline "two"\ttab \\ backslash é';
  const c = await run(['task', 'create', '--url', tgt.url('/body'), '--body', text], { env });
  assert.equal(c.code, EXIT.OK, c.stderr);
  assert.equal(c.json.body, text);
  await waitForStatus(d.url, c.json.id, 'completed', { headers: AUTH });
  const call = tgt.requests.find((q) => q.url === '/body');
  assert.equal(call.body, text);

  const at = new Date(Date.now() + 7200e3).toISOString();
  const e = await run(['task', 'create', '--url', tgt.url('/at'), '--run-at', at], { env });
  assert.equal(e.code, EXIT.OK, e.stderr);
  assert.equal(e.json.runAt, at);
});

test('task create-many FILE and - (stdin): a JSON array or the batch body, all stored in order; a bad item is the API\'s 400, exit 4, nothing stored', async () => {
  const items = [
    { callbackUrl: tgt.url('/many-a'), queue: 'cli-many', delay: 3600, payload: { n: 12345678901234567890 } },
    { callbackUrl: tgt.url('/many-b'), queue: 'cli-many', delay: 3600 },
  ];
  const file = join(tmp.dir, 'many.json');
  // Written by hand: JSON.stringify would round the big number itself.
  writeFileSync(file, `\n  ${JSON.stringify(items).replace('"n":12345678901234567000', '"n":12345678901234567890')}\n`);
  const a = await run(['task', 'create-many', file], { env });
  assert.equal(a.code, EXIT.OK, a.stderr);
  assert.equal(a.stderr, '');
  assert.deepEqual(a.json.tasks.map((t) => t.callbackUrl), items.map((i) => i.callbackUrl));
  assert.match(a.stdout, /"payload":\{"n":12345678901234567890\}/, 'the payload as written, not re-printed');
  for (const t of a.json.tasks) assert.equal((await statusOf(t.id)).status, 'queued');

  const b = await run(['task', 'create-many', '-'], { env, input: JSON.stringify({ tasks: [items[1]] }) });
  assert.equal(b.code, EXIT.OK, b.stderr);
  assert.equal(b.json.tasks.length, 1);

  const listed = async () => (await api(d.url, 'GET', '/v1/tasks?queue=cli-many&limit=200', undefined, AUTH)).body.tasks.length;
  assert.equal(await listed(), 3);
  const bad = await run(['task', 'create-many', '-'],
    { env, input: JSON.stringify([items[1], { queue: 'cli-many', delay: 3600 }]) });
  assert.equal(bad.code, EXIT.API, bad.stderr);
  assert.equal(bad.json.error.field, 'tasks[1].callbackUrl');
  assert.match(oneLine(bad), /tasks\[1\]\.callbackUrl/);
  assert.equal(await listed(), 3, 'nothing of the refused batch was stored');

  for (const [input, why] of [['"just a string"', /JSON array of tasks/], ['', /JSON array of tasks/]]) {
    const u = await run(['task', 'create-many', '-'], { env, input });
    assert.equal(u.code, EXIT.USAGE, u.stderr);
    assert.match(oneLine(u), why);
  }
  const missing = await run(['task', 'create-many', join(tmp.dir, 'no-such.json')], { env });
  assert.equal(missing.code, EXIT.USAGE);
  assert.match(oneLine(missing), /cannot open/);
  const opt = await run(['task', 'create-many', file, '--queue', 'x'], { env });
  assert.equal(opt.code, EXIT.USAGE);
  assert.equal(await listed(), 3);
});

test('task get prints the API answer for the task; attempts too', async () => {
  const c = await run(['task', 'create', '--url', tgt.url('/get'), '--wait', '10'], { env });
  assert.equal(c.code, EXIT.OK, c.stderr);
  const g = await run(['task', 'get', c.json.id], { env });
  assert.equal(g.code, EXIT.OK, g.stderr);
  const viaApi = await api(d.url, 'GET', `/v1/tasks/${c.json.id}`, undefined, AUTH);
  assert.deepEqual(g.json, viaApi.body);
  assert.equal(g.stdout, `${JSON.stringify(viaApi.body)}\n`, 'stdout is the answer as sent, plus a newline');
  const at = await run(['task', 'attempts', c.json.id], { env });
  assert.equal(at.code, EXIT.OK, at.stderr);
  assert.equal(at.json.taskId, c.json.id);
  assert.equal(at.json.attempts.length, 1);
});

test('task list: filters, one page with its cursor, and --all over every page', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await run(['task', 'create', '--url', tgt.url('/list'), '--queue', 'listing', '--delay', '3600'], { env });
    assert.equal(r.code, EXIT.OK, r.stderr);
    ids.push(r.json.id);
  }
  const page = await run(['task', 'list', '--queue', 'listing', '--limit', '2', '--status', 'queued'], { env });
  assert.equal(page.code, EXIT.OK, page.stderr);
  assert.deepEqual(page.json.tasks.map((t) => t.id), [ids[4], ids[3]]);
  assert.ok(page.json.nextCursor);
  const next = await run(['task', 'list', '--queue', 'listing', '--limit', '2', '--cursor', page.json.nextCursor], { env });
  assert.deepEqual(next.json.tasks.map((t) => t.id), [ids[2], ids[1]]);

  const all = await run(['task', 'list', '--queue', 'listing', '--limit', '2', '--all', '--order', 'asc'], { env });
  assert.equal(all.code, EXIT.OK, all.stderr);
  assert.deepEqual(all.json.tasks.map((t) => t.id), ids);
  assert.equal(all.json.nextCursor, null);
  const none = await run(['task', 'list', '--queue', 'listing', '--status', 'failed', '--all'], { env });
  assert.deepEqual(none.json, { tasks: [], nextCursor: null });
});

test('task cancel, then cancel again is an API error (409, exit 4)', async () => {
  const c = await run(['task', 'create', '--url', tgt.url('/cancel'), '--delay', '3600'], { env });
  const x = await run(['task', 'cancel', c.json.id], { env });
  assert.equal(x.code, EXIT.OK, x.stderr);
  assert.equal(x.json.status, 'cancelled');
  const again = await run(['task', 'cancel', c.json.id], { env });
  assert.equal(again.code, EXIT.API);
  assert.equal(again.json.error.code, 'task_finished', 'the error answer is on stdout too');
  assert.match(oneLine(again), /^asyncqueue: HTTP 409 task_finished: /);
});

test('task retry with overrides, and --wait on the replay', async () => {
  const c = await run(['task', 'create', '--url', tgt.url('/fail'), '--retries', '0', '--wait', '10'], { env });
  assert.equal(c.code, EXIT.TASK_FAILED, c.stderr);
  const plain = await run(['task', 'retry', c.json.id, '--wait', '10'], { env });
  assert.equal(plain.code, EXIT.TASK_FAILED, 'the same target fails again');
  assert.equal(plain.json.replays, 1);
  const fixed = await run(['task', 'retry', c.json.id, '--url', tgt.url('/fixed'), '--timeout', '5', '--wait', '10'], { env });
  assert.equal(fixed.code, EXIT.OK, fixed.stderr);
  assert.equal(fixed.json.status, 'completed');
  assert.equal(fixed.json.callbackUrl, tgt.url('/fixed'));
  assert.equal(fixed.json.replays, 2);
  const noWait = await run(['task', 'retry', c.json.id], { env });
  assert.equal(noWait.code, EXIT.OK, noWait.stderr);
  assert.equal(noWait.json.replays, 3);
  const busy = await run(['task', 'create', '--url', tgt.url('/x'), '--delay', '3600'], { env });
  const notFinished = await run(['task', 'retry', busy.json.id], { env });
  assert.equal(notFinished.code, EXIT.API);
  assert.match(oneLine(notFinished), /HTTP 409 task_not_finished/);
});

// ---- cancel-many, retry-many: POST /v1/tasks/cancel and /v1/tasks/retry ----

/** Creates a task with the CLI (args added to --url) and returns it. */
async function made(path, args) {
  const r = await run(['task', 'create', '--url', tgt.url(path), ...args], { env });
  assert.equal(r.code, EXIT.OK, r.stderr);
  return r.json;
}

async function statusOf(id) {
  return (await api(d.url, 'GET', `/v1/tasks/${id}`, undefined, AUTH)).body;
}

test('task cancel-many --queue cancels that queue\'s open tasks only, prints {"cancelled": N}, exits 0', async () => {
  const doomed = [];
  for (let i = 0; i < 3; i++) doomed.push(await made('/bulk', ['--queue', 'bulk-cancel', '--delay', '3600']));
  const done = await made('/bulk-done', ['--queue', 'bulk-cancel', '--wait', '10']);
  assert.equal(done.status, 'completed');
  const other = await made('/bulk', ['--queue', 'bulk-keep', '--delay', '3600']);
  const r = await run(['task', 'cancel-many', '--queue', 'bulk-cancel'], { env });
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.equal(r.stderr, '');
  assert.deepEqual(r.json, { cancelled: 3 });
  for (const t of doomed) assert.equal((await statusOf(t.id)).status, 'cancelled', t.id);
  assert.equal((await statusOf(done.id)).status, 'completed', 'a finished task of the queue is left alone');
  assert.equal((await statusOf(other.id)).status, 'queued', 'another queue\'s task is left alone');
  const again = await run(['task', 'cancel-many', '--queue', 'bulk-cancel'], { env });
  assert.equal(again.code, EXIT.OK, again.stderr);
  assert.deepEqual(again.json, { cancelled: 0 });
});

test('task cancel-many --created-after, --created-before and --status reach the daemon as filters', async () => {
  const early = [await made('/bulk', ['--queue', 'bulk-time', '--delay', '3600']),
    await made('/bulk', ['--queue', 'bulk-time', '--delay', '3600'])];
  const boundary = new Date(Date.parse(early[1].createdAt) + 1).toISOString();
  await waitFor(() => Date.now() > Date.parse(boundary), { what: 'the clock to pass the boundary' });
  const late = [await made('/bulk', ['--queue', 'bulk-time', '--delay', '3600']),
    await made('/bulk', ['--queue', 'bulk-time', '--delay', '3600'])];
  for (const t of late) assert.ok(t.createdAt >= boundary, `${t.createdAt} is after ${boundary}`);
  const after1 = await run(['task', 'cancel-many', '--queue', 'bulk-time', '--status', 'queued',
    '--created-after', boundary], { env });
  assert.equal(after1.code, EXIT.OK, after1.stderr);
  assert.deepEqual(after1.json, { cancelled: 2 });
  for (const t of late) assert.equal((await statusOf(t.id)).status, 'cancelled');
  for (const t of early) assert.equal((await statusOf(t.id)).status, 'queued');
  const before1 = await run(['task', 'cancel-many', '--queue', 'bulk-time', '--status', 'queued,running',
    '--created-before', boundary], { env });
  assert.equal(before1.code, EXIT.OK, before1.stderr);
  assert.deepEqual(before1.json, { cancelled: 2 });
  for (const t of early) assert.equal((await statusOf(t.id)).status, 'cancelled');
});

test('task cancel-many and retry-many POST the filters as the API\'s JSON body', async (t) => {
  const fake = await startFake((req) => ({ status: 200, body: req.url === '/v1/tasks/cancel' ? { cancelled: 0 } : { retried: 0 } }));
  t.after(() => fake.close());
  const server = ['--server', fake.url('/')];
  const after1 = '2026-01-01T00:00:00Z', before1 = '2026-02-01T00:00:00.5+01:00';
  const c = await run(['task', 'cancel-many', '--status', 'queued,,running', '--queue', 'a"b\\c',
    '--created-after', after1, '--created-before', before1, ...server], { env });
  assert.equal(c.code, EXIT.OK, c.stderr);
  assert.equal(c.stdout, '{"cancelled":0}\n', 'the answer as sent');
  const r = await run(['task', 'retry-many', '--queue', 'q', ...server], { env });
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.deepEqual(r.json, { retried: 0 });
  const s = await run(['task', 'retry-many', '--status', 'failed,cancelled', ...server], { env });
  assert.equal(s.code, EXIT.OK, s.stderr);
  assert.equal(fake.requests.length, 3);
  const [rc, rr, rs] = fake.requests;
  assert.equal(rc.method, 'POST');
  assert.equal(rc.url, '/v1/tasks/cancel');
  assert.equal(rc.headers['content-type'], 'application/json');
  assert.equal(rc.headers.authorization, AUTH.authorization);
  assert.deepEqual(JSON.parse(rc.body), { status: ['queued', 'running'], queue: 'a"b\\c', createdAfter: after1, createdBefore: before1 });
  assert.equal(rr.url, '/v1/tasks/retry');
  assert.deepEqual(JSON.parse(rr.body), { queue: 'q' }, 'no status: the daemon\'s default (failed) applies');
  assert.deepEqual(JSON.parse(rs.body), { status: ['failed', 'cancelled'] });
});

test('task cancel-many and retry-many with no filter: exit 2, a line that says how to take every task, nothing sent', async (t) => {
  const fake = await startFake([{ status: 200, body: { cancelled: 99 } }]);
  t.after(() => fake.close());
  const c = await run(['task', 'cancel-many', '--server', fake.url('/')], { env });
  assert.equal(c.code, EXIT.USAGE, c.stderr);
  assert.equal(c.stdout, '');
  assert.match(oneLine(c), /^asyncqueue: task cancel-many needs a filter .*--status queued,running/);
  const r = await run(['task', 'retry-many', '--server', fake.url('/')], { env });
  assert.equal(r.code, EXIT.USAGE, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(oneLine(r), /^asyncqueue: task retry-many needs a filter .*--status failed/);
  assert.equal(fake.requests.length, 0, 'nothing reached the server');
  // Against the daemon: a queued task stays queued.
  const q = await made('/bulk', ['--queue', 'bulk-nofilter', '--delay', '3600']);
  const real = await run(['task', 'cancel-many'], { env });
  assert.equal(real.code, EXIT.USAGE, real.stderr);
  assert.equal((await statusOf(q.id)).status, 'queued');
});

test('task retry-many --queue replays that queue\'s failed tasks, prints {"retried": N}, exits 0', async () => {
  const failed = [];
  for (let i = 0; i < 2; i++) failed.push(await made('/fail', ['--queue', 'bulk-retry', '--retries', '0']));
  const other = await made('/fail', ['--queue', 'bulk-retry-other', '--retries', '0']);
  const done = await made('/bulk-ok', ['--queue', 'bulk-retry', '--wait', '10']);
  assert.equal(done.status, 'completed');
  for (const f of [...failed, other]) await waitForStatus(d.url, f.id, 'failed', { headers: AUTH });
  const r = await run(['task', 'retry-many', '--queue', 'bulk-retry'], { env });
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.equal(r.stderr, '');
  assert.deepEqual(r.json, { retried: 2 });
  for (const f of failed) assert.equal((await statusOf(f.id)).replays, 1, f.id);
  const o = await statusOf(other.id);
  assert.deepEqual([o.status, o.replays], ['failed', 0], 'another queue\'s failed task is left alone');
  const c = await statusOf(done.id);
  assert.deepEqual([c.status, c.replays], ['completed', 0], 'only failed tasks by default');
  // The replays fail again (the same target); then --status picks others.
  for (const f of failed) await waitForTask(d.url, f.id, (x) => x.status === 'failed' && x.replays === 1, { headers: AUTH });
  const completed = await run(['task', 'retry-many', '--queue', 'bulk-retry', '--status', 'completed'], { env });
  assert.equal(completed.code, EXIT.OK, completed.stderr);
  assert.deepEqual(completed.json, { retried: 1 });
  await waitForTask(d.url, done.id, (x) => x.status === 'completed' && x.replays === 1, { headers: AUTH });
  for (const f of failed) assert.equal((await statusOf(f.id)).replays, 1, 'failed tasks were not picked');
});

test('task cancel-many and retry-many: a status the API refuses is its 400, exit 4', async () => {
  const cases = [
    [['task', 'cancel-many', '--queue', 'bulk-bad', '--status', 'bogus'], /^asyncqueue: HTTP 400 invalid_field \(status\): status must be queued, running/],
    [['task', 'cancel-many', '--status', 'failed'], /^asyncqueue: HTTP 400 invalid_field \(status\): only queued and running tasks can be cancelled/],
    [['task', 'retry-many', '--status', 'queued'], /^asyncqueue: HTTP 400 invalid_field \(status\): only completed, failed and cancelled/],
    // An empty list is no status at all, not every status.
    [['task', 'cancel-many', '--status', ''], /^asyncqueue: HTTP 400 invalid_field \(status\): status must name at least one status/],
    [['task', 'cancel-many', '--queue', 'bad name!'], /^asyncqueue: HTTP 400 invalid_field \(queue\)/],
    [['task', 'retry-many', '--created-after', 'yesterday'], /^asyncqueue: HTTP 400 invalid_field \(createdAfter\)/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args, { env });
    assert.equal(r.code, EXIT.API, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.json.error.code, 'invalid_field', 'the error answer is on stdout');
    assert.match(oneLine(r), re, args.join(' '));
  }
});

test('task cancel-many and retry-many refuse options that are not filters: exit 2, nothing sent', async (t) => {
  const fake = await startFake([{ status: 200, body: { cancelled: 99 } }]);
  t.after(() => fake.close());
  const cases = [
    [['cancel-many', '--queue', 'q', '--limit', '5'], /--limit is not an option of 'task cancel-many'/],
    [['cancel-many', '--queue', 'q', '--cursor', 'd1'], /--cursor is not an option of 'task cancel-many'/],
    [['cancel-many', '--queue', 'q', '--order', 'asc'], /--order is not an option of 'task cancel-many'/],
    [['cancel-many', '--queue', 'q', '--all'], /--all is not an option of 'task cancel-many'/],
    [['cancel-many', '--queue', 'q', '--wait'], /--wait is not an option of 'task cancel-many'/],
    [['retry-many', '--queue', 'q', '--url', 'http://x.example'], /--url is not an option of 'task retry-many'/],
    [['retry-many', '--queue', 'q', '--retries', '3'], /--retries is not an option of 'task retry-many'/],
    [['retry-many', '--queue', 'q', '--idempotency-key', 'k'], /--idempotency-key is not an option of 'task retry-many'/],
    [['retry-many', '--queue', 'q', '--limit', '5'], /--limit is not an option of 'task retry-many'/],
    [['cancel-many', 'some-id', '--queue', 'q'], /unexpected argument 'some-id'/],
    [['cancel-many', '--queue', 'q', '--queue', 'r'], /--queue is given twice/],
  ];
  for (const [args, re] of cases) {
    const r = await run(['task', ...args, '--server', fake.url('/')], { env });
    assert.equal(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(oneLine(r), re, args.join(' '));
  }
  assert.equal(fake.requests.length, 0, 'nothing reached the server');
});

test('--wait: 0 when the task completes, 1 when it fails or is cancelled, 3 when time runs out', async () => {
  const ok = await run(['task', 'create', '--url', tgt.url('/slow'), '--wait'], { env });
  assert.equal(ok.code, EXIT.OK, ok.stderr);
  assert.equal(ok.json.status, 'completed');
  assert.deepEqual(ok.json.result, { slow: true });
  assert.ok(Array.isArray(ok.json.attemptHistory), 'prints the full task, as GET does');

  const failed = await run(['task', 'create', '--url', tgt.url('/fail'), '--retries', '1', '--wait', '10'], { env });
  assert.equal(failed.code, EXIT.TASK_FAILED);
  assert.equal(failed.json.status, 'failed');
  assert.match(oneLine(failed), /^asyncqueue: task [0-9a-f-]{36} ended failed \(http_error: /);

  const started = Date.now();
  const late = await run(['task', 'create', '--url', tgt.url('/late'), '--delay', '3600', '--wait', '0.5'], { env });
  assert.equal(late.code, EXIT.WAIT_TIMEOUT);
  assert.equal(late.json.status, 'queued');
  assert.match(oneLine(late), /is still queued after waiting 0\.5 s/);
  assert.ok(Date.now() - started >= 500, 'it waited');

  const get = await run(['task', 'get', late.json.id, '--wait=0.3'], { env });
  assert.equal(get.code, EXIT.WAIT_TIMEOUT);
  const hang = await run(['task', 'create', '--url', tgt.url('/hang')], { env });
  await waitForStatus(d.url, hang.json.id, 'running', { headers: AUTH });
  const waiting = run(['task', 'get', '--wait', '20', hang.json.id], { env });
  await run(['task', 'cancel', hang.json.id], { env });
  const cancelled = await waiting;
  assert.equal(cancelled.code, EXIT.TASK_FAILED);
  assert.equal(cancelled.json.status, 'cancelled');
  assert.match(oneLine(cancelled), /ended cancelled/);
});

test('--wait against a daemon whose max_wait is below the CLI\'s long-poll: it asks for less', async (t) => {
  const short = await startDaemon({ args: ['--max-wait', '1s'] });
  t.after(async () => { await short.stop(); short.cleanup(); });
  const r = await run(['task', 'create', '--url', tgt.url('/slow'), '--wait', '--server', short.url]);
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.equal(r.json.status, 'completed');
  const late = await run(['task', 'create', '--url', tgt.url('/x'), '--delay', '60', '--wait', '1.5', '--server', short.url]);
  assert.equal(late.code, EXIT.WAIT_TIMEOUT, late.stderr);
  // A daemon that takes no wait at all (max_wait 0): plain polls.
  const none = await startDaemon({ args: ['--max-wait', '0'] });
  t.after(async () => { await none.stop(); none.cleanup(); });
  const polled = await run(['task', 'create', '--url', tgt.url('/slow'), '--wait', '10', '--server', none.url]);
  assert.equal(polled.code, EXIT.OK, polled.stderr);
  assert.equal(polled.json.status, 'completed');
  // --wait longer than an int64 of milliseconds holds: "at most", not "at once".
  const huge = await run(['task', 'create', '--url', tgt.url('/slow'), '--wait', '1e17', '--server', short.url]);
  assert.equal(huge.code, EXIT.OK, huge.stderr);
  assert.equal(huge.json.status, 'completed');
});

test('a wait that fails after the create names the task it created', async (t) => {
  // Answers the create like the API, then anything else with a 503.
  const half = await startFake((req) => (req.method === 'POST'
    ? { status: 202, body: { id: '01a221b7-4f1f-707d-9c40-a269a508bd38', status: 'queued' } }
    : { status: 503, body: { error: { code: 'unavailable', message: 'gone' } } }));
  t.after(() => half.close());
  const r = await run(['task', 'create', '--url', tgt.url('/x'), '--wait', '5', '--server', half.url('/')], { env });
  assert.equal(r.code, EXIT.SERVER);
  assert.match(r.stderr, /task 01a221b7-4f1f-707d-9c40-a269a508bd38 was created; the wait for it failed/);
});

test('API errors exit 4 with the error on stdout and one line on stderr', async () => {
  const bad = await run(['task', 'create', '--url', 'ftp://files.example/x'], { env });
  assert.equal(bad.code, EXIT.API);
  assert.equal(bad.json.error.code, 'invalid_field');
  assert.equal(bad.json.error.field, 'callbackUrl');
  assert.match(oneLine(bad), /^asyncqueue: HTTP 400 invalid_field \(callbackUrl\): callbackUrl must/);

  const missing = await run(['task', 'get', '01a221b7-4f1f-707d-9c40-a269a508bd38'], { env });
  assert.equal(missing.code, EXIT.API);
  assert.match(oneLine(missing), /HTTP 404 not_found/);
  const wait404 = await run(['task', 'get', 'no-such-task', '--wait', '1'], { env });
  assert.equal(wait404.code, EXIT.API);

  const idem1 = await run(['task', 'create', '--url', tgt.url('/i'), '--delay', '60', '--idempotency-key', 'cli-k'], { env });
  const idem2 = await run(['task', 'create', '--url', tgt.url('/i'), '--delay', '60', '--idempotency-key', 'cli-k'], { env });
  assert.equal(idem2.code, EXIT.OK);
  assert.equal(idem2.json.id, idem1.json.id, 'the same key gives the first task');
  const reused = await run(['task', 'create', '--url', tgt.url('/other'), '--idempotency-key', 'cli-k'], { env });
  assert.equal(reused.code, EXIT.API);
  assert.match(oneLine(reused), /HTTP 422 idempotency_key_reused/);
});

test('no server, or a server that fails: exit 5', async () => {
  const port = await deadPort();
  const refused = await run(['task', 'get', 'x', '--server', `http://127.0.0.1:${port}`], { env });
  assert.equal(refused.code, EXIT.SERVER);
  assert.equal(refused.stdout, '');
  assert.match(oneLine(refused), new RegExp(`^asyncqueue: no answer from http://127\\.0\\.0\\.1:${port}: `));

  const broken = await startFake((req) => (req.url.startsWith('/v1/tasks/json')
    ? { status: 503, headers: { 'retry-after': '7' }, body: { error: { code: 'unavailable', message: 'disk full' } } }
    : req.url.startsWith('/v1/tasks/page404')
      ? { status: 404, body: '<html>Not Found</html>', headers: { 'content-type': 'text/html' } }
      : { status: 502, body: '<html>Bad Gateway\n</html>', headers: { 'content-type': 'text/html' } }));
  try {
    const s503 = await run(['task', 'get', 'json', '--server', broken.url('/')], { env });
    assert.equal(s503.code, EXIT.SERVER);
    assert.match(oneLine(s503), /HTTP 503 unavailable: disk full \(retry after 7 s\)/);
    const s502 = await run(['task', 'get', 'html', '--server', broken.url('/')], { env });
    assert.equal(s502.code, EXIT.SERVER);
    assert.match(oneLine(s502), /HTTP 502 from .* not an AsyncQueue API error: <html>Bad Gateway <\/html>/);
    const wait502 = await run(['task', 'create', '--url', tgt.url('/x'), '--wait', '--server', broken.url('/')], { env });
    assert.equal(wait502.code, EXIT.SERVER);
    // A 4xx the API did not write (another server there) is 5 too, not 4.
    const s404 = await run(['task', 'get', 'page404', '--server', broken.url('/')], { env });
    assert.equal(s404.code, EXIT.SERVER, s404.stderr);
    assert.match(oneLine(s404), /HTTP 404 from .* not an AsyncQueue API error/);
  } finally {
    await broken.close();
  }
});

test('answers that are not the API\'s: a 2xx page exits 5; --all stops on a repeated cursor and on a page 4xx', async () => {
  let pages = 0;
  const odd = await startFake((req) => {
    if (req.url.startsWith('/v1/tasks/html')) return { status: 200, body: '<html>hello</html>', headers: { 'content-type': 'text/html' } };
    if (req.url.startsWith('/v1/tasks?')) {
      pages++;
      if (req.url.includes('cursor=d9') && req.url.includes('page404')) return { status: 404, body: '<html>gone</html>' };
      return { status: 200, body: { tasks: [{ id: `t${pages}` }], nextCursor: 'd9' } }; // never moves on
    }
    return { status: 500, body: '' };
  });
  try {
    const html = await run(['task', 'get', 'html', '--server', odd.url('/')], { env });
    assert.equal(html.code, EXIT.SERVER, html.stderr); // was 0
    assert.match(oneLine(html), /HTTP 200 from .* is not an AsyncQueue API answer/);
    const loop = await run(['task', 'list', '--all', '--server', odd.url('/')], { env, timeout: 10000 });
    assert.equal(loop.code, EXIT.SERVER, loop.stderr); // looped for ever
    assert.match(loop.stderr, /the same nextCursor twice/);
    assert.ok(pages <= 3, `${pages} pages asked for`);
    const gone = await run(['task', 'list', '--all', '--queue', 'page404', '--server', odd.url('/')], { env, timeout: 10000 });
    assert.equal(gone.code, EXIT.SERVER, gone.stderr); // was 4: an HTML 404 after page 1
  } finally {
    await odd.close();
  }
});

test('--wait rides through a daemon restart: 503 shutting_down, then no answer, then the task', async () => {
  let n = 0;
  const task = { id: 'r1', status: 'completed', result: { ok: true } };
  const restarting = await startFake((req) => {
    n++;
    if (n === 1) return { status: 200, body: { ...task, status: 'running' }, delayMs: 50 };
    if (n === 2) return { status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'shutting_down', message: 'stopping' } } };
    if (n === 3) return { destroy: true };
    return { status: 200, body: task };
  });
  try {
    const r = await run(['task', 'get', 'r1', '--wait', '30', '--server', restarting.url('/')], { env, timeout: 20000 });
    assert.equal(r.code, EXIT.OK, r.stderr); // was 5 at the 503
    assert.equal(r.json.status, 'completed');
    assert.ok(n >= 4);
  } finally {
    await restarting.close();
  }
});

test('--wait rides through a restart behind nginx: its JSON 502 bad_gateway once the task was seen is "no answer"', async () => {
  let n = 0;
  const task = { id: 'p1', status: 'completed', result: { ok: true } };
  const badGateway = { error: { code: 'bad_gateway', message: 'the queue daemon did not answer (restarting?)' } };
  const proxied = await startFake((req) => {
    n++;
    if (req.url.startsWith('/v1/tasks/never')) return { status: 502, headers: { 'retry-after': '1' }, body: badGateway };
    if (n === 1) return { status: 200, body: { ...task, status: 'running' }, delayMs: 50 };
    if (n === 2) return { status: 502, headers: { 'retry-after': '1' }, body: badGateway };
    if (n === 3) return { status: 504, body: badGateway };
    return { status: 200, body: task };
  });
  try {
    const r = await run(['task', 'get', 'p1', '--wait', '30', '--server', proxied.url('/')], { env, timeout: 20000 });
    assert.equal(r.code, EXIT.OK, r.stderr); // was 5 at the proxy's 502
    assert.equal(r.json.status, 'completed');
    assert.ok(n >= 4);
    // A 502 before the task was ever seen is not a restart: it says so at once.
    const never = await run(['task', 'get', 'never', '--wait', '30', '--server', proxied.url('/')], { env, timeout: 20000 });
    assert.equal(never.code, EXIT.SERVER, never.stderr);
  } finally {
    await proxied.close();
  }
});

test('a closed output pipe ends the client with exit 5, not a signal', async () => {
  const code = await new Promise((res, rej) => {
    const clean = { ...process.env };
    for (const k of Object.keys(clean)) if (k.startsWith('ASYNCQUEUE_')) delete clean[k];
    const p = spawn(BIN, ['task', 'list', '--all'], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.destroy(); // the reader went away before a byte was read
    const t = setTimeout(() => { p.kill('SIGKILL'); rej(new Error('timed out')); }, 20000);
    p.on('exit', (c, sig) => { clearTimeout(t); res(sig ?? c); });
  });
  assert.equal(code, EXIT.SERVER); // was SIGPIPE
});

test('task list --all prints each task as the daemon wrote it: numbers are not rewritten', async () => {
  const made = await run(['task', 'create', '--url', tgt.url('/big'), '--delay', '3600', '--queue', 'exact',
    '--payload', '{"big":9007199254740993,"price":1.50,"tiny":1e-7}'], { env });
  assert.equal(made.code, EXIT.OK, made.stderr);
  const all = await run(['task', 'list', '--all', '--queue', 'exact'], { env });
  assert.equal(all.code, EXIT.OK, all.stderr);
  // Reprinted through cJSON these were 9.00719925474099e+15 and 1.5.
  assert.match(all.stdout, /"payload":\{"big":9007199254740993,"price":1.50,"tiny":1e-7\}/);
  assert.equal(JSON.parse(all.stdout).tasks.length, 1);
});

test('usage errors exit 2 with one line on stderr, and send nothing', async () => {
  const before = (await api(d.url, 'GET', '/v1/tasks?limit=200', undefined, AUTH)).body.tasks.length;
  const missingFile = join(tmp.dir, 'missing.json');
  const cases = [
    [['task', 'frobnicate'], /unknown command 'task frobnicate'/],
    [['task', 'create'], /task create needs --url URL/],
    [['task', 'create', '--url', 'http://x.example', '--payload', '{"a":'], /--payload is not valid JSON/],
    [['task', 'create', '--url', 'http://x.example', '--payload', '{"a":1} extra'], /--payload has more after the JSON value/],
    [['task', 'create', '--url', 'http://x.example', '--payload', `@${missingFile}`], /cannot open .*missing\.json/],
    [['task', 'create', '--url', 'http://x.example', '--metadata', 'nope'], /--metadata is not valid JSON/],
    // Deeper than the daemon takes: said as such, at 32 as at 2000 (where
    // cJSON's own limit called it "not valid JSON").
    [['task', 'create', '--url', 'http://x.example', '--payload', `${'['.repeat(32)}${']'.repeat(32)}`], /--payload nests 32 levels deep; inside a task the daemon takes 31/],
    [['task', 'create', '--url', 'http://x.example', '--payload', `${'['.repeat(2000)}${']'.repeat(2000)}`], /--payload nests 2000 levels deep/],
    [['task', 'create', '--url', 'http://x.example', '--payload', '1', '--body', 'b'], /cannot both be given/],
    [['task', 'create', '--url', 'http://x.example', '--retries', 'three'], /--retries must be a number/],
    [['task', 'create', '--url', 'http://x.example', '--timeout', '0x10'], /--timeout must be a number/],
    [['task', 'create', '--url', 'http://x.example', '--header', 'NoColon'], /must look like 'Name: value'/],
    [['task', 'create', '--url', 'http://x.example', '--header', 'A: 1', '--header', 'a: 2'], /given twice/],
    [['task', 'create', '--url', 'http://a.example', '--url', 'http://b.example'], /--url is given twice/],
    [['task', 'create', '--url'], /--url needs a value/],
    [['task', 'create', '--url', 'http://x.example', '--wait=soon'], /--wait takes a number of seconds/],
    [['task', 'get'], /'task get' needs ID/],
    [['task', 'get', 'a', 'b'], /unexpected argument 'b'/],
    // A page size the API would refuse (it was exit 4, the API's 400).
    [['task', 'list', '--limit', 'x'], /--limit must be a whole number of items a page/],
    [['queue', 'list', '--limit', '0'], /--limit must be a whole number of items a page/],
    [['schedule', 'list', '--limit', '1.5'], /--limit must be a whole number of items a page/],
    [['task', 'get', 'a', '--status', 'queued'], /--status is not an option of 'task get'/],
    [['task', 'list', '--bogus'], /unknown option '--bogus'/],
    [['task', 'list', '--all=yes'], /--all takes no value/],
    [['task', 'list', '--server', 'ftp://x'], /must start with http:\/\/ or https:\/\//],
    [['task', 'list', '--server', ''], /--server needs a URL/],
    [['task', 'list', '--server', 'http://'], /not a URL with a host and a valid port/],
    [['task', 'list', '--server', 'http://127.0.0.1:99999'], /not a URL with a host and a valid port/],
    [['task', 'get', '-x'], /unknown option '-x'/],
    [['task', 'create', '--url', 'http://x.example', '-x'], /unknown option '-x'/],
    [['queue', 'pause'], /'queue pause' needs NAME/],
    [['queue', 'set', 'q', '--rate', 'fast'], /--rate must be a number/],
    // "." went out as POST /v1/tasks/retry: every failed task of the queue replayed.
    [['task', 'retry', '.', '--queue', 'q'], /ID must not be '\.'/],
    [['task', 'cancel', '..'], /ID must not be '\.\.'/],
    [['queue', 'pause', '.'], /NAME must not be '\.'/],
    // A line break would have sent an extra header.
    [['task', 'create', '--url', 'http://x.example', '--idempotency-key', 'abc\r\nX-Injected: 1'], /--idempotency-key must not hold control characters/],
    [['task', 'list', '--api-key', 'k\nX-Injected: 1'], /the API key \(--api-key\) must not hold control characters/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args, { env });
    assert.equal(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(oneLine(r), re, args.join(' '));
  }
  const fromEnv = await run(['task', 'list'], { env: { ASYNCQUEUE_URL: 'localhost:1' } });
  assert.equal(fromEnv.code, EXIT.USAGE);
  assert.match(oneLine(fromEnv), /server URL \(ASYNCQUEUE_URL\) must start with http/);
  const digest = `sha256:${'ab'.repeat(32)}`;
  const onlyDigests = await run(['task', 'list'], { env: { ...env, ASYNCQUEUE_API_KEY: digest } });
  assert.equal(onlyDigests.code, EXIT.USAGE);
  assert.match(oneLine(onlyDigests), /ASYNCQUEUE_API_KEY\) lists only sha256: digests/);
  const bare = await run(['task'], { env });
  assert.equal(bare.code, EXIT.USAGE);
  assert.match(bare.stderr, /^Usage: asyncqueue task/);
  const after = (await api(d.url, 'GET', '/v1/tasks?limit=200', undefined, AUTH)).body.tasks.length;
  assert.equal(after, before, 'no usage error created a task');
});

test('--help documents the commands and every exit code', async () => {
  for (const noun of ['task', 'queue']) {
    const r = await run([noun, '--help']);
    assert.equal(r.code, EXIT.OK);
    assert.equal(r.stderr, '');
    for (const code of Object.values(EXIT)) assert.match(r.stdout, new RegExp(`^  ${code}  `, 'm'), `${noun} --help: exit ${code}`);
    assert.match(r.stdout, /ASYNCQUEUE_URL/);
    assert.match(r.stdout, /ASYNCQUEUE_API_KEY/);
  }
  const taskHelp = (await run(['task', '--help'])).stdout;
  for (const cmd of ['create', 'get', 'list', 'cancel', 'cancel-many', 'retry', 'retry-many', 'attempts']) {
    assert.match(taskHelp, new RegExp(`^  ${cmd} `, 'm'), `task --help: ${cmd}`);
  }
  // Output that cannot be written is an error, not a silent exit 0.
  const full = spawnSync('sh', ['-c', 'exec "$0" task --help >/dev/full', BIN], { encoding: 'utf8' });
  assert.equal(full.status, EXIT.SERVER);
  assert.match(full.stderr, /cannot write to standard output/);
  const sub = await run(['task', 'create', '-h']);
  assert.equal(sub.code, EXIT.OK);
  assert.match(sub.stdout, /--idempotency-key/);
});

test('server and key: flags beat the environment; the default server; a key list', async () => {
  const noKey = await run(['task', 'list', '--limit', '1'], { env: { ASYNCQUEUE_URL: d.url } });
  assert.equal(noKey.code, EXIT.API);
  assert.match(oneLine(noKey), /HTTP 401 unauthorized/);
  const wrongEnvKey = { ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: 'wrong' };
  assert.equal((await run(['task', 'list', '--limit', '1'], { env: wrongEnvKey })).code, EXIT.API);
  const flagKey = await run(['task', 'list', '--limit', '1', '--api-key', KEY], { env: wrongEnvKey });
  assert.equal(flagKey.code, EXIT.OK, flagKey.stderr);
  const list = await run(['task', 'list', '--limit', '1'], { env: { ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: ` ${KEY} , other-key` } });
  assert.equal(list.code, EXIT.OK, `the first key of a list: ${list.stderr}`);
  // The daemon's own list may start with digests of keys: the client skips them.
  const mixed = await run(['task', 'list', '--limit', '1'],
    { env: { ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: `sha256:${'cd'.repeat(32)}, ${KEY}` } });
  assert.equal(mixed.code, EXIT.OK, `the first key that is not a digest: ${mixed.stderr}`);

  const port = await deadPort();
  const badEnvUrl = { ASYNCQUEUE_URL: `http://127.0.0.1:${port}`, ASYNCQUEUE_API_KEY: KEY };
  assert.equal((await run(['task', 'list', '--limit', '1'], { env: badEnvUrl })).code, EXIT.SERVER);
  const flagUrl = await run(['task', 'list', '--limit', '1', '--server', `${d.url}/`], { env: badEnvUrl });
  assert.equal(flagUrl.code, EXIT.OK, `--server beats ASYNCQUEUE_URL (a trailing / is fine): ${flagUrl.stderr}`);

  // No URL at all: the default, http://127.0.0.1:8080. Whatever answers
  // there (nothing, normally), the CLI must have tried that address.
  const dflt = await run(['task', 'get', 'x', '--api-key', KEY]);
  assert.ok([EXIT.SERVER, EXIT.API].includes(dflt.code));
  if (dflt.code === EXIT.SERVER) assert.match(dflt.stderr, /no answer from http:\/\/127\.0\.0\.1:8080: /);
});

test('queue list, get, set, pause, resume, delete', async () => {
  const set = await run(['queue', 'set', 'cliq', '--max-concurrency', '3', '--rate', '2.5', '--burst', '4',
    '--default-retries', '1', '--default-timeout', '9'], { env });
  assert.equal(set.code, EXIT.OK, set.stderr);
  assert.deepEqual([set.json.maxConcurrency, set.json.ratePerSecond, set.json.burst, set.json.defaultRetries,
    set.json.defaultTimeout, set.json.paused], [3, 2.5, 4, 1, 9, false]);
  const paused = await run(['queue', 'pause', 'cliq'], { env });
  assert.equal(paused.json.paused, true);
  assert.equal(paused.json.maxConcurrency, 3, 'pause keeps the other settings');
  const resumed = await run(['queue', 'resume', 'cliq'], { env });
  assert.equal(resumed.json.paused, false);
  const get = await run(['queue', 'get', 'cliq'], { env });
  assert.equal(get.json.name, 'cliq');
  const list = await run(['queue', 'list'], { env });
  assert.ok(list.json.queues.some((q) => q.name === 'cliq'));
  const setPaused = await run(['queue', 'set', 'cliq', '--paused'], { env });
  assert.equal(setPaused.json.paused, true);
  assert.equal(setPaused.json.maxConcurrency, 0, 'set replaces every setting, as PUT does');
  const del = await run(['queue', 'delete', 'cliq'], { env });
  assert.equal(del.code, EXIT.OK, del.stderr);
  assert.equal(del.stdout, '', '204: nothing to print');
  const again = await run(['queue', 'delete', 'cliq'], { env });
  assert.equal(again.code, EXIT.API);
  const bad = await run(['queue', 'get', 'bad name!'], { env });
  assert.equal(bad.code, EXIT.API);
  assert.match(oneLine(bad), /HTTP 400 invalid_field \(name\)/);
});

test('queue list: every queue over the pages; --limit and --cursor one page; --all with them', async () => {
  // '-' sorts before digits and letters: these are the first queues by name.
  const names = ['-clipg-a', '-clipg-b', '-clipg-c'];
  for (const n of names) assert.equal((await run(['queue', 'set', '--', n], { env })).code, EXIT.OK);
  const viaApi = await api(d.url, 'GET', '/v1/queues', undefined, AUTH);
  const all = await run(['queue', 'list'], { env });
  assert.equal(all.code, EXIT.OK, all.stderr);
  assert.deepEqual(all.json, viaApi.body, 'under 1000 queues: the one page the API answers');
  assert.deepEqual(all.json.queues.slice(0, 3).map((q) => q.name), names);
  assert.equal(all.json.nextCursor, null);

  const page = await run(['queue', 'list', '--limit', '2'], { env });
  assert.equal(page.code, EXIT.OK, page.stderr);
  assert.deepEqual(page.json.queues.map((q) => q.name), names.slice(0, 2));
  assert.equal(typeof page.json.nextCursor, 'string');
  const next = await run(['queue', 'list', '--limit', '2', '--cursor', page.json.nextCursor], { env });
  assert.deepEqual(next.json.queues.map((q) => q.name), [names[2], all.json.queues[3].name]);
  const rest = await run(['queue', 'list', '--cursor', page.json.nextCursor], { env });
  assert.deepEqual(rest.json, { queues: all.json.queues.slice(2), nextCursor: null });
  const byTwo = await run(['queue', 'list', '--limit', '2', '--all'], { env });
  assert.equal(byTwo.code, EXIT.OK, byTwo.stderr);
  assert.deepEqual(byTwo.json, all.json, 'the same list, two queues a request');

  const bad = await run(['queue', 'list', '--limit', '1001'], { env });
  assert.equal(bad.code, EXIT.API);
  assert.match(oneLine(bad), /HTTP 400 invalid_field \(limit\): limit must be a whole number from 1 to 1000/);
  const badCursor = await run(['queue', 'list', '--cursor', 'nope!'], { env });
  assert.equal(badCursor.code, EXIT.API);
  assert.match(oneLine(badCursor), /invalid_field \(cursor\)/);
});

test('queue list follows nextCursor into one list, and stops on a repeated cursor', async () => {
  const pages = { '': { queues: [{ name: 'a' }, { name: 'b' }], nextCursor: 'Yg' }, Yg: { queues: [{ name: 'c' }], nextCursor: null } };
  const seen = [];
  const paged = await startFake((req) => {
    const u = new URL(req.url, 'http://x');
    seen.push(u.search);
    if (u.pathname !== '/v1/queues') return { status: 404, body: { error: { code: 'not_found', message: 'no' } } };
    return { status: 200, body: pages[u.searchParams.get('cursor') ?? ''] };
  });
  try {
    const r = await run(['queue', 'list', '--server', paged.url('/')], { env });
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.deepEqual(r.json, { queues: [{ name: 'a' }, { name: 'b' }, { name: 'c' }], nextCursor: null });
    assert.deepEqual(seen, ['', '?cursor=Yg']);
    const from = await run(['queue', 'list', '--limit', '1', '--cursor', 'Yg', '--all', '--server', paged.url('/')], { env });
    assert.equal(from.code, EXIT.OK, from.stderr);
    assert.deepEqual(from.json, { queues: [{ name: 'c' }], nextCursor: null });
    assert.equal(seen.at(-1), '?limit=1&cursor=Yg');
    const odd = await startFake(() => ({ status: 200, body: { queues: [{ name: 'x' }], nextCursor: 'eA' } }));
    try {
      const looped = await run(['queue', 'list', '--server', odd.url('/')], { env, timeout: 10000 });
      assert.equal(looped.code, EXIT.SERVER, looped.stderr);
      assert.match(looped.stderr, /the same nextCursor twice/);
      const notList = await run(['queue', 'list', '--server', tgt.url('/')], { env, timeout: 10000 });
      assert.equal(notList.code, EXIT.SERVER, notList.stderr);
      assert.match(oneLine(notList), /is not a queue list/);
    } finally {
      await odd.close();
    }
  } finally {
    await paged.close();
  }
});

// ---- schedule ----

// Once a year, at a time no test run reaches: only 'schedule run' makes tasks here.
const YEARLY = '0 0 1 1 *';

test('schedule put sends the schedule as the API takes it: the template from flags, or from --task FILE or - as written', async (t) => {
  const fake = await startFake((req) => ({ status: 200, body: { name: 'x', via: req.url } }));
  t.after(() => fake.close());
  const server = ['--server', fake.url('/')];
  const flags = await run(['schedule', 'put', 'night.ly_1-a', '--cron', '0 3 * * *', '--url', 'https://x.example/r',
    '--method', 'put', '--header', 'X-A: 1', '--payload', '{"n":12345678901234567890}', '--webhook', 'https://h.example/w',
    '--retries', '2', '--timeout', '30', '--delay', '5', '--queue', 'reports', '--metadata', '{"m":1}', ...server], { env });
  assert.equal(flags.code, EXIT.OK, flags.stderr);
  assert.deepEqual(flags.json, { name: 'x', via: '/v1/schedules/night.ly_1-a' });
  const file = join(tmp.dir, 'template.json');
  writeFileSync(file, '\n  {"callbackUrl": "https://x.example/f",\n   "payload": {"big": 12345678901234567890, "f": 1.50}}\n\n');
  const fromFile = await run(['schedule', 'put', 'from-file', '--cron', '@daily', '--timezone', 'Europe/Berlin', '--task', file, '--paused', ...server], { env });
  assert.equal(fromFile.code, EXIT.OK, fromFile.stderr);
  const fromStdin = await run(['schedule', 'put', 'from-stdin', '--cron', '*/5 * * * *', '--task', '-', ...server],
    { env, input: '{"callbackUrl":"https://x.example/s"}' });
  assert.equal(fromStdin.code, EXIT.OK, fromStdin.stderr);
  const odd = await run(['schedule', 'get', 'a b/c', ...server], { env });
  assert.equal(odd.code, EXIT.OK, odd.stderr);

  const [a, b, c, g] = fake.requests;
  assert.equal(a.method, 'PUT');
  assert.equal(a.url, '/v1/schedules/night.ly_1-a');
  assert.equal(a.headers['content-type'], 'application/json');
  assert.equal(a.headers.authorization, AUTH.authorization);
  assert.equal(a.body, '{"cron":"0 3 * * *","task":{"callbackUrl":"https://x.example/r","method":"put",' +
    '"headers":{"X-A":"1"},"payload":{"n":12345678901234567890},"webhookUrl":"https://h.example/w","retries":2,' +
    '"timeout":30,"delay":5,"queue":"reports","metadata":{"m":1}}}', 'no paused: the default (false)');
  assert.equal(b.url, '/v1/schedules/from-file');
  assert.equal(b.body, '{"cron":"@daily","timezone":"Europe/Berlin","task":{"callbackUrl": "https://x.example/f",\n   "payload": {"big": 12345678901234567890, "f": 1.50}},"paused":true}',
    'the file as written');
  assert.equal(c.body, '{"cron":"*/5 * * * *","task":{"callbackUrl":"https://x.example/s"}}');
  assert.equal(g.method, 'GET');
  assert.equal(g.url, '/v1/schedules/a%20b%2Fc', 'the name is escaped');
});

test('schedule put, get, list, pause, resume, run, delete against the daemon', async () => {
  const put = await run(['schedule', 'put', 'cli-sched', '--cron', YEARLY, '--url', tgt.url('/sched'),
    '--payload', '{"from":"schedule"}', '--queue', 'cli-sched'], { env });
  assert.equal(put.code, EXIT.OK, put.stderr);
  assert.equal(put.stderr, '');
  assert.equal(put.json.name, 'cli-sched');
  assert.equal(put.json.cron, YEARLY);
  assert.deepEqual(put.json.task, { callbackUrl: tgt.url('/sched'), payload: { from: 'schedule' }, queue: 'cli-sched' });
  assert.equal(put.json.paused, false);
  assert.equal(put.json.runs, 0);
  assert.equal(typeof put.json.nextRunAt, 'string');

  const get = await run(['schedule', 'get', 'cli-sched'], { env });
  assert.equal(get.code, EXIT.OK, get.stderr);
  assert.deepEqual(get.json, put.json);
  const list = await run(['schedule', 'list'], { env });
  assert.equal(list.code, EXIT.OK, list.stderr);
  assert.deepEqual(list.json.schedules.find((x) => x.name === 'cli-sched'), put.json);
  assert.equal(list.json.nextCursor, null);

  const paused = await run(['schedule', 'pause', 'cli-sched'], { env });
  assert.equal(paused.code, EXIT.OK, paused.stderr);
  assert.equal(paused.json.paused, true);
  assert.equal(paused.json.cron, YEARLY, 'pause keeps the rest');
  const resumed = await run(['schedule', 'resume', 'cli-sched'], { env });
  assert.equal(resumed.code, EXIT.OK, resumed.stderr);
  assert.equal(resumed.json.paused, false);
  assert.equal(typeof resumed.json.nextRunAt, 'string');

  const ran = await run(['schedule', 'run', 'cli-sched'], { env });
  assert.equal(ran.code, EXIT.OK, ran.stderr);
  assert.match(ran.json.id, /^[0-9a-f-]{36}$/, 'the task made now');
  assert.equal(ran.json.callbackUrl, tgt.url('/sched'));
  assert.equal(ran.json.queue, 'cli-sched');
  assert.equal((await waitForStatus(d.url, ran.json.id, ['completed'], { headers: AUTH })).status, 'completed');
  const call = tgt.requests.find((q) => q.url === '/sched');
  assert.deepEqual(JSON.parse(call.body), { from: 'schedule' });
  const counted = await run(['schedule', 'get', 'cli-sched'], { env });
  assert.deepEqual([counted.json.runs, counted.json.lastTaskId], [1, ran.json.id]);
  assert.equal(counted.json.nextRunAt, resumed.json.nextRunAt, 'run leaves the next time');

  const replaced = await run(['schedule', 'put', 'cli-sched', '--cron', '@hourly', '--url', tgt.url('/sched2'), '--paused'], { env });
  assert.equal(replaced.code, EXIT.OK, replaced.stderr);
  assert.deepEqual([replaced.json.cron, replaced.json.paused, replaced.json.runs, replaced.json.createdAt],
    ['@hourly', true, 1, put.json.createdAt], 'a replace keeps runs and createdAt');

  const del = await run(['schedule', 'delete', 'cli-sched'], { env });
  assert.equal(del.code, EXIT.OK, del.stderr);
  assert.equal(del.stdout, '', '204: nothing to print');
  const gone = await run(['schedule', 'get', 'cli-sched'], { env });
  assert.equal(gone.code, EXIT.API);
  assert.match(oneLine(gone), /^asyncqueue: HTTP 404 not_found/);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${ran.json.id}`, undefined, AUTH)).status, 200, 'its task stays');
});

test('schedule: no such schedule is the API\'s 404 (exit 4); a bad cron or template field its 400 naming the field', async () => {
  for (const verb of ['get', 'delete', 'pause', 'resume', 'run']) {
    const r = await run(['schedule', verb, 'cli-never'], { env });
    assert.equal(r.code, EXIT.API, `${verb}: ${r.stderr}`);
    assert.equal(r.json.error.code, 'not_found', `${verb}: the API's answer on stdout`);
    assert.match(oneLine(r), /^asyncqueue: HTTP 404 not_found/, verb);
  }
  const cron = await run(['schedule', 'put', 'cli-bad', '--cron', '61 * * * *', '--url', tgt.url('/x')], { env });
  assert.equal(cron.code, EXIT.API, cron.stderr);
  assert.match(oneLine(cron), /^asyncqueue: HTTP 400 invalid_field \(cron\): /);
  const url = await run(['schedule', 'put', 'cli-bad', '--cron', YEARLY, '--url', 'ftp://x.example'], { env });
  assert.equal(url.code, EXIT.API, url.stderr);
  assert.match(oneLine(url), /^asyncqueue: HTTP 400 invalid_field \(task\.callbackUrl\): /);
  const file = join(tmp.dir, 'runat.json');
  writeFileSync(file, JSON.stringify({ callbackUrl: tgt.url('/x'), runAt: '2030-01-01T00:00:00Z' }));
  const runAt = await run(['schedule', 'put', 'cli-bad', '--cron', YEARLY, '--task', file], { env });
  assert.equal(runAt.code, EXIT.API, runAt.stderr);
  assert.match(oneLine(runAt), /^asyncqueue: HTTP 400 \w+ \(task\.runAt\)/);
  const name = await run(['schedule', 'get', 'bad name!'], { env });
  assert.equal(name.code, EXIT.API);
  assert.match(oneLine(name), /HTTP 400 invalid_field \(name\)/);
  assert.equal((await run(['schedule', 'get', 'cli-bad'], { env })).code, EXIT.API, 'nothing was stored');
});

test('schedule list: every schedule over the pages; --limit and --cursor one page; --all with them', async () => {
  // '-' sorts before digits and letters: these are the first schedules by name.
  const names = ['-clis-a', '-clis-b', '-clis-c', '-clis-d'];
  for (const n of names) {
    // A name that starts with '-' follows '--', which ends the options.
    const r = await run(['schedule', 'put', '--cron', YEARLY, '--url', tgt.url('/p'), '--', n], { env });
    assert.equal(r.code, EXIT.OK, r.stderr);
  }
  const viaApi = await api(d.url, 'GET', '/v1/schedules', undefined, AUTH);
  const all = await run(['schedule', 'list'], { env });
  assert.equal(all.code, EXIT.OK, all.stderr);
  assert.deepEqual(all.json, viaApi.body, 'under 1000 schedules: the one page the API answers');
  assert.deepEqual(all.json.schedules.slice(0, 4).map((x) => x.name), names);

  const page = await run(['schedule', 'list', '--limit', '2'], { env });
  assert.equal(page.code, EXIT.OK, page.stderr);
  assert.deepEqual(page.json.schedules.map((x) => x.name), names.slice(0, 2));
  assert.equal(typeof page.json.nextCursor, 'string');
  const next = await run(['schedule', 'list', '--limit', '2', '--cursor', page.json.nextCursor], { env });
  assert.deepEqual(next.json.schedules.map((x) => x.name), names.slice(2, 4));
  const rest = await run(['schedule', 'list', '--cursor', page.json.nextCursor], { env });
  assert.deepEqual(rest.json, { schedules: all.json.schedules.slice(2), nextCursor: null });
  const byOne = await run(['schedule', 'list', '--limit', '1', '--all'], { env });
  assert.equal(byOne.code, EXIT.OK, byOne.stderr);
  assert.deepEqual(byOne.json, all.json, 'the same list, one schedule a request');

  const bad = await run(['schedule', 'list', '--limit', '1001'], { env });
  assert.equal(bad.code, EXIT.API);
  assert.match(oneLine(bad), /HTTP 400 invalid_field \(limit\)/);
  const badCursor = await run(['schedule', 'list', '--cursor', 'nope!'], { env });
  assert.equal(badCursor.code, EXIT.API);
  assert.match(oneLine(badCursor), /invalid_field \(cursor\)/);
  for (const n of names) assert.equal((await run(['schedule', 'delete', '--', n], { env })).code, EXIT.OK);
});

test('schedule list follows nextCursor into one list (a fake), and says when an answer is not a schedule list', async (t) => {
  const pages = { '': { schedules: [{ name: 'a' }], nextCursor: 'Yg' }, Yg: { schedules: [{ name: 'b' }], nextCursor: null } };
  const seen = [];
  const paged = await startFake((req) => {
    const u = new URL(req.url, 'http://x');
    seen.push(u.pathname + u.search);
    return { status: 200, body: pages[u.searchParams.get('cursor') ?? ''] };
  });
  t.after(() => paged.close());
  const r = await run(['schedule', 'list', '--server', paged.url('/')], { env });
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.deepEqual(r.json, { schedules: [{ name: 'a' }, { name: 'b' }], nextCursor: null });
  assert.deepEqual(seen, ['/v1/schedules', '/v1/schedules?cursor=Yg']);
  const notList = await run(['schedule', 'list', '--server', tgt.url('/')], { env, timeout: 10000 });
  assert.equal(notList.code, EXIT.SERVER, notList.stderr);
  assert.match(oneLine(notList), /is not a schedule list/);
});

test('schedule usage errors exit 2 with one line on stderr, and send nothing', async (t) => {
  const fake = await startFake([{ status: 500 }]);
  t.after(() => fake.close());
  const server = ['--server', fake.url('/')];
  const missing = join(tmp.dir, 'no-such-template.json');
  const notObject = join(tmp.dir, 'array-template.json');
  writeFileSync(notObject, '[{"callbackUrl": "https://x.example"}]');
  const broken = join(tmp.dir, 'broken-template.json');
  writeFileSync(broken, '{"callbackUrl": ');
  const trailing = join(tmp.dir, 'trailing-template.json');
  writeFileSync(trailing, '{"callbackUrl": "https://x.example"} {}');
  const cases = [
    [['schedule', 'frobnicate'], /unknown command 'schedule frobnicate'/],
    [['schedule', 'put', 's', '--url', 'https://x.example'], /schedule put needs --cron EXPR/],
    [['schedule', 'put', 's', '--cron', YEARLY], /schedule put needs the task it makes: --task FILE/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--queue', 'q'], /schedule put needs the task it makes/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--task', notObject, '--url', 'https://x.example'], /--task FILE is the whole template/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--task', missing], /--task .*no-such-template\.json: cannot open/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--task', notObject], /must hold a JSON object/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--task', broken], /--task .* is not valid JSON/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--task', trailing], /has more after the JSON object/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--url', 'https://x.example', '--run-at', '2030-01-01T00:00:00Z'], /--run-at is not an option of 'schedule put'/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--url', 'https://x.example', '--idempotency-key', 'k'], /--idempotency-key is not an option of 'schedule put'/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--url', 'https://x.example', '--payload', '{'], /--payload is not valid JSON/],
    [['schedule', 'put', 's', '--cron', YEARLY, '--cron', '@daily', '--url', 'https://x.example'], /--cron is given twice/],
    [['schedule', 'put', '--cron', YEARLY, '--url', 'https://x.example'], /'schedule put' needs NAME/],
    [['schedule', 'get'], /'schedule get' needs NAME/],
    [['schedule', 'run', 'a', 'b'], /unexpected argument 'b'/],
    [['schedule', 'run', 'a', '--wait'], /--wait is not an option of 'schedule run'/],
    [['schedule', 'list', '--status', 'queued'], /--status is not an option of 'schedule list'/],
    [['schedule', 'pause', '.'], /NAME must not be '\.'/],
    [['schedule', 'delete', '..'], /NAME must not be '\.\.'/],
  ];
  for (const [args, re] of cases) {
    const r = await run([...args, ...server], { env });
    assert.equal(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    const line = oneLine(r);
    assert.match(line, re, args.join(' '));
    assert.match(line, /see 'asyncqueue schedule --help'$/, args.join(' '));
  }
  assert.equal(fake.requests.length, 0, 'nothing was sent');
  const bare = await run(['schedule'], { env });
  assert.equal(bare.code, EXIT.USAGE);
  assert.match(bare.stderr, /^Usage: asyncqueue schedule/);
});

test('schedule --help documents the commands and every exit code', async () => {
  const r = await run(['schedule', '--help']);
  assert.equal(r.code, EXIT.OK);
  assert.equal(r.stderr, '');
  for (const code of Object.values(EXIT)) assert.match(r.stdout, new RegExp(`^  ${code}  `, 'm'), `exit ${code}`);
  for (const cmd of ['put', 'list', 'get', 'delete', 'pause', 'resume', 'run']) {
    assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'), `schedule --help: ${cmd}`);
  }
  for (const opt of ['--cron', '--task', '--paused', '--limit', '--cursor', '--all', '--url']) assert.ok(r.stdout.includes(opt), opt);
  const sub = await run(['schedule', 'put', '-h']);
  assert.equal(sub.code, EXIT.OK);
  assert.match(sub.stdout, /--cron EXPR/);
});

// Valgrind cannot run a sanitized binary; the ASan run covers that one.
const sanitized = readFileSync(BIN).includes('__asan_init');
const hasValgrind = spawnSync('valgrind', ['--version']).status === 0;

test('the CLI paths run clean under valgrind (no errors, no leaks)', {
  skip: sanitized ? 'the binary is built with AddressSanitizer' : !hasValgrind ? 'valgrind is not installed' : false,
}, async () => {
  const wrapper = ['valgrind', '--quiet', '--error-exitcode=99', '--leak-check=full',
    '--errors-for-leak-kinds=definite,indirect'];
  const file = join(tmp.dir, 'vg.json');
  writeFileSync(file, '{"from": "valgrind"}');
  const port = await deadPort();
  const cases = [
    [['task', 'create', '--url', tgt.url('/vg'), '--payload', `@${file}`, '--header', 'A: b', '--metadata', '{"m":1}', '--wait', '10'], EXIT.OK],
    [['task', 'create', '--url', tgt.url('/fail'), '--retries', '0', '--wait', '10'], EXIT.TASK_FAILED],
    [['task', 'create', '--url', tgt.url('/vg'), '--delay', '60', '--wait', '0.2'], EXIT.WAIT_TIMEOUT],
    [['task', 'list', '--limit', '2', '--all'], EXIT.OK],
    [['queue', 'list', '--limit', '1', '--all'], EXIT.OK],
    [['task', 'create', '--url', 'ftp://x.example'], EXIT.API],
    [['task', 'get', 'x', '--server', `http://127.0.0.1:${port}`], EXIT.SERVER],
    [['task', 'create', '--url', 'http://x.example', '--header', 'A: 1', '--header', 'a: 2'], EXIT.USAGE],
    [['queue', 'set', 'vgq', '--rate', '1', '--paused'], EXIT.OK],
    [['task', 'cancel-many', '--queue', 'vg-bulk', '--status', 'queued,,running', '--created-after', '2020-01-01T00:00:00Z'], EXIT.OK],
    [['task', 'retry-many', '--queue', 'vg-bulk'], EXIT.OK],
    [['task', 'cancel-many', '--status', 'bogus'], EXIT.API],
    [['task', 'retry-many'], EXIT.USAGE],
  ];
  for (const [args, want] of cases) {
    const r = await run(args, { env, wrapper, timeout: 60000 });
    assert.equal(r.code, want, `${args.join(' ')} under valgrind:\n${r.stderr}`);
  }
});

test('the schedule CLI paths run clean under valgrind (no errors, no leaks)', {
  skip: sanitized ? 'the binary is built with AddressSanitizer' : !hasValgrind ? 'valgrind is not installed' : false,
}, async () => {
  const wrapper = ['valgrind', '--quiet', '--error-exitcode=99', '--leak-check=full',
    '--errors-for-leak-kinds=definite,indirect'];
  const payload = join(tmp.dir, 'vg-sched-payload.json');
  writeFileSync(payload, '{"from": "valgrind"}');
  const template = join(tmp.dir, 'vg-sched-task.json');
  writeFileSync(template, JSON.stringify({ callbackUrl: tgt.url('/vg'), delay: 3600 }));
  const cases = [
    [['schedule', 'put', 'vg-sched', '--cron', YEARLY, '--task', template], EXIT.OK],
    [['schedule', 'put', 'vg-sched2', '--cron', YEARLY, '--url', tgt.url('/vg'), '--header', 'A: b', '--payload', `@${payload}`, '--paused'], EXIT.OK],
    [['schedule', 'list', '--limit', '1', '--all'], EXIT.OK],
    [['schedule', 'run', 'vg-sched'], EXIT.OK],
    [['schedule', 'get', 'vg-never'], EXIT.API],
    [['schedule', 'put', 'vg-sched', '--cron', YEARLY, '--task', payload, '--url', 'http://x.example'], EXIT.USAGE],
    [['schedule', 'put', 'vg-sched', '--cron', YEARLY, '--task', join(tmp.dir, 'vg-missing.json')], EXIT.USAGE],
  ];
  for (const [args, want] of cases) {
    const r = await run(args, { env, wrapper, timeout: 60000 });
    assert.equal(r.code, want, `${args.join(' ')} under valgrind:\n${r.stderr}`);
  }
});

test('--cacert (or ASYNCQUEUE_CACERT) trusts a private CA for an https server; without it the TLS check fails (exit 5)', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { createServer } = await import('node:https');
  const tmp = tempDir('aq-cli-tls-');
  t.after(() => tmp.cleanup());
  const key = join(tmp.dir, 'key.pem'), cert = join(tmp.dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  // An https server answering as the daemon does (behind nginx with a private CA).
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ queues: [{ name: 'over-tls' }], nextCursor: null }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `https://127.0.0.1:${server.address().port}`;
  const untrusted = await run(['queue', 'list', '--server', url]);
  assert.equal(untrusted.code, EXIT.SERVER, untrusted.stderr);
  assert.match(untrusted.stderr, /certificate/i);
  const flag = await run(['queue', 'list', '--server', url, '--cacert', cert]);
  assert.equal(flag.code, EXIT.OK, flag.stderr);
  assert.equal(flag.json.queues[0].name, 'over-tls');
  const fromEnv = await run(['queue', 'list', '--server', url], { env: { ASYNCQUEUE_CACERT: cert } });
  assert.equal(fromEnv.code, EXIT.OK, fromEnv.stderr);
  const missing = await run(['queue', 'list', '--server', url, '--cacert', join(tmp.dir, 'none.pem')]);
  assert.equal(missing.code, EXIT.USAGE);
  assert.match(missing.stderr, /--cacert .*none\.pem: No such file/);
  // The daemon takes the variable as the client's, not as an unknown setting.
  const check = spawnSync(BIN, ['--check-config'], { env: { ...process.env, ASYNCQUEUE_CACERT: cert }, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});
