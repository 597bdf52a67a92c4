// Schedules (docs/api.md "Schedules"): a task template made into a task each
// time a cron expression fires. The real daemon over loopback; runs every
// second (the six-field form) where a test needs runs to happen, and times
// set in the database where it needs a time missed while stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, countTasks, sleep, startDaemon, tempDir, waitFor } from './lib/harness.mjs';
import { assertError, daemon, fake, sql } from './lib/ops.mjs';

const put = (d, name, body, headers = {}) => api(d.url, 'PUT', `/v1/schedules/${name}`, body, headers);
const get = (d, name, headers = {}) => api(d.url, 'GET', `/v1/schedules/${name}`, undefined, headers);
const later = { callbackUrl: 'http://127.0.0.1:9/later', delay: 3600 }; // stays queued: nothing runs

test('put, show, replace and delete a schedule; the answer is the schedule as stored', async (t) => {
  const d = await daemon(t);
  const body = `{"cron": "0 3 * * *", "task": {"callbackUrl": "http://127.0.0.1:9/nightly", "payload": {"n": 12345678901234567891, "x": 1.50}}}`;
  const first = await put(d, 'nightly', body);
  assert.equal(first.status, 201, JSON.stringify(first.body));
  const s = first.body;
  assert.equal(s.name, 'nightly');
  assert.equal(s.cron, '0 3 * * *');
  assert.equal(s.paused, false);
  assert.equal(s.runs, 0);
  assert.equal(s.lastRunAt, null);
  assert.equal(s.lastTaskId, null);
  assert.equal(s.lastError, null);
  // The next 03:00:00 UTC after now.
  const next = new Date(s.nextRunAt);
  assert.equal(next.getUTCHours(), 3);
  assert.equal(next.getUTCMinutes(), 0);
  assert.ok(next.getTime() > Date.now() && next.getTime() <= Date.now() + 86400000, s.nextRunAt);
  // The template is kept as written: its numbers keep their spelling.
  const raw = await fetch(`${d.url}/v1/schedules/nightly`).then((r) => r.text());
  assert.match(raw, /"task":\{"callbackUrl": "http:\/\/127\.0\.0\.1:9\/nightly", "payload": \{"n": 12345678901234567891, "x": 1\.50\}\}/);
  assert.deepEqual((await get(d, 'nightly')).body, s);

  // A replace answers 200, keeps createdAt, takes the new cron and task.
  const again = await put(d, 'nightly', { cron: '@hourly', task: later, paused: true });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.createdAt, s.createdAt);
  assert.equal(again.body.cron, '@hourly');
  assert.equal(again.body.paused, true);
  assert.equal(again.body.nextRunAt, null, 'a paused schedule has no next run');
  assert.deepEqual(again.body.task, later);

  const del = await api(d.url, 'DELETE', '/v1/schedules/nightly');
  assert.equal(del.status, 204);
  assertError(await get(d, 'nightly'), 404, 'not_found');
  assertError(await api(d.url, 'DELETE', '/v1/schedules/nightly'), 404, 'not_found');
  assertError(await api(d.url, 'POST', '/v1/schedules/nightly/pause'), 404, 'not_found');
  assertError(await api(d.url, 'POST', '/v1/schedules/nightly/run'), 404, 'not_found');
  assertError(await get(d, 'bad name!'), 400, 'invalid_field', 'name');
  // Counted by route and status (201 had no label of its own).
  const metrics = await fetch(`${d.url}/metrics`).then((x) => x.text());
  assert.match(metrics, /^asyncqueue_http_requests_total\{route="\/v1\/schedules\/\{name\}",status="201"\} 1$/m);
  assert.match(metrics, /^asyncqueue_http_requests_total\{route="\/v1\/schedules\/\{name\}\/run",status="404"\} 1$/m);
});

