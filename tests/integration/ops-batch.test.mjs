// POST /v1/tasks/batch: many creates in one request, all or nothing, each
// item exactly a create (the same validation, idempotency, backlog bound,
// destinations, queue defaults, events, metrics, logs), committed in one
// transaction before the answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  scope, api, waitFor, waitForWebhook, countTasks, queryDb, rawRequest,
} from './lib/harness.mjs';
import { assertError } from './lib/ops.mjs';

const batch = (d, tasks, headers) => api(d.url, 'POST', '/v1/tasks/batch', { tasks }, headers);
/** The tasks listed by GET /v1/tasks (every page). */
async function listAll(d, headers = {}) {
  const all = [];
  let cursor = '';
  for (let page = 0; page < 100; page++) { // bounded: 200 a page, the tests store at most 2000
    const r = await api(d.url, 'GET', `/v1/tasks?limit=200&order=asc${cursor ? `&cursor=${cursor}` : ''}`,
      undefined, headers);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    all.push(...r.body.tasks);
    if (!r.body.nextCursor) return all;
    cursor = r.body.nextCursor;
  }
  throw new Error('more pages than any test here stores');
}
/** The sum of a counter family's samples in /metrics. */
async function metric(d, family) {
  const text = await (await fetch(`${d.url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${family}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))]
    .reduce((a, m) => a + Number(m[1]), 0);
}
const delayed = (i, extra = {}) => ({ callbackUrl: `http://127.0.0.1:9/t/${i}`, delay: 3600, ...extra });

test('a batch of 3 runs all three against the target, in the order given, and each webhook arrives', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200, body: { ok: true } }]);
  const hook = await s.fake([{ status: 204 }]);
  const d = await s.daemon();
  // Queue defaults apply per item, as for a create.
  assert.equal((await api(d.url, 'PUT', '/v1/queues/slow', { defaultRetries: 1, defaultTimeout: 60 })).status, 200);
  const acceptedBefore = await metric(d, 'asyncqueue_tasks_accepted_total');

  // Sent as text: the first item's payload must reach the target as written
  // (a number JavaScript cannot hold), as a create's does.
  const items = [
    `{"callbackUrl": "${target.url('/a')}", "payload": {"big": 12345678901234567890, "x": 1.50},
      "webhookUrl": "${hook.url('/h/a')}", "metadata": {"n": 0}}`,
    JSON.stringify({ callbackUrl: target.url('/b'), method: 'PUT', body: 'plain', webhookUrl: hook.url('/h/b'), queue: 'slow' }),
    JSON.stringify({ callbackUrl: target.url('/c?q=1'), method: 'GET', headers: { 'X-N': '2' }, webhookUrl: hook.url('/h/c'), retries: 0 }),
  ];
  const r = await api(d.url, 'POST', '/v1/tasks/batch', `{"tasks": [${items.join(', ')}]}`);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.headers.get('location'), null);
  assert.deepEqual(Object.keys(r.body), ['tasks']);
  const tasks = r.body.tasks;
  assert.equal(tasks.length, 3);
  assert.deepEqual(tasks.map((x) => x.callbackUrl), [target.url('/a'), target.url('/b'), target.url('/c?q=1')]);
  assert.equal(new Set(tasks.map((x) => x.id)).size, 3);
  for (const x of tasks) {
    assert.equal(x.status, 'queued');
    assert.ok(!('replayed' in x));
    assert.ok(!('attemptHistory' in x));
  }
  assert.deepEqual(tasks.map((x) => [x.queue, x.retries, x.timeout]), [['default', 3, 300], ['slow', 1, 60], ['default', 0, 300]]);
  assert.deepEqual(tasks[0].metadata, { n: 0 });
  assert.equal(tasks[1].body, 'plain');
  // Ids are made in order: a list by age shows the batch in its order.
  assert.deepEqual([...tasks.map((x) => x.id)].sort(), tasks.map((x) => x.id));

  const calls = await target.waitForRequests(3);
  const byPath = Object.fromEntries(calls.map((c) => [c.url, c]));
  assert.equal(byPath['/a'].body, '{"big": 12345678901234567890, "x": 1.50}');
  assert.equal(byPath['/a'].headers['asyncqueue-task-id'], tasks[0].id);
  assert.equal(byPath['/b'].method, 'PUT');
  assert.equal(byPath['/b'].body, 'plain');
  assert.equal(byPath['/b'].headers['asyncqueue-queue'], 'slow');
  assert.equal(byPath['/c?q=1'].method, 'GET');
  assert.equal(byPath['/c?q=1'].headers['x-n'], '2');

  for (const x of tasks) {
    const done = await waitForWebhook(d.url, x.id, 'delivered');
    assert.equal(done.status, 'completed');
  }
  const hooks = await hook.waitForRequests(3);
  assert.deepEqual(hooks.map((h) => JSON.parse(h.body).taskId).sort(), tasks.map((x) => x.id).sort());
  for (const h of hooks) {
    const body = JSON.parse(h.body);
    assert.equal(h.url, `/h/${'abc'[tasks.findIndex((x) => x.id === body.taskId)]}`);
  }

  // Counted, logged and announced per task, as creates are.
  assert.equal(await metric(d, 'asyncqueue_tasks_accepted_total'), acceptedBefore + 3);
  for (const x of tasks) assert.match(d.logs(), new RegExp(`task\\.accepted id=${x.id} `));
  const text = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(text, /^asyncqueue_http_requests_total\{route="\/v1\/tasks\/batch",status="202"\} 1$/m);
});

