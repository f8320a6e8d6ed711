//! The errors of the two traits. Callers match on the variant: `Conflict`, `Fenced` and
//! `Unavailable` ask for different reactions (reload and retry; stop writing; retry later).

use kinesin_log::LogId;

use crate::catalog::{Expect, Version};
use crate::shard_log::Epoch;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A write's expectation did not hold: another writer changed the document first. Nothing
    /// of the change set was committed; reload and retry.
    #[error("catalog {store}: document {table}/{key} changed since it was read (expected {expected:?}, found {found:?}); nothing was committed")]
    Conflict { store: String, table: String, key: String, expected: Expect, found: Option<Version> },
    /// The catalog could not be read or written now (I/O, connection); nothing was committed.
    /// Retryable.
    #[error("catalog {store}: {detail}")]
    Unavailable { store: String, detail: String },
    /// Stored bytes that do not parse as what they must be.
    #[error("catalog {store}: {what} is damaged: {why}")]
    Corrupt { store: String, what: String, why: String },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardLogError {
    /// No log with this id (never created, or deleted).
    #[error("log {0} not found")]
    NotFound(LogId),
    /// `create` of an id that has a log.
    #[error("log {0} already exists")]
    AlreadyExists(LogId),
    /// The writer's epoch is not the log's: another owner acquired it since. The append (or
    /// seal) did nothing; this writer must stop writing the log.
    #[error("log {id}: epoch {held} is fenced by epoch {current}; another owner took the log")]
    Fenced { id: LogId, held: Epoch, current: Epoch },
    /// The log is sealed at `end` and takes no more records.
    #[error("log {id} is sealed at {end} and takes no more records")]
    Sealed { id: LogId, end: u64 },
    /// The append is not acceptable (no records, too many records, too many bytes).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// An encrypted batch names a key generation the reader did not provide.
    #[error("log {id}: the data key of generation {generation} is not available")]
    KeyUnavailable { id: LogId, generation: u32 },
    /// An encrypted batch failed its authentication (changed in storage, or the wrong key).
    #[error("{0}")]
    Unauthentic(String),
    /// Stored data that does not match what was written.
    #[error("{0}")]
    Corrupt(String),
    /// The storage cannot take or serve the call now (I/O error, full disk, shutting down, a
    /// backend out of reach). Nothing was acknowledged; retryable. `storage_full`: the device
    /// is out of space.
    /// `detail` is for the server log (it may name files); `client` says the same without
    /// server paths.
    #[error("{detail}")]
    Unavailable { detail: String, client: String, storage_full: bool },
}

impl ShardLogError {
    /// The error as a client may see it: what failed, without server paths or offsets (those
    /// go to the server log, from `Display`).
    pub fn client_message(&self) -> String {
        match self {
            ShardLogError::Unauthentic(_) => {
                "an encrypted batch failed authentication (changed on disk, or the wrong key)".to_string()
            }
            ShardLogError::Corrupt(_) => {
                "stored records are damaged; the server log names the file and offset".to_string()
            }
            ShardLogError::Unavailable { client, .. } => client.clone(),
            other => other.to_string(),
        }
    }

    /// True when the storage is out of space (ENOSPC or a quota).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, ShardLogError::Unavailable { storage_full: true, .. })
    }
}

impl From<kinesin_log::LogError> for ShardLogError {
    fn from(e: kinesin_log::LogError) -> ShardLogError {
        use kinesin_log::LogError as L;
        match e {
            L::NotFound(id) => ShardLogError::NotFound(id),
            L::AlreadyExists(id) => ShardLogError::AlreadyExists(id),
            L::InvalidAppend(why) => ShardLogError::Invalid(why),
            L::KeyUnavailable { id, generation } => ShardLogError::KeyUnavailable { id, generation },
            e @ L::Unauthentic { .. } => ShardLogError::Unauthentic(e.to_string()),
            e @ (L::Corrupt { .. } | L::UnsupportedVersion { .. }) => ShardLogError::Corrupt(e.to_string()),
            e => ShardLogError::Unavailable {
                storage_full: e.is_storage_full(),
                client: e.client_message(),
                detail: e.to_string(),
            },
        }
    }
}
