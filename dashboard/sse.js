// Server-sent events over fetch. EventSource cannot send an Authorization
// header, so the dashboard reads /v1/events with fetch and parses the stream
// itself (https://html.spec.whatwg.org/multipage/server-sent-events.html).

/** Incremental text/event-stream parser: push() text chunks, get events. */
export class SSEParser {
  constructor(onEvent, onComment = () => {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.buf = '';
    this.data = [];
    this.type = '';
    this.lastId = '';
    this.retry = null;
  }

  push(chunk) {
    this.buf += chunk;
    let start = 0;
    const b = this.buf;
    for (let i = 0; i < b.length; i++) {
      const c = b.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the very end may be the first half of CRLF: wait for more.
      if (c === 13 && i + 1 === b.length) break;
      this.line(b.slice(start, i));
      if (c === 13 && b.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.buf = b.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length) {
        this.onEvent({ type: this.type || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

/**
 * Keeps a stream open, reconnecting with exponential backoff (and jitter).
 *   url, headers(): request target and headers (called per connection)
 *   onEvent({type, data, id}), onOpen(isReconnect), onState(state, detail)
 *   states: connecting | connected | reconnecting | unauthorized | stopped
 * Returns { stop(), done }.
 */
export function openEventStream({ url, headers, onEvent, onOpen, onState, idleMs = 45000 }) {
  let stopped = false;
  let ctrl = null;
  let failures = 0;
  let baseMs = 1000;
  let wake = null;
  let everOpened = false;

  const sleep = (ms) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    wake = () => { clearTimeout(t); resolve(); };
  });

  async function once() {
    ctrl = new AbortController();
    const mine = ctrl;
    let idle = null;
    const arm = () => {
      clearTimeout(idle);
      // The daemon sends a comment every 15 s: silence means a dead connection.
      idle = setTimeout(() => mine.abort(), idleMs);
    };
    try {
      const res = await fetch(url, {
        headers: { Accept: 'text/event-stream', ...headers() },
        signal: mine.signal,
        cache: 'no-store',
      });
      if (res.status === 401 || res.status === 403) {
        if (res.body) res.body.cancel().catch(() => {});
        onState('unauthorized', res.status);
        return 'fatal';
      }
      if (!res.ok || !res.body) {
        if (res.body) res.body.cancel().catch(() => {});
        throw new Error(`HTTP ${res.status}`);
      }
      // The subscription exists once the answer's headers are here.
      failures = 0;
      onState('connected');
      onOpen(everOpened);
      everOpened = true;
      arm();
      const parser = new SSEParser(onEvent);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        parser.push(value);
        if (parser.retry) baseMs = Math.max(250, parser.retry / 2);
      }
    } catch (e) {
      if (stopped) return 'stopped';
    } finally {
      clearTimeout(idle);
    }
    return 'closed';
  }

  const done = (async () => {
    while (!stopped) {
      onState(everOpened || failures ? 'reconnecting' : 'connecting');
      const outcome = await once();
      if (stopped || outcome === 'fatal') break;
      failures++;
      onState('reconnecting');
      const ms = Math.min(30000, baseMs * 2 ** Math.min(failures - 1, 6));
      await sleep(ms / 2 + Math.random() * ms / 2);
    }
    if (stopped) onState('stopped');
  })();

  return {
    done, // settles when it gives up (401/403) or is stopped
    stop() {
      stopped = true;
      if (ctrl) ctrl.abort();
      if (wake) wake();
    },
  };
}
