// The package itself: its package.json, what `npm pack` would publish, that
// the runtime code uses web standards only (no node: imports, no process
// required, Node 18's missing global crypto handled), and that the
// hand-written .d.ts files type-check against real usage (tsc --noEmit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, stopDaemon } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

test('package.json: ESM, exports with types, Node >= 18, no runtime dependencies', () => {
  assert.equal(pkg.name, 'asyncqueue-js');
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.engines.node, '>=18');
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.peerDependencies, undefined);
  for (const sub of ['.', './next']) {
    const e = pkg.exports[sub];
    assert.deepEqual(Object.keys(e), ['types', 'default'], `${sub}: types first`);
    assert.ok(existsSync(join(root, e.types)), e.types);
    assert.ok(existsSync(join(root, e.default)), e.default);
  }
  assert.equal(readFileSync(join(root, '.npmrc'), 'utf8').trim(), 'omit-lockfile-registry-resolved=true');
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  assert.equal(lock.packages[''].dependencies, undefined, 'the lockfile has no runtime dependencies');
  for (const [name, p] of Object.entries(lock.packages)) {
    if (name) assert.equal(p.dev, true, `${name} is a dev dependency`);
    assert.equal(p.resolved, undefined, `${name}: no registry address in the lockfile`);
  }
});

test('npm pack publishes the sources, types and README, not the tests', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  for (const f of ['README.md', 'package.json', 'src/index.js', 'src/index.d.ts', 'src/next.js', 'src/next.d.ts',
    'src/client.js', 'src/errors.js', 'src/webhooks.js', 'src/platform.js']) {
    assert.ok(files.includes(f), `${f} is published`);
  }
  assert.equal(files.filter((f) => f.startsWith('test/')).length, 0);
});

test('the runtime code imports nothing from node: and nothing outside the package', () => {
  for (const f of readdirSync(join(root, 'src')).filter((x) => x.endsWith('.js'))) {
    const src = readFileSync(join(root, 'src', f), 'utf8');
    const specifiers = [...src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
    for (const s of specifiers) assert.match(s, /^\.\/[a-z]+\.js$/, `${f} imports ${s}`);
    assert.doesNotMatch(src, /['"]node:/, `${f} names no node: module`);
    assert.doesNotMatch(src, /\brequire\(/, `${f} uses no require`);
  }
});

test('no process global (edge runtimes): defaults apply, nothing throws', async () => {
  const d = await startDaemon();
  try {
    const script = `
      const p = globalThis.process;
      delete globalThis.process;
      const { AsyncQueue, verifyWebhook, signWebhook } = await import('asyncqueue-js');
      const { webhookHandler } = await import('asyncqueue-js/next');
      const out = {};
      out.processGone = typeof process === 'undefined';
      out.defaultUrl = new AsyncQueue().baseUrl;
      const aq = new AsyncQueue({ baseUrl: ${JSON.stringify(d.url)} });
      out.created = (await aq.tasks.create({ callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 })).status;
      const secret = 'whsec_' + btoa('0123456789abcdef0123456789abcdef');
      const sig = await signWebhook(secret, 'm', Math.floor(Date.now() / 1000), '{"a":1}');
      out.verified = (await verifyWebhook('{"a":1}', { 'webhook-id': 'm', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': sig }, secret)).a;
      const res = await webhookHandler({ onEvent() {} })(new Request('http://x/', { method: 'POST', body: '{}' }));
      out.noSecret = res.status;
      globalThis.process = p;
      console.log(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root, encoding: 'utf8', timeout: 20000,
      env: { ...process.env, ASYNCQUEUE_URL: 'http://should-not-be-read.example:1', ASYNCQUEUE_WEBHOOK_SECRET: 'whsec_eA==' },
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.deepEqual(out, { processGone: true, defaultUrl: 'http://127.0.0.1:8080', created: 'queued', verified: 1, noSecret: 500 });
  } finally { await stopDaemon(d); }
});

test('Node 18 (no global crypto): idempotency keys and webhook checks fall back to node:crypto', async () => {
  const d = await startDaemon();
  try {
    const script = `
      Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
      const { AsyncQueue, verifyWebhook, signWebhook } = await import('asyncqueue-js');
      const aq = new AsyncQueue({ baseUrl: ${JSON.stringify(d.url)} });
      const t = await aq.tasks.create({ callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 });
      const secret = 'whsec_' + btoa('0123456789abcdef0123456789abcdef');
      const ts = Math.floor(Date.now() / 1000);
      const sig = await signWebhook(secret, 'm', ts, '{}');
      await verifyWebhook('{}', { 'webhook-id': 'm', 'webhook-timestamp': String(ts), 'webhook-signature': sig }, secret);
      console.log(JSON.stringify({ cryptoGone: globalThis.crypto === undefined, key: t.idempotencyKey, sig, ts }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim());
    assert.equal(out.cryptoGone, true);
    assert.match(out.key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const { createHmac } = await import('node:crypto');
    const expected = createHmac('sha256', Buffer.from('0123456789abcdef0123456789abcdef')).update(`m.${out.ts}.{}`).digest('base64');
    assert.equal(out.sig, `v1,${expected}`);
  } finally { await stopDaemon(d); }
});

test('the .d.ts files type-check against real usage (tsc --strict --noEmit)', () => {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'test', 'types', 'tsconfig.json')], {
    cwd: root, encoding: 'utf8', timeout: 120000,
  });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
