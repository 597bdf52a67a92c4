// The checker: after a faulty run, count what happened to every task, the
// way Jepsen counts a queue. It reads four records that do not trust each
// other:
//
//   accepted  the client's log, one entry per create it sent:
//             { key, status, id?, code?, error? }
//             status 202 (or 200, an idempotent replay) with id: accepted;
//             status 0 (no answer: reset, timeout): uncertain;
//             any other status: refused (the API promises nothing was stored).
//   db        the daemon's SQLite database (read with the sqlite3 CLI)
//   target    the fake target's log of calls: { taskId, attempt }
//   webhooks  the receiver's log of deliveries: { webhookId, taskId, status }
//             (status: what the receiver answered; 2xx means it took it)
//
// and reports:
//   lost              accepted, but not in the database
//   stuck             accepted and stored, but not final (queued/running) now
//   unexpected        stored but never accepted, and no create for it went
//                     unanswered (e.g. stored although the client got 503)
//   storedWithout202  stored, never accepted, but a create for its key got no
//                     answer: the client cannot know, so this is allowed
//   duplicateCalls    tasks whose target was called more than once (at least
//                     once delivery: reported, not a failure), and the calls
//                     no recorded attempt explains (a failure)
//   duplicateWebhooks webhook-ids the receiver took more than once (reported)
//   webhooks whose task is not final, whose webhook-id is not the stored one,
//   and final tasks whose webhook never arrived (failures)
//   halfStored        rows a half-done write leaves: an idempotency key with
//                     no task or a keyed task with no key row, attempts or
//                     webhooks of no task, a final task with a webhookUrl but
//                     no outbox row (failures)
//
// ok is true when every failure count is zero. Lost, unexpected and stuck
// must be zero in every fault test; duplicates are reported.
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * Reads a JSON-lines file into an array (blank lines skipped). Line by line
 * from the bytes: a soak's log is larger than one JavaScript string may be
 * (about 512 MB).
 */
export function readJsonl(path) {
  if (!path) return [];
  const buf = readFileSync(path);
  const out = [];
  for (let start = 0, n = 1; start < buf.length; n++) {
    let end = buf.indexOf(10, start);
    if (end < 0) end = buf.length;
    const line = buf.toString('utf8', start, end);
    start = end + 1;
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line)); } catch (e) { throw new Error(`${path}:${n}: ${e.message}`); }
  }
  return out;
}

