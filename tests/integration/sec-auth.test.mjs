// Keys, scopes, tenants, rotation and secrets (docs/api.md "Authentication",
// docs/security.md). Every test drives the real daemon with a config file of
// key.<label> lines and asserts the exact status each key gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import {
  BIN, startDaemon, startFake, api, waitFor, waitForStatus, tempDir, runBinary,
} from './lib/harness.mjs';
import { countMatches } from './lib/security.mjs';

const newKey = (label) => `aqk-${label}-${randomBytes(16).toString('hex')}`;
const bearer = (key) => ({ authorization: `Bearer ${key}` });
const whsec = () => `whsec_${randomBytes(32).toString('base64')}`;

/** `asyncqueue --hash-key` with the key on stdin: the sha256: form for key.<label> lines. */
function hashKey(key) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ASYNCQUEUE_')) delete env[k];
  const r = spawnSync(BIN, ['--hash-key'], { input: `${key}\n`, env, encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trim();
  assert.match(out, /^sha256:[0-9a-f]{64}$/);
  assert.ok(!out.includes(key));
  return out;
}

/** Writes a config file and starts a daemon on it (keys enable auth). */
async function daemonWithConfig(t, lines, opts = {}) {
  const tmp = tempDir('aq-sec-auth-');
  const conf = join(tmp.dir, 'asyncqueue.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  const d = await startDaemon({ ...opts, args: ['--config', conf, ...(opts.args ?? [])] });
  t.after(async () => { await d.stop(); d.cleanup(); tmp.cleanup(); });
  return { d, conf, rewrite: (l) => writeFileSync(conf, l.join('\n') + '\n') };
}

/** Sends SIGHUP and waits for the n-th config.reloaded (or reload_failed) line. */
async function reload(d, n, event = 'config\\.reloaded') {
  d.proc.kill('SIGHUP');
  await waitFor(() => countMatches(d.logs(), new RegExp(` ${event} `)) >= n,
    { timeout: 10000, what: `${event} #${n}` });
}

const future = (target) => ({ callbackUrl: target, delay: 3600 }); // stays queued: nothing runs

test('no key, a wrong key or a look-alike answers 401 with WWW-Authenticate; health needs none', async (t) => {
  const admin = newKey('admin');
  const hashed = newKey('hashed');
  const digest = hashKey(hashed);
  const { d } = await daemonWithConfig(t, [`key.admin = ${admin}`, `key.ops = ${digest} scope=admin`]);
  const target = 'http://127.0.0.1:9/never';

  const ok = await api(d.url, 'POST', '/v1/tasks', future(target), bearer(admin));
  assert.equal(ok.status, 202);
  // The hashed key works from its plain text only.
  assert.equal((await api(d.url, 'GET', '/v1/tasks', undefined, bearer(hashed))).status, 200);

  const refused = [
    {},                                                   // no header
    bearer(newKey('wrong')),                              // unknown key
    bearer(admin.slice(0, -1)),                           // a prefix of a real key
    bearer(`${admin}x`),                                  // a real key plus a byte
    bearer(admin.toUpperCase()),                          // case matters
    bearer(digest),                                       // the stored digest is not a key
    bearer(digest.slice(7)),                              // nor its hex alone
    { authorization: admin },                             // no scheme
    { authorization: `Basic ${Buffer.from(`x:${admin}`).toString('base64')}` },
    { authorization: 'Bearer ' },
  ];
  for (const h of refused) {
    for (const [m, p, body] of [['GET', '/v1/tasks'], ['POST', '/v1/tasks', future(target)],
      ['GET', `/v1/tasks/${ok.body.id}`], ['POST', `/v1/tasks/${ok.body.id}/cancel`], ['GET', '/v1/queues']]) {
      const r = await api(d.url, m, p, body, h);
      assert.equal(r.status, 401, `${m} ${p} with ${JSON.stringify(h)}`);
      assert.equal(r.body.error.code, 'unauthorized');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    }
  }
  // A key in the query string is not a key.
  assert.equal((await api(d.url, 'GET', `/v1/tasks?api_key=${admin}`)).status, 401);
  assert.equal((await api(d.url, 'GET', '/healthz')).status, 200);
  assert.equal((await api(d.url, 'GET', '/readyz')).status, 200);
  // Nothing the refused requests tried happened.
  const list = await api(d.url, 'GET', '/v1/tasks', undefined, bearer(admin));
  assert.deepEqual(list.body.tasks.map((x) => x.id), [ok.body.id]);
  assert.equal(list.body.tasks[0].status, 'queued');
});

test('scopes: enqueue may only POST /v1/tasks (and /v1/tasks/batch), read only GET/HEAD, admin everything (403 otherwise)', async (t) => {
  const keys = { admin: newKey('admin'), enqueue: newKey('enq'), read: newKey('read'), legacy: newKey('legacy') };
  const { d } = await daemonWithConfig(t, [
    `api_key = ${keys.legacy}`,
    `key.adm = ${hashKey(keys.admin)} scope=admin`,
    `key.enq = ${keys.enqueue} scope=enqueue`,
    `key.rd = ${keys.read} scope=read`,
  ]);
  const target = 'http://127.0.0.1:9/never';
  const t1 = (await api(d.url, 'POST', '/v1/tasks', future(target), bearer(keys.admin))).body.id;
  assert.ok(t1);

  // [method, path, body, admin, enqueue, read]; admin runs last on each row,
  // so a 403 row cannot be hiding behind an earlier admin change.
  const rows = [
    ['POST', '/v1/tasks', future(target), 202, 202, 403],
    ['POST', '/v1/tasks/batch', { tasks: [future(target), future(target)] }, 202, 202, 403],
    ['GET', '/v1/tasks', undefined, 200, 403, 200],
    ['HEAD', '/v1/tasks', undefined, 200, 403, 200],
    ['GET', `/v1/tasks/${t1}`, undefined, 200, 403, 200],
    ['HEAD', `/v1/tasks/${t1}`, undefined, 200, 403, 200],
    ['GET', `/v1/tasks/${t1}/attempts`, undefined, 200, 403, 200],
    ['POST', `/v1/tasks/${t1}/retry`, undefined, 409, 403, 403],
    ['POST', '/v1/tasks/cancel', { queue: 'no-such-queue' }, 200, 403, 403],
    ['POST', '/v1/tasks/retry', { queue: 'no-such-queue' }, 200, 403, 403],
    ['GET', '/v1/queues', undefined, 200, 403, 200],
    ['GET', '/v1/queues/default', undefined, 200, 403, 200],
    ['PUT', '/v1/queues/sec-q', { maxConcurrency: 3 }, 200, 403, 403],
    ['POST', '/v1/queues/sec-q/pause', undefined, 200, 403, 403],
    ['POST', '/v1/queues/sec-q/resume', undefined, 200, 403, 403],
    ['DELETE', '/v1/queues/sec-q', undefined, 204, 403, 403],
    ['POST', `/v1/tasks/${t1}/cancel`, undefined, 200, 403, 403],
  ];
  for (const [m, p, body, ...want] of rows) {
    for (const [i, scope] of [[1, 'enqueue'], [2, 'read'], [0, 'admin']]) {
      const r = await api(d.url, m, p, body, bearer(keys[scope]));
      assert.equal(r.status, want[i], `${scope} ${m} ${p}: ${JSON.stringify(r.body)}`);
      if (want[i] === 403 && m !== 'HEAD') {
        assert.equal(r.body.error.code, 'forbidden');
        assert.match(r.body.error.message, new RegExp(`scope is ${scope}`));
      }
      if (scope === 'admin' && i === 0 && m !== 'HEAD') {
        // The plain admin key (api_key) answers the same.
        if (m === 'GET') assert.equal((await api(d.url, m, p, body, bearer(keys.legacy))).status, want[0]);
      }
      if (m === 'PUT' && scope !== 'admin') {
        // A refused PUT changed nothing: the queue still has no settings.
        assert.equal((await api(d.url, 'GET', '/v1/queues/sec-q', undefined, bearer(keys.admin))).status, 404);
      }
      if (p === `/v1/tasks/${t1}/cancel` && scope !== 'admin') {
        const now = await api(d.url, 'GET', `/v1/tasks/${t1}`, undefined, bearer(keys.admin));
        assert.equal(now.body.status, 'queued', `${scope} could not cancel`);
      }
    }
  }
  // The enqueue key's own task exists, but it cannot read it back.
  const mine = await api(d.url, 'POST', '/v1/tasks', future(target), bearer(keys.enqueue));
  assert.equal(mine.status, 202);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${mine.body.id}`, undefined, bearer(keys.enqueue))).status, 403);
  assert.equal((await api(d.url, 'GET', `/v1/tasks/${mine.body.id}`, undefined, bearer(keys.read))).status, 200);
});

test('tenants: another tenant\'s task is 404 everywhere, absent from lists and bulk operations; queue routes 403', async (t) => {
  const k = {
    acme: newKey('acme'), acmeRead: newKey('acme-read'), acmeEnq: newKey('acme-enq'),
    globex: newKey('globex'), admin: newKey('admin'),
  };
  const { d } = await daemonWithConfig(t, [
    `key.admin = ${k.admin}`,
    `key.acme = ${k.acme} tenant=acme`,
    `key.acme-read = ${k.acmeRead} scope=read tenant=acme`,
    `key.acme-enq = ${hashKey(k.acmeEnq)} scope=enqueue tenant=acme`,
    `key.globex = ${hashKey(k.globex)} scope=admin tenant=globex`,
  ]);
  const target = 'http://127.0.0.1:9/never';
  const create = async (key, extra = {}, headers = {}) => {
    const r = await api(d.url, 'POST', '/v1/tasks', { ...future(target), ...extra }, { ...bearer(key), ...headers });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id;
  };
  const a1 = await create(k.acme);
  const a2 = await create(k.acme, { queue: 'shared' });
  const a3 = await create(k.acmeEnq);
  const g1 = await create(k.globex);
  const g2 = await create(k.globex);
  const n1 = await create(k.admin);
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${g2}/cancel`, undefined, bearer(k.globex))).status, 200);
  const statusOf = async (id) => (await api(d.url, 'GET', `/v1/tasks/${id}`, undefined, bearer(k.admin))).body;

  const missing = await api(d.url, 'GET', `/v1/tasks/${randomUUID()}`, undefined, bearer(k.acme));
  assert.equal(missing.status, 404);
  for (const foreign of [g1, g2, n1]) {
    for (const key of [k.acme, k.acmeRead]) {
      const r = await api(d.url, 'GET', `/v1/tasks/${foreign}`, undefined, bearer(key));
      assert.equal(r.status, 404, 'a foreign task is not found');
      assert.deepEqual(r.body, missing.body, 'exactly like a task that does not exist');
      assert.equal((await api(d.url, 'GET', `/v1/tasks/${foreign}/attempts`, undefined, bearer(key))).status, 404);
      assert.equal((await api(d.url, 'HEAD', `/v1/tasks/${foreign}`, undefined, bearer(key))).status, 404);
    }
    const lp = await api(d.url, 'GET', `/v1/tasks/${foreign}?wait=5`, undefined, bearer(k.acme));
    assert.equal(lp.status, 404, 'a long-poll on a foreign task does not wait');
    const cancel = await api(d.url, 'POST', `/v1/tasks/${foreign}/cancel`, undefined, bearer(k.acme));
    assert.equal(cancel.status, 404);
    assert.deepEqual(cancel.body, missing.body);
    const retry = await api(d.url, 'POST', `/v1/tasks/${foreign}/retry`, { timeout: 5 }, bearer(k.acme));
    assert.equal(retry.status, 404);
  }
  assert.equal((await statusOf(g1)).status, 'queued');
  assert.equal((await statusOf(n1)).status, 'queued');
  const g2now = await statusOf(g2);
  assert.equal(g2now.status, 'cancelled');
  assert.equal(g2now.replays, 0);
  assert.notEqual(g2now.timeout, 5);

  const ids = async (key, q = '') => {
    const r = await api(d.url, 'GET', `/v1/tasks?limit=200${q}`, undefined, bearer(key));
    assert.equal(r.status, 200);
    return r.body.tasks.map((x) => x.id).sort();
  };
  assert.deepEqual(await ids(k.acme), [a1, a2, a3].sort());
  assert.deepEqual(await ids(k.acmeRead), [a1, a2, a3].sort());
  assert.deepEqual(await ids(k.acme, '&status=cancelled'), []);
  assert.deepEqual(await ids(k.acme, '&order=asc'), [a1, a2, a3].sort());
  assert.deepEqual(await ids(k.globex), [g1, g2].sort());
  assert.deepEqual(await ids(k.admin), [a1, a2, a3, g1, g2, n1].sort(), 'a key without a tenant sees all');

  // Bulk operations touch only the key's own tenant.
  const bc = await api(d.url, 'POST', '/v1/tasks/cancel', { status: ['queued', 'running'] }, bearer(k.acme));
  assert.equal(bc.status, 200);
  assert.equal(bc.body.cancelled, 3);
  assert.equal((await statusOf(g1)).status, 'queued');
  assert.equal((await statusOf(n1)).status, 'queued');
  const br = await api(d.url, 'POST', '/v1/tasks/retry', { status: 'cancelled' }, bearer(k.acme));
  assert.equal(br.status, 200);
  assert.equal(br.body.retried, 3);
  assert.equal((await statusOf(g2)).status, 'cancelled', 'globex\'s cancelled task was not replayed');
  assert.equal((await statusOf(g2)).replays, 0);
  for (const id of [a1, a2, a3]) assert.equal((await statusOf(id)).replays, 1);

  // One Idempotency-Key in two tenants makes two tasks; neither sees the other's.
  const ik = { 'idempotency-key': 'shared-key-1' };
  const ia = await create(k.acme, {}, ik);
  const ig = await create(k.globex, {}, ik);
  assert.notEqual(ia, ig);
  const replay = await api(d.url, 'POST', '/v1/tasks', future(target), { ...bearer(k.globex), ...ik });
  assert.equal(replay.status, 200);
  assert.equal(replay.body.id, ig);

  // Queues are shared, so tenant keys (even admin scope) may not use the queue routes.
  for (const key of [k.acme, k.acmeRead, k.globex]) {
    for (const [m, p, body] of [['GET', '/v1/queues'], ['GET', '/v1/queues/shared'],
      ['PUT', '/v1/queues/shared', { paused: true }], ['POST', '/v1/queues/shared/pause'],
      ['POST', '/v1/queues/shared/resume'], ['DELETE', '/v1/queues/shared']]) {
      const r = await api(d.url, m, p, body, bearer(key));
      assert.equal(r.status, 403, `${m} ${p}`);
      assert.equal(r.body.error.code, 'forbidden');
    }
  }
  assert.equal((await api(d.url, 'GET', '/v1/queues/shared', undefined, bearer(k.admin))).body.paused, false);
});

