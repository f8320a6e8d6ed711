//! The Kinesis service: streams, shards, iterators and their rules, on top of the record log and
//! the metadata store. Its one entry point, [`Service::handle`], takes a typed
//! [`Request`](kinesin_wire::request::Request) and answers a typed [`Response`] or an error; it
//! knows nothing of HTTP, JSON or Prometheus text (`metrics::MetricsSnapshot` gives the figures).
//!
//! Concurrency: the stream table is an immutable [`StreamTable`] that readers load as a snapshot
//! (`ArcSwap`), never waiting for anybody. Control-plane writers take the writer lock
//! ([`StateLock`]), which data-plane requests never take: a writer edits its copy of the table,
//! commits the change (its own fsync), and publishes the new table when it unlocks. Writers are
//! serialized among themselves (as AWS's low control-plane rates do). Status transitions,
//! consumer transitions, retention and on-demand scaling run in [`Service::tick`], on the
//! server's background thread, never on a request; a transition that is due but not yet
//! committed by it is already shown by readers ([`StreamTable::as_of`]).

#[cfg(test)]
mod concurrency_tests;
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
pub mod storage;
mod time;

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::error::ServiceError;
use kinesin_log::{Durability, LogConfig, LogId};
use kinesin_storage::local::{LocalShardLog, RedbCatalog};
use kinesin_storage::memory::{MemoryCatalog, MemoryShardLog};
use kinesin_storage::{AnyCatalog, AnyShardLog};
use kinesin_wire::error::echo;
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ids::StreamArn;
use kinesin_wire::ops::Output;
use kinesin_wire::request::Request;
use kinesin_wire::token::TokenKey;

pub use consumers::SubscribeEvent;
use limits::LimitsConfig;
use meta::{AccountSettings, Change, ConsumerStatus, Counters, MetaStore, StreamMeta, StreamStatus};
pub use storage::StorageKind;
use storage::{wait, Logs};
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
    /// The data directory, or memory only (`--storage`).
    pub storage: StorageKind,
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
            storage: StorageKind::Local,
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
    Log(#[from] kinesin_storage::ShardLogError),
    #[error(transparent)]
    Kms(#[from] kms::KeyringError),
    #[error("stream {stream}, {shard}: its record log {dir} is missing (damaged data directory); restore it from a backup")]
    MissingLog { stream: String, shard: String, dir: String },
}

/// The stream table as readers see it: immutable once published; a writer publishes a new one.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamTable {
    pub streams: BTreeMap<String, Arc<StreamMeta>>,
    /// Live incarnations, for iterators and page tokens.
    pub by_incarnation: HashMap<u64, String>,
    /// Names of deleted incarnations, for the messages about their old iterators (bounded;
    /// shared between snapshots, copied only when a stream is deleted).
    pub tombstones: Arc<HashMap<u64, String>>,
    pub settings: AccountSettings,
    /// The earliest `status_until_ms` of a stream or consumer in a transitional status
    /// (`i64::MAX`: none); until then `as_of` has nothing to do.
    next_due_ms: i64,
}

impl StreamTable {
    /// Removes the deleted stream `s` (this incarnation of it), remembering its name for the
    /// messages about its old iterators.
    fn forget(&mut self, s: &StreamMeta) {
        if self.streams.get(&s.name).is_some_and(|x| x.incarnation == s.incarnation) {
            self.streams.remove(&s.name);
        }
        self.by_incarnation.remove(&s.incarnation);
        let tombstones = Arc::make_mut(&mut self.tombstones);
        if tombstones.len() >= TOMBSTONES_MAX {
            tombstones.clear();
        }
        tombstones.insert(s.incarnation, s.name.clone());
    }

    fn next_due(&self) -> i64 {
        let mut due = i64::MAX;
        for s in self.streams.values() {
            if s.status != StreamStatus::Active && s.pending_reshard.is_empty() {
                due = due.min(s.status_until_ms);
            }
            for c in s.consumers.iter().filter(|c| c.status != ConsumerStatus::Active) {
                due = due.min(c.status_until_ms);
            }
        }
        due
    }

