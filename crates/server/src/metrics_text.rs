//! Kinesis's CloudWatch metrics and the engine's own, rendered from the service's figures
//! (`kinesin_service::metrics::MetricsSnapshot`) as Prometheus text (format 0.0.4) for
//! `GET /metrics`. Every metric and label is documented in `docs/metrics.md`; the names follow one
//! rule the web console depends on: `kinesis_` + the CloudWatch name in snake_case (dots as
//! underscores), counters ending in `_total`, latencies as histograms in milliseconds.

use std::fmt::Write as _;

use kinesin_log::{HistogramSnapshot, LatencyHistogram, LATENCY_BUCKETS_MS};
use kinesin_service::metrics::{Counter, Gauge, MetricsSnapshot, ShardMetrics, StreamFigures, StreamMetrics};

enum Figure<T> {
    Counter(fn(&T) -> &Counter),
    Gauge(fn(&T) -> &Gauge),
    Histogram(fn(&T) -> &LatencyHistogram),
}

/// One metric family: its Prometheus name, the CloudWatch metric it mirrors, and its help text.
struct Family<T: 'static> {
    name: &'static str,
    cloudwatch: &'static str,
    help: &'static str,
    value: Figure<T>,
}

/// Stream-level families, in output order.
static STREAM_FAMILIES: &[Family<StreamMetrics>] = &[
    Family { name: "kinesis_incoming_bytes_total", cloudwatch: "IncomingBytes", help: "Bytes (data + partition keys) successfully put to the stream by PutRecord and PutRecords.", value: Figure::Counter(|m| &m.incoming_bytes) },
    Family { name: "kinesis_incoming_records_total", cloudwatch: "IncomingRecords", help: "Records successfully put to the stream by PutRecord and PutRecords.", value: Figure::Counter(|m| &m.incoming_records) },
    Family { name: "kinesis_put_record_bytes_total", cloudwatch: "PutRecord.Bytes", help: "Bytes (data + partition key) put by successful PutRecord calls.", value: Figure::Counter(|m| &m.put_record_bytes) },
    Family { name: "kinesis_put_record_latency_milliseconds", cloudwatch: "PutRecord.Latency", help: "Time taken by PutRecord calls (successful or throttled), in milliseconds.", value: Figure::Histogram(|m| &m.put_record_latency) },
    Family { name: "kinesis_put_record_success_total", cloudwatch: "PutRecord.Success", help: "Successful PutRecord calls.", value: Figure::Counter(|m| &m.put_record_success) },
    Family { name: "kinesis_put_records_bytes_total", cloudwatch: "PutRecords.Bytes", help: "Bytes (data + partition keys) of the records PutRecords stored.", value: Figure::Counter(|m| &m.put_records_bytes) },
    Family { name: "kinesis_put_records_latency_milliseconds", cloudwatch: "PutRecords.Latency", help: "Time taken by PutRecords calls, in milliseconds.", value: Figure::Histogram(|m| &m.put_records_latency) },
    Family { name: "kinesis_put_records_records_total", cloudwatch: "PutRecords.Records", help: "Records PutRecords stored.", value: Figure::Counter(|m| &m.put_records_records) },
    Family { name: "kinesis_put_records_success_total", cloudwatch: "PutRecords.Success", help: "PutRecords calls in which at least one record was stored.", value: Figure::Counter(|m| &m.put_records_success) },
    Family { name: "kinesis_put_records_failed_records_total", cloudwatch: "PutRecords.FailedRecords", help: "Records PutRecords rejected for an internal failure.", value: Figure::Counter(|m| &m.put_records_failed_records) },
    Family { name: "kinesis_put_records_throttled_records_total", cloudwatch: "PutRecords.ThrottledRecords", help: "Records PutRecords rejected for throughput (ProvisionedThroughputExceededException).", value: Figure::Counter(|m| &m.put_records_throttled_records) },
    Family { name: "kinesis_get_records_bytes_total", cloudwatch: "GetRecords.Bytes", help: "Bytes (data + partition keys) returned by GetRecords.", value: Figure::Counter(|m| &m.get_records_bytes) },
    Family { name: "kinesis_get_records_iterator_age_milliseconds", cloudwatch: "GetRecords.IteratorAgeMilliseconds", help: "Age of the last record of the latest GetRecords call (0 when it returned none), in milliseconds.", value: Figure::Gauge(|m| &m.get_records_iterator_age_ms) },
    Family { name: "kinesis_get_records_latency_milliseconds", cloudwatch: "GetRecords.Latency", help: "Time taken by successful GetRecords calls, in milliseconds.", value: Figure::Histogram(|m| &m.get_records_latency) },
    Family { name: "kinesis_get_records_records_total", cloudwatch: "GetRecords.Records", help: "Records returned by GetRecords.", value: Figure::Counter(|m| &m.get_records_records) },
    Family { name: "kinesis_get_records_success_total", cloudwatch: "GetRecords.Success", help: "Successful GetRecords calls.", value: Figure::Counter(|m| &m.get_records_success) },
    Family { name: "kinesis_read_provisioned_throughput_exceeded_total", cloudwatch: "ReadProvisionedThroughputExceeded", help: "GetRecords calls throttled (ProvisionedThroughputExceededException).", value: Figure::Counter(|m| &m.read_throttled) },
    Family { name: "kinesis_write_provisioned_throughput_exceeded_total", cloudwatch: "WriteProvisionedThroughputExceeded", help: "Records rejected for write throughput (PutRecord calls and PutRecords records).", value: Figure::Counter(|m| &m.write_throttled) },
    Family { name: "kinesis_subscribe_to_shard_rate_exceeded_total", cloudwatch: "SubscribeToShard.RateExceeded", help: "SubscribeToShard calls refused because the consumer already had a subscription to the shard started less than 5 s before, or over the shard's call rate.", value: Figure::Counter(|m| &m.subscribe_rate_exceeded) },
    Family { name: "kinesis_subscribe_to_shard_event_bytes_total", cloudwatch: "SubscribeToShardEvent.Bytes", help: "Bytes (data + partition keys) sent in SubscribeToShard events.", value: Figure::Counter(|m| &m.subscribe_event_bytes) },
    Family { name: "kinesis_subscribe_to_shard_event_millis_behind_latest", cloudwatch: "SubscribeToShardEvent.MillisBehindLatest", help: "MillisBehindLatest of the latest SubscribeToShard event sent.", value: Figure::Gauge(|m| &m.subscribe_event_millis_behind) },
    Family { name: "kinesis_subscribe_to_shard_event_records_total", cloudwatch: "SubscribeToShardEvent.Records", help: "Records sent in SubscribeToShard events.", value: Figure::Counter(|m| &m.subscribe_event_records) },
    Family { name: "kinesis_subscribe_to_shard_event_success_total", cloudwatch: "SubscribeToShardEvent.Success", help: "SubscribeToShard events sent.", value: Figure::Counter(|m| &m.subscribe_event_success) },
];

