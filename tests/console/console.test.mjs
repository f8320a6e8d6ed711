// The web console (/console) driven in headless Chromium against the real binary: create a
// stream, put a record and read it back (text, JSON, hex), see the throughput chart move under
// load from `kinesin bench`, split a shard and see the lineage in the shard map; records of all
// shards merged in arrival order, filtered (partition key, data substring, JSON field), a live
// tail, consumer lag, an hour of chart history; and with `--credentials`, see that nothing is
// usable before signing in with the right key.
//
// Env: KINESIN_BIN (default ../../target/release/kinesin), CHROMIUM (default /usr/bin/chromium).
// Screenshots go to artifacts/ (gitignored).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.KINESIN_BIN || resolve(HERE, "../../target/release/kinesin");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = join(HERE, "artifacts");
const STREAM = "console-orders";
mkdirSync(ARTIFACTS, { recursive: true });

const children = [];
let browser;

async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function run(args, name) {
  const child = spawn(BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-8000); });
  child.on("exit", (code, sig) => { if (code && !child.expectedExit) console.error(`${name} exited ${code ?? sig}:\n${stderr}`); });
  children.push(child);
  return child;
}

async function startServer(extra = []) {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = run(["serve", "--ephemeral", "--create-stream-ms", "0", "--delete-stream-ms", "0",
    "--update-stream-ms", "0", "--listen", `127.0.0.1:${port}`, ...extra], "kinesin serve");
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${endpoint}/health/ready`)).ok) return { endpoint, child };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`kinesin did not become ready on ${endpoint}`);
}

function stop(child) {
  if (child.exitCode === null && child.signalCode === null) {
    child.expectedExit = true;
    child.kill("SIGTERM");
  }
}

async function newPage() {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("dialog", (d) => d.accept());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.errors = errors;
  return page;
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

let server;
let page;

before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  server = await startServer();
  page = await newPage();
});

after(async () => {
  await browser?.close();
  children.forEach(stop);
});

test("console is served from the binary", async () => {
  const r = await fetch(`${server.endpoint}/console`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /text\/html/);
  const cfg = await (await fetch(`${server.endpoint}/console/config.json`)).json();
  assert.deepEqual(cfg, { region: "us-east-1", credentials_required: false });
});

test("create a stream through the UI", async () => {
  await page.goto(`${server.endpoint}/console`);
  await page.fill("#create-stream input[name=name]", STREAM);
  await page.fill("#create-stream input[name=shards]", "2");
  await page.click("#create-stream button[type=submit]");
  const row = page.locator(`tr[data-stream="${STREAM}"]`);
  await row.locator(".badge.ACTIVE").waitFor({ timeout: 15000 });
  assert.match(await row.innerText(), /PROVISIONED/);
  assert.match(await row.innerText(), /\b2\b/);
  await shot(page, "01-streams");
  assert.deepEqual(page.errors, []);
});

test("put a record in the record browser and read it back as text, JSON and hex", async () => {
  await page.click(`tr[data-stream="${STREAM}"] a`);
  await page.click("text=Record browser");
  const payload = '{"order":42,"item":"kayak","note":"héllo"}';
  await page.fill("#put-pk", "customer-7");
  await page.fill("#put-data", payload);
  await page.click("#put-go");
  const result = page.locator("#put-result[data-shard]");
  await result.waitFor({ timeout: 10000 });
  const shard = await result.getAttribute("data-shard");
  const seq = await result.getAttribute("data-sequence");
  await page.waitForFunction((s) => [...document.querySelectorAll("#rb-shard option")].some((o) => o.value === s), shard);
  await page.selectOption("#rb-shard", shard);
  await page.selectOption("#rb-type", "TRIM_HORIZON");
  await page.click("#rb-fetch");
  const cell = page.locator("#rb-rows td.data").first();
  await cell.waitFor({ timeout: 10000 });
  assert.equal(await cell.innerText(), payload);
  assert.match(await page.locator("#rb-rows").innerText(), /customer-7/);
  assert.match(await page.locator("#rb-rows").innerText(), new RegExp(seq));

  await page.selectOption("#rb-decode", "json");
  assert.equal(await cell.innerText(), JSON.stringify(JSON.parse(payload), null, 2));
  await shot(page, "02-records-json");
  await page.selectOption("#rb-decode", "hex");
  assert.match(await cell.innerText(), /^000000 {2}7b 22 6f 72 64 65 72 22/);

  // AT_SEQUENCE_NUMBER finds the same record; AFTER_SEQUENCE_NUMBER does not.
  await page.selectOption("#rb-decode", "text");
  await page.selectOption("#rb-type", "AT_SEQUENCE_NUMBER");
  await page.fill("#rb-arg", seq);
  await page.click("#rb-fetch");
  await page.waitForFunction(() => /1 record/.test(document.querySelector("#rb-status").textContent));
  assert.equal(await cell.innerText(), payload);
  await page.selectOption("#rb-type", "AFTER_SEQUENCE_NUMBER");
  await page.click("#rb-fetch");
  await page.waitForFunction(() => /^0 record/.test(document.querySelector("#rb-status").textContent));
  // AT_TIMESTAMP (epoch seconds) a minute back finds it again.
  await page.selectOption("#rb-type", "AT_TIMESTAMP");
  await page.fill("#rb-arg", String(Math.floor(Date.now() / 1000) - 60));
  await page.click("#rb-fetch");
  await page.waitForFunction(() => /^1 record/.test(document.querySelector("#rb-status").textContent));
  assert.equal(await cell.innerText(), payload);
  assert.deepEqual(page.errors, []);
});

test("load from kinesin bench moves the throughput figures and charts", async () => {
  await page.click("text=Overview");
  await page.locator("#rate-in-records").waitFor({ timeout: 10000 });
  const bench = run(["bench", "--endpoint", server.endpoint, "--workload", "put-1k", "--duration", "6s",
    "--stream", STREAM, "--connections", "2"], "kinesin bench");
  try {
    await page.waitForFunction(() => Number(document.querySelector("#rate-in-records")?.dataset.value) > 0 &&
      Number(document.querySelector("#rate-in-bytes")?.dataset.value) > 0, null, { timeout: 20000 });
    // The chart has a line that left the baseline.
    const moved = await page.evaluate(() => [...document.querySelectorAll("#chart-records path")]
      .some((l) => [...l.getAttribute("d").matchAll(/[ML][\d.]+,([\d.]+)/g)].some((m) => Number(m[1]) < 100)));
    assert.ok(moved, "the records chart should show a non-zero point");
    await page.waitForTimeout(1500);
    await shot(page, "03-stream-load");
  } finally {
    stop(bench);
  }
  // The stream list shows a rate too (it diffs two scrapes 2 s apart).
  assert.deepEqual(page.errors, []);
});

test("split a shard and see the lineage in the shard map", async () => {
  const parent = "shardId-000000000000";
  await page.locator(`#shardmap g.shard[data-shard-id="${parent}"][data-state="OPEN"]`).waitFor({ timeout: 10000 });
  await page.selectOption("#split-shard", parent);
  const key = await page.inputValue("#split-key");
  assert.equal(key, ((2n ** 128n / 2n - 1n + 1n) / 2n).toString(), "midpoint of shard 0's range by default");
  await page.click("#split-go");
  await page.locator(`#shardmap g.shard[data-shard-id="${parent}"][data-state="CLOSED"]`).waitFor({ timeout: 15000 });
  await page.waitForFunction((p) => [...document.querySelectorAll("#shardmap g.shard[data-state=OPEN]")]
    .filter((g) => g.dataset.parents.split(" ").includes(p)).length === 2, parent, { timeout: 15000 });
  const edges = await page.locator(`#shardmap path.edge[data-from="${parent}"]`).count();
  assert.equal(edges, 2);
  assert.match(await page.locator("#summary").innerText(), /Open shards\s*3/);
  await shot(page, "04-shard-map-split");
  await page.emulateMedia({ colorScheme: "dark" });
  await shot(page, "04-shard-map-split-dark");
  await page.emulateMedia({ colorScheme: "light" });

  // Merge the two children back through the form (they are adjacent).
  const children = await page.$$eval(`#shardmap g.shard[data-parents~="${parent}"]`, (gs) => gs.map((g) => g.dataset.shardId));
  await page.selectOption("#merge-shard", children[0]);
  await page.waitForFunction(() => !document.querySelector("#merge-go").disabled);
  assert.equal(await page.inputValue("#merge-adjacent"), children[1]);
  await page.click("#merge-go");
  await page.waitForFunction((p) => [...document.querySelectorAll("#shardmap g.shard")]
    .some((g) => g.dataset.state === "OPEN" && g.dataset.parents.split(" ").length === 2), parent, { timeout: 15000 });
  assert.deepEqual(page.errors, []);
});

