// Named queue settings: from the config file (queue.<name>.<key>) and from
// PUT /v1/queues/{name}; the queue's default retries/timeout apply to tasks
// that give none; validation; DELETE forgets the settings, not the tasks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, tempDir } from './lib/harness.mjs';
import { daemon, create, assertError } from './lib/ops.mjs';

const url = 'http://127.0.0.1:9/never'; // delayed or paused: never called

test('queue settings from the config file show in GET /v1/queues and give tasks their defaults', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const conf = join(tmp.dir, 'aq.conf');
  writeFileSync(conf, [
    'queue.cq.max_concurrency = 4', 'queue.cq.rate = 120/m', 'queue.cq.burst = 2',
    'queue.cq.retries = 1', 'queue.cq.timeout = 7s', 'queue.cq.paused = true', '',
  ].join('\n'));
  const d = await daemon(t, { args: ['--config', conf] });

  const q = await api(d.url, 'GET', '/v1/queues/cq');
  assert.equal(q.status, 200);
  assert.deepEqual(
    [q.body.name, q.body.configured, q.body.paused, q.body.maxConcurrency, q.body.ratePerSecond, q.body.burst,
      q.body.defaultRetries, q.body.defaultTimeout],
    ['cq', true, true, 4, 2, 2, 1, 7]);
  const own = await create(d, { callbackUrl: url, queue: 'cq' });
  assert.equal(own.retries, 1, "the queue's default retries");
  assert.equal(own.timeout, 7, "the queue's default timeout");
  const given = await create(d, { callbackUrl: url, queue: 'cq', retries: 5, timeout: 9 });
  assert.equal(given.retries, 5, 'a task that gives retries keeps them');
  assert.equal(given.timeout, 9);
  const plain = await create(d, { callbackUrl: url, delay: 3600 });
  assert.equal(plain.retries, 3, 'other queues keep the daemon default');
  assert.equal(plain.timeout, 300);

  const all = (await api(d.url, 'GET', '/v1/queues')).body.queues;
  const names = all.map((x) => x.name);
  assert.ok(names.includes('cq') && names.includes('default'), names.join(','));
  assert.equal(all.find((x) => x.name === 'cq').queued, 2);
});

test('PUT sets every setting (absent ones take defaults), validates, and DELETE forgets them', async (t) => {
  const d = await daemon(t);
  const put = await api(d.url, 'PUT', '/v1/queues/api-q', { defaultRetries: 0, defaultTimeout: 2.5, maxConcurrency: 2 });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual([put.body.configured, put.body.defaultRetries, put.body.defaultTimeout, put.body.maxConcurrency, put.body.paused],
    [true, 0, 2.5, 2, false]);
  const task = await create(d, { callbackUrl: url, queue: 'api-q', delay: 3600 });
  assert.equal(task.retries, 0);
  assert.equal(task.timeout, 2.5);

  // A second PUT replaces all settings: maxConcurrency goes back to 0.
  const again = await api(d.url, 'PUT', '/v1/queues/api-q', { ratePerSecond: 0.5 });
  assert.deepEqual([again.body.maxConcurrency, again.body.ratePerSecond, again.body.defaultRetries],
    [0, 0.5, null]);

  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { maxConcurrency: -1 }), 400, 'invalid_field', 'maxConcurrency');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { ratePerSecond: -2 }), 400, 'invalid_field', 'ratePerSecond');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { maxConcurency: 1 }), 400, 'unknown_field');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { defaultRetries: 1000 }), 400, 'invalid_field', 'defaultRetries');
  assertError(await api(d.url, 'PUT', '/v1/queues/api-q', { defaultTimeout: 0 }), 400, 'invalid_field', 'defaultTimeout');
  assert.equal((await api(d.url, 'PUT', `/v1/queues/${'q'.repeat(65)}`, {})).status, 400);
  assert.equal((await api(d.url, 'GET', '/v1/queues/api-q')).body.ratePerSecond, 0.5, 'refused PUTs change nothing');

  assert.equal((await api(d.url, 'DELETE', '/v1/queues/api-q')).status, 204);
  assertError(await api(d.url, 'DELETE', '/v1/queues/api-q'), 404, 'not_found');
  const gone = await api(d.url, 'GET', '/v1/queues/api-q');
  assert.equal(gone.status, 200, 'the queue still has a task');
  assert.deepEqual([gone.body.configured, gone.body.ratePerSecond, gone.body.queued], [false, 0, 1]);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${task.id}`)).body.status, 'queued', 'tasks stay');
  assertError(await api(d.url, 'DELETE', '/v1/queues/never-configured'), 404, 'not_found');
});

test('every queue is listed and reachable however many there are (a fixed 1024 hid the rest: 404 after a PUT that took)', async (t) => {
  const N = 1100;
  // /metrics gives at most metrics_max_queues (1000) queues series of their
  // own (ops-metrics.test.mjs); here it may give them all.
  const d = await daemon(t, { args: ['--metrics-max-queues', String(N)] });
  const names = Array.from({ length: N }, (_, i) => `m${String(i).padStart(4, '0')}`);
  for (let i = 0; i < N; i += 50) {
    const rs = await Promise.all(names.slice(i, i + 50).map((n) => api(d.url, 'PUT', `/v1/queues/${n}`, { maxConcurrency: 2 })));
    for (const r of rs) assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const list = await api(d.url, 'GET', '/v1/queues');
  assert.equal(list.body.queues.length, N);
  const last = await api(d.url, 'GET', `/v1/queues/${names[N - 1]}`);
  assert.equal(last.status, 200);
  assert.equal(last.body.maxConcurrency, 2);
  const paused = await api(d.url, 'POST', `/v1/queues/${names[N - 7]}/pause`);
  assert.equal(paused.status, 200, JSON.stringify(paused.body));
  assert.equal(paused.body.paused, true);
  const metrics = (await api(d.url, 'GET', '/metrics')).body;
  assert.match(metrics, new RegExp(`queue="${names[N - 1]}"`));
  assert.match(metrics, /^asyncqueue_queues_folded 0$/m);
});