test('keys rotate on SIGHUP without a restart: new works at once, old until removed', async (t) => {
  const oldKey = newKey('old');
  const newer = newKey('new');
  const { d, rewrite } = await daemonWithConfig(t, [`key.ci = ${oldKey} scope=admin`]);
  const pid = d.proc.pid;
  const status = async (key) => (await api(d.url, 'GET', '/v1/tasks', undefined, key ? bearer(key) : {})).status;
  assert.equal(await status(oldKey), 200);
  assert.equal(await status(newer), 401);

  rewrite([`key.ci = ${oldKey} scope=admin`, `key.ci-next = ${hashKey(newer)} scope=admin`]);
  await reload(d, 1);
  assert.equal(await status(newer), 200);
  assert.equal(await status(oldKey), 200, 'both valid during the rotation');

  // Clients on the new key keep being served while the old one is removed.
  let stop = false;
  const seen = [];
  const hammer = (async () => {
    while (!stop) seen.push(await status(newer));
  })();
  rewrite([`key.ci-next = ${hashKey(newer)} scope=admin`]);
  await reload(d, 2);
  await waitFor(() => seen.length >= 20, { what: '20 requests during the reload' });
  stop = true;
  await hammer;
  assert.deepEqual([...new Set(seen)], [200], 'no request failed during the reload');
  assert.equal(await status(oldKey), 401, 'the removed key is refused');
  assert.equal(await status(newer), 200);

  // A broken file is refused as a whole: the running keys stay.
  rewrite([`key.ci-next = ${hashKey(newer)} scope=admin`, 'key.bad = short']);
  await reload(d, 1, 'config\\.reload_failed');
  assert.equal(await status(newer), 200);
  // A file left with no key at all (the keys moved to the environment, which
  // a reload does not read) is refused too: before, the reload turned
  // authentication off and every request was served without a key.
  rewrite(['# the keys moved to ASYNCQUEUE_API_KEY']);
  await reload(d, 2, 'config\\.reload_failed');
  assert.match(d.logs(), /a reload does not turn authentication off/);
  assert.equal(await status(undefined), 401, 'a request without a key is still refused');
  assert.equal(await status(newer), 200);
  assert.equal(d.proc.pid, pid);
  assert.equal(d.proc.exitCode, null, 'the daemon never restarted');
});