    /// The table as it is at `now`: CREATING and UPDATING streams whose time is up are ACTIVE,
    /// DELETING ones are gone (their incarnation remembered as deleted), consumers likewise,
    /// although the background task has not committed the change yet. Every transition is
    /// decided by the clock alone, so the stored document ("CREATING until t") and this view
    /// ("ACTIVE") mean the same; the background task commits it within a tick, and a restart
    /// before that applies it at the first tick. A reshard waiting for the end of UPDATING is
    /// not applied here (it needs the logs): the stream stays UPDATING until the task applies it.
    pub fn as_of(self: &Arc<Self>, now: i64) -> Arc<StreamTable> {
        if self.next_due_ms > now {
            return self.clone();
        }
        let mut c = (**self).clone();
        let due: Vec<Arc<StreamMeta>> = c
            .streams
            .values()
            .filter(|s| {
                (s.status != StreamStatus::Active && s.pending_reshard.is_empty() && s.status_until_ms <= now)
                    || s.consumers
                        .iter()
                        .any(|x| x.status != ConsumerStatus::Active && x.status_until_ms <= now)
            })
            .cloned()
            .collect();
        for s in due {
            match stream_as_of(&s, now) {
                Some(next) => {
                    c.streams.insert(next.name.clone(), next);
                }
                None => c.forget(&s),
            }
        }
        c.next_due_ms = c.next_due();
        Arc::new(c)
    }
}

/// One stream as it is at `now` (see [`StreamTable::as_of`]); `None` when it is gone.
pub(crate) fn stream_as_of(s: &Arc<StreamMeta>, now: i64) -> Option<Arc<StreamMeta>> {
    let stream_due =
        s.status != StreamStatus::Active && s.pending_reshard.is_empty() && s.status_until_ms <= now;
    let consumers_due =
        s.consumers.iter().any(|c| c.status != ConsumerStatus::Active && c.status_until_ms <= now);
    if !stream_due && !consumers_due {
        return Some(s.clone());
    }
    if stream_due && s.status == StreamStatus::Deleting {
        return None;
    }
    let mut next = (**s).clone();
    if stream_due {
        next.status = StreamStatus::Active;
    }
    next.consumers.retain(|c| !(c.status == ConsumerStatus::Deleting && c.status_until_ms <= now));
    for c in &mut next.consumers {
        if c.status == ConsumerStatus::Creating && c.status_until_ms <= now {
            c.status = ConsumerStatus::Active;
        }
    }
    Some(Arc::new(next))
}

/// The writer's state: its copy of the table (published when the writer lock is released) and
/// what only writers use.
pub(crate) struct State {
    view: Arc<StreamTable>,
    /// Streams whose due transitions were applied in memory when the writer lock was taken
    /// (writers see what readers see), for the background task to commit.
    uncommitted: std::collections::BTreeSet<String>,
    /// DELETING streams whose time is up, already gone from the writer's table, whose removal
    /// the background task commits (and whose logs it removes).
    pending_deletes: Vec<Arc<StreamMeta>>,
    pub counters: Counters,
    pub last_retention_sweep_ms: i64,
    pub last_autoscale_ms: i64,
    pub last_throttle_log_ms: i64,
}

impl State {
    /// Applies the transitions that are due at `now` to the writer's table in memory, as
    /// `StreamTable::as_of` shows them to readers (writers see what readers see); the background
    /// task commits them (`uncommitted`, `pending_deletes`: a deletion also removes logs).
    fn advance(&mut self, now: i64) {
        let all: Vec<Arc<StreamMeta>> = self.view.streams.values().cloned().collect();
        let (mut changed, mut gone) = (Vec::new(), Vec::new());
        for s in all {
            match stream_as_of(&s, now) {
                Some(next) if !Arc::ptr_eq(&next, &s) => changed.push(next),
                Some(_) => {}
                None => gone.push(s),
            }
        }
        let view = Arc::make_mut(&mut self.view);
        for next in changed {
            self.uncommitted.insert(next.name.clone());
            view.streams.insert(next.name.clone(), next);
        }
        for s in gone {
            view.forget(&s);
            self.pending_deletes.push(s);
        }
        view.next_due_ms = view.next_due();
    }
}

impl Deref for State {
    type Target = StreamTable;
    fn deref(&self) -> &StreamTable {
        &self.view
    }
}