test('a refused schedule says which field and stores nothing', async (t) => {
  const d = await daemon(t, { private: false });
  const later = { callbackUrl: 'https://example.com/later', delay: 3600 }; // never resolved: nothing runs
  const cases = [
    [{ task: later }, 400, 'missing_field', 'cron'],
    [{ cron: '* * * * *' }, 400, 'missing_field', 'task'],
    [{ cron: 5, task: later }, 400, 'invalid_field', 'cron'],
    [{ cron: '* 25 * * *', task: later }, 400, 'invalid_field', 'cron', /hour/],
    [{ cron: '0 0 30 2 *', task: later }, 400, 'invalid_field', 'cron'],
    [{ cron: '* * * *', task: later }, 400, 'invalid_field', 'cron'],
    // Forms other crons take are named as not supported (a QStash time zone, Quartz's L).
    [{ cron: 'CRON_TZ=Europe/Berlin 0 3 * * *', task: later }, 400, 'invalid_field', 'cron', /"timezone" field/],
    [{ cron: '0 3 * * *', timezone: 'Europe/Berln', task: later }, 400, 'invalid_field', 'timezone', /Europe\/Berln/],
    [{ cron: '0 3 * * *', timezone: '../../etc/passwd', task: later }, 400, 'invalid_field', 'timezone'],
    [{ cron: '0 3 * * *', timezone: 3, task: later }, 400, 'invalid_field', 'timezone'],
    [{ cron: '0 0 L * *', task: later }, 400, 'invalid_field', 'cron', /"L" \(the last day of the month\) is not supported/],
    [{ cron: '* * * * *', task: [] }, 400, 'invalid_field', 'task'],
    [{ cron: '* * * * *', task: {} }, 400, 'missing_field', 'task.callbackUrl', /^task: /],
    [{ cron: '* * * * *', task: { callbackUrl: 'ftp://x/' } }, 400, 'invalid_field', 'task.callbackUrl'],
    // Loopback is refused when private targets are not allowed, as a create refuses it.
    [{ cron: '* * * * *', task: { callbackUrl: 'http://127.0.0.1:9/' } }, 400, 'blocked_destination', 'task.callbackUrl'],
    [{ cron: '* * * * *', task: { ...later, runAt: '2030-01-01T00:00:00Z' } }, 400, 'invalid_field', 'task.runAt'],
    [{ cron: '* * * * *', task: { ...later, idempotencyKey: 'k' } }, 400, 'invalid_field', 'task.idempotencyKey'],
    [{ cron: '* * * * *', task: { ...later, retries: -1 } }, 400, 'invalid_field', 'task.retries'],
    [{ cron: '* * * * *', task: later, paused: 'no' }, 400, 'invalid_field', 'paused'],
    [{ cron: '* * * * *', task: later, every: 5 }, 400, 'unknown_field', 'every'],
    ['[1]', 400, 'invalid_body'],
    ['{"cron": "* * * * *", "cron": "* * * * *", "task": {}}', 400, 'invalid_json'],
  ];
  for (const [body, status, code, field, message] of cases) {
    const r = await put(d, 'x', body);
    assertError(r, status, code, field);
    if (message) assert.match(r.body.error.message, message);
    assert.equal((await get(d, 'x')).status, 404, `nothing stored for ${JSON.stringify(body)}`);
  }
  assert.equal(sql(d.db, 'SELECT count(*) FROM schedules'), '0');
});

