// The dashboard, end to end, in Debian's Chromium (headless, driven by
// playwright-core; no browser is ever downloaded): log in, watch tasks move
// live, open a task, cancel, retry, pause and resume a queue, the charts, a
// read-only key, phone width. Then /metrics: promtool accepts it and its
// counters match the tasks this test made.
//
// Screenshots go to build/screenshots/ (docs/dashboard.png is one of them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startDaemon, startFake, api, tempDir, waitForStatus } from './lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SHOTS = resolve(here, '../../build/screenshots');
const CHROMIUM = process.env.AQ_CHROMIUM || '/usr/bin/chromium';
const ADMIN = 'admin-key-5e1d9c0b7a3f4e2d';
const VIEWER = 'viewer-key-8b2a6f1c9d4e7a30';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STEP = 10000; // the longest any one wait in the browser may take

const auth = (key) => ({ authorization: `Bearer ${key}` });

/** Waits until no element of the page reaches past the viewport's width. */
async function noHorizontalScroll(page, what) {
  const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth,
    document.documentElement.clientWidth]);
  assert.ok(scroll <= client, `${what}: the page scrolls sideways (${scroll} > ${client} px)`);
}

/** Waits for the task row to show status (data-status and the badge text). */
async function rowStatus(page, id, status) {
  await page.waitForFunction(([i, s]) => {
    const tr = document.querySelector(`#tasks-body tr[data-id="${i}"]`);
    return tr && !tr.hidden && tr.dataset.status === s && tr.querySelector('.badge')?.textContent === s;
  }, [id, status], { timeout: STEP });
}

