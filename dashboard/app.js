// AsyncQueue dashboard: plain ES modules, no framework, no build step.
// Talks only to the daemon that serves it (the page's CSP allows nothing
// else), with the API key of this tab in every request.
import { openEventStream } from './sse.js';
import { lineChart } from './charts.js';

const KEY_STORE = 'asyncqueue.apiKey';
const STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'];
const FINAL = new Set(['completed', 'failed', 'cancelled']);
const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 50;
const SHOW_MAX = 100000; // characters of a payload or result shown at once

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Builds an element: h('td', {class: 'x', dataset: {id}}, 'text', child...). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---------------------------------------------------------------- state

const state = {
  key: sessionStorage.getItem(KEY_STORE) || '',
  who: null,
  stream: null,
  live: 'connecting',
  view: null,
  // tasks list: a model keyed by id, ordered newest first
  rows: new Map(),
  order: [],
  cursor: null,
  listLoaded: false,
  listError: null, /* why the last reset load failed (shown, and retried) */
  loading: false,
  pending: null,      // events that arrived while a list page was loading
  extra: null,        // a task found by a full-id search outside the loaded rows
  filter: { status: '', queue: '', q: '' },
  listGen: 0,
  knownQueues: new Set(),
  detailId: null,
  detail: null,
  timers: [],
};

const canAct = () => state.who && state.who.scope === 'admin';
const daemonWide = () => state.who && !state.who.tenant;

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders(key = state.key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The daemon cannot be reached.');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (res.status === 401 && state.who) {
    sessionExpired();
    throw new ApiError(401, 'unauthorized', 'The API key was refused.');
  }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, e ? e.code : 'http_' + res.status, e ? e.message : `HTTP ${res.status}`);
  }
  return data;
}

// ---------------------------------------------------------------- formatting

function hostOf(url) {
  try { return new URL(url).host; } catch { return ''; }
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return rest ? `${m} min ${rest} s` : `${m} min`;
  const hr = Math.floor(m / 60);
  return `${hr} h ${m - hr * 60} min`;
}

function fmtMs(ms) {
  if (ms < 1000) return `${+ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${+(ms / 1000).toFixed(2)} s`;
}

function fmtAge(iso, now = Date.now()) {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  return today ? time : `${d.toLocaleDateString()} ${time}`;
}

function fmtRel(iso) {
  if (!iso) return '';
  const diff = Date.parse(iso) - Date.now();
  const abs = Math.abs(diff);
  const txt = abs < 1000 ? 'now' : fmtDuration(abs).replace(/ \d+ s$/, '');
  return abs < 1000 ? 'now' : diff > 0 ? `in ${txt}` : `${txt} ago`;
}

function timeEl(iso, text = fmtTime(iso)) {
  return iso ? h('time', { datetime: iso, title: iso }, text) : '—';
}

function shortId(id) {
  return '…' + id.slice(-12);
}

function badge(status) {
  return h('span', { class: `badge badge-${status}` }, status);
}

function codeClass(code) {
  if (!code) return 'code-none';
  return `code-${Math.floor(code / 100)}xx`;
}

function pretty(value, { json = false } = {}) {
  const s = typeof value === 'string' && !json ? value : JSON.stringify(value, null, 2);
  if (s === undefined) return '';
  return s.length > SHOW_MAX ? `${s.slice(0, SHOW_MAX)}\n… (${s.length - SHOW_MAX} more characters not shown)` : s;
}

// ---------------------------------------------------------------- toasts

/** The same message again while its toast shows (a refresh failing every
 * few seconds while the daemon is down) counts on that toast, "(×3)", and
 * keeps it up, rather than stacking a copy each time. */
function toast(message, kind = 'info') {
  const same = [...$('#toasts').children].find((el) => el.dataset.message === message && el.dataset.kind === kind);
  const el = same || h('div', { class: `toast toast-${kind}`, dataset: { message, kind, count: '0' } }, message);
  el.dataset.count = String(Number(el.dataset.count) + 1);
  if (same) el.textContent = `${message} (×${el.dataset.count})`;
  else $('#toasts').append(el);
  clearTimeout(el.hideTimer);
  el.hideTimer = setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

function reportError(e, what) {
  if (e instanceof ApiError && e.status === 401) return; // the login form says it
  toast(`${what}: ${e.message}`, 'error');
}

// ---------------------------------------------------------------- dialog

/** A modal confirmation (<dialog>: focus stays inside, Escape closes). */
function confirmAction({ title, text, confirm, danger = true }) {
  const dlg = $('#confirm');
  const opener = document.activeElement;
  const openerId = opener && opener.id;
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  const yes = $('#confirm-yes');
  yes.textContent = confirm;
  yes.className = danger ? 'btn btn-danger' : 'btn btn-primary';
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      // The opener may have been re-rendered meanwhile: find it again by id.
      const back = opener && opener.isConnected ? opener : openerId && document.getElementById(openerId);
      if (back) back.focus();
    }, { once: true });
    dlg.showModal();
    $('#confirm-no').focus();
  });
}

// ---------------------------------------------------------------- log in

function show(el, on) {
  el.hidden = !on;
}

function showLogin(message = '') {
  state.who = null;
  for (const v of $$('.view')) v.hidden = true;
  show($('#boot'), false);
  show($('#nav'), false);
  show($('#session'), false);
  show($('#view-login'), true);
  $('#login-error').textContent = message;
  document.title = 'Log in · AsyncQueue';
  const input = $('#login-key');
  input.value = '';
  input.focus();
}

/** Asks /v1/whoami with key; returns {who} or {error}. */
async function whoami(key) {
  let res;
  try {
    res = await fetch('/v1/whoami', { headers: { Accept: 'application/json', ...authHeaders(key) }, cache: 'no-store' });
  } catch {
    return { error: 'The daemon cannot be reached.' };
  }
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (res.ok) return { who: data };
  if (res.status === 401) return { error: key ? 'This key is not accepted.' : '', refused: true };
  if (res.status === 403) {
    return { error: 'This key may only create tasks (scope enqueue); the dashboard needs a read or admin key.', refused: true };
  }
  return { error: (data && data.error && data.error.message) || `The daemon answered ${res.status}.` };
}

/** Returns null once logged in, else { error, refused } (refused: the daemon said no to the key). */
async function login(key, interactive = false) {
  const r = await whoami(key);
  if (!r.who) return r;
  state.key = r.who.authRequired ? key : '';
  if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
  else sessionStorage.removeItem(KEY_STORE);
  start(r.who, interactive);
  return null;
}

function logout() {
  sessionStorage.removeItem(KEY_STORE);
  state.key = '';
  stop();
  history.replaceState(null, '', '#/tasks');
  showLogin();
}

function sessionExpired(message = 'The API key was refused (revoked or rotated?). Log in again.') {
  sessionStorage.removeItem(KEY_STORE);
  state.key = '';
  stop();
  showLogin(message);
}

/** After a gap (a reload of the keys ends every stream): the key's scope
 * and tenant may have changed; show what it may do now, or log out. */