test('the live feed tells each item of a batch as accepted', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const ctl = new AbortController();
  s.defer(() => ctl.abort());
  const res = await fetch(`${d.url}/v1/events`, { signal: ctl.signal });
  assert.equal(res.status, 200);
  await waitFor(async () => (await api(d.url, 'GET', '/v1/stats')).body.subscribers === 1, { what: 'the subscriber' });
  const r = await batch(d, [delayed(0), delayed(1), delayed(2)]);
  assert.equal(r.status, 202);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  const accepted = await waitFor(async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error('the stream ended');
    text += dec.decode(value, { stream: true });
    const ids = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]))
      .filter((e) => e.change === 'accepted').map((e) => e.id);
    return ids.length >= 3 ? ids : null;
  }, { what: 'three accepted events' });
  assert.deepEqual(accepted, r.body.tasks.map((x) => x.id));
});

test('an invalid item refuses the whole batch: 400 naming tasks[i].field, and nothing is stored', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const cases = [
    [[delayed(0), delayed(1, { callbackUrl: 'ftp://x.example/f' })], 'invalid_field', 'tasks[1].callbackUrl', /tasks\[1\]: callbackUrl must use http or https/],
    [[delayed(0), delayed(1), { delay: 5 }], 'missing_field', 'tasks[2].callbackUrl', /tasks\[2\]: callbackUrl is required/],
    [[delayed(0), delayed(1, { callbakUrl: 'http://x.example' })], 'unknown_field', 'tasks[1].callbakUrl', /unknown field 'callbakUrl'/],
    [[delayed(0, { retries: 1000 })], 'invalid_field', 'tasks[0].retries', /retries must be between 0 and 100/],
    [[delayed(0, { payload: 1, body: 'b' })], 'conflicting_fields', 'tasks[0].body', /either payload/],
    [[delayed(0), 'not an object'], 'invalid_field', 'tasks[1]', /must be a JSON object/],
    [[delayed(0, { idempotencyKey: '' })], 'invalid_field', 'tasks[0].idempotencyKey', /printable ASCII/],
  ];
  for (const [tasks, code, field, message] of cases) {
    const r = await batch(d, tasks);
    assertError(r, 400, code, field);
    assert.match(r.body.error.message, message);
  }
  assert.deepEqual(await listAll(d), []);
  assert.equal(await countTasks(d.db), 0);
});

