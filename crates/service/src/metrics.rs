//! Kinesis's CloudWatch metrics, and the engine's own, rendered as Prometheus text (format
//! 0.0.4) for `GET /metrics`. Every metric and label is documented in `docs/metrics.md`; the
//! names follow one rule the web console depends on: `kinesis_` + the CloudWatch name in
//! snake_case (dots as underscores), counters ending in `_total`, latencies as histograms in
//! milliseconds.
//!
//! Cost on the hot path: the counters live in each stream's (and shard's) in-memory state,
//! reached through the `Arc<StreamMeta>` snapshot the call already holds, so recording is a few
//! relaxed atomic adds: no lock, no map lookup, no allocation. A stream's counters are shared by
//! every version of its snapshot (clones keep the `Arc`), start at zero when the stream is
//! created or the server starts, and disappear with the stream.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use kinesin_log::{HistogramSnapshot, LatencyHistogram, LATENCY_BUCKETS_MS};

use crate::meta::StreamMeta;
use crate::Service;

/// How often the tick thread summarizes throttling in the log (one line per stream at most).
pub const THROTTLE_LOG_INTERVAL_MS: i64 = 10_000;

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge holding the latest value set.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Stream-level metrics (CloudWatch's "basic" stream metrics).
#[derive(Debug, Default)]
pub struct StreamMetrics {
    pub incoming_bytes: Counter,
    pub incoming_records: Counter,
    pub put_record_bytes: Counter,
    pub put_record_latency: LatencyHistogram,
    pub put_record_success: Counter,
    pub put_records_bytes: Counter,
    pub put_records_latency: LatencyHistogram,
    pub put_records_records: Counter,
    pub put_records_success: Counter,
    pub put_records_failed_records: Counter,
    pub put_records_throttled_records: Counter,
    pub get_records_bytes: Counter,
    pub get_records_iterator_age_ms: Gauge,
    pub get_records_latency: LatencyHistogram,
    pub get_records_records: Counter,
    pub get_records_success: Counter,
    pub read_throttled: Counter,
    pub write_throttled: Counter,
    pub subscribe_rate_exceeded: Counter,
    pub subscribe_event_bytes: Counter,
    pub subscribe_event_millis_behind: Gauge,
    pub subscribe_event_records: Counter,
    pub subscribe_event_success: Counter,
    /// Throttle counts at the last log summary (only the tick thread touches these).
    pub(crate) logged_write_throttled: Counter,
    pub(crate) logged_read_throttled: Counter,
}

/// Shard-level metrics (CloudWatch's "enhanced" metrics). Always counted — it costs the same
/// atomic adds — but rendered only for the metrics EnableEnhancedMonitoring turned on.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    pub incoming_bytes: Counter,
    pub incoming_records: Counter,
    pub outgoing_bytes: Counter,
    pub outgoing_records: Counter,
    pub write_throttled: Counter,
    pub read_throttled: Counter,
    pub iterator_age_ms: Gauge,
}

/// Shared handles, so a snapshot clone shares its counters with the original.
pub type StreamMetricsRef = Arc<StreamMetrics>;
pub type ShardMetricsRef = Arc<ShardMetrics>;

enum Value<T> {
    Counter(fn(&T) -> &Counter),
    Gauge(fn(&T) -> &Gauge),
    Histogram(fn(&T) -> &LatencyHistogram),
}

/// One metric family: its Prometheus name, the CloudWatch metric it mirrors, and its help text.
struct Family<T: 'static> {
    name: &'static str,
    cloudwatch: &'static str,
    help: &'static str,
    value: Value<T>,
}