async function refreshWho() {
  const r = await whoami(state.key);
  if (r.who) {
    if (r.who.scope !== state.who.scope || (r.who.tenant || '') !== (state.who.tenant || '')) {
      stop(); // what was shown was for the key as it was
      start(r.who); // the same view, from the address
    }
  } else if (r.refused) {
    sessionExpired(r.error || undefined);
  }
}

function stop() {
  if (state.stream) state.stream.stop();
  state.stream = null;
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  state.rows.clear();
  state.order = [];
  state.cursor = null;
  state.listLoaded = false;
  state.listError = null;
  state.extra = null;
  state.detailId = null;
  state.detail = null;
  state.view = null;
  // The next log-in may be another key (a tenant's): nothing of this one stays.
  state.filter = { status: '', queue: '', q: '' };
  state.knownQueues.clear();
  $('#f-status').value = '';
  $('#f-search').value = '';
  $('#f-queue').replaceChildren(h('option', { value: '' }, 'All'));
  rowEls.clear();
  $('#tasks-body').replaceChildren();
  $('#schedules-body').replaceChildren(); // another key may have other schedules
}

function start(who, interactive = false) {
  state.who = who;
  show($('#view-login'), false);
  show($('#boot'), false);
  show($('#nav'), true);
  show($('#session'), true);
  document.body.classList.toggle('can-act', canAct());
  // Queues and daemon-wide stats need a key without a tenant (a tenant's
  // key has schedules of its own).
  for (const a of $$('#nav a')) {
    if (a.dataset.view === 'queues' || a.dataset.view === 'activity') a.hidden = !daemonWide();
  }
  const scope = who.scope === 'admin' ? 'admin' : who.scope === 'read' ? 'read-only' : who.scope;
  const label = !who.authRequired ? 'No key needed (loopback)' : `${who.key || 'key'} · ${scope}`;
  $('#whoami').replaceChildren(
    h('span', { class: `scope scope-${who.scope}` }, label),
    who.tenant ? h('span', { class: 'tenant' }, ` · tenant ${who.tenant}`) : '',
  );
  $('#logout').hidden = !who.authRequired;
  connectStream();
  state.timers.push(setInterval(tickAges, 1000));
  state.timers.push(setInterval(() => {
    if (document.hidden) return;
    if (state.view === 'queues') loadQueues();
    if (state.view === 'schedules') loadSchedules();
    if (state.view === 'activity') loadStats();
  }, 5000));
  if (daemonWide()) loadQueueNames();
  route(interactive); // after a typed key, focus moves to the view's heading
}

// ---------------------------------------------------------------- live events

function setLive(s) {
  state.live = s;
  const el = $('#live');
  el.dataset.live = s;
  const text = { connecting: 'Connecting…', connected: 'Live', reconnecting: 'Reconnecting…',
    unauthorized: 'Not live', stopped: 'Stopped' }[s] || s;
  $('.live-text', el).textContent = text;
  el.title = s === 'connected' ? 'Receiving task events as they happen' : 'Live updates are paused; retrying';
}

function connectStream() {
  setLive('connecting');
  state.stream = openEventStream({
    url: '/v1/events',
    headers: () => authHeaders(),
    onState: (s, status) => {
      if (s === 'unauthorized' && status === 401) { sessionExpired(); return; }
      // 403: the key lost its read scope (a reload of the keys).
      if (s === 'unauthorized' && status === 403) {
        sessionExpired('This key may no longer read (its scope changed); log in with a read or admin key.');
        return;
      }
      setLive(s);
    },
    onOpen: (again) => {
      // After a gap, events may have been missed: read the state afresh,
      // and the key's scope with it.
      if (again) {
        resync();
        refreshWho();
      }
    },
    onEvent: (ev) => {
      if (ev.type === 'reset') { resync(); return; }
      if (ev.type !== 'task') return;
      let e;
      try { e = JSON.parse(ev.data); } catch { return; }
      onTaskEvent(e);
    },
  });
}

function resync() {
  if (state.listLoaded) loadTasks(true);
  if (state.detailId) refreshDetailSoon(0);
  if (state.view === 'queues') loadQueues();
  if (state.view === 'schedules') loadSchedules();
  if (state.view === 'activity') loadStats();
}

const throttles = new Map();
function throttle(key, ms, fn) {
  if (throttles.has(key)) return;
  throttles.set(key, setTimeout(() => { throttles.delete(key); fn(); }, ms));
}

function onTaskEvent(e) {
  if (e.queue && !state.knownQueues.has(e.queue)) addQueueOption(e.queue);
  if (state.pending) state.pending.push(e);
  else applyEvent(e);
  if (state.detailId === e.id) refreshDetailSoon(150);
  if (state.view === 'queues') throttle('queues', 1000, loadQueues);
  // A schedule's run makes a task: its runs and last run change with it.
  if (state.view === 'schedules' && e.change === 'accepted') throttle('schedules', 1000, loadSchedules);
  if (state.view === 'activity') throttle('stats', 2000, loadStats);
}

// ---------------------------------------------------------------- tasks list

function rowFromTask(t) {
  return {
    id: t.id, status: t.status, queue: t.queue, host: hostOf(t.callbackUrl),
    attempts: t.attempts, createdAt: t.createdAt, updatedAt: t.updatedAt,
    durationMs: t.response ? t.response.durationMs : null,
    statusCode: t.response ? t.response.statusCode : null,
    error: t.error,
  };
}

function rowFromEvent(e) {
  return {
    id: e.id, status: e.status, queue: e.queue, host: e.host, attempts: e.attempts,
    createdAt: e.createdAt, updatedAt: e.updatedAt, durationMs: e.durationMs,
    statusCode: e.statusCode, error: e.error,
  };
}

function matchesFilter(r) {
  const f = state.filter;
  return (!f.status || r.status === f.status) && (!f.queue || r.queue === f.queue);
}

function matchesSearch(r) {
  const q = state.filter.q;
  return !q || r.id.toLowerCase().includes(q);
}

/** Shown: matches the search and, for listed rows, the filter (a task that
 * stopped matching, e.g. no longer running, is hidden, not counted). A full
 * id searched for shows its task whatever the filter, loaded or looked up. */
function rowVisible(r) {
  return matchesSearch(r) && (r === state.extra || r.id === state.filter.q || matchesFilter(r));
}

function applyEvent(e) {
  const row = state.rows.get(e.id) || (state.extra && state.extra.id === e.id ? state.extra : null);
  if (row) {
    if (row.updatedAt && e.updatedAt && e.updatedAt < row.updatedAt) return; // older than what we show
    const was = row.status;
    Object.assign(row, rowFromEvent(e));
    updateRowEl(row, was !== row.status);
    const tr = rowEls.get(row.id);
    if (tr) tr.hidden = !rowVisible(row);
    summarize();
    return;
  }
  if (!state.listLoaded || !matchesFilter(e)) return;
  // Insert it when it falls inside the loaded window (ids sort by creation).
  const oldest = state.order[state.order.length - 1];
  if (state.cursor && oldest && e.id < oldest) return;
  const r = rowFromEvent(e);
  state.rows.set(r.id, r);
  let i = 0;
  while (i < state.order.length && state.order[i] > r.id) i++;
  state.order.splice(i, 0, r.id);
  const tr = rowEl(r);
  flash(tr, 'is-new');
  const next = state.order[i + 1] && rowEls.get(state.order[i + 1]);
  $('#tasks-body').insertBefore(tr, next || null);
  tr.hidden = !matchesSearch(r);
  summarize();
}

