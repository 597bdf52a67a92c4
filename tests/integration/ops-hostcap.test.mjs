// --max-per-host: never more calls in flight to one host:port than the cap,
// and a slow host does not starve another one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitForStatus } from './lib/harness.mjs';
import { daemon, fake, create } from './lib/ops.mjs';

// A claim stops at each host's free slots: six tasks due at once to a host
// capped at 2 start two at a time.
test('max-per-host 2: six slow calls to one host run at most two at a time; another host is served meanwhile', async (t) => {
  const slow = await fake(t, [{ status: 200, delayMs: 300 }]);
  const other = await fake(t, [{ status: 200 }]);
  const d = await daemon(t, { args: ['--max-per-host', '2'] });

  const slowTasks = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    create(d, { callbackUrl: slow.url(`/s${i}`) })));
  await slow.waitForRequests(2);
  const otherTasks = [await create(d, { callbackUrl: other.url('/o1') }), await create(d, { callbackUrl: other.url('/o2') })];
  for (const x of otherTasks) await waitForStatus(d.url, x.id, 'completed');
  // The other host was served while the slow host still had a backlog.
  const slowDoneSoFar = slow.requests.filter((r) => r.endAt !== undefined).length;
  assert.ok(slowDoneSoFar < 6, `the other host waited for the slow one (${slowDoneSoFar} of 6 slow calls done)`);

  for (const x of slowTasks) await waitForStatus(d.url, x.id, 'completed');
  assert.equal(slow.requests.length, 6);
  assert.equal(slow.maxInflight, 2, 'at most 2 at once, and the cap allows 2');
  // Also from the timestamps: at any call's start, at most 2 were open.
  for (const r of slow.requests) {
    const open = slow.requests.filter((x) => x.at <= r.at && x.closedAt > r.at).length;
    assert.ok(open <= 2, `${open} calls open at ${r.at}`);
  }
});

test('max-inflight 2: six slow calls over three hosts never run more than two at once in all', async (t) => {
  const fakes = [];
  for (let i = 0; i < 3; i++) fakes.push(await fake(t, [{ status: 200, delayMs: 300 }]));
  const d = await daemon(t, { args: ['--max-inflight', '2'] });
  const tasks = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    create(d, { callbackUrl: fakes[i % 3].url(`/g${i}`) })));
  for (const x of tasks) await waitForStatus(d.url, x.id, 'completed');
  const all = fakes.flatMap((f) => f.requests);
  assert.equal(all.length, 6);
  let most = 0;
  for (const r of all) most = Math.max(most, all.filter((x) => x.at <= r.at && x.closedAt > r.at).length);
  assert.equal(most, 2, 'at most 2 calls open at any call start, and 2 do run together');
});

// A FIFO queue's task waiting for its retry holds the queue, and when its
// time comes it waits for room on its host like any task. It was claimed
// whatever its host's calls: with a cap of 1, its retry ran beside another
// queue's call (found by an audit).
test('max-per-host 1: a FIFO queue\'s retry waits for room on its host too', async (t) => {
  let failed = false;
  const host = await fake(t, (req) => {
    if (req.url === '/fifo-first' && !failed) { failed = true; return { status: 500 }; }
    return { status: 200, delayMs: 250 };
  });
  const d = await daemon(t, { args: ['--max-per-host', '1', '--retry-base', '200ms', '--retry-jitter', 'false'] });
  assert.equal((await api(d.url, 'PUT', '/v1/queues/fifo', { maxConcurrency: 1 })).status, 200);
  const first = await create(d, { callbackUrl: host.url('/fifo-first'), queue: 'fifo', retries: 2 });
  await host.waitForRequests(1); // its first attempt failed: the retry is due in 200 ms
  const second = await create(d, { callbackUrl: host.url('/fifo-second'), queue: 'fifo' });
  const plain = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    create(d, { callbackUrl: host.url(`/plain-${i}`), queue: 'plain' })));
  for (const x of [first, second, ...plain]) await waitForStatus(d.url, x.id, 'completed');
  assert.equal(host.maxInflight, 1, 'one call at a time to the host, the retry too');
  for (const r of host.requests) {
    const open = host.requests.filter((x) => x.at <= r.at && x.closedAt > r.at).length;
    assert.ok(open <= 1, `${open} calls open when ${r.url} started`);
  }
  const fifo = host.requests.filter((r) => r.url.startsWith('/fifo')).map((r) => r.url);
  assert.deepEqual(fifo, ['/fifo-first', '/fifo-first', '/fifo-second'], 'FIFO order kept');
});