impl DerefMut for State {
    /// Copies the published table on the first change of a critical section (readers keep the
    /// old one).
    fn deref_mut(&mut self) -> &mut StreamTable {
        Arc::make_mut(&mut self.view)
    }
}

/// The stream table: snapshots for readers, a lock for writers.
pub(crate) struct StateLock {
    writer: Mutex<State>,
    published: ArcSwap<StreamTable>,
    clock: Clock,
}

/// The writer lock held; publishes the writer's table when dropped, if it changed.
pub(crate) struct StateGuard<'a> {
    state: parking_lot::MutexGuard<'a, State>,
    published: &'a ArcSwap<StreamTable>,
}

impl StateLock {
    fn new(state: State, clock: Clock) -> StateLock {
        let published = ArcSwap::new(state.view.clone());
        StateLock { writer: Mutex::new(state), published, clock }
    }

    /// The writer lock: control-plane writers and the background task, never the data plane.
    /// The table it gives is as of now (due transitions applied, see `State::advance`).
    pub fn lock(&self) -> StateGuard<'_> {
        let mut g = StateGuard { state: self.writer.lock(), published: &self.published };
        let now = self.clock.now_ms();
        if g.state.view.next_due_ms <= now {
            g.state.advance(now);
        }
        g
    }

    /// The published table, as committed (without `as_of`).
    fn snapshot(&self) -> Arc<StreamTable> {
        self.published.load_full()
    }
}

impl StateGuard<'_> {
    /// Publishes the writer's table now (readers see it from here on), e.g. before waking the
    /// puts that wait for a reshard's switch.
    pub fn publish(&mut self) {
        if !Arc::ptr_eq(&self.published.load(), &self.state.view) {
            let next = self.state.next_due();
            let view = Arc::make_mut(&mut self.state.view);
            view.next_due_ms = next;
            self.published.store(self.state.view.clone());
        }
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}

impl<'a> Deref for StateGuard<'a> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl<'a> DerefMut for StateGuard<'a> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// The Kinesis service of one account and region.
pub struct Service {
    pub(crate) cfg: ServiceConfig,
    pub(crate) log: Logs,
    pub(crate) store: MetaStore,
    /// The stream table (see the module comment).
    pub(crate) state: StateLock,
    pub(crate) token_key: TokenKey,
    pub(crate) clock: Clock,
    pub(crate) limiter: limits::Limiter,
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
        let (kms, catalog, backend) = match cfg.storage {
            StorageKind::Local => {
                std::fs::create_dir_all(&cfg.data_dir).map_err(|source| StartError::DataDir {
                    path: cfg.data_dir.display().to_string(),
                    source,
                })?;
                let kms =
                    kms::Kms::load(&cfg.kms_keyring, Some(&cfg.data_dir), &cfg.region, &cfg.account_id)?;
                let catalog = RedbCatalog::open(
                    &cfg.data_dir.join("meta.redb"),
                    &[meta::STREAMS_TABLE, meta::ACCOUNT_TABLE],
                )
                .map_err(meta::MetaError::from)?;
                let log_cfg =
                    LogConfig { durability: cfg.durability, ..LogConfig::new(cfg.data_dir.join("log")) };
                (kms, AnyCatalog::Local(catalog), AnyShardLog::Local(LocalShardLog::open(log_cfg)?))
            }
            StorageKind::Memory => {
                let kms = kms::Kms::load(&cfg.kms_keyring, None, &cfg.region, &cfg.account_id)?;
                (kms, AnyCatalog::Memory(MemoryCatalog::new()), AnyShardLog::Memory(MemoryShardLog::new()))
            }
        };
        let (store, loaded) = MetaStore::open_catalog(catalog)?;
        let log = Logs::new(backend);