/// Stream-level families, in output order.
static STREAM_FAMILIES: &[Family<StreamMetrics>] = &[
    Family { name: "kinesis_incoming_bytes_total", cloudwatch: "IncomingBytes", help: "Bytes (data + partition keys) successfully put to the stream by PutRecord and PutRecords.", value: Value::Counter(|m| &m.incoming_bytes) },
    Family { name: "kinesis_incoming_records_total", cloudwatch: "IncomingRecords", help: "Records successfully put to the stream by PutRecord and PutRecords.", value: Value::Counter(|m| &m.incoming_records) },
    Family { name: "kinesis_put_record_bytes_total", cloudwatch: "PutRecord.Bytes", help: "Bytes (data + partition key) put by successful PutRecord calls.", value: Value::Counter(|m| &m.put_record_bytes) },
    Family { name: "kinesis_put_record_latency_milliseconds", cloudwatch: "PutRecord.Latency", help: "Time taken by PutRecord calls (successful or throttled), in milliseconds.", value: Value::Histogram(|m| &m.put_record_latency) },
    Family { name: "kinesis_put_record_success_total", cloudwatch: "PutRecord.Success", help: "Successful PutRecord calls.", value: Value::Counter(|m| &m.put_record_success) },
    Family { name: "kinesis_put_records_bytes_total", cloudwatch: "PutRecords.Bytes", help: "Bytes (data + partition keys) of the records PutRecords stored.", value: Value::Counter(|m| &m.put_records_bytes) },
    Family { name: "kinesis_put_records_latency_milliseconds", cloudwatch: "PutRecords.Latency", help: "Time taken by PutRecords calls, in milliseconds.", value: Value::Histogram(|m| &m.put_records_latency) },
    Family { name: "kinesis_put_records_records_total", cloudwatch: "PutRecords.Records", help: "Records PutRecords stored.", value: Value::Counter(|m| &m.put_records_records) },
    Family { name: "kinesis_put_records_success_total", cloudwatch: "PutRecords.Success", help: "PutRecords calls in which at least one record was stored.", value: Value::Counter(|m| &m.put_records_success) },
    Family { name: "kinesis_put_records_failed_records_total", cloudwatch: "PutRecords.FailedRecords", help: "Records PutRecords rejected for an internal failure.", value: Value::Counter(|m| &m.put_records_failed_records) },
    Family { name: "kinesis_put_records_throttled_records_total", cloudwatch: "PutRecords.ThrottledRecords", help: "Records PutRecords rejected for throughput (ProvisionedThroughputExceededException).", value: Value::Counter(|m| &m.put_records_throttled_records) },
    Family { name: "kinesis_get_records_bytes_total", cloudwatch: "GetRecords.Bytes", help: "Bytes (data + partition keys) returned by GetRecords.", value: Value::Counter(|m| &m.get_records_bytes) },
    Family { name: "kinesis_get_records_iterator_age_milliseconds", cloudwatch: "GetRecords.IteratorAgeMilliseconds", help: "Age of the last record of the latest GetRecords call (0 when it returned none), in milliseconds.", value: Value::Gauge(|m| &m.get_records_iterator_age_ms) },
    Family { name: "kinesis_get_records_latency_milliseconds", cloudwatch: "GetRecords.Latency", help: "Time taken by successful GetRecords calls, in milliseconds.", value: Value::Histogram(|m| &m.get_records_latency) },
    Family { name: "kinesis_get_records_records_total", cloudwatch: "GetRecords.Records", help: "Records returned by GetRecords.", value: Value::Counter(|m| &m.get_records_records) },
    Family { name: "kinesis_get_records_success_total", cloudwatch: "GetRecords.Success", help: "Successful GetRecords calls.", value: Value::Counter(|m| &m.get_records_success) },
    Family { name: "kinesis_read_provisioned_throughput_exceeded_total", cloudwatch: "ReadProvisionedThroughputExceeded", help: "GetRecords calls throttled (ProvisionedThroughputExceededException).", value: Value::Counter(|m| &m.read_throttled) },
    Family { name: "kinesis_write_provisioned_throughput_exceeded_total", cloudwatch: "WriteProvisionedThroughputExceeded", help: "Records rejected for write throughput (PutRecord calls and PutRecords records).", value: Value::Counter(|m| &m.write_throttled) },
    Family { name: "kinesis_subscribe_to_shard_rate_exceeded_total", cloudwatch: "SubscribeToShard.RateExceeded", help: "SubscribeToShard calls refused because the consumer already had a subscription to the shard started less than 5 s before, or over the shard's call rate.", value: Value::Counter(|m| &m.subscribe_rate_exceeded) },
    Family { name: "kinesis_subscribe_to_shard_event_bytes_total", cloudwatch: "SubscribeToShardEvent.Bytes", help: "Bytes (data + partition keys) sent in SubscribeToShard events.", value: Value::Counter(|m| &m.subscribe_event_bytes) },
    Family { name: "kinesis_subscribe_to_shard_event_millis_behind_latest", cloudwatch: "SubscribeToShardEvent.MillisBehindLatest", help: "MillisBehindLatest of the latest SubscribeToShard event sent.", value: Value::Gauge(|m| &m.subscribe_event_millis_behind) },
    Family { name: "kinesis_subscribe_to_shard_event_records_total", cloudwatch: "SubscribeToShardEvent.Records", help: "Records sent in SubscribeToShard events.", value: Value::Counter(|m| &m.subscribe_event_records) },
    Family { name: "kinesis_subscribe_to_shard_event_success_total", cloudwatch: "SubscribeToShardEvent.Success", help: "SubscribeToShard events sent.", value: Value::Counter(|m| &m.subscribe_event_success) },
];