/// Shard-level families (the ShardLevelMetrics of EnableEnhancedMonitoring). Those named like a
/// stream-level family are rendered inside it, as series with a `shard_id` label.
static SHARD_FAMILIES: &[Family<ShardMetrics>] = &[
    Family { name: "kinesis_incoming_bytes_total", cloudwatch: "IncomingBytes", help: "", value: Figure::Counter(|m| &m.incoming_bytes) },
    Family { name: "kinesis_incoming_records_total", cloudwatch: "IncomingRecords", help: "", value: Figure::Counter(|m| &m.incoming_records) },
    Family { name: "kinesis_read_provisioned_throughput_exceeded_total", cloudwatch: "ReadProvisionedThroughputExceeded", help: "", value: Figure::Counter(|m| &m.read_throttled) },
    Family { name: "kinesis_write_provisioned_throughput_exceeded_total", cloudwatch: "WriteProvisionedThroughputExceeded", help: "", value: Figure::Counter(|m| &m.write_throttled) },
    Family { name: "kinesis_outgoing_bytes_total", cloudwatch: "OutgoingBytes", help: "Shard level: bytes (data + partition keys) read from the shard by GetRecords and SubscribeToShard.", value: Figure::Counter(|m| &m.outgoing_bytes) },
    Family { name: "kinesis_outgoing_records_total", cloudwatch: "OutgoingRecords", help: "Shard level: records read from the shard by GetRecords and SubscribeToShard.", value: Figure::Counter(|m| &m.outgoing_records) },
    Family { name: "kinesis_iterator_age_milliseconds", cloudwatch: "IteratorAgeMilliseconds", help: "Shard level: age of the last record of the latest GetRecords call on the shard (0 when it returned none), in milliseconds.", value: Figure::Gauge(|m| &m.iterator_age_ms) },
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

fn write_value<T>(out: &mut String, name: &str, labels: &str, value: &Figure<T>, m: &T) {
    match value {
        Figure::Counter(f) => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", f(m).get());
        }
        Figure::Gauge(f) => {
            let _ = writeln!(out, "{name}{{{labels}}} {}", f(m).get());
        }
        Figure::Histogram(f) => write_histogram(out, name, labels, &f(m).snapshot()),
    }
}