// ---- record browser across shards, filters, live tail, consumer lag, chart history ----
const MERGED = "console-merged";
const HALF = (2n ** 127n).toString(); // first hash key of shard 1 of 2

// Calls the API from the page (signed by the page's own SigV4).
const call = (p, op, body) => p.evaluate(([op, body]) => api(op, body), [op, body]);
// The decoded `n` of every row shown, in order.
const shownNs = (p) => p.$$eval("#rb-rows td.data pre", (cells) => cells.map((c) => JSON.parse(c.textContent).n));
const shownShards = (p) => p.$$eval("#rb-rows tr[data-shard]", (rows) => rows.map((r) => r.dataset.shard));
async function readWith(p, filters) {
  for (const [sel, v] of Object.entries({ "#f-pk": "", "#f-text": "", "#f-json": "", ...filters })) {
    if (sel === "#f-pk-mode") await p.selectOption(sel, v);
    else await p.fill(sel, v);
  }
  await p.evaluate(() => { document.querySelector("#rb-status").textContent = ""; });
  await p.click("#rb-fetch");
  await p.waitForFunction(() => /record\(s\)/.test(document.querySelector("#rb-status").textContent));
  return shownNs(p);
}

test("records of all shards merged in arrival order, 25 a page", async () => {
  await call(page, "CreateStream", { StreamName: MERGED, ShardCount: 2 });
  // 30 records alternating between the two shards, one after the other (distinct arrival ms).
  await page.evaluate(async ([name, half]) => {
    for (let n = 0; n < 30; n++) {
      const doc = { n, user: { id: n % 5 }, tags: [n % 2 ? "odd" : "even"], note: n === 17 ? "a needle here" : "hay" };
      await api("PutRecord", { StreamName: name, PartitionKey: `order-${n}`, ExplicitHashKey: n % 2 ? half : "0",
        Data: btoa(JSON.stringify(doc)) });
      const ms = Date.now();
      while (Date.now() === ms) await new Promise((r) => setTimeout(r, 1));
    }
  }, [MERGED, HALF]);
  await page.goto(`${server.endpoint}/console#/stream/${MERGED}/records`);
  await page.waitForFunction(() => /merged, 2/.test(document.querySelector("#rb-shard option").textContent));
  assert.equal(await page.inputValue("#rb-shard"), "", "all shards by default");
  await page.click("#rb-fetch");
  await page.waitForFunction(() => /^25 record\(s\)/.test(document.querySelector("#rb-status").textContent));
  assert.deepEqual(await shownNs(page), Array.from({ length: 25 }, (_, i) => i));
  const shards = await shownShards(page);
  assert.deepEqual(shards.slice(0, 4), ["shardId-000000000000", "shardId-000000000001", "shardId-000000000000", "shardId-000000000001"]);
  assert.match(await page.locator("#rb-status").textContent(), /\(1–25\) merged from 2 shards/);
  await shot(page, "07-records-merged");
  await page.emulateMedia({ colorScheme: "dark" });
  await shot(page, "07-records-merged-dark");
  await page.emulateMedia({ colorScheme: "light" });

  await page.click("#rb-next");
  await page.waitForFunction(() => /^5 record\(s\) \(26–30\)/.test(document.querySelector("#rb-status").textContent));
  assert.deepEqual(await shownNs(page), [25, 26, 27, 28, 29]);
  await page.click("#rb-prev");
  await page.waitForFunction(() => /^25 record\(s\) \(1–25\)/.test(document.querySelector("#rb-status").textContent));
  assert.equal((await shownNs(page))[0], 0);
  // From a timestamp, merged too: a minute back finds all 30.
  await page.selectOption("#rb-type", "AT_TIMESTAMP");
  await page.fill("#rb-arg", String(Math.floor(Date.now() / 1000) - 60));
  assert.equal((await readWith(page, {})).length, 25);
  await page.selectOption("#rb-type", "TRIM_HORIZON");
  // Sequence-number starting points need one shard.
  assert.equal(await page.$eval("#rb-type", (sel) => [...sel.options].find((o) => o.value === "AT_SEQUENCE_NUMBER").disabled), true);
  assert.deepEqual(page.errors, []);
});