test('a schedule makes a task at each time it fires; pause stops it, resume and run now go on', async (t) => {
  const target = await fake(t, [{ status: 200, body: '{"ok":true}' }]);
  const d = await daemon(t);
  const created = await put(d, 'tick',
    `{"cron": "* * * * * *", "task": {"callbackUrl": "${target.url('/tick')}", "payload": {"n": 12345678901234567891}, "queue": "ticks"}}`);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // Every second: two runs reach the target, each a task of its own.
  await waitFor(() => target.requests.length >= 2, { timeout: 10000, what: 'two runs to reach the target' });
  assert.equal(target.requests[0].body, '{"n": 12345678901234567891}', 'the payload as written');
  const ids = new Set(target.requests.slice(0, 2).map((q) => q.headers['asyncqueue-task-id']));
  assert.equal(ids.size, 2, 'a task each run');
  assert.equal(target.requests[0].headers['asyncqueue-schedule'], 'tick', 'the call names its schedule');
  const s = (await get(d, 'tick')).body;
  assert.ok(s.runs >= 2, JSON.stringify(s));
  const made = Number((await fetch(`${d.url}/metrics`).then((x) => x.text()))
    .match(/^asyncqueue_schedule_runs_total\{result="task"\} (\d+)$/m)[1]);
  assert.ok(made >= 2, `runs counted: ${made}`);
  const lastTask = (await api(d.url, 'GET', `/v1/tasks/${s.lastTaskId}`)).body;
  assert.equal(lastTask.queue, 'ticks');
  assert.equal(lastTask.schedule, 'tick', 'the task names its schedule');
  // The list takes the tasks of one schedule; another task is not among them.
  const other = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/other'), queue: 'ticks', delay: 3600 });
  assert.equal(other.status, 202);
  assert.equal(other.body.schedule, null);
  const listed = (await api(d.url, 'GET', '/v1/tasks?schedule=tick&limit=200')).body.tasks;
  assert.ok(listed.length >= 2 && listed.every((x) => x.schedule === 'tick'), JSON.stringify(listed.map((x) => x.schedule)));
  assert.ok(!listed.some((x) => x.id === other.body.id));
  assertError(await api(d.url, 'GET', '/v1/tasks?schedule=bad!'), 400, 'invalid_field', 'schedule');
  assert.equal(Date.parse(lastTask.createdAt) % 1000, Date.parse(s.lastRunAt) % 1000, 'made at its run');
  assert.ok(Date.parse(s.nextRunAt) > Date.parse(s.lastRunAt));
  assert.equal(Date.parse(s.nextRunAt) % 1000, 0, 'a whole second');

  const paused = await api(d.url, 'POST', '/v1/schedules/tick/pause');
  assert.equal(paused.status, 200);
  assert.equal(paused.body.paused, true);
  assert.equal(paused.body.nextRunAt, null);
  const runs = paused.body.runs;
  const tasks = await countTasks(d.db);
  // Nothing to wait for: a paused schedule makes nothing; 1.5 s is more
  // than one run's period.
  await sleep(1500);
  assert.equal((await get(d, 'tick')).body.runs, runs);
  assert.equal(await countTasks(d.db), tasks);

  // Run now: a task at once (202, as a create answers), the schedule still paused.
  const now = await api(d.url, 'POST', '/v1/schedules/tick/run');
  assert.equal(now.status, 202, JSON.stringify(now.body));
  assert.equal(now.headers.get('location'), `/v1/tasks/${now.body.id}`);
  assert.equal(now.body.queue, 'ticks');
  const afterRun = (await get(d, 'tick')).body;
  assert.equal(afterRun.runs, runs + 1);
  assert.equal(afterRun.lastTaskId, now.body.id);
  assert.equal(afterRun.nextRunAt, null, 'run now leaves the schedule as it was');

  const resumed = await api(d.url, 'POST', '/v1/schedules/tick/resume');
  assert.equal(resumed.body.paused, false);
  assert.ok(Date.parse(resumed.body.nextRunAt) > Date.now() - 1000);
  await waitFor(async () => (await get(d, 'tick')).body.runs >= runs + 2, { timeout: 10000, what: 'a run after resume' });

  // Deleting the schedule keeps the tasks it made.
  const before = await countTasks(d.db);
  assert.equal((await api(d.url, 'DELETE', '/v1/schedules/tick')).status, 204);
  assert.ok(await countTasks(d.db) >= before);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${now.body.id}`)).status, 200);
});

test('replacing a schedule while one of its times is due does not skip that time (a deploy PUTs it again)', async (t) => {
  const d = await daemon(t);
  const body = { cron: '* * * * * *', task: later };
  assert.equal((await put(d, 'again', body)).status, 201);
  // The same schedule PUT again and again, three at a time: the moment
  // between a time falling due and the timer's run committing (the run
  // waits behind single writes) is hit over and over.
  let stop = false;
  const putting = Promise.all([0, 1, 2].map(async () => {
    while (!stop) assert.equal((await put(d, 'again', body)).status, 200);
  }));
  const first = await waitFor(async () => (await get(d, 'again')).body.lastRunAt, { what: 'a first run' });
  await waitFor(async () => Date.parse((await get(d, 'again')).body.lastRunAt) >= Date.parse(first) + 4000,
    { timeout: 15000, what: 'four more seconds of runs' });
  stop = true;
  await putting;
  // Every second from the first run to the last made its task, once.
  const secs = sql(d.db, 'SELECT created_at / 1000 FROM tasks ORDER BY created_at').split('\n').map(Number);
  assert.ok(secs.length >= 5, secs.join(' '));
  for (let i = 1; i < secs.length; i++) assert.equal(secs[i], secs[i - 1] + 1, `seconds made: ${secs.join(' ')}`);
  assert.equal((await get(d, 'again')).body.runs, secs.length);
});

test('times missed while the daemon was down make one run at start, then it goes on by its cron; kill -9 loses nothing', async (t) => {
  const tmp = tempDir('aq-sched-');
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'aq.db');
  const d1 = await startDaemon({ db });
  const r = await put(d1, 'yearly', { cron: '0 0 1 1 *', task: later });
  assert.equal(r.status, 201);
  assert.equal((await d1.kill()).signal, 'SIGKILL'); // what got a 201 is on disk
  // Missed runs: next_run_at a 1 January already past, as a long stop
  // leaves it (a time of its cron: one that is not is moved on, not run).
  const missed = Date.UTC(new Date().getUTCFullYear() - 2, 0, 1);
  sql(db, `UPDATE schedules SET next_run_at = ${missed}`);
  const d2 = await startDaemon({ db });
  t.after(async () => { await d2.stop(); });
  const s = await waitFor(async () => {
    const b = (await get(d2, 'yearly')).body;
    return b.runs >= 1 ? b : null;
  }, { what: 'the missed run' });
  assert.equal(s.runs, 1, 'one run for every missed time together');
  assert.equal(await countTasks(db), 1);
  const next = new Date(s.nextRunAt);
  assert.equal(next.getUTCMonth(), 0);
  assert.equal(next.getUTCDate(), 1);
  assert.ok(next.getTime() > Date.now(), 'the next 1 January, not another missed time');
  assert.equal(s.lastError, null);
});

test('a run the template no longer passes makes no task, says why, and moves on', async (t) => {
  const tmp = tempDir('aq-sched-');
  t.after(() => tmp.cleanup());
  const db = join(tmp.dir, 'aq.db');
  const d1 = await startDaemon({ db }); // private targets allowed
  assert.equal((await put(d1, 'local', { cron: '@daily', task: later })).status, 201);
  await d1.stop();
  const midnight = new Date();
  midnight.setUTCHours(0, 0, 0, 0); // today's @daily time, already past
  sql(db, `UPDATE schedules SET next_run_at = ${midnight.getTime()}`);
  const d2 = await startDaemon({ db, private: false }); // loopback now refused
  t.after(async () => { await d2.stop(); });
  const s = await waitFor(async () => {
    const b = (await get(d2, 'local')).body;
    return b.lastRunAt ? b : null;
  }, { what: 'the run' });
  assert.equal(s.runs, 0);
  assert.equal(s.lastTaskId, null);
  assert.match(s.lastError, /not allowed|private|loopback/i);
  assert.ok(Date.parse(s.nextRunAt) > Date.now());
  assert.equal(await countTasks(db), 0);
  const metrics = await fetch(`${d2.url}/metrics`).then((x) => x.text());
  assert.match(metrics, /^asyncqueue_schedule_runs_total\{result="skipped"\} 1$/m);
  assert.match(metrics, /^asyncqueue_schedule_runs_total\{result="task"\} 0$/m);
  // Run now says it the way a create would.
  const now = await api(d2.url, 'POST', '/v1/schedules/local/run');
  assertError(now, 400, 'blocked_destination', 'task.callbackUrl');
});

test('a schedule may read its cron in a time zone: nextRunAt is that local time in UTC, and the zone is kept', async (t) => {
  const d = await daemon(t);
  // 09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer; in Kolkata
  // (+05:30, no DST) 03:30 UTC.
  const berlin = await put(d, 'berlin', { cron: '0 9 * * *', timezone: 'Europe/Berlin', task: later });
  assert.equal(berlin.status, 201, JSON.stringify(berlin.body));
  assert.equal(berlin.body.timezone, 'Europe/Berlin');
  const next = new Date(berlin.body.nextRunAt);
  const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(next);
  assert.equal(local, '09:00', `${berlin.body.nextRunAt} is ${local} in Berlin`);
  assert.ok([7, 8].includes(next.getUTCHours()));
  const kolkata = await put(d, 'kolkata', { cron: '0 9 * * *', timezone: 'Asia/Kolkata', task: later });
  assert.equal(new Date(kolkata.body.nextRunAt).getUTCHours(), 3);
  assert.equal(new Date(kolkata.body.nextRunAt).getUTCMinutes(), 30);
  // Without a zone, UTC; null is the same.
  const utc = await put(d, 'utc', { cron: '0 9 * * *', timezone: null, task: later });
  assert.equal(utc.body.timezone, 'UTC');
  assert.equal(new Date(utc.body.nextRunAt).getUTCHours(), 9);
  // The zone is kept with the schedule; a replace without one goes back to UTC.
  assert.equal((await get(d, 'berlin')).body.timezone, 'Europe/Berlin');
  const back = await put(d, 'berlin', { cron: '0 9 * * *', task: later });
  assert.equal(back.body.timezone, 'UTC');
});

test('the list comes in pages by name', async (t) => {
  const d = await daemon(t);
  for (const name of ['c', 'a', 'b']) assert.equal((await put(d, name, { cron: '@daily', task: later })).status, 201);
  const all = await api(d.url, 'GET', '/v1/schedules');
  assert.deepEqual(all.body.schedules.map((s) => s.name), ['a', 'b', 'c']);
  assert.equal(all.body.nextCursor, null);
  const names = [];
  let cursor = '';
  for (let i = 0; i < 5; i++) {
    const page = await api(d.url, 'GET', `/v1/schedules?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200);
    names.push(...page.body.schedules.map((s) => s.name));
    cursor = page.body.nextCursor;
    if (!cursor) break;
  }
  assert.deepEqual(names, ['a', 'b', 'c']);
  // A page also ends after 4 MiB of templates (each may be as large as a
  // create's body: a thousand of them made one answer of a gigabyte).
  const big = { cron: '@daily', task: { ...later, payload: 'x'.repeat(900 * 1024) } };
  for (const name of ['big1', 'big2', 'big3', 'big4', 'big5', 'big6']) assert.equal((await put(d, name, big)).status, 201);
  const first = await api(d.url, 'GET', '/v1/schedules');
  assert.deepEqual(first.body.schedules.map((s) => s.name), ['a', 'b', 'big1', 'big2', 'big3', 'big4', 'big5']);
  assert.ok(first.body.nextCursor, 'more after the budget');
  const rest = await api(d.url, 'GET', `/v1/schedules?cursor=${first.body.nextCursor}`);
  assert.deepEqual(rest.body.schedules.map((s) => s.name), ['big6', 'c']);
  assert.equal(rest.body.nextCursor, null);
  assertError(await api(d.url, 'GET', '/v1/schedules?limit=0'), 400, 'invalid_field', 'limit');
  assertError(await api(d.url, 'GET', '/v1/schedules?cursor=!!'), 400, 'invalid_field', 'cursor');
});

