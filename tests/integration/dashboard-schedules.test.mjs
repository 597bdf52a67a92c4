// The dashboard's Schedules view, in Debian's Chromium (headless, driven by
// playwright-core, as dashboard.test.mjs): the schedules made over the API
// are listed with their next run, their runs count goes up without a reload,
// Pause/Resume, Run now and Delete do what they say (checked over the API),
// a read-only key sees no buttons, a tenant's key sees its own schedules,
// a run that made no task shows why, and no view scrolls sideways at phone
// width. Screenshots go to build/screenshots/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { api, tempDir, waitFor } from './lib/harness.mjs';
import { daemon } from './lib/ops.mjs';

const SHOTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../build/screenshots');
const CHROMIUM = process.env.AQ_CHROMIUM || '/usr/bin/chromium';
const ADMIN = 'admin-key-0c3e9b1f5a7d2e48';
const VIEWER = 'viewer-key-6d1a8e3c0f5b9274';
const TENANT = 'tenant-key-2f7c4a9e1b6d3085';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STEP = 15000; // the longest any one wait in the browser may take
// Tasks that stay queued for an hour: nothing is ever called.
const LATER = { callbackUrl: 'http://127.0.0.1:9/never', queue: 'sched', delay: 3600 };

const auth = (key) => ({ authorization: `Bearer ${key}` });

async function noHorizontalScroll(page, what) {
  const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth,
    document.documentElement.clientWidth]);
  assert.ok(scroll <= client, `${what}: the page scrolls sideways (${scroll} > ${client} px)`);
}

/** A fresh browser context logged in with key (none: a daemon without keys), on #/schedules. */
async function openSchedules(browser, d, key, errors) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP);
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${d.url}/dashboard/#/schedules`);
  if (key) {
    await page.locator('#login-key').waitFor({ state: 'visible' });
    await page.fill('#login-key', key);
    await page.press('#login-key', 'Enter');
  }
  await page.locator('#live[data-live="connected"]').waitFor();
  await page.locator('#view-schedules').waitFor({ state: 'visible' });
  return { ctx, page };
}

const row = (name) => `#schedules-body tr[data-schedule="${name}"]`;

