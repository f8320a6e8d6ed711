//! The audit trail: one CloudTrail-like JSON line per control-plane call, per authentication or
//! authorization failure, and — with `data_plane` — per data-plane call.
//!
//! Requests never wait on the disk: an event is serialized on the request path and handed to a
//! bounded queue (`QUEUE_EVENTS_MAX`); one writer thread appends the lines and rotates the file by
//! size (`audit.log` → `audit.log.1` → … → `audit.log.<keep>`, the oldest removed). When the queue
//! is full the event is **dropped, not waited for** — an audit log must not become a way to stall
//! the server — and counted: the writer then writes a `KinesinAuditEventsDropped` line with the
//! count into the log itself and warns in the server log, so a gap is never silent.
//!
//! Record data never enters the trail: `Data` and `Records` are removed from request parameters.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// Events waiting for the writer; beyond this they are dropped (and counted).
pub const QUEUE_EVENTS_MAX: usize = 8192;
/// Largest `responseElements` kept, in bytes of JSON; bigger responses are recorded as null.
pub const RESPONSE_ELEMENTS_BYTES_MAX: usize = 4096;
/// Default size at which the file rotates.
pub const FILE_BYTES_MAX_DEFAULT: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept.
pub const KEEP_DEFAULT: u32 = 5;

/// Where and how the trail is written.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    pub path: PathBuf,
    pub file_bytes_max: u64,
    pub keep: u32,
    /// Also record PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard.
    pub data_plane: bool,
}

/// The installed trail: the queue's sending end and the drop counter.
pub struct Audit {
    tx: SyncSender<String>,
    dropped: &'static AtomicU64,
    data_plane: bool,
}

static INSTALLED: OnceLock<Audit> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Opens the trail and starts its writer thread; from then on every request of this process is
/// recorded. Fails if the file cannot be opened or a trail is installed already.
pub fn install(cfg: AuditConfig) -> Result<(), String> {
    let writer =
        Writer::open(&cfg).map_err(|e| format!("cannot open the audit log {}: {e}", cfg.path.display()))?;
    let (tx, rx) = sync_channel(QUEUE_EVENTS_MAX);
    let audit = Audit { tx, dropped: &DROPPED, data_plane: cfg.data_plane };
    INSTALLED.set(audit).map_err(|_| "an audit log is installed already".to_string())?;
    std::thread::Builder::new()
        .name("kinesin-audit".into())
        .spawn(move || writer.run(rx, &DROPPED))
        .map_err(|e| format!("cannot start the audit writer: {e}"))?;
    Ok(())
}

pub(crate) fn installed() -> Option<&'static Audit> {
    INSTALLED.get()
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
    pub op: &'a str,
    pub region: &'a str,
    pub account_id: &'a str,
    pub caller: &'a Caller,
    /// The request body, already validated (record data is removed here too).
    pub request: Option<&'a Value>,
    pub response: Option<Value>,
    pub error: Option<(&'a str, &'a str)>,
    pub request_id: &'a str,
}

impl Audit {
    /// Whether a request to `op` with this outcome goes into the trail.
    pub fn wants(&self, data_plane_op: bool, auth_failure: bool) -> bool {
        auth_failure || !data_plane_op || self.data_plane
    }