        // Logs no stream refers to were left by a crash between creating logs and committing the
        // stream, or between committing a deletion and removing its logs.
        let mut referenced = std::collections::HashSet::new();
        for s in &loaded.streams {
            for sh in &s.shards {
                referenced.insert(sh.log_id);
            }
        }
        for id in wait(log.ids())? {
            if !referenced.contains(&id.0) {
                tracing::info!(log_id = id.0, "removing a shard log no stream refers to");
                wait(log.delete(id))?;
            }
        }
        // This node writes every shard (epochs are taken per log); closed shards stay sealed.
        for s in &loaded.streams {
            for sh in &s.shards {
                let id = LogId(sh.log_id);
                if let Err(e) = wait(log.acquire(id)) {
                    tracing::error!(stream = %s.name, shard = %sh.id(), error = %e, "the shard's log is missing");
                    continue;
                }
                if sh.closed.is_some() {
                    if let Err(e) = wait(log.seal(id)) {
                        tracing::error!(stream = %s.name, shard = %sh.id(), error = %e, "cannot seal a closed shard's log");
                    }
                }
            }
        }
        // And no stream refers to a log that is gone: a stream's logs are made before its
        // document is committed and removed only after it is, so a missing one is damage.
        let present: std::collections::HashSet<u64> = wait(log.ids())?.into_iter().map(|id| id.0).collect();
        for s in &loaded.streams {
            if let Some(sh) = s.shards.iter().find(|sh| !present.contains(&sh.log_id)) {
                return Err(StartError::MissingLog {
                    stream: s.name.clone(),
                    shard: sh.id().to_string(),
                    dir: cfg.data_dir.join("log").join(format!("{:016x}", sh.log_id)).display().to_string(),
                });
            }
        }

        let mut streams = BTreeMap::new();
        let mut by_incarnation = HashMap::new();
        for s in loaded.streams {
            by_incarnation.insert(s.incarnation, s.name.clone());
            streams.insert(s.name.clone(), Arc::new(s));
        }
        let mut view = StreamTable {
            streams,
            by_incarnation,
            tombstones: Arc::default(),
            settings: loaded.settings,
            next_due_ms: i64::MAX,
        };
        view.next_due_ms = view.next_due();
        let state = State {
            view: Arc::new(view),
            uncommitted: Default::default(),
            pending_deletes: Vec::new(),
            counters: loaded.counters,
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
            state: StateLock::new(state, clock.clone()),
            token_key: TokenKey::from_bytes(loaded.token_key),
            clock,
            limiter,
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
        self.table().streams.len()
    }

    /// The stream table as it is now, for readers: a snapshot, never waiting for a writer.
    pub(crate) fn table(&self) -> Arc<StreamTable> {
        self.state.snapshot().as_of(self.clock.now_ms())
    }