const rowEls = new Map();

/** A short highlight; the class goes when it ends (else showing the view again replays it). */
function flash(tr, cls) {
  tr.classList.remove('changed', 'is-new');
  void tr.offsetWidth;
  tr.classList.add(cls);
  tr.addEventListener('animationend', () => tr.classList.remove(cls), { once: true });
  if (matchMedia('(prefers-reduced-motion: reduce)').matches || document.hidden) tr.classList.remove(cls);
}

function rowEl(r) {
  const tr = h('tr', { dataset: { id: r.id } });
  tr.append(
    h('td', { class: 'c-status', dataset: { label: 'Status' } }),
    h('td', { class: 'c-id', dataset: { label: 'Task' } },
      h('a', { href: `#/tasks/${r.id}`, class: 'mono', title: r.id, 'aria-label': `Task ${r.id}` }, shortId(r.id))),
    h('td', { class: 'c-queue', dataset: { label: 'Queue' } }, r.queue),
    h('td', { class: 'c-host', dataset: { label: 'Target' } }, r.host || '—'),
    h('td', { class: 'num c-attempts', dataset: { label: 'Attempts' } }),
    h('td', { class: 'num c-age', dataset: { label: 'Age' } }, h('time', { datetime: r.createdAt, title: r.createdAt })),
    h('td', { class: 'num c-duration', dataset: { label: 'Duration' } }),
  );
  rowEls.set(r.id, tr);
  fillRow(tr, r);
  return tr;
}

function fillRow(tr, r) {
  tr.dataset.status = r.status;
  $('.c-status', tr).replaceChildren(badge(r.status));
  $('.c-attempts', tr).textContent = String(r.attempts ?? 0);
  $('.c-age time', tr).textContent = fmtAge(r.createdAt);
  const dur = $('.c-duration', tr);
  dur.textContent = r.status === 'running' ? 'running…' : fmtDuration(r.durationMs);
  dur.title = r.statusCode ? `last response ${r.statusCode}` : '';
}

function updateRowEl(r, statusChanged) {
  const tr = rowEls.get(r.id);
  if (!tr) return;
  fillRow(tr, r);
  if (statusChanged) flash(tr, 'changed');
}

function renderTasks() {
  const body = $('#tasks-body');
  rowEls.clear();
  const trs = [];
  for (const id of state.order) {
    const r = state.rows.get(id);
    const tr = rowEl(r);
    tr.hidden = !rowVisible(r);
    trs.push(tr);
  }
  if (state.extra && !state.rows.has(state.extra.id)) {
    const tr = rowEl(state.extra);
    tr.hidden = !matchesSearch(state.extra);
    trs.push(tr);
  }
  body.replaceChildren(...trs);
  summarize();
}

function summarize() {
  const shown = $$('#tasks-body tr').filter((tr) => !tr.hidden).length;
  $('#tasks-empty').hidden = shown > 0 || state.loading;
  const empty = $('#tasks-empty');
  if (state.listError) empty.textContent = state.listError;
  else if (empty.dataset.error) empty.textContent = 'No tasks match.';
  empty.dataset.error = state.listError ? '1' : '';
  if (state.listError) {
    $('#tasks-summary').textContent = 'Loading tasks failed; retrying…';
    $('#load-more').hidden = true;
    return;
  }
  const more = state.cursor ? ' (more below)' : '';
  const f = state.filter;
  const what = [f.status, f.queue && `queue ${f.queue}`].filter(Boolean).join(', ');
  $('#tasks-summary').textContent = state.loading && !state.listLoaded
    ? 'Loading…'
    : `${shown} task${shown === 1 ? '' : 's'} shown${what ? ` (${what})` : ''}${more}`;
  $('#load-more').hidden = !state.cursor;
}

function tickAges() {
  const now = Date.now();
  if (document.hidden) return;
  if (state.view === 'schedules') {
    for (const t of $$('#schedules-body time[data-rel]')) {
      const text = fmtWhen(t.dataset.rel, now);
      if (t.textContent !== text) t.textContent = text;
    }
    return;
  }
  if (state.view !== 'tasks') return;
  for (const t of $$('#tasks-body .c-age time')) {
    const text = fmtAge(t.getAttribute('datetime'), now);
    if (t.textContent !== text) t.textContent = text;
  }
}

async function loadTasks(reset) {
  const gen = reset ? ++state.listGen : state.listGen;
  if (!reset && (state.loading || !state.cursor)) return;
  state.loading = true;
  if (reset) state.pending = [];
  summarize();
  const f = state.filter;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (f.status) params.set('status', f.status);
  if (f.queue) params.set('queue', f.queue);
  let cursor = reset ? null : state.cursor;
  const got = [];
  try {
    // A page can come back empty while more remain (the daemon scans at
    // most 10,000 rows per request): follow a few cursors before showing.
    for (let hops = 0; hops < 5; hops++) {
      if (cursor) params.set('cursor', cursor);
      const page = await api('GET', `/v1/tasks?${params}`);
      if (gen !== state.listGen) return;
      got.push(...page.tasks);
      cursor = page.nextCursor;
      if (got.length || !cursor) break;
    }
  } catch (e) {
    if (gen === state.listGen) {
      state.loading = false;
      state.pending = null;
      if (reset) {
        // The rows shown belonged to the filter before, or to nothing: an
        // empty "No tasks match" list stayed until the filter changed.
        state.rows.clear();
        state.order = [];
        state.cursor = null;
        state.listError = `Loading tasks failed (${e.message || e}); retrying…`;
        renderTasks();
        setTimeout(() => {
          if (gen === state.listGen && state.who && state.listError) loadTasks(true);
        }, 3000);
      } else {
        summarize();
        reportError(e, 'Loading tasks failed');
      }
    }
    return;
  }
  state.listError = null;
  if (reset) {
    state.rows.clear();
    state.order = [];
  }
  for (const t of got) {
    if (state.rows.has(t.id)) continue;
    state.rows.set(t.id, rowFromTask(t));
    state.order.push(t.id);
    if (t.queue && !state.knownQueues.has(t.queue)) addQueueOption(t.queue);
  }
  state.cursor = cursor;
  state.listLoaded = true;
  state.loading = false;
  if (reset) {
    renderTasks();
    const queued = state.pending || [];
    state.pending = null;
    for (const e of queued) applyEvent(e);
  } else {
    const body = $('#tasks-body');
    for (const t of got) {
      if (rowEls.has(t.id)) continue;
      const r = state.rows.get(t.id);
      const tr = rowEl(r);
      tr.hidden = !matchesSearch(r);
      body.append(tr);
    }
    summarize();
  }
  if (state.filter.q) searchById();
}

/** Adds queue names (one, or an array) to the filter's list, rebuilt once. */
function addQueueOption(add) {
  const fresh = (Array.isArray(add) ? add : [add]).filter((n) => !state.knownQueues.has(n));
  if (!fresh.length) return;
  for (const n of fresh) state.knownQueues.add(n);
  const sel = $('#f-queue');
  const names = [...state.knownQueues].sort();
  const opts = [h('option', { value: '' }, 'All'), ...names.map((n) => h('option', { value: n }, n))];
  const cur = sel.value;
  sel.replaceChildren(...opts);
  sel.value = cur;
}