test('the batch body itself: 1 to 1000 items, only "tasks", no Idempotency-Key header, no query', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  assertError(await batch(d, []), 400, 'invalid_field', 'tasks');
  const many = Array.from({ length: 1001 }, (_, i) => ({ callbackUrl: `http://127.0.0.1:9/${i}`, delay: 60 }));
  const tooMany = await batch(d, many);
  assertError(tooMany, 400, 'invalid_field', 'tasks');
  assert.match(tooMany.body.error.message, /more than 1000/);
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', {}), 400, 'missing_field', 'tasks');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', { tasks: delayed(0) }), 400, 'invalid_field', 'tasks');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', { tasks: [delayed(0)], queue: 'x' }), 400, 'unknown_field', 'queue');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', [delayed(0)]), 400, 'invalid_body');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', '{"tasks": [{"callbackUrl": "http://127.0.0.1:9/x"}'), 400, 'invalid_json');
  const keyed = await batch(d, [delayed(0)], { 'idempotency-key': 'k' });
  assertError(keyed, 400, 'invalid_field', 'Idempotency-Key');
  assert.match(keyed.body.error.message, /each item of tasks its own idempotencyKey/);
  assertError(await api(d.url, 'POST', '/v1/tasks/batch?queue=x', { tasks: [delayed(0)] }), 400, 'unknown_field', 'queue');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', '{"tasks": []}', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
  // The route is not a task id, and takes POST only.
  assertError(await api(d.url, 'GET', '/v1/tasks/batch'), 405, 'method_not_allowed');
  assert.equal((await api(d.url, 'GET', '/v1/tasks/batch')).headers.get('allow'), 'POST');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch/cancel'), 404, 'not_found');
  // Each item may nest as deep as a create's body (32 levels), no deeper.
  const nest = (levels) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
  const deepest = `{"tasks": [{"callbackUrl": "http://127.0.0.1:9/d", "delay": 60, "payload": ${nest(31)}}]}`;
  assert.equal((await api(d.url, 'POST', '/v1/tasks', deepest.slice(11, -2))).status, 202, 'a create takes it');
  assert.equal((await api(d.url, 'POST', '/v1/tasks/batch', deepest)).status, 202);
  const deeper = `{"tasks": [{"callbackUrl": "http://127.0.0.1:9/d", "delay": 60, "payload": ${nest(32)}}]}`;
  assert.equal((await api(d.url, 'POST', '/v1/tasks', deeper.slice(11, -2))).status, 400, 'a create refuses it');
  assertError(await api(d.url, 'POST', '/v1/tasks/batch', deeper), 400, 'invalid_json');
  assert.equal(await countTasks(d.db), 2);
});

test('an item whose destination is refused refuses the batch, as a create is refused', async (t) => {
  const s = scope(t);
  const d = await s.daemon({ private: false });
  const ok = { callbackUrl: 'https://example.com/x', delay: 3600 };
  for (const [item, field] of [
    [{ callbackUrl: 'http://127.0.0.1:8080/admin', delay: 3600 }, 'callbackUrl'],
    [{ callbackUrl: 'http://169.254.169.254/latest/meta-data' }, 'callbackUrl'],
    [{ ...ok, webhookUrl: 'http://[::1]/hook' }, 'webhookUrl'],
  ]) {
    const single = await api(d.url, 'POST', '/v1/tasks', item);
    assertError(single, 400, 'blocked_destination', field);
    const r = await batch(d, [ok, item]);
    assertError(r, 400, 'blocked_destination', `tasks[1].${field}`);
    assert.equal(r.body.error.message, `tasks[1]: ${single.body.error.message}`);
  }
  assert.equal(await countTasks(d.db), 0);
});

