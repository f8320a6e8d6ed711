//! kinesin-log: the durable per-shard record log.
//!
//! One [`Log`] manages many shard logs (one per [`LogId`]) under a directory. Each shard log is
//! a sequence of segment files of batches; one `append` is one batch with one checksum and one
//! entry in the in-memory index. A single writer thread takes queued appends for all logs from a
//! bounded queue, writes them, syncs every file it touched once (group commit) and only then
//! acknowledges them and makes them visible to readers. The on-disk layout is described byte by
//! byte in `docs/format.md` ("Shard log segments") and in [`format`]'s module comment.
//!
//! All file I/O goes through the [`Storage`] trait; [`SimStorage`] simulates crashes, torn
//! writes and a full disk for tests.

// The format is little-endian with fixed widths: guard against the other encodings.
#![deny(clippy::big_endian_bytes, clippy::host_endian_bytes, clippy::dbg_macro)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod crypt;
mod error;
mod files;
mod format;
mod histogram;
mod index;
mod log;
mod recovery;
mod shard;
mod sim;
mod storage;
mod tail;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

pub use crate::crypt::{BatchKey, BatchKeys, NoKeys, DATA_KEY_LEN, NONCE_LEN, TAG_LEN};
pub use crate::error::LogError;
pub use crate::format::{
    BATCH_BYTES_MAX, BATCH_HEADER_LEN, BATCH_RECORDS_MAX, ENCRYPTION_OVERHEAD_BYTES, RECORD_OVERHEAD_BYTES,
    SEGMENT_HEADER_LEN,
};
pub use crate::histogram::{HistogramSnapshot, LatencyHistogram, LATENCY_BUCKETS_MS};
pub use crate::log::{Log, LogStats};
pub use crate::sim::{SimCounts, SimCrash, SimFault, SimOp, SimStorage, SimTrace};
pub use crate::storage::{replace_file, FsStorage, Storage, StorageFile};

/// Default size at which a segment is closed and a new one started.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;
/// Default bytes of recent batches kept in memory per log, to serve reads near the tip.
pub const TAIL_BYTES_PER_LOG_DEFAULT: usize = 4 * 1024 * 1024;
/// Default bytes of recent batches kept in memory by all logs together.
pub const TAIL_BYTES_TOTAL_DEFAULT: usize = 256 * 1024 * 1024;
/// Default number of segment files held open at once.
pub const OPEN_FILES_DEFAULT: usize = 512;
/// Most logs one `create_many` takes (their state is built in memory before any is published).
pub const LOGS_CREATED_AT_ONCE_MAX: usize = 100_000;
/// Most appends waiting for the writer (queued or being written) at once; more wait in `append`.
pub const APPEND_QUEUE_DEPTH_MAX: usize = 4096;
/// Most encoded bytes waiting for the writer at once; more wait in `append`.
pub const APPEND_QUEUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most appends the writer takes into one group-commit round.
pub const GROUP_COMMIT_APPENDS_MAX: usize = 2048;
/// A group-commit round that touched at most this many files syncs each with `fdatasync`; one
/// that touched more makes all of them durable with a single `syncfs` (measured in
/// `tests/log_sync_bench.rs`: for 1,000 files one syncfs takes about as long as 16 parallel
/// fdatasyncs take for 8, and 10-20x less than 1,000 sequential ones).
pub const SYNC_FILES_SEPARATELY_MAX: usize = 4;
/// The active segment's index file is rewritten (and synced) once this many bytes were synced
/// past what it covers, so a restart after a crash scans at most this much of each log. Costs
/// two syncs per this many bytes of a log.
pub const INDEX_CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024;
/// Most encoded bytes the writer takes into one group-commit round (at least one append).
pub const GROUP_COMMIT_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Identifies one shard's log. Chosen by the caller; the log only uses it to name a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogId(pub u64);

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIn {
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub seq_index: u64,
    pub arrival_ms: i64,
    pub partition_key: Bytes,
    pub data: Bytes,
    /// Stored encrypted (appended with [`Log::append_encrypted`]).
    pub encrypted: bool,
}

/// Where an append landed: record `i` of the append got `first_seq_index + i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub first_seq_index: u64,
    pub arrival_ms: i64,
}

/// Records read, and where the next read should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub records: Vec<StoredRecord>,
    pub next_seq_index: u64,
}

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the batch is on disk (fdatasync, plus a directory fsync for a new segment file).
    /// Concurrent appends share one sync round.
    Fsync,
    /// Right after the write; the writer syncs every dirty file this often. A crash may lose the
    /// appends of the last interval.
    Interval(Duration),
}

/// How to run a [`Log`].
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Directory holding one subdirectory per shard log.
    pub dir: PathBuf,
    pub durability: Durability,
    /// A segment that reaches this size is closed and the next batch starts a new one.
    pub segment_bytes_max: u64,
    /// Bytes of the newest batches each log keeps in memory for reads near the tip.
    pub tail_bytes_per_log_max: usize,
    /// Bytes of in-memory tails of all logs together; past it the tails of the least recently
    /// appended or read logs are dropped (their reads then go to the segment files).
    pub tail_bytes_total_max: usize,
    /// Segment files held open at once; the least recently used are closed and re-opened on
    /// demand. A handle in use by a read or write is closed when that finishes, so the count
    /// can pass this only while more than this many reads and writes are in progress at once.
    pub open_files_max: usize,
}

impl LogConfig {
    /// Defaults: fsync durability, 64 MiB segments, 4 MiB of in-memory tail per log and
    /// 256 MiB for all logs, 512 open segment files.
    pub fn new(dir: impl Into<PathBuf>) -> LogConfig {
        LogConfig {
            dir: dir.into(),
            durability: Durability::Fsync,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            tail_bytes_per_log_max: TAIL_BYTES_PER_LOG_DEFAULT,
            tail_bytes_total_max: TAIL_BYTES_TOTAL_DEFAULT,
            open_files_max: OPEN_FILES_DEFAULT,
        }
    }
}
