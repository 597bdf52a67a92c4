// GET /v1/tasks: filters, order, limit bounds, cursors, and pagination that
// neither skips nor repeats a task while new tasks keep arriving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitForStatus, waitFor } from './lib/harness.mjs';
import { daemon, fake, create, assertError, perTask } from './lib/ops.mjs';

const FAR = 3600; // a delay that keeps a task queued for the whole test

/** Pages through GET /v1/tasks?<query>, returning every id and the pages. */
async function pageAll(d, query, between = async () => {}) {
  const ids = [];
  let cursor = null;
  let pages = 0;
  for (;;) {
    const q = cursor ? `${query}&cursor=${encodeURIComponent(cursor)}` : query;
    const r = await api(d.url, 'GET', `/v1/tasks?${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(Array.isArray(r.body.tasks));
    assert.ok('nextCursor' in r.body, 'nextCursor must always be present (null at the end)');
    ids.push(...r.body.tasks.map((x) => x.id));
    pages++;
    assert.ok(pages < 1000, 'pagination does not end');
    if (r.body.nextCursor === null) return { ids, pages };
    assert.equal(typeof r.body.nextCursor, 'string');
    cursor = r.body.nextCursor;
    await between();
  }
}

test('list filters by status list, queue and created time; newest first by default, order=asc', async (t) => {
  const target = await fake(t, perTask([{ status: 200 }]));
  const bad = await fake(t, [{ status: 400 }]); // 4xx: failed at once, not retried
  const d = await daemon(t);

  // Sequential creates, so creation order is known. Statuses end up:
  // completed (a0, b0), failed (a1, b1), cancelled (a2), queued (a3, b2).
  const all = [];
  const mk = async (name, queue, body) => {
    const task = await create(d, { queue, ...body });
    all.push({ name, queue, id: task.id, createdAt: task.createdAt });
    return task;
  };
  const a0 = await mk('a0', 'qa', { callbackUrl: target.url('/a0') });
  const b0 = await mk('b0', 'qb', { callbackUrl: target.url('/b0') });
  const a1 = await mk('a1', 'qa', { callbackUrl: bad.url('/a1'), retries: 0 });
  const b1 = await mk('b1', 'qb', { callbackUrl: bad.url('/b1'), retries: 0 });
  const a2 = await mk('a2', 'qa', { callbackUrl: target.url('/a2'), delay: FAR });
  const a3 = await mk('a3', 'qa', { callbackUrl: target.url('/a3'), delay: FAR });
  const b2 = await mk('b2', 'qb', { callbackUrl: target.url('/b2'), delay: FAR });
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${a2.id}/cancel`)).status, 200);
  for (const x of [a0, b0]) await waitForStatus(d.url, x.id, 'completed');
  for (const x of [a1, b1]) await waitForStatus(d.url, x.id, 'failed');

  const list = async (q) => {
    const r = await api(d.url, 'GET', `/v1/tasks?${q}`);
    assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const ids = (b) => b.tasks.map((x) => x.id);
  const newestFirst = all.map((x) => x.id).reverse();

  // No filter: everything, newest first; one page, so nextCursor is null.
  const everything = await list('limit=200');
  assert.deepEqual(ids(everything), newestFirst);
  assert.equal(everything.nextCursor, null);
  assert.deepEqual(ids(await list('')), newestFirst, 'desc is the default order');
  assert.deepEqual(ids(await list('order=desc')), newestFirst);
  assert.deepEqual(ids(await list('order=asc')), all.map((x) => x.id));
  // Listed tasks carry no attemptHistory or webhook.
  for (const x of everything.tasks) {
    assert.ok(!('attemptHistory' in x) && !('webhook' in x), JSON.stringify(x));
  }

  // status: one, and a comma-separated list.
  assert.deepEqual(ids(await list('status=failed')), [b1.id, a1.id]);
  assert.deepEqual(ids(await list('status=failed,cancelled')), [a2.id, b1.id, a1.id]);
  assert.deepEqual(ids(await list('status=queued')), [b2.id, a3.id]);
  assert.deepEqual(ids(await list('status=completed,queued&order=asc')), [a0.id, b0.id, a3.id, b2.id]);
  // A long list is read whole (a 128-byte copy once dropped the names past it),
  // empty names are skipped, and an unknown one is refused, however far in.
  const long = `${'queued,'.repeat(9)}${'running,'.repeat(8)},,failed`;
  assert.ok(long.length > 128);
  assert.deepEqual(ids(await list(`status=${long}`)), [b2.id, a3.id, b1.id, a1.id]);
  assertError(await api(d.url, 'GET', `/v1/tasks?status=${'queued,'.repeat(20)}faild`), 400, 'invalid_field', 'status');
  for (const x of (await list('status=failed,cancelled')).tasks) {
    assert.ok(['failed', 'cancelled'].includes(x.status), x.status);
  }

  // queue, alone and with status.
  assert.deepEqual(ids(await list('queue=qb')), [b2.id, b1.id, b0.id]);
  assert.deepEqual(ids(await list('queue=qa&status=queued,cancelled')), [a3.id, a2.id]);
  assert.deepEqual(ids(await list('queue=nosuchqueue')).length, 0);

  // createdAfter is inclusive (>=), createdBefore exclusive (<). Expected
  // sets come from the createdAt values, so equal milliseconds are fine.
  const lo = all[2].createdAt;
  const hi = all[5].createdAt;
  const between = all.filter((x) => x.createdAt >= lo && x.createdAt < hi).map((x) => x.id).reverse();
  assert.ok(between.length >= 1 && between.includes(a1.id));
  assert.ok(!between.includes(a3.id), 'createdBefore is exclusive');
  assert.deepEqual(ids(await list(`createdAfter=${lo}&createdBefore=${hi}`)), between);
  const after = all.filter((x) => x.createdAt >= lo).map((x) => x.id).reverse();
  assert.deepEqual(ids(await list(`createdAfter=${lo}`)), after);
  const before = all.filter((x) => x.createdAt < hi).map((x) => x.id).reverse();
  assert.deepEqual(ids(await list(`createdBefore=${hi}`)), before);
  // Combined with queue and status.
  const qaFailedAfter = all.filter((x) => x.queue === 'qa' && x.createdAt >= lo && x.name === 'a1');
  assert.deepEqual(ids(await list(`createdAfter=${lo}&queue=qa&status=failed`)), qaFailedAfter.map((x) => x.id));
  assertError(await api(d.url, 'GET', '/v1/tasks?createdAfter=yesterday'), 400, 'invalid_field', 'createdAfter');
  assertError(await api(d.url, 'GET', '/v1/tasks?createdBefore=2026-13-45T99:00:00Z'), 400, 'invalid_field', 'createdBefore');
  assertError(await api(d.url, 'GET', '/v1/tasks?status=done'), 400, 'invalid_field', 'status');
  assertError(await api(d.url, 'GET', '/v1/tasks?order=sideways'), 400, 'invalid_field', 'order');
  // A NUL (%00) would cut the value short as a C string: refused, not read as its start.
  assertError(await api(d.url, 'GET', '/v1/tasks?status=queued%00x'), 400, 'invalid_field', 'status');
  assertError(await api(d.url, 'GET', '/v1/tasks?queue=default%00x'), 400, 'invalid_field', 'queue');
  assertError(await api(d.url, 'GET', '/v1/tasks?order=asc%00x'), 400, 'invalid_field', 'order');
  // In the path too: /v1/tasks/<id>%00x is no task, and a queue named
  // trunc%00zzz is not queue trunc (a NUL cut the path: DELETE acted on trunc).
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${a0.id}`)).status, 200);
  assertError(await api(d.url, 'GET', `/v1/tasks/${a0.id}%00x`), 404, 'not_found');
  assert.equal((await api(d.url, 'PUT', '/v1/queues/trunc', { maxConcurrency: 2 })).status, 200);
  for (const [method, path, body] of [['DELETE', '/v1/queues/trunc%00zzz'], ['PUT', '/v1/queues/trunc%00x', { maxConcurrency: 9 }],
    ['POST', '/v1/queues/trunc%00x/pause']]) {
    const r = await api(d.url, method, path, body);
    assert.ok(r.status === 400 || r.status === 404, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const trunc = await api(d.url, 'GET', '/v1/queues/trunc');
  assert.equal(trunc.status, 200);
  assert.equal(trunc.body.maxConcurrency, 2);
  assert.equal(trunc.body.paused, false);
});

test('list limit is 1 to 200 and a bad cursor is refused', async (t) => {
  const d = await daemon(t);
  const made = [];
  for (let i = 0; i < 3; i++) made.push((await create(d, { callbackUrl: 'http://127.0.0.1:9/x', delay: FAR })).id);

  for (const bad of ['0', '201', '-1', '1.5', 'abc', '%2010', '+10', '10%00']) {
    assertError(await api(d.url, 'GET', `/v1/tasks?limit=${bad}`), 400, 'invalid_field', 'limit');
  }
  const one = await api(d.url, 'GET', '/v1/tasks?limit=1');
  assert.equal(one.status, 200);
  assert.deepEqual(one.body.tasks.map((x) => x.id), [made[2]]);
  assert.equal(typeof one.body.nextCursor, 'string', 'more tasks follow, so nextCursor is set');
  const max = await api(d.url, 'GET', '/v1/tasks?limit=200');
  assert.equal(max.status, 200);
  assert.equal(max.body.tasks.length, 3);
  assert.equal(max.body.nextCursor, null);

  // The cursor of page 1 leads to exactly the rest.
  const rest = await api(d.url, 'GET', `/v1/tasks?limit=5&cursor=${encodeURIComponent(one.body.nextCursor)}`);
  assert.equal(rest.status, 200);
  assert.deepEqual(rest.body.tasks.map((x) => x.id), [made[1], made[0]]);
  assert.equal(rest.body.nextCursor, null);

  for (const bad of ['zzz', 'd', 'd-5', 'x'.repeat(300), '12abc', 'd 5', 'd+5']) {
    assertError(await api(d.url, 'GET', `/v1/tasks?cursor=${encodeURIComponent(bad)}`), 400, 'invalid_field', 'cursor');
  }
});

test('a query parameter the route does not read, or one given twice, is refused (a typo listed every task)', async (t) => {
  const d = await daemon(t);
  const q = await create(d, { callbackUrl: 'http://127.0.0.1:9/x', delay: FAR });
  assert.equal((await api(d.url, 'GET', '/v1/tasks?status=failed')).body.tasks.length, 0);
  // Before: statuss= and Status= were ignored and every task listed; the second
  // status was ignored and the first taken.
  for (const [path, field] of [['/v1/tasks?statuss=failed', 'statuss'], ['/v1/tasks?Status=failed', 'Status'],
    [`/v1/tasks/${q.id}?wiat=5`, 'wiat'], ['/v1/queues?x=1', 'x'], ['/v1/stats?minute=5', 'minute'],
    [`/v1/tasks/${q.id}/attempts?limit=1`, 'limit']]) {
    const r = await api(d.url, 'GET', path);
    assertError(r, 400, 'unknown_field', field);
    assert.match(r.body.error.message, new RegExp(`unknown query parameter '${field}'; GET /v1/\\S+ takes`));
  }
  assert.match((await api(d.url, 'GET', '/v1/tasks?limt=5')).body.error.message,
    /takes status, queue, schedule, createdAfter, createdBefore, limit, order, cursor$/);
  assertError(await api(d.url, 'GET', '/v1/tasks?status=failed&status=queued'), 400, 'invalid_field', 'status');
  // A parameter with no value, or a status list naming none, was read as
  // absent: every task listed.
  assertError(await api(d.url, 'GET', '/v1/tasks?limit'), 400, 'invalid_field', 'limit');
  for (const empty of ['', ',', ',,']) {
    assertError(await api(d.url, 'GET', `/v1/tasks?status=${empty}`), 400, 'invalid_field', 'status');
  }
  // A body-taking method reads no query: POST /v1/tasks?queue=q would have put
  // the task on the default queue.
  const before = (await api(d.url, 'GET', '/v1/tasks')).body.tasks.length;
  assertError(await api(d.url, 'POST', '/v1/tasks?queue=q', { callbackUrl: 'http://127.0.0.1:9/x', delay: FAR }),
    400, 'unknown_field', 'queue');
  assertError(await api(d.url, 'POST', `/v1/tasks/${q.id}/cancel?force=1`), 400, 'unknown_field', 'force');
  assert.equal((await api(d.url, 'GET', '/v1/tasks')).body.tasks.length, before, 'nothing stored');
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${q.id}`)).body.status, 'queued', 'not cancelled');
  // What the routes read still works, and paths outside /v1/ take any query.
  assert.equal((await api(d.url, 'GET', '/v1/tasks?status=queued&limit=5&order=asc')).body.tasks.length, 1);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${q.id}?wait=0`)).status, 200);
  assert.equal((await api(d.url, 'GET', '/v1/stats?minutes=5')).status, 200);
  assert.equal((await api(d.url, 'GET', '/healthz?probe=1')).status, 200);
});

test('paging while tasks keep arriving: every earlier task exactly once, no duplicates, nextCursor null at the end', async (t) => {
  const d = await daemon(t, { args: ['--synchronous', 'normal'] });
  const before = [];
  // 60 tasks, created 6 at a time (order between concurrent creates is
  // whatever the daemon committed; the test only needs the set).
  for (let i = 0; i < 10; i++) {
    const batch = await Promise.all(Array.from({ length: 6 }, (_, k) =>
      create(d, { callbackUrl: `http://127.0.0.1:9/pre${i}-${k}`, delay: FAR })));
    before.push(...batch.map((x) => x.id));
  }

  // The inserter creates tasks until told to stop; the pager waits for at
  // least one new insert between pages, so inserts truly interleave.
  // In asc order the pager chases the inserter, so the inserter is bounded.
  let stop = false;
  let finished = false;
  const inserted = [];
  const inserter = (async () => {
    try {
      while (!stop && inserted.length < 300) {
        inserted.push((await create(d, { callbackUrl: 'http://127.0.0.1:9/new', delay: FAR })).id);
      }
    } finally { finished = true; }
  })();
  const afterOneInsert = async () => {
    const n = inserted.length;
    await waitFor(() => inserted.length > n || finished, { what: 'an insert between pages' });
  };

  const results = [];
  try {
    for (const order of ['desc', 'asc']) {
      const insertedBefore = inserted.length;
      const { ids, pages } = await pageAll(d, `limit=7&order=${order}`, afterOneInsert);
      results.push({ order, ids, pages, insertedDuring: inserted.length - insertedBefore });
    }
  } finally {
    stop = true;
    await inserter;
  }
  for (const { order, ids, pages, insertedDuring } of results) {
    assert.ok(pages >= 9, `expected many pages, got ${pages}`);
    assert.ok(insertedDuring >= Math.min(pages - 1, 20), `${order}: tasks were inserted between pages`);
    const seen = new Map();
    for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
    const dups = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(dups, [], `${order}: duplicated tasks`);
    const missing = before.filter((id) => !seen.has(id));
    assert.deepEqual(missing, [], `${order}: tasks that existed before page 1 were skipped`);
    const known = new Set([...before, ...inserted]);
    assert.deepEqual(ids.filter((id) => !known.has(id)), [], 'only tasks of this test');
    // The inserter created its tasks one after another, so across page
    // boundaries they must come in insertion order (reversed for desc).
    const pos = new Map(inserted.map((id, i) => [id, i]));
    const got = ids.filter((id) => pos.has(id)).map((id) => pos.get(id));
    const want = [...got].sort((a, b) => (order === 'asc' ? a - b : b - a));
    assert.deepEqual(got, want, `${order}: pages out of insertion order`);
  }
});

