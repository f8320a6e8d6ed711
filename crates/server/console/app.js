// kinesin web console: a single page over the ordinary Kinesis JSON API (POST /, signed with
// SigV4 in the browser by sigv4.js) and the Prometheus text at /metrics. No framework, no build.
"use strict";

// Throughput history: /metrics is scraped once a second while a stream's overview is shown (every
// 5 s otherwise, for as long as the page is open); counter increases are summed into 5-second
// buckets, a ring of 65 minutes per stream. So a chart is at most 780 points whatever the uptime.
const SAMPLE_MS = 5000;
const HISTORY_MINUTES = 65;
const HISTORY_POINTS_MAX = (HISTORY_MINUTES * 60000) / SAMPLE_MS;
const HISTORY_STREAMS_MAX = 200; // streams whose history is kept
const SCRAPE_FAST_MS = 1000;
const SCRAPE_SLOW_MS = 5000;
const CHART_RANGES_MIN = [5, 15, 60];
const STREAMS_LISTED_MAX = 200; // streams the list page describes
const PAGE_RECORDS_MAX = 25; // records per page in the record browser
const PAGES_KEPT_MAX = 40; // pages "Previous page" can go back to
const READ_LIMIT_FILTERED = 1000; // GetRecords Limit while a filter is on (matches are rarer)
const READ_CALLS_MAX = 100; // GetRecords calls one page may make looking for matches
const READ_SCAN_MAX = 20000; // records one page may scan looking for matches
const READ_CONCURRENCY = 8; // shards read at once
const RECORD_BYTES_KEPT = 16 * 1024; // bytes of each record the page keeps (the rest is counted)
const TAIL_POLL_MS = 1000; // live tail: GetRecords on every shard this often
const TAIL_ROWS_MAX = 200; // live tail: newest records shown; older ones are dropped
const HASH_SPACE = 1n << 128n;
const AUTH_ERRORS = new Set([
  "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
  "MissingAuthenticationTokenException", "MissingAuthenticationToken", "ExpiredTokenException",
  "AccessDeniedException",
]);

const state = { config: null, creds: null, timers: [], cleanups: [], view: 0 };

// ---------- small helpers ----------
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const enc = encodeURIComponent;

function flash(msg, error = false) {
  const f = $("#flash");
  f.textContent = msg;
  f.className = error ? "error" : "";
  f.hidden = !msg;
  clearTimeout(flash.t);
  if (msg) flash.t = setTimeout(() => (f.hidden = true), error ? 10000 : 4000);
}

// Runs `fn` now and every `ms` while this view is shown; a slow run is not overlapped.
function every(ms, fn) {
  const view = state.view;
  let busy = false;
  const tick = async () => {
    if (view !== state.view || busy) return;
    busy = true;
    try { await fn(); } catch (e) { handleError(e); } finally { busy = false; }
  };
  tick();
  state.timers.push(setInterval(tick, ms));
}

function fmtNum(n, digits = 1) {
  if (!isFinite(n)) return "–";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(digits) + "M";
  if (Math.abs(n) >= 1e3) return (n / 1e3).toFixed(digits) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}
function fmtBytes(n) {
  if (!isFinite(n)) return "–";
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(1)) + " " + u[i];
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmtTime = (secs) => secs ? new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
// With milliseconds: the merged record view is ordered by them.
const fmtTimeMs = (secs) => secs ? new Date(Math.round(secs * 1000)).toISOString().replace("T", " ") : "–";

