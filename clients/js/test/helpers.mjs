// Shared by the client tests: the daemon harness of the integration suite
// (the real binary, port 0, a temp database), a scriptable HTTP proxy in
// front of it, and small utilities. Everything listens on 127.0.0.1 only.
import { createServer, request as httpRequest } from 'node:http';
import { once } from 'node:events';

export {
  BIN, startDaemon, startFake, runBinary, waitFor, tempDir, api, waitForStatus,
} from '../../../tests/integration/lib/harness.mjs';
import { runBinary } from '../../../tests/integration/lib/harness.mjs';

/**
 * Stops the daemon (SIGTERM) and checks it ended cleanly: exit code 0 and no
 * AddressSanitizer/UBSan report in its log (the suite also runs against the
 * sanitized build). Removes its temp database.
 */
export async function stopDaemon(d) {
  if (!d) return;
  const exit = await d.stop();
  const logs = d.logs();
  d.cleanup();
  const report = logs.match(/(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:)[^\n]*/);
  if (report) throw new Error(`the daemon's sanitizer reported: ${report[0]}\n${logs.slice(-4000)}`);
  if (exit.code !== 0) throw new Error(`the daemon exited with ${JSON.stringify(exit)}\n${logs.slice(-2000)}`);
}

/** The daemon's webhook secret, printed by `asyncqueue --print-webhook-secret --db <db>`. */
export async function webhookSecret(db) {
  const r = await runBinary(['--print-webhook-secret', '--db', db]);
  if (r.code !== 0) throw new Error(`--print-webhook-secret failed (${r.code}): ${r.stderr}`);
  const secret = r.stdout.trim();
  if (!/^whsec_[A-Za-z0-9+/=]+$/.test(secret)) throw new Error(`unexpected secret: ${secret}`);
  return secret;
}

/**
 * An HTTP proxy on 127.0.0.1:0 in front of `upstream` (a base URL). For each
 * request, `script(req, n)` returns what to do:
 *   'forward'                         pass it on and relay the answer
 *   'forward-drop'                    pass it on, then drop the client's connection
 *                                     instead of relaying the answer (a lost response)
 *   'drop'                            drop the connection without forwarding
 *   { status, headers, body }         answer this itself
 *   { forward: true, status, ... }    pass it on, then answer this instead of
 *                                     the daemon's answer (a proxy failing late)
 * Every request is recorded as { n, method, url, headers, body, at, action }.
 */
export async function startProxy(upstream, script = () => 'forward') {
  const target = new URL(upstream);
  const requests = [];
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const rec = {
      n: requests.length + 1, method: req.method, url: req.url, headers: req.headers,
      body: body.toString('utf8'), at: Date.now(),
    };
    requests.push(rec);
    const action = script(rec, rec.n) ?? 'forward';
    rec.action = typeof action === 'string' ? action : action.status;
    if (action === 'drop') { req.socket.destroy(); return; }
    if (typeof action === 'object' && !action.forward) {
      const b = typeof action.body === 'string' ? action.body : JSON.stringify(action.body ?? {});
      res.writeHead(action.status, { 'content-type': 'application/json', ...(action.headers ?? {}) });
      res.end(b);
      return;
    }
    const up = httpRequest({
      host: target.hostname, port: target.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: target.host },
    });
    up.end(body);
    const [answer] = await once(up, 'response');
    const answerChunks = [];
    for await (const c of answer) answerChunks.push(c);
    rec.upstreamStatus = answer.statusCode;
    if (action === 'forward-drop') { req.socket.destroy(); return; }
    if (typeof action === 'object') {
      res.writeHead(action.status, action.headers ?? {});
      res.end(typeof action.body === 'string' ? action.body : JSON.stringify(action.body ?? {}));
      return;
    }
    const headers = { ...answer.headers };
    delete headers['transfer-encoding'];
    delete headers.connection;
    res.writeHead(answer.statusCode, headers);
    res.end(Buffer.concat(answerChunks));
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A fetch that records every call (url, method, headers, status, responseHeaders) before returning the response. */
export function recordingFetch(log = []) {
  const f = async (url, init = {}) => {
    const entry = { url: String(url), method: init.method ?? 'GET', headers: { ...(init.headers ?? {}) }, at: Date.now() };
    log.push(entry);
    try {
      const res = await fetch(url, init);
      entry.status = res.status;
      entry.responseHeaders = res.headers;
      return res;
    } catch (e) {
      entry.error = e;
      throw e;
    }
  };
  f.log = log;
  return f;
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort() {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
