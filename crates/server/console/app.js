// kinesin web console: a single page over the ordinary Kinesis JSON API (POST /, signed with
// SigV4 in the browser by sigv4.js) and the Prometheus text at /metrics. No framework, no build.
"use strict";

const HISTORY_POINTS_MAX = 90; // chart samples kept (one per second: 1.5 minutes)
const STREAMS_LISTED_MAX = 200; // streams the list page describes
const PAGE_RECORDS_MAX = 25; // records per GetRecords page in the record browser
const HASH_SPACE = 1n << 128n;
const AUTH_ERRORS = new Set([
  "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignature",
  "MissingAuthenticationTokenException", "MissingAuthenticationToken", "ExpiredTokenException",
  "AccessDeniedException",
]);

const state = { config: null, creds: null, timers: [], view: 0 };

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
const fmtTime = (secs) => secs ? new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";

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
// Stream-level series (no shard_id label) as {metric: {stream: value}}.
async function scrape() {
  const resp = await fetch("/metrics", { cache: "no-store" });
  if (!resp.ok) throw new Error(`/metrics answered ${resp.status}`);
  const text = await resp.text();
  const out = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("kinesis_")) continue;
    const m = /^(\w+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    if (labels.shard_id || !labels.stream_name) continue;
    (out[m[1]] ||= {})[labels.stream_name] = Number(m[3]);
  }
  return { at: performance.now(), values: out };
}

const RATE_SERIES = {
  inBytes: ["kinesis_incoming_bytes_total"],
  inRecords: ["kinesis_incoming_records_total"],
  outBytes: ["kinesis_get_records_bytes_total", "kinesis_subscribe_to_shard_event_bytes_total"],
  outRecords: ["kinesis_get_records_records_total", "kinesis_subscribe_to_shard_event_records_total"],
  writeThrottled: ["kinesis_write_provisioned_throughput_exceeded_total"],
  readThrottled: ["kinesis_read_provisioned_throughput_exceeded_total"],
};

// Per-second rates of `stream` between two scrapes (a counter reset counts as 0).
function rates(prev, cur, stream) {
  const dt = (cur.at - prev.at) / 1000;
  const out = {};
  for (const [k, names] of Object.entries(RATE_SERIES)) {
    let d = 0;
    for (const n of names) {
      const a = prev.values[n]?.[stream], b = cur.values[n]?.[stream];
      if (a !== undefined && b !== undefined && b >= a) d += b - a;
    }
    out[k] = dt > 0 ? d / dt : 0;
  }
  return out;
}