test('idempotency per item: a repeated batch returns the same tasks; a key reused for another item refuses it all', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const items = [delayed(0, { idempotencyKey: 'fan-0' }), delayed(1, { idempotencyKey: 'fan-1' }), delayed(2, { idempotencyKey: 'fan-2' })];
  const first = await batch(d, items);
  assert.equal(first.status, 202, JSON.stringify(first.body));
  assert.equal(first.headers.get('idempotent-replayed'), null);
  const ids = first.body.tasks.map((x) => x.id);
  assert.deepEqual(first.body.tasks.map((x) => x.idempotencyKey), ['fan-0', 'fan-1', 'fan-2']);

  // The same batch again (members in another order count as the same): 200,
  // the same tasks, each marked replayed; nothing new stored.
  const again = await batch(d, items.map((x) => Object.fromEntries(Object.entries(x).reverse())));
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(again.body.tasks.map((x) => x.id), ids);
  assert.deepEqual(again.body.tasks.map((x) => x.replayed), [true, true, true]);
  // Each as a create's replay shows it: the task as GET shows it.
  for (const x of again.body.tasks) assert.ok(Array.isArray(x.attemptHistory), JSON.stringify(x));
  assert.equal(await countTasks(d.db), 3);

  // Some old, some new: 202; only the new ones are stored.
  const mixed = await batch(d, [items[1], delayed(3, { idempotencyKey: 'fan-3' }), delayed(4)]);
  assert.equal(mixed.status, 202);
  assert.equal(mixed.body.tasks[0].id, ids[1]);
  assert.equal(mixed.body.tasks[0].replayed, true);
  assert.ok(!('replayed' in mixed.body.tasks[1]) && !('replayed' in mixed.body.tasks[2]));
  assert.equal(await countTasks(d.db), 5);

  // A key used for another request: 422 naming the item; nothing of the batch stored.
  const reused = await batch(d, [delayed(5, { idempotencyKey: 'fan-5' }), { ...items[2], delay: 60 }]);
  assertError(reused, 422, 'idempotency_key_reused', 'tasks[1].idempotencyKey');
  assert.match(reused.body.error.message, new RegExp(ids[2]));
  assert.equal(await countTasks(d.db), 5);
  // fan-5 was not taken by the refused batch.
  const fan5 = await batch(d, [delayed(5, { idempotencyKey: 'fan-5' })]);
  assert.equal(fan5.status, 202);
  assert.equal(await countTasks(d.db), 6);

  // Two items with one key: refused, nothing stored.
  const twice = await batch(d, [delayed(6, { idempotencyKey: 'same' }), delayed(7), delayed(8, { idempotencyKey: 'same' })]);
  assertError(twice, 400, 'conflicting_fields', 'tasks[2].idempotencyKey');
  assert.match(twice.body.error.message, /tasks\[2\] has the idempotencyKey of tasks\[0\]/);
  assert.equal(await countTasks(d.db), 6);

  // Keys are shared with single creates: the same item under the same key is
  // the same request, whichever route made it first.
  const single = await api(d.url, 'POST', '/v1/tasks', delayed(9), { 'idempotency-key': 'one' });
  assert.equal(single.status, 202);
  const viaBatch = await batch(d, [delayed(9, { idempotencyKey: 'one' })]);
  assert.equal(viaBatch.status, 200);
  assert.equal(viaBatch.body.tasks[0].id, single.body.id);
  const viaCreate = await api(d.url, 'POST', '/v1/tasks', delayed(0), { 'idempotency-key': 'fan-0' });
  assert.equal(viaCreate.status, 200);
  assert.equal(viaCreate.body.id, ids[0]);
  assert.equal(await countTasks(d.db), 7);
});

test('concurrent batches with the same keys make each task once', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const items = Array.from({ length: 20 }, (_, i) => delayed(i, { idempotencyKey: `race-${i}` }));
  const answers = await Promise.all(Array.from({ length: 8 }, () => batch(d, items)));
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 202]);
  const ids = answers[0].body.tasks.map((x) => x.id);
  for (const a of answers) assert.deepEqual(a.body.tasks.map((x) => x.id), ids);
  assert.equal(await countTasks(d.db), 20);
});