test('a page ends once its tasks carry 8 MiB of bodies, with a nextCursor: large payloads do not make one huge answer', async (t) => {
  const d = await daemon(t);
  const payload = 'x'.repeat(900 * 1024); // 12 of these: 10.5 MiB in all
  const ids = [];
  for (let i = 0; i < 12; i++) {
    ids.push((await create(d, { callbackUrl: 'http://127.0.0.1:9/big', queue: 'big', delay: 3600, payload })).id);
  }
  const first = await api(d.url, 'GET', '/v1/tasks?queue=big&order=asc');
  assert.equal(first.status, 200);
  // 10 tasks make 8.8 MiB: the page ends there (it held all 12 before).
  assert.deepEqual(first.body.tasks.map((x) => x.id), ids.slice(0, 10));
  assert.ok(first.body.nextCursor, 'a cursor to go on');
  const rest = await api(d.url, 'GET', `/v1/tasks?queue=big&order=asc&cursor=${first.body.nextCursor}`);
  assert.deepEqual(rest.body.tasks.map((x) => x.id), ids.slice(10));
  assert.equal(rest.body.nextCursor, null);
  // Newest first, the same.
  const desc = await api(d.url, 'GET', '/v1/tasks?queue=big');
  assert.deepEqual(desc.body.tasks.map((x) => x.id), ids.slice(2).reverse());
});
