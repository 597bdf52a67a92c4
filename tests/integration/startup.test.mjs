// Start-up: informational flags, --check-config, where settings come from
// (flags beat environment beats file), and the documented exit codes when
// the daemon cannot start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync, chmodSync, readdirSync, readlinkSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scope, api, runBinary, BIN, waitFor, queryDb, countTasks } from './lib/harness.mjs';

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '../../asyncqueue.conf.example');
const KEYS = [...readFileSync(EXAMPLE, 'utf8').matchAll(/^#([a-z_]+) =/gm)].map((m) => m[1]);

test('--version and -V print the version and exit 0', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runBinary([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^asyncqueue \d+\.\d+\.\d+\S*\n$/);
  }
});

test('--help lists every setting as a flag and the exit codes, and exits 0', async () => {
  assert.ok(KEYS.length >= 20, `read the keys from asyncqueue.conf.example (${KEYS.length})`);
  for (const flag of ['--help', '-h']) {
    const r = await runBinary([flag]);
    assert.equal(r.code, 0, r.stderr);
    for (const k of KEYS) assert.ok(r.stdout.includes(`--${k.replaceAll('_', '-')}`), `--help mentions --${k}`);
    assert.match(r.stdout, /[Ee]xit codes/);
  }
});

test('a --help, --version, example or check that cannot be written exits 1, not 0', (t) => {
  const { dir } = scope(t).tempDir();
  // --print-config-example > asyncqueue.conf on a full disk left an empty
  // file behind an exit 0; --print-webhook-secret an empty secret.
  for (const args of [['--help'], ['--version'], ['--print-config-example'], ['--check-config'],
    ['--print-webhook-secret', '--db', join(dir, 'aq.db')]]) {
    const r = spawnSync('sh', ['-c', 'exec "$0" "$@" >/dev/full', BIN, ...args],
      { encoding: 'utf8', timeout: 15000, env: { PATH: process.env.PATH } });
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /cannot write to standard output/, args.join(' '));
  }
  const hash = spawnSync('sh', ['-c', 'exec "$0" --hash-key >/dev/full', BIN],
    { input: 'a-key-of-sixteen-chars-or-more\n', encoding: 'utf8', timeout: 15000, env: { PATH: process.env.PATH } });
  assert.equal(hash.status, 1, hash.stderr);
});

test('--check-config prints every effective setting with secrets masked, and exits 0', async () => {
  const key = 'super-secret-api-key-123';
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
  const r = await runBinary(['--check-config', '--api-key', `${key},other-key-456`, '--webhook-secret', secret,
    '--workers', '3', '--retry-base', '250ms']);
  assert.equal(r.code, 0, r.stderr);
  for (const k of KEYS) assert.match(r.stdout, new RegExp(`^${k} = `, 'm'), `--check-config prints ${k}`);
  assert.ok(!r.stdout.includes(key) && !r.stdout.includes('other-key-456'), 'API keys are masked');
  assert.ok(!r.stdout.includes(secret) && !r.stdout.includes(secret.slice(6)), 'the webhook secret is masked');
  assert.match(r.stdout, /^api_key = \S/m, 'a set key is shown as set, not as empty');
  assert.match(r.stdout, /^webhook_secret = \S/m);
  assert.match(r.stdout, /^workers = 3$/m);
  assert.match(r.stdout, /^retry_base = 250ms$/m);
  assert.match(r.stdout, /configuration OK/);
});

test('flags beat ASYNCQUEUE_* variables, which beat the config file', async (t) => {
  const s = scope(t);
  const { dir } = s.tempDir();
  const file = join(dir, 'aq.conf');
  writeFileSync(file, [
    '# a comment',
    'workers = 3',
    'retry_base = 3s   # a trailing comment',
    'log_level = warn',
  ].join('\n') + '\n');
  const env = { ASYNCQUEUE_WORKERS: '4', ASYNCQUEUE_RETRY_BASE: '4s' };
  const value = (out, k) => out.match(new RegExp(`^${k} = (.*)$`, 'm'))?.[1];

  const all = await runBinary(['--check-config', '--config', file, '--workers', '5'], { env });
  assert.equal(all.code, 0, all.stderr);
  assert.equal(value(all.stdout, 'workers'), '5', 'the flag wins over variable and file');
  assert.equal(value(all.stdout, 'retry_base'), '4000ms', 'the variable wins over the file');
  assert.equal(value(all.stdout, 'log_level'), 'warn', 'the file wins over the default');
  assert.ok(all.stdout.includes(file), 'the output names the file it read');

  const noFlag = await runBinary(['--check-config', '--config', file], { env });
  assert.equal(value(noFlag.stdout, 'workers'), '4');
  const fileOnly = await runBinary(['--check-config', '--config', file]);
  assert.equal(value(fileOnly.stdout, 'workers'), '3');
  assert.equal(value(fileOnly.stdout, 'retry_base'), '3000ms');
  const viaEnv = await runBinary(['--check-config'], { env: { ASYNCQUEUE_CONFIG: file } });
  assert.equal(value(viaEnv.stdout, 'workers'), '3', 'ASYNCQUEUE_CONFIG names the file too');
  const defaults = await runBinary(['--check-config']);
  assert.equal(value(defaults.stdout, 'workers'), '2');
  assert.equal(value(defaults.stdout, 'log_level'), 'info');
});