test('the backlog bound applies to the batch as a whole: one that does not fit is refused whole (429)', async (t) => {
  const s = scope(t);
  const d = await s.daemon({ args: ['--max-backlog', '5'] });
  assert.equal((await batch(d, [delayed(0), delayed(1), delayed(2)])).status, 202);
  for (const items of [
    [delayed(3), delayed(4), delayed(5)],
    // Keyed: decided in the write, after the keys are looked up.
    [delayed(3, { idempotencyKey: 'b-3' }), delayed(4, { idempotencyKey: 'b-4' }), delayed(5, { idempotencyKey: 'b-5' })],
  ]) {
    const r = await batch(d, items);
    assertError(r, 429, 'queue_full');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.match(r.body.error.message, /would add 3/);
    assert.equal(await countTasks(d.db), 3);
  }
  assert.equal((await batch(d, [delayed(3, { idempotencyKey: 'b-3' }), delayed(4)])).status, 202);
  assert.equal(await countTasks(d.db), 5);
  // Full: a repeat of a keyed item already taken still gets its task.
  const replay = await batch(d, [delayed(3, { idempotencyKey: 'b-3' })]);
  assert.equal(replay.status, 200);
  assertError(await batch(d, [delayed(6)]), 429, 'queue_full');
  assert.equal(await countTasks(d.db), 5);
  // More new tasks than the bound itself: never fits, so not a 429 to retry.
  for (const items of [[0, 1, 2, 3, 4, 5].map((i) => delayed(10 + i)),
    [0, 1, 2, 3, 4, 5].map((i) => delayed(10 + i, { idempotencyKey: `big-${i}` }))]) {
    const big = await batch(d, items);
    assertError(big, 400, 'invalid_field', 'tasks');
    assert.equal(big.headers.get('retry-after'), null);
    assert.match(big.body.error.message, /smaller batches/);
  }
  assert.equal(await countTasks(d.db), 5);
});

test('keys: an enqueue key may create many, a read key may not, and a tenant\'s batch is its own', async (t) => {
  const s = scope(t);
  const dir = s.tempDir();
  const conf = join(dir.dir, 'keys.conf');
  writeFileSync(conf, 'key.writer = batch-enqueue-key-0123456789 scope=enqueue\n' +
    'key.reader = batch-read-key-0123456789 scope=read\n' +
    'key.acme = batch-acme-key-0123456789 scope=admin tenant=acme\n');
  const d = await s.daemon({ args: ['--config', conf, '--api-key', 'batch-admin-key-0123456789'] });
  const bearer = (k) => ({ authorization: `Bearer batch-${k}-key-0123456789` });
  assert.equal((await batch(d, [delayed(0)], bearer('enqueue'))).status, 202);
  assertError(await batch(d, [delayed(1)], bearer('read')), 403, 'forbidden');
  assertError(await batch(d, [delayed(1)]), 401, 'unauthorized');
  const acme = await batch(d, [delayed(2, { idempotencyKey: 'k' }), delayed(3)], bearer('acme'));
  assert.equal(acme.status, 202);
  // The tenant sees its two; a key without a tenant sees all three; the
  // same key in another tenant is another task.
  assert.equal((await listAll(d, bearer('acme'))).length, 2);
  assert.equal((await listAll(d, bearer('admin'))).length, 3);
  const other = await batch(d, [delayed(2, { idempotencyKey: 'k' })], bearer('admin'));
  assert.equal(other.status, 202);
  assert.notEqual(other.body.tasks[0].id, acme.body.tasks[0].id);
  const [row] = queryDb(d.db, `SELECT tenant FROM tasks WHERE id = '${acme.body.tasks[1].id}'`);
  assert.equal(row.tenant, 'acme');
});