// GET /v1/queues answers a page of at most 1000 queues, by name. The
// dashboard follows nextCursor for up to QUEUE_PAGES pages: past that many
// queues a table (and a filter's list) is no longer of use, and each look
// would cost the daemon a request per thousand queue names.
const QUEUE_PAGES = 5;

/** { queues, more }: the first QUEUE_PAGES pages of queues; more when there are others. */
async function fetchQueues() {
  const queues = [];
  let cursor = null;
  for (let i = 0; i < QUEUE_PAGES; i++) {
    const data = await api('GET', cursor === null ? '/v1/queues' : `/v1/queues?cursor=${encodeURIComponent(cursor)}`);
    queues.push(...(data.queues || []));
    // (the same cursor again would be a daemon's bug: stop rather than loop)
    if (typeof data.nextCursor !== 'string' || data.nextCursor === cursor) return { queues, more: false };
    cursor = data.nextCursor;
  }
  return { queues, more: true };
}

async function loadQueueNames() {
  try {
    const { queues } = await fetchQueues();
    addQueueOption(queues.map((q) => q.name)); // one rebuild: one a name was O(n²) with thousands
  } catch { /* the list still works without */ }
}

let searchTimer = null;
async function searchById() {
  const q = state.filter.q;
  // The row a full-id lookup added goes when the search no longer names it
  // (it sits outside the loaded, newest-first window).
  if (state.extra && state.extra.id !== q && !state.rows.has(state.extra.id)) {
    const tr = rowEls.get(state.extra.id);
    if (tr) tr.remove();
    rowEls.delete(state.extra.id);
    state.extra = null;
  }
  for (const [id, tr] of rowEls) {
    const r = state.rows.get(id) || state.extra;
    tr.hidden = !r || !rowVisible(r);
  }
  // A full id that is not among the loaded rows: ask the daemon for it.
  if (ID_RE.test(q) && !state.rows.has(q)) {
    if (!state.extra || state.extra.id !== q) {
      try {
        const t = await api('GET', `/v1/tasks/${q}`);
        if (state.filter.q !== q) return;
        state.extra = rowFromTask(t);
        const tr = rowEl(state.extra);
        $('#tasks-body').append(tr);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) reportError(e, 'Search failed');
      }
    }
  }
  summarize();
  const empty = $('#tasks-empty');
  empty.textContent = q
    ? (ID_RE.test(q) ? 'No task has this id.' : 'No loaded task matches; paste a full id to look it up, or load more.')
    : 'No tasks match.';
}

function bindTasks() {
  $('#filters').addEventListener('submit', (e) => e.preventDefault());
  $('#f-status').addEventListener('change', (e) => {
    state.filter.status = e.target.value;
    loadTasks(true);
  });
  $('#f-queue').addEventListener('change', (e) => {
    state.filter.queue = e.target.value;
    loadTasks(true);
  });
  $('#f-search').addEventListener('input', (e) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.filter.q = e.target.value.trim().toLowerCase();
      searchById();
    }, 120);
  });
  $('#load-more').addEventListener('click', () => loadTasks(false));
  // A click anywhere on a row opens it (the id link is the keyboard way).
  $('#tasks-body').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-id]');
    if (!tr || e.target.closest('a, button')) return;
    if (getSelection().toString()) return; // selecting text, not opening
    location.hash = `#/tasks/${tr.dataset.id}`;
  });
}

// ---------------------------------------------------------------- task detail

// One refresh timer: a later, lazier request (the 10 s look while a task
// runs) never postpones a sooner one (an event that just arrived).
let detailTimer = null;
let detailDue = 0;
function refreshDetailSoon(ms) {
  const due = Date.now() + ms;
  if (detailTimer && detailDue <= due) return;
  clearTimeout(detailTimer);
  detailDue = due;
  detailTimer = setTimeout(() => {
    detailTimer = null;
    if (state.detailId) loadDetail(state.detailId, false);
  }, ms);
}

// Loads can overlap; only the newest one may render, so an answer that was
// read before an event never paints over the one read after it.
let detailLoads = 0;
async function loadDetail(id, fresh) {
  const box = $('#task-detail');
  const seq = ++detailLoads;
  if (fresh) {
    box.replaceChildren(h('h1', { id: 'task-title', tabindex: '-1' }, 'Task ', h('span', { class: 'mono' }, id)),
      h('p', { class: 'muted' }, 'Loading…'));
  }
  let task, attempts;
  try {
    [task, attempts] = await Promise.all([
      api('GET', `/v1/tasks/${id}`),
      api('GET', `/v1/tasks/${id}/attempts`),
    ]);
  } catch (e) {
    if (state.detailId !== id || seq !== detailLoads) return;
    if (e instanceof ApiError && e.status === 404) {
      box.replaceChildren(h('h1', { id: 'task-title', tabindex: '-1' }, 'Task not found'),
        h('p', {}, `No task has the id ${id} (or this key may not see it).`));
    } else if (fresh) {
      box.replaceChildren(h('h1', { id: 'task-title', tabindex: '-1' }, 'Task'), h('p', { class: 'form-error' }, e.message));
    } else {
      reportError(e, 'Refreshing the task failed');
    }
    return;
  }
  if (state.detailId !== id || seq !== detailLoads) return;
  state.detail = task;
  // Keep the list in step with what the detail shows.
  const row = state.rows.get(id);
  if (row && (!row.updatedAt || task.updatedAt >= row.updatedAt)) {
    const was = row.status;
    Object.assign(row, rowFromTask(task));
    updateRowEl(row, was !== row.status);
  }
  const hadFocus = box.contains(document.activeElement);
  const focusId = hadFocus ? document.activeElement.id : '';
  const open = new Set($$('details[data-key]', box).filter((d) => d.open).map((d) => d.dataset.key));
  box.replaceChildren(renderDetail(task, attempts));
  // Events say when the task moves; webhook deliveries have none, so look
  // again now and then while one is still on its way.
  const wh = task.webhook;
  if (task.webhookUrl && (!FINAL.has(task.status) || !wh || wh.status === 'pending' || wh.status === 'delivering')) {
    const next = wh && wh.nextAttemptAt ? Date.parse(wh.nextAttemptAt) - Date.now() : 0;
    refreshDetailSoon(!FINAL.has(task.status) ? 10000 : Math.min(30000, Math.max(2000, next)));
  }
  for (const d of $$('details[data-key]', box)) if (open.has(d.dataset.key)) d.open = true;
  // Re-rendering replaced the focused element: focus its successor (or,
  // when it is gone, such as Cancel after cancelling, the heading).
  if (hadFocus) ((focusId && document.getElementById(focusId)) || $('#task-title')).focus({ preventScroll: true });
}

function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.append(h('dt', {}, k), h('dd', {}, v === null || v === '' ? '—' : v));
  }
  return dl;
}

