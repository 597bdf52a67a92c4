// What the client needs from the platform, found at call time: fetch and Web
// Crypto are globals in Node 19+, Deno, Bun, browsers and edge runtimes.
// Node 18 has no global `crypto` (only behind a flag), so there, and only
// there, Web Crypto is taken from Node's own module. The specifier is not a
// literal, so bundlers for edge runtimes do not try to resolve it.

let nodeCrypto;

async function fromNode() {
  if (!nodeCrypto) {
    const specifier = ['node', 'crypto'].join(':');
    nodeCrypto = import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
  }
  return nodeCrypto;
}

/** The Web Crypto object (`crypto.subtle`, `getRandomValues`, `randomUUID`). */
export async function webCrypto() {
  const c = globalThis.crypto;
  if (c && c.subtle) return c;
  const m = await fromNode();
  return m.webcrypto;
}

/** A random UUID (version 4). */
export async function randomUUID() {
  const c = await webCrypto();
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** process.env when there is one (Node, and most edge runtimes), else {}. */
export function env() {
  return typeof process !== 'undefined' && process && process.env ? process.env : {};
}