test('a batch of 1000 small items is accepted and every one is stored', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const items = Array.from({ length: 1000 }, (_, i) => ({ callbackUrl: `http://127.0.0.1:9/${i}`, delay: 3600, metadata: i }));
  const r = await batch(d, items);
  assert.equal(r.status, 202, JSON.stringify(r.body).slice(0, 500));
  assert.equal(r.body.tasks.length, 1000);
  assert.deepEqual(r.body.tasks.map((x) => x.metadata), items.map((_, i) => i));
  const listed = await listAll(d);
  assert.equal(listed.length, 1000);
  assert.deepEqual(listed.map((x) => x.id), r.body.tasks.map((x) => x.id));
  assert.equal(await metric(d, 'asyncqueue_tasks_accepted_total'), 1000);
  assert.equal(await countTasks(d.db), 1000);
});

test('kill -9 right after a batch\'s 202: every item is there after restart; a batch cut short is all there or not at all', async (t) => {
  const s = scope(t);
  const d1 = await s.daemon();
  const size = 50;
  const total = 60; // batches
  const killAfter = 20;
  const accepted = []; // the ids of each batch that got a 202
  let next = 0;
  let killed = false;
  // 8 clients in parallel; the daemon is killed the moment the 20th batch's
  // 202 arrives, while others are in flight.
  const client = async () => {
    while (next < total && !killed) {
      const b = next++;
      const items = Array.from({ length: size }, (_, i) => delayed(i, { metadata: { b, i } }));
      let r;
      try {
        r = await rawRequest(`${d1.url}/v1/tasks/batch`, {
          headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: items }),
        });
      } catch {
        continue; // the daemon is gone: this batch got no 202
      }
      if (r.status !== 202) continue;
      accepted.push(r.body.tasks.map((x) => x.id));
      if (accepted.length === killAfter && !killed) {
        killed = true;
        d1.proc.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, client));
  assert.ok(killed, `the daemon was killed (only ${accepted.length} batches answered)`);
  assert.equal((await d1.kill()).signal, 'SIGKILL');

  const stored = new Set(queryDb(d1.db, 'SELECT id FROM tasks').map((r) => r.id));
  const missing = accepted.flat().filter((id) => !stored.has(id));
  assert.deepEqual(missing, [], `${missing.length} tasks of batches answered 202 are not in the database`);
  // Every batch is whole or absent, answered or not.
  const perBatch = queryDb(d1.db, "SELECT json_extract(metadata, '$.b') AS b, count(*) AS n FROM tasks GROUP BY b");
  for (const { b, n } of perBatch) assert.equal(n, size, `batch ${b} has ${n} of its ${size} tasks`);

  const d2 = await s.daemon({ db: d1.db });
  const listed = await listAll(d2);
  assert.equal(listed.length, stored.size);
  const ids = new Set(listed.map((x) => x.id));
  for (const id of accepted.flat()) assert.ok(ids.has(id), `${id} is listed after the restart`);
  assert.ok(listed.every((x) => x.status === 'queued'));
});

test('kill -9 the moment a 1000-item batch is answered: all 1000 are there after restart', async (t) => {
  const s = scope(t);
  const d1 = await s.daemon();
  const items = Array.from({ length: 1000 }, (_, i) => delayed(i, { metadata: { i } }));
  const r = await rawRequest(`${d1.url}/v1/tasks/batch`, {
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: items }),
  });
  d1.proc.kill('SIGKILL');
  assert.equal(r.status, 202);
  assert.equal((await d1.kill()).signal, 'SIGKILL');
  const d2 = await s.daemon({ db: d1.db });
  const listed = await listAll(d2);
  assert.deepEqual(listed.map((x) => x.id), r.body.tasks.map((x) => x.id));
  assert.deepEqual(listed.map((x) => x.metadata.i), items.map((_, i) => i));
});