function section(title, ...children) {
  const id = 'sec-' + title.toLowerCase().replace(/[^a-z]+/g, '-');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** json: value is JSON to show as JSON (a string quoted), not a text to show as it is. */
function pre(value, label, json = false) {
  return h('pre', { class: 'code', tabindex: '0', 'aria-label': label }, pretty(value, { json }));
}

function headersTable(obj, label) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'No headers.');
  return h('table', { class: 'headers' },
    h('caption', { class: 'visually-hidden' }, label),
    h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k),
      // A long value scrolls in its cell, and takes focus so a keyboard can scroll it.
      h('td', {}, h('span', String(v).length > 300 ? { class: 'header-value', tabindex: '0' } : { class: 'header-value' },
        String(v)))))));
}

function renderDetail(t, att) {
  const frag = document.createDocumentFragment();
  const actions = h('div', { class: 'detail-actions' });
  if (canAct()) {
    if (!FINAL.has(t.status)) {
      actions.append(h('button', { type: 'button', class: 'btn btn-danger', id: 'detail-cancel', onclick: () => cancelTask(t) }, 'Cancel task'));
    } else {
      actions.append(h('button', { type: 'button', class: 'btn btn-primary', id: 'detail-retry', onclick: () => retryTask(t) }, 'Retry task'));
    }
  }
  frag.append(h('div', { class: 'detail-head' },
    h('div', { class: 'detail-title' },
      h('h1', { id: 'task-title', tabindex: '-1' }, 'Task ', h('span', { class: 'mono id-full' }, t.id)),
      h('p', { class: 'detail-sub' }, badge(t.status), ' ',
        h('span', { class: 'method' }, t.method), ' ', h('span', { class: 'url' }, t.callbackUrl))),
    actions));

  const grid = h('div', { class: 'detail-grid' });
  const budget = t.retries + 1;
  grid.append(section('Overview', kv([
    ['Status', badge(t.status)],
    ['Queue', t.queue],
    ['Target host', hostOf(t.callbackUrl)],
    ['Attempts', `${t.attempts}${t.replays ? '' : ` of up to ${budget}`}`],
    ['Replays', String(t.replays ?? 0)],
    ['Timeout', fmtDuration(t.timeout * 1000)],
    ['Created', timeEl(t.createdAt)],
    ['Run at', t.runAt ? h('span', {}, timeEl(t.runAt), ' ', h('span', { class: 'muted' }, `(${fmtRel(t.runAt)})`)) : null],
    ['Started', timeEl(t.startedAt)],
    ['Finished', timeEl(t.finishedAt)],
    ['Updated', timeEl(t.updatedAt)],
    ['Idempotency key', t.idempotencyKey],
    ['Follow redirects', t.followRedirects ? 'yes' : 'no'],
  ])));

  grid.append(section('Attempts', timeline(t, att.attempts)));

  const body = 'payload' in t ? pre(t.payload, 'Payload (JSON)', true)
    : 'body' in t ? pre(t.body, 'Body')
      : h('p', { class: 'muted' }, 'No body.');
  grid.append(section('Request',
    kv([['Method', t.method], ['URL', h('span', { class: 'url' }, t.callbackUrl)]]),
    h('h3', {}, 'Headers'), headersTable(t.headers, 'Request headers'),
    h('h3', {}, 'payload' in t ? 'Payload' : 'Body'), body));

  const resp = t.response;
  const result = [];
  if (resp) {
    result.push(kv([
      ['Status code', h('span', { class: `code ${codeClass(resp.statusCode)}` }, String(resp.statusCode))],
      ['Duration', fmtDuration(resp.durationMs)],
    ]));
    const d = h('details', { dataset: { key: 'resp-headers' } }, h('summary', {}, `Response headers (${Object.keys(resp.headers || {}).length})`),
      headersTable(resp.headers, 'Response headers'));
    result.push(d);
  } else {
    result.push(h('p', { class: 'muted' }, FINAL.has(t.status) ? 'No response arrived.' : 'No response yet.'));
  }
  if (t.error) {
    result.push(h('div', { class: 'error-box', role: 'note' }, h('strong', {}, t.error.code), ': ', t.error.message));
  }
  if (t.result !== null && t.result !== undefined) {
    result.push(h('h3', {}, t.resultEncoding === 'base64' ? 'Result (base64: the body is not UTF-8)' : 'Result'),
      pre(t.result, 'Result'));
  }
  grid.append(section('Result and response', ...result));

  grid.append(section('Webhook', webhookView(t, att.webhookDeliveries)));
  grid.append(section('Metadata', t.metadata === null || t.metadata === undefined
    ? h('p', { class: 'muted' }, 'None.') : pre(t.metadata, 'Metadata', true)));
  frag.append(grid);
  return frag;
}

function timeline(t, attempts) {
  if (!attempts.length && t.status !== 'running') {
    const when = t.status === 'queued' ? ` The first attempt is due ${fmtRel(t.runAt)}.` : '';
    return h('p', { class: 'muted' }, `No attempts yet.${t.status === 'cancelled' ? '' : when}`);
  }
  const max = Math.max(1, ...attempts.map((a) => a.durationMs || 0));
  const ol = h('ol', { class: 'timeline', 'aria-label': 'Attempts, oldest first' });
  attempts.forEach((a, i) => {
    const ok = a.statusCode >= 200 && a.statusCode < 300 && !a.error;
    const prev = attempts[i - 1];
    if (prev && prev.finishedAt && a.startedAt) {
      const gap = Date.parse(a.startedAt) - Date.parse(prev.finishedAt);
      if (gap > 0) ol.append(h('li', { class: 'gap' }, `${fmtDuration(gap)} later`));
    }
    const bar = h('span', { class: 'bar-fill' });
    bar.style.width = `${Math.max(2, Math.round(((a.durationMs || 0) / max) * 100))}%`;
    ol.append(h('li', { class: `attempt ${ok ? 'ok' : 'err'}`, dataset: { n: a.n } },
      h('div', { class: 'attempt-head' },
        h('strong', {}, `Attempt ${a.n}`),
        h('span', { class: `code ${codeClass(a.statusCode)}` }, a.statusCode ? String(a.statusCode) : 'no response'),
        h('span', { class: 'attempt-duration' }, fmtDuration(a.durationMs))),
      h('div', { class: 'bar', 'aria-hidden': 'true' }, bar),
      h('div', { class: 'attempt-meta muted' }, timeEl(a.startedAt), ' → ', timeEl(a.finishedAt)),
      a.error ? h('p', { class: 'attempt-error' }, h('strong', {}, a.error.code), ': ', a.error.message) : null));
  });
  if (t.status === 'running') {
    ol.append(h('li', { class: 'attempt pending' }, h('div', { class: 'attempt-head' },
      h('strong', {}, 'Running now'), h('span', { class: 'muted' }, `since ${fmtTime(t.startedAt)}`))));
  } else if (t.status === 'queued' && attempts.length) {
    ol.append(h('li', { class: 'attempt pending' }, h('div', { class: 'attempt-head' },
      h('strong', {}, 'Next attempt'), h('span', { class: 'muted' }, `${fmtRel(t.runAt)} (${fmtTime(t.runAt)})`))));
  }
  return ol;
}