test('the dashboard shows tasks live and acts on them; /metrics matches', { timeout: 90000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (sh tools/deps.sh test)`);
  mkdirSync(SHOTS, { recursive: true });
  const started = Date.now();

  const tmp = tempDir('aq-dash-');
  const conf = join(tmp.dir, 'asyncqueue.conf');
  writeFileSync(conf, `key.viewer = ${VIEWER} scope=read\n`);
  // Targets: a quick 200 (slow enough to be seen running), one that fails
  // with 500 once and then succeeds, and a webhook receiver.
  const fast = await startFake([{ status: 200, delayMs: 400, body: { image: 'https://cdn.example.com/1.png' } }]);
  const flaky = await startFake([{ status: 500, body: 'upstream exploded' }, { status: 200, body: { rows: 3 } }]);
  const hook = await startFake([{ status: 200 }]);
  const d = await startDaemon({
    args: ['--config', conf, '--api-key', ADMIN, '--retry-jitter', 'false', '--retry-base', '0.1s'],
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(async () => {
    await browser.close();
    await d.stop();
    d.cleanup();
    tmp.cleanup();
    await Promise.all([fast.close(), flaky.close(), hook.close()]);
  });
  const A = auth(ADMIN);

  // Every request the pages make, to check where they go and what they carry.
  const requests = [];
  const pageErrors = [];
  const watch = (page) => {
    page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), headers: r.headers(), page }));
    page.on('pageerror', (e) => pageErrors.push(e.message));
  };

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  // Anything the page's Content-Security-Policy blocks (an inline style, a
  // foreign URL) is recorded here.
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP);
  watch(page);
  const ids = {};

  await t.test('/ redirects to the dashboard, which asks for a key and refuses a wrong one', async () => {
    await page.goto(`${d.url}/`);
    assert.equal(new URL(page.url()).pathname, '/dashboard/');
    await page.locator('#login-key').waitFor({ state: 'visible' });
    await page.fill('#login-key', 'not-a-key-of-this-daemon');
    await page.press('#login-key', 'Enter');
    await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('not accepted'));
    assert.equal(await page.locator('#nav').isVisible(), false);
  });

  await t.test('logs in with the admin key, kept in sessionStorage only, and goes live', async () => {
    await page.fill('#login-key', ADMIN);
    await page.click('#login-form button[type=submit]');
    await page.locator('#live[data-live="connected"]').waitFor();
    assert.match(await page.locator('#whoami').textContent(), /admin/);
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('asyncqueue.apiKey'), local: localStorage.length, cookie: document.cookie,
    }));
    assert.deepEqual(stored, { session: ADMIN, local: 0, cookie: '' });
  });

  await t.test('a task created through the API reaches completed in the table without a reload', async () => {
    await page.evaluate(() => {
      window.__sameDocument = true;
      // Record every status each row shows, to see the row change in place.
      window.__seen = {};
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll('#tasks-body tr[data-id]')) {
          const seen = (window.__seen[tr.dataset.id] ??= []);
          if (seen[seen.length - 1] !== tr.dataset.status) seen.push(tr.dataset.status);
        }
      }).observe(document.querySelector('#tasks-body'), { subtree: true, childList: true, attributes: true });
    });
    const listCalls = () => requests.filter((r) => /\/v1\/tasks(\?|$)/.test(r.url) && r.method === 'GET').length;
    const before = listCalls();

    const created = await Promise.all([
      api(d.url, 'POST', '/v1/tasks', {
        callbackUrl: fast.url('/generate'), queue: 'images', payload: { prompt: 'a lighthouse at dusk' },
        metadata: { userId: 42 }, webhookUrl: hook.url('/done'), headers: { 'X-Trace': 'dash-1' },
      }, A),
      api(d.url, 'POST', '/v1/tasks', {
        callbackUrl: flaky.url('/report'), queue: 'reports', retries: 0, payload: { report: 'monthly', month: '2026-11' },
        metadata: { customer: 'acme' }, webhookUrl: hook.url('/done'),
      }, A),
      api(d.url, 'POST', '/v1/tasks', { callbackUrl: fast.url('/later'), queue: 'emails', delay: 3600, body: 'hello' }, A),
    ]);
    for (const c of created) assert.equal(c.status, 202);
    [ids.fast, ids.flaky, ids.delayed] = created.map((c) => c.body.id);

    await rowStatus(page, ids.fast, 'completed');
    await rowStatus(page, ids.flaky, 'failed');
    await rowStatus(page, ids.delayed, 'queued');
    const seen = await page.evaluate((id) => window.__seen[id], ids.fast);
    assert.ok(seen.length >= 2 && seen[0] !== 'completed',
      `the row appeared before completing and changed in place (saw ${seen.join(' → ')})`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    assert.equal(listCalls(), before, 'the rows came from the event stream, not from reloading the list');
    const cells = await page.locator(`tr[data-id="${ids.fast}"] td`).allTextContents();
    assert.equal(cells[2], 'images');
    assert.equal(cells[3], `127.0.0.1:${fast.port}`);
    assert.equal(cells[4], '1');
    assert.match(cells[6], /^\d+(\.\d+)? (ms|s)$/);
    await page.screenshot({ path: join(SHOTS, 'tasks.png') });
  });

  await t.test('filters and search narrow the table', async () => {
    await page.selectOption('#f-status', 'failed');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#tasks-body tr')];
      return rows.length === 1 && rows[0].dataset.status === 'failed';
    });
    await page.selectOption('#f-status', '');
    await page.selectOption('#f-queue', 'emails');
    await page.waitForFunction((id) => {
      const rows = [...document.querySelectorAll('#tasks-body tr')];
      return rows.length === 1 && rows[0].dataset.id === id;
    }, ids.delayed);
    await page.selectOption('#f-queue', '');
    await page.waitForFunction(() => document.querySelectorAll('#tasks-body tr').length === 3);
    await page.fill('#f-search', ids.flaky.slice(-10));
    await page.waitForFunction((id) => {
      const shown = [...document.querySelectorAll('#tasks-body tr')].filter((tr) => !tr.hidden);
      return shown.length === 1 && shown[0].dataset.id === id;
    }, ids.flaky);
    await page.fill('#f-search', '');
    await page.waitForFunction(() => [...document.querySelectorAll('#tasks-body tr')].every((tr) => !tr.hidden));
  });

  await t.test('the detail shows the request, the attempt, the result and the webhook', async () => {
    // Keyboard: the row's link opens it.
    await page.focus(`tr[data-id="${ids.fast}"] a`);
    await page.keyboard.press('Enter');
    await page.locator('#task-title .mono').waitFor();
    assert.equal(await page.locator('#task-title .mono').textContent(), ids.fast);
    const attempt = page.locator('.timeline li.attempt').first();
    await attempt.waitFor();
    assert.equal(await page.locator('#sec-attempts + ol li.attempt').count(), 1);
    assert.match(await attempt.textContent(), /Attempt 1\s*200/);
    const detail = await page.locator('#task-detail').textContent();
    assert.match(detail, /a lighthouse at dusk/);       // payload
    assert.match(detail, /X-Trace/);                    // request headers
    assert.match(detail, /cdn\.example\.com\/1\.png/);  // result
    assert.match(detail, /"userId": 42/);               // metadata
    // The delivery is recorded just after the receiver answers: the open detail catches up.
    await page.waitForFunction(() => /Delivery 1\s*200/.test(document.querySelector('#sec-webhook')?.parentElement.textContent));
    assert.equal(await page.locator('#detail-cancel').count(), 0, 'no Cancel for a finished task');
    assert.equal(await page.locator('#detail-retry').count(), 1);
    await page.screenshot({ path: join(SHOTS, 'task-detail.png'), fullPage: true });
  });

  await t.test('cancels the queued task after confirming in a dialog (Escape backs out)', async () => {
    await page.goto(`${d.url}/dashboard/#/tasks/${ids.delayed}`);
    // A reload in the same tab keeps its key: no log-in form this time.
    await page.reload();
    await page.locator('#live[data-live="connected"]').waitFor();
    assert.equal(await page.locator('#view-login').isVisible(), false);
    await page.click('#detail-cancel');
    await page.locator('dialog#confirm[open]').waitFor();
    assert.equal(await page.evaluate(() => !!document.activeElement.closest('dialog[open]')), true,
      'focus moves into the dialog');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => !!document.activeElement.closest('dialog[open]')), true,
      'focus stays in the dialog');
    await page.keyboard.press('Escape');
    await page.locator('dialog#confirm').waitFor({ state: 'hidden' });
    assert.equal((await api(d.url, 'GET', `/v1/tasks/${ids.delayed}`, undefined, A)).body.status, 'queued');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'detail-cancel', 'focus returns to the button');

    await page.click('#detail-cancel');
    await page.locator('dialog#confirm[open]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'confirm-cancel.png') });
    await page.click('#confirm-yes');
    await page.waitForFunction(() => document.querySelector('.detail-sub .badge')?.textContent === 'cancelled');
    assert.match(await page.locator('#toasts').textContent(), /Task cancelled\./);
    assert.equal((await api(d.url, 'GET', `/v1/tasks/${ids.delayed}`, undefined, A)).body.status, 'cancelled');
    assert.equal(await page.locator('#detail-cancel').count(), 0);
  });

  await t.test('retries the failed task, which runs again and completes', async () => {
    await page.goto(`${d.url}/dashboard/#/tasks/${ids.flaky}`);
    await page.locator('.timeline li.attempt').first().waitFor();
    assert.match(await page.locator('.timeline li.attempt').first().textContent(), /500.*http_error/s);
    await page.click('#detail-retry');
    await page.locator('dialog#confirm[open]').waitFor();
    await page.click('#confirm-yes');
    await page.waitForFunction(() => document.querySelector('.detail-sub .badge')?.textContent === 'completed'
      && document.querySelectorAll('#sec-attempts + ol li.attempt').length === 2);
    assert.match(await page.locator('.timeline li.attempt').nth(1).textContent(), /Attempt \d+\s*200/);
    const task = await waitForStatus(d.url, ids.flaky, 'completed', { headers: A });
    assert.equal(task.replays, 1);
    assert.equal(flaky.requests.length, 2);
    assert.match(await page.locator('#toasts').textContent(), /Task queued again\./);
    // One webhook for the failure, one for the completion.
    await page.waitForFunction(() => document.querySelectorAll('ol[aria-label="Webhook deliveries"] li.attempt').length === 2);
    await page.evaluate(() => document.querySelector('#toasts').replaceChildren()); // (a clean picture)
    await page.screenshot({ path: join(SHOTS, 'task-retried.png'), fullPage: true });
    // Back in the list, the rows say what happened.
    await page.click('a.back');
    await rowStatus(page, ids.flaky, 'completed');
    await rowStatus(page, ids.delayed, 'cancelled');
    await rowStatus(page, ids.fast, 'completed');
  });

  await t.test('pauses and resumes a queue', async () => {
    await page.click('#nav a[data-view="queues"]');
    const row = page.locator('#queues-body tr[data-queue="images"]');
    await row.waitFor();
    const cells = await page.locator('#queues-body tr[data-queue="reports"] > *').allTextContents();
    assert.match(cells[7], /^1 ok · 1 failed/, `reports since start: ${cells[7]}`);
    await row.locator('button', { hasText: 'Pause' }).click();
    await page.locator('#queues-body tr[data-queue="images"][data-paused="true"] .badge-paused').waitFor();
    assert.equal((await api(d.url, 'GET', '/v1/queues/images', undefined, A)).body.paused, true);
    await page.screenshot({ path: join(SHOTS, 'queues.png') });
    await row.locator('button', { hasText: 'Resume' }).click();
    await page.locator('#queues-body tr[data-queue="images"][data-paused="false"] .badge-active').waitFor();
    assert.equal((await api(d.url, 'GET', '/v1/queues/images', undefined, A)).body.paused, false);
  });

  await t.test('the charts of the last hour have data', async () => {
    await page.click('#nav a[data-view="activity"]');
    await page.waitForFunction(() => Number(document.querySelector('#chart-throughput svg')?.dataset.total) >= 6
      && Number(document.querySelector('#chart-latency svg')?.dataset.points) >= 3);
    // 4 accepted (3 creates, 1 replay) + 2 completed + 1 failed, at least
    // (other minutes may hold more).
    assert.ok(await page.locator('#chart-throughput svg rect.col.series-accepted').count() >= 1);
    assert.ok(await page.locator('#chart-throughput svg rect.col.series-completed').count() >= 1);
    assert.ok(await page.locator('#chart-throughput svg rect.col.series-failed').count() >= 1);
    assert.ok(await page.locator('#chart-latency svg .series-p50 :is(path, circle)').count() >= 1);
    assert.equal(await page.locator('.stat-accepted .stat-value').textContent(), '4');
    assert.equal(await page.locator('.stat-failed .stat-value').textContent(), '1');
    await page.screenshot({ path: join(SHOTS, 'activity.png'), fullPage: true });
  });

  await t.test('pages through the list with nextCursor', async () => {
    // 52 more tasks (delayed, so they wait): with the 3 above, two pages of 50.
    for (let i = 0; i < 52; i++) {
      const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: fast.url(`/bulk/${i}`), queue: 'bulk', delay: 3600 }, A);
      assert.equal(r.status, 202);
    }
    await page.evaluate(() => { location.hash = '#/tasks'; });
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#tasks-body tr').length === 50);
    const more = page.locator('#load-more');
    assert.equal(await more.isVisible(), true);
    await more.click();
    await page.waitForFunction(() => document.querySelectorAll('#tasks-body tr').length === 55);
    await more.waitFor({ state: 'hidden' });
    const listed = await page.locator('#tasks-body tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
    assert.equal(new Set(listed).size, 55, 'no task twice');
    // In the daemon's order (newest first; ids made in the same millisecond
    // need not sort, so compare with the API rather than by id).
    const all = await api(d.url, 'GET', '/v1/tasks?limit=200', undefined, A);
    assert.deepEqual(listed, all.body.tasks.map((x) => x.id));
    assert.ok(listed.includes(ids.fast) && listed.includes(ids.delayed));
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(SHOTS, 'tasks-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await t.test('at phone width (390 x 844) no view scrolls sideways', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [hash, ready] of [
      ['#/tasks', '#tasks-body tr'],
      [`#/tasks/${ids.flaky}`, '.timeline li.attempt'],
      ['#/queues', '#queues-body tr'],
      ['#/activity', '#chart-latency svg'],
    ]) {
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.locator(ready).first().waitFor();
      await noHorizontalScroll(page, hash);
      await page.screenshot({ path: join(SHOTS, `phone-${hash.split('/')[1]}${hash.split('/')[2] ? '-detail' : ''}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await t.test('every API call carried the key, and nothing left the daemon', async () => {
    const origin = new URL(d.url).origin;
    const outside = requests.filter((r) => new URL(r.url).origin !== origin);
    assert.deepEqual(outside.map((r) => r.url), []);
    const api1 = requests.filter((r) => r.page === page && new URL(r.url).pathname.startsWith('/v1/'));
    const keyless = api1.filter((r) => r.headers.authorization !== `Bearer ${ADMIN}`);
    // Only the start-up probe (does this daemon need a key?) and the wrong key go without it.
    assert.deepEqual(keyless.map((r) => `${new URL(r.url).pathname} ${r.headers.authorization ?? '-'}`),
      ['/v1/whoami -', '/v1/whoami Bearer not-a-key-of-this-daemon']);
    assert.ok(api1.some((r) => new URL(r.url).pathname === '/v1/events'));
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
    assert.deepEqual(await page.evaluate(() => window.__csp), [], 'nothing blocked by the CSP');
    const csp = (await fetch(`${d.url}/dashboard/`)).headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
  });

  await t.test('a read-only key sees everything but no cancel, retry or pause buttons', async () => {
    const more = await api(d.url, 'POST', '/v1/tasks',
      { callbackUrl: fast.url('/later'), queue: 'emails', delay: 3600 }, A);
    ids.queued2 = more.body.id;
    const vctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const v = await vctx.newPage();
    v.setDefaultTimeout(STEP);
    watch(v);
    // A new context shares nothing: no key until this one logs in.
    await v.goto(`${d.url}/dashboard/`);
    await v.locator('#login-key').waitFor({ state: 'visible' });
    await v.fill('#login-key', VIEWER);
    await v.press('#login-key', 'Enter');
    await v.locator('#live[data-live="connected"]').waitFor();
    assert.match(await v.locator('#whoami').textContent(), /viewer · read-only/);
    await rowStatus(v, ids.queued2, 'queued');
    // ids.flaky is past the first page now: a full id is looked up.
    await v.fill('#f-search', ids.flaky);
    await rowStatus(v, ids.flaky, 'completed');
    assert.equal(await v.locator('#tasks-body tr:visible').count(), 1);
    for (const id of [ids.queued2, ids.flaky]) {
      await v.evaluate((i) => { location.hash = `#/tasks/${i}`; }, id);
      await v.locator('.timeline, #sec-attempts + p').first().waitFor();
      assert.equal(await v.locator('#task-detail button').count(), 0, `no buttons on ${id}`);
    }
    await v.click('#nav a[data-view="queues"]');
    await v.locator('#queues-body tr[data-queue="emails"]').waitFor();
    assert.equal(await v.locator('#queues-body button').count(), 0, 'no pause/resume');
    assert.equal(await v.locator('main button:visible').count(), 0, 'no buttons at all in the view');
    // The key belongs to the tab: another tab of the same context must log in again.
    const v2 = await vctx.newPage();
    await v2.goto(`${d.url}/dashboard/`);
    await v2.locator('#login-key').waitFor({ state: 'visible' });
    await v.screenshot({ path: join(SHOTS, 'read-only-queues.png') });
    await vctx.close();
  });

  await t.test('/metrics passes promtool and counts exactly the tasks made here', async () => {
    await hook.waitForRequests(3); // the webhooks: fast, flaky failed, flaky completed
    assert.equal((await fetch(`${d.url}/metrics`)).status, 401, '/metrics needs a key');
    const res = await fetch(`${d.url}/metrics`, { headers: A });
    assert.equal(res.status, 200);
    const text = await res.text();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20000 });
    assert.equal(check.error, undefined, `promtool: ${check.error}`);
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    const value = (name, queue) => {
      const m = text.match(new RegExp(`^${name}\\{queue="${queue}"\\} (\\S+)$`, 'm'));
      return m ? Number(m[1]) : undefined;
    };
    const want = {
      images: { accepted: 1, completed: 1, failed: 0, cancelled: 0 },
      // Failed once, then replayed: two runs accepted, one failed, one completed
      // (accepted = completed + failed + cancelled + what waits or runs).
      reports: { accepted: 2, completed: 1, failed: 1, cancelled: 0 },
      emails: { accepted: 2, completed: 0, failed: 0, cancelled: 1 },
      bulk: { accepted: 52, completed: 0, failed: 0, cancelled: 0 },
    };
    for (const [queue, counts] of Object.entries(want)) {
      for (const [what, n] of Object.entries(counts)) {
        assert.equal(value(`asyncqueue_tasks_${what}_total`, queue), n, `${what} in ${queue}`);
      }
    }
    assert.equal(value('asyncqueue_queue_depth', 'emails'), 1);
    assert.equal(value('asyncqueue_queue_depth', 'bulk'), 52);
    assert.equal(value('asyncqueue_queue_inflight', 'images'), 0);
    assert.match(text, /^asyncqueue_attempts_total\{outcome="success",status_class="2xx"\} 2$/m);
    assert.match(text, /^asyncqueue_attempts_total\{outcome="failure",status_class="5xx"\} 1$/m);
    assert.match(text, /^asyncqueue_webhook_deliveries_total\{outcome="delivered"\} 3$/m);
    assert.match(text, /^asyncqueue_http_requests_total\{route="\/v1\/tasks",status="202"\} 56$/m);
    assert.match(text, /^asyncqueue_http_requests_total\{route="\/v1\/tasks\/\{id\}\/retry",status="202"\} 1$/m);
    // synchronous = full: the writer's syncer thread made the commits durable.
    const syncs = Number((text.match(/^asyncqueue_writer_sync_seconds_count (\S+)$/m) || [])[1]);
    assert.ok(syncs >= 1, `fsyncs by the syncer: ${syncs}`);
    assert.deepEqual(pageErrors, [], 'no script errors in the pages');
  });

  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`# dashboard test: ${secs} s, screenshots in ${SHOTS}\n`);
});