test('an event stream ends when the keys are reloaded: a removed key gets no more events, a kept one reconnects', async (t) => {
  const gone = newKey('gone');
  const kept = newKey('kept');
  const { d, rewrite } = await daemonWithConfig(t, [`key.gone = ${gone} scope=read`, `key.kept = ${kept} scope=admin`]);
  const open = async (key) => {
    const ctl = new AbortController();
    const res = await fetch(`${d.url}/v1/events`, { headers: bearer(key), signal: ctl.signal });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    await reader.read(); // the opening comment
    return { reader, ctl };
  };
  const streams = [await open(gone), await open(kept)];
  t.after(() => { for (const x of streams) x.ctl.abort(); });
  rewrite([`key.kept = ${kept} scope=admin`]);
  await reload(d, 1);
  // Both streams end (authorised once, when they opened); each client then
  // reconnects and shows its key again: the removed one is refused.
  for (const { reader } of streams) {
    let done = false;
    await waitFor(async () => { done = (await reader.read()).done; return done; }, { timeout: 5000, what: 'the stream to end' });
  }
  assert.equal((await fetch(`${d.url}/v1/events`, { headers: bearer(gone) })).status, 401);
  const again = await open(kept);
  again.ctl.abort();
});

test('secrets never reach the log or error messages: keys, Authorization values, URL user-info', async (t) => {
  const keys = [newKey('admin'), newKey('hashed'), newKey('enq'), newKey('tenant'), newKey('legacy')];
  const secrets = [whsec(), whsec()];
  const wrongKeys = [newKey('wrong'), 'Basic dXNlcjpzM2NyZXQtYmFzaWM=', `Bearer ${newKey('wrong2')}`];
  const target = await startFake([{ status: 500, body: 'no' }]);
  const okTarget = await startFake([{ status: 200, body: { ok: true } }]);
  const hook = await startFake([{ status: 200 }]);
  t.after(async () => { await target.close(); await okTarget.close(); await hook.close(); });
  const { d, rewrite } = await daemonWithConfig(t, [
    `api_key = ${keys[4]}`,
    `key.admin = ${keys[0]}`,
    `key.hashed = ${hashKey(keys[1])} scope=read`,
    `key.enq = ${keys[2]} scope=enqueue`,
    `key.tenant = ${keys[3]} tenant=acme`,
    `webhook_secret = ${secrets.join(',')}`,
  ], { args: ['--log-level', 'debug', '--deny-destinations', '127.0.0.3'] });

  const responses = [];
  const call = async (...a) => {
    const r = await api(d.url, ...a);
    responses.push({ status: r.status, text: JSON.stringify(r.body) });
    return r;
  };
  for (const key of keys) await call('GET', '/v1/tasks', undefined, bearer(key));
  await call('POST', '/v1/tasks', future('http://127.0.0.1:9/'), bearer(keys[2]));
  await call('GET', '/v1/queues', undefined, bearer(keys[3])); // 403 is logged
  await call('POST', '/v1/tasks', future('http://127.0.0.1:9/'), bearer(keys[1])); // 403 is logged
  for (const w of wrongKeys) await call('GET', '/v1/tasks', undefined, { authorization: w }); // 401 is logged
  for (const w of wrongKeys) await call('GET', '/v1/tasks', undefined, bearer(w));

  const admin = bearer(keys[0]);
  const fails = await call('POST', '/v1/tasks', {
    callbackUrl: `http://user:pa55word@127.0.0.1:${target.port}/run?token=qs-s3cret`, retries: 0,
    headers: { Authorization: 'Bearer tgt-s3cret-value', 'X-Api-Key': 'tgt-api-s3cret' },
    webhookUrl: `http://hookuser:hookpa55@127.0.0.1:${hook.port}/hook?sig=hook-qs-s3cret`,
  }, admin);
  assert.equal(fails.status, 202);
  const refused = await call('POST', '/v1/tasks', {
    callbackUrl: 'http://user2:pa55word2@127.0.0.1:9/closed', retries: 0,
  }, admin);
  assert.equal(refused.status, 202);
  const ok = await call('POST', '/v1/tasks', { callbackUrl: `http://u3:pa55word3@127.0.0.1:${okTarget.port}/ok` }, admin);
  const blocked = await call('POST', '/v1/tasks', { callbackUrl: 'http://u4:denypa55@127.0.0.3/x' }, admin);
  assert.equal(blocked.status, 400);
  assert.equal(blocked.body.error.code, 'blocked_destination');
  const badUrl = await call('POST', '/v1/tasks', { callbackUrl: 'http://u5:badpa55@exa mple.com/' }, admin);
  assert.equal(badUrl.status, 400);
  const badHook = await call('POST', '/v1/tasks', { callbackUrl: 'http://example.com/', webhookUrl: 'ftp://u6:ftppa55@example.com/' }, admin);
  assert.equal(badHook.status, 400);

  const [seenCall] = await target.waitForRequests(1);
  assert.equal(seenCall.headers.authorization, 'Bearer tgt-s3cret-value', 'the task header reached the target');
  await hook.waitForRequests(1);
  for (const id of [fails.body.id, refused.body.id, ok.body.id]) {
    await waitForStatus(d.url, id, ['failed', 'completed'], { headers: admin });
    const a = await call('GET', `/v1/tasks/${id}/attempts`, undefined, admin);
    assert.equal(a.status, 200);
  }
  await waitFor(async () => (await api(d.url, 'GET', `/v1/tasks/${fails.body.id}`, undefined, admin)).body.webhook?.status === 'delivered');

  // A reload that fails names the bad line, never the secrets on it.
  rewrite([`key.admin = ${keys[0]}`, `key.bad = ${keys[1]} scope=superuser`, `webhook_secret = ${secrets[0]}`]);
  await reload(d, 1, 'config\\.reload_failed');
  rewrite([`key.admin = ${keys[0]}`, 'webhook_secret = whsec_c2hvcnQ=']);
  await reload(d, 2, 'config\\.reload_failed');
  const exit = await d.stop();
  assert.equal(exit.code, 0);

  const log = d.logs();
  assert.match(log, /auth\.denied/, 'the 401s were logged');
  assert.match(log, /auth\.forbidden/, 'the 403s were logged');
  assert.match(log, /attempt\.end/, 'the attempts were logged');
  const forbidden = [
    ...keys, ...secrets, ...secrets.map((s) => s.slice(6)), ...wrongKeys, 'dXNlcjpzM2NyZXQtYmFzaWM=', 's3cret-basic',
    'pa55word', 'pa55word2', 'pa55word3', 'hookpa55', 'denypa55', 'badpa55', 'ftppa55',
    'user:', 'hookuser', 'qs-s3cret', 'hook-qs-s3cret', 'tgt-s3cret-value', 'tgt-api-s3cret',
    Buffer.from('user:pa55word').toString('base64'),
  ];
  for (const s of forbidden) {
    assert.ok(!log.includes(s), `the log contains ${JSON.stringify(s)}:\n${log.split('\n').filter((l) => l.includes(s)).join('\n')}`);
  }
  const errors = responses.filter((r) => r.status >= 400).map((r) => r.text).join('\n');
  assert.match(errors, /blocked_destination/);
  for (const s of [...keys, ...wrongKeys, 'pa55word2', 'denypa55', 'badpa55', 'ftppa55']) {
    assert.ok(!errors.includes(s), `an error message contains ${JSON.stringify(s)}`);
  }
  // The attempt records of the failed calls say why, without the user-info.
  const attempts = responses.filter((r) => r.text.startsWith('{"taskId"')).map((r) => r.text).join('\n');
  assert.match(attempts, /target answered 500/);
  assert.ok(!attempts.includes('pa55word'));

  // --check-config prints the effective settings with every secret masked.
  const tmp = tempDir('aq-sec-check-');
  t.after(() => tmp.cleanup());
  const conf = join(tmp.dir, 'c.conf');
  writeFileSync(conf, `api_key = ${keys[4]}\nkey.x = ${keys[0]} scope=read\nwebhook_secret = ${secrets[0]}\n`);
  const check = await runBinary(['--config', conf, '--check-config']);
  assert.equal(check.code, 0, check.stderr);
  for (const s of [keys[4], keys[0], secrets[0], secrets[0].slice(6)]) {
    assert.ok(!(check.stdout + check.stderr).includes(s), '--check-config shows a secret');
  }
});

