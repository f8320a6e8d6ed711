//! The shard log: the records of each shard.

use std::future::Future;

use kinesin_log::{AppendOutcome, BatchKey, BatchKeys, LogId, RecordIn, StoredRecord};
use tokio::sync::watch;

use crate::error::ShardLogError;

/// Ownership of a log for writing. [`ShardLog::acquire`] hands out a new one, which fences every
/// older one: appends and seals under an older epoch fail [`ShardLogError::Fenced`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl std::fmt::Display for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    /// The first sequence index wanted (below the oldest stored: from the oldest).
    pub from: u64,
    /// Records that arrived before this are not served (retention, or reading from a time with
    /// `from: 0`); `i64::MIN` for none.
    pub not_before_ms: i64,
    pub max_records: usize,
    /// Partition key and data bytes; the read stops before a record that would pass it, but
    /// returns at least one record when one is available.
    pub max_bytes: usize,
}

/// Records read, and the log's state at the read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    pub records: Vec<StoredRecord>,
    /// Where the read started: `from`, raised to the first record not before `not_before_ms`.
    pub start: u64,
    /// Where the next read should start.
    pub next_seq_index: u64,
    /// The sequence index the next appended record will get.
    pub tip: u64,
    /// Arrival time of the newest stored record.
    pub newest_arrival_ms: Option<i64>,
}

/// The data keys a read may need, owned (reads run off the caller's task).
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<BatchKey>,
}

impl KeySet {
    pub fn new(keys: Vec<BatchKey>) -> KeySet {
        KeySet { keys }
    }
}

impl BatchKeys for KeySet {
    fn key(&self, generation: u32) -> Option<BatchKey> {
        self.keys.iter().find(|k| k.generation() == generation).cloned()
    }
}

/// Follows a log's tip, for fan-out: wakes when records were appended, when the log was sealed,
/// and (ending) when it was deleted.
#[derive(Clone, Debug)]
pub struct TipWatch {
    rx: watch::Receiver<u64>,
}

impl TipWatch {
    pub fn new(rx: watch::Receiver<u64>) -> TipWatch {
        TipWatch { rx }
    }

    /// The tip now; marks it seen, so that [`TipWatch::changed`] waits for the next change.
    pub fn seen(&mut self) -> u64 {
        *self.rx.borrow_and_update()
    }

    /// Waits for a change after the last one seen: `true` when the tip moved or the log was
    /// sealed, `false` when the log is gone (no change will come).
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}

/// The records of the shards, one log per shard (see the crate comment). Every call that may
/// reach storage is async; none blocks a runtime worker.
pub trait ShardLog: Send + Sync + 'static {
    /// Creates empty logs, `(id, first sequence index)` each, durable on return; all or none.
    /// The caller owns them: returns the epoch of each, in order.
    fn create(&self, logs: &[(LogId, u64)])
        -> impl Future<Output = Result<Vec<Epoch>, ShardLogError>> + Send;

    /// Takes the log for writing with a new epoch, fencing every older one. Waits for the
    /// appends in flight under older epochs.
    fn acquire(&self, id: LogId) -> impl Future<Output = Result<Epoch, ShardLogError>> + Send;

    /// Appends one batch under `epoch`, durable before it returns; record `i` gets
    /// `first_seq_index + i`. `key`: sealed with this data key at rest.
    fn append(
        &self,
        id: LogId,
        epoch: Epoch,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: Option<&BatchKey>,
    ) -> impl Future<Output = Result<AppendOutcome, ShardLogError>> + Send;

    /// Ends the log: waits for the appends in flight, then takes no more (`Sealed`). Returns the
    /// end (the tip, exclusive). Sealing a sealed log returns its end again. Wakes watchers.
    fn seal(&self, id: LogId, epoch: Epoch) -> impl Future<Output = Result<u64, ShardLogError>> + Send;

    /// Reads records from a position or a time (see [`ReadRequest`]), decrypting with `keys`.
    fn read(
        &self,
        id: LogId,
        request: ReadRequest,
        keys: KeySet,
    ) -> impl Future<Output = Result<ReadOutcome, ShardLogError>> + Send;

    /// The first sequence index whose arrival is at or after `arrival_ms`; the tip if none.
    fn seek_time(
        &self,
        id: LogId,
        arrival_ms: i64,
    ) -> impl Future<Output = Result<u64, ShardLogError>> + Send;

    /// The sequence index the next appended record will get.
    fn tip(&self, id: LogId) -> impl Future<Output = Result<u64, ShardLogError>> + Send;

    /// Drops stored records that arrived before `arrival_ms` (in whole storage units: a backend
    /// may keep some longer; readers filter with `not_before_ms`). Returns the bytes freed.
    fn trim_before(
        &self,
        id: LogId,
        arrival_ms: i64,
    ) -> impl Future<Output = Result<u64, ShardLogError>> + Send;

    /// Removes the log. Appends in flight fail `NotFound`; watchers end.
    fn delete(&self, id: LogId) -> impl Future<Output = Result<(), ShardLogError>> + Send;

    /// Every log's id, ascending.
    fn ids(&self) -> impl Future<Output = Result<Vec<LogId>, ShardLogError>> + Send;

    /// Follows the log's tip.
    fn watch(&self, id: LogId) -> Result<TipWatch, ShardLogError>;

    /// Stops taking appends and makes everything acknowledged durable. Blocks the calling thread.
    fn shutdown(&self);
}