/// Shard-level families (the ShardLevelMetrics of EnableEnhancedMonitoring). Those named like a
/// stream-level family are rendered inside it, as series with a `shard_id` label.
static SHARD_FAMILIES: &[Family<ShardMetrics>] = &[
    Family { name: "kinesis_incoming_bytes_total", cloudwatch: "IncomingBytes", help: "", value: Value::Counter(|m| &m.incoming_bytes) },
    Family { name: "kinesis_incoming_records_total", cloudwatch: "IncomingRecords", help: "", value: Value::Counter(|m| &m.incoming_records) },
    Family { name: "kinesis_read_provisioned_throughput_exceeded_total", cloudwatch: "ReadProvisionedThroughputExceeded", help: "", value: Value::Counter(|m| &m.read_throttled) },
    Family { name: "kinesis_write_provisioned_throughput_exceeded_total", cloudwatch: "WriteProvisionedThroughputExceeded", help: "", value: Value::Counter(|m| &m.write_throttled) },
    Family { name: "kinesis_outgoing_bytes_total", cloudwatch: "OutgoingBytes", help: "Shard level: bytes (data + partition keys) read from the shard by GetRecords and SubscribeToShard.", value: Value::Counter(|m| &m.outgoing_bytes) },
    Family { name: "kinesis_outgoing_records_total", cloudwatch: "OutgoingRecords", help: "Shard level: records read from the shard by GetRecords and SubscribeToShard.", value: Value::Counter(|m| &m.outgoing_records) },
    Family { name: "kinesis_iterator_age_milliseconds", cloudwatch: "IteratorAgeMilliseconds", help: "Shard level: age of the last record of the latest GetRecords call on the shard (0 when it returned none), in milliseconds.", value: Value::Gauge(|m| &m.iterator_age_ms) },
];

/// Escapes a label value (backslash, double quote, newline).
pub(crate) fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one histogram's `_bucket`, `_sum` and `_count` lines.
pub fn write_histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in LATENCY_BUCKETS_MS.iter().zip(h.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_ms);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

fn write_value<T>(out: &mut String, name: &str, labels: &str, value: &Value<T>, m: &T) {
    match value {
        Value::Counter(f) => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", f(m).get());
        }
        Value::Gauge(f) => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", f(m).get());
        }
        Value::Histogram(f) => write_histogram(out, name, labels, &f(m).snapshot()),
    }
}

fn kind<T>(value: &Value<T>) -> &'static str {
    match value {
        Value::Counter(_) => "counter",
        Value::Gauge(_) => "gauge",
        Value::Histogram(_) => "histogram",
    }
}

/// Whether the stream's enhanced monitoring includes `metric` (a CloudWatch shard-level name).
fn shard_level_on(s: &StreamMeta, metric: &str) -> bool {
    s.shard_level_metrics.contains(metric) || s.shard_level_metrics.contains("ALL")
}

fn shard_series(out: &mut String, s: &StreamMeta, fam: &Family<ShardMetrics>) {
    if !shard_level_on(s, fam.cloudwatch) {
        return;
    }
    let stream = escape(&s.name);
    for sh in &s.shards {
        let labels = format!("stream_name=\"{stream}\",shard_id=\"{}\"", sh.id());
        write_value(out, fam.name, &labels, &fam.value, &sh.metrics);
    }
}