function b64FromBytes(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
function bytesFromB64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Fraction of the hash-key space below `key` (a decimal string of up to 128 bits).
const hashFrac = (key) => Number((BigInt(key) * 1000000n) / HASH_SPACE) / 1e6;

// ---------- API ----------
class ApiError extends Error {
  constructor(type, message, status) { super(message ? `${type}: ${message}` : type); this.type = type; this.status = status; }
}

async function api(op, body = {}) {
  const text = JSON.stringify(body);
  const headers = SigV4.sign({
    host: location.host,
    region: state.config.region,
    service: "kinesis",
    creds: state.creds,
    headers: { "X-Amz-Target": `Kinesis_20131202.${op}` },
    body: text,
  });
  headers["Content-Type"] = "application/x-amz-json-1.1";
  const resp = await fetch("/", { method: "POST", headers, body: text, cache: "no-store" });
  const raw = await resp.text();
  let json = {};
  try { json = raw ? JSON.parse(raw) : {}; } catch { /* an XML or empty error */ }
  if (!resp.ok) {
    const type = (json.__type || resp.headers.get("x-amzn-ErrorType") || `HTTP ${resp.status}`).split("#").pop().split(":")[0];
    throw new ApiError(type, json.message || json.Message || "", resp.status);
  }
  return json;
}

async function listAll(op, body, key, limit) {
  const out = [];
  let req = { ...body };
  for (;;) {
    const r = await api(op, req);
    out.push(...(r[key] || []));
    if (!r.NextToken || out.length >= limit) return out;
    req = op === "ListShards" ? { NextToken: r.NextToken } : { ...body, NextToken: r.NextToken };
  }
}

async function listShards(name) {
  return listAll("ListShards", { StreamName: name }, "Shards", 10000);
}

// ---------- metrics ----------
const LAG_METRIC = "kinesin_subscription_millis_behind_latest";

// Stream-level series (no shard_id label) as {metric: {stream: value}}, and the lag of each live
// enhanced fan-out subscription as {stream: {consumer: {shard: ms}}}.
async function scrape() {
  const resp = await fetch("/metrics", { cache: "no-store" });
  if (!resp.ok) throw new Error(`/metrics answered ${resp.status}`);
  const text = await resp.text();
  const out = {}, lag = {}, streams = new Set();
  for (const line of text.split("\n")) {
    const lagLine = line.startsWith(LAG_METRIC + "{");
    if (!line.startsWith("kinesis_") && !lagLine) continue;
    const m = /^(\w+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    if (!labels.stream_name) continue;
    if (lagLine) {
      ((lag[labels.stream_name] ||= {})[labels.consumer_name] ||= {})[labels.shard_id] = Number(m[3]);
      continue;
    }
    if (labels.shard_id) continue;
    streams.add(labels.stream_name);
    (out[m[1]] ||= {})[labels.stream_name] = Number(m[3]);
  }
  return { t: Date.now(), values: out, lag, streams };
}

const RATE_SERIES = {
  inBytes: ["kinesis_incoming_bytes_total"],
  inRecords: ["kinesis_incoming_records_total"],
  outBytes: ["kinesis_get_records_bytes_total", "kinesis_subscribe_to_shard_event_bytes_total"],
  outRecords: ["kinesis_get_records_records_total", "kinesis_subscribe_to_shard_event_records_total"],
  writeThrottled: ["kinesis_write_provisioned_throughput_exceeded_total"],
  readThrottled: ["kinesis_read_provisioned_throughput_exceeded_total"],
};

const RATE_KEYS = Object.keys(RATE_SERIES);

// Increase of each RATE_KEYS counter of `stream` between two scrapes (a counter reset counts as 0).
function deltas(prev, cur, stream) {
  return RATE_KEYS.map((k) => {
    let d = 0;
    for (const n of RATE_SERIES[k]) {
      const a = prev.values[n]?.[stream], b = cur.values[n]?.[stream];
      if (a !== undefined && b !== undefined && b >= a) d += b - a;
    }
    return d;
  });
}

// Per-second rates of `stream` between two scrapes.
function rates(prev, cur, stream) {
  const dt = (cur.t - prev.t) / 1000;
  const d = deltas(prev, cur, stream);
  return Object.fromEntries(RATE_KEYS.map((k, i) => [k, dt > 0 ? d[i] / dt : 0]));
}

// One stream's throughput history: SAMPLE_MS buckets in a ring of HISTORY_POINTS_MAX, each the
// counter increases summed over the time scrapes covered of it. Fixed size, whatever the uptime.
class Ring {
  constructor() {
    this.bucket = new Float64Array(HISTORY_POINTS_MAX).fill(-1); // bucket number held by each slot
    this.covered = new Float64Array(HISTORY_POINTS_MAX); // ms of the bucket scrapes covered
    this.sum = new Float64Array(HISTORY_POINTS_MAX * RATE_KEYS.length);
  }

  // Adds the increases `d` seen between t0 and t1 (ms), spread evenly over that time: a scrape
  // late by minutes (a background tab, a suspended laptop) gives its average to every bucket.
  add(t0, t1, d) {
    const span = HISTORY_POINTS_MAX * SAMPLE_MS;
    if (t1 - t0 > span) {
      const keep = span / (t1 - t0);
      d = d.map((v) => v * keep);
      t0 = t1 - span;
    }
    const total = t1 - t0, K = RATE_KEYS.length;
    if (total <= 0) return;
    for (let b = Math.floor(t0 / SAMPLE_MS); b * SAMPLE_MS < t1; b++) {
      const part = Math.min(t1, (b + 1) * SAMPLE_MS) - Math.max(t0, b * SAMPLE_MS);
      if (part <= 0) continue;
      const i = b % HISTORY_POINTS_MAX;
      if (this.bucket[i] !== b) {
        this.bucket[i] = b;
        this.covered[i] = 0;
        this.sum.fill(0, i * K, i * K + K);
      }
      this.covered[i] += part;
      for (let k = 0; k < K; k++) this.sum[i * K + k] += (d[k] * part) / total;
    }
  }

  // Per-second rate of RATE_KEYS[k] in bucket b, or null when no scrape covered it.
  rate(b, k) {
    const i = b % HISTORY_POINTS_MAX;
    if (this.bucket[i] !== b || !this.covered[i]) return null;
    return (this.sum[i * RATE_KEYS.length + k] / this.covered[i]) * 1000;
  }

  // Buckets with data, and the oldest of them.
  extent() {
    let n = 0, oldest = Infinity;
    for (const b of this.bucket) if (b >= 0) { n++; oldest = Math.min(oldest, b); }
    return { n, oldest };
  }
}

// Scrapes /metrics for as long as the page is open and feeds every stream's Ring, so that the
// charts keep their hour across page changes. `fast` (a stream overview is shown) scrapes once
// a second for live figures; otherwise every 5 s.
const sampler = {
  rings: new Map(),
  prev: null,
  last: null,
  error: null,
  fast: false,
  busy: false,
  timer: null,
  listeners: new Set(),

  async once() {
    if (this.busy) return;
    this.busy = true;
    try {
      const cur = await scrape();
      this.error = null;
      const prev = this.last;
      this.prev = prev;
      this.last = cur;
      if (prev) {
        for (const stream of cur.streams) {
          let ring = this.rings.get(stream);
          if (!ring) {
            if (this.rings.size >= HISTORY_STREAMS_MAX) continue;
            this.rings.set(stream, (ring = new Ring()));
          }
          ring.add(prev.t, cur.t, deltas(prev, cur, stream));
        }
        for (const stream of this.rings.keys()) if (!cur.streams.has(stream)) this.rings.delete(stream);
      }
    } catch (e) {
      this.error = e.message || String(e);
    } finally {
      this.busy = false;
    }
    this.listeners.forEach((f) => { try { f(); } catch (e) { handleError(e); } });
  },

  // (Re)starts the loop now, e.g. when `fast` changed.
  kick() {
    clearTimeout(this.timer);
    const loop = async () => {
      await this.once();
      clearTimeout(this.timer);
      this.timer = setTimeout(loop, this.fast && !document.hidden ? SCRAPE_FAST_MS : SCRAPE_SLOW_MS);
    };
    loop();
  },

  // Latest per-second rates of `stream` (null before two scrapes).
  latest(stream) {
    return this.prev && this.last && this.last.streams.has(stream) ? rates(this.prev, this.last, stream) : null;
  },
};

// ---------- routing ----------
function route() {
  state.view++;
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.cleanups.forEach((f) => f());
  state.cleanups = [];
  if (sampler.fast) { sampler.fast = false; }
  const app = $("#app");
  if (state.config.credentials_required && !state.creds) return viewLogin(app);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "stream" && parts[1]) {
    if (parts[2] === "records") return viewRecords(app, parts[1]);
    return viewStream(app, parts[1]);
  }
  return viewStreams(app);
}

function crumbs(items) {
  $("#crumbs").innerHTML = items.map(([label, href]) =>
    href ? `<a href="${esc(href)}">${esc(label)}</a>` : `<span>${esc(label)}</span>`).join(" / ");
}

function handleError(e) {
  if (e instanceof ApiError && state.config.credentials_required && AUTH_ERRORS.has(e.type)) {
    signOut(`Signed out: ${e.message}`);
    return;
  }
  console.error(e);
  flash(e.message || String(e), true);
}

function signOut(msg) {
  sessionStorage.removeItem("kinesin.creds");
  state.creds = null;
  showWho();
  route();
  if (msg) flash(msg, true);
}

function showWho() {
  const who = $("#whoami"), out = $("#logout");
  if (!state.config.credentials_required) {
    who.textContent = "open (no credentials file)";
    out.hidden = true;
  } else if (state.creds) {
    who.textContent = `signed in as ${state.creds.accessKeyId}`;
    out.hidden = false;
  } else {
    who.textContent = "";
    out.hidden = true;
  }
}

// ---------- login ----------
function viewLogin(app) {
  crumbs([["Sign in"]]);
  app.innerHTML = `
  <form id="login" class="panel login">
    <h1>Sign in</h1>
    <p class="muted">This server requires credentials. Requests are signed with SigV4 in your
    browser; the secret stays in this tab (session storage) and is never sent.</p>
    <label>Access key ID <input name="accessKeyId" autocomplete="username" required></label>
    <label>Secret access key <input name="secretAccessKey" type="password" autocomplete="current-password" required></label>
    <label>Session token (optional) <input name="sessionToken"></label>
    <button class="primary" type="submit">Sign in</button>
  </form>`;
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const creds = {
      accessKeyId: f.get("accessKeyId").trim(),
      secretAccessKey: f.get("secretAccessKey"),
      sessionToken: f.get("sessionToken").trim() || undefined,
    };
    state.creds = creds;
    try {
      await api("ListStreams", { Limit: 1 });
    } catch (e) {
      state.creds = null;
      flash(`Sign-in failed: ${e.message}`, true);
      return;
    }
    sessionStorage.setItem("kinesin.creds", JSON.stringify(creds));
    showWho();
    flash("");
    route();
  });
}

