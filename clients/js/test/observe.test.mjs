// aq.whoami() and aq.stats() against the real daemon: what a key may do, and
// the last minutes' counts, with the typed errors of the keys that may not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsyncQueue, PermissionDeniedError, ValidationError } from 'asyncqueue-js';
import { startDaemon, stopDaemon, tempDir } from './helpers.mjs';

test('whoami says what the key may do; stats answers the last minutes', async () => {
  const dir = tempDir('aq-js-observe-');
  const conf = join(dir.dir, 'keys.conf');
  writeFileSync(conf, 'api_key = admin-key-0123456789\nkey.reader = reader-key-0123456789 scope=read\n' +
    'key.acme = acme-key-0123456789 scope=read tenant=acme\nkey.writer = writer-key-0123456789 scope=enqueue\n');
  const d = await startDaemon({ args: ['--config', conf] });
  const as = (apiKey) => new AsyncQueue({ baseUrl: d.url, apiKey, maxRetries: 0 });
  try {
    const admin = await as('admin-key-0123456789').whoami();
    assert.equal(admin.scope, 'admin');
    assert.equal(admin.tenant, null);
    assert.equal(admin.authRequired, true);
    assert.equal(typeof admin.key, 'string');
    assert.deepEqual(await as('reader-key-0123456789').whoami(),
      { scope: 'read', tenant: null, key: 'reader', authRequired: true });
    assert.equal((await as('acme-key-0123456789').whoami()).tenant, 'acme');
    await assert.rejects(as('writer-key-0123456789').whoami(), PermissionDeniedError);

    const reader = as('reader-key-0123456789');
    const stats = await reader.stats();
    assert.equal(stats.minutes.length, 60);
    assert.deepEqual(Object.keys(stats.minutes[0]).sort(),
      ['accepted', 'attempts', 'cancelled', 'completed', 'failed', 'minute', 'p50Ms', 'p95Ms', 'p99Ms']);
    for (const k of ['backlog', 'inflight', 'subscribers']) assert.equal(typeof stats[k], 'number');
    assert.equal((await reader.stats({ minutes: 5 })).minutes.length, 5);
    await assert.rejects(reader.stats({ minutes: 61 }), (e) => e instanceof ValidationError && e.field === 'minutes');
    await assert.rejects(as('acme-key-0123456789').stats(), PermissionDeniedError);
  } finally { await stopDaemon(d); dir.cleanup(); }
});
