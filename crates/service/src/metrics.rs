//! Kinesis's CloudWatch metrics, and the engine's own, as typed figures
//! ([`MetricsSnapshot`]); the server renders them as Prometheus text for `GET /metrics`
//! (documented in `docs/metrics.md`).
//!
//! Cost on the hot path: the counters live in each stream's (and shard's) in-memory state,
//! reached through the `Arc<StreamMeta>` snapshot the call already holds, so recording is a few
//! relaxed atomic adds: no lock, no map lookup, no allocation. A stream's counters are shared by
//! every version of its snapshot (clones keep the `Arc`), start at zero when the stream is
//! created or the server starts, and disappear with the stream.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use kinesin_log::LatencyHistogram;
use kinesin_wire::ids::ShardId;

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

/// The figures `GET /metrics` shows, read at one moment. The service keeps the counters; the
/// server renders them as Prometheus text (`kinesin_server::metrics_text`).
#[derive(Debug)]
pub struct MetricsSnapshot {
    /// Every stream (in any status), in name order.
    pub streams: Vec<StreamFigures>,
    /// Live SubscribeToShard subscriptions that have sent an event, sorted by stream, consumer
    /// and shard.
    pub subscriptions: Vec<SubscriptionFigures>,
    /// The record log's counters since it was opened.
    pub log: kinesin_log::LogStats,
    /// The log writer's sync latencies.
    pub fsync_latency: kinesin_log::HistogramSnapshot,
    /// How long the last start took to open the metadata and recover the shard logs.
    pub recovery: std::time::Duration,
}

/// One stream's figures: its own counters, and its shards' for enhanced monitoring.
#[derive(Debug)]
pub struct StreamFigures {
    pub name: String,
    pub metrics: StreamMetricsRef,
    /// The shard-level metrics EnableEnhancedMonitoring turned on (CloudWatch names, or `ALL`).
    pub shard_level_metrics: std::collections::BTreeSet<String>,
    /// Every shard the stream still lists, open or closed.
    pub shards: Vec<(ShardId, ShardMetricsRef)>,
    pub open_shards: u64,
}

impl StreamFigures {
    /// Whether enhanced monitoring includes `metric` (a CloudWatch shard-level name).
    pub fn shard_level_on(&self, metric: &str) -> bool {
        self.shard_level_metrics.contains(metric) || self.shard_level_metrics.contains("ALL")
    }
}

/// One live enhanced fan-out subscription.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubscriptionFigures {
    pub stream: String,
    pub consumer: String,
    pub shard: ShardId,
    /// MillisBehindLatest of the latest event sent.
    pub millis_behind_latest: i64,
}

impl Service {
    /// The Kinesis and engine figures, for `/metrics`.
    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        let streams: Vec<Arc<StreamMeta>> = self.table().streams.values().cloned().collect();
        MetricsSnapshot {
            streams: streams
                .iter()
                .map(|s| StreamFigures {
                    name: s.name.clone(),
                    metrics: s.metrics.clone(),
                    shard_level_metrics: s.shard_level_metrics.clone(),
                    shards: s.shards.iter().map(|sh| (sh.id(), sh.metrics.clone())).collect(),
                    open_shards: s.open_shard_count(),
                })
                .collect(),
            subscriptions: self.subscription_figures(),
            log: self.log.stats(),
            fsync_latency: self.log.sync_latency(),
            recovery: self.recovery_time,
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