// ---------- stream list ----------
function viewStreams(app) {
  crumbs([["Streams"]]);
  app.innerHTML = `
  <section class="panel">
    <h2>Create stream</h2>
    <form id="create-stream" class="inline">
      <label>Name <input name="name" required pattern="[a-zA-Z0-9_.\\-]{1,128}" placeholder="orders"></label>
      <label>Capacity mode <select name="mode"><option value="PROVISIONED">Provisioned</option><option value="ON_DEMAND">On-demand</option></select></label>
      <label>Shards <input name="shards" type="number" min="1" value="2" style="width:6em"></label>
      <button class="primary" type="submit">Create</button>
    </form>
  </section>
  <section class="panel">
    <h2>Streams</h2>
    <table id="streams">
      <thead><tr><th>Name</th><th>Status</th><th>Mode</th><th class="num">Open shards</th><th class="num">Retention</th>
      <th>Encryption</th><th class="num">In</th><th class="num">Out</th><th class="num">Throttled</th><th></th></tr></thead>
      <tbody><tr><td colspan="10" class="muted">Loading…</td></tr></tbody>
    </table>
  </section>`;
  const form = $("#create-stream");
  form.mode.addEventListener("change", () => (form.shards.disabled = form.mode.value === "ON_DEMAND"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { StreamName: form.name.value.trim() };
    if (form.mode.value === "ON_DEMAND") body.StreamModeDetails = { StreamMode: "ON_DEMAND" };
    else body.ShardCount = Number(form.shards.value);
    try {
      await api("CreateStream", body);
      flash(`Creating stream ${body.StreamName}`);
      form.name.value = "";
      refresh();
    } catch (e) { handleError(e); }
  });
  $("#streams").addEventListener("click", async (ev) => {
    const name = ev.target.dataset.delete;
    if (!name || !confirm(`Delete stream ${name} and all its records?`)) return;
    try {
      await api("DeleteStream", { StreamName: name, EnforceConsumerDeletion: true });
      flash(`Deleting stream ${name}`);
      refresh();
    } catch (e) { handleError(e); }
  });
  const view = state.view;
  async function refresh() {
    const summaries = await listAll("ListStreams", {}, "StreamSummaries", STREAMS_LISTED_MAX);
    const described = await Promise.all(summaries.slice(0, STREAMS_LISTED_MAX).map((s) =>
      api("DescribeStreamSummary", { StreamName: s.StreamName }).then((r) => r.StreamDescriptionSummary, () => null)));
    if (view !== state.view) return;
    const rows = summaries.map((s, i) => {
      const d = described[i] || {};
      const r = sampler.latest(s.StreamName);
      const name = s.StreamName;
      return `<tr data-stream="${esc(name)}">
        <td><a href="#/stream/${enc(name)}">${esc(name)}</a></td>
        <td><span class="badge ${esc(d.StreamStatus || s.StreamStatus)}">${esc(d.StreamStatus || s.StreamStatus)}</span></td>
        <td>${esc((d.StreamModeDetails || s.StreamModeDetails || {}).StreamMode || "")}</td>
        <td class="num">${esc(d.OpenShardCount ?? "")}</td>
        <td class="num">${d.RetentionPeriodHours ? esc(d.RetentionPeriodHours) + " h" : ""}</td>
        <td>${esc(d.EncryptionType && d.EncryptionType !== "NONE" ? d.EncryptionType : "none")}</td>
        <td class="num" data-k="in">${r ? `${fmtNum(r.inRecords)} rec/s<br><span class="muted">${fmtBytes(r.inBytes)}/s</span>` : "…"}</td>
        <td class="num" data-k="out">${r ? `${fmtNum(r.outRecords)} rec/s<br><span class="muted">${fmtBytes(r.outBytes)}/s</span>` : "…"}</td>
        <td class="num" data-k="throttled">${r ? fmtNum(r.writeThrottled + r.readThrottled) + "/s" : "…"}</td>
        <td><button class="danger" data-delete="${esc(name)}">Delete</button></td>
      </tr>`;
    });
    $("#streams tbody").innerHTML = rows.join("") ||
      `<tr><td colspan="10" class="muted">No streams yet: create one above.</td></tr>`;
  }
  every(2000, refresh);
}

// ---------- stream page ----------
function streamTabs(name, on) {
  return `<div class="tabs">
    <a href="#/stream/${enc(name)}" class="${on === "overview" ? "on" : ""}">Overview</a>
    <a href="#/stream/${enc(name)}/records" class="${on === "records" ? "on" : ""}">Record browser</a>
  </div>`;
}