test("filters by partition key, data substring and JSON field over the merged view", async () => {
  assert.deepEqual(await readWith(page, { "#f-pk-mode": "exact", "#f-pk": "order-7" }), [7]);
  assert.match(await page.locator("#rb-status").textContent(), /matching partition key is "order-7"/);
  assert.deepEqual(await readWith(page, { "#f-pk-mode": "prefix", "#f-pk": "order-1" }), [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  await shot(page, "08-records-filter-prefix");
  await page.selectOption("#f-pk-mode", "exact");
  assert.deepEqual(await readWith(page, { "#f-text": "needle" }), [17]);
  assert.deepEqual(await readWith(page, { "#f-json": "user.id = 3" }), [3, 8, 13, 18, 23, 28]);
  assert.deepEqual(await readWith(page, { "#f-json": 'tags[0] = "odd"', "#f-text": "hay" }).then((ns) => ns.slice(0, 3)), [1, 3, 5]);
  assert.deepEqual(await readWith(page, { "#f-json": "$.note ~ needle" }), [17]);
  assert.deepEqual(await readWith(page, { "#f-json": "user.id != 0", "#f-pk-mode": "prefix", "#f-pk": "order-2" }), [2, 21, 22, 23, 24, 26, 27, 28, 29]);
  assert.deepEqual(await readWith(page, { "#f-json": "missing.field" }), []);
  assert.match(await page.locator("#rb-status").textContent(), /^0 record\(s\).*matching JSON missing\.field/);
  await shot(page, "09-records-filter-json");
  // A malformed expression says how to write one.
  await page.fill("#f-json", "= 3");
  await page.click("#rb-fetch");
  await page.waitForFunction(() => /JSON field filter "= 3": write a path/.test(document.querySelector("#flash").textContent));
  await page.fill("#f-json", "");
  assert.deepEqual(page.errors, []);
});

test("live tail shows records put after it started, pauses and keeps a bounded list", async () => {
  await page.click("#rb-tail");
  await page.locator("#rb-status[data-live]").waitFor({ timeout: 10000 });
  assert.match(await page.locator("#rb-rows").innerText(), /Waiting for records/);
  await page.fill("#put-pk", "tail-1");
  await page.fill("#put-data", '{"n":100}');
  await page.click("#put-go");
  await page.locator('#rb-rows td.pk:text-is("tail-1")').waitFor({ timeout: 10000 });
  assert.deepEqual(await shownNs(page), [100]);
  await shot(page, "10-live-tail");

  // Paused: nothing is read (two poll intervals with no GetRecords call)...
  await page.click("#rb-pause");
  await page.waitForFunction(() => /\(paused\)/.test(document.querySelector("#rb-status").textContent));
  let reads = 0;
  const count = (req) => { if (/GetRecords/.test(req.headers()["x-amz-target"] || "")) reads++; };
  page.on("request", count);
  await call(page, "PutRecord", { StreamName: MERGED, PartitionKey: "tail-2", ExplicitHashKey: HALF, Data: btoa('{"n":101}') });
  await page.waitForTimeout(2500);
  page.off("request", count);
  assert.equal(reads, 0, "a paused tail makes no GetRecords calls");
  assert.deepEqual(await shownNs(page), [100]);
  // ...and on resuming, what was put meanwhile comes (newest first).
  await page.click("#rb-pause");
  await page.locator('#rb-rows td.pk:text-is("tail-2")').waitFor({ timeout: 10000 });
  assert.deepEqual(await shownNs(page), [101, 100]);

  // A filter applies to what comes next; the list keeps the newest 200 only.
  await page.fill("#f-pk", "bulk-");
  await page.selectOption("#f-pk-mode", "prefix");
  await page.locator("#f-pk").dispatchEvent("change");
  await page.evaluate(async ([name, half]) => {
    for (let i = 0; i < 250; i += 50) {
      const records = Array.from({ length: 50 }, (_, j) => ({ PartitionKey: `bulk-${i + j}`, ExplicitHashKey: j % 2 ? half : "0", Data: btoa(JSON.stringify({ n: 1000 + i + j })) }));
      records.push({ PartitionKey: "other", Data: btoa('{"n":-1}') });
      await api("PutRecords", { StreamName: name, Records: records });
    }
  }, [MERGED, HALF]);
  // 2 shown before + 250 matching = 52 dropped.
  await page.waitForFunction(() => /52 older ones dropped \(the page keeps 200\)/.test(document.querySelector("#rb-status").textContent), null, { timeout: 15000 });
  const ns = await shownNs(page);
  assert.equal(ns.length, 200);
  assert.deepEqual([...ns].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => 1050 + i), "only bulk records, the newest 200");
  await page.click("#rb-tail");
  await page.waitForFunction(() => /Live tail stopped/.test(document.querySelector("#rb-status").textContent));
  await page.fill("#f-pk", "");
  assert.deepEqual(page.errors, []);
});

test("consumer lag: MillisBehindLatest per enhanced fan-out consumer", async () => {
  await page.click("text=Overview");
  await page.fill("#register input[name=consumer]", "billing");
  await page.click("#register button[type=submit]");
  await page.fill("#register input[name=consumer]", "idle");
  await page.click("#register button[type=submit]");
  await page.locator('#consumers tr[data-consumer="idle"]').waitFor({ timeout: 10000 });
  assert.match(await page.locator('#consumers tr[data-consumer="billing"] td.lag').innerText(), /no live subscription/);
  // A subscription for billing on shard 1, from the oldest record, held open by the page.
  await page.evaluate(async (name) => {
    const summary = (await api("DescribeStreamSummary", { StreamName: name })).StreamDescriptionSummary;
    const consumer = (await api("DescribeStreamConsumer", { StreamARN: summary.StreamARN, ConsumerName: "billing" })).ConsumerDescription;
    const body = JSON.stringify({ ConsumerARN: consumer.ConsumerARN, ShardId: "shardId-000000000001", StartingPosition: { Type: "TRIM_HORIZON" } });
    const headers = SigV4.sign({ host: location.host, region: state.config.region, service: "kinesis", creds: state.creds,
      headers: { "X-Amz-Target": "Kinesis_20131202.SubscribeToShard" }, body });
    headers["Content-Type"] = "application/x-amz-json-1.1";
    const resp = await fetch("/", { method: "POST", headers, body });
    if (!resp.ok) throw new Error(`SubscribeToShard answered ${resp.status}: ${await resp.text()}`);
    window.subscription = resp.body.getReader();
    await window.subscription.read();
  }, MERGED);
  const lag = page.locator('#consumers tr[data-consumer="billing"] td.lag[data-shards="1"]');
  await lag.waitFor({ timeout: 10000 });
  const ms = Number(await lag.getAttribute("data-lag-ms"));
  assert.ok(ms >= 0, `lag ${ms}`);
  assert.match(await lag.innerText(), /\d+ ms\s+1 shard subscribed/);
  assert.match(await lag.getAttribute("title"), /shardId-000000000001: \d+ ms/);
  // The same figure /metrics gives, per consumer and shard.
  const metrics = await (await fetch(`${server.endpoint}/metrics`)).text();
  assert.match(metrics, new RegExp(`kinesin_subscription_millis_behind_latest\\{stream_name="${MERGED}",consumer_name="billing",shard_id="shardId-000000000001"\\} \\d+`));
  assert.doesNotMatch(metrics, /consumer_name="idle"/);
  assert.match(await page.locator('#consumers tr[data-consumer="idle"] td.lag').innerText(), /no live subscription/);
  await page.waitForFunction(() => /Polling readers \(GetRecords\)/.test(document.querySelector("#polling-lag").textContent));
  await page.locator("#consumers").scrollIntoViewIfNeeded();
  await shot(page, "11-consumer-lag");
  await page.evaluate(() => window.subscription.cancel());
  assert.deepEqual(page.errors, []);
});

test("charts keep an hour of history (5-second buckets, bounded)", async () => {
  const p = await newPage();
  try {
    // The page's clock is Playwright's: time flows, and fastForward jumps it as a sleeping
    // laptop would, firing each due timer once.
    await p.clock.install();
    await p.goto(`${server.endpoint}/console#/stream/${MERGED}`);
    await p.locator("#rate-in-records").waitFor({ timeout: 10000 });
    await p.click('#chart-range button[data-range="60"]');
    // Some records, seen by a scrape: a bump in the records chart.
    await call(p, "PutRecords", { StreamName: MERGED, Records: Array.from({ length: 100 }, (_, i) => ({ PartitionKey: `h${i}`, Data: btoa("x") })) });
    const attr = (a) => p.$eval("#chart-records svg", (svg, a) => Number(svg.getAttribute(a)), a);
    // Lowest y of the "in" line (the baseline is y = 106; higher values draw lower).
    const peak = () => p.$eval("#chart-records svg path", (path) =>
      Math.min(...[...path.getAttribute("d").matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]))));
    await p.waitForFunction(() => Number(document.querySelector("#rate-in-records")?.dataset.value) > 0, null, { timeout: 10000 });
    await p.waitForFunction(() => Number(document.querySelector("#rate-in-records")?.dataset.value) === 0, null, { timeout: 10000 });
    assert.ok((await peak()) < 100, "the bump is drawn");
    assert.ok((await attr("data-capacity-s")) >= 3600, "the ring holds an hour or more");
    const scrapes = () => p.evaluate(() => sampler.last.t);
    const jump = async (ms) => {
      const t0 = await scrapes();
      await p.clock.fastForward(ms);
      await p.waitForFunction((t) => sampler.last.t > t, t0, { timeout: 10000 });
      await p.waitForFunction(() => Number(document.querySelector("#chart-records svg")?.getAttribute("data-oldest-s")) > 0);
    };
    await jump(30 * 60000);
    assert.ok((await attr("data-oldest-s")) >= 30 * 60, "30 minutes later the first samples are still held");
    await jump(27 * 60000);
    assert.ok((await attr("data-oldest-s")) >= 57 * 60);
    assert.ok((await peak()) < 100, "57 minutes later the bump is still drawn in the hour view");
    assert.ok((await attr("data-points")) > 600, "the hour view is drawn from the ring's buckets");
    await shot(p, "12-chart-hour");
    await p.emulateMedia({ colorScheme: "dark" });
    await shot(p, "12-chart-hour-dark");
    // Bounded: 15 minutes more and the oldest samples are gone; the ring never exceeds 65 min.
    await jump(15 * 60000);
    assert.ok((await attr("data-oldest-s")) <= 65 * 60, `oldest ${await attr("data-oldest-s")} s`);
    assert.ok((await attr("data-held")) <= 780);
    assert.ok((await peak()) > 100, "the bump has left the hour view");
    assert.deepEqual(p.errors, []);
  } finally {
    await p.close();
  }
});