test('an api_key in sha256: form that is not 64 hex digits is a config error', async () => {
  const r = await runBinary(['--api-key', `sha256:${'!'.repeat(64)}`, '--check-config']);
  assert.equal(r.code, 3, r.stdout + r.stderr);
});

test('webhook secret rotation: a delivery carries one signature per secret, each verifies alone', async (t) => {
  const [fresh, old, other] = [whsec(), whsec(), whsec()];
  const target = await startFake([{ status: 200, body: { ok: 1 } }]);
  const hook = await startFake([{ status: 200 }]);
  const d = await startDaemon({ args: ['--webhook-secret', `${fresh},${old}`] });
  t.after(async () => { await d.stop(); d.cleanup(); await target.close(); await hook.close(); });

  const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/x'), webhookUrl: hook.url('/hook') });
  assert.equal(r.status, 202);
  const [delivery] = await hook.waitForRequests(1);
  const sigs = delivery.headers['webhook-signature'].split(' ');
  assert.equal(sigs.length, 2, 'one signature per secret');
  for (const s of sigs) assert.match(s, /^v1,[A-Za-z0-9+/]+=*$/);
  const verified = (secret) => {
    try { new Webhook(secret).verify(delivery.body, delivery.headers); return true; } catch { return false; }
  };
  assert.ok(verified(fresh), 'the new secret verifies');
  assert.ok(verified(old), 'the old secret verifies');
  assert.ok(!verified(other), 'an unrelated secret does not');
  assert.equal(JSON.parse(delivery.body).taskId, r.body.id);
  // A tampered body fails with both.
  const tampered = delivery.body.replace('"completed"', '"failed"');
  assert.throws(() => new Webhook(fresh).verify(tampered, delivery.headers));
  assert.throws(() => new Webhook(old).verify(tampered, delivery.headers));
});

