//! One of the implementations, chosen at run time (`--storage`), by enum dispatch: each call is
//! a `match` and the implementation's own future inline, no `Box` and no `dyn`.

use kinesin_log::{
    AppendOutcome, BatchKey, HistogramSnapshot, LogId, LogStats, RecordIn, LATENCY_BUCKETS_MS,
};

use crate::catalog::{Catalog, ChangeFeed, Doc, Snapshot, Version, Write};
use crate::error::{CatalogError, ShardLogError};
use crate::local::{LocalShardLog, RedbCatalog};
use crate::memory::{MemoryCatalog, MemoryShardLog};
use crate::shard_log::{Epoch, KeySet, ReadOutcome, ReadRequest, ShardLog, TipWatch};

pub enum AnyShardLog {
    Local(LocalShardLog),
    Memory(MemoryShardLog),
}

pub enum AnyCatalog {
    Local(RedbCatalog),
    Memory(MemoryCatalog),
}

macro_rules! dispatch {
    ($self:ident, $log:ident => $call:expr) => {
        match $self {
            Self::Local($log) => $call,
            Self::Memory($log) => $call,
        }
    };
}

impl AnyShardLog {
    /// The local log's counters; zeros in memory.
    pub fn stats(&self) -> LogStats {
        match self {
            AnyShardLog::Local(log) => log.stats(),
            AnyShardLog::Memory(_) => LogStats::default(),
        }
    }

    /// The local log's sync times; none in memory (nothing is synced).
    pub fn sync_latency(&self) -> HistogramSnapshot {
        match self {
            AnyShardLog::Local(log) => log.sync_latency(),
            AnyShardLog::Memory(_) => {
                HistogramSnapshot { cumulative: [0; LATENCY_BUCKETS_MS.len() + 1], sum_ms: 0.0, count: 0 }
            }
        }
    }
}

impl ShardLog for AnyShardLog {
    async fn create(&self, logs: &[(LogId, u64)]) -> Result<Vec<Epoch>, ShardLogError> {
        dispatch!(self, l => l.create(logs).await)
    }

    async fn acquire(&self, id: LogId) -> Result<Epoch, ShardLogError> {
        dispatch!(self, l => l.acquire(id).await)
    }

    async fn append(
        &self,
        id: LogId,
        epoch: Epoch,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: Option<&BatchKey>,
    ) -> Result<AppendOutcome, ShardLogError> {
        dispatch!(self, l => l.append(id, epoch, now_ms, records, key).await)
    }

    async fn seal(&self, id: LogId, epoch: Epoch) -> Result<u64, ShardLogError> {
        dispatch!(self, l => l.seal(id, epoch).await)
    }

    async fn read(
        &self,
        id: LogId,
        request: ReadRequest,
        keys: KeySet,
    ) -> Result<ReadOutcome, ShardLogError> {
        dispatch!(self, l => l.read(id, request, keys).await)
    }

    async fn seek_time(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        dispatch!(self, l => l.seek_time(id, arrival_ms).await)
    }

    async fn tip(&self, id: LogId) -> Result<u64, ShardLogError> {
        dispatch!(self, l => l.tip(id).await)
    }

    async fn trim_before(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        dispatch!(self, l => l.trim_before(id, arrival_ms).await)
    }

    async fn delete(&self, id: LogId) -> Result<(), ShardLogError> {
        dispatch!(self, l => l.delete(id).await)
    }

    async fn ids(&self) -> Result<Vec<LogId>, ShardLogError> {
        dispatch!(self, l => l.ids().await)
    }

    fn watch(&self, id: LogId) -> Result<TipWatch, ShardLogError> {
        dispatch!(self, l => l.watch(id))
    }

    fn shutdown(&self) {
        dispatch!(self, l => l.shutdown())
    }
}

impl Catalog for AnyCatalog {
    fn describe(&self) -> &str {
        dispatch!(self, c => c.describe())
    }

    async fn snapshot(&self) -> Result<Snapshot, CatalogError> {
        dispatch!(self, c => c.snapshot().await)
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<Doc>, CatalogError> {
        dispatch!(self, c => c.get(table, key).await)
    }

    async fn commit(&self, writes: &[Write<'_>]) -> Result<Version, CatalogError> {
        dispatch!(self, c => c.commit(writes).await)
    }

    async fn next_ids(&self, counter: &str, count: u64) -> Result<u64, CatalogError> {
        dispatch!(self, c => c.next_ids(counter, count).await)
    }

    fn changes(&self) -> ChangeFeed {
        dispatch!(self, c => c.changes())
    }
}
