// `make install`: the layout it makes under DESTDIR, the man page, the
// hardened systemd unit (checked by systemd-analyze where it is installed)
// and the nginx example (checked by nginx -t where nginx is installed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, existsSync, appendFileSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, tempDir } from './lib/harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const has = (cmd, args = ['--version']) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** Runs a command; returns { status, stdout, stderr } as strings. */
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return r;
}

function make(...args) {
  // Clear MAKEFLAGS so a surrounding `make test -jN` does not leak in.
  const r = sh('make', ['-s', '--no-print-directory', ...args], { cwd: root, env: { ...process.env, MAKEFLAGS: '' } });
  assert.equal(r.status, 0, `make ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

const mode = (p) => statSync(p).mode & 0o7777;

let tmp, dest;
before(() => {
  tmp = tempDir('aq-install-');
  dest = join(tmp.dir, 'root');
  make('install', `DESTDIR=${dest}`, 'PREFIX=/usr');
});
after(() => tmp.cleanup());

test('make install DESTDIR=... PREFIX=/usr lays out the files with sane modes', () => {
  const want = {
    'usr/bin/asyncqueue': 0o755,
    'usr/share/man/man1/asyncqueue.1': 0o644,
    'usr/lib/systemd/system/asyncqueue.service': 0o644,
    'usr/share/doc/asyncqueue/asyncqueue.conf.example': 0o644,
    'usr/share/doc/asyncqueue/api.md': 0o644,
    'usr/share/doc/asyncqueue/openapi.yaml': 0o644,
    'usr/share/doc/asyncqueue/production.md': 0o644,
    'usr/share/doc/asyncqueue/nginx.conf': 0o644,
    'usr/share/doc/asyncqueue/asyncqueue.env.example': 0o644,
    'etc/asyncqueue/asyncqueue.conf': 0o644,
    'etc/asyncqueue/asyncqueue.env': 0o600, // it will hold the API key
  };
  for (const [path, m] of Object.entries(want)) {
    const p = join(dest, path);
    assert.ok(existsSync(p), `${path} is installed`);
    assert.equal(mode(p).toString(8), m.toString(8), `mode of ${path}`);
  }
  assert.deepEqual(readFileSync(join(dest, 'usr/bin/asyncqueue')), readFileSync(join(root, 'build/asyncqueue')),
    'the installed binary is the one built');
  assert.equal(readFileSync(join(dest, 'etc/asyncqueue/asyncqueue.conf'), 'utf8'),
    readFileSync(join(root, 'asyncqueue.conf.example'), 'utf8'), 'the config starts as the example');
  const unit = readFileSync(join(dest, 'usr/lib/systemd/system/asyncqueue.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/asyncqueue --config \/etc\/asyncqueue\/asyncqueue\.conf /m);
  assert.match(unit, /^EnvironmentFile=-\/etc\/asyncqueue\/asyncqueue\.env$/m);
  // systemctl reload sends the SIGHUP that re-reads keys (docs/security.md)
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
});

test('the installed binary runs with the installed configuration', () => {
  const bin = join(dest, 'usr/bin/asyncqueue');
  const v = sh(bin, ['--version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^asyncqueue \d+\.\d+\.\d+/);
  const check = sh(bin, ['--config', join(dest, 'etc/asyncqueue/asyncqueue.conf'), '--check-config'],
    { env: { PATH: process.env.PATH } });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /configuration OK/);
  const help = sh(bin, ['task', '--help']);
  assert.equal(help.status, 0);
});

test('reinstalling keeps an edited configuration; PREFIX=/usr/local; uninstall', () => {
  const conf = join(dest, 'etc/asyncqueue/asyncqueue.conf');
  appendFileSync(conf, 'log_level = warn\n');
  writeFileSync(join(dest, 'etc/asyncqueue/asyncqueue.env'), 'ASYNCQUEUE_API_KEY=secret\n');
  const again = make('install', `DESTDIR=${dest}`, 'PREFIX=/usr');
  assert.match(again.stdout, /keeping \/etc\/asyncqueue\/asyncqueue\.conf/);
  assert.match(readFileSync(conf, 'utf8'), /^log_level = warn$/m);
  assert.equal(readFileSync(join(dest, 'etc/asyncqueue/asyncqueue.env'), 'utf8'), 'ASYNCQUEUE_API_KEY=secret\n');

  const local = join(tmp.dir, 'local');
  make('install', `DESTDIR=${local}`); // the default PREFIX, /usr/local
  for (const p of ['usr/local/bin/asyncqueue', 'usr/local/share/man/man1/asyncqueue.1',
    'usr/local/lib/systemd/system/asyncqueue.service', 'usr/local/etc/asyncqueue/asyncqueue.conf']) {
    assert.ok(existsSync(join(local, p)), `${p} is installed`);
  }
  const unit = readFileSync(join(local, 'usr/local/lib/systemd/system/asyncqueue.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/asyncqueue --config \/usr\/local\/etc\/asyncqueue\/asyncqueue\.conf /m);

  make('uninstall', `DESTDIR=${local}`);
  for (const p of ['usr/local/bin/asyncqueue', 'usr/local/share/man/man1/asyncqueue.1',
    'usr/local/lib/systemd/system/asyncqueue.service', 'usr/local/share/doc/asyncqueue']) {
    assert.ok(!existsSync(join(local, p)), `${p} is removed`);
  }
  assert.ok(existsSync(join(local, 'usr/local/etc/asyncqueue/asyncqueue.conf')), 'uninstall keeps the configuration');
});

test('the man page renders and documents every setting, client option and exit code', () => {
  const page = join(dest, 'usr/share/man/man1/asyncqueue.1');
  const src = readFileSync(page, 'utf8');
  for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'SETTINGS', 'CLIENT COMMANDS',
    'EXIT STATUS', 'ENVIRONMENT', 'FILES', 'SIGNALS', 'EXAMPLES', 'SEE ALSO']) {
    assert.match(src, new RegExp(`^\\.SH "?${section}"?$`, 'm'), `section ${section}`);
  }
  let text;
  if (has('man')) {
    const r = sh('man', ['--warnings', '-l', page], { env: { ...process.env, MANWIDTH: '160', MANPAGER: 'cat', PAGER: 'cat' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'groff has no warnings about the page');
    text = r.stdout;
  } else if (has('groff')) {
    const r = sh('groff', ['-man', '-Tutf8', '-ww', page]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'groff has no warnings about the page');
    text = r.stdout;
  } else {
    // Neither man nor groff: check the source instead of the rendering.
    assert.match(src, /^\.TH ASYNCQUEUE 1 /m);
    text = src.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '');
  }
  // Join words split at line ends: a hyphenation point (U+2010) goes, a
  // hyphen of the word itself stays.
  text = text.replace(/\u2010\n\s+/g, '').replace(/-\n\s+/g, '-');
  const example = sh(BIN, ['--print-config-example']).stdout;
  const keys = [...example.matchAll(/^#([a-z_]+) = /gm)].map((m) => m[1]);
  assert.ok(keys.length >= 30, `found ${keys.length} settings`);
  for (const k of keys) assert.ok(text.includes(k), `the man page documents the setting ${k}`);
  for (const noun of ['task', 'queue']) {
    const help = sh(BIN, [noun, '--help']).stdout;
    for (const [opt] of help.matchAll(/--[a-z][a-z-]+/g)) assert.ok(text.includes(opt), `the man page documents ${noun} ${opt}`);
    const commands = help.slice(help.indexOf('Commands:'), help.indexOf('\n\n', help.indexOf('Commands:')));
    const verbs = [...commands.matchAll(/^  ([a-z][a-z-]*)/gm)].map((m) => m[1]);
    assert.ok(verbs.length >= 6, `found ${verbs.length} ${noun} commands`);
    for (const verb of verbs) assert.ok(text.includes(`${noun} ${verb}`), `the man page documents ${noun} ${verb}`);
  }
  const exit = text.slice(text.indexOf('EXIT STATUS'), text.indexOf('ENVIRONMENT'));
  for (const code of [0, 1, 2, 3, 4, 5, 6]) assert.match(exit, new RegExp(`^\\s+${code}\\s`, 'm'), `exit status ${code}`);
});

test('the systemd unit is hardened and systemd-analyze verifies it', {
  skip: has('systemd-analyze') ? false : 'systemd-analyze is not installed (systemd package)',
}, () => {
  const unitPath = join(dest, 'usr/lib/systemd/system/asyncqueue.service');
  const unit = readFileSync(unitPath, 'utf8');
  const directives = new Map();
  for (const line of unit.split('\n')) {
    const m = line.match(/^([A-Za-z]+)=(.*)$/);
    if (m) directives.set(m[1], [...(directives.get(m[1]) ?? []), m[2]]);
  }
  const one = (k) => directives.get(k)?.at(-1);
  assert.equal(one('DynamicUser'), 'yes');
  assert.equal(one('StateDirectory'), 'asyncqueue');
  assert.match(one('ExecStart'), /--db %S\/asyncqueue\/asyncqueue\.db$/, 'the database lives in /var/lib/asyncqueue');
  for (const [k, v] of [['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'],
    ['NoNewPrivileges', 'yes'], ['MemoryDenyWriteExecute', 'yes'], ['CapabilityBoundingSet', ''],
    ['KillSignal', 'SIGTERM'], ['Restart', 'on-failure']]) {
    assert.equal(one(k), v, `${k}=${v}`);
  }
  assert.ok(directives.get('SystemCallFilter').includes('@system-service'));
  assert.match(one('RestrictAddressFamilies'), /AF_INET AF_INET6/);
  assert.ok(Number(one('LimitNOFILE')) >= 65536);
  const grace = Number(readFileSync(join(root, 'asyncqueue.conf.example'), 'utf8').match(/^#shutdown_grace = (\d+)s$/m)[1]);
  assert.ok(parseInt(one('TimeoutStopSec'), 10) > grace + 10, 'TimeoutStopSec leaves the daemon its shutdown_grace');

  // verify checks that ExecStart exists, so point it at the installed
  // binary; Documentation=man: is looked up through MANPATH.
  const copy = join(tmp.dir, 'asyncqueue.service');
  writeFileSync(copy, unit.replace('ExecStart=/usr/bin/asyncqueue', `ExecStart=${join(dest, 'usr/bin/asyncqueue')}`));
  const env = { ...process.env, MANPATH: join(dest, 'usr/share/man') };
  const v = sh('systemd-analyze', ['verify', copy], { env });
  assert.equal(v.status, 0, `systemd-analyze verify:\n${v.stdout}${v.stderr}`);
  assert.equal(v.stderr.trim(), '', 'no warnings');

  const s = sh('systemd-analyze', ['security', '--offline=yes', copy], { env });
  const m = `${s.stdout}${s.stderr}`.match(/Overall exposure level for asyncqueue\.service: (\d+\.\d+) (\S+)/);
  if (!m) {
    assert.match(`${s.stdout}${s.stderr}`, /offline|Unknown option/, 'only an older systemd-analyze lacks --offline');
    return;
  }
  assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} ${m[2]} is at most 2.0`);
});

// deploy/nginx.conf itself is run with real nginx in sec-nginx.test.mjs.
