// Runs inside a network namespace made by sec-ssrf.test.mjs, whose
// /etc/hosts (bind-mounted by `ip netns exec`) maps test names to loopback
// addresses. Starts the daemon WITHOUT allow_private_targets (only the name
// ok.test is allowed) and one dual-stack fake target that would answer on
// every loopback form, creates tasks to the names, waits until each is
// final, and prints one JSON line with what happened for the outer test to
// judge. It asserts nothing itself.
import { startDaemon, api, waitFor } from './harness.mjs';
import { startFakeAt } from './security.mjs';

const names = JSON.parse(process.argv[2]);   // names to call; each must be refused
const allowed = JSON.parse(process.argv[3]); // names allow_destinations lets through
const allowList = process.argv[4];           // the allow_destinations setting
const withPort = JSON.parse(process.argv[5]); // allowed names to call with an explicit :80
// Port 80, free in a fresh namespace, so URLs need no port (http://ok.test/).
const fake = await startFakeAt('::', (req) => (req.url.startsWith('/redir?to=')
  ? { status: 302, headers: { location: decodeURIComponent(req.url.slice(10)) } }
  : { status: 200, body: { ok: true } }), { port: 80 });
const d = await startDaemon({ private: false, args: ['--allow-destinations', allowList] });
const out = { port: fake.port, tasks: {}, webhook: null, requests: [], connections: 0 };
try {
  const ids = {};
  const create = async (key, body) => {
    const r = await api(d.url, 'POST', '/v1/tasks', { retries: 3, timeout: 5, ...body });
    ids[key] = r.status === 202 ? r.body.id : { createStatus: r.status, body: r.body };
  };
  for (const name of [...names, ...allowed]) await create(name, { callbackUrl: `http://${name}/${name}` });
  for (const name of withPort) await create(`${name}:80`, { callbackUrl: `http://${name}:80/${name}:80`, retries: 0 });
  // A redirect from an allowed name to a refused one: checked again when connecting.
  await create('redirect', {
    callbackUrl: `http://${allowed[0]}/redir?to=${encodeURIComponent(`http://${names[0]}/after-redirect`)}`,
    followRedirects: true,
  });
  // A webhook to a refused name, from a task whose target is allowed.
  const wr = await api(d.url, 'POST', '/v1/tasks', {
    callbackUrl: `http://${allowed[0]}/for-webhook`,
    webhookUrl: `http://${names[0]}/hook`,
  });
  for (const [name, id] of Object.entries(ids)) {
    if (typeof id !== 'string') { out.tasks[name] = id; continue; }
    out.tasks[name] = await waitFor(async () => {
      const t = (await api(d.url, 'GET', `/v1/tasks/${id}`)).body;
      return ['completed', 'failed'].includes(t.status) ? t : null;
    }, { timeout: 15000, what: `task to ${name}` });
  }
  out.webhook = await waitFor(async () => {
    const t = (await api(d.url, 'GET', `/v1/tasks/${wr.body.id}`)).body;
    return t.webhook && ['delivered', 'failed'].includes(t.webhook.status) ? t : null;
  }, { timeout: 15000, what: 'the webhook to a refused name' });
} catch (e) {
  out.error = String(e?.stack ?? e);
} finally {
  out.requests = fake.requests.map((r) => ({ url: r.url, remote: r.remote }));
  out.connections = fake.connections;
  out.exit = await d.stop();
  out.log = d.logs();
  d.cleanup();
  await fake.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
