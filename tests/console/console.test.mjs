// The web console (/console) driven in headless Chromium against the real binary: create a
// stream, put a record and read it back (text, JSON, hex), see the throughput chart move under
// load from `kinesin bench`, split a shard and see the lineage in the shard map; and with
// `--credentials`, see that nothing is usable before signing in with the right key.
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
    const moved = await page.evaluate(() => [...document.querySelectorAll("#chart-records polyline")]
      .some((l) => l.getAttribute("points").split(" ").some((p) => Number(p.split(",")[1]) < 100)));
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
