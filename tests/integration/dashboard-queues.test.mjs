// The dashboard's Queues view with many queue names, in Debian's Chromium
// (headless, driven by playwright-core, as dashboard.test.mjs): GET
// /v1/queues answers at most 1000 queues a page, and the view follows
// nextCursor to show them all, up to 5 pages; past that it says on the page
// that it stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { api } from './lib/harness.mjs';
import { daemon } from './lib/ops.mjs';

const SHOTS = resolve(dirname(fileURLToPath(import.meta.url)), '../../build/screenshots');
const CHROMIUM = process.env.AQ_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STEP = 15000; // the longest any one wait in the browser may take

/** One delayed task in each of the queues from..to-1 (names q00000...), 32 requests at a time. */
async function fill(d, from, to) {
  let next = from;
  const codes = {};
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < to) {
      const queue = `q${String(next++).padStart(5, '0')}`;
      const r = await api(d.url, 'POST', '/v1/tasks', { callbackUrl: 'http://127.0.0.1:9/never', queue, delay: 3600 });
      codes[r.status] = (codes[r.status] ?? 0) + 1;
    }
  }));
  assert.deepEqual(codes, { 202: to - from });
}

test('the Queues view follows the pages of GET /v1/queues, and says when it stopped', { timeout: 120000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (sh tools/deps.sh test)`);
  const d = await daemon(t, { args: ['--synchronous', 'normal'] }); // no key: none needed on loopback
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30000 });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(STEP);
  const lists = [];
  const errors = [];
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/v1/queues') lists.push(new URL(r.url()).search); });
  page.on('pageerror', (e) => errors.push(e.message));
  const rows = () => page.locator('#queues-body tr').count();
  /** Opens the Queues view afresh (it loads the list when shown). */
  const showQueues = async () => {
    await page.click('#nav a[data-view="tasks"]');
    await page.locator('#view-queues').waitFor({ state: 'hidden' });
    lists.length = 0;
    await page.click('#nav a[data-view="queues"]'); // the route follows the hash: not at once
    await page.locator('#view-queues').waitFor({ state: 'visible' });
  };

  await t.test('1,050 queues: two pages, every queue shown, no notice', async () => {
    await fill(d, 0, 1050);
    await page.goto(`${d.url}/dashboard/#/queues`);
    await page.locator('#live[data-live="connected"]').waitFor();
    await showQueues();
    await page.waitForFunction(() => document.querySelectorAll('#queues-body tr').length === 1050);
    await page.locator('#queues-body tr[data-queue="q01049"]').waitFor();
    // (a look the view's 5 s refresh started may still be asking: no order)
    assert.ok(lists.includes(''), `the first page is asked with no parameter: ${lists.join(' ')}`);
    const page2 = await api(d.url, 'GET', '/v1/queues');
    assert.ok(lists.includes(`?cursor=${page2.body.nextCursor}`), `the second follows nextCursor: ${lists.join(' ')}`);
    assert.equal(await page.locator('#queues-more').isHidden(), true);
    // The tasks view's queue filter lists them all too.
    assert.equal(await page.locator('#f-queue option').count(), 1 + 1050);
  });

  await t.test('5,050 queues: the first 5,000 by name, and the page says there are more', async () => {
    // Settings only, so that DELETE can forget them below.
    await Promise.all(Array.from({ length: 32 }, async (_, k) => {
      for (let i = 1050 + k; i < 5050; i += 32) {
        const r = await api(d.url, 'PUT', `/v1/queues/q${String(i).padStart(5, '0')}`, {});
        assert.equal(r.status, 200);
      }
    }));
    await showQueues();
    const more = page.locator('#queues-more');
    await more.waitFor({ state: 'visible' });
    assert.match(await more.textContent(), /^Showing the first 5,000 queues by name; there are more/);
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'queues-more.png') });
    assert.equal(await rows(), 5000);
    await page.locator('#queues-body tr[data-queue="q04999"]').waitFor();
    assert.equal(await page.locator('#queues-body tr[data-queue="q05000"]').count(), 0);
    // A look asks for the first page and four more: never for the sixth.
    const cursors = [];
    for (let c = null, i = 0; i < 5; i++) {
      c = (await api(d.url, 'GET', `/v1/queues${c ? `?cursor=${c}` : ''}`)).body.nextCursor;
      cursors.push(c);
    }
    for (const c of cursors.slice(0, 4)) assert.ok(lists.includes(`?cursor=${c}`), `asked for the page after ${c}`);
    assert.ok(!lists.includes(`?cursor=${cursors[4]}`), 'no sixth page');
  });

  await t.test('5,000 queues (50 forgotten): every one shown, and the notice goes', async () => {
    for (let i = 5000; i < 5050; i++) assert.equal((await api(d.url, 'DELETE', `/v1/queues/q0${i}`)).status, 204);
    await showQueues();
    // It showed the notice and 5000 rows before: wait for a look that hid it.
    await page.waitForFunction(() => document.querySelector('#queues-more').hidden);
    assert.equal(await rows(), 5000);
    assert.equal(await page.locator('#queues-more').textContent(), '');
    await page.locator('#queues-body tr[data-queue="q04999"]').waitFor();
  });

  assert.deepEqual(errors, []);
});