function webhookView(t, deliveries) {
  if (!t.webhookUrl) return h('p', { class: 'muted' }, 'This task has no webhook.');
  const w = t.webhook;
  const parts = [];
  parts.push(kv([
    ['URL', h('span', { class: 'url' }, t.webhookUrl)],
    ['Status', w ? h('span', { class: `badge badge-wh-${w.status}` }, w.status) : 'sent when the task finishes'],
    ['Message id', w ? h('span', { class: 'mono' }, w.id) : undefined],
    ['Deliveries', w ? String(w.attempts) : undefined],
    ['Delivered', w && w.deliveredAt ? timeEl(w.deliveredAt) : undefined],
    ['Next try', w && w.nextAttemptAt ? timeEl(w.nextAttemptAt, `${fmtTime(w.nextAttemptAt)} (${fmtRel(w.nextAttemptAt)})`) : undefined],
    ['Last error', w && w.lastError ? w.lastError : undefined],
  ]));
  if (deliveries && deliveries.length) {
    parts.push(h('h3', {}, 'Deliveries'));
    const ol = h('ol', { class: 'timeline compact', 'aria-label': 'Webhook deliveries' });
    // A replayed task sends a new message (its own id) when it finishes again.
    const messages = new Set(deliveries.map((d) => d.webhookId)).size;
    for (const d of deliveries) {
      const ok = d.statusCode >= 200 && d.statusCode < 300;
      ol.append(h('li', { class: `attempt ${ok ? 'ok' : 'err'}` },
        h('div', { class: 'attempt-head' },
          h('strong', {}, `Delivery ${d.n}`),
          h('span', { class: `code ${codeClass(d.statusCode)}` }, d.statusCode ? String(d.statusCode) : 'no response'),
          h('span', { class: 'attempt-duration' }, fmtDuration(d.durationMs))),
        h('div', { class: 'attempt-meta muted' }, timeEl(d.startedAt),
          messages > 1 ? h('span', { class: 'mono', title: d.webhookId }, ` · ${d.webhookId.slice(0, 4)}…${d.webhookId.slice(-6)}`) : null),
        d.error ? h('p', { class: 'attempt-error' }, d.error) : null));
    }
    parts.push(ol);
  }
  return parts;
}

async function cancelTask(t) {
  const ok = await confirmAction({
    title: 'Cancel this task?',
    text: `Task ${t.id} will not run again${t.status === 'running' ? ' and its call in progress is aborted' : ''}. `
      + 'You can retry it later.',
    confirm: 'Cancel task',
  });
  if (!ok) return;
  try {
    await api('POST', `/v1/tasks/${t.id}/cancel`);
    toast('Task cancelled.', 'success');
  } catch (e) {
    reportError(e, 'Cancel failed');
  }
  refreshDetailSoon(0);
}

async function retryTask(t) {
  const ok = await confirmAction({
    title: 'Retry this task?',
    text: `Task ${t.id} is queued again and runs as a new series of attempts (its earlier attempts stay in its history).`,
    confirm: 'Retry task',
    danger: false,
  });
  if (!ok) return;
  try {
    await api('POST', `/v1/tasks/${t.id}/retry`);
    toast('Task queued again.', 'success');
  } catch (e) {
    reportError(e, 'Retry failed');
  }
  refreshDetailSoon(0);
}

// ---------------------------------------------------------------- queues

function pct(n, d) {
  if (!d) return '—';
  const p = (n / d) * 100;
  return `${p < 10 && p > 0 ? p.toFixed(1) : Math.round(p)}%`;
}

function limitsText(q) {
  const parts = [];
  if (q.maxConcurrency) parts.push(q.maxConcurrency === 1 ? 'one at a time' : `≤ ${q.maxConcurrency} at once`);
  if (q.ratePerSecond) parts.push(`${q.ratePerSecond}/s burst ${q.burst || 1}`);
  return parts.join(', ') || 'none';
}

let queuesLook = 0; // the latest load of the Queues view
async function loadQueues() {
  const look = ++queuesLook;
  let data;
  try {
    data = await fetchQueues();
  } catch (e) {
    if (look === queuesLook) reportError(e, 'Loading queues failed');
    return;
  }
  // A load takes a request per 1000 queues, and the 5 s refresh, events
  // and the route each start one: only the latest started may show, or an
  // older one that ends last would put back what it saw.
  if (look !== queuesLook || state.view !== 'queues') return;
  const body = $('#queues-body');
  const focusKey = document.activeElement && body.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const rows = data.queues.sort((a, b) => a.name.localeCompare(b.name)).map((q) => {
    const lm = q.lastMinute || {};
    const ss = q.sinceStart || {};
    const done = (lm.completed || 0) + (lm.failed || 0);
    const action = canAct()
      ? h('button', {
        type: 'button', class: `btn btn-small ${q.paused ? 'btn-primary' : ''}`,
        dataset: { key: `q-${q.name}`, queue: q.name, action: q.paused ? 'resume' : 'pause' },
        'aria-label': `${q.paused ? 'Resume' : 'Pause'} queue ${q.name}`,
        onclick: () => setPaused(q.name, !q.paused),
      }, q.paused ? 'Resume' : 'Pause')
      : null;
    return h('tr', { dataset: { queue: q.name, paused: String(q.paused) } },
      h('th', { scope: 'row', class: 'mono', dataset: { label: 'Queue' } },
        h('a', { href: '#/tasks', onclick: () => { setQueueFilter(q.name); } , title: `Tasks of ${q.name}` }, q.name)),
      h('td', { dataset: { label: 'State' } }, h('span', { class: `badge ${q.paused ? 'badge-paused' : 'badge-active'}` }, q.paused ? 'paused' : 'active')),
      h('td', { class: 'num', dataset: { label: 'Queued' } }, String(q.queued)),
      h('td', { class: 'num', dataset: { label: 'Due' } }, String(q.due)),
      h('td', { class: 'num', dataset: { label: 'In flight' } }, String(q.inflight)),
      h('td', { class: 'num', dataset: { label: 'Throughput' }, title: `${lm.dispatched || 0} started in the last minute` }, `${done}/min`),
      h('td', { class: `num ${lm.failed ? 'has-errors' : ''}`, dataset: { label: 'Error rate' }, title: `${lm.failed || 0} of ${done} failed in the last minute` }, pct(lm.failed || 0, done)),
      h('td', { class: 'num', dataset: { label: 'Since start' } },
        `${ss.completed || 0} ok · ${ss.failed || 0} failed`, h('span', { class: 'muted small' }, ` (${pct(ss.failed || 0, (ss.completed || 0) + (ss.failed || 0))})`)),
      h('td', { dataset: { label: 'Limits' } }, limitsText(q)),
      h('td', { class: 'actions-col', dataset: { label: '' } }, action));
  });
  addQueueOption(data.queues.map((q) => q.name));
  body.replaceChildren(...rows);
  $('#queues-empty').hidden = rows.length > 0;
  const more = $('#queues-more');
  more.hidden = !data.more;
  more.textContent = data.more
    ? `Showing the first ${rows.length.toLocaleString('en')} queues by name; there are more ` +
      '(asyncqueue queue list, or GET /v1/queues page by page, lists them all).'
    : '';
  if (focusKey) {
    const el = $(`[data-key="${CSS.escape(focusKey)}"]`, body);
    if (el) el.focus();
  }
}

