// /metrics with many queue names. Any key that may create tasks can name new
// queues, and each used to add six series without bound: /metrics joined
// the waiting counts to the queues with a scan per row (40,000 names: 8 s a
// scrape, holding an HTTP thread), and past 64 MiB it served a text cut
// mid-line with 200, the global families lost (they came last). Now at most
// metrics_max_queues queues get series of their own (settings first, then
// waiting or running work, then the busiest), the rest summed into
// queue="(other)"; the global families come first; promtool accepts it.
// No timing is asserted here: the times are measured by hand (see the
// commit that added this file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { api } from './lib/harness.mjs';
import { daemon, listQueues } from './lib/ops.mjs';

const url = 'http://127.0.0.1:9/never'; // delayed an hour: never called

const PER_QUEUE = [
  'asyncqueue_tasks_accepted_total', 'asyncqueue_tasks_completed_total', 'asyncqueue_tasks_failed_total',
  'asyncqueue_tasks_cancelled_total', 'asyncqueue_queue_depth', 'asyncqueue_queue_inflight',
];
const GLOBAL = [
  'asyncqueue_build_info', 'asyncqueue_attempts_total', 'asyncqueue_attempt_duration_seconds',
  'asyncqueue_accept_latency_seconds', 'asyncqueue_webhook_deliveries_total', 'asyncqueue_schedule_runs_total',
  'asyncqueue_writer_batch_ops',
  'asyncqueue_writer_commit_seconds', 'asyncqueue_writer_sync_seconds', 'asyncqueue_http_requests_total',
  'asyncqueue_backlog', 'asyncqueue_inflight', 'asyncqueue_longpoll_waiters', 'asyncqueue_queues',
  'asyncqueue_queues_folded',
];

async function scrape(d) {
  const res = await fetch(`${d.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.ok(text.endsWith('\n'), 'whole lines only');
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20000 });
  assert.equal(check.error, undefined, `promtool: ${check.error}`);
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  return text;
}

/** { queue: value } of a per-queue family. */
function samples(text, family) {
  const out = {};
  for (const m of text.matchAll(new RegExp(`^${family}\\{queue="([^"]*)"\\} (\\S+)$`, 'gm'))) out[m[1]] = Number(m[2]);
  return out;
}

const plain = (text, name) => Number((text.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

/** Creates one task delayed an hour in each queue name, `width` at a time. */
async function fill(d, names, width = 16) {
  let next = 0;
  const codes = {};
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < names.length) {
      const queue = names[next++];
      const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, queue, delay: 3600 });
      codes[r.status] = (codes[r.status] ?? 0) + 1;
    }
  }));
  assert.deepEqual(codes, { 202: names.length });
}

test('thousands of queue names: /metrics is whole and valid, global families first, per-queue series bounded',
  { timeout: 180000 }, async (t) => {
    const d = await daemon(t, {
      args: ['--metrics-max-queues', '50', '--synchronous', 'normal'],
    });
    const N = 3000;
    // 64 characters, the longest a queue name may be.
    const names = Array.from({ length: N }, (_, i) => `m${String(i).padStart(5, '0')}`.padEnd(64, 'x'));
    // Settings and nothing else: listed first, though last by name and idle.
    assert.equal((await api(d.url, 'PUT', '/v1/queues/zz-configured', {})).status, 200);
    // Counts only (its task cancelled): idle, so folded behind the queues with work.
    const idle = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: url, queue: 'aa-idle', delay: 3600 });
    assert.equal(idle.status, 202);
    assert.equal((await api(d.url, 'POST', `/v1/tasks/${idle.body.id}/cancel`)).status, 200);
    await fill(d, names);

    const text = await scrape(d);
    const firstQueueFamily = text.indexOf('# HELP asyncqueue_tasks_accepted_total ');
    assert.ok(firstQueueFamily > 0);
    for (const g of GLOBAL) {
      const at = text.indexOf(`\n# TYPE ${g} `);
      assert.ok(at > 0 && at < firstQueueFamily, `${g} is there, before the per-queue families`);
    }
    assert.equal(plain(text, 'asyncqueue_queues'), N + 2);
    assert.equal(plain(text, 'asyncqueue_queues_folded'), N + 2 - 50);
    assert.equal(plain(text, 'asyncqueue_backlog'), N);
    for (const f of PER_QUEUE) {
      const s = samples(text, f);
      assert.equal(Object.keys(s).length, 51, `${f}: 50 queues and (other)`);
      assert.ok('(other)' in s && 'zz-configured' in s && !('aa-idle' in s), `${f}: ${Object.keys(s).slice(0, 5)}`);
    }
    // The sums over the series, (other) included, are the daemon's totals.
    assert.equal(sum(samples(text, 'asyncqueue_queue_depth')), N);
    assert.equal(sum(samples(text, 'asyncqueue_tasks_accepted_total')), N + 1);
    assert.equal(sum(samples(text, 'asyncqueue_tasks_cancelled_total')), 1);
    assert.equal(samples(text, 'asyncqueue_tasks_cancelled_total')['(other)'], 1, 'aa-idle is in (other)');
    const depth = samples(text, 'asyncqueue_queue_depth');
    const listed = Object.keys(depth).filter((q) => q !== '(other)' && q !== 'zz-configured');
    assert.equal(listed.length, 49);
    for (const q of listed) assert.equal(depth[q], 1, q);
    assert.equal(depth['(other)'], N - 49);

    // GET /v1/queues: every queue, by name, with its waiting task counted,
    // over pages of 1000.
    const all = await listQueues(d);
    assert.deepEqual(all.pages, [1000, 1000, 1000, 2]);
    const got = all.queues.map((q) => q.name);
    assert.deepEqual(got, ['aa-idle', ...names, 'zz-configured']);
    assert.ok(all.queues.slice(1, -1).every((q) => q.queued === 1 && q.due === 0 && !q.configured));
    const one = await api(d.url, 'GET', `/v1/queues/${names[1234]}`);
    assert.equal(one.status, 200);
    assert.deepEqual([one.body.name, one.body.queued, one.body.due], [names[1234], 1, 0]);
    assert.equal((await api(d.url, 'GET', '/v1/queues/aa-idle')).body.sinceStart.cancelled, 1);
  });

test('metrics_max_queues = 0 sums every queue into (other); the default lists a few queues each on its own',
  async (t) => {
    const none = await daemon(t, { env: { ASYNCQUEUE_METRICS_MAX_QUEUES: '0' } });
    const all = await daemon(t);
    for (const d of [none, all]) await fill(d, ['a', 'b', 'c'], 3);
    const summed = await scrape(none);
    for (const f of PER_QUEUE) assert.deepEqual(Object.keys(samples(summed, f)), ['(other)'], f);
    assert.equal(samples(summed, 'asyncqueue_queue_depth')['(other)'], 3);
    assert.equal(plain(summed, 'asyncqueue_queues_folded'), 3);
    const each = await scrape(all);
    assert.deepEqual(samples(each, 'asyncqueue_queue_depth'), { a: 1, b: 1, c: 1 });
    assert.equal(plain(each, 'asyncqueue_queues_folded'), 0);
  });