impl Service {
    /// Appends the Kinesis and engine metrics, in Prometheus text format, to `out`.
    pub fn render_metrics(&self, out: &mut String) {
        let streams: Vec<Arc<StreamMeta>> = self.catalog().streams.values().cloned().collect();
        for fam in STREAM_FAMILIES {
            header(out, fam.name, kind(&fam.value), &format!("CloudWatch {}: {}", fam.cloudwatch, fam.help));
            let shard_fam = SHARD_FAMILIES.iter().find(|f| f.name == fam.name);
            for s in &streams {
                let labels = format!("stream_name=\"{}\"", escape(&s.name));
                write_value(out, fam.name, &labels, &fam.value, &s.metrics);
                if let Some(sf) = shard_fam {
                    shard_series(out, s, sf);
                }
            }
        }
        for fam in SHARD_FAMILIES.iter().filter(|f| !STREAM_FAMILIES.iter().any(|g| g.name == f.name)) {
            header(out, fam.name, kind(&fam.value), &format!("CloudWatch {}: {}", fam.cloudwatch, fam.help));
            for s in &streams {
                shard_series(out, s, fam);
            }
        }
        self.render_subscription_metrics(out);

        let stats = self.log.stats();
        header(out, "kinesin_fsync_latency_milliseconds", "histogram", "Time of each sync the log writer made (fdatasync of a segment, fsync of a directory, or one syncfs for a group-commit round touching many files), in milliseconds.");
        write_histogram(out, "kinesin_fsync_latency_milliseconds", "", &self.log.sync_latency());
        let counters: [(&str, &str, u64); 4] = [
            (
                "kinesin_segment_bytes_written_total",
                "Bytes written to shard log segment files (batch headers included).",
                stats.bytes_written,
            ),
            (
                "kinesin_log_appends_total",
                "Appends (one per shard per PutRecord/PutRecords call) made durable by the log.",
                stats.appends_ok,
            ),
            (
                "kinesin_log_append_failures_total",
                "Appends the log failed (I/O errors).",
                stats.appends_failed,
            ),
            (
                "kinesin_group_commit_rounds_total",
                "Group-commit rounds that synced something.",
                stats.sync_rounds,
            ),
        ];
        for (name, help, v) in counters {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        }
        let open_shards: u64 = streams.iter().map(|s| s.open_shard_count()).sum();
        let gauges: [(&str, &str, f64); 5] = [
            (
                "kinesin_open_segment_files",
                "Segment files held open now by the log's handle cache.",
                stats.open_files as f64,
            ),
            (
                "kinesin_log_tail_bytes",
                "Bytes of recent records held in memory for reads near the tip.",
                stats.tail_bytes as f64,
            ),
            (
                "kinesin_recovery_seconds",
                "Time the last start took to open the metadata and recover the shard logs, in seconds.",
                self.recovery_time.as_secs_f64(),
            ),
            ("kinesin_streams", "Streams (in any status).", streams.len() as f64),
            ("kinesin_open_shards", "Open shards of all streams.", open_shards as f64),
        ];
        for (name, help, v) in gauges {
            header(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {v}");
        }
    }

    /// Logs, per stream, the throttling of the last interval as one line (never one per record).
    pub(crate) fn log_throttling(&self, streams: &[Arc<StreamMeta>]) {
        for s in streams {
            let m = &s.metrics;
            let (w, r) = (m.write_throttled.get(), m.read_throttled.get());
            let (w0, r0) = (m.logged_write_throttled.get(), m.logged_read_throttled.get());
            if w == w0 && r == r0 {
                continue;
            }
            m.logged_write_throttled.add(w - w0);
            m.logged_read_throttled.add(r - r0);
            tracing::warn!(
                stream = %s.name,
                write_throttled_records = w - w0,
                read_throttled_calls = r - r0,
                interval_s = THROTTLE_LOG_INTERVAL_MS / 1000,
                "throughput exceeded (ProvisionedThroughputExceededException answered)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        fn snake(cw: &str) -> String {
            let mut out = String::new();
            for (i, c) in cw.chars().enumerate() {
                if c == '.' {
                    out.push('_');
                } else if c.is_ascii_uppercase() {
                    if i > 0 && !out.ends_with('_') {
                        out.push('_');
                    }
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        }
        let check = |name: &str, cw: &str, kind: &str| {
            let base = format!("kinesis_{}", snake(cw));
            let want = match kind {
                "counter" => format!("{base}_total"),
                "histogram" => format!("{base}_milliseconds"),
                _ => base,
            };
            assert_eq!(name, want, "{cw}");
        };
        for f in STREAM_FAMILIES {
            check(f.name, f.cloudwatch, kind(&f.value));
        }
        for f in SHARD_FAMILIES {
            check(f.name, f.cloudwatch, kind(&f.value));
        }
        assert_eq!(snake("PutRecords.FailedRecords"), "put_records_failed_records");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("orders"), "orders");
    }
}
