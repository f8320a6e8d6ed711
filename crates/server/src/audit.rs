//! The audit trail: one CloudTrail-like JSON line per control-plane call, per authentication or
//! authorization failure, and — with `data_plane` — per data-plane call.
//!
//! Requests never wait on the disk: an event is serialized on the request path and handed to a
//! bounded queue (`QUEUE_EVENTS_MAX`); one writer thread appends the lines and rotates each file
//! by size (`audit.log` → `audit.log.1` → … → `audit.log.<keep>`, the oldest removed). When the
//! queue is full the event is **dropped, not waited for** — an audit log must not become a way to
//! stall the server — and counted: the writer then writes a `KinesinAuditEventsDropped` line with
//! the count into the log itself and warns in the server log, so a gap is never silent.
//!
//! Record data never enters the trail: `Data` and `Records` are removed from request parameters.
//!
//! **No caller can erase the trail faster than an operator can notice** (issue 13: a principal
//! allowed only PutRecord once rotated the whole trail away with 40 oversized requests):
//! - every entry is bounded: each string at most `FIELD_CHARS_MAX` characters (cut with
//!   `… (N bytes)`), at most `PARAMS_MEMBERS_MAX` members per object or list, the whole line at
//!   most `LINE_BYTES_MAX` bytes (beyond it the request parameters shrink to the members naming
//!   the resource);
//! - two files: the **main trail** (`--audit-log`) holds the calls of authenticated callers
//!   (everyone's, without `--credentials`), authorization failures included; the **noise trail**
//!   (`--audit-noise-log`, by default `<stem>-noise.<ext>` beside it) holds authentication
//!   failures and malformed requests (SerializationException, ValidationException). Each rotates
//!   by itself, so noise never rotates the main trail;
//! - a **budget per caller and file**: a token bucket of line bytes per verified principal (per
//!   source address for unverified callers), `burst_bytes` deep, refilled at `bytes_per_sec`.
//!   An entry over budget is not written; it is counted into one `KinesinAuditSummary` line per
//!   caller and minute (events and bytes suppressed, by operation and error code), and into
//!   `kinesin_audit_suppressed_total{reason}` on `/metrics`. The default rate lets one caller
//!   alone rotate the oldest entry out only after `BUDGET_WINDOW_SECS` (a day) of sustained
//!   writing: (keep + 1) × file size / a day.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesin_wire::error::echo_to;
use kinesin_wire::operation::Op;
use serde_json::{json, Map, Value};

/// Events waiting for the writer; beyond this they are dropped (and counted).
pub const QUEUE_EVENTS_MAX: usize = 8192;
/// Largest `responseElements` kept, in bytes of JSON; bigger responses are recorded as null.
pub const RESPONSE_ELEMENTS_BYTES_MAX: usize = 4096;
/// Default size at which the file rotates.
pub const FILE_BYTES_MAX_DEFAULT: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept.
pub const KEEP_DEFAULT: u32 = 5;
/// Longest string of an entry, in characters; a longer one (a user agent, an error message, a
/// request parameter) is cut and marked `… (N bytes)`. A consumer ARN (~320) fits.
pub const FIELD_CHARS_MAX: usize = 1024;
/// Members kept per object or list of the request parameters (50 tags fit).
pub const PARAMS_MEMBERS_MAX: usize = 64;
/// Nesting kept in the request parameters (Kinesis inputs nest at most 2 deep).
pub const PARAMS_DEPTH_MAX: usize = 4;
/// Longest line (the newline included).
pub const LINE_BYTES_MAX: usize = 16 * 1024;
/// Shorter caps for the last resort of an entry still over `LINE_BYTES_MAX`.
const FIELD_CHARS_LAST_RESORT: usize = 128;
/// The default budget lets one caller push the oldest entry out of a full trail only after this
/// long (see the module documentation).
pub const BUDGET_WINDOW_SECS: u64 = 24 * 3600;
/// The default burst is 1% of the retained trail, and at least this much.
pub const BUDGET_BURST_BYTES_MIN: u64 = 256 * 1024;
/// Callers with a budget tracked at once, per file; beyond this, idle callers are forgotten, and
/// if none is idle the newcomers share one budget (`BUDGET_OVERFLOW_KEY`).
pub const BUDGET_KEYS_MAX: usize = 4096;
const BUDGET_OVERFLOW_KEY: &str = "(other callers)";
/// A caller's suppressed entries are summarized at most this often.
pub const SUMMARY_INTERVAL_MS: i64 = 60_000;
/// Distinct (operation, error code) pairs one summary lists; the rest are counted as `other`.
const SUMMARY_PAIRS_MAX: usize = 64;
/// How often the writer looks for summaries due when no event arrives.
const WRITER_TICK: Duration = Duration::from_secs(1);