test('a config file with an unknown key or a bad value exits 3 naming file:line', async (t) => {
  const s = scope(t);
  const { dir } = s.tempDir();
  const unknown = join(dir, 'unknown.conf');
  writeFileSync(unknown, '# settings\nworkers = 2\n\nretires = 5\n');
  const r1 = await runBinary(['--check-config', '--config', unknown]);
  assert.equal(r1.code, 3, r1.stderr);
  assert.ok(r1.stderr.includes(`${unknown}:4`), `names file:line: ${r1.stderr}`);
  assert.match(r1.stderr, /retires/);

  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, 'workers = many\n');
  const r2 = await runBinary(['--check-config', '--config', bad]);
  assert.equal(r2.code, 3, r2.stderr);
  assert.ok(r2.stderr.includes(`${bad}:1`), r2.stderr);
  assert.match(r2.stderr, /workers/);

  // The same file refuses to run the daemon too, before anything starts.
  const r3 = await runBinary(['--config', unknown, '--listen', '127.0.0.1:0', '--db', join(dir, 'aq.db')]);
  assert.equal(r3.code, 3, r3.stderr);

  const missing = await runBinary(['--check-config', '--config', join(dir, 'nope.conf')]);
  assert.equal(missing.code, 3, missing.stderr);
  assert.ok(missing.stderr.includes('nope.conf'));

  // A directory opens and then cannot be read: it ran on the defaults.
  const folder = await runBinary(['--config', dir, '--listen', '127.0.0.1:0', '--db', join(dir, 'aq.db')]);
  assert.equal(folder.code, 3, folder.stderr);
  assert.ok(folder.stderr.includes(`${dir}: cannot read config file`), folder.stderr);
});