function setQueueFilter(name) {
  state.filter.queue = name;
  $('#f-queue').value = name;
  state.listLoaded = false;
}

async function setPaused(name, paused) {
  try {
    await api('POST', `/v1/queues/${encodeURIComponent(name)}/${paused ? 'pause' : 'resume'}`);
    toast(`Queue ${name} ${paused ? 'paused: it starts nothing until resumed' : 'resumed'}.`, 'success');
  } catch (e) {
    reportError(e, `${paused ? 'Pause' : 'Resume'} failed`);
  }
  await loadQueues();
}

// ---------------------------------------------------------------- schedules

// As the queues: GET /v1/schedules answers up to 1000 a page, by name; the
// view follows nextCursor for up to SCHEDULE_PAGES pages.
const SCHEDULE_PAGES = 5;

/** { schedules, more }: the first SCHEDULE_PAGES pages; more when there are others. */
async function fetchSchedules() {
  const schedules = [];
  let cursor = null;
  for (let i = 0; i < SCHEDULE_PAGES; i++) {
    const data = await api('GET', cursor === null ? '/v1/schedules' : `/v1/schedules?cursor=${encodeURIComponent(cursor)}`);
    schedules.push(...(data.schedules || []));
    if (typeof data.nextCursor !== 'string' || data.nextCursor === cursor) return { schedules, more: false };
    cursor = data.nextCursor;
  }
  return { schedules, more: true };
}

/** "in 3 s", "in 4 min", "2 h ago": coarse, for times a tick re-renders. */
function fmtWhen(iso, now = Date.now()) {
  const diff = Date.parse(iso) - now;
  const s = Math.round(Math.abs(diff) / 1000);
  if (s < 1) return 'now';
  let txt;
  if (s < 60) txt = `${s} s`;
  else if (s < 3600) txt = `${Math.floor(s / 60)} min`;
  else if (s < 86400) txt = `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  else txt = `${Math.floor(s / 86400)} d`;
  return diff > 0 ? `in ${txt}` : `${txt} ago`;
}

/** A time as "in 3 s" (kept current by tickAges) with the full time below. */
function whenEl(iso) {
  return h('span', { class: 'when' },
    h('time', { datetime: iso, title: iso, class: 'rel', dataset: { rel: iso } }, fmtWhen(iso)),
    h('span', { class: 'muted small abs' }, fmtTime(iso).replace(/\.\d{3}$/, ''))); // cron times are whole seconds
}

function scheduleExample() {
  const key = state.who && state.who.authRequired ? " -H 'Authorization: Bearer <admin key>'" : '';
  return `curl -X PUT ${location.origin}/v1/schedules/nightly${key} -H 'Content-Type: application/json' `
    + `-d '{"cron": "0 3 * * *", "task": {"callbackUrl": "https://example.com/run"}}'`;
}

function scheduleRow(s) {
  const n = s.name;
  // data-key finds the focused button again after a refresh: Pause and
  // Resume share one, so focus stays on the toggle that was pressed.
  const btn = (action, label, attrs = {}) => h('button', {
    type: 'button', class: `btn btn-small ${attrs.class || ''}`,
    dataset: { key: `s-${action === 'resume' ? 'pause' : action}-${n}`, schedule: n, action },
    'aria-label': `${label} schedule ${n}`,
    onclick: attrs.onclick,
  }, label);
  const actions = canAct()
    ? h('div', { class: 'row-actions' },
      s.paused
        ? btn('resume', 'Resume', { class: 'btn-primary', onclick: () => setSchedulePaused(n, false) })
        : btn('pause', 'Pause', { onclick: () => setSchedulePaused(n, true) }),
      btn('run', 'Run now', { onclick: (e) => runSchedule(n, e.currentTarget) }),
      btn('delete', 'Delete', { class: 'btn-danger-quiet', onclick: () => deleteSchedule(n) }))
    : null;
  const t = s.task || {};
  const target = [t.queue && t.queue !== 'default' ? `queue ${t.queue}` : null, hostOf(t.callbackUrl)].filter(Boolean).join(' · ');
  let next;
  if (s.paused) next = h('span', { class: 'muted' }, 'none while paused');
  else if (s.nextRunAt) next = whenEl(s.nextRunAt);
  else next = h('span', { class: 'muted' }, 'never');
  const last = [];
  if (s.lastRunAt) last.push(whenEl(s.lastRunAt));
  else last.push(h('span', { class: 'muted' }, 'not yet'));
  if (s.lastTaskId) {
    last.push(h('a', {
      href: `#/tasks/${s.lastTaskId}`, class: 'mono last-task', title: s.lastTaskId,
      'aria-label': `${s.lastError ? 'Last task made' : 'Task of the last run'}: ${s.lastTaskId}`,
    }, s.lastError ? `last task made ${shortId(s.lastTaskId)}` : `task ${shortId(s.lastTaskId)}`));
  }
  if (s.lastError) {
    last.push(h('p', { class: 'sched-error' }, h('strong', {}, 'No task made: '), s.lastError));
  }
  return h('tr', { dataset: { schedule: n, paused: String(s.paused), runs: String(s.runs) } },
    h('th', { scope: 'row', dataset: { label: 'Schedule' } },
      h('span', { class: 'mono sched-name' }, n),
      target ? h('span', { class: 'muted small sched-target' }, target) : null),
    h('td', { class: 'c-state', dataset: { label: 'State' } },
      h('span', { class: `badge ${s.paused ? 'badge-paused' : 'badge-active'}` }, s.paused ? 'paused' : 'active')),
    h('td', { class: 'c-cron', dataset: { label: 'Cron' } }, h('code', {}, s.cron),
      h('span', { class: 'muted small abs' }, s.timezone || 'UTC')),
    h('td', { class: 'c-next', dataset: { label: 'Next run' } }, next),
    h('td', { class: `c-last ${s.lastError ? 'has-errors' : ''}`, dataset: { label: 'Last run' } }, last),
    h('td', { class: 'num c-runs', dataset: { label: 'Runs' } }, String(s.runs)),
    h('td', { class: 'actions-col', dataset: { label: '' } }, actions));
}

let schedulesLook = 0; // the latest load of the Schedules view
async function loadSchedules() {
  const look = ++schedulesLook;
  let data;
  try {
    data = await fetchSchedules();
  } catch (e) {
    if (look === schedulesLook) reportError(e, 'Loading schedules failed');
    return;
  }
  // Only the latest look started may show (as the queues).
  if (look !== schedulesLook || state.view !== 'schedules') return;
  const body = $('#schedules-body');
  const focusKey = document.activeElement && body.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const rows = data.schedules.map(scheduleRow);
  body.replaceChildren(...rows);
  $('#schedules-empty').hidden = rows.length > 0;
  $('#schedules-table').hidden = rows.length === 0;
  $('#schedules-example').textContent = scheduleExample();
  const more = $('#schedules-more');
  more.hidden = !data.more;
  more.textContent = data.more
    ? `Showing the first ${rows.length.toLocaleString('en')} schedules by name; there are more `
      + '(GET /v1/schedules, page by page, lists them all).'
    : '';
  if (focusKey) {
    const el = $(`[data-key="${CSS.escape(focusKey)}"]`, body);
    if (el) el.focus();
  }
}