test('keys: read may look, admin may change, enqueue neither; a tenant has its own schedules and its runs its tasks', async (t) => {
  const key = (l) => `${l}-${randomBytes(12).toString('hex')}`;
  const k = { admin: key('admin'), read: key('read'), enq: key('enq'), acme: key('acme'), globex: key('globex') };
  const tmp = tempDir('aq-sched-auth-');
  t.after(() => tmp.cleanup());
  const conf = join(tmp.dir, 'asyncqueue.conf');
  writeFileSync(conf, [
    `key.admin = ${k.admin}`,
    `key.read = ${k.read} scope=read`,
    `key.enq = ${k.enq} scope=enqueue`,
    `key.acme = ${k.acme} tenant=acme`,
    `key.globex = ${k.globex} tenant=globex`,
  ].join('\n') + '\n');
  const d = await startDaemon({ args: ['--config', conf] });
  t.after(async () => { await d.stop(); });
  const as = (kk) => ({ authorization: `Bearer ${kk}` });
  const body = { cron: '@daily', task: later };
  assertError(await put(d, 's', body, as(k.read)), 403, 'forbidden');
  assertError(await put(d, 's', body, as(k.enq)), 403, 'forbidden');
  assert.equal((await put(d, 's', body, as(k.admin))).status, 201);
  assert.equal((await get(d, 's', as(k.read))).status, 200);
  assertError(await get(d, 's', as(k.enq)), 403, 'forbidden');
  assertError(await api(d.url, 'POST', '/v1/schedules/s/run', undefined, as(k.read)), 403, 'forbidden');

  // Tenants: the same name is another schedule; another tenant's is not found.
  assert.equal((await put(d, 's', { ...body, cron: '@hourly' }, as(k.acme))).status, 201);
  assert.equal((await get(d, 's', as(k.acme))).body.cron, '@hourly');
  assert.equal((await get(d, 's', as(k.admin))).body.cron, '@daily');
  assert.equal((await put(d, 'only-acme', body, as(k.acme))).status, 201);
  assertError(await get(d, 'only-acme', as(k.globex)), 404, 'not_found');
  assertError(await api(d.url, 'DELETE', '/v1/schedules/only-acme', undefined, as(k.globex)), 404, 'not_found');
  assert.deepEqual((await api(d.url, 'GET', '/v1/schedules', undefined, as(k.globex))).body.schedules, []);
  assert.deepEqual((await api(d.url, 'GET', '/v1/schedules', undefined, as(k.acme))).body.schedules.map((s) => s.name), ['only-acme', 's']);
  // A run's task is in the schedule's tenant.
  const run = await api(d.url, 'POST', '/v1/schedules/only-acme/run', undefined, as(k.acme));
  assert.equal(run.status, 202, JSON.stringify(run.body));
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${run.body.id}`, undefined, as(k.acme))).status, 200);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${run.body.id}`, undefined, as(k.globex))).status, 404);
});
