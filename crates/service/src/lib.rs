//! The Kinesis service: streams, shards, iterators and their rules, on top of the record log and
//! the metadata store. Its one entry point, [`Service::handle`], takes a typed
//! [`Request`](kinesin_wire::request::Request) and answers a typed [`Response`] or an error; it
//! knows nothing of HTTP, JSON or Prometheus text (`metrics::MetricsSnapshot` gives the figures).
//!
//! Concurrency: one mutex guards the stream table. Data-plane calls hold it only to look up a
//! stream snapshot (`Arc<StreamMeta>`); appends and reads run outside it. Control-plane calls hold
//! it across their metadata commit, which serializes them (as AWS's low control-plane rates do).

mod consumers;
mod control;
mod data;
pub mod error;
pub mod kms;
pub mod limits;
pub mod meta;
pub mod metrics;
pub mod reshard;
mod scaling;
mod time;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ServiceError;
use kinesin_log::{Durability, Log, LogConfig, LogId};
use kinesin_wire::error::echo;
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ids::StreamArn;
use kinesin_wire::ops::Output;
use kinesin_wire::request::Request;
use kinesin_wire::token::TokenKey;

pub use consumers::SubscribeEvent;
use limits::LimitsConfig;
use meta::{AccountSettings, Change, Counters, MetaStore, StreamMeta, StreamStatus};
pub use time::Clock;

/// The service's answer to one request.
#[derive(Debug)]
pub enum Response {
    /// Every operation but SubscribeToShard: its typed output.
    Output(Output),
    /// SubscribeToShard: the subscription's events, as they come (the caller sends
    /// `initial-response` first, then one message per event).
    Events(tokio::sync::mpsc::Receiver<SubscribeEvent>),
}

/// How long shard iterators and pagination tokens stay valid (AWS: 5 minutes).
pub const TOKEN_LIFETIME_MS: i64 = 300_000;
/// How often the background task applies due status transitions.
pub const TICK_INTERVAL_MS: u64 = 100;
/// Deleted stream names remembered for error messages.
pub const TOMBSTONES_MAX: usize = 10_000;
/// How often retention drops expired segments.
pub const RETENTION_SWEEP_INTERVAL_MS: i64 = 60_000;

/// Everything the service needs to start.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// How long a new stream stays CREATING.
    pub create_stream_ms: u64,
    /// How long a deleted stream stays DELETING before it disappears.
    pub delete_stream_ms: u64,
    /// How long an updated stream stays UPDATING.
    pub update_stream_ms: u64,
    /// Account limit on open shards (AWS: 500 in the large regions).
    pub shard_limit: u64,
    /// Account limit on ON_DEMAND streams (AWS: 50).
    pub on_demand_stream_limit: u64,
    pub durability: Durability,
    /// Throughput and call-rate limits (`--limits`, `--shard-limits`).
    pub limits: LimitsConfig,
    /// UpdateShardCount calls per stream per rolling 24 hours (AWS: 10).
    pub scalings_per_day: u32,
    /// On-demand scaling: a shard whose write demand stays above this share of its write limit
    /// for `autoscale_hot_secs` seconds is split.
    pub autoscale_hot_share: f64,
    pub autoscale_hot_secs: u32,
    /// Two neighbouring shards that both stay below this share for `autoscale_cold_secs` merge
    /// (never below the initial 4 shards).
    pub autoscale_cold_share: f64,
    pub autoscale_cold_secs: u32,
    /// Where the KMS master keys come from (`--kms-keyring`, `KINESIN_KMS_KEYS`).
    pub kms_keyring: kms::KeyringConfig,
}

