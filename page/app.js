'use strict';

// panoptic's live page (docs/live-page.md). It loads the held frames (GET api/history), then
// follows one frame per delivery (GET events, Server-Sent Events); the filter box asks the server
// which series match (GET api/select). Nothing is polled. Only the charts of matching series that
// are on screen are drawn: a chart off screen is drawn when it scrolls into view.

(function livePage() {
  const MIN_HISTORY = 120; // frames kept at least (more when the server holds more)
  const MAX_CARDS = 200; // series shown at once: more would make the page slow, not more useful
  const CHART_HEIGHT = 150;
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat('en', { maximumSignificantDigits: 4 });
  // Axis ticks in compact form (207M, 1.5K): a memory size's full digits do not fit the axis.
  const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumSignificantDigits: 3 });
  const fmt = (x) => (typeof x === 'number' && Number.isFinite(x) ? number.format(x) : '–');
  const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB');

  const state = {
    frames: [], // oldest first; each with byKey: series key -> series
    limit: MIN_HISTORY,
    series: new Map(), // key -> { key, type, name, tags, lastSeen, views: Map(view -> { first, last }) }
    processes: new Map(), // process key -> { key, role, pid, lastSeen }
    selection: null, // null: every series; else { keys: Set, lines: Map(key -> Set) | null }
    filter: { token: 0, failed: false },
    cards: new Map(), // key -> card
  };
  const colors = new Map(); // view -> colour, fixed for the page's life

  // ---- frames ---------------------------------------------------------------------------------

  /** Adds a frame in time order (a frame already held is ignored). Returns whether it was new. */
  function add(frame) {
    if (!frame || typeof frame.timeStamp !== 'number' || !Array.isArray(frame.series)) return false;
    const frames = state.frames;
    let at = frames.length;
    while (at > 0 && frames[at - 1].timeStamp >= frame.timeStamp) {
      if (frames[at - 1].timeStamp === frame.timeStamp) return false;
      at -= 1;
    }
    frame.byKey = new Map(frame.series.map((s) => [s.key, s]));
    frame.reporting = new Set((frame.processes || []).map((p) => p.key));
    frames.splice(at, 0, frame);
    if (frames.length > state.limit) frames.splice(0, frames.length - state.limit);
    for (const s of frame.series) {
      let known = state.series.get(s.key);
      if (!known) {
        known = { key: s.key, type: s.type, name: s.name, tags: s.tags || {}, lastSeen: 0, views: new Map() };
        state.series.set(s.key, known);
      }
      known.lastSeen = Math.max(known.lastSeen, frame.timeStamp);
      for (const view of Object.keys(s.values)) {
        const seen = known.views.get(view);
        if (!seen) known.views.set(view, { first: frame.timeStamp, last: frame.timeStamp });
        else {
          seen.first = Math.min(seen.first, frame.timeStamp);
          seen.last = Math.max(seen.last, frame.timeStamp);
        }
      }
    }
    for (const p of frame.processes || []) {
      const known = state.processes.get(p.key);
      if (!known || known.lastSeen <= frame.timeStamp) state.processes.set(p.key, { ...p, lastSeen: frame.timeStamp });
    }
    return true;
  }

  /** Forgets series, lines and processes that no held frame has any more. */
  function prune() {
    const oldest = state.frames.length ? state.frames[0].timeStamp : Infinity;
    for (const [key, s] of state.series) {
      if (s.lastSeen < oldest) state.series.delete(key);
      else for (const [view, seen] of s.views) if (seen.last < oldest) s.views.delete(view);
    }
    for (const [key, p] of state.processes) if (p.lastSeen < oldest) state.processes.delete(key);
  }

  const latest = () => state.frames[state.frames.length - 1];

  // ---- what a series shows ----------------------------------------------------------------------

  function timeUnit(scaleFactor) {
    return { 1: 'ms', 1000: 's', 60000: 'min', 3600000: 'h' }[scaleFactor] || `${scaleFactor} ms`;
  }

  /** The unit of a series' numbers, from its type and the instance's scaleFactor. */
  function unitOf(type, scaleFactor) {
    const time = timeUnit(scaleFactor);
    switch (type) {
      case 'inc': return time.includes(' ') ? `per ${time}` : `/${time}`;
      case 'meter': return '/s (1-min rate)';
      case 'rate': return '/s';
      case 'timedSample':
      case 'histogram': return time; // as an hrtime difference is recorded (docs/api.md, "Logger methods")
      default: return '';
    }
  }

  /** `p999` -> 99.9, `p50` -> 50, `p0_5` -> 0.5 (the core's percentile keys). */
  function percentileOf(key) {
    const m = /^p(\d+)(?:_(\d+))?$/.exec(key);
    if (!m) return null;
    if (m[2] !== undefined) return Number(`${m[1]}.${m[2]}`);
    return m[1].length > 2 ? Number(`${m[1].slice(0, 2)}.${m[1].slice(2)}`) : Number(m[1]);
  }

  // Series whose values count events: a frame without one (no record in that interval) is a
  // count of 0, not a lack of data. The others keep a gap there: a sample, a gauge reading or a
  // rate that was not taken has no value, and 0 would be invented.
  const COUNTED = new Set(['inc']);

  /**
   * A line's value in a frame, or null (a gap). A counted series that the frame lacks for the
   * line is 0 there, from the line's first frame on, when its process reported in that frame
   * (the cluster's line: always); a process that did not report (gone, or late) leaves a gap.
   */
  function valueAt(series, frame, view, field) {
    const s = frame.byKey.get(series.key);
    const v = s && s.values[view];
    if (v) return typeof v[field] === 'number' ? v[field] : null;
    const seen = series.views.get(view);
    const zero = COUNTED.has(series.type) && seen !== undefined && frame.timeStamp >= seen.first &&
      (view === 'cluster' || frame.reporting.has(view));
    return zero ? 0 : null;
  }

  /** A series' latest value (the cluster's, else any process's) in the held frames, or null. */
  function lastValue(key) {
    for (let i = state.frames.length - 1; i >= 0; i--) {
      const s = state.frames[i].byKey.get(key);
      if (s) return s.values.cluster || Object.values(s.values)[0] || null;
    }
    return null;
  }

  /**
   * The value fields a series draws: `mid`, the line of each process (and the cluster's); for the
   * cluster also `band` (low, high), a shaded range with its own lines, and `extra` lines in it.
   */
  function statsOf(series) {
    switch (series.type) {
      case 'sample':
      case 'timedSample':
        return { mid: 'average', band: ['min', 'max'], extra: [] };
      case 'histogram': {
        const value = lastValue(series.key);
        const keys = Object.keys(value || {}).filter((k) => percentileOf(k) !== null)
          .sort((a, b) => percentileOf(a) - percentileOf(b));
        const wanted = ['p50', 'p90', 'p99'].filter((k) => keys.includes(k));
        const chosen = wanted.length >= 2 ? wanted : [keys[0], keys[Math.floor(keys.length / 2)], keys[keys.length - 1]];
        const unique = [...new Set(chosen.filter(Boolean))];
        if (unique.length === 0) return { mid: 'mean', band: null, extra: [] };
        // The lowest percentile is each process's line; the cluster's band reaches the highest.
        const band = unique.length > 1 ? [unique[0], unique[unique.length - 1]] : null;
        return { mid: unique[0], band, extra: unique.slice(1, -1) };
      }
      case 'meter':
        return { mid: 'm1', band: null, extra: [] };
      default:
        return { mid: 'val', band: null, extra: [] };
    }
  }

  /** Whether a series holds text (a `set` of strings, objects...): its last value is shown. */
  function isText(series) {
    const value = series.type === 'set' && lastValue(series.key);
    return Boolean(value) && value.val !== undefined && value.val !== null && typeof value.val !== 'number';
  }

  function viewOrder(a, b) {
    const rank = (v) => (v === 'cluster' ? 0 : v === 'master' ? 1 : /^\d+$/.test(v) ? 2 : 3);
    return rank(a) - rank(b) || (rank(a) === 2 ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0);
  }

  function viewLabel(view) {
    if (view === 'cluster' || view === 'master') return view;
    return /^\d+$/.test(view) ? `worker ${view}` : `thread ${view}`;
  }

  function colorOf(view) {
    if (view === 'cluster') return '#111';
    if (view === 'master') return '#999';
    if (!colors.has(view)) colors.set(view, PALETTE[colors.size % PALETTE.length]);
    return colors.get(view);
  }

  /** The lines a series shows: its views (cluster, processes) that the filter lets through. */
  function viewsOf(series) {
    const lines = state.selection && state.selection.lines && state.selection.lines.get(series.key);
    return [...series.views.keys()].filter((v) => !lines || lines.has(v)).sort(viewOrder);
  }

  // ---- cards and charts -----------------------------------------------------------------------

  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const card = entry.target.card;
      card.visible = entry.isIntersecting;
      if (card.visible && card.dirty) draw(card);
    }
  }, { rootMargin: '300px 0px' });

  function makeCard(series) {
    const el = document.createElement('article');
    el.className = 'card';
    el.dataset.key = series.key;
    const head = document.createElement('header');
    const title = document.createElement('h2');
    title.textContent = series.name || '(root)';
    for (const [k, v] of Object.entries(series.tags)) {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = `${k}=${v}`;
      title.append(' ', tag);
    }
    const type = document.createElement('span');
    type.className = 'type';
    type.textContent = series.type;
    const now = document.createElement('span');
    now.className = 'now';
    head.append(title, type, now);
    const body = document.createElement('div');
    body.className = 'plot';
    el.append(head, body);
    el.card = { key: series.key, el, now, body, chart: null, signature: '', visible: false, dirty: true };
    observer.observe(el);
    return el.card;
  }

  function dropCard(card) {
    observer.unobserve(card.el);
    if (card.chart) card.chart.destroy();
    card.el.remove();
    state.cards.delete(card.key);
  }

  /** uPlot's series list and the value reader of each line. */
  function lines(series, views, stats) {
    const out = [];
    for (const view of views) {
      const color = colorOf(view);
      const label = viewLabel(view);
      // The cluster shows the whole band; each process shows its middle line.
      if (view === 'cluster' && stats.band) {
        out.push({ view, field: stats.band[1], spec: { label: `${label} ${stats.band[1]}`, stroke: color, width: 1, dash: [4, 3] } });
        for (const field of stats.extra) out.push({ view, field, spec: { label: `${label} ${field}`, stroke: color, width: 1, dash: [1, 2] } });
        out.push({ view, field: stats.mid, spec: { label: `${label} ${stats.mid}`, stroke: color, width: 2 } });
        if (stats.band[0] !== stats.mid) out.push({ view, field: stats.band[0], spec: { label: `${label} ${stats.band[0]}`, stroke: color, width: 1, dash: [4, 3] } });
      } else {
        const name = stats.band ? `${label} ${stats.mid}` : label;
        out.push({ view, field: stats.mid, spec: { label: name, stroke: color, width: view === 'cluster' ? 2 : 1.25 } });
      }
    }
    return out;
  }

  function dataOf(series, drawn) {
    const frames = state.frames;
    const data = [frames.map((f) => f.timeStamp / 1000)];
    for (const line of drawn) data.push(frames.map((f) => valueAt(series, f, line.view, line.field)));
    return data;
  }

  function width(card) {
    return Math.max(200, card.body.clientWidth);
  }

  /** Draws a card's chart (or its text) from the held frames. */
  function draw(card) {
    card.dirty = false;
    const series = state.series.get(card.key);
    const frame = latest();
    if (!series || !frame) return;
    const unit = unitOf(series.type, frame.scaleFactor);
    const current = frame.byKey.get(series.key);
    if (isText(series)) {
      if (card.chart) {
        card.chart.destroy();
        card.chart = null;
        card.signature = '';
      }
      card.body.textContent = '';
      const code = document.createElement('code');
      code.textContent = JSON.stringify(lastValue(series.key).val);
      card.body.append(code);
      card.now.textContent = '';
      card.el.dataset.drawn = frame.timeStamp;
      return;
    }
    const stats = statsOf(series);
    const views = viewsOf(series);
    const drawn = lines(series, views, stats);
    const data = dataOf(series, drawn);
    const signature = drawn.map((l) => `${l.view}/${l.field}`).join(',') + `|${unit}`;
    if (!card.chart || card.signature !== signature) {
      if (card.chart) card.chart.destroy();
      card.body.textContent = '';
      const bandIndex = (field) => 1 + drawn.findIndex((l) => l.view === 'cluster' && l.field === field);
      const bands = stats.band && views.includes('cluster')
        ? [{ series: [bandIndex(stats.band[1]), bandIndex(stats.band[0])], fill: 'rgba(17,17,17,0.08)' }]
        : [];
      card.chart = new uPlot({
        width: width(card),
        height: CHART_HEIGHT,
        series: [{}, ...drawn.map((l) => ({ ...l.spec, spanGaps: false, value: (u, v) => fmt(v) }))],
        bands,
        scales: { x: { time: true } },
        axes: [{}, { size: 60, label: unit || undefined, labelSize: 14, values: (u, splits) => splits.map((x) => compact.format(x)) }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      }, data, card.body);
      card.signature = signature;
    } else {
      card.chart.setData(data);
    }
    // The cluster's value (or the master's, for a series only the master has), named by its
    // field when the chart draws several or a histogram's percentile (`p50 4.2 ms`, `average
    // 1.5 ms`).
    const view = series.views.has('cluster') ? 'cluster' : 'master';
    const now = valueAt(series, frame, view, stats.mid);
    const shown = (current && current.values[view]) || now !== null;
    const field = stats.band || series.type === 'histogram' ? `${stats.mid} ` : '';
    card.now.textContent = shown ? `${field}${fmt(now)}${unit ? ` ${unit}` : ''}` : 'no data';
    card.el.dataset.drawn = frame.timeStamp;
  }

  /** Which series are shown: every known one, or those the filter selected. */
  function shownKeys() {
    const keys = [];
    for (const key of state.series.keys()) {
      if (!state.selection || state.selection.keys.has(key)) keys.push(key);
    }
    return keys;
  }

  function renderCards() {
    const keys = shownKeys();
    const shown = keys.slice(0, MAX_CARDS);
    const wanted = new Set(shown);
    for (const card of [...state.cards.values()]) if (!wanted.has(card.key)) dropCard(card);
    const container = $('charts');
    let previous = null;
    for (const key of shown) {
      let card = state.cards.get(key);
      if (!card) {
        card = makeCard(state.series.get(key));
        state.cards.set(key, card);
      }
      // Keep the DOM in the frames' series order (moves only what is out of place).
      const next = previous ? previous.nextSibling : container.firstChild;
      if (next !== card.el) container.insertBefore(card.el, next);
      previous = card.el;
      card.dirty = true;
      if (card.visible) draw(card);
    }
    $('shown').textContent = state.selection
      ? `${keys.length} of ${state.series.size} series match`
      : `${state.series.size} series`;
    const capped = $('capped');
    capped.hidden = keys.length <= MAX_CARDS;
    capped.textContent = `Showing the first ${MAX_CARDS} of ${keys.length} series: narrow the filter to see the others.`;
  }

  // ---- header, processes ------------------------------------------------------------------------

  // The runtime metrics (docs/runtime.md) shown beside each process in the list, from the latest
  // frame: [column, series key (without the time unit of a histogram's id), what is shown].
  const bytes = new Intl.NumberFormat('en', { notation: 'compact', maximumSignificantDigits: 3 });
  const RUNTIME = [
    ['CPU', 'inc process.cpu_seconds_total', (v, f) => `${fmt(v.val * 1000 / f.scaleFactor)} cores`],
    ['memory', 'gauge process.resident_memory_bytes', (v) => `${bytes.format(v.val)}B`],
    ['heap used', 'gauge nodejs.heap_size_used_bytes', (v) => `${bytes.format(v.val)}B`],
    ['loop delay p99', 'histogram nodejs.eventloop_lag', (v, f) => `${fmt(v.p99)} ${timeUnit(f.scaleFactor)}`],
    ['loop busy', 'inc nodejs.eventloop_active_seconds_total', (v, f, idle) => (idle ? `${fmt(100 * v.val / (v.val + idle.val))} %` : null)],
  ];
  const IDLE = 'inc nodejs.eventloop_idle_seconds_total';

  /** The runtime cells of process `key` in `frame` (null where it has no value), or null without runtime metrics. */
  function runtimeCells(frame, key) {
    // The delay's id ends with the time unit (`_seconds`, `_milliseconds`, or nothing).
    if (frame.lag === undefined) {
      frame.lag = frame.series.find((s) => s.key === 'histogram nodejs.eventloop_lag' || s.key.startsWith('histogram nodejs.eventloop_lag_')) || null;
    }
    const lag = frame.lag;
    if (!lag) return null;
    const idle = frame.byKey.get(IDLE);
    return RUNTIME.map(([, seriesKey, show]) => {
      const s = seriesKey === 'histogram nodejs.eventloop_lag' ? lag : frame.byKey.get(seriesKey);
      const v = s && s.values[key];
      return v ? show(v, frame, idle && idle.values[key]) : null;
    });
  }

  function renderHeader(frame) {
    $('name').textContent = frame.name || '';
    const seconds = frame.interval / 1000;
    $('every').textContent = `one interval every ${seconds >= 1 ? `${fmt(seconds)} s` : `${fmt(frame.interval)} ms`}`;
    $('updated').textContent = `last interval ended ${clock(frame.timeStamp)}`;
    document.title = `panoptic${frame.name ? ` ${frame.name}` : ''}`;
    document.body.dataset.timeStamp = frame.timeStamp;
    document.body.dataset.frames = state.frames.length;
  }

  function renderProcesses(frame) {
    const order = (a, b) => viewOrder(a.key, b.key);
    const rows = [...state.processes.values()].sort(order).map((p) => {
      const tr = document.createElement('tr');
      const alive = p.lastSeen === frame.timeStamp;
      tr.className = alive ? 'alive' : 'gone';
      tr.dataset.process = p.key;
      const cells = [viewLabel(p.key), p.role, String(p.pid), alive ? 'reporting' : `gone since ${clock(p.lastSeen)}`];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      const runtime = alive ? runtimeCells(frame, p.key) : null;
      if (runtime) {
        runtime.forEach((text, i) => {
          const td = document.createElement('td');
          td.textContent = text === null ? '–' : text;
          td.dataset.runtime = RUNTIME[i][0];
          tr.append(td);
        });
      }
      const swatch = document.createElement('i');
      swatch.style.background = colorOf(p.key);
      tr.firstChild.prepend(swatch);
      return tr;
    });
    $('process-rows').replaceChildren(...rows);
    const head = [...['process', 'role', 'pid', 'state'], ...(runtimeCells(frame, 'cluster') ? RUNTIME.map(([column]) => column) : [])];
    $('process-head').replaceChildren(...head.map((text) => {
      const th = document.createElement('th');
      th.textContent = text;
      return th;
    }));

    const total = (field) => state.frames.reduce((sum, f) => sum + ((f.meta && f.meta[field]) || 0), 0);
    const meta = frame.meta || {};
    const items = [['workers alive', fmt(meta.workers), null]];
    const counts = [['late', 'late'], ['decode errors', 'decodeErrors'], ['mismatched', 'mismatched'], ['unmatched', 'unmatched'], ['refused', 'refused'], ['dropped', 'dropped'], ['invalid', 'invalid'], ['overflowed', 'overflowed'], ['errors', 'errors']];
    for (const [label, field] of counts) {
      items.push([label, fmt(meta[field]), `${fmt(total(field))} in the last ${state.frames.length} intervals`]);
    }
    const meta$ = $('meta');
    meta$.textContent = '';
    for (const [label, value, note] of items) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.meta = label;
      if (note) {
        const small = document.createElement('small');
        small.textContent = ` (${note})`;
        dd.append(small);
      }
      meta$.append(dt, dd);
    }
  }

  let scheduled = false;
  function render() {
    scheduled = false;
    const frame = latest();
    if (!frame) return;
    prune();
    renderHeader(frame);
    renderProcesses(frame);
    renderCards();
  }

  function schedule() {
    if (!scheduled) {
      scheduled = true;
      setTimeout(render, 0);
    }
  }

  // ---- the filter box ---------------------------------------------------------------------------

  function showFilterError(text, message, position) {
    const box = $('filter-error');
    box.hidden = false;
    const at = Number.isInteger(position) && position >= 0 ? position : null;
    // The message says where; the caret shows it.
    box.textContent = at === null ? message : `${message}\n${text}\n${' '.repeat(Math.min(at, text.length))}^`;
    $('filter').classList.add('bad');
  }

  function clearFilterError() {
    $('filter-error').hidden = true;
    $('filter').classList.remove('bad');
  }

  /** Asks the server which series the filter in the box selects, then shows those. */
  async function applyFilter() {
    // Sent as typed: the error's position counts from the box's first character.
    const text = $('filter').value;
    const token = ++state.filter.token;
    if (text.trim() === '') {
      state.selection = null;
      state.filter.failed = false;
      clearFilterError();
      schedule();
      return;
    }
    let response;
    let body = null;
    try {
      response = await fetch(`api/select?filter=${encodeURIComponent(text)}`);
      body = await response.json().catch(() => null);
    } catch (error) {
      if (token === state.filter.token) showFilterError(text, `cannot reach the server: ${error.message}`);
      return;
    }
    if (token !== state.filter.token) return; // a newer filter was typed meanwhile
    if (!response.ok || !body || !Array.isArray(body.keys)) {
      state.filter.failed = true;
      const message = body && typeof body.error === 'string' ? body.error : `the server answered ${response.status}`;
      showFilterError(text, message, body && body.position);
      return;
    }
    state.filter.failed = false;
    clearFilterError();
    const lines = body.lines && typeof body.lines === 'object'
      ? new Map(Object.entries(body.lines).map(([key, views]) => [key, new Set(views)]))
      : null;
    state.selection = { keys: new Set(body.keys), lines };
    schedule();
  }

  let typing = null;
  $('filter').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(applyFilter, 400);
  });
  $('filter').addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    clearTimeout(typing);
    applyFilter();
  });

  /** A frame that brings a series or a process the selection has not seen: ask again. */
  function refilterFor(frame) {
    if (!state.selection || state.filter.failed) return;
    const sel = state.selection;
    const fresh = frame.series.some((s) => !state.series.has(s.key) || (sel.lines && Object.keys(s.values)
      .some((v) => !state.series.get(s.key).views.has(v))));
    if (fresh) applyFilter();
  }

  // ---- the connection ---------------------------------------------------------------------------

  function setStatus(text) {
    const status = $('status');
    status.textContent = text;
    status.className = `status ${text}`;
  }

  let pending = []; // frames that came before the history (null once it is in)

  function receive(frame) {
    refilterFor(frame);
    if (add(frame)) schedule();
  }

  async function loadHistory() {
    try {
      const response = await fetch('api/history');
      const frames = response.ok ? await response.json() : [];
      if (Array.isArray(frames)) {
        state.limit = Math.max(MIN_HISTORY, frames.length);
        frames.forEach(add);
      }
    } catch (error) {
      setStatus('offline');
    }
    if (pending) {
      pending.forEach(add);
      pending = null;
    }
    schedule();
  }

  // The stream opens first: a frame delivered while the history loads is not missed.
  const events = new EventSource('events');
  let broken = false;
  events.addEventListener('open', () => {
    setStatus('live');
    // After a break, the frames delivered meanwhile are in the server's history.
    if (broken) loadHistory();
    broken = false;
  });
  events.addEventListener('error', () => {
    broken = true;
    setStatus(events.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  });
  events.addEventListener('message', (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (pending) pending.push(frame);
    else receive(frame);
  });

  let resizing = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const card of state.cards.values()) {
        if (card.chart) card.chart.setSize({ width: width(card), height: CHART_HEIGHT });
      }
    }, 150);
  });

  loadHistory();
})();