function query(db, q) {
  const out = execFileSync('sqlite3', ['-readonly', '-json', '-cmd', '.timeout 5000', db, q],
    { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  return out.trim() ? JSON.parse(out) : [];
}

/**
 * query() over a whole table in pages of `page` rows by rowid: sqlite3's
 * output for millions of rows (a 30-minute soak stores 3.7 million tasks)
 * is longer than one JavaScript string may be.
 */
function queryPaged(db, select, from, rowid, page = 200000) {
  const rows = [];
  for (let after = 0; ;) {
    const part = query(db, `${select}, ${rowid} AS _seq FROM ${from} WHERE ${rowid} > ${after} ORDER BY ${rowid} LIMIT ${page};`);
    for (const r of part) {
      after = r._seq;
      delete r._seq;
      rows.push(r);
    }
    if (part.length < page) return rows;
  }
}

/**
 * The tasks and webhook rows the checker needs, from the database file
 * (page: rows a query reads at a time).
 */
export function readDb(db, { page } = {}) {
  if (!existsSync(db)) throw new Error(`no database at ${db}`);
  const tasks = queryPaged(db, 'SELECT id, status, idempotency_key AS key, attempts, attempts_uncounted AS uncounted, ' +
    'max_retries AS retries, webhook_url IS NOT NULL AS hasWebhook, ' +
    '(SELECT count(*) FROM attempts a WHERE a.task_seq = t.seq) AS attemptRows', 'tasks t', 't.rowid', page);
  const webhooks = queryPaged(db, 'SELECT id, task_id AS taskId, status, attempts', 'webhooks', 'rowid', page);
  // Rows a half-done write would leave behind. (Retention deletes keys after
  // idempotency_window and tasks after retention; runs here are shorter.)
  const halfStored = query(db, `SELECT
    (SELECT count(*) FROM idempotency i WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = i.task_id)) AS keyWithoutTask,
    (SELECT count(*) FROM tasks t WHERE t.idempotency_key IS NOT NULL
       AND t.id NOT IN (SELECT task_id FROM idempotency)) AS taskWithoutKey,
    (SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.seq = a.task_seq)) AS attemptWithoutTask,
    (SELECT count(*) FROM webhooks w WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.seq = w.task_seq)) AS webhookWithoutTask,
    (SELECT count(*) FROM tasks t WHERE t.status IN ('completed','failed','cancelled') AND t.webhook_url IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.task_seq = t.seq)) AS finalWithoutOutbox;`)[0];
  return { tasks, webhooks, halfStored };
}

/**
 * check({ accepted, db | dbData, target, webhooks, expectWebhooks, limit })
 *   accepted: client log entries; db: a database path (or dbData: readDb's
 *   shape, for tests); target, webhooks: fake logs (optional: omit to skip
 *   those checks); expectWebhooks: every final task with a webhookUrl must
 *   have been taken by the receiver (default: true when webhooks is given).
 * Returns { ok, summary, failures, ...lists }. Lists are cut to `limit` ids.
 */
export function check({ accepted = [], db, dbData, target = null, webhooks = null,
  expectWebhooks, limit = 20 }) {
  const data = dbData ?? readDb(db);
  const expectWh = expectWebhooks ?? (webhooks !== null);
  const byId = new Map(data.tasks.map((t) => [t.id, t]));
  const byKey = new Map();
  for (const t of data.tasks) {
    if (!t.key) continue;
    if (!byKey.has(t.key)) byKey.set(t.key, []);
    byKey.get(t.key).push(t);
  }

  // The client's view, per key and per id.
  const acceptedIds = new Set();
  const keyIds = new Map();        // key -> Set of ids answered for it
  const uncertainKeys = new Set(); // keys with at least one unanswered create
  const refusedKeys = new Set();   // keys with an answered non-2xx create
  for (const e of accepted) {
    if ((e.status === 202 || e.status === 200) && e.id) {
      acceptedIds.add(e.id);
      if (e.key) {
        if (!keyIds.has(e.key)) keyIds.set(e.key, new Set());
        keyIds.get(e.key).add(e.id);
      }
    } else if (!e.status) {
      if (e.key) uncertainKeys.add(e.key);
    } else if (e.key) {
      refusedKeys.add(e.key);
    }
  }

  const lost = [...acceptedIds].filter((id) => !byId.has(id));
  const stuck = [...acceptedIds].filter((id) => byId.has(id) && !FINAL.has(byId.get(id).status));
  const unexpected = [];
  const storedWithout202 = [];
  for (const t of data.tasks) {
    if (acceptedIds.has(t.id)) continue;
    if (t.key && uncertainKeys.has(t.key) && !keyIds.has(t.key)) storedWithout202.push(t.id);
    else unexpected.push(t.id);
  }
  // Idempotency: one key, one task; the same key never answered two ids.
  const keyAnsweredTwice = [...keyIds].filter(([, ids]) => ids.size > 1).map(([k]) => k);
  const keyStoredTwice = [...byKey].filter(([, ts]) => ts.length > 1).map(([k]) => k);
  const storedWithoutAnswer = storedWithout202.filter((id) => !FINAL.has(byId.get(id).status));

  // Target calls.
  const calls = new Map(); // taskId -> [attempt numbers]
  let callsTotal = 0;
  const callsForUnknownTasks = [];
  if (target) {
    for (const c of target) {
      if (!c.taskId) continue;
      callsTotal++;
      if (!byId.has(c.taskId)) { callsForUnknownTasks.push(c.taskId); continue; }
      if (!calls.has(c.taskId)) calls.set(c.taskId, []);
      calls.get(c.taskId).push(c.attempt);
    }
  }
  const calledMoreThanOnce = [];
  const repeatedAttemptNumber = [];
  const callsBeyondAttempts = [];
  const completedWithoutCall = [];
  let extraCalls = 0;
  if (target) {
    for (const [id, ns] of calls) {
      const t = byId.get(id);
      if (ns.length > 1) { calledMoreThanOnce.push(id); extraCalls += ns.length - 1; }
      const seen = new Set();
      for (const n of ns) {
        if (n !== null && seen.has(n)) { repeatedAttemptNumber.push(id); break; }
        seen.add(n);
      }
      // Every call is a recorded attempt (an interrupted one is recorded at
      // restart); a call no attempt explains was made behind the store's back.
      if (ns.length > t.attempts) callsBeyondAttempts.push(id);
    }
    for (const t of data.tasks) {
      if (t.status === 'completed' && !calls.has(t.id)) completedWithoutCall.push(t.id);
    }
  }

  // Webhooks.
  const storedWh = new Map(); // taskId -> [webhook rows]
  for (const w of data.webhooks) {
    if (!storedWh.has(w.taskId)) storedWh.set(w.taskId, []);
    storedWh.get(w.taskId).push(w);
  }
  const taken = new Map();     // webhookId -> times the receiver took it (2xx)
  const idsForTask = new Map(); // taskId -> Set of webhook-ids received
  const webhookForNonFinal = [];
  const webhookIdUnknown = [];
  let deliveries = 0;
  if (webhooks) {
    for (const d of webhooks) {
      if (!d.webhookId) continue;
      deliveries++;
      const ok = d.status === undefined || (d.status >= 200 && d.status <= 299);
      if (ok) taken.set(d.webhookId, (taken.get(d.webhookId) ?? 0) + 1);
      if (!idsForTask.has(d.taskId)) idsForTask.set(d.taskId, new Set());
      idsForTask.get(d.taskId).add(d.webhookId);
      const t = byId.get(d.taskId);
      if (!t || !FINAL.has(t.status)) webhookForNonFinal.push(d.taskId);
      const rows = storedWh.get(d.taskId) ?? [];
      if (!rows.some((w) => w.id === d.webhookId)) webhookIdUnknown.push(d.webhookId);
    }
  }
  const duplicateWebhooks = [...taken].filter(([, n]) => n > 1).map(([id]) => id);
  // One stored message per final state; every retry of it carries its id,
  // so a task never sees more distinct webhook-ids than it has messages.
  const webhookIdChanged = [...idsForTask].filter(([tid, ids]) => ids.size > (storedWh.get(tid)?.length ?? 0))
    .map(([tid]) => tid);
  const webhooksUndelivered = [];
  if (expectWh) {
    for (const t of data.tasks) {
      if (!t.hasWebhook || !FINAL.has(t.status)) continue;
      const rows = storedWh.get(t.id) ?? [];
      const got = rows.some((w) => (taken.get(w.id) ?? 0) > 0);
      if (!rows.length || !got || rows.some((w) => w.status !== 'delivered')) webhooksUndelivered.push(t.id);
    }
  }

  const statusCounts = {};
  for (const t of data.tasks) statusCounts[t.status] = (statusCounts[t.status] ?? 0) + 1;
  const cut = (xs) => [...new Set(xs)].slice(0, limit);
  const failures = {
    lost: lost.length,
    unexpected: unexpected.length,
    stuck: stuck.length,
    keyAnsweredTwice: keyAnsweredTwice.length,
    keyStoredTwice: keyStoredTwice.length,
    storedWithout202NotFinal: storedWithoutAnswer.length,
    callsForUnknownTasks: new Set(callsForUnknownTasks).size,
    repeatedAttemptNumber: repeatedAttemptNumber.length,
    callsBeyondAttempts: callsBeyondAttempts.length,
    completedWithoutCall: completedWithoutCall.length,
    webhookForNonFinal: new Set(webhookForNonFinal).size,
    webhookIdUnknown: new Set(webhookIdUnknown).size,
    webhookIdChanged: webhookIdChanged.length,
    webhooksUndelivered: webhooksUndelivered.length,
    halfStored: Object.values(data.halfStored ?? {}).reduce((a, n) => a + n, 0),
  };
  const summary = {
    creates: accepted.length,
    accepted: acceptedIds.size,
    uncertain: uncertainKeys.size,
    refused: accepted.filter((e) => e.status && e.status !== 202 && e.status !== 200).length,
    stored: data.tasks.length,
    statuses: statusCounts,
    storedWithout202: storedWithout202.length,
    targetCalls: callsTotal,
    tasksCalledMoreThanOnce: calledMoreThanOnce.length,
    extraCalls,
    webhookDeliveries: deliveries,
    webhookIdsTaken: taken.size,
    duplicateWebhooks: duplicateWebhooks.length,
  };
  const ok = Object.values(failures).every((n) => n === 0);
  return {
    ok, summary, failures,
    lost: cut(lost), stuck: cut(stuck), unexpected: cut(unexpected),
    storedWithout202: cut(storedWithout202), keyAnsweredTwice: cut(keyAnsweredTwice),
    keyStoredTwice: cut(keyStoredTwice), callsForUnknownTasks: cut(callsForUnknownTasks),
    tasksCalledMoreThanOnce: cut(calledMoreThanOnce), repeatedAttemptNumber: cut(repeatedAttemptNumber),
    callsBeyondAttempts: cut(callsBeyondAttempts), completedWithoutCall: cut(completedWithoutCall),
    duplicateWebhooks: cut(duplicateWebhooks), webhookForNonFinal: cut(webhookForNonFinal),
    webhookIdUnknown: cut(webhookIdUnknown), webhookIdChanged: cut(webhookIdChanged),
    webhooksUndelivered: cut(webhooksUndelivered),
    halfStored: Object.entries(data.halfStored ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k}: ${n}`),
  };
}

/** A few lines for a person (and for assertion messages). */
export function formatReport(r) {
  const s = r.summary;
  const lines = [
    `checker: ${r.ok ? 'PASS' : 'FAIL'}`,
    `  creates sent ${s.creates}, accepted ${s.accepted}, refused ${s.refused}, unanswered keys ${s.uncertain}`,
    `  stored ${s.stored} (${Object.entries(s.statuses).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}), ` +
      `stored without 202 ${s.storedWithout202}`,
    `  target calls ${s.targetCalls}, tasks called more than once ${s.tasksCalledMoreThanOnce} (${s.extraCalls} extra calls)`,
    `  webhook deliveries ${s.webhookDeliveries}, webhook-ids taken ${s.webhookIdsTaken}, taken more than once ${s.duplicateWebhooks}`,
  ];
  const bad = Object.entries(r.failures).filter(([, n]) => n > 0);
  if (bad.length) {
    lines.push('  failures:');
    for (const [k, n] of bad) lines.push(`    ${k}: ${n}${r[k] ? ' e.g. ' + r[k].slice(0, 5).join(', ') : ''}`);
  } else {
    lines.push('  lost 0, unexpected 0, stuck 0');
  }
  return lines.join('\n');
}