impl ServiceConfig {
    pub fn new(data_dir: PathBuf) -> ServiceConfig {
        ServiceConfig {
            data_dir,
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            // Instant by default, so that SDK waiters (boto3's stream_exists polls every 10 s)
            // and scripts need not wait; the flags model AWS's delays when a test wants them.
            create_stream_ms: 0,
            delete_stream_ms: 0,
            update_stream_ms: 0,
            shard_limit: 500,
            on_demand_stream_limit: 50,
            durability: Durability::Fsync,
            limits: LimitsConfig::aws(),
            scalings_per_day: 10,
            autoscale_hot_share: 0.8,
            autoscale_hot_secs: 3,
            autoscale_cold_share: 0.1,
            autoscale_cold_secs: 600,
            kms_keyring: kms::KeyringConfig::default(),
        }
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Meta(#[from] meta::MetaError),
    #[error("record log: {0}")]
    Log(#[from] kinesin_log::LogError),
    #[error(transparent)]
    Kms(#[from] kms::KeyringError),
}

pub(crate) struct State {
    pub streams: BTreeMap<String, Arc<StreamMeta>>,
    /// Live incarnations, for iterators and page tokens.
    pub by_incarnation: HashMap<u64, String>,
    /// Names of deleted incarnations, for the messages about their old iterators (bounded).
    pub tombstones: HashMap<u64, String>,
    pub counters: Counters,
    pub settings: AccountSettings,
    pub last_retention_sweep_ms: i64,
    pub last_autoscale_ms: i64,
    pub last_throttle_log_ms: i64,
}

/// The Kinesis service of one account and region.
pub struct Service {
    pub(crate) cfg: ServiceConfig,
    pub(crate) log: Log,
    pub(crate) store: MetaStore,
    pub(crate) state: Mutex<State>,
    pub(crate) token_key: TokenKey,
    pub(crate) clock: Clock,
    /// Write gates of the shards, by log id (see `reshard`).
    pub(crate) gates: Mutex<HashMap<u64, Arc<reshard::Gate>>>,
    pub(crate) limiter: limits::Limiter,
    /// Per shard log with subscribers: signalled after each durable append (enhanced fan-out).
    pub(crate) appended: Mutex<HashMap<u64, Arc<tokio::sync::Notify>>>,
    /// Live SubscribeToShard subscriptions by (ConsumerARN, shard index).
    pub(crate) subscriptions: Mutex<HashMap<(String, u32), consumers::SubscriptionSlot>>,
    /// How long `open` took (metadata and shard-log recovery), for `kinesin_recovery_seconds`.
    pub(crate) recovery_time: std::time::Duration,
    /// KMS master keys and the streams' unwrapped data keys (encryption at rest).
    pub(crate) kms: kms::Kms,
}

impl Service {
    /// Opens (or creates) the data dir and recovers streams and logs.
    pub fn open(cfg: ServiceConfig, clock: Clock) -> Result<Service, StartError> {
        let started = std::time::Instant::now();
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|source| StartError::DataDir { path: cfg.data_dir.display().to_string(), source })?;
        let kms = kms::Kms::load(&cfg.kms_keyring, &cfg.data_dir, &cfg.region, &cfg.account_id)?;
        let (store, loaded) = MetaStore::open(&cfg.data_dir.join("meta.redb"))?;
        let log_cfg = LogConfig { durability: cfg.durability, ..LogConfig::new(cfg.data_dir.join("log")) };
        let log = Log::open_default(log_cfg)?;

        // Logs no stream refers to were left by a crash between creating logs and committing the
        // stream, or between committing a deletion and removing its logs.
        let mut referenced = std::collections::HashSet::new();
        for s in &loaded.streams {
            for sh in &s.shards {
                referenced.insert(sh.log_id);
            }
        }
        for id in log.ids() {
            if !referenced.contains(&id.0) {
                tracing::info!(log_id = id.0, "removing a shard log no stream refers to");
                log.delete(id)?;
            }
        }

        let mut streams = BTreeMap::new();
        let mut by_incarnation = HashMap::new();
        for s in loaded.streams {
            by_incarnation.insert(s.incarnation, s.name.clone());
            streams.insert(s.name.clone(), Arc::new(s));
        }
        let state = State {
            streams,
            by_incarnation,
            tombstones: HashMap::new(),
            counters: loaded.counters,
            settings: loaded.settings,
            last_retention_sweep_ms: 0,
            last_autoscale_ms: 0,
            last_throttle_log_ms: 0,
        };
        let limiter = limits::Limiter::new(cfg.limits.clone());
        let recovery_time = started.elapsed();
        let shards: usize = state.streams.values().map(|s| s.shards.len()).sum();
        tracing::info!(
            streams = state.streams.len(),
            shards,
            recovery_ms = recovery_time.as_millis() as u64,
            "recovered {} streams ({shards} shards) in {} ms",
            state.streams.len(),
            recovery_time.as_millis()
        );
        Ok(Service {
            cfg,
            log,
            store,
            state: Mutex::new(state),
            token_key: TokenKey::from_bytes(loaded.token_key),
            clock,
            gates: Mutex::new(HashMap::new()),
            limiter,
            appended: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashMap::new()),
            recovery_time,
            kms,
        })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// Number of streams, for the start-up log line.
    pub fn stream_count(&self) -> usize {
        self.state.lock().streams.len()
    }

    /// Runs one request: the service's one entry point. Control-plane requests commit metadata
    /// synchronously (an fsync), so the caller runs them where blocking is allowed; data-plane
    /// requests never block a runtime worker on the stream table.
    pub async fn handle(self: &Arc<Self>, req: Request) -> Result<Response, ServiceError> {
        let op = req.op();
        if op.is_data_plane() {
            // Data-plane calls never block a runtime worker on the stream table (a reshard may
            // hold it while it waits for their appends): transitions are left to the next tick.
            if let Some(st) = self.state.try_lock() {
                self.tick_locked(st, false, false);
            }
        } else {
            // Control-plane calls run where blocking is allowed (the server's block_in_place).
            self.tick_locked(self.state.lock(), false, true);
        }
        self.admit_control(&req)?;
        let out = match req {
            Request::CreateStream(r) => self.create_stream(r),
            Request::DeleteStream(r) => self.delete_stream(r),
            Request::DescribeStream(r) => self.describe_stream(r),
            Request::DescribeStreamSummary(r) => self.describe_stream_summary(r),
            Request::ListStreams(r) => self.list_streams(r),
            Request::ListShards(r) => self.list_shards(r),
            Request::IncreaseStreamRetentionPeriod(r) => self.change_retention(r, true),
            Request::DecreaseStreamRetentionPeriod(r) => self.change_retention(r, false),
            Request::AddTagsToStream(r) => self.add_tags_to_stream(r),
            Request::RemoveTagsFromStream(r) => self.remove_tags_from_stream(r),
            Request::ListTagsForStream(r) => self.list_tags_for_stream(r),
            Request::TagResource(r) => self.tag_resource(r),
            Request::UntagResource(r) => self.untag_resource(r),
            Request::ListTagsForResource(r) => self.list_tags_for_resource(r),
            Request::DescribeLimits => Ok(self.describe_limits()),
            Request::DescribeAccountSettings => Ok(self.describe_account_settings()),
            Request::UpdateAccountSettings(r) => self.update_account_settings(r),
            Request::UpdateMaxRecordSize(r) => self.update_max_record_size(r),
            Request::EnableEnhancedMonitoring(r) => self.enhanced_monitoring(r, true),
            Request::DisableEnhancedMonitoring(r) => self.enhanced_monitoring(r, false),
            Request::PutResourcePolicy(r) => self.put_resource_policy(r),
            Request::GetResourcePolicy(r) => self.get_resource_policy(r),
            Request::DeleteResourcePolicy(r) => self.delete_resource_policy(r),
            Request::PutRecord(r) => self.put_record(r).await,
            Request::PutRecords(r) => self.put_records(r).await,
            Request::GetShardIterator(r) => self.get_shard_iterator(r).await,
            Request::GetRecords(r) => self.get_records(r).await,
            Request::SplitShard(r) => self.split_shard(r),
            Request::MergeShards(r) => self.merge_shards(r),
            Request::UpdateShardCount(r) => self.update_shard_count(r),
            Request::UpdateStreamMode(r) => self.update_stream_mode(r),
            Request::UpdateStreamWarmThroughput(r) => self.update_stream_warm_throughput(r),
            Request::RegisterStreamConsumer(r) => self.register_stream_consumer(r),
            Request::DeregisterStreamConsumer(r) => self.deregister_stream_consumer(r),
            Request::DescribeStreamConsumer(r) => self.describe_stream_consumer(r),
            Request::ListStreamConsumers(r) => self.list_stream_consumers(r),
            Request::StartStreamEncryption(r) => self.start_stream_encryption(r),
            Request::StopStreamEncryption(r) => self.stop_stream_encryption(r),
            Request::SubscribeToShard(r) => return self.subscribe_to_shard(r).await.map(Response::Events),
            Request::NotImplemented(op) => Err(not_yet(op.name())),
        };
        out.map(Response::Output)
    }

    /// Applies due status transitions, on-demand scaling and, now and then, retention. Cheap when
    /// nothing is due; called by the server's background thread (and, without scaling, before
    /// every operation).
    pub fn tick(&self) {
        self.tick_locked(self.state.lock(), true, true);
    }

    /// The stream table, for the data plane: yields to the runtime instead of blocking a worker
    /// while a control-plane call holds it.
    pub(crate) async fn lock_state(&self) -> parking_lot::MutexGuard<'_, State> {
        loop {
            if let Some(st) = self.state.try_lock() {
                return st;
            }
            tokio::task::yield_now().await;
        }
    }

    /// `may_block`: the caller may block its thread (not an async worker), which finishing a
    /// pending reshard needs (it waits for the parents' appends in flight).
    fn tick_locked(&self, mut st: parking_lot::MutexGuard<'_, State>, autoscale: bool, may_block: bool) {
        let now = self.clock.now_ms();
        let due: Vec<Arc<StreamMeta>> = st
            .streams
            .values()
            .filter(|s| s.status != StreamStatus::Active && s.status_until_ms <= now)
            .cloned()
            .collect();
        for s in due {
            if s.status == StreamStatus::Deleting {
                if let Err(e) =
                    self.store.commit(&Change { remove_streams: &[&s.name], ..Default::default() })
                {
                    tracing::error!(stream = %s.name, error = %e, "cannot finish deleting a stream; will retry");
                    continue;
                }
                st.streams.remove(&s.name);
                st.by_incarnation.remove(&s.incarnation);
                if st.tombstones.len() >= TOMBSTONES_MAX {
                    st.tombstones.clear();
                }
                st.tombstones.insert(s.incarnation, s.name.clone());
                self.forget_gates(s.shards.iter().map(|sh| sh.log_id));
                self.limiter.forget(s.shards.iter().map(|sh| sh.log_id));
                for sh in &s.shards {
                    if let Err(e) = self.log.delete(LogId(sh.log_id)) {
                        tracing::warn!(stream = %s.name, log_id = sh.log_id, error = %e, "cannot remove a deleted shard's log; it is removed at the next start");
                    }
                }
                tracing::info!(stream = %s.name, "stream deleted");
            } else if !s.pending_reshard.is_empty() {
                if !may_block {
                    continue;
                }
                if let Err(e) = self.finish_pending_reshard(&mut st, &s) {
                    tracing::error!(stream = %s.name, error = ?e, "cannot apply a pending reshard; will retry");
                }
            } else {
                let mut next = (*s).clone();
                next.status = StreamStatus::Active;
                if let Err(e) = self.store.commit(&Change { put_streams: &[&next], ..Default::default() }) {
                    tracing::error!(stream = %s.name, error = %e, "cannot record a status change; will retry");
                    continue;
                }
                tracing::info!(stream = %s.name, "stream ACTIVE");
                st.streams.insert(next.name.clone(), Arc::new(next));
            }
        }
        self.tick_consumers(&mut st, now);
        if autoscale && now - st.last_throttle_log_ms >= metrics::THROTTLE_LOG_INTERVAL_MS {
            st.last_throttle_log_ms = now;
            let streams: Vec<Arc<StreamMeta>> = st.streams.values().cloned().collect();
            self.log_throttling(&streams);
        }
        if autoscale && now - st.last_autoscale_ms >= scaling::AUTOSCALE_WINDOW_MS {
            st.last_autoscale_ms = now;
            self.autoscale(&mut st, now);
        }
        if now - st.last_retention_sweep_ms >= RETENTION_SWEEP_INTERVAL_MS {
            st.last_retention_sweep_ms = now;
            let streams: Vec<Arc<StreamMeta>> = st.streams.values().cloned().collect();
            drop(st);
            self.sweep_retention(&streams, now);
        }
    }

    fn sweep_retention(&self, streams: &[Arc<StreamMeta>], now: i64) {
        for s in streams {
            let cutoff = now - s.retention_ms();
            for sh in &s.shards {
                match self.log.trim_before(LogId(sh.log_id), cutoff) {
                    Ok(0) => {}
                    Ok(freed) => {
                        tracing::info!(stream = %s.name, shard = %sh.id(), bytes = freed, "retention dropped expired segments")
                    }
                    Err(e) => {
                        tracing::warn!(stream = %s.name, shard = %sh.id(), error = %e, "retention sweep failed")
                    }
                }
            }
        }
    }

    /// Stops the record log cleanly (flushes, syncs, joins its writer).
    pub fn shutdown(&self) {
        self.log.shutdown();
    }

    /// The resource policy of the stream `arn` names (PutResourcePolicy), for authorization;
    /// `None` when the stream is not found or has none. Consumer ARNs have none. Yields instead
    /// of blocking a worker on the stream table (see `lock_state`).
    pub async fn resource_policy(&self, arn: &str) -> Option<String> {
        let arn = StreamArn::parse(arn)?;
        if arn.account() != self.cfg.account_id || arn.region() != self.cfg.region {
            return None;
        }
        self.lock_state().await.streams.get(arn.name())?.policy.clone()
    }

    /// The ARN of the consumer `consumer_name` of the stream `stream_arn` names, if registered.
    pub async fn consumer_arn(&self, stream_arn: &str, consumer_name: &str) -> Option<String> {
        let stream_arn = StreamArn::parse(stream_arn)?;
        let st = self.lock_state().await;
        let c =
            st.streams.get(stream_arn.name())?.consumers.iter().find(|c| c.name == consumer_name)?.clone();
        Some(c.arn(&stream_arn).to_string())
    }

    /// The ARN of the stream a shard iterator reads (also of a deleted one), for authorizing
    /// GetRecords; `None` for a token that does not open.
    pub async fn iterator_stream_arn(&self, iterator: &str) -> Option<String> {
        let it = kinesin_wire::token::ShardIteratorToken::open(iterator, &self.token_key).ok()?;
        let st = self.lock_state().await;
        let name = st
            .by_incarnation
            .get(&it.stream_incarnation)
            .or_else(|| st.tombstones.get(&it.stream_incarnation))?;
        Some(self.stream_arn(name).to_string())
    }

    pub(crate) fn stream_arn(&self, name: &str) -> StreamArn {
        StreamArn::new(&self.cfg.region, &self.cfg.account_id, name)
    }

    pub(crate) fn not_found(&self, name: &str) -> ServiceError {
        ServiceError::new(
            ErrorKind::ResourceNotFound,
            format!("Stream {} under account {} not found.", echo(name), self.cfg.account_id),
        )
    }

    /// Which stream a request means: by StreamName, by StreamARN, or both when they agree.
    pub(crate) fn resolve_name(
        &self,
        name: Option<&str>,
        arn: Option<&StreamArn>,
    ) -> Result<String, ServiceError> {
        match (name, arn) {
            (None, None) => Err(ServiceError::invalid_argument(
                "Either StreamName or StreamARN must be provided to identify the stream.",
            )),
            (Some(n), None) => Ok(n.to_string()),
            (n, Some(a)) => {
                let (account, region, from_arn) = (a.account(), a.region(), a.name());
                if account != self.cfg.account_id || region != self.cfg.region {
                    return Err(ServiceError::new(
                        ErrorKind::ResourceNotFound,
                        format!("Stream {} under account {} not found.", echo(from_arn), echo(account)),
                    ));
                }
                if let Some(n) = n {
                    if n != from_arn {
                        return Err(ServiceError::invalid_argument(format!(
                            "StreamName {} and StreamARN {} refer to different streams; give one of them or make them agree.",
                            echo(n),
                            echo(a.as_str())
                        )));
                    }
                }
                Ok(from_arn.to_string())
            }
        }
    }

    /// The stream a request means, in any status.
    pub(crate) fn find(
        &self,
        name: Option<&str>,
        arn: Option<&StreamArn>,
    ) -> Result<Arc<StreamMeta>, ServiceError> {
        let name = self.resolve_name(name, arn)?;
        self.state.lock().streams.get(&name).cloned().ok_or_else(|| self.not_found(&name))
    }

    /// The stream, which must be readable or writable: CREATING and DELETING streams are not
    /// found, as on AWS. Yields to the runtime instead of blocking a worker (see `lock_state`).
    pub(crate) async fn find_usable_async(
        &self,
        name: Option<&str>,
        arn: Option<&StreamArn>,
    ) -> Result<Arc<StreamMeta>, ServiceError> {
        let name = self.resolve_name(name, arn)?;
        let s = self.lock_state().await.streams.get(&name).cloned().ok_or_else(|| self.not_found(&name))?;
        match s.status {
            StreamStatus::Active | StreamStatus::Updating => Ok(s),
            _ => Err(self.not_found(&s.name)),
        }
    }

    /// Commits `next` as the new version of its stream and publishes it.
    pub(crate) fn save(&self, st: &mut State, next: StreamMeta) -> Result<Arc<StreamMeta>, ServiceError> {
        self.store
            .commit(&Change { put_streams: &[&next], ..Default::default() })
            .map_err(|e| meta_failure(&e))?;
        let next = Arc::new(next);
        st.by_incarnation.insert(next.incarnation, next.name.clone());
        st.streams.insert(next.name.clone(), next.clone());
        Ok(next)
    }
}

pub(crate) fn meta_failure(e: &meta::MetaError) -> ServiceError {
    // The detail (the store's path, what failed) is for the server log, not the client.
    tracing::error!(error = %e, "metadata commit failed");
    ServiceError::internal("The server could not record the change durably. Nothing was changed; retry.")
}

fn not_yet(op: &str) -> ServiceError {
    ServiceError::invalid_argument(format!(
        "kinesin does not implement {op} yet. The operations it serves are listed in its README."
    ))
}