    /// Queues the event's line; never blocks.
    pub fn record(&self, event: &Event<'_>) {
        let line = event.to_line(crate::auth::unix_now_ms());
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Event<'_> {
    fn to_line(&self, now_ms: i64) -> String {
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
            user.insert("arn".into(), json!(a));
        }
        user.insert("accountId".into(), json!(account));
        if let Some(k) = &self.caller.access_key_id {
            user.insert("accessKeyId".into(), json!(k));
        }
        let mut e = Map::new();
        e.insert("eventVersion".into(), json!("1.09"));
        e.insert("userIdentity".into(), Value::Object(user));
        e.insert("eventTime".into(), json!(rfc3339(now_ms)));
        e.insert("eventSource".into(), json!("kinesis.amazonaws.com"));
        e.insert("eventName".into(), json!(self.op));
        e.insert("awsRegion".into(), json!(self.region));
        e.insert("sourceIPAddress".into(), json!(self.caller.source_ip));
        e.insert("userAgent".into(), json!(self.caller.user_agent.as_deref().unwrap_or("")));
        if let Some((code, message)) = self.error {
            e.insert("errorCode".into(), json!(code));
            e.insert("errorMessage".into(), json!(message));
        }
        e.insert("requestParameters".into(), self.request.map(request_parameters).unwrap_or(Value::Null));
        e.insert("responseElements".into(), self.response.clone().unwrap_or(Value::Null));
        e.insert("requestID".into(), json!(self.request_id));
        e.insert("eventID".into(), json!(uuid::Uuid::new_v4().to_string()));
        e.insert("readOnly".into(), json!(is_read_only(self.op)));
        e.insert("eventType".into(), json!("AwsApiCall"));
        e.insert("managementEvent".into(), json!(!crate::is_data_plane(self.op)));
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

fn is_read_only(op: &str) -> bool {
    op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get") || op == "SubscribeToShard"
}

/// The request parameters without record data: `Data` (PutRecord) and `Records` (PutRecords,
/// replaced by their count). Record data is never copied.
pub(crate) fn request_parameters(v: &Value) -> Value {
    let Some(o) = v.as_object() else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (k, v) in o {
        match k.as_str() {
            "Data" => {}
            "Records" => {
                out.insert("RecordCount".into(), json!(v.as_array().map_or(0, Vec::len)));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
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

/// The writer thread's state: the open file and its size.
struct Writer {
    path: PathBuf,
    file_bytes_max: u64,
    keep: u32,
    out: BufWriter<File>,
    size_bytes: u64,
}

impl Writer {
    fn open(cfg: &AuditConfig) -> std::io::Result<Writer> {
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&cfg.path)?;
        let size_bytes = file.metadata()?.len();
        Ok(Writer {
            path: cfg.path.clone(),
            file_bytes_max: cfg.file_bytes_max.max(1),
            keep: cfg.keep,
            out: BufWriter::new(file),
            size_bytes,
        })
    }

    fn run(mut self, rx: Receiver<String>, dropped: &AtomicU64) {
        while let Ok(first) = rx.recv() {
            self.write(&first);
            while let Ok(line) = rx.try_recv() {
                self.write(&line);
            }
            let n = dropped.swap(0, Ordering::Relaxed);
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
                self.write(&line);
            }
            if let Err(e) = self.out.flush() {
                tracing::error!(error = %e, path = %self.path.display(), "audit: cannot write the audit log");
            }
        }
        let _ = self.out.flush();
    }

    fn write(&mut self, line: &str) {
        if self.size_bytes > 0 && self.size_bytes + line.len() as u64 > self.file_bytes_max {
            if let Err(e) = self.rotate() {
                tracing::error!(error = %e, path = %self.path.display(), "audit: cannot rotate the audit log");
            }
        }
        match self.out.write_all(line.as_bytes()) {
            Ok(()) => self.size_bytes += line.len() as u64,
            Err(e) => {
                tracing::error!(error = %e, path = %self.path.display(), "audit: cannot write the audit log")
            }
        }
    }

    /// `audit.log.<k>` → `audit.log.<k+1>` from the oldest down, `audit.log` → `audit.log.1`, then
    /// a new `audit.log`. With `keep = 0` the full file is simply removed.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
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
        let body = json!({"StreamName": "orders", "Data": "c2VjcmV0", "PartitionKey": "k"});
        let c = caller();
        let e = Event {
            op: "PutRecord",
            region: "us-east-1",
            account_id: "000000000000",
            caller: &c,
            request: Some(&body),
            response: None,
            error: Some(("AccessDeniedException", "User: x is not authorized")),
            request_id: "rid",
        };
        let line = e.to_line(1_704_164_645_000);
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
        let cfg = AuditConfig { path: path.clone(), file_bytes_max: 100, keep: 2, data_plane: false };
        let mut w = Writer::open(&cfg).unwrap();
        let line = format!("{}\n", "x".repeat(59));
        for _ in 0..7 {
            w.write(&line);
        }
        w.out.flush().unwrap();
        // 60-byte lines, 100-byte files: one line per file; 7 lines → current + 2 kept.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line);
        assert_eq!(std::fs::read_to_string(rotated_path(&path, 1)).unwrap(), line);
        assert!(rotated_path(&path, 2).exists());
        assert!(!rotated_path(&path, 3).exists());
        let cfg0 = AuditConfig { keep: 0, ..cfg };
        let mut w = Writer::open(&cfg0).unwrap();
        w.write(&line);
        w.out.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line);
    }

    #[test]
    fn small_responses_only() {
        assert_eq!(response_elements(b"{}"), None);
        assert_eq!(response_elements(br#"{"a":1}"#), Some(json!({"a": 1})));
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(RESPONSE_ELEMENTS_BYTES_MAX));
        assert_eq!(response_elements(big.as_bytes()), None);
    }
}
