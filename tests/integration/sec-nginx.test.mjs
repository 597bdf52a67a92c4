// deploy/nginx.conf, run for real: Debian's nginx terminates TLS (a
// self-signed certificate made here with the openssl CLI) in front of the
// daemon. The config file is used as shipped; only the addresses, ports and
// paths its comments mark "test:" are rewritten, and each rewrite must
// match, so the test breaks loudly if the file drifts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startDaemon, startFake, api, waitFor, tempDir, countTasks } from './lib/harness.mjs';
import { reservePort } from './lib/security.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const KEY = `aqk-nginx-${randomBytes(16).toString('hex')}`;

/** Rewrites the "test:" lines of deploy/nginx.conf; each rule must match exactly once. */
function render(src, { dir, httpPort, httpsPort, upstreamPort }) {
  const rules = [
    [/^pid \/run\/nginx\.pid;.*$/m, `pid ${dir}/nginx.pid;`],
    [/^error_log \S+ warn;.*$/m, `error_log ${dir}/error.log warn;`],
    [/^(\s*)access_log \S+ asyncqueue;.*$/m, `$1access_log ${dir}/access.log asyncqueue;`],
    [/^(\s*)server 127\.0\.0\.1:8080;.*$/m, `$1server 127.0.0.1:${upstreamPort};`],
    [/^(\s*)listen 80;.*$/m, `$1listen 127.0.0.1:${httpPort};`],
    [/^\s*listen \[::\]:80;.*\n/m, ''],
    [/^(\s*)listen 443 ssl http2;.*$/m, `$1listen 127.0.0.1:${httpsPort} ssl http2;`],
    [/^\s*listen \[::\]:443 ssl http2;.*\n/m, ''],
    [/^(\s*)ssl_certificate\s+\S+;.*$/m, `$1ssl_certificate ${dir}/cert.pem;`],
    [/^(\s*)ssl_certificate_key\s+\S+;.*$/m, `$1ssl_certificate_key ${dir}/key.pem;`],
    // Debian's compiled-in temp paths are the system nginx's; use our own.
    [/^http \{$/m, `http {\n    client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;\n` +
      `    fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`],
  ];
  let out = src;
  for (const [re, to] of rules) {
    const n = (out.match(new RegExp(re.source, `${re.flags}g`)) ?? []).length;
    assert.equal(n, 1, `deploy/nginx.conf: expected one line matching ${re}`);
    out = out.replace(re, to);
  }
  return `daemon off;\n${out}`;
}

/** One HTTPS (or HTTP) request; resolves { status, headers, body, protocol, ms }. */
function request(url, { method = 'GET', body, headers = {}, ca, localAddress, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const u = new URL(url);
    const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = fn({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca, localAddress, agent,
      headers: { ...headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) },
    }, (res) => {
      const chunks = [];
      const protocol = res.socket.getProtocol?.();
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* HTML from nginx */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed, text, protocol, ms: Date.now() - started });
      });
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error('timed out')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const skip = !NGINX ? 'nginx is not installed (tools/deps.sh test installs it)'
  : process.getuid?.() !== 0 ? 'needs root to run nginx with its own prefix and www-data workers' : false;