test('webhook secrets rotate on SIGHUP: old -> new,old -> new, receivers never miss a beat', async (t) => {
  const [fresh, old] = [whsec(), whsec()];
  const target = await startFake([{ status: 200 }]);
  const hook = await startFake([{ status: 200 }]);
  t.after(async () => { await target.close(); await hook.close(); });
  const { d, rewrite } = await daemonWithConfig(t, [`webhook_secret = ${old}`]);
  const deliver = async () => {
    const before = hook.requests.length;
    const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/x'), webhookUrl: hook.url('/h') });
    assert.equal(r.status, 202);
    const reqs = await hook.waitForRequests(before + 1);
    return reqs[before];
  };
  const verifies = (secret, del) => {
    try { new Webhook(secret).verify(del.body, del.headers); return true; } catch { return false; }
  };
  let del = await deliver();
  assert.deepEqual([verifies(old, del), verifies(fresh, del)], [true, false]);
  rewrite([`webhook_secret = ${fresh},${old}`]);
  await reload(d, 1);
  del = await deliver();
  assert.deepEqual([verifies(old, del), verifies(fresh, del)], [true, true]);
  rewrite([`webhook_secret = ${fresh}`]);
  await reload(d, 2);
  del = await deliver();
  assert.deepEqual([verifies(old, del), verifies(fresh, del)], [false, true]);
  // Every secret taken out of the file (retiring a leaked one): the database's
  // own secret signs from the reload on, as it would after a restart, and it
  // is what --print-webhook-secret prints. Before, the removed secret kept
  // signing until the restart switched receivers over without warning.
  rewrite(['# no webhook_secret: the one kept in the database signs']);
  await reload(d, 3);
  const printed = await runBinary(['--print-webhook-secret', '--db', d.db]);
  assert.equal(printed.code, 0, printed.stderr);
  const stored = printed.stdout.trim();
  assert.match(stored, /^whsec_/);
  assert.notEqual(stored, fresh);
  del = await deliver();
  assert.deepEqual([verifies(fresh, del), verifies(stored, del)], [false, true]);
  assert.match(d.logs(), / config\.reloaded .*webhook_secrets=0 webhook_secret_from=database/);
});

test('a tenant of 64 characters keeps every character of a 255-character Idempotency-Key', async (t) => {
  const key = newKey('long-tenant');
  const tenant = 't'.repeat(64);
  const { d } = await daemonWithConfig(t, [`key.long = ${key} scope=admin tenant=${tenant}`]);
  const body = { callbackUrl: 'http://127.0.0.1:9/k', delay: 3600 };
  const stem = 'k'.repeat(254);
  const a = await api(d.url, 'POST', '/v1/tasks', body, { ...bearer(key), 'idempotency-key': `${stem}a` });
  const b = await api(d.url, 'POST', '/v1/tasks', body, { ...bearer(key), 'idempotency-key': `${stem}b` });
  // The lookup key was cut one byte short: the second was taken for a retry of the first.
  assert.equal(a.status, 202, JSON.stringify(a.body));
  assert.equal(b.status, 202, JSON.stringify(b.body));
  assert.notEqual(a.body.id, b.body.id);
  const again = await api(d.url, 'POST', '/v1/tasks', body, { ...bearer(key), 'idempotency-key': `${stem}b` });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, b.body.id);
});