function viewStream(app, name) {
  crumbs([["Streams", "#/"], [name]]);
  app.innerHTML = `
  <h1 class="mono">${esc(name)}</h1>
  ${streamTabs(name, "overview")}
  <section class="panel"><div class="stats" id="summary"></div></section>
  <section class="panel">
    <div class="row spread"><h2>Throughput <span class="muted">(per second, from /metrics)</span></h2>
      <span class="range" id="chart-range">${CHART_RANGES_MIN.map((m) => `<button type="button" data-range="${m}">${m < 60 ? m + " min" : m / 60 + " h"}</button>`).join("")}</span></div>
    <div class="stats" id="rates"></div>
    <div class="grid2">
      <div class="chart" id="chart-bytes"></div>
      <div class="chart" id="chart-records"></div>
    </div>
    <div class="chart" id="chart-throttle"></div>
  </section>
  <section class="panel shardmap">
    <h2>Shard map <span class="muted">(hash-key space left to right, to scale; generations top to bottom)</span></h2>
    <div id="shardmap"></div>
    <div class="row" style="margin-top:12px">
      <form id="split" class="inline">
        <label>Split shard <select name="shard" id="split-shard"></select></label>
        <label>New starting hash key <input name="key" id="split-key" class="mono" size="42"></label>
        <button type="submit" id="split-go">Split</button>
      </form>
      <form id="merge" class="inline">
        <label>Merge shard <select name="shard" id="merge-shard"></select></label>
        <label>with adjacent <select name="adjacent" id="merge-adjacent"></select></label>
        <button type="submit" id="merge-go">Merge</button>
      </form>
      <form id="scale" class="inline">
        <label>Open shards <input name="count" id="scale-count" type="number" min="1" style="width:6em"></label>
        <button type="submit" id="scale-go">Scale</button>
      </form>
    </div>
    <table id="shards" style="margin-top:12px"></table>
  </section>
  <div class="grid2">
    <section class="panel"><h2>Consumers <span class="muted">(lag: MillisBehindLatest of each live subscription)</span></h2><div id="consumers"></div>
      <p class="muted" id="polling-lag"></p>
      <form id="register" class="inline" style="margin-top:8px">
        <label>Register consumer <input name="consumer" required></label><button type="submit">Register</button>
      </form></section>
    <section class="panel"><h2>Tags</h2><div id="tags"></div>
      <form id="tag" class="inline" style="margin-top:8px">
        <label>Key <input name="key" required></label><label>Value <input name="value"></label>
        <button type="submit">Add tag</button>
      </form></section>
  </div>
  <section class="panel">
    <h2>Retention</h2>
    <form id="retention" class="inline">
      <label>Retention period (hours, 24–8760) <input name="hours" id="retention-hours" type="number" min="24" max="8760"></label>
      <button type="submit">Set</button>
    </form>
  </section>`;

  let summary = null;
  let shards = [];
  let consumerList = [];

  // Lag per consumer from /metrics (kinesin_subscription_millis_behind_latest, one series per
  // live subscription = consumer and shard): the worst shard, each shard in the tooltip.
  function drawConsumers() {
    const lag = sampler.last?.lag?.[name] || {};
    $("#consumers").innerHTML = consumerList.length ? `<table><tr><th>Name</th><th>Status</th><th>Created</th><th class="num">Lag</th></tr>${consumerList.map((c) => {
      const per = lag[c.ConsumerName] || {};
      const ids = Object.keys(per).sort();
      const worst = ids.length ? Math.max(...ids.map((id) => per[id])) : null;
      const title = ids.map((id) => `${id}: ${per[id]} ms`).join("\n");
      const cell = worst === null ? `<span class="muted">no live subscription</span>`
        : `${esc(fmtNum(worst, 0))} ms<br><span class="muted">${ids.length} shard${ids.length === 1 ? "" : "s"} subscribed</span>`;
      return `<tr data-consumer="${esc(c.ConsumerName)}"><td class="mono">${esc(c.ConsumerName)}</td><td><span class="badge ${esc(c.ConsumerStatus)}">${esc(c.ConsumerStatus)}</span></td><td>${esc(fmtTime(c.ConsumerCreationTimestamp))}</td>
        <td class="num lag" data-lag-ms="${worst ?? ""}" data-shards="${ids.length}" title="${esc(title)}">${cell}</td></tr>`;
    }).join("")}</table>`
      : `<p class="muted">No registered (enhanced fan-out) consumers.</p>`;
    const age = sampler.last?.values.kinesis_get_records_iterator_age_milliseconds?.[name];
    $("#polling-lag").textContent = age === undefined ? "" :
      `Polling readers (GetRecords) are not told apart: the last record of the latest GetRecords call on this stream, by any reader (this page included), was ${fmtNum(age, 0)} ms old (its iterator age; 0 when it returned none).`;
  }
  const act = (fn) => async (ev) => {
    ev.preventDefault();
    try { await fn(ev.target); await refreshStream(true); } catch (e) { handleError(e); }
  };

  async function refreshStream(force) {
    const d = (await api("DescribeStreamSummary", { StreamName: name })).StreamDescriptionSummary;
    const list = await listShards(name);
    summary = d;
    const changed = force || JSON.stringify(list) !== JSON.stringify(shards);
    shards = list;
    $("#summary").innerHTML = [
      ["Status", `<span class="badge ${esc(d.StreamStatus)}" id="stream-status">${esc(d.StreamStatus)}</span>`],
      ["Mode", esc(d.StreamModeDetails?.StreamMode || "")],
      ["Open shards", esc(d.OpenShardCount)],
      ["Retention", `${esc(d.RetentionPeriodHours)} h`],
      ["Encryption", esc(d.EncryptionType && d.EncryptionType !== "NONE" ? `${d.EncryptionType} (${d.KeyId || ""})` : "none")],
      ["Consumers", esc(d.ConsumerCount ?? 0)],
      ["Created", esc(fmtTime(d.StreamCreationTimestamp))],
      ["ARN", `<span class="mono">${esc(d.StreamARN)}</span>`],
    ].map(([k, v]) => `<div class="stat"><div class="k">${k}</div><div class="v">${v}</div></div>`).join("");
    if (document.activeElement?.id !== "retention-hours") $("#retention-hours").value = d.RetentionPeriodHours;
    if (changed) drawShards();
    const [consumers, tags] = await Promise.all([
      api("ListStreamConsumers", { StreamARN: d.StreamARN }).then((r) => r.Consumers || []),
      api("ListTagsForStream", { StreamName: name }).then((r) => r.Tags || []),
    ]);
    consumerList = consumers;
    drawConsumers();
    $("#tags").innerHTML = tags.length ? `<table><tr><th>Key</th><th>Value</th><th></th></tr>${tags.map((t) =>
      `<tr><td class="mono">${esc(t.Key)}</td><td class="mono">${esc(t.Value)}</td><td><button class="link" data-untag="${esc(t.Key)}">remove</button></td></tr>`).join("")}</table>`
      : `<p class="muted">No tags.</p>`;
  }

  function drawShards() {
    const open = shards.filter((s) => !s.SequenceNumberRange.EndingSequenceNumber);
    const byId = Object.fromEntries(shards.map((s) => [s.ShardId, s]));
    const depth = {};
    const depthOf = (s) => {
      if (depth[s.ShardId] !== undefined) return depth[s.ShardId];
      depth[s.ShardId] = 0; // guards against cycles in bad data
      const ps = [s.ParentShardId, s.AdjacentParentShardId].filter((p) => byId[p]);
      return (depth[s.ShardId] = ps.length ? Math.max(...ps.map((p) => depthOf(byId[p]))) + 1 : 0);
    };
    shards.forEach(depthOf);
    const rows = Math.max(0, ...Object.values(depth)) + 1;
    const W = 1000, ROW = 64, BOX = 34, PAD = 8;
    const geo = {};
    for (const s of shards) {
      const x0 = hashFrac(s.HashKeyRange.StartingHashKey) * W;
      const x1 = (hashFrac(s.HashKeyRange.EndingHashKey) + 1e-6) * W;
      geo[s.ShardId] = { x: x0, w: Math.max(2, x1 - x0), y: PAD + depth[s.ShardId] * ROW };
    }
    const edges = [];
    for (const s of shards) {
      for (const p of [s.ParentShardId, s.AdjacentParentShardId]) {
        if (!geo[p]) continue;
        const a = geo[p], b = geo[s.ShardId];
        const ax = a.x + a.w / 2, ay = a.y + BOX, bx = b.x + b.w / 2, by = b.y - 2;
        edges.push(`<path class="edge" data-from="${esc(p)}" data-to="${esc(s.ShardId)}" d="M${ax},${ay} C${ax},${(ay + by) / 2} ${bx},${(ay + by) / 2} ${bx},${by}"/>`);
      }
    }
    const boxes = shards.map((s) => {
      const g = geo[s.ShardId];
      const st = s.SequenceNumberRange.EndingSequenceNumber ? "CLOSED" : "OPEN";
      const label = "#" + (Number(s.ShardId.split("-").pop()) || 0);
      const parents = [s.ParentShardId, s.AdjacentParentShardId].filter(Boolean).join(" ");
      return `<g class="shard" data-shard-id="${esc(s.ShardId)}" data-state="${st}" data-parents="${esc(parents)}">
        <title>${esc(s.ShardId)} (${st})\nhash keys ${esc(s.HashKeyRange.StartingHashKey)} – ${esc(s.HashKeyRange.EndingHashKey)}${parents ? "\nparents: " + esc(parents) : ""}</title>
        <rect class="${st}" x="${g.x + 1}" y="${g.y}" width="${Math.max(1, g.w - 2)}" height="${BOX}" rx="4"/>
        ${g.w > 40 ? `<text class="id" x="${g.x + g.w / 2}" y="${g.y + 21}" text-anchor="middle">${esc(label)}${st === "CLOSED" ? " ✕" : ""}</text>` : ""}
      </g>`;
    });
    const H = PAD * 2 + (rows - 1) * ROW + BOX + 18;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
      `<text x="${Math.min(W - 4, Math.max(4, f * W))}" y="${H - 4}" text-anchor="${f === 0 ? "start" : f === 1 ? "end" : "middle"}">${f === 0 ? "0" : f === 1 ? "2¹²⁸−1" : `${f * 100}%`}</text>`).join("");
    $("#shardmap").innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="shard map">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="currentColor"/></marker></defs>
      ${edges.join("")}${boxes.join("")}${ticks}</svg>`;
    $("#shards").innerHTML = `<tr><th>Shard</th><th>State</th><th>Parent</th><th>Adjacent parent</th><th>Hash keys (share)</th><th>Sequence numbers</th></tr>` +
      shards.map((s) => {
        const st = s.SequenceNumberRange.EndingSequenceNumber ? "CLOSED" : "OPEN";
        const share = hashFrac(s.HashKeyRange.EndingHashKey) - hashFrac(s.HashKeyRange.StartingHashKey) + 1e-6;
        return `<tr data-shard-row="${esc(s.ShardId)}"><td class="mono">${esc(s.ShardId)}</td><td><span class="badge ${st}">${st}</span></td>
          <td class="mono">${esc(s.ParentShardId || "")}</td><td class="mono">${esc(s.AdjacentParentShardId || "")}</td>
          <td class="mono">${esc(s.HashKeyRange.StartingHashKey)} – ${esc(s.HashKeyRange.EndingHashKey)} <span class="muted">(${(share * 100).toFixed(1)}%)</span></td>
          <td class="mono">${esc(s.SequenceNumberRange.StartingSequenceNumber)}${st === "CLOSED" ? " – " + esc(s.SequenceNumberRange.EndingSequenceNumber) : " –"}</td></tr>`;
      }).join("");
    const opts = open.map((s) => `<option value="${esc(s.ShardId)}">${esc(s.ShardId)}</option>`).join("");
    const keep = (sel, html) => { const v = sel.value; sel.innerHTML = html; if ([...sel.options].some((o) => o.value === v)) sel.value = v; };
    keep($("#split-shard"), opts);
    keep($("#merge-shard"), opts);
    updateSplitKey();
    updateAdjacent();
    if (document.activeElement?.id !== "scale-count") $("#scale-count").value = open.length;
  }

  function updateSplitKey() {
    const s = shards.find((x) => x.ShardId === $("#split-shard").value);
    if (!s) { $("#split-key").value = ""; return; }
    const lo = BigInt(s.HashKeyRange.StartingHashKey), hi = BigInt(s.HashKeyRange.EndingHashKey);
    $("#split-key").value = ((lo + hi + 1n) / 2n).toString();
  }

  function updateAdjacent() {
    const s = shards.find((x) => x.ShardId === $("#merge-shard").value);
    const adj = !s ? [] : shards.filter((o) => !o.SequenceNumberRange.EndingSequenceNumber && o !== s && (
      BigInt(o.HashKeyRange.StartingHashKey) === BigInt(s.HashKeyRange.EndingHashKey) + 1n ||
      BigInt(s.HashKeyRange.StartingHashKey) === BigInt(o.HashKeyRange.EndingHashKey) + 1n));
    $("#merge-adjacent").innerHTML = adj.map((o) => `<option value="${esc(o.ShardId)}">${esc(o.ShardId)}</option>`).join("");
    $("#merge-go").disabled = !adj.length;
  }

  $("#split-shard").addEventListener("change", updateSplitKey);
  $("#merge-shard").addEventListener("change", updateAdjacent);
  $("#split").addEventListener("submit", act(async (f) => {
    await api("SplitShard", { StreamName: name, ShardToSplit: f.shard.value, NewStartingHashKey: f.key.value.trim() });
    flash(`Splitting ${f.shard.value}`);
  }));
  $("#merge").addEventListener("submit", act(async (f) => {
    await api("MergeShards", { StreamName: name, ShardToMerge: f.shard.value, AdjacentShardToMerge: f.adjacent.value });
    flash(`Merging ${f.shard.value} and ${f.adjacent.value}`);
  }));
  $("#scale").addEventListener("submit", act(async (f) => {
    await api("UpdateShardCount", { StreamName: name, TargetShardCount: Number(f.count.value), ScalingType: "UNIFORM_SCALING" });
    flash(`Scaling to ${f.count.value} shards`);
  }));
  $("#retention").addEventListener("submit", act(async (f) => {
    const hours = Number(f.hours.value);
    const op = hours > summary.RetentionPeriodHours ? "IncreaseStreamRetentionPeriod" : "DecreaseStreamRetentionPeriod";
    await api(op, { StreamName: name, RetentionPeriodHours: hours });
    flash(`Retention set to ${hours} h`);
  }));
  $("#register").addEventListener("submit", act(async (f) => {
    await api("RegisterStreamConsumer", { StreamARN: summary.StreamARN, ConsumerName: f.consumer.value.trim() });
    f.consumer.value = "";
  }));
  $("#tag").addEventListener("submit", act(async (f) => {
    await api("AddTagsToStream", { StreamName: name, Tags: { [f.key.value.trim()]: f.value.value } });
    f.key.value = f.value.value = "";
  }));
  $("#tags").addEventListener("click", async (ev) => {
    const key = ev.target.dataset.untag;
    if (!key) return;
    try { await api("RemoveTagsFromStream", { StreamName: name, TagKeys: [key] }); await refreshStream(); } catch (e) { handleError(e); }
  });

  // Throughput: the sampler scrapes once a second while this page is shown; the live figures are
  // the rates between its last two scrapes, the charts its 5-second buckets.
  let range = Number(localStorage.getItem("kinesin.chartRange")) || 15;
  if (!CHART_RANGES_MIN.includes(range)) range = 15;
  const view = state.view;
  const onSample = () => { if (view === state.view) { drawRates(); drawConsumers(); } };
  sampler.listeners.add(onSample);
  state.cleanups.push(() => sampler.listeners.delete(onSample));
  sampler.fast = true;
  sampler.kick();
  $("#chart-range").addEventListener("click", (ev) => {
    const m = Number(ev.target.dataset.range);
    if (!m) return;
    range = m;
    localStorage.setItem("kinesin.chartRange", String(m));
    drawRates();
  });
  function drawRates() {
    $("#chart-range").querySelectorAll("button").forEach((b) => b.classList.toggle("on", Number(b.dataset.range) === range));
    const r = sampler.latest(name);
    if (!r) return;
    const stat = (id, label, v, text) =>
      `<div class="stat" id="${id}" data-value="${v}"><div class="k">${label}</div><div class="v">${text}</div></div>`;
    $("#rates").innerHTML = [
      stat("rate-in-records", "records in", r.inRecords, fmtNum(r.inRecords) + "/s"),
      stat("rate-in-bytes", "bytes in", r.inBytes, fmtBytes(r.inBytes) + "/s"),
      stat("rate-out-records", "records out", r.outRecords, fmtNum(r.outRecords) + "/s"),
      stat("rate-out-bytes", "bytes out", r.outBytes, fmtBytes(r.outBytes) + "/s"),
      stat("rate-throttled", "throttled (write records + read calls)", r.writeThrottled + r.readThrottled,
        fmtNum(r.writeThrottled + r.readThrottled) + "/s"),
    ].join("");
    const ring = sampler.rings.get(name);
    if (!ring) return;
    chart($("#chart-bytes"), ring, "bytes/s", [["in", "inBytes", "--c1"], ["out", "outBytes", "--c2"]], fmtBytes);
    chart($("#chart-records"), ring, "records/s", [["in", "inRecords", "--c1"], ["out", "outRecords", "--c2"]], fmtNum);
    chart($("#chart-throttle"), ring, "throttled/s", [["write (records)", "writeThrottled", "--c3"], ["read (calls)", "readThrottled", "--c2"]], fmtNum);
  }
  // One path per series over the chosen range's buckets (at most HISTORY_POINTS_MAX points),
  // broken where no scrape covered a bucket. Redrawn on each scrape: a few thousand points.
  function chart(el, ring, title, series, fmt) {
    // Drawn at the element's pixel width so that text is not stretched.
    const W = Math.max(300, el.clientWidth || 600), H = 120, L = 56, B = 14;
    const n = (range * 60000) / SAMPLE_MS;
    const last = Math.floor(Date.now() / SAMPLE_MS);
    const first = last - n + 1;
    const values = series.map(([, k]) => {
      const ki = RATE_KEYS.indexOf(k);
      const out = [];
      for (let b = first; b <= last; b++) out.push(ring.rate(b, ki));
      return out;
    });
    let max = 1;
    for (const vs of values) for (const v of vs) if (v !== null && v > max) max = v;
    const x = (i) => L + (i * (W - L)) / (n - 1);
    const y = (v) => (H - B) - (v / max) * (H - B - 6);
    let drawn = 0;
    const paths = values.map((vs, si) => {
      let d = "", pen = false;
      vs.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
        if (si === 0) drawn++;
      });
      return `<path fill="none" stroke="var(${series[si][2]})" stroke-width="1.6" stroke-linejoin="round" d="${d}"/>`;
    }).join("");
    const { n: held, oldest } = ring.extent();
    const label = range < 60 ? `−${range} min` : `−${range / 60} h`;
    el.innerHTML = `<div class="legend"><b>${esc(title)}</b>${series.map(([l, , c]) => `<span><i style="background:var(${c})"></i>${esc(l)}</span>`).join("")}</div>
      <svg viewBox="0 0 ${W} ${H}" data-range-min="${range}" data-points="${drawn}" data-held="${held}"
        data-oldest-s="${held ? Math.round((last - oldest) * SAMPLE_MS / 1000) : 0}" data-capacity-s="${HISTORY_POINTS_MAX * SAMPLE_MS / 1000}">
        <line x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}" stroke="var(--line)"/>
        <line x1="${L}" y1="6" x2="${W}" y2="6" stroke="var(--line)" stroke-dasharray="3 3"/>
        <text x="${L - 4}" y="12" text-anchor="end">${esc(fmt(max))}</text>
        <text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>
        <text x="${L}" y="${H - 2}">${label}</text><text x="${W}" y="${H - 2}" text-anchor="end">now</text>
        ${paths}</svg>`;
  }
  every(2000, async () => {
    try {
      await refreshStream();
    } catch (e) {
      if (e.type !== "ResourceNotFoundException") throw e;
      state.timers.forEach(clearInterval);
      app.innerHTML = `<p class="muted">Stream ${esc(name)} does not exist (any more). <a href="#/">All streams</a></p>`;
    }
  });
}

// ---------- record browser ----------
// A record as the page keeps it: at most RECORD_BYTES_KEPT bytes of data (`size` is the whole).
function toRecord(r, shardId) {
  const bytes = bytesFromB64(r.Data);
  return {
    seq: r.SequenceNumber, shard: shardId, at: r.ApproximateArrivalTimestamp, pk: r.PartitionKey,
    bytes, size: bytes.length, enc: r.EncryptionType,
  };
}
const trimRecord = (rec) => {
  if (rec.bytes.length > RECORD_BYTES_KEPT) rec.bytes = rec.bytes.slice(0, RECORD_BYTES_KEPT);
  delete rec.text;
  delete rec.json;
  return rec;
};
const textOf = (rec) => (rec.text ??= new TextDecoder("utf-8").decode(rec.bytes));
// Merged order: arrival time, then sequence number, then shard.
function before(a, b) {
  if (a.at !== b.at) return a.at < b.at;
  const sa = BigInt(a.seq), sb = BigInt(b.seq);
  if (sa !== sb) return sa < sb;
  return a.shard < b.shard;
}

function decode(rec, how) {
  const bytes = rec.bytes;
  const cut = rec.size > bytes.length ? `\n… (${rec.size} bytes; the first ${bytes.length} shown)` : "";
  if (how === "hex") {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const chunk = bytes.subarray(i, i + 16);
      lines.push(i.toString(16).padStart(6, "0") + "  " + Array.from(chunk, (b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(48) +
        "  " + Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join(""));
    }
    return lines.join("\n") + cut;
  }
  const text = new TextDecoder("utf-8").decode(bytes);
  if (how === "json") {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return (cut ? "(cut short) " : "(not JSON) ") + text + cut; }
  }
  return text + cut;
}

// A JSON field condition: `path`, `path = value`, `path != value` or `path ~ text`. The path is
// dotted (`user.id`, `items[0].sku`, `["a.b"]`, an optional leading `$.`); the value is JSON
// (42, "x", true, null) or else plain text; values compare as text, so `id = 42` matches 42 and "42".
function parseJsonField(expr) {
  const m = /^(.*?)\s*(!=|=|~)\s*(.*)$/s.exec(expr);
  const pathText = (m ? m[1] : expr).trim().replace(/^\$\.?/, "");
  const path = [];
  const re = /\.?([^.[\]\s=!~]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/gy;
  let at = 0, part;
  while (at < pathText.length && (part = re.exec(pathText))) {
    path.push(part[1] ?? (part[2] !== undefined ? Number(part[2]) : JSON.parse(`"${part[3]}"`)));
    at = re.lastIndex;
  }
  if (!path.length || at !== pathText.length) {
    throw new Error(`JSON field filter "${expr}": write a path and optionally = value, != value or ~ text, e.g. user.id = 42 or items[0].sku ~ kay`);
  }
  const op = m ? m[2] : "exists";
  let want = m ? m[3].trim() : null;
  if (m) { try { want = JSON.parse(want); } catch { /* plain text */ } }
  const canon = (v) => (typeof v === "string" ? v : JSON.stringify(v));
  const w = canon(want);
  return (doc) => {
    let v = doc;
    for (const p of path) {
      if (v === null || typeof v !== "object") return false;
      v = v[p];
      if (v === undefined) return false;
    }
    if (op === "exists") return true;
    if (op === "=") return canon(v) === w;
    if (op === "!=") return canon(v) !== w;
    return canon(v).includes(w);
  };
}

// The record filter of the form: partition key (exact or prefix), data substring, JSON field.
function makeFilter(f) {
  const pk = f.pk, prefix = f.pkMode === "prefix", text = f.text;
  const field = f.json.trim() ? parseJsonField(f.json.trim()) : null;
  const parts = [];
  if (pk) parts.push(`partition key ${prefix ? "starts with" : "is"} "${pk}"`);
  if (text) parts.push(`data contains "${text}"`);
  if (field) parts.push(`JSON ${f.json.trim()}`);
  return {
    active: parts.length > 0,
    describe: parts.join(", "),
    test(rec) {
      if (pk && !(prefix ? rec.pk.startsWith(pk) : rec.pk === pk)) return false;
      if (text && !textOf(rec).includes(text)) return false;
      if (field) {
        if (rec.json === undefined) { try { rec.json = JSON.parse(textOf(rec)); } catch { rec.json = null; } }
        if (rec.json === null || !field(rec.json)) return false;
      }
      return true;
    },
  };
}

// Runs fn over items, at most n at once.
async function pool(items, n, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

// GetRecords with the retries a reader needs: throughput exceeded → back off and retry;
// an expired iterator → `reopen()` gives a new one.
async function getRecords(sh, limit, reopen) {
  for (let attempt = 0; ; attempt++) {
    if (!sh.iterator) sh.iterator = await reopen(sh);
    try {
      return await api("GetRecords", { ShardIterator: sh.iterator, Limit: limit });
    } catch (e) {
      if (attempt >= 20) throw e;
      if (e.type === "ProvisionedThroughputExceededException") await sleep(Math.min(1000, 100 * 2 ** attempt));
      else if (e.type === "ExpiredIteratorException") sh.iterator = null;
      else throw e;
    }
  }
}

// Reads the given shards of a stream from one starting position and merges them into one
// sequence in arrival order (then sequence number). Each shard is read in order; a record is
// handed out only once every other shard's next match is known to come later, or that shard is
// read to its end or to its newest record. Only matching records are buffered.
class MergedReader {
  constructor(stream, shardIds, start, filter) {
    this.stream = stream;
    this.start = start;
    this.filter = filter;
    this.shards = shardIds.map((id) => ({ id, iterator: null, buf: [], done: false, atTip: false, behind: 0, last: null }));
    this.calls = 0;
    this.scanned = 0;
    this.handed = 0;
    this.stopped = false;
  }

  async reopen(sh) {
    const req = { StreamName: this.stream, ShardId: sh.id };
    if (sh.last) Object.assign(req, { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: sh.last });
    else {
      req.ShardIteratorType = this.start.type;
      if (this.start.type.includes("SEQUENCE")) req.StartingSequenceNumber = this.start.arg;
      if (this.start.type === "AT_TIMESTAMP") req.Timestamp = this.start.arg;
    }
    return (await api("GetShardIterator", req)).ShardIterator;
  }

  async fetch(sh) {
    const limit = this.filter.active ? READ_LIMIT_FILTERED : PAGE_RECORDS_MAX;
    const r = await getRecords(sh, limit, (s) => this.reopen(s));
    this.calls++;
    const recs = r.Records || [];
    this.scanned += recs.length;
    sh.behind = r.MillisBehindLatest ?? 0;
    if (recs.length) sh.last = recs[recs.length - 1].SequenceNumber;
    for (const x of recs) {
      const rec = toRecord(x, sh.id);
      if (this.filter.test(rec)) sh.buf.push(trimRecord(rec));
    }
    sh.iterator = r.NextShardIterator || null;
    if (!sh.iterator) sh.done = true;
    else if (!recs.length && sh.behind === 0) sh.atTip = true;
  }

  // Up to n matching records, the next in merged order.
  async next(n) {
    const out = [];
    const calls0 = this.calls, scanned0 = this.scanned;
    this.stopped = false;
    this.shards.forEach((s) => (s.atTip = false));
    while (out.length < n) {
      const need = this.shards.filter((s) => !s.buf.length && !s.done && !s.atTip);
      if (need.length) {
        if (this.calls - calls0 >= READ_CALLS_MAX || this.scanned - scanned0 >= READ_SCAN_MAX) {
          this.stopped = true;
          break;
        }
        await pool(need, READ_CONCURRENCY, (s) => this.fetch(s));
        continue;
      }
      let best = null;
      for (const s of this.shards) if (s.buf.length && (!best || before(s.buf[0], best.buf[0]))) best = s;
      if (!best) break;
      out.push(best.buf.shift());
    }
    this.handed += out.length;
    return out;
  }

  get finished() { return this.shards.every((s) => s.done && !s.buf.length); }
  get behind() { return Math.max(0, ...this.shards.map((s) => s.behind)); }
}

// Live tail: LATEST iterators on every open shard, polled every TAIL_POLL_MS; a shard that
// closes hands over to its children (ChildShards). Pausing stops the polling; resuming goes on
// from each shard's last record, so nothing put meanwhile is skipped (within retention).
class Tail {
  constructor(stream, filter, onBatch) {
    this.stream = stream;
    this.filter = filter;
    this.onBatch = onBatch;
    this.shards = new Map();
    this.paused = false;
    this.stoppedForGood = false;
    this.received = 0;
    this.timer = null;
    this.busy = false;
  }

  async reopen(sh) {
    const req = { StreamName: this.stream, ShardId: sh.id };
    if (sh.last) Object.assign(req, { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: sh.last });
    else if (sh.since) Object.assign(req, { ShardIteratorType: "AT_TIMESTAMP", Timestamp: sh.since / 1000 });
    else req.ShardIteratorType = sh.from;
    return (await api("GetShardIterator", req)).ShardIterator;
  }

  async start() {
    const shards = await listShards(this.stream);
    for (const s of shards) {
      if (!s.SequenceNumberRange.EndingSequenceNumber) this.shards.set(s.ShardId, { id: s.ShardId, from: "LATEST", iterator: null, last: null, since: 0 });
    }
    // Iterators first: from here on, every record put is caught.
    await pool([...this.shards.values()], READ_CONCURRENCY, async (sh) => {
      sh.iterator = await this.reopen(sh);
      sh.since = Date.now();
    });
    this.schedule(0);
  }

  schedule(ms) {
    clearTimeout(this.timer);
    if (!this.paused && !this.stoppedForGood) this.timer = setTimeout(() => this.poll(), ms);
  }

  async poll() {
    if (this.busy || this.paused || this.stoppedForGood) return;
    this.busy = true;
    const batch = [];
    try {
      await pool([...this.shards.values()], READ_CONCURRENCY, async (sh) => {
        const polled = Date.now();
        const r = await getRecords(sh, READ_LIMIT_FILTERED, (s) => this.reopen(s));
        const recs = r.Records || [];
        this.received += recs.length;
        if (recs.length) sh.last = recs[recs.length - 1].SequenceNumber;
        else if (!sh.last) sh.since = polled;
        for (const x of recs) {
          const rec = toRecord(x, sh.id);
          if (this.filter.test(rec)) batch.push(trimRecord(rec));
        }
        sh.iterator = r.NextShardIterator || null;
        if (!sh.iterator) {
          this.shards.delete(sh.id);
          for (const c of r.ChildShards || []) {
            if (!this.shards.has(c.ShardId)) this.shards.set(c.ShardId, { id: c.ShardId, from: "TRIM_HORIZON", iterator: null, last: null, since: 0 });
          }
        }
      });
    } catch (e) {
      handleError(e);
    } finally {
      this.busy = false;
    }
    if (this.stoppedForGood) return;
    batch.sort((a, b) => (before(a, b) ? -1 : 1));
    this.onBatch(batch);
    this.schedule(TAIL_POLL_MS);
  }

  pause() { this.paused = true; clearTimeout(this.timer); }
  resume() { this.paused = false; this.schedule(0); }
  stop() { this.stoppedForGood = true; clearTimeout(this.timer); }
}

function viewRecords(app, name) {
  crumbs([["Streams", "#/"], [name, `#/stream/${enc(name)}`], ["Records"]]);
  app.innerHTML = `
  <h1 class="mono">${esc(name)}</h1>
  ${streamTabs(name, "records")}
  <section class="panel">
    <h2>Put a record</h2>
    <form id="put" class="inline">
      <label>Partition key <input id="put-pk" name="pk" required></label>
      <label>Data (UTF-8) <textarea id="put-data" name="data"></textarea></label>
      <button class="primary" type="submit" id="put-go">Put record</button>
    </form>
    <p id="put-result" class="muted mono"></p>
  </section>
  <section class="panel">
    <h2>Records <span class="muted">(all shards merged in arrival order, or one shard)</span></h2>
    <form id="browse">
      <div class="inline">
        <label>Shard <select id="rb-shard" name="shard"><option value="">All shards (merged)</option></select></label>
        <label>From <select id="rb-type" name="type">
          <option>TRIM_HORIZON</option><option>AT_TIMESTAMP</option><option>LATEST</option>
          <option>AT_SEQUENCE_NUMBER</option><option>AFTER_SEQUENCE_NUMBER</option></select></label>
        <label id="rb-arg-label">Sequence number / timestamp <input id="rb-arg" name="arg" class="mono" size="36" disabled></label>
        <label>Decode as <select id="rb-decode"><option value="text">text</option><option value="json">JSON (pretty)</option><option value="hex">hex</option></select></label>
      </div>
      <div class="inline filters">
        <label>Partition key <span class="joined"><select id="f-pk-mode" name="pkMode"><option value="exact">is</option><option value="prefix">starts with</option></select><input id="f-pk" name="pk" size="16"></span></label>
        <label>Data contains <input id="f-text" name="text" size="18"></label>
        <label>JSON field <input id="f-json" name="json" class="mono" size="24" placeholder="user.id = 42"></label>
      </div>
      <div class="inline">
        <button class="primary" type="submit" id="rb-fetch">Read</button>
        <button type="button" id="rb-prev" disabled>Previous page</button>
        <button type="button" id="rb-next" disabled>Next page</button>
        <span class="sep"></span>
        <button type="button" id="rb-tail">Live tail</button>
        <button type="button" id="rb-pause" hidden>Pause</button>
      </div>
    </form>
    <p id="rb-status" class="muted"></p>
    <table class="records"><thead><tr><th>Sequence number</th><th>Shard</th><th>Arrival</th><th>Partition key</th><th>Data</th></tr></thead>
      <tbody id="rb-rows"></tbody></table>
  </section>`;
  const form = $("#browse");
  const view = state.view;
  let reader = null, pages = [], at = -1; // browsing: pages of records, `at` shown
  let tail = null, tailRows = [], tailDropped = 0;

  const typeChanged = () => {
    const t = form.type.value;
    form.arg.disabled = !/SEQUENCE|TIMESTAMP/.test(t);
    form.arg.placeholder = t === "AT_TIMESTAMP" ? "2026-11-26T01:00:00Z or epoch seconds" : t.includes("SEQUENCE") ? "sequence number" : "";
  };
  // A sequence number belongs to one shard: those starting points need a shard.
  const shardChanged = () => {
    const all = !form.shard.value;
    for (const o of form.type.options) if (o.value.includes("SEQUENCE")) o.disabled = all;
    if (all && form.type.value.includes("SEQUENCE")) form.type.value = "TRIM_HORIZON";
    typeChanged();
  };
  form.type.addEventListener("change", typeChanged);
  form.shard.addEventListener("change", shardChanged);
  shardChanged();
  let shardList = [];
  listShards(name).then((shards) => {
    shardList = shards;
    form.shard.innerHTML = `<option value="">All shards (merged, ${shards.length})</option>` +
      shards.map((s) => `<option value="${esc(s.ShardId)}">${esc(s.ShardId)}${s.SequenceNumberRange.EndingSequenceNumber ? " (closed)" : ""}</option>`).join("");
    shardChanged();
  }, handleError);

  const filterOf = () => makeFilter({ pk: form.pk.value, pkMode: form.pkMode.value, text: form.text.value, json: form.json.value });

  function rows(recs) {
    const how = $("#rb-decode").value;
    return recs.map((r) => `<tr data-shard="${esc(r.shard)}" data-seq="${esc(r.seq)}"><td class="mono">${esc(r.seq)}</td>
      <td class="mono">${esc(r.shard.replace(/^shardId-0*(?=\d)/, "#"))}</td>
      <td class="mono at">${esc(fmtTimeMs(r.at))}</td><td class="mono pk">${esc(r.pk)}</td>
      <td class="data"><pre>${esc(decode(r, how))}</pre></td></tr>`).join("");
  }

  function show() {
    if (tail) {
      $("#rb-rows").innerHTML = rows(tailRows) ||
        `<tr><td colspan="5" class="muted">Waiting for records${tail.filter.active ? " that match" : ""}…</td></tr>`;
      return;
    }
    const page = pages[at] || { recs: [], first: 0 };
    $("#rb-rows").innerHTML = rows(page.recs) || `<tr><td colspan="5" class="muted">No records in this page.</td></tr>`;
    $("#rb-prev").disabled = at <= 0;
    $("#rb-next").disabled = !reader || (at === pages.length - 1 && reader.finished);
  }
  $("#rb-decode").addEventListener("change", show);

  function browseStatus(note = "") {
    const page = pages[at];
    const n = page ? page.recs.length : 0;
    const k = reader.shards.length;
    const range = n ? ` (${page.first + 1}–${page.first + n})` : "";
    $("#rb-status").textContent = `${n} record(s)${range} ${k > 1 ? `merged from ${k} shards` : `from ${reader.shards[0].id}`}` +
      (reader.filter.active ? ` matching ${reader.filter.describe}` : "") +
      `; ${reader.scanned} scanned in ${reader.calls} GetRecords call(s); ${reader.behind} ms behind latest` +
      (reader.stopped ? `; stopped after ${READ_SCAN_MAX} records or ${READ_CALLS_MAX} calls without a full page: Next page searches on` : "") +
      (reader.finished && at === pages.length - 1 ? (k > 1 ? "; every shard is closed and fully read" : "; the shard is closed and fully read") : "") + note;
  }

  async function nextPage() {
    if (at < pages.length - 1) { at++; show(); browseStatus(); return; }
    const first = pages.length ? pages[pages.length - 1].first + pages[pages.length - 1].recs.length : 0;
    const recs = await reader.next(PAGE_RECORDS_MAX);
    if (view !== state.view || !reader) return;
    if (!recs.length && pages.length) {
      show();
      browseStatus(reader.stopped ? "" : "; no newer records yet");
      return;
    }
    pages.push({ recs, first });
    if (pages.length > PAGES_KEPT_MAX) pages.shift();
    at = pages.length - 1;
    show();
    browseStatus();
  }

  function stopTail() {
    if (!tail) return;
    tail.stop();
    tail = null;
    tailRows = [];
    $("#rb-tail").textContent = "Live tail";
    $("#rb-tail").classList.remove("on");
    $("#rb-pause").hidden = true;
    $("#rb-status").removeAttribute("data-live");
  }
  state.cleanups.push(stopTail);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    stopTail();
    try {
      const filter = filterOf();
      flash("");
      const ids = form.shard.value ? [form.shard.value] : shardList.map((s) => s.ShardId);
      if (!ids.length) shardList = await listShards(name);
      const arg = form.arg.value.trim();
      const start = { type: form.type.value, arg };
      if (start.type === "AT_TIMESTAMP") {
        start.arg = /^\d+(\.\d+)?$/.test(arg) ? Number(arg) : Date.parse(arg) / 1000;
        if (!isFinite(start.arg)) throw new Error(`Timestamp "${arg}": give an ISO 8601 time (2026-11-26T01:00:00Z) or epoch seconds`);
      }
      reader = new MergedReader(name, ids.length ? ids : shardList.map((s) => s.ShardId), start, filter);
      pages = [];
      at = -1;
      $("#rb-status").textContent = "Reading…";
      await nextPage();
    } catch (e) { handleError(e); }
  });
  $("#rb-next").addEventListener("click", async () => { try { await nextPage(); } catch (e) { handleError(e); } });
  $("#rb-prev").addEventListener("click", () => { if (at > 0) { at--; show(); browseStatus(); } });

  function tailStatus() {
    const shown = tailRows.length;
    const s = $("#rb-status");
    s.textContent = `Live tail of ${tail.shards.size} open shard(s)${tail.paused ? " (paused)" : ""}: ${tail.received} record(s) received since it started` +
      (tail.filter.active ? `, showing those where ${tail.filter.describe}` : "") +
      `; ${shown} shown (newest first)` + (tailDropped ? `, ${tailDropped} older ones dropped (the page keeps ${TAIL_ROWS_MAX})` : "");
  }
  $("#rb-tail").addEventListener("click", async () => {
    if (tail) { stopTail(); show(); $("#rb-status").textContent = "Live tail stopped."; return; }
    let filter;
    try { filter = filterOf(); } catch (e) { handleError(e); return; }
    flash("");
    reader = null;
    pages = [];
    at = -1;
    tailRows = [];
    tailDropped = 0;
    const t = new Tail(name, filter, (batch) => {
      if (tail !== t) return;
      if (batch.length) {
        // Newest first; a batch may hold records older than the newest shown (another shard).
        tailRows = batch.reverse().concat(tailRows).sort((a, b) => (before(a, b) ? 1 : -1));
        if (tailRows.length > TAIL_ROWS_MAX) {
          tailDropped += tailRows.length - TAIL_ROWS_MAX;
          tailRows.length = TAIL_ROWS_MAX;
        }
        show();
      }
      tailStatus();
    });
    tail = t;
    $("#rb-tail").textContent = "Stop tail";
    $("#rb-tail").classList.add("on");
    $("#rb-pause").hidden = false;
    $("#rb-pause").textContent = "Pause";
    $("#rb-prev").disabled = $("#rb-next").disabled = true;
    $("#rb-status").textContent = "Starting the live tail…";
    show();
    try {
      await t.start();
      if (tail !== t) return;
      tailStatus();
      $("#rb-status").dataset.live = "1";
    } catch (e) { stopTail(); handleError(e); }
  });
  $("#rb-pause").addEventListener("click", () => {
    if (!tail) return;
    if (tail.paused) { tail.resume(); $("#rb-pause").textContent = "Pause"; }
    else { tail.pause(); $("#rb-pause").textContent = "Resume"; }
    tailStatus();
  });
  // Changing a filter during the tail applies to the records still to come.
  form.addEventListener("change", (ev) => {
    if (!tail || !["pk", "pkMode", "text", "json"].includes(ev.target.name)) return;
    try { tail.filter = filterOf(); tailStatus(); } catch (e) { handleError(e); }
  });

  $("#put").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const data = b64FromBytes(new TextEncoder().encode($("#put-data").value));
      const r = await api("PutRecord", { StreamName: name, PartitionKey: $("#put-pk").value, Data: data });
      $("#put-result").textContent = `Stored in ${r.ShardId} at sequence number ${r.SequenceNumber}`;
      $("#put-result").dataset.shard = r.ShardId;
      $("#put-result").dataset.sequence = r.SequenceNumber;
    } catch (e) { handleError(e); }
  });
}

// ---------- start ----------
async function start() {
  const resp = await fetch("/console/config.json", { cache: "no-store" });
  if (!resp.ok) {
    $("#app").innerHTML = `<p class="muted">The server is starting (recovering its data); reload in a moment.</p>`;
    return;
  }
  state.config = await resp.json();
  if (state.config.credentials_required) {
    try { state.creds = JSON.parse(sessionStorage.getItem("kinesin.creds")); } catch { state.creds = null; }
  } else {
    // Any well-formed signature is accepted without a credentials file.
    state.creds = { accessKeyId: "console", secretAccessKey: "console" };
  }
  $("#logout").addEventListener("click", () => signOut());
  showWho();
  sampler.kick();
  window.addEventListener("hashchange", route);
  route();
}

start().catch((e) => flash(e.message || String(e), true));