    /// Runs one request: the service's one entry point. Control-plane requests commit metadata
    /// synchronously (an fsync) and may wait for a reshard's appends in flight: run them where
    /// blocking is allowed (the server runs them on the blocking pool). Data-plane requests never
    /// block on the stream table.
    pub async fn handle(self: &Arc<Self>, req: Request) -> Result<Response, ServiceError> {
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

    /// The background work: commits due status transitions (and applies reshards waiting for
    /// the end of UPDATING), consumer transitions, on-demand scaling, throttling log lines and,
    /// now and then, retention. Cheap when nothing is due. The server calls it every
    /// `TICK_INTERVAL_MS` on its own thread, never on a request; it may block that thread (a
    /// reshard waits for the parents' appends in flight, commits fsync).
    pub fn tick(&self) {
        let mut st = self.state.lock();
        let now = self.clock.now_ms();
        // Transitions that taking the lock applied in memory (here or in a control-plane call).
        for name in std::mem::take(&mut st.uncommitted) {
            let Some(s) = st.streams.get(&name).cloned() else { continue };
            if let Err(e) = self.store.commit(&Change { put_streams: &[&s], ..Default::default() }) {
                tracing::error!(stream = %s.name, error = %e, "cannot record a status change; will retry");
                st.uncommitted.insert(name);
                continue;
            }
            tracing::info!(stream = %s.name, status = s.status.as_str(), "status change recorded");
        }
        for s in std::mem::take(&mut st.pending_deletes) {
            if let Err(e) = self.finish_delete(&mut st, &s) {
                tracing::error!(stream = %s.name, error = %e, "cannot finish deleting a stream; will retry");
                st.pending_deletes.push(s);
            }
        }
        let due: Vec<Arc<StreamMeta>> = st
            .streams
            .values()
            .filter(|s| s.status != StreamStatus::Active && s.status_until_ms <= now)
            .cloned()
            .collect();
        for s in due {
            if s.status == StreamStatus::Deleting {
                if let Err(e) = self.finish_delete(&mut st, &s) {
                    tracing::error!(stream = %s.name, error = %e, "cannot finish deleting a stream; will retry");
                }
            } else if !s.pending_reshard.is_empty() {
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
        if now - st.last_throttle_log_ms >= metrics::THROTTLE_LOG_INTERVAL_MS {
            st.last_throttle_log_ms = now;
            let streams: Vec<Arc<StreamMeta>> = st.streams.values().cloned().collect();
            self.log_throttling(&streams);
        }
        if now - st.last_autoscale_ms >= scaling::AUTOSCALE_WINDOW_MS {
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

    /// Finishes deleting `s` (DELETING, or deleted with `--delete-stream-ms 0`): commits its
    /// removal, then removes its logs (a crash in between leaves logs no stream refers to, which
    /// `open` removes). A stream created again under the name since has replaced the stored
    /// document already: only the old logs go.
    pub(crate) fn finish_delete(
        &self,
        st: &mut StateGuard<'_>,
        s: &StreamMeta,
    ) -> Result<(), meta::MetaError> {
        let recreated = st.streams.get(&s.name).is_some_and(|x| x.incarnation != s.incarnation);
        if !recreated {
            self.store.commit(&Change { remove_streams: &[&s.name], ..Default::default() })?;
        }
        st.forget(s);
        // Readers (subscriptions among them) see the stream gone before its logs go: a read
        // that then finds no log knows why, and ends instead of failing.
        st.publish();
        self.limiter.forget(s.shards.iter().map(|sh| sh.log_id));
        for sh in &s.shards {
            if let Err(e) = wait(self.log.delete(LogId(sh.log_id))) {
                tracing::warn!(stream = %s.name, log_id = sh.log_id, error = %e, "cannot remove a deleted shard's log; it is removed at the next start");
            }
        }
        tracing::info!(stream = %s.name, "stream deleted");
        Ok(())
    }

    fn sweep_retention(&self, streams: &[Arc<StreamMeta>], now: i64) {
        for s in streams {
            let cutoff = now - s.retention_ms();
            for sh in &s.shards {
                match wait(self.log.trim_before(LogId(sh.log_id), cutoff)) {
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
    /// `None` when the stream is not found or has none. Consumer ARNs have none.
    pub async fn resource_policy(&self, arn: &str) -> Option<String> {
        let arn = StreamArn::parse(arn)?;
        if arn.account() != self.cfg.account_id || arn.region() != self.cfg.region {
            return None;
        }
        self.table().streams.get(arn.name())?.policy.clone()
    }

    /// The ARN of the consumer `consumer_name` of the stream `stream_arn` names, if registered.
    pub async fn consumer_arn(&self, stream_arn: &str, consumer_name: &str) -> Option<String> {
        let stream_arn = StreamArn::parse(stream_arn)?;
        let st = self.table();
        let c =
            st.streams.get(stream_arn.name())?.consumers.iter().find(|c| c.name == consumer_name)?.clone();
        Some(c.arn(&stream_arn).to_string())
    }

    /// The ARN of the stream a shard iterator reads (also of a deleted one), for authorizing
    /// GetRecords; `None` for a token that does not open.
    pub async fn iterator_stream_arn(&self, iterator: &str) -> Option<String> {
        let it = kinesin_wire::token::ShardIteratorToken::open(iterator, &self.token_key).ok()?;
        let st = self.table();
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

    /// The stream a request means, in any status: from the published snapshot (a reader never
    /// waits for a writer), as it is now (`stream_as_of`).
    pub(crate) fn find(
        &self,
        name: Option<&str>,
        arn: Option<&StreamArn>,
    ) -> Result<Arc<StreamMeta>, ServiceError> {
        let name = self.resolve_name(name, arn)?;
        let s = self.state.published.load().streams.get(&name).cloned();
        s.and_then(|s| stream_as_of(&s, self.clock.now_ms())).ok_or_else(|| self.not_found(&name))
    }

    /// The stream, which must be readable or writable: CREATING and DELETING streams are not
    /// found, as on AWS.
    pub(crate) async fn find_usable_async(
        &self,
        name: Option<&str>,
        arn: Option<&StreamArn>,
    ) -> Result<Arc<StreamMeta>, ServiceError> {
        let s = self.find(name, arn)?;
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
