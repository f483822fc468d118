// The wasp dashboard: signs in with a token (sent once, in a POST body; the
// session is an HttpOnly cookie this script never sees), then renders each
// `view` server-sent event from /api/events. Everything a user supplied
// (task ids, func names, messages) goes through `esc` or `textContent`.
// Nothing here sets inline styles in HTML strings or runs inline scripts,
// so a strict Content-Security-Policy (self only) does not break the page.
"use strict";

const $ = (id) => document.getElementById(id);

/**
 * For tests: the latest view, how many view events were rendered, what the
 * last and the slowest render took (ms), and the last event's size.
 */
window.wasp = { view: null, updates: 0, renderMs: 0, renderMsMax: 0, viewBytes: 0 };

/** Rows of the engines table at most; the rest are counted. */
const MAX_ENGINES = 1000;
/** Narrowest window of the task stream, in microseconds. */
const MIN_WINDOW_US = 2e6;
/** Tallest the task stream's rows grow together, in pixels (each row is 1px at least). */
const MAX_LANES_PX = 600;

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** `value` as text safe inside HTML or SVG, in content or a quoted attribute. */
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** A wall-clock time in microseconds as local `HH:MM:SS`. */
function clock(us) {
  if (us == null) return "";
  const d = new Date(us / 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A wall-clock time in microseconds as local `YYYY-MM-DD HH:MM:SS.mmm`. */
function stamp(us) {
  if (us == null) return "—";
  const d = new Date(us / 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${clock(us)}.${pad(d.getMilliseconds(), 3)}`;
}

/** A duration in microseconds, in the unit that reads best. */
function duration(us) {
  if (us < 1e3) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1e3).toFixed(1)} ms`;
  if (us < 600e6) return `${(us / 1e6).toFixed(2)} s`;
  return `${(us / 60e6).toFixed(1)} min`;
}

/** Seconds, with a decimal while they are few. */
function seconds(s) {
  return s < 10 ? s.toFixed(1) : String(Math.round(s));
}

const fixed = (x, digits) => (typeof x === "number" ? x.toFixed(digits) : "");

/** A size in bytes, in binary units (`12.3 MiB`); a dash for none. */
function bytes(n) {
  if (typeof n !== "number" || n <= 0) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/**
 * A func's colour, kept for the page's life. The n-th func seen gets the
 * hue n golden angles on: any few funcs are far apart on the wheel, where
 * hues from a hash of their names could land side by side.
 */
const colours = new Map();
function colour(func) {
  let c = colours.get(func);
  if (c === undefined) {
    const n = colours.size;
    const hue = (205 + n * 137.508) % 360;
    // Lightness steps too, so that the funcs past the first few still differ.
    c = `hsl(${hue.toFixed(0)}, 65%, ${46 + (n % 3) * 6}%)`;
    colours.set(func, c);
  }
  return c;
}

/** A button that opens a task's record (through the one delegated listener). */
function taskLink(id) {
  return `<button type="button" class="task" data-task="${esc(id)}">${esc(id)}</button>`;
}

/** The text a refusing response gives, or its status. */
async function reason(response) {
  const text = (await response.text().catch(() => "")).trim();
  return text || `${response.status} ${response.statusText}`.trim();
}

// ---- Rendering ------------------------------------------------------------

/** An engine row's cells: each its class and its inner HTML. */
function engineCells(e, now) {
  const cur = e.current;
  const current = cur
    ? `${taskLink(cur.task)} <span class="func">${esc(cur.func)}</span>` +
      ` <span class="muted">${esc(duration(Math.max(0, now - cur.since_us)))}</span>`
    : "";
  const beat = e.last_heartbeat_us
    ? `${Math.max(0, Math.round((now - e.last_heartbeat_us) / 1e6))}s ago`
    : "—";
  return [
    ["num", esc(e.id)],
    ["", esc(e.host)],
    ["", `<span class="state state-${esc(e.state)}">${esc(e.state)}</span>`],
    ["", current],
    ["num", esc(e.done)],
    [e.failed ? "num bad" : "num", esc(e.failed)],
    ["num", esc(fixed(e.busy_s, 2))],
    ["num", esc(bytes(e.memory_bytes))],
    ["num", esc(beat)],
  ];
}

/**
 * The engines table as last drawn: its engines' ids, and each row's cells
 * as `engineCells` gave them. While the engines stay the same, an update
 * rewrites only the cells that changed: a thousand rows rebuilt twice a
 * second would cost the page most of its time in layout.
 */
let drawnEngines = { ids: "", cells: [] };

function renderEngines(view) {
  const engines = view.engines || [];
  const now = view.now_us;
  let busy = 0;
  for (const e of engines) if (e.state === "busy") busy++;
  const shown = engines.slice(0, MAX_ENGINES);
  const cells = shown.map((e) => engineCells(e, now));
  const ids = shown.map((e) => `${e.id}:${e.name}`).join(",");
  const body = $("engines").tBodies[0];
  if (ids !== drawnEngines.ids || body.rows.length !== shown.length) {
    body.innerHTML = shown.map((e, i) =>
      `<tr class="engine" data-engine="${esc(e.id)}" title="${esc(e.name)}">` +
      cells[i].map(([cls, html]) => `<td${cls ? ` class="${cls}"` : ""}>${html}</td>`).join("") +
      "</tr>").join("");
  } else {
    for (let i = 0; i < cells.length; i++) {
      const row = body.rows[i].cells;
      const before = drawnEngines.cells[i];
      cells[i].forEach(([cls, html], j) => {
        if (before[j][1] !== html) row[j].innerHTML = html;
        if (before[j][0] !== cls) row[j].className = cls;
      });
    }
  }
  drawnEngines = { ids, cells };
  $("engines-count").textContent = `${engines.length} (${busy} busy)`;
  const more = $("engines-more");
  const hidden = engines.length - MAX_ENGINES;
  more.hidden = hidden <= 0;
  more.textContent = hidden > 0
    ? `and ${hidden} more (engines ${engines[MAX_ENGINES].id} to ${engines[engines.length - 1].id} not shown)`
    : "";
  return busy;
}

function renderQueue(view) {
  let html = "";
  for (const t of view.queue || []) {
    html += `<tr class="tenant" data-tenant="${esc(t.tenant)}">` +
      `<td>${esc(t.tenant)}</td>` +
      `<td class="num">${esc(t.queued)}</td>` +
      `<td class="num">${esc(t.running)}</td>` +
      `<td class="num">${esc(t.succeeded)}</td>` +
      `<td class="num${t.failed ? " bad" : ""}">${esc(t.failed)}</td>` +
      `<td class="num">${esc(t.weight)}</td>` +
      `<td class="num">${esc(fixed(t.usage_s, 2))}</td></tr>`;
  }
  $("queue").tBodies[0].innerHTML = html;
}

function renderMaps(view) {
  const maps = (view.maps || []).slice().sort((a, b) => b.submitted_us - a.submitted_us);
  let html = "";
  for (const m of maps) {
    const total = m.total || 0;
    const finished = m.finished_us != null;
    const ok = total ? (100 * m.done) / total : 0;
    const bad = total ? (100 * m.failed) / total : 0;
    const when = finished
      ? `done in ${seconds((m.finished_us - m.submitted_us) / 1e6)} s`
      : m.eta_s != null ? `${seconds(m.eta_s)} s left` : "starting";
    html += `<div class="map${finished ? " finished" : ""}" data-first="${esc(m.first)}" ` +
      `data-done="${esc(m.done)}" data-total="${esc(total)}" data-finished="${finished}">` +
      `<div class="map-head">${taskLink(m.first)} <span class="func">${esc(m.func)}</span>` +
      `<span class="map-count">${esc(m.done)}/${esc(total)}` +
      (m.failed ? ` <span class="bad">(${esc(m.failed)} failed)</span>` : "") + `</span></div>` +
      `<div class="progress" data-ok="${ok.toFixed(3)}" data-bad="${bad.toFixed(3)}">` +
      `<div class="progress-ok"></div><div class="progress-failed"></div></div>` +
      `<div class="map-foot"><span>${esc(fixed(m.rate, 1))} tasks/s</span>` +
      `<span>${esc(when)}</span></div></div>`;
  }
  const box = $("maps");
  box.innerHTML = html || `<p class="empty">no maps yet</p>`;
  // Widths through the CSSOM, which a style-src policy allows.
  for (const bar of box.querySelectorAll(".progress")) {
    bar.children[0].style.width = `${bar.dataset.ok}%`;
    bar.children[1].style.width = `${bar.dataset.bad}%`;
  }
  $("maps-count").textContent = maps.length ? String(maps.length) : "";
}

/** A step between time ticks that gives about `count` ticks over `span` µs. */
function tickStep(span, count) {
  const steps = [1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 10e6, 15e6, 30e6, 60e6, 120e6, 300e6, 600e6, 1800e6, 3600e6];
  return steps.find((s) => span / s <= count) || steps[steps.length - 1];
}

/**
 * Each engine's runs packed into rows of its lane (first row free wins),
 * so that runs at once on one engine do not hide each other.
 */
function pack(runs, within) {
  const byEngine = new Map();
  runs.forEach((r, i) => {
    const start = within(r.started_us || r.completed_us);
    const item = { i, start, end: Math.max(start, within(r.completed_us)) };
    const list = byEngine.get(r.engine);
    if (list) list.push(item);
    else byEngine.set(r.engine, [item]);
  });
  const lanes = [];
  const placed = new Array(runs.length);
  let rows = 0;
  for (const engine of [...byEngine.keys()].sort((a, b) => a - b)) {
    const ends = [];
    for (const item of byEngine.get(engine).sort((a, b) => a.start - b.start)) {
      let row = ends.findIndex((end) => end <= item.start);
      if (row < 0) row = ends.push(0) - 1;
      ends[row] = item.end;
      placed[item.i] = { row: rows + row, start: item.start, end: item.end };
    }
    lanes.push({ engine, top: rows, rows: ends.length });
    rows += ends.length;
  }
  return { lanes, placed, rows };
}

/**
 * What the task stream last drew: its width and runs. Runs are only ever
 * appended (the oldest dropping off), so the first, the last and the count
 * say whether they changed; an idle cluster's updates then draw nothing.
 */
let drawnStream = "";

/** The task stream's width now (a layout: measure before writing the page). */
function streamWidth() {
  return Math.max(300, Math.round($("stream").getBoundingClientRect().width) || 1000);
}

function renderStream(view, width = streamWidth()) {
  const runs = view.runs || [];
  const svg = $("stream");
  const drawn = runs.length
    ? `${width}|${runs.length}|${runs[0].task}|${runs[runs.length - 1].task}`
    : `${width}|empty`;
  if (drawn === drawnStream) return;
  drawnStream = drawn;
  const gutter = 44;
  if (!runs.length) {
    svg.setAttribute("height", "40");
    svg.innerHTML = `<text class="empty" x="${width / 2}" y="24" text-anchor="middle">no finished tasks yet</text>`;
    $("legend").innerHTML = "";
    $("stream-count").textContent = "";
    return;
  }
  // The window: unset times (0) do not stretch it; bars are kept inside.
  let t0 = Infinity;
  let t1 = 0;
  for (const r of runs) {
    if (r.started_us > 0 && r.started_us < t0) t0 = r.started_us;
    if (r.completed_us > t1) t1 = r.completed_us;
  }
  t1 = t1 || view.now_us;
  t0 = Math.min(t0, t1 - MIN_WINDOW_US);
  const within = (t) => Math.min(t1, Math.max(t0, t || t1));
  const scale = (width - gutter - 4) / (t1 - t0);
  const { lanes, placed, rows } = pack(runs, within);
  const rowH = Math.max(1, Math.min(16, MAX_LANES_PX / rows));
  const bottom = rows * rowH;
  const height = Math.ceil(bottom) + 22;
  svg.classList.toggle("thin", rowH < 4);
  svg.setAttribute("height", String(height));
  $("stream-count").textContent = `${runs.length} runs on ${lanes.length} engines`;
  const parts = [];
  // Every other lane shaded; labels where there is room for them.
  let labelled = -Infinity;
  lanes.forEach((lane, i) => {
    const y = lane.top * rowH;
    const h = lane.rows * rowH;
    if (i % 2 === 1 && h >= 3) {
      parts.push(`<rect class="lane" x="${gutter}" y="${y}" width="${width - gutter}" height="${h}"/>`);
    }
    const mid = y + Math.max(h, 11) / 2;
    if (mid - labelled >= 11) {
      labelled = mid;
      parts.push(`<text class="lane-label" x="${gutter - 6}" y="${mid}" ` +
        `text-anchor="end" dominant-baseline="central">${esc(lane.engine)}</text>`);
    }
  });
  const step = tickStep(t1 - t0, 8);
  for (let k = 0; k <= 60 && t1 - k * step >= t0; k++) {
    const x = (gutter + (t1 - k * step - t0) * scale).toFixed(1);
    const label = k === 0 ? "0" : `−${seconds((k * step) / 1e6)} s`;
    parts.push(`<line class="tick" x1="${x}" x2="${x}" y1="0" y2="${bottom + 3}"/>` +
      `<text class="tick-label" x="${x}" y="${bottom + 14}" text-anchor="${k === 0 ? "end" : "middle"}">${label}</text>`);
  }
  const gap = rowH >= 5 ? 1 : 0;
  const counts = new Map();
  runs.forEach((r, i) => {
    const func = String(r.func);
    counts.set(func, (counts.get(func) || 0) + 1);
    const { row, start, end } = placed[i];
    const x = gutter + (start - t0) * scale;
    const w = Math.max(1, (end - start) * scale);
    parts.push(`<rect class="bar${r.ok ? "" : " failed"}" data-task="${esc(r.task)}" ` +
      `data-engine="${esc(r.engine)}" data-func="${esc(func)}" x="${x.toFixed(1)}" y="${(row * rowH).toFixed(2)}" ` +
      `width="${w.toFixed(1)}" height="${Math.max(1, rowH - gap).toFixed(2)}" fill="${colour(func)}">` +
      `<title>${esc(r.task)} ${esc(func)} on engine ${esc(r.engine)}: ` +
      `${esc(duration(r.completed_us - r.started_us))}, peak memory ${esc(bytes(r.peak_memory_bytes))}` +
      `${r.ok ? "" : " (failed)"}</title></rect>`);
  });
  svg.innerHTML = parts.join("");
  let legend = "";
  for (const [func, n] of [...counts].sort((a, b) => a[0].localeCompare(b[0]))) {
    legend += `<li data-func="${esc(func)}"><svg class="swatch" width="10" height="10">` +
      `<rect width="10" height="10" rx="2" fill="${colour(func)}"/></svg>${esc(func)} ` +
      `<span class="muted">${n}</span></li>`;
  }
  $("legend").innerHTML = legend;
}

function renderFailures(view) {
  const failures = view.failures || [];
  let html = "";
  for (let i = failures.length - 1; i >= 0; i--) {
    const f = failures[i];
    html += `<tr class="failure" data-task="${esc(f.task)}">` +
      `<td class="time" title="${esc(stamp(f.at_us))}">${esc(clock(f.at_us))}</td>` +
      `<td>${taskLink(f.task)}</td>` +
      `<td class="num">${esc(f.engine ?? "—")}</td>` +
      `<td class="func">${esc(f.func)}</td>` +
      `<td><span class="kind">${esc(f.kind)}</span></td>` +
      `<td class="message" title="${esc(f.message)}"><div>${esc(f.message)}</div></td></tr>`;
  }
  $("failures").tBodies[0].innerHTML = html;
  $("failures-count").textContent = failures.length ? String(failures.length) : "none";
}

function showViewer(tenant, admin) {
  $("viewer").textContent = tenant ? `${tenant}${admin ? " (admin)" : ""}` : "";
}

/** Renders one whole view. */
function render(view) {
  const began = performance.now();
  // Measured first, while the page's layout is still that of the last
  // frame: measured after the tables are written, it would force their
  // layout here, in the middle of the script.
  const width = streamWidth();
  showViewer(view.tenant, view.admin);
  const busy = renderEngines(view);
  renderQueue(view);
  renderMaps(view);
  renderStream(view, width);
  renderFailures(view);
  let queued = 0;
  let running = 0;
  for (const t of view.queue || []) {
    queued += t.queued || 0;
    running += t.running || 0;
  }
  $("summary").textContent =
    `${(view.engines || []).length} engines, ${busy} busy · ${queued} queued · ${running} running`;
  const wasp = window.wasp;
  wasp.view = view;
  wasp.updates += 1;
  wasp.renderMs = performance.now() - began;
  wasp.renderMsMax = Math.max(wasp.renderMsMax, wasp.renderMs);
}

// ---- Session and the event stream ------------------------------------------

let source = null;
/** Counts sign-ins and sign-outs: an answer asked for before one is stale. */
let epoch = 0;

function setLive(state) {
  const live = $("live");
  live.dataset.state = state;
  live.textContent = state;
}

function closeSource() {
  if (source) {
    source.close();
    source = null;
  }
}

/** Hides the dashboard and forgets what it showed (the next viewer may be another tenant). */
function clearDashboard() {
  $("dashboard").hidden = true;
  closeRecord();
  for (const id of ["engines", "queue", "failures"]) $(id).tBodies[0].innerHTML = "";
  drawnEngines = { ids: "", cells: [] };
  drawnStream = "";
  for (const id of ["maps", "stream", "legend", "summary", "viewer"]) $(id).innerHTML = "";
}

function showLogin(why) {
  closeSource();
  setLive("closed");
  clearDashboard();
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why || "";
  $("token").focus();
}

function showDashboard() {
  $("login").hidden = true;
  $("login-error").textContent = "";
  $("dashboard").hidden = false;
  $("logout").hidden = false;
}

/** Opens the event stream; each `view` event is rendered once. */
function connect() {
  closeSource();
  setLive("connecting");
  const es = new EventSource("/api/events");
  source = es;
  es.addEventListener("view", (message) => {
    let view;
    try {
      view = JSON.parse(message.data);
    } catch {
      return;
    }
    setLive("live"); // once a view shows, not when the stream opens
    window.wasp.viewBytes = message.data.length;
    render(view);
  });
  es.addEventListener("refused", (message) => {
    showLogin(message.data || "the session was revoked");
  });
  es.addEventListener("error", () => {
    if (source !== es) return;
    if (es.readyState !== EventSource.CLOSED) {
      setLive("connecting"); // the browser reconnects by itself
      return;
    }
    // Refused outright: a session that ended goes back to the form; any
    // other refusal is retried shortly.
    closeSource();
    setLive("closed");
    const asked = epoch;
    probe().then(async (response) => {
      if (asked !== epoch) return;
      if (response?.status === 401) {
        showLogin(await reason(response));
      } else {
        setTimeout(() => {
          if (!source && !$("dashboard").hidden) connect();
        }, 3000);
      }
    });
  });
}

/** The answer to /api/view (`null` when the controller cannot be reached). */
async function probe() {
  try {
    return await fetch("/api/view", { cache: "no-store", credentials: "same-origin" });
  } catch {
    return null;
  }
}

async function signIn(event) {
  event.preventDefault();
  epoch++;
  const asked = epoch;
  const input = $("token");
  const body = JSON.stringify({ token: input.value });
  input.value = "";
  const button = $("sign-in");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    const response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
      credentials: "same-origin",
      cache: "no-store",
    });
    if (asked !== epoch) return;
    if (!response.ok) {
      $("login-error").textContent = await reason(response);
      return;
    }
    const who = await response.json().catch(() => ({}));
    showDashboard();
    showViewer(who.tenant, who.admin);
    connect();
  } catch {
    $("login-error").textContent = "cannot reach the controller";
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  epoch++;
  closeSource();
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  showLogin("");
}

// ---- The task record panel ---------------------------------------------

/** Counts requests, so that only the latest one clicked is shown. */
let recordSeq = 0;

function closeRecord() {
  recordSeq++;
  const record = $("record");
  const was = record.hidden;
  record.hidden = true;
  delete record.dataset.task;
  $("record-body").innerHTML = "";
  if (!was) redrawStream();
}

/** JSON text pretty-printed (on one line when short), or as it came if it does not parse. */
function pretty(text) {
  try {
    const value = JSON.parse(text);
    const line = JSON.stringify(value);
    return line.length <= 80 ? line : JSON.stringify(value, null, 2);
  } catch {
    return text;
  }
}

function recordHtml(t) {
  const span = (from, to) => (from != null && to != null ? ` (${duration(to - from)})` : "");
  const fields = [
    ["status", `<span class="status status-${esc(t.status)}">${esc(t.status ?? "unknown")}</span>`],
    ["func", esc(t.func ?? "—")],
    ["engine", esc(t.engine ?? "—")],
    ["items", esc(t.items ?? "—")],
    ["module", `<code>${esc(t.module ?? "—")}</code>`],
    ["submitted", esc(stamp(t.submitted_us))],
    ["started", esc(stamp(t.started_us) + span(t.submitted_us, t.started_us))],
    ["completed", esc(stamp(t.completed_us) + span(t.started_us, t.completed_us))],
    ["peak memory", esc(bytes(t.peak_memory_bytes))],
  ];
  let html = `<dl>${fields.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
  const blocks = [
    ["error", t.error, false], ["args", t.args, true], ["result", t.result, true],
    ["stdout", t.stdout, false], ["stderr", t.stderr, false],
  ];
  for (const [name, text, json] of blocks) {
    if (text == null || text === "") continue;
    html += `<h3>${name}</h3><pre class="${name}">${esc(json ? pretty(text) : text)}</pre>`;
  }
  return html;
}

async function openRecord(id) {
  const seq = ++recordSeq;
  const record = $("record");
  delete record.dataset.task;
  if (record.hidden) {
    record.hidden = false;
    redrawStream();
  }
  $("record-title").textContent = id;
  $("record-body").innerHTML = `<p class="muted">loading…</p>`;
  let html;
  let loaded = false;
  try {
    const response = await fetch(`/api/task/${encodeURIComponent(id)}`, {
      cache: "no-store", credentials: "same-origin",
    });
    if (response.status === 401) {
      if (seq === recordSeq) showLogin("the session ended: sign in again");
      return;
    }
    if (response.ok) {
      html = recordHtml(await response.json());
      loaded = true;
    } else {
      html = `<p class="error">${esc(await reason(response))}</p>`;
    }
  } catch {
    html = `<p class="error">cannot reach the controller</p>`;
  }
  if (seq !== recordSeq) return;
  $("record-body").innerHTML = html;
  if (loaded) record.dataset.task = id;
}

// ---- Wiring ---------------------------------------------------------------

/** One delegated listener opens any task the page names. */
document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target.closest("[data-task]") : null;
  if (!target || target.closest("#record")) return;
  openRecord(target.dataset.task);
});
/** The stream is drawn to its width: again when that changes. */
function redrawStream() {
  drawnStream = "";
  if (window.wasp.view && !$("dashboard").hidden) renderStream(window.wasp.view);
}
window.addEventListener("resize", redrawStream);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("record").hidden) closeRecord();
});

async function start() {
  $("login").addEventListener("submit", signIn);
  $("logout").addEventListener("click", signOut);
  $("record-close").addEventListener("click", closeRecord);
  setLive("connecting");
  // The form shows until the answer: a token typed meanwhile is not lost,
  // and a sign-in meanwhile makes the answer stale.
  const asked = epoch;
  const response = await probe();
  if (asked !== epoch) return;
  if (response?.ok) {
    showDashboard();
    connect();
  } else if (response?.status === 401) {
    showLogin(""); // not signed in: nothing went wrong
  } else {
    showLogin(response ? await reason(response) : "cannot reach the controller");
  }
}

start();
