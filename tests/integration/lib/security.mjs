// Helpers for the security tests (sec-*.test.mjs), beside harness.mjs:
// fakes bound to any loopback address (127.0.0.2, '::' dual stack), a raw
// TCP client for requests fetch() cannot make, a target that sends an
// endless body, a fake proxy that counts connections, process memory
// readings, and port reservation for programs that cannot take port 0.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { waitFor } from './harness.mjs';

/**
 * Like harness startFake, but listening on `host` (e.g. '127.0.0.2', or '::'
 * for every IPv4 and IPv6 loopback form at once). Records every request
 * ({ n, method, url, headers, body, at, remote }) and every TCP connection
 * (connections), so "received nothing" can be asserted at the socket level.
 */
export async function startFakeAt(host, script = [{ status: 200 }], { port = 0 } = {}) {
  const requests = [];
  const sockets = new Set();
  let connections = 0;
  const pick = (req, n) => (typeof script === 'function'
    ? script(req, n)
    : script[Math.min(n - 1, script.length - 1)]);
  const server = createHttpServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const rec = {
        n: requests.length + 1, method: req.method, url: req.url, headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), remote: req.socket.remoteAddress,
      };
      requests.push(rec);
      const entry = pick(rec, rec.n) ?? { status: 200 };
      if (entry.delayMs) await new Promise((r) => setTimeout(r, entry.delayMs));
      if (entry.hang) return;
      if (entry.destroy) { req.socket.destroy(); return; }
      const body = typeof entry.body === 'string' || Buffer.isBuffer(entry.body)
        ? entry.body
        : entry.body === undefined ? '' : JSON.stringify(entry.body);
      const headers = { ...(entry.headers ?? {}) };
      if (entry.body !== undefined && typeof entry.body !== 'string' && !Buffer.isBuffer(entry.body)) {
        headers['content-type'] ??= 'application/json';
      }
      res.writeHead(entry.status ?? 200, headers);
      res.end(body);
    });
  });
  server.on('connection', (s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((res, rej) => {
    server.once('error', rej);
    server.listen({ port, host, ipv6Only: false }, res);
  });
  const actualPort = server.address().port;
  const urlHost = host.includes(':') ? `[${host === '::' ? '::1' : host}]` : host;
  return {
    port: actualPort,
    host,
    url: (path = '/') => `http://${urlHost}:${actualPort}${path}`,
    requests,
    get connections() { return connections; },
    async waitForRequests(n, timeout = 10000) {
      await waitFor(() => requests.length >= n, { timeout, what: `${n} request(s) at the fake on ${host}:${actualPort}` });
      return requests;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A TCP listener that never speaks HTTP: it counts connections and the bytes
 * it receives, and closes nothing itself. Stands in for a proxy (which must
 * receive nothing) or for a TLS server whose handshake will fail
 * (closeOnData: drop the connection at its first bytes).
 */
export async function startListener(host = '127.0.0.1', { closeOnData = false } = {}) {
  let connections = 0;
  let bytes = 0;
  const sockets = new Set();
  const server = createNetServer((s) => {
    connections++;
    sockets.add(s);
    s.on('data', (d) => { bytes += d.length; if (closeOnData) s.destroy(); });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, host, r));
  return {
    port: server.address().port,
    get connections() { return connections; },
    get bytes() { return bytes; },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A target that answers 200 and then sends body bytes for ever (chunked, as
 * fast as the reader takes them) until the connection closes. `sent` holds
 * the bytes written per connection, `open` the connections still open.
 * With gzipBomb: instead a small gzip body that inflates to `inflatedBytes`.
 */
export async function startEndlessTarget({ chunkBytes = 64 * 1024, stopAfterBytes = 2 ** 31 } = {}) {
  const sent = [];
  let open = 0;
  const sockets = new Set();
  const chunk = Buffer.alloc(chunkBytes, 'A');
  const server = createNetServer((s) => {
    open++;
    sockets.add(s);
    const idx = sent.push(0) - 1;
    let head = '';
    let started = false;
    let closed = false;
    s.on('error', () => {});
    s.on('close', () => { closed = true; open--; sockets.delete(s); });
    const pump = () => {
      while (!closed && sent[idx] < stopAfterBytes) {
        const frame = Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')]);
        sent[idx] += chunk.length;
        if (!s.write(frame)) { s.once('drain', pump); return; }
      }
    };
    s.on('data', (d) => {
      if (started) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      started = true;
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
      pump();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    sent,
    get open() { return open; },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * Sends raw bytes (a string or Buffer, or an array of them written one after
 * another) to host:port and collects what comes back until the server
 * closes the connection, `untilText` appears, or timeoutMs passes.
 * Resolves { text, status, closed, timedOut, ms, error }.
 */
export function rawRequest(port, data, { host = '127.0.0.1', localAddress, timeoutMs = 5000, untilText } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = connect({ port, host, localAddress });
    let text = '';
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ text, status: m ? Number(m[1]) : null, ms: Date.now() - started, closed: false, timedOut: false, ...extra });
    };
    const timer = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (untilText && text.includes(untilText)) finish({});
    });
    s.on('end', () => finish({ closed: true }));
    s.on('close', () => finish({ closed: true }));
    s.on('error', (e) => finish({ closed: true, error: e.code }));
    s.on('connect', () => {
      for (const part of Array.isArray(data) ? data : [data]) s.write(part);
    });
  });
}

/** Opens a TCP connection and resolves once connected; the socket records close. */
export function openSocket(port, { host = '127.0.0.1', localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, localAddress });
    s.closedAt = null;
    s.received = '';
    s.on('data', (d) => { s.received += d.toString('latin1'); });
    s.on('close', () => { s.closedAt = Date.now(); });
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** VmRSS and VmHWM (peak) of a process, in KiB, from /proc/<pid>/status. */
export function memoryKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1]);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

/** A free TCP port on host, for programs that cannot listen on port 0 (nginx). */
export async function reservePort(host = '127.0.0.1') {
  const s = createNetServer();
  await new Promise((r) => s.listen(0, host, r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** How many times re matches the text. */
export function countMatches(text, re) {
  return (text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g')) ?? []).length;
}