/// One caller's allowance of audit bytes in one file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub bytes_per_sec: u64,
    pub burst_bytes: u64,
}

impl Budget {
    /// The default for a trail of files of `file_bytes_max` with `keep` rotated ones.
    pub fn for_trail(file_bytes_max: u64, keep: u32) -> Budget {
        let retained = file_bytes_max.saturating_mul(u64::from(keep) + 1);
        Budget {
            bytes_per_sec: (retained / BUDGET_WINDOW_SECS).max(1),
            burst_bytes: (retained / 100).max(BUDGET_BURST_BYTES_MIN),
        }
    }
}

/// Where and how the trail is written.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Authentication failures and malformed requests (see the module documentation).
    pub noise_path: PathBuf,
    pub file_bytes_max: u64,
    pub keep: u32,
    /// Also record PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard.
    pub data_plane: bool,
    /// Per caller, in each file.
    pub budget: Budget,
}

impl AuditConfig {
    /// The defaults for a trail at `path`.
    pub fn new(path: PathBuf) -> AuditConfig {
        AuditConfig {
            noise_path: default_noise_path(&path),
            path,
            file_bytes_max: FILE_BYTES_MAX_DEFAULT,
            keep: KEEP_DEFAULT,
            data_plane: false,
            budget: Budget::for_trail(FILE_BYTES_MAX_DEFAULT, KEEP_DEFAULT),
        }
    }
}

/// `dir/audit.log` → `dir/audit-noise.log`.
pub fn default_noise_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "audit".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-noise.{}", ext.to_string_lossy()),
        None => format!("{stem}-noise"),
    };
    path.with_file_name(name)
}

/// The two files of the trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trail {
    Main,
    Noise,
}

