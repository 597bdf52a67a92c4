// Idempotency: a retried create never makes a second task, whether the key
// comes as a header or a field, and even when the requests race.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, countTasks } from './lib/harness.mjs';
import { createHash } from 'node:crypto';
import { daemon, create, assertError, sql } from './lib/ops.mjs';

// Delayed tasks: nothing is called, the tests only look at what is stored.
const body = { callbackUrl: 'http://127.0.0.1:9/report', payload: { order: 1234 }, delay: 3600 };

test('same Idempotency-Key and body: 200, the same task, Idempotent-Replayed: true, one row', async (t) => {
  const d = await daemon(t);
  const first = await api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'order-1234' });
  assert.equal(first.status, 202);
  assert.notEqual(first.headers.get('idempotent-replayed'), 'true');
  assert.equal(first.body.idempotencyKey, 'order-1234');
  assert.equal(first.body.replayed, undefined);

  // The same JSON with other whitespace, or its members in another order (at
  // any depth: JSON objects are unordered), is the same request.
  const spaced = JSON.stringify(body, null, 4);
  const reordered = '{"delay":3600,"payload":{"order":1234},"callbackUrl":"http://127.0.0.1:9/report"}';
  const nested = { callbackUrl: 'http://127.0.0.1:9/n', payload: { a: 1, b: { y: [{ q: 1, p: 2 }], x: 2 } }, delay: 3600 };
  const nestedFirst = await api(d.url, 'POST', '/v1/tasks', nested, { 'idempotency-key': 'nested' });
  assert.equal(nestedFirst.status, 202);
  const nestedAgain = await api(d.url, 'POST', '/v1/tasks',
    '{"payload":{"b":{"x":2,"y":[{"p":2,"q":1}]},"a":1},"delay":3600,"callbackUrl":"http://127.0.0.1:9/n"}',
    { 'idempotency-key': 'nested' });
  assert.equal(nestedAgain.status, 200, JSON.stringify(nestedAgain.body));
  assert.equal(nestedAgain.body.id, nestedFirst.body.id);
  // Array order does count: another request.
  assertError(await api(d.url, 'POST', '/v1/tasks',
    { ...nested, payload: { a: 1, b: { y: [{ q: 1, p: 2 }, 3], x: 2 } } }, { 'idempotency-key': 'nested' }),
  422, 'idempotency_key_reused');
  for (const b of [body, spaced, reordered]) {
    const again = await api(d.url, 'POST', '/v1/tasks', b, { 'idempotency-key': 'order-1234' });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.id, first.body.id);
    assert.equal(again.body.replayed, true, 'marked as a batch marks such an item');
    assert.ok(Array.isArray(again.body.attemptHistory), 'the task as GET shows it');
  }
  assert.equal(await countTasks(d.db), 2);

  // The same key with a different request: 422, nothing stored.
  const other = await api(d.url, 'POST', '/v1/tasks', { ...body, payload: { order: 9999 } },
    { 'idempotency-key': 'order-1234' });
  assertError(other, 422, 'idempotency_key_reused');
  assert.equal(await countTasks(d.db), 2);

  // Another key is another task.
  const second = await api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'order-1235' });
  assert.equal(second.status, 202);
  assert.notEqual(second.body.id, first.body.id);
  assert.equal(await countTasks(d.db), 3);
});

test('the key as the idempotencyKey field works the same, and equals the header form', async (t) => {
  const d = await daemon(t);
  const first = await create(d, { ...body, idempotencyKey: 'field-key' });
  assert.equal(first.idempotencyKey, 'field-key');

  const again = await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: 'field-key' });
  assert.equal(again.status, 200);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal(again.body.id, first.id);

  // "The same request" ignores idempotencyKey, so the header form matches.
  const viaHeader = await api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'field-key' });
  assert.equal(viaHeader.status, 200, JSON.stringify(viaHeader.body));
  assert.equal(viaHeader.body.id, first.id);
  // Both, equal: fine. Both, different: refused.
  const both = await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: 'field-key' },
    { 'idempotency-key': 'field-key' });
  assert.equal(both.status, 200);
  assert.equal(both.body.id, first.id);
  assert.equal((await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: 'a' },
    { 'idempotency-key': 'b' })).status, 400);
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...body, delay: 5, idempotencyKey: 'field-key' }),
    422, 'idempotency_key_reused');
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: '' }), 400, 'invalid_field', 'idempotencyKey');
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...body, idempotencyKey: 'x'.repeat(256) }),
    400, 'invalid_field', 'idempotencyKey');
  assert.equal(await countTasks(d.db), 1);
});