test("delete the stream from the list", async () => {
  await page.click("text=Streams");
  await page.click(`tr[data-stream="${STREAM}"] button[data-delete]`);
  await page.locator(`tr[data-stream="${STREAM}"]`).waitFor({ state: "detached", timeout: 15000 });
});

test("with --credentials the console needs a sign-in with a valid key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kinesin-console-"));
  const file = join(dir, "credentials.toml");
  writeFileSync(file, `[[principal]]\narn = "arn:aws:iam::000000000000:user/ops"\naccess_key_id = "AKIAOPS"\nsecret_access_key = "ops-secret"\n`);
  const secured = await startServer(["--credentials", file]);
  const p = await newPage();
  try {
    await p.goto(`${secured.endpoint}/console`);
    await p.locator("#login").waitFor();
    assert.equal(await p.locator("#streams").count(), 0);
    // Even a hand-made request from the page is refused without the secret.
    const status = await p.evaluate(async () => {
      const body = "{}";
      const headers = SigV4.sign({ host: location.host, region: "us-east-1", service: "kinesis",
        creds: { accessKeyId: "AKIAOPS", secretAccessKey: "guess" }, headers: { "X-Amz-Target": "Kinesis_20131202.ListStreams" }, body });
      headers["Content-Type"] = "application/x-amz-json-1.1";
      return (await fetch("/", { method: "POST", headers, body })).status;
    });
    assert.equal(status, 400);

    await p.fill("#login input[name=accessKeyId]", "AKIAOPS");
    await p.fill("#login input[name=secretAccessKey]", "wrong");
    await p.click("#login button[type=submit]");
    await p.waitForFunction(() => /Sign-in failed: InvalidSignatureException/.test(document.querySelector("#flash").textContent));
    assert.equal(await p.locator("#streams").count(), 0);
    await shot(p, "05-login-refused");

    await p.fill("#login input[name=secretAccessKey]", "ops-secret");
    await p.click("#login button[type=submit]");
    await p.locator("#streams").waitFor({ timeout: 10000 });
    assert.match(await p.locator("#whoami").innerText(), /AKIAOPS/);
    await p.fill("#create-stream input[name=name]", "secured");
    await p.click("#create-stream button[type=submit]");
    await p.locator('tr[data-stream="secured"] .badge.ACTIVE').waitFor({ timeout: 15000 });
    await shot(p, "06-signed-in");

    await p.click("#logout");
    await p.locator("#login").waitFor();
    assert.deepEqual(p.errors, []);
  } finally {
    await p.close();
    stop(secured.child);
  }
});