impl Trail {
    fn label(self) -> &'static str {
        match self {
            Trail::Main => "main",
            Trail::Noise => "noise",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters for `/metrics`, one set per trail (so per server).
#[derive(Default)]
struct Counters {
    written: [AtomicU64; 2],
    rotations: [AtomicU64; 2],
    suppressed_budget: [AtomicU64; 2],
    suppressed_queue_full: AtomicU64,
    truncated: AtomicU64,
}

/// The audit series of `/metrics` of a server with `audit` as its trail (zeros when it has none,
/// so alerts need no guard).
pub fn render_metrics(audit: Option<&Audit>, out: &mut String) {
    let zeros = Counters::default();
    let c = audit.map_or(&zeros, |a| &a.shared.counters);
    let _ = writeln!(
        out,
        "# HELP kinesin_audit_suppressed_total Audit entries not written in full: over their caller's \
         budget (counted into a KinesinAuditSummary line) or dropped because the writer's queue was full."
    );
    let _ = writeln!(out, "# TYPE kinesin_audit_suppressed_total counter");
    for (reason, n) in [
        ("principal_budget", c.suppressed_budget[Trail::Main.index()].load(Ordering::Relaxed)),
        ("noise_budget", c.suppressed_budget[Trail::Noise.index()].load(Ordering::Relaxed)),
        ("queue_full", c.suppressed_queue_full.load(Ordering::Relaxed)),
    ] {
        let _ = writeln!(out, "kinesin_audit_suppressed_total{{reason=\"{reason}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP kinesin_audit_truncated_total Audit entries written with a field or the request parameters cut to bound the line."
    );
    let _ = writeln!(out, "# TYPE kinesin_audit_truncated_total counter");
    let _ = writeln!(out, "kinesin_audit_truncated_total {}", c.truncated.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP kinesin_audit_events_total Audit lines written, by file (main or noise).");
    let _ = writeln!(out, "# TYPE kinesin_audit_events_total counter");
    for t in [Trail::Main, Trail::Noise] {
        let n = c.written[t.index()].load(Ordering::Relaxed);
        let _ = writeln!(out, "kinesin_audit_events_total{{file=\"{}\"}} {n}", t.label());
    }
    let _ = writeln!(
        out,
        "# HELP kinesin_audit_rotations_total Audit file rotations, by file; each may remove the oldest rotated file."
    );
    let _ = writeln!(out, "# TYPE kinesin_audit_rotations_total counter");
    for t in [Trail::Main, Trail::Noise] {
        let n = c.rotations[t.index()].load(Ordering::Relaxed);
        let _ = writeln!(out, "kinesin_audit_rotations_total{{file=\"{}\"}} {n}", t.label());
    }
}

/// What was suppressed for one caller since its last summary.
#[derive(Debug, Default)]
struct Suppressed {
    events: u64,
    bytes: u64,
    first_ms: i64,
    last_ms: i64,
    /// (operation, error code or "") → count.
    by_call: BTreeMap<(String, String), u64>,
    other_calls: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
    suppressed: Suppressed,
}

/// The per-caller budgets of one file.
struct Budgets {
    budget: Budget,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Budgets {
    fn new(budget: Budget) -> Budgets {
        Budgets { budget, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `bytes` from `key`'s bucket; `false` (and the entry counted as suppressed) when the
    /// bucket does not hold them.
    fn charge(&self, key: &str, bytes: usize, op: &str, code: &str, now_ms: i64) -> bool {
        let burst = self.budget.burst_bytes as f64;
        let rate = self.budget.bytes_per_sec as f64;
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let refill = |b: &mut Bucket| {
            let elapsed_s = (now_ms - b.last_ms).max(0) as f64 / 1000.0;
            b.tokens = (b.tokens + elapsed_s * rate).min(burst);
            b.last_ms = now_ms;
        };
        let mut key = key;
        if !map.contains_key(key) && map.len() >= BUDGET_KEYS_MAX {
            // Forget callers whose bucket is full again and who have nothing left to summarize.
            map.retain(|_, b| {
                refill(b);
                b.tokens < burst || b.suppressed.events > 0
            });
            if map.len() >= BUDGET_KEYS_MAX {
                key = BUDGET_OVERFLOW_KEY;
            }
        }
        let b = map.entry(key.to_string()).or_insert_with(|| Bucket {
            tokens: burst,
            last_ms: now_ms,
            suppressed: Suppressed::default(),
        });
        refill(b);
        if b.tokens >= bytes as f64 {
            b.tokens -= bytes as f64;
            return true;
        }
        let s = &mut b.suppressed;
        if s.events == 0 {
            s.first_ms = now_ms;
        }
        s.events += 1;
        s.bytes += bytes as u64;
        s.last_ms = now_ms;
        let pair = (op.to_string(), code.to_string());
        if s.by_call.contains_key(&pair) || s.by_call.len() < SUMMARY_PAIRS_MAX {
            *s.by_call.entry(pair).or_default() += 1;
        } else {
            s.other_calls += 1;
        }
        false
    }

    /// The summary lines due at `now_ms` (suppression started at least `SUMMARY_INTERVAL_MS`
    /// ago, or `all`), their counts reset.
    fn summaries(&self, now_ms: i64, all: bool) -> Vec<String> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines = Vec::new();
        for (key, b) in map.iter_mut() {
            let s = &b.suppressed;
            if s.events == 0 || (!all && now_ms - s.first_ms < SUMMARY_INTERVAL_MS) {
                continue;
            }
            let mut calls = Vec::new();
            for ((op, code), n) in &s.by_call {
                let code = if code.is_empty() { Value::Null } else { json!(code) };
                calls.push(json!({"eventName": op, "errorCode": code, "count": n}));
            }
            if s.other_calls > 0 {
                calls.push(json!({"eventName": "other", "count": s.other_calls}));
            }
            let line = json!({
                "eventVersion": "1.09",
                "eventTime": rfc3339(now_ms),
                "eventType": "KinesinAuditSummary",
                "caller": echo_to(key, FIELD_CHARS_MAX),
                "suppressedEvents": s.events,
                "suppressedBytes": s.bytes,
                "firstSuppressedTime": rfc3339(s.first_ms),
                "lastSuppressedTime": rfc3339(s.last_ms),
                "budget": {"bytesPerSecond": self.budget.bytes_per_sec, "burstBytes": self.budget.burst_bytes},
                "calls": calls,
            });
            lines.push(line.to_string() + "\n");
            b.suppressed = Suppressed::default();
        }
        lines
    }
}

/// One server's trail: the queue's sending end and what it shares with its writer thread.
/// Dropping it (when its server stops) ends the writer thread once the queue is written.
pub struct Audit {
    tx: SyncSender<(Trail, String)>,
    data_plane: bool,
    shared: Arc<Shared>,
}

/// What the request path and the writer thread of one trail share.
struct Shared {
    /// Events dropped since the writer last said so in the trail.
    dropped: AtomicU64,
    budgets: [Budgets; 2],
    counters: Counters,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("data_plane", &self.data_plane).finish_non_exhaustive()
    }
}

/// Opens the trail and starts its writer thread; give it to the server
/// (`ServerOptions::audit`) whose requests it records. Fails if a file cannot be opened or the
/// thread cannot start.
pub fn open(cfg: AuditConfig) -> Result<Audit, String> {
    if cfg.noise_path == cfg.path {
        return Err(format!(
            "the audit log and the audit noise log are both {}; give --audit-noise-log another file",
            cfg.path.display()
        ));
    }
    let main = Writer::open(&cfg.path, &cfg, Trail::Main)
        .map_err(|e| format!("cannot open the audit log {}: {e}", cfg.path.display()))?;
    let noise = Writer::open(&cfg.noise_path, &cfg, Trail::Noise)
        .map_err(|e| format!("cannot open the audit noise log {}: {e}", cfg.noise_path.display()))?;
    let (tx, rx) = sync_channel(QUEUE_EVENTS_MAX);
    let shared = Arc::new(Shared {
        dropped: AtomicU64::new(0),
        budgets: [Budgets::new(cfg.budget), Budgets::new(cfg.budget)],
        counters: Counters::default(),
    });
    let writer_shared = shared.clone();
    std::thread::Builder::new()
        .name("kinesin-audit".into())
        .spawn(move || run([main, noise], rx, &writer_shared))
        .map_err(|e| format!("cannot start the audit writer: {e}"))?;
    Ok(Audit { tx, data_plane: cfg.data_plane, shared })
}

/// What is known about the caller of one request.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The verified principal's ARN (none without `--credentials`, or when authentication failed).
    pub arn: Option<String>,
    /// The access key the request was signed with, as presented.
    pub access_key_id: Option<String>,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

/// One audited request.
pub struct Event<'a> {
    pub op: Op,
    pub region: &'a str,
    pub account_id: &'a str,
    pub caller: &'a Caller,
    /// The request parameters as [`request_parameters`] made them (bounded, no record data).
    pub request: Option<&'a Value>,
    pub response: Option<Value>,
    pub error: Option<(&'a str, &'a str)>,
    pub request_id: &'a str,
}

/// Error codes of requests whose caller was not authenticated.
const UNAUTHENTICATED: &[&str] = &[
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
];
/// Error codes of requests that were malformed.
const MALFORMED: &[&str] = &["SerializationException", "ValidationException"];

impl Event<'_> {
    /// The file this entry belongs in.
    pub fn trail(&self) -> Trail {
        match self.error {
            Some((code, _)) if UNAUTHENTICATED.contains(&code) || MALFORMED.contains(&code) => Trail::Noise,
            _ => Trail::Main,
        }
    }

    /// Whose budget the entry is charged to: the verified principal, else the source address
    /// (a presented access key proves nothing and costs an attacker nothing to vary).
    fn budget_key(&self) -> String {
        match &self.caller.arn {
            Some(arn) => arn.clone(),
            None => format!("source {}", self.caller.source_ip),
        }
    }
}

impl Audit {
    /// Whether a request to `op` with this outcome goes into the trail.
    pub fn wants(&self, data_plane_op: bool, auth_failure: bool) -> bool {
        auth_failure || !data_plane_op || self.data_plane
    }

    /// Queues the event's line, or counts it against its caller's budget; never blocks.
    pub fn record(&self, event: &Event<'_>) {
        let now_ms = crate::auth::unix_now_ms();
        let (line, truncated) = event.to_line(now_ms);
        let trail = event.trail();
        let code = event.error.map_or("", |(c, _)| c);
        let counters = &self.shared.counters;
        if !self.shared.budgets[trail.index()].charge(
            &event.budget_key(),
            line.len(),
            event.op.name(),
            code,
            now_ms,
        ) {
            counters.suppressed_budget[trail.index()].fetch_add(1, Ordering::Relaxed);
            return;
        }
        if truncated {
            counters.truncated.fetch_add(1, Ordering::Relaxed);
        }
        match self.tx.try_send((trail, line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                counters.suppressed_queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `s` capped at `chars` characters; sets `cut` when it was.
fn cap(s: &str, chars: usize, cut: &mut bool) -> Value {
    let c = echo_to(s, chars);
    if matches!(c, std::borrow::Cow::Owned(_)) {
        *cut = true;
    }
    Value::String(c.into_owned())
}

impl Event<'_> {
    /// The entry's line (newline included, at most `LINE_BYTES_MAX` bytes) and whether anything
    /// had to be cut to bound it.
    fn to_line(&self, now_ms: i64) -> (String, bool) {
        let mut cut = false;
        let line = self.build(now_ms, FIELD_CHARS_MAX, self.request.cloned(), &mut cut);
        if line.len() <= LINE_BYTES_MAX {
            return (line, cut);
        }
        // Too long even with each field capped: keep only the members naming the resource.
        let params_bytes = self.request.map_or(0, |v| v.to_string().len());
        let reduced = self.request.and_then(Value::as_object).map(|o| {
            let mut out = Map::new();
            for k in crate::authz::NAMING_MEMBERS {
                if let Some(v) = o.get(*k) {
                    out.insert((*k).to_string(), v.clone());
                }
            }
            out.insert("kinesinOmittedBytes".into(), json!(params_bytes));
            Value::Object(out)
        });
        let line = self.build(now_ms, FIELD_CHARS_MAX, reduced, &mut cut);
        if line.len() <= LINE_BYTES_MAX {
            return (line, true);
        }
        let line = self.build(now_ms, FIELD_CHARS_LAST_RESORT, None, &mut cut);
        debug_assert!(line.len() <= LINE_BYTES_MAX, "{} bytes", line.len());
        (line, true)
    }

    fn build(&self, now_ms: i64, chars: usize, request: Option<Value>, cut: &mut bool) -> String {
        let arn = self.caller.arn.as_deref();
        let identity_type = match arn {
            Some(a) if a.ends_with(":root") => "Root",
            Some(a) if a.contains(":assumed-role/") => "AssumedRole",
            Some(a) if a.contains(":user/") => "IAMUser",
            Some(a) if a.contains(":role/") => "Role",
            _ => "Unknown",
        };
        let account = arn.and_then(kinesin_wire::policy::arn_account).unwrap_or(self.account_id);
        let mut user = Map::new();
        user.insert("type".into(), json!(identity_type));
        if let Some(a) = arn {
            user.insert("arn".into(), cap(a, chars, cut));
        }
        user.insert("accountId".into(), cap(account, chars, cut));
        if let Some(k) = &self.caller.access_key_id {
            user.insert("accessKeyId".into(), cap(k, chars, cut));
        }
        let mut e = Map::new();
        e.insert("eventVersion".into(), json!("1.09"));
        e.insert("userIdentity".into(), Value::Object(user));
        e.insert("eventTime".into(), json!(rfc3339(now_ms)));
        e.insert("eventSource".into(), json!("kinesis.amazonaws.com"));
        e.insert("eventName".into(), cap(self.op.name(), chars, cut));
        e.insert("awsRegion".into(), json!(self.region));
        e.insert("sourceIPAddress".into(), cap(&self.caller.source_ip, chars, cut));
        e.insert("userAgent".into(), cap(self.caller.user_agent.as_deref().unwrap_or(""), chars, cut));
        if let Some((code, message)) = self.error {
            e.insert("errorCode".into(), cap(code, chars, cut));
            e.insert("errorMessage".into(), cap(message, chars, cut));
        }
        e.insert("requestParameters".into(), request.unwrap_or(Value::Null));
        let response = self.response.clone().filter(|r| r.to_string().len() <= RESPONSE_ELEMENTS_BYTES_MAX);
        e.insert("responseElements".into(), response.unwrap_or(Value::Null));
        e.insert("requestID".into(), json!(self.request_id));
        e.insert("eventID".into(), json!(uuid::Uuid::new_v4().to_string()));
        e.insert("readOnly".into(), json!(self.op.is_read_only()));
        e.insert("eventType".into(), json!("AwsApiCall"));
        e.insert("managementEvent".into(), json!(!self.op.is_data_plane()));
        e.insert("recipientAccountId".into(), json!(self.account_id));
        let mut line = Value::Object(e).to_string();
        line.push('\n');
        line
    }
}

/// Small responses as they went out; large ones (or none) as null.
pub(crate) fn response_elements(json_body: &[u8]) -> Option<Value> {
    if json_body.len() > RESPONSE_ELEMENTS_BYTES_MAX {
        return None;
    }
    serde_json::from_slice::<Value>(json_body).ok().filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
}

/// The request parameters as the trail keeps them: without record data — `Data` (PutRecord) and
/// `Records` (PutRecords, replaced by their count) — and bounded: strings cut at
/// `FIELD_CHARS_MAX` characters, objects and lists at `PARAMS_MEMBERS_MAX` members, nesting at
/// `PARAMS_DEPTH_MAX`. Works on unvalidated input too: nothing is copied past the caps.
pub(crate) fn request_parameters(v: &Value) -> Value {
    let Some(o) = v.as_object() else {
        return Value::Null;
    };
    let mut out = Map::new();
    let mut cut = false;
    for (k, v) in o.iter().take(PARAMS_MEMBERS_MAX) {
        match k.as_str() {
            "Data" => {}
            "Records" => {
                out.insert("RecordCount".into(), json!(v.as_array().map_or(0, Vec::len)));
            }
            _ => {
                out.insert(key_capped(k), bounded(v, 1, &mut cut));
            }
        }
    }
    if o.len() > PARAMS_MEMBERS_MAX {
        out.insert("kinesinOmittedMembers".into(), json!(o.len() - PARAMS_MEMBERS_MAX));
    }
    Value::Object(out)
}

fn key_capped(k: &str) -> String {
    echo_to(k, FIELD_CHARS_MAX).into_owned()
}

fn bounded(v: &Value, depth: usize, cut: &mut bool) -> Value {
    match v {
        Value::String(s) => cap(s, FIELD_CHARS_MAX, cut),
        Value::Array(_) | Value::Object(_) if depth >= PARAMS_DEPTH_MAX => {
            *cut = true;
            Value::Null
        }
        Value::Array(items) => {
            Value::Array(items.iter().take(PARAMS_MEMBERS_MAX).map(|x| bounded(x, depth + 1, cut)).collect())
        }
        Value::Object(o) => Value::Object(
            o.iter()
                .take(PARAMS_MEMBERS_MAX)
                .map(|(k, x)| (key_capped(k), bounded(x, depth + 1, cut)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `2024-01-02T03:04:05Z` from milliseconds since the epoch.
fn rfc3339(ms: i64) -> String {
    let a = kinesin_wire::sigv4::format_amz_date(ms.div_euclid(1000));
    // YYYYMMDDTHHMMSSZ
    if a.len() != 16 {
        return a;
    }
    format!("{}-{}-{}T{}:{}:{}Z", &a[0..4], &a[4..6], &a[6..8], &a[9..11], &a[11..13], &a[13..15])
}

/// The writer thread: appends each queued line to its file, summaries when due, and a
/// `KinesinAuditEventsDropped` line after a gap.
fn run(mut writers: [Writer; 2], rx: Receiver<(Trail, String)>, shared: &Shared) {
    loop {
        let first = match rx.recv_timeout(WRITER_TICK) {
            Ok(x) => Some(x),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Some((trail, line)) = first {
            writers[trail.index()].write(&line, &shared.counters);
            while let Ok((trail, line)) = rx.try_recv() {
                writers[trail.index()].write(&line, &shared.counters);
            }
        }
        let n = shared.dropped.swap(0, Ordering::Relaxed);
        if n > 0 {
            tracing::warn!(
                dropped = n,
                "audit: {n} events dropped: the audit writer fell behind and its queue of \
                 {QUEUE_EVENTS_MAX} was full"
            );
            let line = json!({
                "eventVersion": "1.09",
                "eventTime": rfc3339(crate::auth::unix_now_ms()),
                "eventType": "KinesinAuditEventsDropped",
                "droppedEvents": n,
            })
            .to_string()
                + "\n";
            writers[Trail::Main.index()].write(&line, &shared.counters);
        }
        {
            let now_ms = crate::auth::unix_now_ms();
            for trail in [Trail::Main, Trail::Noise] {
                let lines = shared.budgets[trail.index()].summaries(now_ms, false);
                if !lines.is_empty() {
                    tracing::warn!(
                        file = trail.label(),
                        callers = lines.len(),
                        "audit: callers over their audit budget; their entries are summarized \
                         (KinesinAuditSummary lines)"
                    );
                }
                for line in lines {
                    writers[trail.index()].write(&line, &shared.counters);
                }
            }
        }
        for w in writers.iter_mut() {
            w.flush();
        }
    }
    for w in writers.iter_mut() {
        w.flush();
    }
}

/// One file's state in the writer thread: the open file and its size.
struct Writer {
    path: PathBuf,
    trail: Trail,
    file_bytes_max: u64,
    keep: u32,
    out: BufWriter<File>,
    size_bytes: u64,
}

impl Writer {
    fn open(path: &Path, cfg: &AuditConfig, trail: Trail) -> std::io::Result<Writer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size_bytes = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            trail,
            file_bytes_max: cfg.file_bytes_max.max(1),
            keep: cfg.keep,
            out: BufWriter::new(file),
            size_bytes,
        })
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            tracing::error!(error = %e, path = %self.path.display(), "audit: cannot write the audit log");
        }
    }

    fn write(&mut self, line: &str, counters: &Counters) {
        if self.size_bytes > 0 && self.size_bytes + line.len() as u64 > self.file_bytes_max {
            if let Err(e) = self.rotate(counters) {
                tracing::error!(error = %e, path = %self.path.display(), "audit: cannot rotate the audit log");
            }
        }
        match self.out.write_all(line.as_bytes()) {
            Ok(()) => {
                self.size_bytes += line.len() as u64;
                counters.written[self.trail.index()].fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, path = %self.path.display(), "audit: cannot write the audit log")
            }
        }
    }

    /// `audit.log.<k>` → `audit.log.<k+1>` from the oldest down, `audit.log` → `audit.log.1`, then
    /// a new `audit.log`. With `keep = 0` the full file is simply removed.
    fn rotate(&mut self, counters: &Counters) -> std::io::Result<()> {
        self.out.flush()?;
        counters.rotations[self.trail.index()].fetch_add(1, Ordering::Relaxed);
        let numbered = |k: u32| -> PathBuf { rotated_path(&self.path, k) };
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for k in (1..self.keep).rev() {
                let from = numbered(k);
                if from.exists() {
                    std::fs::rename(&from, numbered(k + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.out = BufWriter::new(file);
        self.size_bytes = 0;
        Ok(())
    }
}

fn rotated_path(path: &Path, k: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{k}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            arn: Some("arn:aws:iam::000000000000:user/producer".into()),
            access_key_id: Some("AKIDPRODUCER".into()),
            source_ip: "127.0.0.1".into(),
            user_agent: Some("Boto3/1.0".into()),
        }
    }

    #[test]
    fn lines_are_cloudtrail_like_and_carry_no_data() {
        let body =
            request_parameters(&json!({"StreamName": "orders", "Data": "c2VjcmV0", "PartitionKey": "k"}));
        let c = caller();
        let e = Event {
            op: Op::PutRecord,
            region: "us-east-1",
            account_id: "000000000000",
            caller: &c,
            request: Some(&body),
            response: None,
            error: Some(("AccessDeniedException", "User: x is not authorized")),
            request_id: "rid",
        };
        let (line, cut) = e.to_line(1_704_164_645_000);
        assert!(!cut);
        assert_eq!(e.trail(), Trail::Main);
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["eventTime"], "2024-01-02T03:04:05Z");
        assert_eq!(v["eventSource"], "kinesis.amazonaws.com");
        assert_eq!(v["eventName"], "PutRecord");
        assert_eq!(v["userIdentity"]["type"], "IAMUser");
        assert_eq!(v["userIdentity"]["accessKeyId"], "AKIDPRODUCER");
        assert_eq!(v["userIdentity"]["accountId"], "000000000000");
        assert_eq!(v["errorCode"], "AccessDeniedException");
        assert_eq!(v["requestParameters"], json!({"StreamName": "orders", "PartitionKey": "k"}));
        assert_eq!(v["managementEvent"], false);
        assert!(!line.contains("c2VjcmV0"));
        let records = json!({"StreamName": "s", "Records": [{"Data": "eA==", "PartitionKey": "a"}, {"Data": "eQ==", "PartitionKey": "b"}]});
        assert_eq!(request_parameters(&records), json!({"StreamName": "s", "RecordCount": 2}));
    }

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let cfg = AuditConfig { file_bytes_max: 100, keep: 2, ..AuditConfig::new(path.clone()) };
        let mut w = Writer::open(&path, &cfg, Trail::Main).unwrap();
        let line = format!("{}\n", "x".repeat(59));
        for _ in 0..7 {
            w.write(&line, &Counters::default());
        }
        w.out.flush().unwrap();
        // 60-byte lines, 100-byte files: one line per file; 7 lines → current + 2 kept.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line);
        assert_eq!(std::fs::read_to_string(rotated_path(&path, 1)).unwrap(), line);
        assert!(rotated_path(&path, 2).exists());
        assert!(!rotated_path(&path, 3).exists());
        let cfg0 = AuditConfig { keep: 0, ..cfg };
        let mut w = Writer::open(&path, &cfg0, Trail::Main).unwrap();
        w.write(&line, &Counters::default());
        w.out.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line);
    }

    fn event<'a>(c: &'a Caller, request: Option<&'a Value>, error: Option<(&'a str, &'a str)>) -> Event<'a> {
        Event {
            op: Op::DescribeStreamSummary,
            region: "us-east-1",
            account_id: "000000000000",
            caller: c,
            request,
            response: None,
            error,
            request_id: "rid",
        }
    }

    #[test]
    fn every_entry_is_bounded() {
        let huge = "n".repeat(15 * 1024 * 1024);
        let mut c = caller();
        c.user_agent = Some(huge.clone());
        c.access_key_id = Some(huge.clone());
        let body = json!({"StreamName": huge, "Junk": vec![huge.clone(); 100], "Deep": [[[[[["x"]]]]]]});
        let params = request_parameters(&body);
        assert!(params.to_string().len() < 100 * 1024, "{}", params.to_string().len());
        let e = event(&c, Some(&params), Some(("AccessDeniedException", &huge)));
        let (line, cut) = e.to_line(0);
        assert!(cut);
        assert!(line.len() <= LINE_BYTES_MAX, "{}", line.len());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["requestParameters"]["StreamName"],
            format!("{}… (15728640 bytes)", "n".repeat(FIELD_CHARS_MAX))
        );
        assert_eq!(v["requestParameters"]["kinesinOmittedBytes"].as_u64().map(|n| n > 60_000), Some(true));
        assert!(v["requestParameters"].get("Junk").is_none());
        // Control characters take 6 bytes each in JSON: the last resort still fits.
        let noisy = "\u{1}".repeat(FIELD_CHARS_MAX * 2);
        c.user_agent = Some(noisy.clone());
        c.access_key_id = Some(noisy.clone());
        c.arn = Some(noisy.clone());
        let e = event(&c, Some(&params), Some(("AccessDeniedException", &noisy)));
        let (line, _) = e.to_line(0);
        assert!(line.len() <= LINE_BYTES_MAX, "{}", line.len());
        // 50 tags of legal size are kept whole.
        let tags: Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v".repeat(256)))).collect();
        let params = request_parameters(&json!({"StreamName": "s", "Tags": tags}));
        let c = caller();
        let (line, cut) = event(&c, Some(&params), None).to_line(0);
        assert!(!cut);
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap()["requestParameters"]["Tags"]
                .as_object()
                .unwrap()
                .len(),
            50
        );
    }

    #[test]
    fn noise_goes_to_its_own_file() {
        let c = caller();
        for (code, trail) in [
            ("InvalidSignatureException", Trail::Noise),
            ("UnrecognizedClientException", Trail::Noise),
            ("MissingAuthenticationTokenException", Trail::Noise),
            ("IncompleteSignatureException", Trail::Noise),
            ("ValidationException", Trail::Noise),
            ("SerializationException", Trail::Noise),
            ("AccessDeniedException", Trail::Main),
            ("ResourceNotFoundException", Trail::Main),
        ] {
            assert_eq!(event(&c, None, Some((code, "m"))).trail(), trail, "{code}");
        }
        assert_eq!(event(&c, None, None).trail(), Trail::Main);
        assert_eq!(default_noise_path(Path::new("/a/audit.log")), Path::new("/a/audit-noise.log"));
        assert_eq!(default_noise_path(Path::new("trail")), Path::new("trail-noise"));
    }

    #[test]
    fn a_caller_over_budget_is_summarized() {
        let b = Budgets::new(Budget { bytes_per_sec: 100, burst_bytes: 1000 });
        // The burst, then nothing until refilled; another caller is not affected.
        assert!(b.charge("alice", 600, "CreateStream", "", 0));
        assert!(b.charge("alice", 400, "CreateStream", "", 0));
        assert!(!b.charge("alice", 1, "DescribeStreamSummary", "AccessDeniedException", 0));
        assert!(!b.charge("alice", 300, "DescribeStreamSummary", "AccessDeniedException", 1000));
        assert!(b.charge("bob", 1000, "ListStreams", "", 1000));
        assert!(b.charge("alice", 100, "ListStreams", "", 1000));
        assert!(!b.charge("alice", 100, "ListStreams", "", 1000));
        assert!(b.summaries(SUMMARY_INTERVAL_MS - 1, false).is_empty());
        let lines = b.summaries(SUMMARY_INTERVAL_MS, false);
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["eventType"], "KinesinAuditSummary");
        assert_eq!(v["caller"], "alice");
        assert_eq!(v["suppressedEvents"], 3);
        assert_eq!(v["suppressedBytes"], 401);
        assert_eq!(
            v["calls"],
            json!([
                {"eventName": "DescribeStreamSummary", "errorCode": "AccessDeniedException", "count": 2},
                {"eventName": "ListStreams", "errorCode": null, "count": 1},
            ])
        );
        // Counts were reset.
        assert!(b.summaries(10 * SUMMARY_INTERVAL_MS, true).is_empty());
        // The default lets one caller rotate a full trail away only after a day.
        let d = Budget::for_trail(FILE_BYTES_MAX_DEFAULT, KEEP_DEFAULT);
        let retained = FILE_BYTES_MAX_DEFAULT * 6;
        assert!((retained - d.burst_bytes) / d.bytes_per_sec >= BUDGET_WINDOW_SECS * 98 / 100);
    }

    #[test]
    fn budgets_track_a_bounded_number_of_callers() {
        let b = Budgets::new(Budget { bytes_per_sec: 1, burst_bytes: 10 });
        for i in 0..BUDGET_KEYS_MAX {
            assert!(b.charge(&format!("source 10.0.{i}"), 10, "ListStreams", "", 0));
        }
        // All busy: newcomers share one budget.
        assert!(b.charge("source new-1", 10, "ListStreams", "", 0));
        assert!(!b.charge("source new-2", 10, "ListStreams", "", 0));
        assert_eq!(b.buckets.lock().unwrap().len(), BUDGET_KEYS_MAX + 1);
        // Once the others are idle (full again) they are forgotten.
        assert!(b.charge("source new-3", 10, "ListStreams", "", 100_000));
        assert!(b.buckets.lock().unwrap().len() <= 3);
    }

    #[test]
    fn small_responses_only() {
        assert_eq!(response_elements(b"{}"), None);
        assert_eq!(response_elements(br#"{"a":1}"#), Some(json!({"a": 1})));
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(RESPONSE_ELEMENTS_BYTES_MAX));
        assert_eq!(response_elements(big.as_bytes()), None);
    }
}