test('20 concurrent creates with one key make exactly one task, and every answer carries its id', async (t) => {
  const d = await daemon(t);
  const answers = await Promise.all(Array.from({ length: 20 }, () =>
    api(d.url, 'POST', '/v1/tasks', body, { 'idempotency-key': 'race-1' })));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, ...Array(18).fill(200), 202].sort(), `statuses: ${statuses}`);
  const ids = new Set(answers.map((a) => a.body.id));
  assert.equal(ids.size, 1, `ids: ${[...ids]}`);
  for (const a of answers.filter((x) => x.status === 200)) {
    assert.equal(a.headers.get('idempotent-replayed'), 'true');
  }
  assert.equal(await countTasks(d.db), 1);
  const [id] = ids;
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${id}`)).body.idempotencyKey, 'race-1');
});

test('a key stored by a build that hashed members in the order they came still matches after an upgrade', async (t) => {
  const d = await daemon(t);
  const first = await create(d, { callbackUrl: 'http://127.0.0.1:9/legacy', delay: 3600 });
  // Members not in name order: callbackUrl, payload, delay. Builds before
  // 2026-11-29 hashed the request as it came (cJSON prints what JSON.stringify
  // does for this body); the upgrade made their keys answer 422.
  const legacy = { callbackUrl: 'http://127.0.0.1:9/legacy', payload: { n: 1 }, delay: 3600 };
  const hash = createHash('sha256').update(JSON.stringify(legacy)).digest('hex');
  sql(d.db, `PRAGMA busy_timeout = 5000; INSERT INTO idempotency (key, request_hash, task_id, created_at)
    VALUES (char(31) || 'legacy-key', '${hash}', '${first.id}', ${Date.now()})`);
  const again = await api(d.url, 'POST', '/v1/tasks', legacy, { 'idempotency-key': 'legacy-key' });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.id, first.id);
  // Another request under that key is still another request.
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...legacy, delay: 60 }, { 'idempotency-key': 'legacy-key' }),
    422, 'idempotency_key_reused');
  assert.equal(await countTasks(d.db), 1);
});

test('numbers count by their exact value: integers a double cannot tell apart are two requests', async (t) => {
  const d = await daemon(t);
  const send = (n, key = 'big') => api(d.url, 'POST', '/v1/tasks',
    `{"callbackUrl": "http://127.0.0.1:9/big", "payload": {"n": ${n}}, "delay": 3600}`, { 'idempotency-key': key });
  const first = await send('12345678901234567891');
  assert.equal(first.status, 202);
  // 12345678901234567890 and ...891 are one double (1.2345678901234567e19):
  // hashed as parsed, the second was a replay of a task whose payload it is not.
  assertError(await send('12345678901234567890'), 422, 'idempotency_key_reused');
  // The same value spelled otherwise is the same request.
  for (const same of ['12345678901234567891.0', '1.2345678901234567891e19', '123456789012345678910E-1']) {
    const again = await send(same);
    assert.equal(again.status, 200, `${same}: ${JSON.stringify(again.body)}`);
    assert.equal(again.body.id, first.body.id);
  }
  // 0.1 and 0.10000000000000001 are one double, two values.
  assert.equal((await send('0.1', 'tenth')).status, 202);
  assertError(await send('0.10000000000000001', 'tenth'), 422, 'idempotency_key_reused');
  assert.equal((await send('0.100', 'tenth')).status, 200);
  assert.equal((await send('-0', 'zero')).status, 202);
  assert.equal((await send('0.0e5', 'zero')).status, 200, '-0 and 0 are one value');
  // A batch's items are compared the same way, and a batch's key is a create's.
  const item = (n) => `{"callbackUrl": "http://127.0.0.1:9/big", "payload": {"n": ${n}}, "delay": 3600, "idempotencyKey": "big-b"}`;
  const batch = (n, name = 'tasks') => api(d.url, 'POST', '/v1/tasks/batch', `{"${name}": [${item(n)}]}`);
  assert.equal((await batch('98765432109876543211')).status, 202);
  assertError(await batch('98765432109876543210'), 422, 'idempotency_key_reused');
  assertError(await batch('98765432109876543210', 'ta\\u0073ks'), 422, 'idempotency_key_reused');
  assert.equal((await batch('9.8765432109876543211e19', 'ta\\u0073ks')).status, 200);
  assert.equal(await countTasks(d.db), 4);
});

test('a key stored by a build that hashed numbers as doubles still matches its own request', async (t) => {
  const d = await daemon(t);
  const first = await create(d, { callbackUrl: 'http://127.0.0.1:9/legacy', delay: 3600 });
  // Builds before 2026-11-30 hashed the request with its members in name
  // order, printed by cJSON (numbers as doubles): what JSON.stringify prints
  // for this body, its members sorted.
  const legacy = { callbackUrl: 'http://127.0.0.1:9/legacy', delay: 3600, payload: { a: 0.5, n: 1e21 } };
  const hash = createHash('sha256').update(JSON.stringify(legacy)).digest('hex');
  sql(d.db, `PRAGMA busy_timeout = 5000; INSERT INTO idempotency (key, request_hash, task_id, created_at)
    VALUES (char(31) || 'double-key', '${hash}', '${first.id}', ${Date.now()})`);
  const again = await api(d.url, 'POST', '/v1/tasks',
    '{"callbackUrl":"http://127.0.0.1:9/legacy","delay":3600,"payload":{"a":0.5,"n":1e21}}',
    { 'idempotency-key': 'double-key' });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.id, first.id);
  assertError(await api(d.url, 'POST', '/v1/tasks', { ...legacy, delay: 60 }, { 'idempotency-key': 'double-key' }),
    422, 'idempotency_key_reused');
});

test('payload and metadata are kept as written when their names are written with escapes', async (t) => {
  const d = await daemon(t);
  const r = await api(d.url, 'POST', '/v1/tasks',
    '{"callbackUrl": "http://127.0.0.1:9/esc", "delay": 3600, "\\u0070ayload": {"n": 12345678901234567891, "x": 1.50}, "met\\u0061data": {"m": 2.0}}');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const row = sql(d.db, `SELECT CAST(body AS TEXT) || '|' || metadata FROM tasks WHERE id = '${r.body.id}'`).trim();
  assert.equal(row, '{"n": 12345678901234567891, "x": 1.50}|{"m": 2.0}');
});
