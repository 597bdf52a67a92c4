// examples/nextjs end to end, without Next.js: the two route modules are
// imported as they are and their exported handlers called with real Request
// objects. A small HTTP server stands in for Next's router (it turns node
// requests into Requests for the route handlers), so the daemon's webhook
// reaches app/api/on-complete/route.js over real HTTP; the daemon calls a
// fake AI service. 'asyncqueue-js' is resolved as an installed package
// would be: through this package's "exports" map.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { signWebhook } from 'asyncqueue-js';
import { startDaemon, startFake, webhookSecret, waitFor, api, stopDaemon } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const example = join(here, '..', '..', '..', 'examples', 'nextjs');
const pkgURL = pathToFileURL(join(here, '..', 'package.json')).href;

// Resolve 'asyncqueue-js' and 'asyncqueue-js/*' from inside this package, so
// Node applies its "exports" map (package self-reference): what `npm install
// asyncqueue-js` gives the example.
register(`data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === 'asyncqueue-js' || specifier.startsWith('asyncqueue-js/')) {
    return next(specifier, { ...context, parentURL: ${JSON.stringify(pkgURL)} });
  }
  return next(specifier, context);
}`)}`);

const KEY = 'example-key-0123456789';
let d, ai, app, routes, secret;

/** Serves the example's routes like Next would: /api/<name> -> app/api/<name>/route.js. */
async function startApp() {
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const url = new URL(req.url, `http://${req.headers.host}`);
    const route = routes[url.pathname];
    const handler = route?.[req.method];
    if (!handler) { res.writeHead(404).end(); return; }
    const request = new Request(url, {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]])),
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
    });
    app.requests.push({ method: req.method, path: url.pathname, headers: req.headers });
    try {
      const response = await handler(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      const body = Buffer.from(await response.arrayBuffer());
      app.responses.push({ path: url.pathname, status: response.status, body: body.toString() });
      res.end(body);
    } catch (e) {
      app.responses.push({ path: url.pathname, status: 500, error: e });
      res.writeHead(500).end(String(e));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: server.address().port, requests: [], responses: [] };
}

before(async () => {
  ai = await startFake([{ status: 200, body: { image: 'https://cdn.example.com/lighthouse.png' }, delayMs: 200 }]);
  d = await startDaemon({ args: ['--api-key', KEY] });
  secret = await webhookSecret(d.db);
  app = await startApp();
  // The app's environment (.env.local), set before its modules are loaded.
  Object.assign(process.env, {
    ASYNCQUEUE_URL: d.url,
    ASYNCQUEUE_API_KEY: KEY,
    ASYNCQUEUE_WEBHOOK_SECRET: secret,
    VERCEL_URL: `127.0.0.1:${app.port}`,
    AI_SERVICE_URL: ai.url('/generate'),
  });
  const generate = await import(pathToFileURL(join(example, 'app/api/generate/route.js')).href);
  const onComplete = await import(pathToFileURL(join(example, 'app/api/on-complete/route.js')).href);
  routes = { '/api/generate': generate, '/api/on-complete': onComplete };
});
after(async () => {
  await ai?.close();
  app?.server.closeAllConnections();
  await new Promise((r) => (app ? app.server.close(r) : r()));
  await stopDaemon(d);
});

test('generate creates the task; the daemon calls the AI service; on-complete verifies and saves the result', async () => {
  const res = await routes['/api/generate'].POST(new Request('http://localhost/api/generate', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a lighthouse at dusk' }),
  }));
  assert.equal(res.status, 200);
  const { taskId, status } = await res.json();
  assert.equal(status, 'processing');
  assert.match(taskId, /^[0-9a-f-]{36}$/);

  // The AI service got the payload from the daemon.
  const [call] = await ai.waitForRequests(1);
  assert.deepEqual(JSON.parse(call.body), { prompt: 'a lighthouse at dusk' });
  assert.equal(call.headers['asyncqueue-task-id'], taskId);

  // The outcome arrived at on-complete, verified, and can be read back.
  const saved = await waitFor(async () => {
    const r = await routes['/api/on-complete'].GET(new Request(`http://localhost/api/on-complete?taskId=${taskId}`));
    return r.status === 200 ? r.json() : null;
  }, { timeout: 15000, what: 'the result to be saved' });
  assert.equal(saved.taskId, taskId);
  assert.equal(saved.status, 'completed');
  assert.deepEqual(saved.result, { image: 'https://cdn.example.com/lighthouse.png' });
  assert.match(saved.webhookId, /^msg_/);
  const delivery = app.responses.find((r) => r.path === '/api/on-complete');
  assert.equal(delivery.status, 200);
  assert.ok(app.requests.find((r) => r.path === '/api/on-complete').headers['webhook-signature'].startsWith('v1,'));

  // And the daemon recorded the delivery as taken.
  const task = await waitFor(async () => {
    const t = (await api(d.url, 'GET', `/v1/tasks/${taskId}`, undefined, { authorization: `Bearer ${KEY}` })).body;
    return t.webhook?.status === 'delivered' ? t : null;
  }, { what: 'the webhook to be marked delivered' });
  assert.equal(task.webhook.lastStatusCode, 200);
  assert.equal(task.webhookUrl, `http://127.0.0.1:${app.port}/api/on-complete`);
});

test('on-complete answers 401 to forged, stale and unsigned deliveries (saving nothing), 200 to a signed one', async () => {
  const body = JSON.stringify({ taskId: 'forged-task', status: 'completed', result: { image: 'evil.png' } });
  const now = Math.floor(Date.now() / 1000);
  const other = `whsec_${Buffer.from('another secret, 32 bytes long!!!').toString('base64')}`;
  const post = (headers) => fetch(`http://127.0.0.1:${app.port}/api/on-complete`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });
  const forged = await post({ 'webhook-id': 'msg_f', 'webhook-timestamp': String(now), 'webhook-signature': await signWebhook(other, 'msg_f', now, body) });
  assert.equal(forged.status, 401);
  assert.equal((await forged.json()).error.code, 'no_matching_signature');
  const stale = await post({ 'webhook-id': 'msg_s', 'webhook-timestamp': String(now - 3600), 'webhook-signature': await signWebhook(secret, 'msg_s', now - 3600, body) });
  assert.equal(stale.status, 401);
  assert.equal((await stale.json()).error.code, 'timestamp_too_old');
  const unsigned = await post({});
  assert.equal(unsigned.status, 401);
  const r = await routes['/api/on-complete'].GET(new Request('http://localhost/api/on-complete?taskId=forged-task'));
  assert.equal(r.status, 404, 'nothing saved');

  // Correctly signed with the daemon's secret: accepted.
  const good = await post({ 'webhook-id': 'msg_g', 'webhook-timestamp': String(now), 'webhook-signature': await signWebhook(secret, 'msg_g', now, body) });
  assert.equal(good.status, 200);
  assert.equal((await (await routes['/api/on-complete'].GET(new Request('http://localhost/api/on-complete?taskId=forged-task'))).json()).result.image, 'evil.png');
});