function scheduleUrl(name, action = '') {
  return `/v1/schedules/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;
}

async function setSchedulePaused(name, paused) {
  try {
    await api('POST', scheduleUrl(name, paused ? 'pause' : 'resume'));
    toast(`Schedule ${name} ${paused ? 'paused: it makes no task until resumed' : 'resumed'}.`, 'success');
  } catch (e) {
    reportError(e, `${paused ? 'Pause' : 'Resume'} failed`);
  }
  await loadSchedules();
}

async function runSchedule(name, button) {
  if (button) button.disabled = true;
  let t;
  try {
    t = await api('POST', scheduleUrl(name, 'run'));
  } catch (e) {
    reportError(e, 'Run now failed');
    if (button && button.isConnected) button.disabled = false;
    await loadSchedules();
    return;
  }
  toast(`Schedule ${name} ran: task ${t.id}.`, 'success');
  location.hash = `#/tasks/${t.id}`; // the route opens the task and focuses its heading
}

async function deleteSchedule(name) {
  const ok = await confirmAction({
    title: 'Delete this schedule?',
    text: `Schedule ${name} is removed and makes no more tasks. The tasks it already made stay. `
      + 'This cannot be undone here (the API can create it again).',
    confirm: 'Delete schedule',
  });
  if (!ok) {
    // A refresh while the dialog was open may have replaced the button.
    const back = $(`#schedules-body [data-key="${CSS.escape(`s-delete-${name}`)}"]`);
    if (back && document.activeElement !== back) back.focus();
    return;
  }
  try {
    await api('DELETE', scheduleUrl(name));
    toast(`Schedule ${name} deleted.`, 'success');
  } catch (e) {
    reportError(e, 'Delete failed');
  }
  await loadSchedules();
  // Its buttons are gone: focus the heading rather than the page's top.
  if (!document.activeElement || document.activeElement === document.body) $('#schedules-title').focus();
}

// ---------------------------------------------------------------- activity

async function loadStats() {
  let s;
  try {
    s = await api('GET', '/v1/stats?minutes=60');
  } catch (e) {
    reportError(e, 'Loading stats failed');
    return;
  }
  if (state.view !== 'activity') return;
  const mins = s.minutes;
  const sum = (k) => mins.reduce((a, m) => a + (m[k] || 0), 0);
  const lastWith = [...mins].reverse().find((m) => m.attempts > 0);
  const cards = [
    ['Backlog', s.backlog, 'queued or running'],
    ['In flight', s.inflight, 'calls right now'],
    ['Accepted', sum('accepted'), 'last hour'],
    ['Completed', sum('completed'), 'last hour'],
    ['Failed', sum('failed'), 'last hour'],
    ['p95 latency', lastWith ? fmtMs(lastWith.p95Ms) : '—', 'latest minute with attempts'],
  ];
  $('#stats').replaceChildren(...cards.map(([k, v, sub]) => h('div', { class: `card stat stat-${k.toLowerCase().replace(/\W+/g, '-')}` },
    h('div', { class: 'stat-label' }, k), h('div', { class: 'stat-value' }, String(v)), h('div', { class: 'stat-sub muted' }, sub))));
  const times = mins.map((m) => new Date(m.minute));
  lineChart($('#chart-throughput'), {
    times,
    label: `Tasks per minute over the last hour: ${sum('accepted')} accepted, ${sum('completed')} completed, ${sum('failed')} failed`,
    integer: true,
    bars: true,
    series: [
      { key: 'accepted', label: 'Accepted', values: mins.map((m) => m.accepted) },
      { key: 'completed', label: 'Completed', values: mins.map((m) => m.completed) },
      { key: 'failed', label: 'Failed', values: mins.map((m) => m.failed) },
    ],
  });
  const lat = (k) => mins.map((m) => (m.attempts > 0 ? m[k] : null));
  lineChart($('#chart-latency'), {
    times,
    label: `Attempt latency percentiles per minute over the last hour (${sum('attempts')} attempts)`,
    format: fmtMs,
    series: [
      { key: 'p50', label: 'p50', values: lat('p50Ms') },
      { key: 'p95', label: 'p95', values: lat('p95Ms') },
      { key: 'p99', label: 'p99', values: lat('p99Ms') },
    ],
  });
}

let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (state.view === 'activity') loadStats(); }, 200);
});

// ---------------------------------------------------------------- routing

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [view, id] = hash.split('/');
  // Only an id's shape goes into API paths ("..", "x?wait=5" made other
  // requests): anything else is the list.
  if (view === 'tasks' && id && ID_RE.test(id)) {
    return { view: 'task', id: id.toLowerCase() };
  }
  if (view === 'queues' && daemonWide()) return { view: 'queues' };
  if (view === 'schedules') return { view: 'schedules' };
  if (view === 'activity' && daemonWide()) return { view: 'activity' };
  return { view: 'tasks' };
}

function route(moveFocus = true) {
  if (!state.who) return;
  const r = parseRoute();
  state.view = r.view;
  for (const v of $$('.view')) v.hidden = v.id !== `view-${r.view}`;
  for (const a of $$('#nav a')) {
    const on = a.dataset.view === r.view || (r.view === 'task' && a.dataset.view === 'tasks');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  state.detailId = r.view === 'task' ? r.id : null;
  const titles = { tasks: 'Tasks', task: 'Task', queues: 'Queues', schedules: 'Schedules', activity: 'Activity' };
  document.title = `${titles[r.view]} · AsyncQueue`;
  if (r.view === 'tasks' && !state.listLoaded) loadTasks(true);
  if (r.view === 'task') loadDetail(r.id, true);
  if (r.view === 'queues') loadQueues();
  if (r.view === 'schedules') loadSchedules();
  if (r.view === 'activity') loadStats();
  if (moveFocus) {
    const heading = r.view === 'task' ? $('#task-title') : $(`#view-${r.view} h1`);
    if (heading) heading.focus();
  }
}

// ---------------------------------------------------------------- start

async function main() {
  bindTasks();
  $('#logout').addEventListener('click', logout);
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = $('#login-key').value.trim();
    if (!key) {
      $('#login-error').textContent = 'Enter an API key.';
      return;
    }
    const btn = $('#login-form button[type=submit]');
    btn.disabled = true;
    const err = await login(key, true);
    btn.disabled = false;
    if (err !== null) {
      $('#login-error').textContent = err.error || 'This key is not accepted.';
      $('#login-key').select();
    }
  });
  $('#confirm').addEventListener('click', (e) => {
    // A click on the backdrop (outside the form) dismisses.
    if (e.target === e.currentTarget) e.currentTarget.close('cancel');
  });
  window.addEventListener('hashchange', () => route(true));
  if (!location.hash) history.replaceState(null, '', '#/tasks');

  // With a key from this tab's session, or none (a daemon without keys).
  const stored = state.key;
  const err = await login(stored);
  if (err !== null) {
    // Only a key the daemon refused is forgotten: an unreachable daemon or a
    // proxy's 502 says nothing about it, and a reload then works again.
    if (err.refused) {
      sessionStorage.removeItem(KEY_STORE);
      state.key = '';
    }
    showLogin(stored ? err.error : '');
  }
}

main();
