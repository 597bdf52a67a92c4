// The seed snippet, verbatim, in a child process whose environment
// has ASYNCQUEUE_URL and ASYNCQUEUE_API_KEY (and VERCEL_URL as Vercel sets
// it: a bare host name, no scheme), against a daemon started with --api-key.
// The snippet's body runs inside an async route handler (it ends in
// `return`), as it does in a Next.js route; only that wrapper is added.
//
// Its callbackUrl and webhookUrl are real outside host names, so the
// daemon's default queue is paused first: the task is stored and never
// dispatched, and no traffic leaves the machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, api, stopDaemon } from './helpers.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Exactly as in the issue (and in README.md, checked below). */
export const SEED = `import { AsyncQueue } from 'asyncqueue-js';
const aq = new AsyncQueue({ apiKey: process.env.ASYNCQUEUE_API_KEY });
const task = await aq.tasks.create({
  callbackUrl: 'https://ai-service.example.com/generate',
  payload: data,
  webhookUrl: \`\${process.env.VERCEL_URL}/api/on-complete\`,
  retries: 3,
});
return Response.json({ taskId: task.id, status: 'processing' });
`;

const KEY = 'seed-test-key-0123456789';
let d, dir;
before(async () => {
  d = await startDaemon({ args: ['--api-key', KEY] });
  const auth = { authorization: `Bearer ${KEY}` };
  assert.equal((await api(d.url, 'POST', '/v1/queues/default/pause', undefined, auth)).status, 200);
  // Inside the package, so that 'asyncqueue-js' resolves to it (package self-reference).
  dir = join(here, '.tmp', `seed-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const [importLine, ...body] = SEED.split('\n');
  writeFileSync(join(dir, 'route.mjs'), [
    importLine,
    'export async function POST(request) {',
    '  const data = await request.json();',
    ...body.map((l) => (l ? `  ${l}` : l)),
    '}',
  ].join('\n'));
  writeFileSync(join(dir, 'run.mjs'), `
import { POST } from './route.mjs';
try {
  const res = await POST(new Request('http://localhost/api/generate', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: process.argv[2],
  }));
  console.log(JSON.stringify({ status: res.status, body: await res.json() }));
} catch (e) {
  console.log(JSON.stringify({ error: { name: e.name, status: e.status, code: e.code, message: e.message } }));
  process.exitCode = 1;
}
`);
});
after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await stopDaemon(d);
});

function run(env, data) {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ASYNCQUEUE_') && k !== 'VERCEL_URL'));
    const p = spawn(process.execPath, [join(dir, 'run.mjs'), JSON.stringify(data)], {
      env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '', err = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { err += c; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('the snippet timed out')); }, 20_000);
    p.on('close', (code) => { // not 'exit': the pipes may still hold output then
      clearTimeout(t);
      try { resolve({ code, ...JSON.parse(out.trim().split('\n').pop()) }); } catch { reject(new Error(`no JSON from the snippet (exit ${code}): ${out}${err}`)); }
    });
  });
}

test('the seed snippet, unchanged, creates the task and answers { taskId, status: "processing" }', async () => {
  const data = { prompt: 'a lighthouse at dusk', size: 1024 };
  const r = await run({ ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: KEY, VERCEL_URL: 'my-app-git-main.vercel.app' }, data);
  assert.equal(r.code, 0, JSON.stringify(r));
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'processing');
  assert.match(r.body.taskId, /^[0-9a-f-]{36}$/);

  const task = (await api(d.url, 'GET', `/v1/tasks/${r.body.taskId}`, undefined, { authorization: `Bearer ${KEY}` })).body;
  assert.equal(task.status, 'queued');
  assert.equal(task.callbackUrl, 'https://ai-service.example.com/generate');
  assert.deepEqual(task.payload, data);
  // VERCEL_URL has no scheme on Vercel; the client adds https://.
  assert.equal(task.webhookUrl, 'https://my-app-git-main.vercel.app/api/on-complete');
  assert.equal(task.retries, 3);
  assert.match(task.idempotencyKey, /^[0-9a-f-]{36}$/, 'created with a generated Idempotency-Key');
});

test('the seed snippet with a wrong ASYNCQUEUE_API_KEY fails with AuthenticationError', async () => {
  const r = await run({ ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: 'wrong', VERCEL_URL: 'x.vercel.app' }, {});
  assert.equal(r.code, 1);
  assert.deepEqual([r.error.name, r.error.status, r.error.code], ['AuthenticationError', 401, 'unauthorized']);
});

test('the seed snippet with VERCEL_URL unset fails with a ValidationError that says why', async () => {
  const r = await run({ ASYNCQUEUE_URL: d.url, ASYNCQUEUE_API_KEY: KEY }, {});
  assert.equal(r.code, 1);
  assert.equal(r.error.name, 'ValidationError');
  assert.equal(r.error.code, 'invalid_field');
  assert.match(r.error.message, /undefined\/api\/on-complete.*environment variable/);
});

test('README.md shows the seed snippet exactly', () => {
  const readme = readFileSync(join(here, '..', 'README.md'), 'utf8');
  assert.ok(readme.includes(SEED), 'README.md must contain the seed snippet verbatim');
});
