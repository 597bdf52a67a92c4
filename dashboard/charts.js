// Small SVG line charts, drawn by hand (no library): per-minute series with
// a y axis of round numbers, time labels, and a hover/focus read-out.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A "nice" upper bound and tick step for values up to max. */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: ticks, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  let step = nice * mag;
  if (Number.isInteger(max) && step < 1) step = 1;
  return { top: step * Math.ceil(max / step), step };
}

const hhmm = (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });

/**
 * Draws a line chart into container (replacing what was there).
 *   times:   Date per point (one per minute)
 *   series:  [{ key, label, values: (number|null)[] }]  (null: no data, a gap)
 *   format:  value => text (axis and read-out)
 *   label:   accessible name of the chart
 *   integer: y ticks are whole numbers
 */
export function lineChart(container, { times, series, format = String, label, integer = false, bars = false }) {
  const width = Math.max(280, Math.round(container.clientWidth || 600));
  const height = width < 480 ? 180 : 220;
  const m = { top: 12, right: 12, bottom: 26, left: 52 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const n = times.length;

  let max = 0;
  let total = 0;
  let points = 0;
  for (const s of series) {
    for (const v of s.values) {
      if (v === null || v === undefined) continue;
      max = Math.max(max, v);
      total += v;
      points++;
    }
  }
  let { top, step } = niceScale(max);
  if (integer && step < 1) { step = 1; top = Math.max(top, 1); }
  // Bars sit in one slot per minute; lines run from edge to edge.
  const slot = w / Math.max(1, n);
  const x = bars
    ? (i) => m.left + slot * (i + 0.5)
    : (i) => m.left + (n <= 1 ? w / 2 : (i * w) / (n - 1));
  const y = (v) => m.top + h - (v / top) * h;

  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label,
    class: 'chart-svg', 'data-total': total, 'data-points': points, 'data-max': max,
  });
  root.append(svg('title', {}, label));

  // Grid and y axis.
  const grid = svg('g', { class: 'grid' });
  for (let v = 0; v <= top + step / 1e6; v += step) {
    const yy = Math.round(y(v)) + 0.5;
    grid.append(svg('line', { x1: m.left, x2: m.left + w, y1: yy, y2: yy }));
    grid.append(svg('text', { x: m.left - 6, y: yy, class: 'tick-y', 'text-anchor': 'end', 'dominant-baseline': 'middle' },
      format(v)));
  }
  root.append(grid);

  // Time labels on round minutes (every 10 or 15, whichever fits).
  const every = slot * 10 >= 56 ? 10 : 15;
  const axis = svg('g', { class: 'axis-x' });
  for (let i = 0; i < n; i++) {
    if (times[i].getMinutes() % every !== 0) continue;
    const xx = x(i);
    if (xx < m.left + 16 || xx > m.left + w - 16) continue;
    axis.append(svg('line', { x1: xx, x2: xx, y1: m.top + h, y2: m.top + h + 4, class: 'tick' }));
    axis.append(svg('text', { x: xx, y: height - 6, 'text-anchor': 'middle', class: 'tick-x' }, hhmm(times[i])));
  }
  root.append(axis);

  // Series.
  if (bars) {
    const k = series.length;
    const bw = Math.max(1, (slot * 0.86) / k);
    series.forEach((s, j) => {
      const g = svg('g', { class: `series series-${s.key}`, 'data-series': s.key });
      s.values.forEach((v, i) => {
        if (!v) return;
        const top = y(v);
        const bx = x(i) - (bw * k) / 2 + j * bw;
        g.append(svg('rect', { x: bx.toFixed(1), y: top.toFixed(1), width: bw.toFixed(1),
          height: Math.max(1, m.top + h - top).toFixed(1), class: `col series-${s.key}`, rx: bw > 3 ? 1 : 0 }));
      });
      root.append(g);
    });
  }
  for (const s of bars ? [] : series) {
    let d = '';
    let pen = false;
    let lastPt = null;
    let segments = 0;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      const px = x(i).toFixed(1);
      const py = y(v).toFixed(1);
      d += `${pen ? 'L' : 'M'}${px},${py}`;
      if (!pen) segments++;
      pen = true;
      lastPt = [px, py];
    });
    const g = svg('g', { class: `series series-${s.key}` });
    if (d) g.append(svg('path', { d, class: `line series-${s.key}`, 'data-series': s.key }));
    // Isolated points (a single minute with data) need a dot to be seen.
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const before = i > 0 ? s.values[i - 1] : null;
      const after = i < n - 1 ? s.values[i + 1] : null;
      if ((before === null || before === undefined) && (after === null || after === undefined)) {
        g.append(svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5, class: 'pt' }));
      }
    });
    if (lastPt && segments) g.append(svg('circle', { cx: lastPt[0], cy: lastPt[1], r: 3, class: 'pt last' }));
    root.append(g);
  }

  // Read-out: a vertical guide and a text box that follow the pointer.
  const guide = svg('line', { class: 'guide', y1: m.top, y2: m.top + h, x1: m.left, x2: m.left, visibility: 'hidden' });
  const tip = svg('g', { class: 'tip', visibility: 'hidden' });
  const tipBg = svg('rect', { rx: 4, ry: 4 });
  const tipText = svg('text', {});
  tip.append(tipBg, tipText);
  root.append(guide, tip);
  const show = (i) => {
    const xx = x(i);
    guide.setAttribute('x1', xx);
    guide.setAttribute('x2', xx);
    tipText.textContent = '';
    const lines = [hhmm(times[i]), ...series.map((s) => {
      const v = s.values[i];
      return `${s.label}: ${v === null || v === undefined ? '—' : format(v)}`;
    })];
    lines.forEach((t, k) => {
      tipText.append(svg('tspan', { x: 8, dy: k === 0 ? 14 : 15, class: k === 0 ? 'tip-head' : '' }, t));
    });
    const tw = 8 + Math.max(...lines.map((t) => t.length)) * 6.6 + 8;
    const th = lines.length * 15 + 8;
    tipBg.setAttribute('width', tw);
    tipBg.setAttribute('height', th);
    const tx = xx + 10 + tw > width ? xx - 10 - tw : xx + 10;
    tip.setAttribute('transform', `translate(${tx.toFixed(1)},${m.top})`);
    tip.setAttribute('visibility', 'visible');
    guide.setAttribute('visibility', 'visible');
  };
  const hide = () => { tip.setAttribute('visibility', 'hidden'); guide.setAttribute('visibility', 'hidden'); };
  const hit = svg('rect', { x: m.left, y: m.top, width: w, height: h, class: 'hit' });
  hit.addEventListener('pointermove', (e) => {
    const r = root.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * width;
    const f = (px - m.left) / w;
    const i = Math.max(0, Math.min(n - 1, bars ? Math.floor(f * n) : Math.round(f * (n - 1))));
    show(i);
  });
  hit.addEventListener('pointerleave', hide);
  root.append(hit);

  container.replaceChildren(root);

  // A table for screen readers (and anyone who wants the numbers).
  const table = document.createElement('table');
  const wrap = document.createElement('div');
  wrap.className = 'visually-hidden'; // (a table itself ignores the 1 px box)
  wrap.append(table);
  const cap = document.createElement('caption');
  cap.textContent = label;
  table.append(cap);
  const head = table.createTHead().insertRow();
  for (const t of ['Minute', ...series.map((s) => s.label)]) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = t;
    head.append(th);
  }
  const body = table.createTBody();
  times.forEach((t, i) => {
    if (series.every((s) => !s.values[i])) return; // only minutes with something in them
    const row = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = hhmm(t);
    row.append(th);
    for (const s of series) row.insertCell().textContent = s.values[i] === null ? '—' : format(s.values[i]);
  });
  container.append(wrap);
  return { total, max, points };
}
