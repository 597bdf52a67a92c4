// A target and a webhook receiver in their own process, for the soak (so
// the load generator's event loop does not slow them down, nor they it).
// Both answer 200 and append what they saw to JSON-lines files the checker
// reads:
//   node fakes-child.mjs <target.jsonl> <webhooks.jsonl> [target delay ms]
// Prints {"target": port, "receiver": port} on stdout once listening;
// flushes its files and exits on SIGTERM.
import { createServer } from 'node:http';
import { createWriteStream } from 'node:fs';

const [targetLog, webhookLog, delayArg] = process.argv.slice(2);
const delayMs = Number(delayArg ?? 0);
const tOut = createWriteStream(targetLog);
const wOut = createWriteStream(webhookLog);
let calls = 0, deliveries = 0;

function serve(onRequest) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => onRequest(req, res, Buffer.concat(chunks)));
  });
  server.keepAliveTimeout = 5000;
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

const target = await serve((req, res) => {
  calls++;
  tOut.write(JSON.stringify({ taskId: req.headers['asyncqueue-task-id'] ?? null,
    attempt: Number(req.headers['asyncqueue-attempt'] ?? 0) }) + '\n');
  const answer = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); };
  if (delayMs) setTimeout(answer, delayMs); else answer();
});
const receiver = await serve((req, res, body) => {
  deliveries++;
  let taskId = null;
  try { taskId = JSON.parse(body).taskId; } catch { /* not JSON */ }
  wOut.write(JSON.stringify({ webhookId: req.headers['webhook-id'] ?? null, taskId, status: 200 }) + '\n');
  res.writeHead(200);
  res.end();
});
process.stdout.write(JSON.stringify({ target: target.address().port, receiver: receiver.address().port }) + '\n');
process.on('SIGTERM', () => {
  target.close();
  receiver.close();
  let open = 2;
  const done = () => { if (--open === 0) { process.stdout.write(JSON.stringify({ calls, deliveries }) + '\n'); process.exit(0); } };
  tOut.end(done);
  wOut.end(done);
});
