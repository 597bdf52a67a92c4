// API keys: every configured key works, anything else is 401 with
// WWW-Authenticate, health checks need no key, and without a key the daemon
// refuses to listen beyond loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope, api, runBinary, countTasks } from './lib/harness.mjs';

const bearer = (k) => ({ authorization: `Bearer ${k}` });

test('with --api-key k1,k2 both keys work; missing or wrong keys get 401 JSON with WWW-Authenticate; /healthz needs no key', async (t) => {
  const s = scope(t);
  const target = await s.fake([{ status: 200 }]);
  const k1 = 'key-one-0123456789';
  const k2 = 'key-two-abcdefghij';
  const d = await s.daemon({ args: ['--api-key', `${k1},${k2}`] });
  const task = { callbackUrl: target.url('/t'), delay: 3600 };

  const ids = [];
  for (const k of [k1, k2]) {
    const r = await api(d.url, 'POST', '/v1/tasks', task, bearer(k));
    assert.equal(r.status, 202, `POST with ${k}: ${JSON.stringify(r.body)}`);
    ids.push(r.body.id);
  }
  for (const k of [k1, k2]) {
    for (const id of ids) {
      const r = await api(d.url, 'GET', `/v1/tasks/${id}`, undefined, bearer(k));
      assert.equal(r.status, 200, `GET with ${k}`);
      assert.equal(r.body.id, id);
    }
  }
  assert.equal(await countTasks(d.db), 2);

  const refused = {
    'no Authorization': {},
    'wrong key': bearer('key-three'),
    'key prefix': bearer(k1.slice(0, -1)),
    'key plus a character': bearer(`${k1}x`),
    'both keys joined': bearer(`${k1},${k2}`),
    'empty bearer': { authorization: 'Bearer ' },
    'Basic scheme': { authorization: `Basic ${Buffer.from(`u:${k1}`).toString('base64')}` },
    'key without scheme': { authorization: k1 },
  };
  for (const [what, headers] of Object.entries(refused)) {
    for (const [method, path, body] of [['POST', '/v1/tasks', task], ['GET', `/v1/tasks/${ids[0]}`]]) {
      const r = await api(d.url, method, path, body, headers);
      const ctx = `${what}, ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`;
      assert.equal(r.status, 401, ctx);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/, ctx);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/, ctx);
      assert.equal(r.body.error.code, 'unauthorized', ctx);
      assert.equal(typeof r.body.error.message, 'string');
      assert.ok(!JSON.stringify(r.body).includes(ids[0]), 'a refused GET shows nothing of the task');
    }
  }
  assert.equal(await countTasks(d.db), 2, 'refused requests stored nothing');

  for (const path of ['/healthz', '/readyz']) {
    const r = await api(d.url, 'GET', path);
    assert.equal(r.status, 200, `${path} without a key`);
  }
  assert.match(d.logs(), /asyncqueue\.started .*auth=on/);
  assert.doesNotMatch(d.logs(), new RegExp(`${k1}|${k2}`), 'keys never appear in the log');
});

test('without an API key the daemon refuses to listen on 0.0.0.0 (exit 6) and says why', async (t) => {
  const s = scope(t);
  const { dir } = s.tempDir();
  const r = await runBinary(['--listen', '0.0.0.0:0', '--db', `${dir}/aq.db`]);
  assert.equal(r.code, 6, `exit code ${r.code}; stderr:\n${r.stderr}`);
  const line = r.stderr.split('\n').find((l) => /auth\.required/.test(l));
  assert.ok(line, `a log line names the problem:\n${r.stderr}`);
  assert.match(line, /api_key/, 'and says which setting fixes it');
  assert.match(line, /loopback|127\.0\.0\.1/);
  assert.doesNotMatch(r.stderr, /asyncqueue\.started/);
});

test('without an API key the daemon serves on loopback and says so in its log', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  assert.match(d.logs(), /asyncqueue\.started .*auth=off/);
  assert.match(d.logs(), /WARN auth\.disabled/);
  const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/', delay: 3600 });
  assert.equal(r.status, 202);
});
