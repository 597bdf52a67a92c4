#!/usr/bin/env node
// The checker as a command:
//
//   node tests/faults/check.mjs --accepted a.jsonl --db x.db \
//        [--target t.jsonl] [--webhooks w.jsonl] [--no-expect-webhooks] [--json]
//
// a.jsonl: the client's creates, one JSON object a line:
//          {"key": "...", "status": 202, "id": "..."}   accepted (200: replayed)
//          {"key": "...", "status": 0, "error": "..."}  no answer (timeout, reset)
//          {"key": "...", "status": 503, "code": "unavailable"}  refused
// t.jsonl: the target's calls: {"taskId": "<AsyncQueue-Task-Id>", "attempt": 1}
// w.jsonl: the receiver's deliveries: {"webhookId": "msg_...", "taskId": "...", "status": 200}
//
// Prints a report (or JSON) and exits 0 when nothing is lost, unexpected or
// stuck and no other failure was found, 1 when something was, 2 on bad usage.
import { parseArgs } from 'node:util';
import { check, readJsonl, formatReport } from './lib/checker.mjs';

let opts;
try {
  opts = parseArgs({
    options: {
      accepted: { type: 'string' },
      db: { type: 'string' },
      target: { type: 'string' },
      webhooks: { type: 'string' },
      'no-expect-webhooks': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      limit: { type: 'string', default: '20' },
    },
  }).values;
  if (!opts.accepted || !opts.db) throw new Error('--accepted and --db are required');
} catch (e) {
  process.stderr.write(`check.mjs: ${e.message}\n` +
    'usage: node tests/faults/check.mjs --accepted a.jsonl --db x.db [--target t.jsonl] ' +
    '[--webhooks w.jsonl] [--no-expect-webhooks] [--json]\n');
  process.exit(2);
}

try {
  const r = check({
    accepted: readJsonl(opts.accepted),
    db: opts.db,
    target: opts.target ? readJsonl(opts.target) : null,
    webhooks: opts.webhooks ? readJsonl(opts.webhooks) : null,
    expectWebhooks: opts.webhooks ? !opts['no-expect-webhooks'] : false,
    limit: Number(opts.limit),
  });
  process.stdout.write(opts.json ? JSON.stringify(r, null, 2) + '\n' : formatReport(r) + '\n');
  process.exit(r.ok ? 0 : 1);
} catch (e) {
  process.stderr.write(`check.mjs: ${e.message}\n`);
  process.exit(2);
}