fn kind<T>(value: &Figure<T>) -> &'static str {
    match value {
        Figure::Counter(_) => "counter",
        Figure::Gauge(_) => "gauge",
        Figure::Histogram(_) => "histogram",
    }
}

fn shard_series(out: &mut String, s: &StreamFigures, fam: &Family<ShardMetrics>) {
    if !s.shard_level_on(fam.cloudwatch) {
        return;
    }
    let stream = escape(&s.name);
    for (id, metrics) in &s.shards {
        let labels = format!("stream_name=\"{stream}\",shard_id=\"{id}\"");
        write_value(out, fam.name, &labels, &fam.value, metrics);
    }
}

/// Appends the Kinesis and engine metrics of `snap`, in Prometheus text format, to `out`.
pub fn render(out: &mut String, snap: &MetricsSnapshot) {
    let streams = &snap.streams;
    for fam in STREAM_FAMILIES {
        header(out, fam.name, kind(&fam.value), &format!("CloudWatch {}: {}", fam.cloudwatch, fam.help));
        let shard_fam = SHARD_FAMILIES.iter().find(|f| f.name == fam.name);
        for s in streams {
            let labels = format!("stream_name=\"{}\"", escape(&s.name));
            write_value(out, fam.name, &labels, &fam.value, &s.metrics);
            if let Some(sf) = shard_fam {
                shard_series(out, s, sf);
            }
        }
    }
    for fam in SHARD_FAMILIES.iter().filter(|f| !STREAM_FAMILIES.iter().any(|g| g.name == f.name)) {
        header(out, fam.name, kind(&fam.value), &format!("CloudWatch {}: {}", fam.cloudwatch, fam.help));
        for s in streams {
            shard_series(out, s, fam);
        }
    }
    render_subscriptions(out, snap);

    let stats = &snap.log;
    header(out, "kinesin_fsync_latency_milliseconds", "histogram", "Time of each sync the log writer made (fdatasync of a segment, fsync of a directory, or one syncfs for a group-commit round touching many files), in milliseconds.");
    write_histogram(out, "kinesin_fsync_latency_milliseconds", "", &snap.fsync_latency);
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
        ("kinesin_log_append_failures_total", "Appends the log failed (I/O errors).", stats.appends_failed),
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
    let open_shards: u64 = streams.iter().map(|s| s.open_shards).sum();
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
            snap.recovery.as_secs_f64(),
        ),
        ("kinesin_streams", "Streams (in any status).", streams.len() as f64),
        ("kinesin_open_shards", "Open shards of all streams.", open_shards as f64),
    ];
    for (name, help, v) in gauges {
        header(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {v}");
    }
}

/// `kinesin_subscription_millis_behind_latest`: one series per live subscription (consumer and
/// shard), the MillisBehindLatest of the latest event it sent. CloudWatch's
/// SubscribeToShardEvent.MillisBehindLatest is per stream only, which hides one slow consumer
/// behind fast ones; the web console shows this per consumer. A series exists while the
/// subscription is live (at most 5 minutes each; the consumer subscribes again to go on).
fn render_subscriptions(out: &mut String, snap: &MetricsSnapshot) {
    let name = "kinesin_subscription_millis_behind_latest";
    let _ = writeln!(out, "# HELP {name} MillisBehindLatest of the latest SubscribeToShard event sent to each live subscription (enhanced fan-out consumer and shard), in milliseconds.");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for sub in &snap.subscriptions {
        let _ = writeln!(
            out,
            "{name}{{stream_name=\"{}\",consumer_name=\"{}\",shard_id=\"{}\"}} {}",
            escape(&sub.stream),
            escape(&sub.consumer),
            sub.shard,
            sub.millis_behind_latest
        );
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
    fn subscriptions_render_one_series_each() {
        use kinesin_service::metrics::SubscriptionFigures;
        let snap = MetricsSnapshot {
            streams: Vec::new(),
            subscriptions: vec![SubscriptionFigures {
                stream: "lag".into(),
                consumer: "bill\"ing".into(),
                shard: kinesin_wire::ids::ShardId(0),
                millis_behind_latest: 42,
            }],
            log: Default::default(),
            fsync_latency: LatencyHistogram::default().snapshot(),
            recovery: std::time::Duration::ZERO,
        };
        let mut out = String::new();
        render(&mut out, &snap);
        let lines: Vec<&str> =
            out.lines().filter(|l| l.starts_with("kinesin_subscription_millis_behind_latest{")).collect();
        assert_eq!(
            lines,
            ["kinesin_subscription_millis_behind_latest{stream_name=\"lag\",consumer_name=\"bill\\\"ing\",shard_id=\"shardId-000000000000\"} 42"]
        );
        assert!(out.contains("\nkinesin_streams 0\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("orders"), "orders");
    }
}