test('without keys the dashboard opens at once, with no log-in form', { timeout: 60000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (sh tools/deps.sh test)`);
  const target = await startFake([{ status: 200, delayMs: 200 }]);
  const d = await startDaemon(); // no api_key: loopback only, no authentication
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(async () => { await browser.close(); await d.stop(); d.cleanup(); await target.close(); });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP);
  await page.goto(`${d.url}/dashboard/`);
  await page.locator('#live[data-live="connected"]').waitFor();
  assert.equal(await page.locator('#view-login').isVisible(), false);
  assert.equal(await page.locator('#logout').isVisible(), false, 'nothing to log out of');
  assert.match(await page.locator('#whoami').textContent(), /No key needed/);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: target.url('/x') });
  await rowStatus(page, r.body.id, 'completed');
  await page.click(`tr[data-id="${r.body.id}"] td.c-queue`); // a click anywhere on the row opens it
  await page.locator('#detail-retry').waitFor(); // no key means full access
});

test('the session keeps to what it shows: filters follow live rows, a new log-in starts clean, a failed look-up keeps the key', { timeout: 60000 }, async (t) => {
  const slow = await startFake([{ status: 200, delayMs: 1500, body: { ok: 1 } }]);
  const d = await startDaemon({ args: ['--api-key', ADMIN] });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(async () => { await browser.close(); await d.stop(); d.cleanup(); await slow.close(); });
  const A = auth(ADMIN);
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP);
  await page.goto(`${d.url}/dashboard/`);
  await page.fill('#login-key', ADMIN);
  await page.press('#login-key', 'Enter');
  await page.locator('#live[data-live="connected"]').waitFor();
  // A typed key moves focus to the view's heading, not to the page body.
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tasks-title');

  // Status "running": the row shows while it runs and goes when it is not.
  await page.selectOption('#f-status', 'running');
  const run = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: slow.url('/s'), queue: 'dash' }, A);
  await rowStatus(page, run.body.id, 'running');
  await waitForStatus(d.url, run.body.id, 'completed', { headers: A });
  await page.waitForFunction((i) => document.querySelector(`#tasks-body tr[data-id="${i}"]`)?.hidden === true, run.body.id);

  // A full id outside the list (queued, while the filter says running) is
  // looked up and shown; once the search changes, its row goes again.
  const far = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: slow.url('/far'), delay: 3600 }, A);
  await page.fill('#f-search', far.body.id);
  await page.waitForFunction((i) => document.querySelector(`#tasks-body tr[data-id="${i}"]`)?.hidden === false, far.body.id);
  await page.fill('#f-search', '');
  await page.waitForFunction((i) => !document.querySelector(`#tasks-body tr[data-id="${i}"]`), far.body.id);

  // A full id of a loaded row the filter hides (it completed; the filter
  // says running) shows that row too; it said "No task has this id".
  await page.fill('#f-search', run.body.id);
  await page.waitForFunction((i) => document.querySelector(`#tasks-body tr[data-id="${i}"]`)?.hidden === false, run.body.id);
  assert.equal(await page.locator('#tasks-empty').isVisible(), false);
  await page.fill('#f-search', '');
  await page.waitForFunction((i) => document.querySelector(`#tasks-body tr[data-id="${i}"]`)?.hidden === true, run.body.id);

  // A JSON string payload reads as JSON, quoted, not as a text body.
  const str = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: slow.url('/q'), payload: '<b>quoted?</b>', delay: 3600 }, A);
  await page.goto(`${d.url}/dashboard/#/tasks/${str.body.id}`);
  await page.locator('pre[aria-label="Payload (JSON)"]').waitFor();
  assert.equal(await page.locator('pre[aria-label="Payload (JSON)"]').textContent(), '"<b>quoted?</b>"');

  // Log out with a filter set: the next log-in starts without it.
  await page.goto(`${d.url}/dashboard/#/tasks`);
  await page.selectOption('#f-status', 'queued');
  await page.click('#logout');
  await page.fill('#login-key', ADMIN);
  await page.press('#login-key', 'Enter');
  await page.locator('#live[data-live="connected"]').waitFor();
  assert.equal(await page.inputValue('#f-status'), '');
  assert.equal(await page.inputValue('#f-queue'), '');

  // The daemon unreachable at a reload: the page says so and keeps the key,
  // so the next reload, with the daemon back, is logged in again.
  await page.route('**/v1/whoami', (route) => route.abort());
  await page.reload();
  await page.locator('#login-error', { hasText: 'cannot be reached' }).waitFor();
  assert.equal(await page.evaluate(() => Object.keys(sessionStorage).length), 1);
  await page.unroute('**/v1/whoami');
  await page.reload();
  await page.locator('#live[data-live="connected"]').waitFor();
  assert.equal(await page.locator('#view-login').isVisible(), false);
});