// ---------- routing ----------
function route() {
  state.view++;
  state.timers.forEach(clearInterval);
  state.timers = [];
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
  let prev = null;
  const view = state.view;
  async function refresh() {
    const [summaries, sample] = await Promise.all([
      listAll("ListStreams", {}, "StreamSummaries", STREAMS_LISTED_MAX),
      scrape().catch(() => null),
    ]);
    const described = await Promise.all(summaries.slice(0, STREAMS_LISTED_MAX).map((s) =>
      api("DescribeStreamSummary", { StreamName: s.StreamName }).then((r) => r.StreamDescriptionSummary, () => null)));
    if (view !== state.view) return;
    const rows = summaries.map((s, i) => {
      const d = described[i] || {};
      const r = prev && sample ? rates(prev, sample, s.StreamName) : null;
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
    if (sample) prev = sample;
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
    <h2>Throughput <span class="muted">(per second, from /metrics)</span></h2>
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
    <section class="panel"><h2>Consumers</h2><div id="consumers"></div>
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
    $("#consumers").innerHTML = consumers.length ? `<table><tr><th>Name</th><th>Status</th><th>Created</th></tr>${consumers.map((c) =>
      `<tr><td class="mono">${esc(c.ConsumerName)}</td><td><span class="badge ${esc(c.ConsumerStatus)}">${esc(c.ConsumerStatus)}</span></td><td>${esc(fmtTime(c.ConsumerCreationTimestamp))}</td></tr>`).join("")}</table>`
      : `<p class="muted">No registered (enhanced fan-out) consumers.</p>`;
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

  // Throughput: one scrape a second, rates by difference, charts of the last HISTORY_POINTS_MAX.
  const history = [];
  let prev = null;
  every(1000, async () => {
    const cur = await scrape();
    if (prev) {
      history.push(rates(prev, cur, name));
      if (history.length > HISTORY_POINTS_MAX) history.shift();
      drawRates();
    }
    prev = cur;
  });
  function drawRates() {
    const r = history[history.length - 1];
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
    chart($("#chart-bytes"), "bytes/s", [["in", "inBytes", "--c1"], ["out", "outBytes", "--c2"]], fmtBytes);
    chart($("#chart-records"), "records/s", [["in", "inRecords", "--c1"], ["out", "outRecords", "--c2"]], fmtNum);
    chart($("#chart-throttle"), "throttled/s", [["write (records)", "writeThrottled", "--c3"], ["read (calls)", "readThrottled", "--c2"]], fmtNum);
  }
  function chart(el, title, series, fmt) {
    // Drawn at the element's pixel width so that text is not stretched.
    const W = Math.max(300, el.clientWidth || 600), H = 120, L = 56, B = 14;
    const max = Math.max(1, ...history.flatMap((p) => series.map(([, k]) => p[k])));
    const x = (i) => L + (i + HISTORY_POINTS_MAX - history.length) * (W - L) / (HISTORY_POINTS_MAX - 1);
    const y = (v) => (H - B) - v / max * (H - B - 6);
    const lines = series.map(([, k, c]) =>
      `<polyline fill="none" stroke="var(${c})" stroke-width="1.6" points="${history.map((p, i) => `${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join(" ")}"/>`).join("");
    el.innerHTML = `<div class="legend"><b>${esc(title)}</b>${series.map(([l, , c]) => `<span><i style="background:var(${c})"></i>${esc(l)}</span>`).join("")}</div>
      <svg viewBox="0 0 ${W} ${H}">
        <line x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}" stroke="var(--line)"/>
        <line x1="${L}" y1="6" x2="${W}" y2="6" stroke="var(--line)" stroke-dasharray="3 3"/>
        <text x="${L - 4}" y="12" text-anchor="end">${esc(fmt(max))}</text>
        <text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>
        <text x="${L}" y="${H - 2}">−${HISTORY_POINTS_MAX}s</text><text x="${W}" y="${H - 2}" text-anchor="end">now</text>
        ${lines}</svg>`;
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
function decode(b64, how) {
  const bytes = bytesFromB64(b64);
  if (how === "hex") {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const chunk = bytes.subarray(i, i + 16);
      lines.push(i.toString(16).padStart(6, "0") + "  " + Array.from(chunk, (b) => b.toString(16).padStart(2, "0")).join(" ").padEnd(48) +
        "  " + Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join(""));
    }
    return lines.join("\n");
  }
  const text = new TextDecoder("utf-8").decode(bytes);
  if (how === "json") {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return "(not JSON) " + text; }
  }
  return text;
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
    <h2>Read records</h2>
    <form id="browse" class="inline">
      <label>Shard <select id="rb-shard" name="shard"></select></label>
      <label>Iterator type <select id="rb-type" name="type">
        <option>TRIM_HORIZON</option><option>LATEST</option><option>AT_SEQUENCE_NUMBER</option>
        <option>AFTER_SEQUENCE_NUMBER</option><option>AT_TIMESTAMP</option></select></label>
      <label id="rb-arg-label">Sequence number / timestamp <input id="rb-arg" name="arg" class="mono" size="40" disabled></label>
      <button class="primary" type="submit" id="rb-fetch">Get records</button>
      <button type="button" id="rb-next" disabled>Next page</button>
      <label>Decode as <select id="rb-decode"><option value="text">text</option><option value="json">JSON (pretty)</option><option value="hex">hex</option></select></label>
    </form>
    <p id="rb-status" class="muted"></p>
    <table class="records"><thead><tr><th>Sequence number</th><th>Arrival</th><th>Partition key</th><th>Data</th></tr></thead>
      <tbody id="rb-rows"></tbody></table>
  </section>`;
  let iterator = null;
  let records = [];
  const form = $("#browse");
  const typeChanged = () => {
    const t = form.type.value;
    form.arg.disabled = !/SEQUENCE|TIMESTAMP/.test(t);
    form.arg.placeholder = t === "AT_TIMESTAMP" ? "2026-11-26T01:00:00Z or epoch seconds" : t.includes("SEQUENCE") ? "sequence number" : "";
  };
  form.type.addEventListener("change", typeChanged);
  typeChanged();
  listShards(name).then((shards) => {
    form.shard.innerHTML = shards.map((s) => `<option value="${esc(s.ShardId)}">${esc(s.ShardId)}${s.SequenceNumberRange.EndingSequenceNumber ? " (closed)" : ""}</option>`).join("");
  }, handleError);

  function show() {
    const how = $("#rb-decode").value;
    $("#rb-rows").innerHTML = records.map((r) => `<tr><td class="mono">${esc(r.SequenceNumber)}</td>
      <td class="mono">${esc(fmtTime(r.ApproximateArrivalTimestamp))}</td><td class="mono">${esc(r.PartitionKey)}</td>
      <td class="data"><pre>${esc(decode(r.Data, how))}</pre></td></tr>`).join("") ||
      `<tr><td colspan="4" class="muted">No records in this page.</td></tr>`;
  }
  $("#rb-decode").addEventListener("change", show);

  async function page() {
    const r = await api("GetRecords", { ShardIterator: iterator, Limit: PAGE_RECORDS_MAX });
    records = r.Records || [];
    iterator = r.NextShardIterator || null;
    $("#rb-next").disabled = !iterator;
    $("#rb-status").textContent = `${records.length} record(s); ${r.MillisBehindLatest ?? 0} ms behind latest` +
      (iterator ? "" : "; the shard is closed and fully read");
    show();
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const req = { StreamName: name, ShardId: form.shard.value, ShardIteratorType: form.type.value };
    const arg = form.arg.value.trim();
    if (form.type.value.includes("SEQUENCE")) req.StartingSequenceNumber = arg;
    if (form.type.value === "AT_TIMESTAMP") req.Timestamp = /^\d+(\.\d+)?$/.test(arg) ? Number(arg) : Date.parse(arg) / 1000;
    try {
      iterator = (await api("GetShardIterator", req)).ShardIterator;
      await page();
    } catch (e) { handleError(e); }
  });
  $("#rb-next").addEventListener("click", async () => { try { await page(); } catch (e) { handleError(e); } });
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
  window.addEventListener("hashchange", route);
  route();
}

start().catch((e) => flash(e.message || String(e), true));