let env; // { d, target, nginx, https, http, ca, dir }
const cleanups = []; // run in reverse by after(), even when before() failed half-way
before(async () => {
  if (skip) return;
  const tmp = tempDir('aq-nginx-');
  cleanups.push(() => tmp.cleanup());
  chmodSync(tmp.dir, 0o755); // workers run as www-data
  const dir = tmp.dir;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  chmodSync(join(dir, 'key.pem'), 0o600);
  const target = await startFake((req) => (req.url === '/slow'
    ? { status: 200, body: { slow: true }, delayMs: 1500 }
    : { status: 200, body: { ok: true } }));
  cleanups.push(() => target.close());
  const d = await startDaemon({ args: ['--api-key', KEY, '--trust-proxy', '127.0.0.1'] });
  cleanups.push(async () => { await d.stop(); d.cleanup(); });
  const [httpPort, httpsPort] = [await reservePort(), await reservePort()];
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, render(readFileSync(join(root, 'deploy/nginx.conf'), 'utf8'),
    { dir, httpPort, httpsPort, upstreamPort: d.port }));
  const check = spawn(NGINX, ['-t', '-q', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let checkErr = '';
  check.stderr.on('data', (x) => { checkErr += x; });
  const checkCode = await new Promise((r) => check.on('exit', r));
  const nginx = spawn(NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxErr = '';
  nginx.stderr.on('data', (x) => { nginxErr += x; });
  const nginxExit = new Promise((r) => nginx.on('exit', r));
  cleanups.push(async () => {
    if (nginx.exitCode !== null || nginx.signalCode !== null) return;
    nginx.kill('SIGQUIT'); // graceful: finish requests, then exit
    const t = setTimeout(() => nginx.kill('SIGKILL'), 10000);
    await nginxExit;
    clearTimeout(t);
  });
  env = {
    d, target, nginx, dir, tmp, checkCode, checkErr,
    https: `https://127.0.0.1:${httpsPort}`, http: `http://127.0.0.1:${httpPort}`,
    ca: readFileSync(join(dir, 'cert.pem')),
  };
  await waitFor(async () => {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${nginxErr}\n${readFileSync(join(dir, 'error.log'), 'utf8')}`);
    return (await request(`${env.https}/healthz`, { ca: env.ca })).status === 200;
  }, { timeout: 10000, what: 'nginx to answer over TLS' });
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

test('the shipped config passes nginx -t and matches the daemon\'s limits', { skip }, () => {
  assert.equal(env.checkCode, 0, env.checkErr);
  const conf = readFileSync(join(root, 'deploy/nginx.conf'), 'utf8');
  const example = readFileSync(join(root, 'asyncqueue.conf.example'), 'utf8');
  const bodyMiB = Number(example.match(/^#max_body_bytes = (\d+)MiB$/m)[1]);
  assert.equal(conf.match(/^\s*client_max_body_size (\d+)m;/m)[1], String(bodyMiB), 'client_max_body_size = max_body_bytes');
  const maxWaitS = Number(example.match(/^#max_wait = (\d+)s$/m)[1]);
  assert.ok(Number(conf.match(/^\s*proxy_read_timeout (\d+)s;/m)[1]) > maxWaitS, 'proxy_read_timeout above max_wait');
  assert.match(conf, /^\s*proxy_buffering off;/m);
  assert.match(conf, /^\s*proxy_set_header X-Forwarded-For \$remote_addr;/m);
  assert.match(conf, /^\s*keepalive \d+;/m);
  assert.match(conf, /^\s*ssl_protocols TLSv1\.2 TLSv1\.3;/m);
});

test('a task created over HTTPS through nginx is accepted (202) and completes', { skip }, async () => {
  const created = await request(`${env.https}/v1/tasks`, {
    method: 'POST', ca: env.ca, headers: auth, body: JSON.stringify({ callbackUrl: env.target.url('/run') }),
  });
  assert.equal(created.status, 202, created.text);
  assert.match(created.protocol, /^TLSv1\.[23]$/);
  assert.equal(created.headers['strict-transport-security'], 'max-age=63072000');
  assert.equal(created.headers.server, 'nginx', 'server_tokens off: no version');
  const done = await waitFor(async () => {
    const r = await request(`${env.https}/v1/tasks/${created.body.id}`, { ca: env.ca, headers: auth });
    return r.body.status === 'completed' ? r.body : null;
  }, { what: 'the task to complete' });
  assert.deepEqual(done.result, { ok: true });
  // Plain HTTP only redirects to HTTPS.
  const plain = await request(`${env.http}/v1/tasks`, { headers: auth });
  assert.equal(plain.status, 301);
  assert.match(plain.headers.location, /^https:\/\//);
  // A client that does not trust the certificate is refused by TLS itself.
  await assert.rejects(request(`${env.https}/healthz`), /self[- ]signed|unable to verify|certificate/i);
});

test('a body over client_max_body_size gets nginx\'s 413 and never reaches the daemon', { skip }, async () => {
  const before = await countTasks(env.d.db);
  const big = JSON.stringify({ callbackUrl: env.target.url('/big'), metadata: 'x'.repeat(1024 * 1024 + 10) });
  const r = await request(`${env.https}/v1/tasks`, { method: 'POST', ca: env.ca, headers: auth, body: big });
  assert.equal(r.status, 413);
  // nginx answered (the daemon's message names max_body_bytes), in the
  // daemon's error shape.
  assert.match(r.headers['content-type'], /application\/json/);
  const body = JSON.parse(r.text);
  assert.equal(body.error.code, 'body_too_large');
  assert.match(body.error.message, /client_max_body_size/);
  assert.equal(await countTasks(env.d.db), before);
});

test('X-Forwarded-For: believed from the trusted proxy, ignored from anyone else', { skip }, async (t) => {
  const spoof = '203.0.113.77';
  const logged = (ip) => new RegExp(`auth\\.denied ip=${ip.replace(/\./g, '\\.')} `);
  // Through nginx from 127.0.0.9, with a forged header: the daemon logs 127.0.0.9.
  const r = await request(`${env.https}/v1/tasks`, {
    ca: env.ca, localAddress: '127.0.0.9', headers: { authorization: 'Bearer wrong-key-000000000', 'x-forwarded-for': spoof },
  });
  assert.equal(r.status, 401);
  await env.d.waitForLog(logged('127.0.0.9'));
  // Straight to the daemon from an address that is not the proxy: the header is ignored.
  const fromNine = await request(`${env.d.url}/v1/tasks`, { localAddress: '127.0.0.10', headers: { authorization: 'Bearer x', 'x-forwarded-for': spoof } });
  assert.equal(fromNine.status, 401);
  await env.d.waitForLog(logged('127.0.0.10'));
  // From the trusted proxy address a chain is walked from the right: the nearest untrusted hop is the client.
  await request(`${env.d.url}/v1/tasks`, { headers: { authorization: 'Bearer x', 'x-forwarded-for': `${spoof}, 198.51.100.20` } });
  await env.d.waitForLog(logged('198.51.100.20'));
  assert.doesNotMatch(env.d.logs(), logged(spoof), 'a forged address was believed');
  // An item that is not an address is not believed, nor written into the
  // log line (it added fields there: "reason=ok key=admin").
  await request(`${env.d.url}/v1/tasks`, { headers: { authorization: 'Bearer x', 'x-forwarded-for': '198.51.100.21 reason=ok key=admin' } });
  await env.d.waitForLog(logged('127.0.0.1'));
  assert.doesNotMatch(env.d.logs(), /key=admin/);

  // Without trust_proxy the header is never believed, even from 127.0.0.1.
  const plain = await startDaemon({ args: ['--api-key', KEY] });
  t.after(async () => { await plain.stop(); plain.cleanup(); });
  const p = await api(plain.url, 'GET', '/v1/tasks', undefined, { authorization: 'Bearer wrong', 'x-forwarded-for': spoof });
  assert.equal(p.status, 401);
  await plain.waitForLog(logged('127.0.0.1'));
  assert.doesNotMatch(plain.logs(), new RegExp(spoof.replace(/\./g, '\\.')));
});

test('a long-poll through nginx (wait=3) returns as soon as the task completes', { skip }, async () => {
  const created = await request(`${env.https}/v1/tasks`, {
    method: 'POST', ca: env.ca, headers: auth, body: JSON.stringify({ callbackUrl: env.target.url('/slow') }),
  });
  assert.equal(created.status, 202);
  const r = await request(`${env.https}/v1/tasks/${created.body.id}?wait=3`, { ca: env.ca, headers: auth });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'completed', 'answered on completion');
  assert.ok(r.ms >= 700, `answered after ${r.ms} ms: it waited for the 1.5 s target`);
  assert.ok(r.ms < 2900, `answered after ${r.ms} ms: at completion, not at the end of wait`);
});

test('the event stream (GET /v1/events) passes through nginx as the daemon sends it, not held in a buffer', { skip }, async () => {
  let text = '';
  let res;
  const req = httpsRequest({
    host: '127.0.0.1', port: new URL(env.https).port, path: '/v1/events', ca: env.ca, agent: false,
    headers: { authorization: auth.authorization, accept: 'text/event-stream' },
  }, (r) => { res = r; r.setEncoding('utf8'); r.on('data', (c) => { text += c; }); });
  req.on('error', () => {});
  req.end();
  try {
    await waitFor(() => text.includes('retry:'), { timeout: 10000, what: 'the stream to open through nginx' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    const created = await request(`${env.https}/v1/tasks`, {
      method: 'POST', ca: env.ca, headers: auth, body: JSON.stringify({ callbackUrl: env.target.url('/sse'), delay: 3600 }),
    });
    assert.equal(created.status, 202);
    // The accepted event is a few hundred bytes: a buffering proxy would hold it.
    await waitFor(() => text.includes(`"change":"accepted","id":"${created.body.id}"`),
      { timeout: 5000, what: 'the accepted event through nginx' });
  } finally {
    req.destroy();
  }
});

test('limit_req: a burst from one client beyond rate and burst gets 429 from nginx; health checks are exempt', { skip }, async () => {
  const { Agent } = await import('node:https');
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: env.ca, localAddress: '127.0.0.20' });
  try {
    const statuses = await Promise.all(Array.from({ length: 300 }, () =>
      request(`${env.https}/v1/tasks?limit=1`, { ca: env.ca, headers: auth, agent }).then((r) => r.status)));
    const limited = statuses.filter((s) => s === 429).length;
    assert.ok(statuses.filter((s) => s === 200).length >= 100, 'the burst passed');
    assert.ok(limited >= 50, `${limited} of 300 were limited`);
    assert.deepEqual([...new Set(statuses)].sort(), [200, 429]);
    // nginx's own 429, in the daemon's shape and with the server's headers
    // (a location's add_header had dropped them).
    const one = await (async () => {
      for (let i = 0; i < 300; i++) {
        const r = await request(`${env.https}/v1/tasks?limit=1`, { ca: env.ca, headers: auth, agent });
        if (r.status === 429) return r;
      }
      return null;
    })();
    assert.ok(one, 'a 429 again');
    assert.equal(one.body.error.code, 'rate_limited');
    assert.equal(one.headers['retry-after'], '1');
    assert.equal(one.headers['strict-transport-security'], 'max-age=63072000');
    assert.equal(one.headers['x-content-type-options'], 'nosniff');
    const health = await Promise.all(Array.from({ length: 150 }, () =>
      request(`${env.https}/healthz`, { ca: env.ca, agent }).then((r) => r.status)));
    assert.deepEqual([...new Set(health)], [200]);
  } finally {
    agent.destroy();
  }
});

test('a header block over 16 KiB gets a JSON 431 from nginx, and a daemon answer carries nosniff once', { skip }, async () => {
  const before = await countTasks(env.d.db);
  // Through nginx's 4 x 16k buffers, 18 KB to 64 KB reached the daemon's
  // HTTP library and its HTML 431; nginx now refuses what the daemon would.
  for (const size of [17 * 1024, 40 * 1024]) {
    const r = await request(`${env.https}/v1/tasks`, {
      method: 'POST', ca: env.ca, headers: { ...auth, 'x-pad': 'a'.repeat(size) },
      body: JSON.stringify({ callbackUrl: env.target.url('/pad') }),
    });
    assert.equal(r.status, 431, `${size}: ${r.text.slice(0, 200)}`);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.equal(r.body.error.code, 'headers_too_large');
  }
  assert.equal(await countTasks(env.d.db), before);
  const ok = await request(`${env.https}/v1/tasks?limit=1`, { ca: env.ca, headers: auth });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-content-type-options'], 'nosniff', 'once, not "nosniff, nosniff"');
});

test('nginx\'s own 414 (a request line over 16 KiB) and 403 (/metrics from an address not allowed) are JSON too', { skip }, async () => {
  const long = await request(`${env.https}/v1/tasks?limit=1&x=${'a'.repeat(17 * 1024)}`, { ca: env.ca, headers: auth });
  assert.equal(long.status, 414, long.text.slice(0, 200));
  assert.match(long.headers['content-type'], /application\/json/);
  assert.equal(long.body.error.code, 'uri_too_long');
  assert.equal(long.headers['strict-transport-security'], 'max-age=63072000');
  const denied = await request(`${env.https}/metrics`, { ca: env.ca, headers: auth, localAddress: '127.0.0.9' });
  assert.equal(denied.status, 403, denied.text.slice(0, 200));
  assert.match(denied.headers['content-type'], /application\/json/);
  assert.equal(denied.body.error.code, 'forbidden');
  // From the allowed address /metrics reaches the daemon, which wants a key.
  const allowed = await request(`${env.https}/metrics`, { ca: env.ca, headers: auth });
  assert.equal(allowed.status, 200);
  assert.match(allowed.text, /^# HELP /m);
});

// Last: it stops the daemon.
test('with the daemon down, nginx answers a JSON 502 bad_gateway (not an HTML page, and not a 503: the daemon may have acted)', { skip }, async () => {
  await env.d.stop();
  const r = await request(`${env.https}/v1/tasks?limit=1`, { ca: env.ca, headers: auth });
  assert.equal(r.status, 502, r.text.slice(0, 200));
  assert.match(r.headers['content-type'], /application\/json/);
  assert.equal(r.body.error.code, 'bad_gateway');
  assert.equal(r.headers['retry-after'], '1');
});