test('the task list recovers from a failed load by itself; a hand-made task address sends nothing odd; a key that loses read goes back to log-in', { timeout: 60000 }, async (t) => {
  const tmp = tempDir('aq-dash-rec-');
  const conf = join(tmp.dir, 'asyncqueue.conf');
  const KEYLINE = (scope) => `key.ops = ${ADMIN} scope=${scope}\n`;
  writeFileSync(conf, KEYLINE('admin'));
  const d = await startDaemon({ args: ['--config', conf] });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(async () => { await browser.close(); await d.stop(); d.cleanup(); tmp.cleanup(); });
  const A = auth(ADMIN);
  const made = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/x', delay: 3600 }, A);
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(STEP);
  const urls = [];
  page.on('request', (r) => urls.push(new URL(r.url()).pathname + new URL(r.url()).search));
  // The first list load fails once: before, the page said "No tasks match"
  // (and stayed so while "Live") until a filter changed.
  let failed = 0;
  await page.route(/\/v1\/tasks\?/, (route) => (failed++ === 0
    ? route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"try again"}}' })
    : route.continue()));
  await page.goto(`${d.url}/dashboard/`);
  await page.fill('#login-key', ADMIN);
  await page.press('#login-key', 'Enter');
  await page.locator('#tasks-empty', { hasText: 'Loading tasks failed' }).waitFor();
  await page.waitForFunction((i) => document.querySelector(`#tasks-body tr[data-id="${i}"]`)?.hidden === false, made.body.id);
  assert.ok(failed >= 2, 'the list was asked for again');

  // A hand-made address: "..", or an id with a query, made requests to
  // /v1/ and /v1/tasks/x?wait=5. Now it is the list.
  for (const bad of ['..', `${made.body.id}?wait=5`]) {
    const before = urls.length;
    await page.evaluate((h) => { location.hash = `#/tasks/${h}`; }, bad);
    await page.locator('#view-tasks').waitFor();
    const sent = urls.slice(before).filter((u) => u.startsWith('/v1/') && !u.startsWith('/v1/events'));
    assert.ok(!sent.some((u) => u === '/v1/' || u.includes('wait=') || u.includes('..')), JSON.stringify(sent));
  }

  // A view's load failing again and again (the Queues view refreshes every
  // 5 s) keeps one toast that counts, instead of one toast a failure.
  await page.route(/\/v1\/queues$/, (route) => route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"try again"}}' }));
  await page.evaluate(() => { location.hash = '#/queues'; });
  await page.locator('.toast', { hasText: 'Loading queues failed' }).waitFor();
  await page.evaluate(() => { location.hash = '#/tasks'; });
  await page.locator('#view-tasks').waitFor();
  await page.evaluate(() => { location.hash = '#/queues'; });
  await page.locator('.toast', { hasText: '(×2)' }).waitFor();
  assert.equal(await page.locator('.toast', { hasText: 'Loading queues failed' }).count(), 1);
  await page.unroute(/\/v1\/queues$/);

  // The key reloaded as enqueue-only: the stream's reconnect is refused
  // (403), and the page says so at the log-in form (it stayed "Not live").
  writeFileSync(conf, KEYLINE('enqueue'));
  d.proc.kill('SIGHUP');
  await page.locator('#view-login').waitFor({ state: 'visible' });
  assert.match(await page.locator('#login-error').textContent(), /may no longer read/);
});