test('the Schedules view lists schedules, shows their runs live, and acts on them', { timeout: 120000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (sh tools/deps.sh test)`);
  mkdirSync(SHOTS, { recursive: true });
  const tmp = tempDir('aq-dash-sched-');
  t.after(() => tmp.cleanup());
  const conf = join(tmp.dir, 'asyncqueue.conf');
  writeFileSync(conf, `key.viewer = ${VIEWER} scope=read\nkey.acme = ${TENANT} scope=admin tenant=acme\n`);
  const d = await daemon(t, { args: ['--config', conf, '--api-key', ADMIN] });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(() => browser.close());
  const A = auth(ADMIN);
  const get = (name, key = A) => api(d.url, 'GET', `/v1/schedules/${name}`, undefined, key);
  const errors = [];
  const { page } = await openSchedules(browser, d, ADMIN, errors);

  await t.test('with none, the view says how to make one, with a curl line for this daemon', async () => {
    await page.locator('#schedules-empty').waitFor({ state: 'visible' });
    const example = await page.locator('#schedules-example').textContent();
    assert.ok(example.startsWith(`curl -X PUT ${d.url}/v1/schedules/nightly `), example);
    assert.match(example, /-H 'Authorization: Bearer <admin key>'/);
    assert.ok(!example.includes(ADMIN), 'the key itself is never shown');
    // The line is a valid command: run as written (with the key), it makes the schedule.
    const body = example.match(/-d '(.*)'$/)[1];
    assert.equal((await api(d.url, 'PUT', '/v1/schedules/from-example', body, A)).status, 201);
    assert.equal((await api(d.url, 'DELETE', '/v1/schedules/from-example', undefined, A)).status, 204);
    assert.equal(await page.locator('#schedules-body tr').count(), 0);
    await page.screenshot({ path: join(SHOTS, 'schedules-empty.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await noHorizontalScroll(page, 'the empty Schedules view');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await t.test('lists two schedules made over the API, with their next run', async () => {
    const nightly = await api(d.url, 'PUT', '/v1/schedules/nightly-report',
      { cron: '0 3 * * *', timezone: 'Europe/Berlin', task: { ...LATER, callbackUrl: 'http://127.0.0.1:9/report' } }, A);
    assert.equal(nightly.status, 201, JSON.stringify(nightly.body));
    const every = await api(d.url, 'PUT', '/v1/schedules/every-second', { cron: '* * * * * *', task: LATER }, A);
    assert.equal(every.status, 201, JSON.stringify(every.body));
    // No reload, no click: the view shows them by itself.
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.locator(row('nightly-report')).waitFor();
    await page.locator(row('every-second')).waitFor();
    assert.deepEqual(await page.locator('#schedules-body tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.schedule)),
      ['every-second', 'nightly-report'], 'by name');
    const r = page.locator(row('nightly-report'));
    assert.equal(await r.locator('.c-cron code').textContent(), '0 3 * * *');
    assert.equal(await r.locator('.c-cron .abs').textContent(), 'Europe/Berlin', 'the zone the cron is read in');
    assert.equal(await r.locator('.c-state .badge').textContent(), 'active');
    assert.equal(await r.locator('.c-next time').getAttribute('datetime'), nightly.body.nextRunAt);
    assert.match(await r.locator('.c-next time').textContent(), /^in \d+ (h \d+ min|min|s)$/);
    assert.match(await r.locator('.c-last').textContent(), /not yet/);
    assert.equal(await r.locator('.c-runs').textContent(), '0');
    assert.match(await r.locator('th').textContent(), /nightly-report.*queue sched · 127\.0\.0\.1:9/);
    // The every-second one's next run is within a second or two of now.
    const next = Date.parse(await page.locator(`${row('every-second')} .c-next time`).getAttribute('datetime'));
    assert.ok(Math.abs(next - Date.now()) < 5000, `next run ${new Date(next).toISOString()}`);
  });

  await t.test('the runs count and the last run go up without a reload', async () => {
    const runsShown = () => page.locator(row('every-second')).getAttribute('data-runs').then(Number);
    const before = await runsShown();
    await waitFor(async () => (await runsShown()) >= before + 2, { timeout: STEP, what: 'the runs count to go up' });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    const r = page.locator(row('every-second'));
    assert.equal(await r.locator('.c-runs').textContent(), String(await runsShown()));
    // The last run links to the task it made, which is real and in the template's queue.
    const href = await r.locator('.c-last a.last-task').getAttribute('href');
    const id = href.match(/^#\/tasks\/([0-9a-f-]{36})$/)[1];
    const task = await api(d.url, 'GET', `/v1/tasks/${id}`, undefined, A);
    assert.equal(task.status, 200);
    assert.equal(task.body.queue, 'sched');
    assert.equal(task.body.status, 'queued');
    const s = (await get('every-second')).body;
    assert.ok(s.runs >= await runsShown(), `the API counts ${s.runs}`);
    await page.screenshot({ path: join(SHOTS, 'schedules.png') });
  });

  await t.test('Pause and Resume, from the keyboard; focus stays on the button', async () => {
    const toggle = page.locator(`${row('every-second')} button[data-key="s-pause-every-second"]`);
    assert.equal(await toggle.textContent(), 'Pause');
    assert.equal(await toggle.getAttribute('aria-label'), 'Pause schedule every-second');
    await toggle.focus();
    await page.keyboard.press('Enter');
    await page.locator(`${row('every-second')}[data-paused="true"]`).waitFor();
    const paused = (await get('every-second')).body;
    assert.equal(paused.paused, true);
    assert.equal(paused.nextRunAt, null);
    const r = page.locator(row('every-second'));
    assert.equal(await r.locator('.c-state .badge').textContent(), 'paused');
    assert.equal(await r.locator('.c-next').textContent(), 'none while paused');
    await page.waitForFunction(() => document.activeElement?.dataset.key === 's-pause-every-second'
      && document.activeElement.textContent === 'Resume');
    const runs = paused.runs;
    await page.keyboard.press('Enter');
    await page.locator(`${row('every-second')}[data-paused="false"]`).waitFor();
    const resumed = (await get('every-second')).body;
    assert.equal(resumed.paused, false);
    assert.ok(resumed.nextRunAt, 'a next run again');
    assert.ok(resumed.runs >= runs);
    await page.waitForFunction(() => document.activeElement?.dataset.key === 's-pause-every-second'
      && document.activeElement.textContent === 'Pause');
  });

  await t.test('Run now makes a task and opens it; the next run stays', async () => {
    const before = (await get('nightly-report')).body;
    await page.click(`${row('nightly-report')} button[data-action="run"]`);
    await page.waitForFunction(() => /^#\/tasks\/[0-9a-f-]{36}$/.test(location.hash));
    const id = (await page.evaluate(() => location.hash)).slice('#/tasks/'.length);
    await page.locator('#view-task').waitFor({ state: 'visible' });
    await page.waitForFunction((i) => document.querySelector('#task-detail')?.textContent.includes(i), id);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'task-title', 'focus on the task');
    const after = (await get('nightly-report')).body;
    assert.equal(after.runs, before.runs + 1);
    assert.equal(after.lastTaskId, id);
    assert.equal(after.nextRunAt, before.nextRunAt);
    const task = (await api(d.url, 'GET', `/v1/tasks/${id}`, undefined, A)).body;
    assert.equal(task.callbackUrl, 'http://127.0.0.1:9/report');
    // Back in the list, the row shows the run and links to its task.
    await page.click('#nav a[data-view="schedules"]');
    await page.locator(`${row('nightly-report')}[data-runs="1"]`).waitFor();
    assert.equal(await page.locator(`${row('nightly-report')} .c-last a.last-task`).getAttribute('href'), `#/tasks/${id}`);
  });

  await t.test('Delete asks first (Escape keeps it), then deletes', async () => {
    const del = page.locator(`${row('nightly-report')} button[data-action="delete"]`);
    await del.click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    assert.match(await page.locator('#confirm-text').textContent(), /nightly-report.*tasks it already made stay/);
    assert.equal(await page.locator('#confirm-yes').textContent(), 'Delete schedule');
    await page.screenshot({ path: join(SHOTS, 'schedules-confirm-delete.png') });
    await page.keyboard.press('Escape');
    await page.locator('#confirm').waitFor({ state: 'hidden' });
    assert.equal((await get('nightly-report')).status, 200, 'Escape deleted nothing');
    await page.waitForFunction(() => document.activeElement?.dataset.key === 's-delete-nightly-report');
    await del.click();
    await page.click('#confirm-yes');
    await page.locator(row('nightly-report')).waitFor({ state: 'detached' });
    assert.equal((await get('nightly-report')).status, 404);
    assert.equal((await get('every-second')).status, 200, 'only that one');
    const lastTask = (await api(d.url, 'GET', '/v1/tasks?queue=sched&limit=1', undefined, A)).body.tasks;
    assert.equal(lastTask.length, 1, 'the tasks it made stay');
  });

  await t.test('at phone width (390 x 844) the view does not scroll sideways', async () => {
    await api(d.url, 'PUT', '/v1/schedules/weekdays-at-nine-with-a-rather-long-name-for-a-phone',
      { cron: '0 9 * * MON-FRI', task: LATER, paused: true }, A);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator(row('weekdays-at-nine-with-a-rather-long-name-for-a-phone')).waitFor();
    await noHorizontalScroll(page, '#/schedules');
    // Each schedule is a card: its buttons are inside the viewport.
    for (const b of await page.locator('#schedules-body button').all()) {
      const box = await b.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= 390, `a button at ${box.x}+${box.width}`);
    }
    await page.screenshot({ path: join(SHOTS, 'phone-schedules.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  await t.test('a read-only key sees the schedules but no buttons', async () => {
    const { ctx, page: v } = await openSchedules(browser, d, VIEWER, errors);
    await v.locator(row('every-second')).waitFor();
    assert.equal(await v.locator('#schedules-body tr').count(), 2);
    assert.equal(await v.locator('#schedules-body button').count(), 0);
    assert.equal(await v.locator('main button:visible').count(), 0, 'no buttons at all in the view');
    await v.screenshot({ path: join(SHOTS, 'read-only-schedules.png') });
    assert.deepEqual(await v.evaluate(() => window.__csp), []);
    await ctx.close();
  });

  await t.test("a tenant's key sees its own schedules (none here), and the tab, but not Queues", async () => {
    const { ctx, page: v } = await openSchedules(browser, d, TENANT, errors);
    assert.equal(await v.locator('#nav a[data-view="schedules"]').isVisible(), true);
    assert.equal(await v.locator('#nav a[data-view="queues"]').isVisible(), false);
    await v.locator('#schedules-empty').waitFor({ state: 'visible' });
    const mine = await api(d.url, 'PUT', '/v1/schedules/acme-hourly', { cron: '@hourly', task: LATER }, auth(TENANT));
    assert.equal(mine.status, 201);
    await v.locator(row('acme-hourly')).waitFor(); // the 5 s refresh (no task event to prompt it)
    assert.equal(await v.locator('#schedules-body tr').count(), 1);
    await ctx.close();
    assert.equal((await get('acme-hourly')).status, 404, 'not among the admin key\'s');
  });

  assert.deepEqual(errors, [], 'no script errors in the pages');
  assert.deepEqual(await page.evaluate(() => window.__csp), [], 'nothing blocked by the CSP');
});

