// GET /v1/events: the live feed. A client that reconnects with
// Last-Event-ID continues after the last event it saw, missing nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope, api, waitFor } from './lib/harness.mjs';

/** Reads SSE from the daemon until `until(events)` holds; returns the events. */
async function readEvents(url, headers, until) {
  const ctl = new AbortController();
  const res = await fetch(`${url}/v1/events`, { headers, signal: ctl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  const events = [];
  try {
    await waitFor(async () => {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      text += dec.decode(value, { stream: true });
      let cut;
      while ((cut = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, cut);
        text = text.slice(cut + 2);
        const id = block.match(/^id: (\d+)$/m);
        const data = block.match(/^data: (.*)$/m);
        const name = block.match(/^event: (.*)$/m);
        if (data) events.push({ id: id && Number(id[1]), event: name && name[1], data: JSON.parse(data[1]) });
      }
      return until(events);
    }, { timeout: 10000, what: 'events' });
  } finally {
    ctl.abort();
  }
  return events;
}

test('events arrive as tasks change, and a reconnect with Last-Event-ID misses none', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const create = () => api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 });
  // First connection: see one event, then go away.
  const reading = readEvents(d.url, {}, (ev) => ev.length >= 1);
  await waitFor(async () => (await api(d.url, 'GET', '/v1/stats')).body.subscribers === 1, { what: 'the subscriber' });
  const first = (await create()).body.id;
  const seen = await reading;
  assert.equal(seen[0].event, 'task');
  assert.equal(seen[0].data.change, 'accepted');
  assert.equal(seen[0].data.id, first);
  // While the client is away, two more tasks arrive and one is cancelled.
  // (The daemon notices a vanished stream only at its next write; events are
  // kept for a minute after the last subscriber either way.)
  const a = (await create()).body.id;
  const b = (await create()).body.id;
  assert.equal((await api(d.url, 'POST', `/v1/tasks/${a}/cancel`)).status, 200);
  // The reconnect continues after the last event it saw.
  const resumed = await readEvents(d.url, { 'last-event-id': String(seen[0].id) }, (ev) => ev.length >= 3);
  assert.deepEqual(resumed.slice(0, 3).map((e) => [e.data.change, e.data.id]),
    [['accepted', a], ['accepted', b], ['cancelled', a]]);
  assert.equal(resumed[0].id, seen[0].id + 1);
});

test('HEAD /v1/events answers the stream\'s headers with no body, and opens no subscription', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const r = await fetch(`${d.url}/v1/events`, { method: 'HEAD' });
  assert.equal(r.status, 200); // was 405, where RFC 9110 asks every GET route to take HEAD
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(await r.text(), '');
  const stats = await api(d.url, 'GET', '/v1/stats?minutes=1');
  assert.equal(stats.body.subscribers, 0);
});

test('a reconnect with an id from before a restart gets event: reset, then what the new process published', async (t) => {
  const s = scope(t);
  const dir = s.tempDir();
  const db = `${dir.dir}/events.db`;
  // Events are published while someone listens: a stream open on each
  // process while its task is created.
  const listen = async (d, create) => {
    const seen = readEvents(d.url, {}, (ev) => ev.some((e) => e.data.id === made?.body.id));
    let made;
    await waitFor(async () => (await api(d.url, 'GET', '/v1/stats?minutes=1')).body.subscribers === 1, { what: 'the stream' });
    made = await api(d.url, 'POST', '/v1/tasks', create);
    assert.equal(made.status, 202);
    return { made, events: await seen };
  };
  const first = await s.daemon({ db });
  const one = await listen(first, { callbackUrl: 'http://127.0.0.1:9/a', delay: 3600 });
  const lastId = one.events.at(-1).id;
  await first.stop();
  const second = await s.daemon({ db });
  const two = await listen(second, { callbackUrl: 'http://127.0.0.1:9/b', delay: 3600 });
  // Ids started again at 1: the old Last-Event-ID resumed somewhere in the
  // new process's events, or "from the future" started now, with no reset.
  const after = await readEvents(second.url, { 'last-event-id': String(lastId) },
    (ev) => ev.some((e) => e.data?.id === two.made.body.id));
  assert.equal(after[0].event, 'reset', JSON.stringify(after.slice(0, 2)));
  assert.ok(after.find((e) => e.data?.id === two.made.body.id).id > lastId, 'ids go on rising across the restart');
});
