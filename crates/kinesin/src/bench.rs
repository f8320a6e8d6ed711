//! `kinesin bench`: a load generator for any Kinesis JSON endpoint (kinesin or a peer).
//!
//! Each connection is one HTTP/1.1 connection owned by one task, so `--connections 16` means
//! exactly 16 sockets and at most 16 requests in flight. Request bodies are built once before the
//! clock starts and shared by reference count, so the client spends its share of the (shared)
//! cores on sockets, not on base64 and JSON. Workloads:
//!
//! - `put-1k` / `put-100b`: PutRecords of `--batch` records of `--record-bytes` with random
//!   partition keys (spread over all shards); records/s and MiB/s of record data.
//! - `many-shards`: the same against a 1,000-shard stream, so every request touches hundreds of
//!   shards.
//! - `get`: fills the stream (untimed), then drains every shard from TRIM_HORIZON with GetRecords
//!   (`Limit` 10,000), one connection per shard; records/s.
//! - `latency`: one writer sends PutRecord with its send time in the data, one reader polls
//!   GetRecords from LATEST without pause; put-to-get latency p50/p99 (and the put's own latency).
//!
//! - `fanout`: enhanced fan-out push latency: a registered consumer subscribes to the shard
//!   (SubscribeToShard, event stream decoded by `kinesin_wire::eventstream`), writers send
//!   PutRecord one record at a time (or at `--rate` records/s); time from each PutRecord's 200
//!   to the record's arrival in the subscription, p50/p90/p99/max (see `bench/fanout.rs`).
//! - `reshard-latency`: PutRecords load on two streams while the first is split and merged again
//!   and again; PutRecords p50/p99/max on the same stream and on the other one, during the
//!   reshards and outside them (see `bench/reshard.rs`).
//!
//! Requests carry a well-formed SigV4 `Authorization` header and `X-Amz-Date`. The signature is
//! derived from the key and date but not over the payload: kinesin (and the peers) do not verify
//! signatures, and hashing every 700 KB body would spend client CPU the server needs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod fanout;
mod reshard;

const TARGET_PREFIX: &str = "Kinesis_20131202.";
const ACCESS_KEY: &str = "AKIDKINESINBENCH";
/// Distinct PutRecords bodies built per run; requests cycle through them.
const BODY_VARIANTS_MAX: usize = 16;
/// Kinesis's limit on records per PutRecords.
const BATCH_RECORDS_MAX: usize = 500;
/// Kinesis's limit on records per GetRecords.
const GET_LIMIT_RECORDS: usize = 10_000;
/// Latency samples kept per task; beyond this, samples are dropped (counts stay exact).
const LATENCY_SAMPLES_MAX: usize = 2_000_000;
/// How long to wait for a created stream to become ACTIVE.
const STREAM_ACTIVE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the latency reader keeps polling after the writer stopped, for the last records.
const LATENCY_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Records written before a `get` drain when `--records` is not given.
const GET_FILL_RECORDS_DEFAULT: u64 = 500_000;
/// Run length when neither `--duration` nor `--records` is given.
const DURATION_DEFAULT: Duration = Duration::from_secs(10);
/// Size of the header (send counter, send time) at the start of each latency record.
const LATENCY_HEADER_BYTES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// PutRecords, 1 KiB records, 4 shards.
    #[value(name = "put-1k")]
    Put1k,
    /// PutRecords, 100-byte records, 4 shards.
    #[value(name = "put-100b")]
    Put100b,
    /// Fill a shard, then drain it with GetRecords.
    Get,
    /// Put-to-get latency with a polling reader.
    Latency,
    /// PutRecords spread over a 1,000-shard stream.
    ManyShards,
    /// Enhanced fan-out: PutRecord to SubscribeToShard event latency.
    Fanout,
    /// PutRecords latency on a stream being resharded and on another stream, during and outside
    /// the reshards.
    ReshardLatency,
}

impl Workload {
    fn default_shards(self) -> u32 {
        match self {
            Workload::Put1k | Workload::Put100b | Workload::ReshardLatency => 4,
            Workload::Get | Workload::Latency | Workload::Fanout => 1,
            Workload::ManyShards => 1000,
        }
    }

    fn default_record_bytes(self) -> usize {
        match self {
            Workload::Put1k | Workload::ManyShards => 1024,
            Workload::Put100b
            | Workload::Get
            | Workload::Latency
            | Workload::Fanout
            | Workload::ReshardLatency => 100,
        }
    }
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Endpoint to load (http only).
    #[arg(long, default_value = "http://127.0.0.1:4567")]
    endpoint: String,
    /// Stream to use; created (with --shards) if missing [default: bench-<workload>].
    #[arg(long)]
    stream: Option<String>,
    /// Shard count when the stream is created [default: 4; get, latency: 1; many-shards: 1000].
    /// `reshard-latency` creates two streams of this many: --stream and <stream>-other.
    #[arg(long)]
    shards: Option<u32>,
    #[arg(long, value_enum, default_value = "put-1k")]
    workload: Workload,
    /// Connections (one request in flight each). `latency` uses one writer and one reader;
    /// `fanout` uses one writer, or with --rate up to this many.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long to run, e.g. `10s`, `500ms`, `2m` [default: 10s unless --records is given].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many records (for `get`: how many to write before draining) [default for get: 500000; fanout: 5000].
    #[arg(long)]
    records: Option<u64>,
    /// Bytes of data per record [default: 1024 for put-1k and many-shards, else 100].
    #[arg(long)]
    record_bytes: Option<usize>,
    /// `fanout`: PutRecord calls per second on a steady schedule, by up to --connections writers;
    /// 0 sends one at a time, each as soon as the previous one was acknowledged.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Records per PutRecords call (1..=500).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Print the result as one JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Name of the server under test, shown in the output (e.g. kinesin, ferrokinesis).
    #[arg(long, default_value = "")]
    label: String,
    /// Region in the SigV4 credential scope.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Seed for record data and partition keys.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (s, 1000.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("{s}: expected e.g. 10s, 500ms or 2m"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("{s}: the duration must be positive"));
    }
    Ok(Duration::from_secs_f64(v * unit_ms / 1000.0))
}