test('an unknown flag or a flag without its value exits 2; a bad flag or variable value exits 3', async () => {
  for (const args of [['--no-such-flag'], ['--workers'], ['stray-argument']]) {
    const r = await runBinary(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'and says why');
  }
  // An empty --config (an unset shell variable) read no file, silently.
  for (const args of [['--config', ''], ['--config=']]) {
    const r = await runBinary(['--check-config', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--config needs a file name/);
  }
  const unknownFlag = await runBinary(['--no-such-flag']);
  assert.match(unknownFlag.stderr, /no-such-flag/);
  for (const args of [['--workers', 'abc'], ['--retry-base', 'soon'], ['--retry-jitter=maybe'], ['--max-body-bytes', '10']]) {
    const r = await runBinary(['--check-config', ...args]);
    assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    const flag = args[0].split('=')[0];
    assert.ok(r.stderr.includes(flag), `names ${flag}: ${r.stderr}`);
  }
  const env = await runBinary(['--check-config'], { env: { ASYNCQUEUE_WORKRES: '3' } });
  assert.equal(env.code, 3, env.stderr);
  assert.match(env.stderr, /ASYNCQUEUE_WORKRES/);
});

test('--check-config refuses what the start would: a port out of range (3), no key beyond loopback (6)', async () => {
  // The resolver wrapped 65537 round to port 1 and 80800 to 15264.
  for (const args of [['--listen', '127.0.0.1:65537'], ['--listen', '127.0.0.1'], ['--metrics-listen', '127.0.0.1:80800']]) {
    const r = await runBinary(['--check-config', ...args]);
    assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /must be host:port with a port from 0 to 65535/);
    assert.ok(r.stderr.includes(args[0]), `names ${args[0]}: ${r.stderr}`);
  }
  const open = await runBinary(['--check-config', '--listen', '0.0.0.0:0']);
  assert.equal(open.code, 6, open.stderr);
  assert.match(open.stderr, /no api_key is configured/);
  const keyed = await runBinary(['--check-config', '--listen', '0.0.0.0:0', '--api-key', 'a-key-of-sixteen-chars-or-more']);
  assert.equal(keyed.code, 0, keyed.stderr);
  assert.match(keyed.stdout, /# configuration OK/);
  const loop = await runBinary(['--check-config', '--listen', '[::1]:0']);
  assert.equal(loop.code, 0, loop.stderr);
});

test('an unusable database path exits 4', async (t) => {
  const s = scope(t);
  const { dir } = s.tempDir();
  const garbage = join(dir, 'garbage.db');
  writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
  const sub = join(dir, 'a-directory');
  mkdirSync(sub);
  const readOnlyDir = join(dir, 'ro');
  mkdirSync(readOnlyDir);
  chmodSync(readOnlyDir, 0o500);
  s.defer(() => chmodSync(readOnlyDir, 0o700));
  const paths = [join(dir, 'no', 'such', 'dir', 'aq.db'), sub, garbage];
  if (process.getuid?.() !== 0) paths.push(join(readOnlyDir, 'aq.db')); // root may write anyway
  for (const db of paths) {
    const r = await runBinary(['--listen', '127.0.0.1:0', '--db', db]);
    assert.equal(r.code, 4, `${db}: exit ${r.code}\n${r.stderr}`);
    assert.ok(r.stderr.includes(db), `the log names the database: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /asyncqueue\.started/);
  }
  // log_level off silences the running daemon, not the reason a start
  // failed: it exited 4 with nothing said. Bad destinations (3) likewise.
  const quiet = await runBinary(['--listen', '127.0.0.1:0', '--db', sub, '--log-level', 'off']);
  assert.equal(quiet.code, 4, quiet.stderr);
  assert.ok(quiet.stderr.includes(sub), `says why at log_level off: ${quiet.stderr}`);
  const dests = await runBinary(['--listen', '127.0.0.1:0', '--db', join(dir, 'aq.db'), '--log-level', 'off',
    '--allow-destinations', 'not a host!']);
  assert.equal(dests.code, 3, dests.stderr);
  assert.match(dests.stderr, /allow_destinations: 'not a host!'/);
});

test('a second daemon on the same database exits 4 and the first keeps serving', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const created = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/', delay: 3600 });
  assert.equal(created.status, 202);
  const r = await runBinary(['--listen', '127.0.0.1:0', '--db', d.db, '--allow-private-targets']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /another asyncqueue daemon/);
  assert.doesNotMatch(r.stderr, /asyncqueue\.started/);
  const still = await api(d.url, 'GET', `/v1/tasks/${created.body.id}`);
  assert.equal(still.status, 200);
  assert.equal(still.body.status, 'queued', 'the second daemon did not touch the first one\'s tasks');
});

test('a port already in use exits 5', async (t) => {
  const s = scope(t);
  const d = await s.daemon();
  const { dir } = s.tempDir();
  const r = await runBinary(['--listen', `127.0.0.1:${d.port}`, '--db', join(dir, 'other.db')]);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /listen/);
  assert.equal((await api(d.url, 'GET', '/healthz')).status, 200);
});

/** The port a process listens on, read from /proc (its stderr may be closed). */
function listeningPort(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) return parseInt(f[1].split(':')[1], 16);
  }
  return null;
}

test('started with standard error closed, the daemon logs into /dev/null, not into its database', async (t) => {
  const s = scope(t);
  const db = join(s.tempDir('aq-closed-').dir, 'closed.db');
  // `2>&-`: the first file the daemon opened took descriptor 2, and every
  // log line went into it (the database file: "malformed").
  const proc = spawn('sh', ['-c', 'exec "$0" --listen 127.0.0.1:0 --db "$1" --allow-private-targets 2>&-', BIN, db],
    { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  s.defer(() => { proc.kill('SIGKILL'); });
  const port = await waitFor(() => listeningPort(proc.pid), { what: 'the daemon listening' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 5; i++) {
    const r = await api(url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  proc.kill('SIGTERM');
  assert.equal((await exited).code, 0);
  assert.deepEqual(queryDb(db, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  assert.equal(await countTasks(db), 5);
});
