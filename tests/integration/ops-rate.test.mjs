// A rate-limited queue (token bucket) never starts more than
// rate * window + burst tasks in any window, and still runs them all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, waitForStatus } from './lib/harness.mjs';
import { daemon, fake, create } from './lib/ops.mjs';

test('ratePerSecond 5, burst 1: at most 6 calls in any 1 s window, and all 15 tasks finish', async (t) => {
  const target = await fake(t, [{ status: 200 }]);
  const d = await daemon(t);
  const put = await api(d.url, 'PUT', '/v1/queues/rl', { ratePerSecond: 5, burst: 1 });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.ratePerSecond, 5);
  assert.equal(put.body.burst, 1);

  // All 15 due at once, so only the bucket spaces them.
  const tasks = await Promise.all(Array.from({ length: 15 }, (_, i) =>
    create(d, { callbackUrl: target.url(`/r${i}`), queue: 'rl' })));
  for (const x of tasks) await waitForStatus(d.url, x.id, 'completed', { timeout: 20000 });

  const at = target.requests.map((r) => r.at).sort((a, b) => a - b);
  assert.equal(at.length, 15);
  // Sliding windows starting at every call; 950 ms instead of 1000 leaves
  // 50 ms for timer and network jitter at the window edges.
  const limit = 5 * 1 + 1;
  for (let i = 0; i < at.length; i++) {
    const inWindow = at.filter((x) => x >= at[i] && x < at[i] + 950).length;
    assert.ok(inWindow <= limit, `${inWindow} calls within 1 s of call ${i + 1}: ${at.map((x) => x - at[0])}`);
  }
  // 1 at once, then 14 at 5/s: the last one at least ~2.8 s after the first.
  assert.ok(at.at(-1) - at[0] >= 2500, `15 calls spread over only ${at.at(-1) - at[0]} ms`);
});