// ------------------------------------------------------------------------------------------ HTTP

/// What every connection needs to address and sign requests.
struct Target {
    addr: SocketAddr,
    host: String,
    amz_date: String,
    authorization: String,
}

impl Target {
    fn new(endpoint: &str, region: &str) -> Result<Target> {
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            anyhow!("--endpoint {endpoint}: only http:// endpoints are supported by the bench client")
        })?;
        let host = rest.trim_end_matches('/').to_string();
        if host.contains('/') {
            bail!("--endpoint {endpoint}: expected http://HOST:PORT without a path");
        }
        let with_port = if host.contains(':') { host.clone() } else { format!("{host}:80") };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("--endpoint {endpoint}: cannot resolve"))?
            .next()
            .ok_or_else(|| anyhow!("--endpoint {endpoint}: no address"))?;
        let (amz_date, date) = amz_dates(SystemTime::now());
        let scope = format!("{date}/{region}/kinesis/aws4_request");
        let signature = hex(&Sha256::digest(format!("{ACCESS_KEY}/{scope}/{amz_date}").as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}"
        );
        Ok(Target { addr, host, amz_date, authorization })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `X-Amz-Date` (`20260102T030405Z`) and the credential-scope date (`20260102`).
fn amz_dates(now: SystemTime) -> (String, String) {
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let date = format!("{year:04}{month:02}{day:02}");
    let time = format!("{:02}{:02}{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    (format!("{date}T{time}Z"), date)
}

/// One HTTP/1.1 connection; reconnects on the next call after a transport error.
struct Conn {
    target: Arc<Target>,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(target: Arc<Target>) -> Conn {
        Conn { target, sender: None }
    }

    async fn connect(&mut self) -> Result<&mut http1::SendRequest<Full<Bytes>>> {
        let reusable = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !reusable {
            let tcp = tokio::net::TcpStream::connect(self.target.addr)
                .await
                .with_context(|| format!("connect {}", self.target.addr))?;
            tcp.set_nodelay(true)?;
            let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().context("no connection after connecting")
    }

    /// One call; returns the status and the whole body.
    async fn call(&mut self, op: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        let target = self.target.clone();
        let sender = self.connect().await?;
        sender.ready().await?;
        let req = Request::post("/")
            .header("host", &target.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("{TARGET_PREFIX}{op}"))
            .header("x-amz-date", &target.amz_date)
            .header("authorization", &target.authorization)
            .body(Full::new(body))?;
        let result = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        }
        .await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    /// A call whose response body is read by the caller as it arrives (SubscribeToShard).
    async fn stream_call(&mut self, op: &str, body: Bytes) -> Result<hyper::Response<hyper::body::Incoming>> {
        let target = self.target.clone();
        let sender = self.connect().await?;
        sender.ready().await?;
        let req = Request::post("/")
            .header("host", &target.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("{TARGET_PREFIX}{op}"))
            .header("x-amz-date", &target.amz_date)
            .header("authorization", &target.authorization)
            .body(Full::new(body))?;
        let result = sender.send_request(req).await;
        if result.is_err() {
            self.sender = None;
        }
        Ok(result?)
    }

    /// A call that must succeed with 200; the error names the operation and the server's answer.
    async fn ok(&mut self, op: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        let (status, body) = self.call(op, Bytes::from(body.to_string())).await?;
        if status != StatusCode::OK {
            bail!("{op}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        serde_json::from_slice(&body).with_context(|| format!("{op}: response is not JSON"))
    }
}

// --------------------------------------------------------------------------------- stream setup

/// Creates the stream if missing, waits until ACTIVE, and returns its open shard ids.
async fn ensure_stream(conn: &mut Conn, stream: &str, shards: u32) -> Result<Vec<String>> {
    let body = serde_json::json!({"StreamName": stream, "ShardCount": shards});
    let (status, resp) = conn.call("CreateStream", Bytes::from(body.to_string())).await?;
    if status != StatusCode::OK && !String::from_utf8_lossy(&resp).contains("ResourceInUseException") {
        bail!("CreateStream {stream} ({shards} shards): HTTP {status}: {}", String::from_utf8_lossy(&resp));
    }
    let deadline = Instant::now() + STREAM_ACTIVE_TIMEOUT;
    loop {
        let d = conn.ok("DescribeStreamSummary", serde_json::json!({"StreamName": stream})).await?;
        let status = d["StreamDescriptionSummary"]["StreamStatus"].as_str().unwrap_or("").to_string();
        if status == "ACTIVE" {
            break;
        }
        if Instant::now() > deadline {
            bail!("stream {stream} is still {status} after {STREAM_ACTIVE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ids = Vec::new();
    let mut req = serde_json::json!({"StreamName": stream});
    loop {
        let page = conn.ok("ListShards", req).await?;
        for s in page["Shards"].as_array().into_iter().flatten() {
            let open = s["SequenceNumberRange"].get("EndingSequenceNumber").is_none();
            if let (Some(id), true) = (s["ShardId"].as_str(), open) {
                ids.push(id.to_string());
            }
        }
        match page["NextToken"].as_str() {
            Some(t) => req = serde_json::json!({"NextToken": t}),
            None => break,
        }
    }
    if ids.is_empty() {
        bail!("stream {stream} has no open shards");
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------------- accounting

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    records: AtomicU64,
    record_bytes: AtomicU64,
    /// Non-200 answers and transport errors.
    errors: AtomicU64,
    /// Records a PutRecords answered with an ErrorCode.
    failed_records: AtomicU64,
}

/// When to stop: a deadline, a record budget claimed in batches, or both.
struct Budget {
    deadline: Option<Instant>,
    records_max: Option<u64>,
    claimed: AtomicU64,
    stop: AtomicBool,
}

impl Budget {
    /// Claims up to `want` records; 0 means stop.
    fn claim(&self, want: u64) -> u64 {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return 0;
        }
        match self.records_max {
            None => want,
            Some(max) => {
                let start = self.claimed.fetch_add(want, Ordering::Relaxed);
                want.min(max.saturating_sub(start))
            }
        }
    }
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let idx = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    Some(f64::from(sorted_us[idx]) / 1000.0)
}

fn push_sample(samples: &mut Vec<u32>, d: Duration) {
    if samples.len() < LATENCY_SAMPLES_MAX {
        samples.push(d.as_micros().min(u128::from(u32::MAX)) as u32);
    }
}

/// The result of one run, as printed in the table and the `--json` line.
#[derive(Serialize, Default)]
struct Report {
    label: String,
    endpoint: String,
    workload: String,
    stream: String,
    shards: usize,
    connections: usize,
    record_bytes: usize,
    batch: usize,
    elapsed_s: f64,
    requests: u64,
    records: u64,
    record_mib: f64,
    records_per_s: f64,
    mib_per_s: f64,
    errors: u64,
    failed_records: u64,
    request_p50_ms: Option<f64>,
    request_p99_ms: Option<f64>,
    put_to_get_p50_ms: Option<f64>,
    put_to_get_p99_ms: Option<f64>,
    put_to_get_max_ms: Option<f64>,
    /// `fanout`: from PutRecord's 200 to the record's SubscribeToShard event.
    ack_to_event_p50_ms: Option<f64>,
    ack_to_event_p90_ms: Option<f64>,
    ack_to_event_p99_ms: Option<f64>,
    ack_to_event_max_ms: Option<f64>,
    /// `fanout`: from PutRecord's send to the record's event.
    send_to_event_p50_ms: Option<f64>,
    send_to_event_p99_ms: Option<f64>,
    /// `fanout`: events that arrived before their PutRecord's 200 (counted as 0 ms).
    events_before_ack: Option<u64>,
    /// `fanout`: acknowledged records that never arrived.
    events_missing: Option<u64>,
    /// `fanout`: SubscribeToShard calls (1 + renewals).
    subscriptions: Option<u64>,
    /// `reshard-latency`: PutRecords latency on the stream being resharded ("same") and on
    /// another stream ("other"), for calls that overlapped a reshard window ("during") and the
    /// others ("outside"), with the number of calls each figure is over.
    #[serde(flatten)]
    reshard: Option<ReshardReport>,
    first_error: Option<String>,
}

/// The `reshard-latency` figures (flattened into the `--json` line).
#[derive(Serialize, Default)]
struct ReshardReport {
    same_stream_during_p50_ms: Option<f64>,
    same_stream_during_p99_ms: Option<f64>,
    same_stream_during_max_ms: Option<f64>,
    same_stream_during_requests: usize,
    same_stream_outside_p50_ms: Option<f64>,
    same_stream_outside_p99_ms: Option<f64>,
    same_stream_outside_max_ms: Option<f64>,
    same_stream_outside_requests: usize,
    other_stream_during_p50_ms: Option<f64>,
    other_stream_during_p99_ms: Option<f64>,
    other_stream_during_max_ms: Option<f64>,
    other_stream_during_requests: usize,
    other_stream_outside_p50_ms: Option<f64>,
    other_stream_outside_p99_ms: Option<f64>,
    other_stream_outside_max_ms: Option<f64>,
    other_stream_outside_requests: usize,
    /// SplitShard and MergeShards calls made.
    reshards: u64,
    /// A reshard call's time until the stream was ACTIVE again.
    reshard_p50_ms: Option<f64>,
    reshard_max_ms: Option<f64>,
    /// Total time inside reshard windows.
    reshard_window_s: f64,
}

impl ReshardReport {
    fn new(r: &reshard::ReshardResult) -> ReshardReport {
        let max = |v: &[u32]| v.last().map(|&us| f64::from(us) / 1000.0);
        let (s, o) = (&r.same, &r.other);
        ReshardReport {
            same_stream_during_p50_ms: percentile_ms(&s.during_us, 0.50),
            same_stream_during_p99_ms: percentile_ms(&s.during_us, 0.99),
            same_stream_during_max_ms: max(&s.during_us),
            same_stream_during_requests: s.during_us.len(),
            same_stream_outside_p50_ms: percentile_ms(&s.outside_us, 0.50),
            same_stream_outside_p99_ms: percentile_ms(&s.outside_us, 0.99),
            same_stream_outside_max_ms: max(&s.outside_us),
            same_stream_outside_requests: s.outside_us.len(),
            other_stream_during_p50_ms: percentile_ms(&o.during_us, 0.50),
            other_stream_during_p99_ms: percentile_ms(&o.during_us, 0.99),
            other_stream_during_max_ms: max(&o.during_us),
            other_stream_during_requests: o.during_us.len(),
            other_stream_outside_p50_ms: percentile_ms(&o.outside_us, 0.50),
            other_stream_outside_p99_ms: percentile_ms(&o.outside_us, 0.99),
            other_stream_outside_max_ms: max(&o.outside_us),
            other_stream_outside_requests: o.outside_us.len(),
            reshards: r.reshards,
            reshard_p50_ms: percentile_ms(&r.reshard_us, 0.50),
            reshard_max_ms: max(&r.reshard_us),
            reshard_window_s: r.window.as_secs_f64(),
        }
    }
}

/// The 8 little-endian bytes of `bytes` as a u64 (0 when fewer: callers checked the length).
pub(crate) fn le_u64(bytes: &[u8]) -> u64 {
    bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_le_bytes)
}

/// The workload's name as on the command line.
fn workload_name(workload: Workload) -> String {
    workload.to_possible_value().map_or_else(|| format!("{workload:?}"), |v| v.get_name().to_string())
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>8} [{{elapsed_precise}}] {{bar:30.cyan/blue}} {{percent:>3}}% {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Redraws the bar every 200 ms with live rates until `done`.
fn spawn_ticker(
    bar: ProgressBar,
    counters: Arc<Counters>,
    started: Instant,
    budget: Arc<Budget>,
    record_bytes: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let records = counters.records.load(Ordering::Relaxed);
            let now = Instant::now();
            let rate = (records - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            last = (now, records);
            let pos = match (budget.records_max, budget.deadline) {
                (Some(_), _) => records,
                (None, Some(_)) => (now - started).as_millis() as u64,
                (None, None) => 0,
            };
            bar.set_position(pos);
            bar.set_message(format!(
                "{records} records, {:.0} rec/s, {:.1} MiB/s, {} errors",
                rate,
                rate * record_bytes as f64 / 1_048_576.0,
                counters.errors.load(Ordering::Relaxed) + counters.failed_records.load(Ordering::Relaxed),
            ));
            if budget.stop.load(Ordering::Relaxed) {
                break;
            }
        }
    })
}

// ------------------------------------------------------------------------------------- workloads

/// PutRecords bodies of `batch` records each with random data and partition keys.
fn put_bodies(stream: &str, batch: usize, record_bytes: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..BODY_VARIANTS_MAX)
        .map(|_| {
            let records: Vec<serde_json::Value> = (0..batch)
                .map(|_| {
                    let mut data = vec![0u8; record_bytes];
                    rng.fill(&mut data[..]);
                    serde_json::json!({
                        "Data": B64.encode(&data),
                        "PartitionKey": format!("{:016x}", rng.gen::<u64>()),
                    })
                })
                .collect();
            Bytes::from(serde_json::json!({"StreamName": stream, "Records": records}).to_string())
        })
        .collect()
}

#[derive(Deserialize)]
struct PutRecordsOut {
    #[serde(rename = "FailedRecordCount", default)]
    failed_record_count: u64,
}

/// What the PutRecords loops send.
struct PutJob {
    target: Arc<Target>,
    bodies: Arc<Vec<Bytes>>,
    batch: usize,
    record_bytes: usize,
    connections: usize,
}

type FirstError = Arc<parking_lot::Mutex<Option<String>>>;

/// Counts a PutRecords answer's records (written and failed); returns what went wrong if the call
/// failed as a whole.
fn account_put(
    result: Result<(StatusCode, Bytes)>,
    batch: usize,
    record_bytes: usize,
    counters: &Counters,
) -> Option<String> {
    match result {
        Ok((StatusCode::OK, body)) => match serde_json::from_slice::<PutRecordsOut>(&body) {
            Ok(out) => {
                let ok = batch as u64 - out.failed_record_count.min(batch as u64);
                counters.records.fetch_add(ok, Ordering::Relaxed);
                counters.record_bytes.fetch_add(ok * record_bytes as u64, Ordering::Relaxed);
                counters.failed_records.fetch_add(batch as u64 - ok, Ordering::Relaxed);
                None
            }
            Err(e) => Some(format!("PutRecords: unreadable response: {e}")),
        },
        Ok((status, body)) => Some(format!(
            "PutRecords: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )),
        Err(e) => Some(format!("PutRecords: {e:#}")),
    }
}

/// Runs `connections` PutRecords loops until the budget is spent. Returns request latencies.
async fn run_puts(
    job: PutJob,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
    first_error: FirstError,
) -> Vec<u32> {
    let PutJob { target, bodies, batch, record_bytes, connections } = job;
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (target, bodies, counters, budget, first_error) =
            (target.clone(), bodies.clone(), counters.clone(), budget.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let mut samples = Vec::new();
            let mut i = worker;
            loop {
                let n = budget.claim(batch as u64);
                if n == 0 {
                    break;
                }
                // Only whole batches are sent: a record budget is rounded down to the batch.
                if n < batch as u64 {
                    break;
                }
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let t0 = Instant::now();
                let result = conn.call("PutRecords", body).await;
                push_sample(&mut samples, t0.elapsed());
                counters.requests.fetch_add(1, Ordering::Relaxed);
                if let Some(e) = account_put(result, batch, record_bytes, &counters) {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all
}

#[derive(Deserialize)]
struct GetRecordsOut<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RecordOut<'a>>,
    #[serde(rename = "NextShardIterator")]
    next_shard_iterator: Option<String>,
    #[serde(rename = "MillisBehindLatest", default)]
    millis_behind_latest: u64,
}

#[derive(Deserialize)]
struct RecordOut<'a> {
    #[serde(rename = "Data", borrow)]
    data: &'a str,
}

async fn shard_iterator(conn: &mut Conn, stream: &str, shard: &str, kind: &str) -> Result<String> {
    let out = conn
        .ok(
            "GetShardIterator",
            serde_json::json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
        )
        .await?;
    out["ShardIterator"].as_str().map(str::to_string).ok_or_else(|| anyhow!("GetShardIterator: no iterator"))
}

fn get_records_body(iterator: &str) -> Bytes {
    Bytes::from(serde_json::json!({"ShardIterator": iterator, "Limit": GET_LIMIT_RECORDS}).to_string())
}

/// Drains one shard from TRIM_HORIZON until caught up; returns request latencies.
async fn drain_shard(
    target: Arc<Target>,
    stream: String,
    shard: String,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
) -> Result<Vec<u32>> {
    let mut conn = Conn::new(target);
    let mut it = shard_iterator(&mut conn, &stream, &shard, "TRIM_HORIZON").await?;
    let mut samples = Vec::new();
    loop {
        if budget.claim(1) == 0 {
            break;
        }
        let t0 = Instant::now();
        let (status, body) = conn.call("GetRecords", get_records_body(&it)).await?;
        push_sample(&mut samples, t0.elapsed());
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if status != StatusCode::OK {
            bail!("GetRecords {shard}: HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        let out: GetRecordsOut = serde_json::from_slice(&body).context("GetRecords response")?;
        let n = out.records.len() as u64;
        let bytes: u64 = out.records.iter().map(|r| (r.data.len() / 4 * 3) as u64).sum();
        counters.records.fetch_add(n, Ordering::Relaxed);
        counters.record_bytes.fetch_add(bytes, Ordering::Relaxed);
        match out.next_shard_iterator {
            Some(next) if !(n == 0 && out.millis_behind_latest == 0) => it = next,
            _ => break,
        }
    }
    Ok(samples)
}

// ------------------------------------------------------------------------------------------ run

pub fn bench(args: BenchArgs) -> Result<()> {
    if args.batch == 0 || args.batch > BATCH_RECORDS_MAX {
        bail!("--batch {}: must be 1..={BATCH_RECORDS_MAX}", args.batch);
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.workload == Workload::ReshardLatency && args.records.is_some() {
        bail!("--records: reshard-latency runs for a --duration (its load must outlast the reshards)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(run(&args))?;
    print_table(&report, args.json);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    if report.records == 0 {
        bail!(
            "no record was {}: {}",
            if args.workload == Workload::Get { "read" } else { "written" },
            report.first_error.as_deref().unwrap_or("no error reported")
        );
    }
    Ok(())
}

async fn run(args: &BenchArgs) -> Result<Report> {
    let workload = args.workload;
    let target = Arc::new(Target::new(&args.endpoint, &args.region)?);
    let stream = args.stream.clone().unwrap_or_else(|| format!("bench-{}", workload_name(workload)));
    let shards_wanted = args.shards.unwrap_or(workload.default_shards());
    let record_bytes = args.record_bytes.unwrap_or(workload.default_record_bytes());
    let mut setup = Conn::new(target.clone());
    let t_create = Instant::now();
    let shard_ids = ensure_stream(&mut setup, &stream, shards_wanted).await?;
    eprintln!(
        "stream {stream}: {} open shards, ready in {:.2}s",
        shard_ids.len(),
        t_create.elapsed().as_secs_f64()
    );
    let other_stream = format!("{stream}{}", reshard::OTHER_STREAM_SUFFIX);
    if workload == Workload::ReshardLatency {
        let n = ensure_stream(&mut setup, &other_stream, shards_wanted).await?.len();
        eprintln!("stream {other_stream}: {n} open shards (the other stream, not resharded)");
    }
    let mut report = Report {
        label: args.label.clone(),
        endpoint: args.endpoint.clone(),
        workload: workload_name(workload),
        stream: stream.clone(),
        shards: shard_ids.len(),
        connections: args.connections,
        record_bytes,
        batch: args.batch,
        ..Report::default()
    };
    let first_error = Arc::new(parking_lot::Mutex::new(None));
    let counters = Arc::new(Counters::default());
    let make_budget = |records: Option<u64>| {
        let duration = match (args.duration, records) {
            (None, None) => Some(DURATION_DEFAULT),
            (d, _) => d,
        };
        Arc::new(Budget {
            deadline: duration.map(|d| Instant::now() + d),
            records_max: records,
            claimed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    };
    let bar_len = |budget: &Budget| match (budget.records_max, budget.deadline) {
        (Some(n), _) => n,
        (None, Some(d)) => (d - Instant::now()).as_millis() as u64,
        (None, None) => 0,
    };

    let (elapsed, samples) = match workload {
        Workload::Put1k | Workload::Put100b | Workload::ManyShards => {
            let bodies = Arc::new(put_bodies(&stream, args.batch, record_bytes, args.seed));
            let budget = make_budget(args.records);
            let bar = progress_bar(bar_len(&budget), "put");
            let started = Instant::now();
            let ticker = spawn_ticker(bar.clone(), counters.clone(), started, budget.clone(), record_bytes);
            let job = PutJob {
                target: target.clone(),
                bodies,
                batch: args.batch,
                record_bytes,
                connections: args.connections,
            };
            let samples = run_puts(job, counters.clone(), budget.clone(), first_error.clone()).await;
            let elapsed = started.elapsed();
            budget.stop.store(true, Ordering::Relaxed);
            let _ = ticker.await;
            bar.finish_and_clear();
            (elapsed, samples)
        }
        Workload::Get => {
            let fill = args.records.unwrap_or(GET_FILL_RECORDS_DEFAULT);
            let bodies = Arc::new(put_bodies(&stream, args.batch, record_bytes, args.seed));
            let fill_budget = Arc::new(Budget {
                deadline: None,
                records_max: Some(fill),
                claimed: AtomicU64::new(0),
                stop: AtomicBool::new(false),
            });
            let fill_counters = Arc::new(Counters::default());
            let bar = progress_bar(fill, "fill");
            let started = Instant::now();
            let ticker =
                spawn_ticker(bar.clone(), fill_counters.clone(), started, fill_budget.clone(), record_bytes);
            let job = PutJob {
                target: target.clone(),
                bodies,
                batch: args.batch,
                record_bytes,
                connections: args.connections,
            };
            run_puts(job, fill_counters.clone(), fill_budget.clone(), first_error.clone()).await;
            fill_budget.stop.store(true, Ordering::Relaxed);
            let _ = ticker.await;
            bar.finish_and_clear();
            let filled = fill_counters.records.load(Ordering::Relaxed);
            eprintln!(
                "filled {filled} records in {:.2}s; draining {} shard(s)",
                started.elapsed().as_secs_f64(),
                shard_ids.len()
            );
            let budget = Arc::new(Budget {
                deadline: args.duration.map(|d| Instant::now() + d),
                records_max: None,
                claimed: AtomicU64::new(0),
                stop: AtomicBool::new(false),
            });
            let bar = progress_bar(filled.max(1), "get");
            let started = Instant::now();
            let drain_budget = Arc::new(Budget {
                deadline: None,
                records_max: Some(filled),
                claimed: AtomicU64::new(0),
                stop: AtomicBool::new(false),
            });
            let ticker =
                spawn_ticker(bar.clone(), counters.clone(), started, drain_budget.clone(), record_bytes);
            let mut tasks = Vec::new();
            for shard in &shard_ids {
                tasks.push(tokio::spawn(drain_shard(
                    target.clone(),
                    stream.clone(),
                    shard.clone(),
                    counters.clone(),
                    budget.clone(),
                )));
            }
            let mut samples = Vec::new();
            for t in tasks {
                match t.await? {
                    Ok(s) => samples.extend(s),
                    Err(e) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().get_or_insert(format!("{e:#}"));
                    }
                }
            }
            let elapsed = started.elapsed();
            drain_budget.stop.store(true, Ordering::Relaxed);
            let _ = ticker.await;
            bar.finish_and_clear();
            (elapsed, samples)
        }
        Workload::Latency => {
            let budget = make_budget(args.records);
            let bar = progress_bar(bar_len(&budget), "latency");
            let started = Instant::now();
            let ticker = spawn_ticker(bar.clone(), counters.clone(), started, budget.clone(), record_bytes);
            let (put_samples, e2e) = run_latency(
                target.clone(),
                &stream,
                &shard_ids[0],
                record_bytes.max(LATENCY_HEADER_BYTES),
                counters.clone(),
                budget.clone(),
                first_error.clone(),
            )
            .await?;
            let elapsed = started.elapsed();
            budget.stop.store(true, Ordering::Relaxed);
            let _ = ticker.await;
            bar.finish_and_clear();
            let mut e2e = e2e;
            e2e.sort_unstable();
            report.put_to_get_p50_ms = percentile_ms(&e2e, 0.50);
            report.put_to_get_p99_ms = percentile_ms(&e2e, 0.99);
            report.put_to_get_max_ms = e2e.last().map(|&us| f64::from(us) / 1000.0);
            (elapsed, put_samples)
        }
        Workload::Fanout => {
            let records = args.records.unwrap_or(fanout::FANOUT_RECORDS_DEFAULT);
            if records == 0 || records > fanout::FANOUT_RECORDS_MAX {
                bail!("--records {records}: fanout tracks 1..={} records", fanout::FANOUT_RECORDS_MAX);
            }
            let budget = make_budget(Some(records));
            let bar = progress_bar(records, "fanout");
            let started = Instant::now();
            let ticker = spawn_ticker(bar.clone(), counters.clone(), started, budget.clone(), record_bytes);
            let job = fanout::FanoutJob {
                target: target.clone(),
                stream: stream.clone(),
                shard: shard_ids[0].clone(),
                record_bytes: record_bytes.max(LATENCY_HEADER_BYTES),
                records,
                rate: args.rate,
                writers: args.connections,
            };
            let result = fanout::run_fanout(job, counters.clone(), budget.clone(), first_error.clone()).await;
            let elapsed = started.elapsed();
            budget.stop.store(true, Ordering::Relaxed);
            let _ = ticker.await;
            bar.finish_and_clear();
            let mut r = result?;
            r.ack_to_event_us.sort_unstable();
            r.send_to_event_us.sort_unstable();
            report.connections = if args.rate == 0 { 1 } else { args.connections };
            report.batch = 1;
            report.ack_to_event_p50_ms = percentile_ms(&r.ack_to_event_us, 0.50);
            report.ack_to_event_p90_ms = percentile_ms(&r.ack_to_event_us, 0.90);
            report.ack_to_event_p99_ms = percentile_ms(&r.ack_to_event_us, 0.99);
            report.ack_to_event_max_ms = r.ack_to_event_us.last().map(|&us| f64::from(us) / 1000.0);
            report.send_to_event_p50_ms = percentile_ms(&r.send_to_event_us, 0.50);
            report.send_to_event_p99_ms = percentile_ms(&r.send_to_event_us, 0.99);
            report.events_before_ack = Some(r.events_before_ack);
            report.events_missing = Some(r.missing);
            report.subscriptions = Some(r.subscriptions);
            (elapsed, r.put_us)
        }
        Workload::ReshardLatency => {
            let duration = args.duration.unwrap_or(DURATION_DEFAULT);
            let budget = make_budget(None);
            let bar = progress_bar(bar_len(&budget), "reshard");
            let ticker =
                spawn_ticker(bar.clone(), counters.clone(), Instant::now(), budget.clone(), record_bytes);
            let job = reshard::ReshardJob {
                target: target.clone(),
                stream: stream.clone(),
                other: other_stream.clone(),
                batch: args.batch,
                record_bytes,
                connections: args.connections,
                duration,
                seed: args.seed,
            };
            let result = reshard::run_reshard(job, counters.clone(), first_error.clone()).await;
            budget.stop.store(true, Ordering::Relaxed);
            let _ = ticker.await;
            bar.finish_and_clear();
            let r = result?;
            report.stream = format!("{stream} + {other_stream}");
            report.connections = 2 * (args.connections / 2).max(1);
            report.reshard = Some(ReshardReport::new(&r));
            (r.elapsed, r.all_us)
        }
    };

    let mut samples = samples;
    samples.sort_unstable();
    report.elapsed_s = elapsed.as_secs_f64();
    report.requests = counters.requests.load(Ordering::Relaxed);
    report.records = counters.records.load(Ordering::Relaxed);
    report.record_mib = counters.record_bytes.load(Ordering::Relaxed) as f64 / 1_048_576.0;
    report.records_per_s = report.records as f64 / report.elapsed_s.max(1e-9);
    report.mib_per_s = report.record_mib / report.elapsed_s.max(1e-9);
    report.errors = counters.errors.load(Ordering::Relaxed);
    report.failed_records = counters.failed_records.load(Ordering::Relaxed);
    report.request_p50_ms = percentile_ms(&samples, 0.50);
    report.request_p99_ms = percentile_ms(&samples, 0.99);
    report.first_error = first_error.lock().clone();
    Ok(report)
}

/// One writer (PutRecord, one in flight, send time in the data) and one reader polling
/// GetRecords from LATEST without pause. Returns (put latencies, put-to-get latencies) in µs.
async fn run_latency(
    target: Arc<Target>,
    stream: &str,
    shard: &str,
    record_bytes: usize,
    counters: Arc<Counters>,
    budget: Arc<Budget>,
    first_error: FirstError,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let epoch = Instant::now();
    let mut reader_conn = Conn::new(target.clone());
    let mut it = shard_iterator(&mut reader_conn, stream, shard, "LATEST").await?;
    let sent = Arc::new(AtomicU64::new(0));
    let writer_done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (sent, writer_done, counters) = (sent.clone(), writer_done.clone(), counters.clone());
        tokio::spawn(async move {
            let mut e2e = Vec::new();
            let mut received = 0u64;
            let mut done_at: Option<Instant> = None;
            loop {
                if writer_done.load(Ordering::Relaxed) {
                    let at = *done_at.get_or_insert_with(Instant::now);
                    if received >= sent.load(Ordering::Relaxed) || at.elapsed() > LATENCY_DRAIN_TIMEOUT {
                        break;
                    }
                }
                let (status, body) = reader_conn.call("GetRecords", get_records_body(&it)).await?;
                let now_ns = epoch.elapsed().as_nanos() as u64;
                if status != StatusCode::OK {
                    bail!("GetRecords: HTTP {status}: {}", String::from_utf8_lossy(&body));
                }
                let out: GetRecordsOut = serde_json::from_slice(&body).context("GetRecords response")?;
                for r in &out.records {
                    let data = B64.decode(r.data).context("record data is not base64")?;
                    if data.len() < LATENCY_HEADER_BYTES {
                        continue;
                    }
                    let sent_ns = le_u64(&data[8..16]);
                    push_sample(&mut e2e, Duration::from_nanos(now_ns.saturating_sub(sent_ns)));
                    received += 1;
                }
                counters.records.fetch_add(out.records.len() as u64, Ordering::Relaxed);
                match out.next_shard_iterator {
                    Some(next) => it = next,
                    None => bail!("GetRecords: the shard was closed during the latency run"),
                }
            }
            Ok::<_, anyhow::Error>(e2e)
        })
    };

    let mut conn = Conn::new(target);
    let mut put_samples = Vec::new();
    let mut data = vec![0u8; record_bytes];
    let mut n = 0u64;
    while budget.claim(1) == 1 {
        data[0..8].copy_from_slice(&n.to_le_bytes());
        let t0 = Instant::now();
        data[8..16].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
        let body = serde_json::json!({
            "StreamName": stream,
            "PartitionKey": format!("k{n}"),
            "Data": B64.encode(&data),
        });
        let result = conn.call("PutRecord", Bytes::from(body.to_string())).await;
        push_sample(&mut put_samples, t0.elapsed());
        counters.requests.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok((StatusCode::OK, _)) => {
                sent.fetch_add(1, Ordering::Relaxed);
                counters.record_bytes.fetch_add(record_bytes as u64, Ordering::Relaxed);
            }
            Ok((status, body)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                first_error.lock().get_or_insert(format!(
                    "PutRecord: HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ));
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                first_error.lock().get_or_insert(format!("PutRecord: {e:#}"));
            }
        }
        n += 1;
    }
    writer_done.store(true, Ordering::Relaxed);
    let e2e = reader.await??;
    Ok((put_samples, e2e))
}

fn print_table(r: &Report, to_stderr: bool) {
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.2} ms")).unwrap_or_else(|| "-".into());
    let mut rows: Vec<(&str, String)> = vec![
        (
            "server",
            if r.label.is_empty() { r.endpoint.clone() } else { format!("{} ({})", r.label, r.endpoint) },
        ),
        ("workload", r.workload.clone()),
        ("stream", format!("{} ({} shards)", r.stream, r.shards)),
        ("connections", r.connections.to_string()),
        ("record size", format!("{} B", r.record_bytes)),
        ("batch", r.batch.to_string()),
        ("elapsed", format!("{:.2} s", r.elapsed_s)),
        ("requests", r.requests.to_string()),
        ("records", r.records.to_string()),
        ("records/s", format!("{:.0}", r.records_per_s)),
        ("MiB/s (record data)", format!("{:.1}", r.mib_per_s)),
        ("request p50", ms(r.request_p50_ms)),
        ("request p99", ms(r.request_p99_ms)),
        ("put-to-get p50", ms(r.put_to_get_p50_ms)),
        ("put-to-get p99", ms(r.put_to_get_p99_ms)),
    ];
    if r.workload == "fanout" {
        rows.retain(|(k, _)| !k.starts_with("put-to-get") && *k != "batch" && !k.starts_with("MiB"));
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        rows.extend([
            ("ack-to-event p50", ms(r.ack_to_event_p50_ms)),
            ("ack-to-event p90", ms(r.ack_to_event_p90_ms)),
            ("ack-to-event p99", ms(r.ack_to_event_p99_ms)),
            ("ack-to-event max", ms(r.ack_to_event_max_ms)),
            ("send-to-event p50", ms(r.send_to_event_p50_ms)),
            ("send-to-event p99", ms(r.send_to_event_p99_ms)),
            ("events before ack", n(r.events_before_ack)),
            ("events missing", n(r.events_missing)),
            ("subscriptions", n(r.subscriptions)),
        ]);
    }
    if let Some(x) = &r.reshard {
        rows.retain(|(k, _)| !k.starts_with("put-to-get"));
        let fig = |p50, p99, max, n: usize| {
            format!("p50 {} / p99 {} / max {} ({n} calls)", ms(p50), ms(p99), ms(max))
        };
        rows.extend([
            (
                "other stream, during reshard",
                fig(
                    x.other_stream_during_p50_ms,
                    x.other_stream_during_p99_ms,
                    x.other_stream_during_max_ms,
                    x.other_stream_during_requests,
                ),
            ),
            (
                "other stream, outside",
                fig(
                    x.other_stream_outside_p50_ms,
                    x.other_stream_outside_p99_ms,
                    x.other_stream_outside_max_ms,
                    x.other_stream_outside_requests,
                ),
            ),
            (
                "same stream, during reshard",
                fig(
                    x.same_stream_during_p50_ms,
                    x.same_stream_during_p99_ms,
                    x.same_stream_during_max_ms,
                    x.same_stream_during_requests,
                ),
            ),
            (
                "same stream, outside",
                fig(
                    x.same_stream_outside_p50_ms,
                    x.same_stream_outside_p99_ms,
                    x.same_stream_outside_max_ms,
                    x.same_stream_outside_requests,
                ),
            ),
            (
                "reshards",
                format!(
                    "{} (split + merge), call to ACTIVE p50 {} / max {}, {:.2} s in windows",
                    x.reshards,
                    ms(x.reshard_p50_ms),
                    ms(x.reshard_max_ms),
                    x.reshard_window_s
                ),
            ),
        ]);
    }
    rows.extend([("errors", format!("{} requests, {} records", r.errors, r.failed_records))]);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(20);
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$} {v}\n"));
    }
    if let Some(e) = &r.first_error {
        out.push_str(&format!("  {:<width$} {e}\n", "first error"));
    }
    if to_stderr {
        eprint!("{out}");
    } else {
        print!("{out}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_is_utc_calendar_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_767_322_845); // 2026-01-02T03:00:45Z
        assert_eq!(amz_dates(t), ("20260102T030045Z".to_string(), "20260102".to_string()));
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(amz_dates(leap).1, "20000229");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn authorization_header_is_well_formed_sigv4() {
        let t = Target::new("http://127.0.0.1:4567", "us-east-1").unwrap();
        let a = &t.authorization;
        assert!(a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDKINESINBENCH/"), "{a}");
        assert!(a.contains("/us-east-1/kinesis/aws4_request, SignedHeaders="), "{a}");
        let sig = a.rsplit("Signature=").next().unwrap();
        assert_eq!(sig.len(), 64);
        assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(Target::new("https://127.0.0.1:4567", "us-east-1").is_err());
    }

    #[test]
    fn record_budget_is_claimed_in_batches() {
        let b = Budget {
            deadline: None,
            records_max: Some(1200),
            claimed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        assert_eq!(b.claim(500), 500);
        assert_eq!(b.claim(500), 500);
        assert_eq!(b.claim(500), 200);
        assert_eq!(b.claim(500), 0);
    }

    #[test]
    fn put_bodies_hold_batch_records_of_the_asked_size() {
        let bodies = put_bodies("s", 3, 100, 7);
        assert_eq!(bodies.len(), BODY_VARIANTS_MAX);
        let v: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
        let recs = v["Records"].as_array().unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(B64.decode(recs[0]["Data"].as_str().unwrap()).unwrap().len(), 100);
    }
}
