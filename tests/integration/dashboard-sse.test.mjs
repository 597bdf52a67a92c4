// The dashboard's event-stream client (dashboard/sse.js), run in Node: the
// parser on awkward chunkings, and the reconnecting reader against the real
// daemon and against a server that drops the stream or refuses the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { SSEParser, openEventStream } from '../../dashboard/sse.js';
import { startDaemon, startFake, api, waitFor } from './lib/harness.mjs';

function parseAll(chunks) {
  const events = [];
  const comments = [];
  const p = new SSEParser((e) => events.push(e), (c) => comments.push(c));
  for (const c of chunks) p.push(c);
  return { events, comments, parser: p };
}

test('the SSE parser handles any chunking, CRLF, multi-line data, comments, id and retry', () => {
  const text = ': asyncqueue events\r\nretry: 2000\r\n\r\nid: 7\r\nevent: task\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
    + 'event: reset\ndata: {}\n\nevent: lonely\n\ndata:no space\r\r\n';
  const want = [
    { type: 'task', data: '{"a":\n1}', id: '7' },
    { type: 'reset', data: '{}', id: '7' },
    { type: 'message', data: 'no space', id: '7' },
  ];
  // Every split point, including between CR and LF.
  for (let i = 0; i <= text.length; i++) {
    const { events, comments, parser } = parseAll([text.slice(0, i), text.slice(i)]);
    assert.deepEqual(events, want, `split at ${i}`);
    assert.deepEqual(comments, ['asyncqueue events']);
    assert.equal(parser.retry, 2000);
  }
  // One character at a time.
  assert.deepEqual(parseAll([...text]).events, want);
});

test('the stream client receives task events from the daemon with the key', { timeout: 30000 }, async (t) => {
  const key = 'stream-test-key-0123456789';
  const target = await startFake([{ status: 200 }]);
  const d = await startDaemon({ args: ['--api-key', key] });
  const got = [];
  const states = [];
  let opened = 0;
  const s = openEventStream({
    url: `${d.url}/v1/events`,
    headers: () => ({ Authorization: `Bearer ${key}` }),
    onEvent: (e) => got.push(e),
    onOpen: () => { opened++; },
    onState: (st) => states.push(st),
  });
  t.after(async () => { s.stop(); await d.stop(); d.cleanup(); await target.close(); });
  await waitFor(() => opened === 1, { what: 'the stream to open' });
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/x'), queue: 'sse' },
    { authorization: `Bearer ${key}` });
  assert.equal(created.status, 202);
  await waitFor(() => got.some((e) => e.type === 'task' && JSON.parse(e.data).change === 'completed'),
    { what: 'the completed event' });
  const changes = got.filter((e) => e.type === 'task').map((e) => JSON.parse(e.data))
    .filter((e) => e.id === created.body.id).map((e) => `${e.change}:${e.status}`);
  assert.deepEqual(changes, ['accepted:queued', 'started:running', 'completed:completed']);
  assert.deepEqual(states, ['connecting', 'connected']);
});

test('the stream client reconnects with backoff after a drop, and stops on 401', { timeout: 30000 }, async (t) => {
  let served = 0;
  let refuse = false;
  const server = createServer((req, res) => {
    if (refuse) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"unauthorized","message":"no"}}');
      return;
    }
    served++;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`retry: 200\n\nevent: task\ndata: {"n":${served}}\n\n`);
    setTimeout(() => res.end(), 20); // drop the stream
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/v1/events`;
  const opens = [];
  const states = [];
  const events = [];
  const s = openEventStream({
    url, headers: () => ({}),
    onEvent: (e) => events.push(JSON.parse(e.data).n),
    onOpen: (again) => opens.push(again),
    onState: (st) => states.push(st),
  });
  let finished = false;
  s.done.then(() => { finished = true; });
  t.after(async () => {
    s.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  await waitFor(() => opens.length >= 3, { what: 'two reconnections' });
  assert.deepEqual(opens.slice(0, 3), [false, true, true], 'a reconnection says so (the page then reloads)');
  await waitFor(() => events.length >= 3, { what: 'events from each connection' });
  assert.deepEqual(events.slice(0, 3), [1, 2, 3]);
  assert.ok(states.includes('reconnecting'));
  refuse = true;
  // A refused key is final: the client gives up instead of retrying.
  await waitFor(() => finished, { what: 'the client to give up' });
  assert.equal(states.at(-1), 'unauthorized');
});