test('a run that made no task shows why, plainly, with the last task it did make', { timeout: 60000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (sh tools/deps.sh test)`);
  mkdirSync(SHOTS, { recursive: true });
  // A backlog of one: the first run makes a task (queued an hour), the next finds the backlog full.
  const d = await daemon(t, { args: ['--max-backlog', '1'] }); // no key: none needed on loopback
  const put = await api(d.url, 'PUT', '/v1/schedules/too-many', { cron: '* * * * * *', task: LATER });
  assert.equal(put.status, 201);
  const s = await waitFor(async () => {
    const r = (await api(d.url, 'GET', '/v1/schedules/too-many')).body;
    return r.lastError && r.lastTaskId ? r : null;
  }, { timeout: STEP, what: 'a run refused for the full backlog' });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(() => browser.close());
  const errors = [];
  const { page } = await openSchedules(browser, d, null, errors);
  const r = page.locator(row('too-many'));
  await r.locator('.sched-error').waitFor();
  // Later runs fail the same way: the sentence is the API's.
  assert.equal(await r.locator('.sched-error').textContent(), `No task made: ${s.lastError}`);
  assert.equal(await r.locator('.c-last a.last-task').getAttribute('href'), `#/tasks/${s.lastTaskId}`);
  assert.match(await r.locator('.c-last a.last-task').textContent(), /^last task made …/);
  await page.screenshot({ path: join(SHOTS, 'schedules-error.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await noHorizontalScroll(page, 'a schedule with an error');
  await page.screenshot({ path: join(SHOTS, 'phone-schedules-error.png'), fullPage: true });
  assert.deepEqual(errors, []);
});
