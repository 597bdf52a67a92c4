// A target can make a failure final: AsyncQueue-Retry: false on a 503 means
// one attempt, failed, no retry (while the same 503 without it is retried).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitForStatus } from './lib/harness.mjs';
import { daemon, fake, create, taskIdOf, perTask } from './lib/ops.mjs';

test('AsyncQueue-Retry: false on a 503 stops retries; without it the 503 is retried', async (t) => {
  const normalScript = perTask([{ status: 503 }, { status: 200 }]);
  const target = await fake(t, (req) => (req.url === '/final'
    ? { status: 503, headers: { 'asyncqueue-retry': 'false' }, body: 'gone for good' }
    : normalScript(req)));
  const d = await daemon(t, { args: ['--retry-base', '50ms', '--retry-jitter', 'false'] });

  // The final one answers 503 + AsyncQueue-Retry: false on every call: were
  // it retried, it would show more calls and never reach failed with 1 attempt.
  const final = await create(d, { callbackUrl: target.url('/final'), retries: 3 });
  const failed = await waitForStatus(d.url, final.id, 'failed');
  assert.equal(failed.attempts, 1);
  assert.equal(failed.attemptHistory.length, 1);
  assert.equal(failed.attemptHistory[0].statusCode, 503);
  assert.equal(failed.error?.code, 'http_error');
  assert.equal(failed.response.statusCode, 503);
  assert.equal(failed.response.headers['asyncqueue-retry'], 'false');

  // Control: the same 503 without the header is retried and completes; it
  // runs after the final task failed, so a late retry would have shown.
  const normal = await create(d, { callbackUrl: target.url('/normal'), retries: 3 });
  const done = await waitForStatus(d.url, normal.id, 'completed');
  assert.equal(done.attempts, 2);
  assert.equal(target.requests.filter((r) => taskIdOf(r) === final.id).length, 1);
});
