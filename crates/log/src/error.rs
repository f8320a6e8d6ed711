use std::io;
use std::path::PathBuf;

use crate::LogId;

/// Errors of the shard log. Callers match on the variant; the message says what happened and
/// where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// No log with this id exists (never created, or deleted).
    #[error("log {0} not found")]
    NotFound(LogId),
    /// `create` was called for an id that already has a log.
    #[error("log {0} already exists")]
    AlreadyExists(LogId),
    /// An I/O operation failed; `op` names it ("write", "sync", ...) and `path` the file.
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Bytes on disk do not match what was written (checksum or structure).
    #[error("corrupt log data in {path} at offset {offset}: {why}")]
    Corrupt { path: PathBuf, offset: u64, why: String },
    /// A segment or index file written by a newer (or unknown) version of its format.
    #[error(
        "{path}: format version {version}, which this kinesin does not read (it reads versions up to {supported}); if a newer kinesin wrote it, upgrade kinesin"
    )]
    UnsupportedVersion { path: PathBuf, version: u16, supported: u16 },
    /// The append is not acceptable (no records, too many records, too many bytes).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// An encrypted batch names a key generation the caller did not provide.
    #[error("log {id}: the data key of generation {generation} is not available")]
    KeyUnavailable { id: LogId, generation: u32 },
    /// An encrypted batch failed its authentication: it was changed on disk, or the key given
    /// for its generation is not the one it was sealed with. It is not served.
    #[error("encrypted batch in {path} at offset {offset} failed authentication (changed on disk, or the wrong key)")]
    Unauthentic { path: PathBuf, offset: u64 },
    /// The log is shutting down and takes no more appends.
    #[error("the log is shutting down")]
    ShuttingDown,
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LogError {
        LogError::Io { path: path.into(), op, source }
    }

    /// What went wrong, for an API client: like the `Display` text but naming no file or
    /// directory, since clients never see the server's paths (the server log has them).
    pub fn client_message(&self) -> String {
        match self {
            LogError::Io { op, source, .. } => format!("{op} failed: {source}"),
            LogError::Corrupt { .. } => {
                "stored records are damaged; the server log names the file and offset".to_string()
            }
            LogError::UnsupportedVersion { version, supported, .. } => format!(
                "stored records are in format version {version}, which this kinesin does not read (it reads up to {supported})"
            ),
            LogError::Unauthentic { .. } => {
                "an encrypted batch failed authentication (changed on disk, or the wrong key)".to_string()
            }
            other => other.to_string(),
        }
    }

    /// True when the error is an I/O error caused by a full device (ENOSPC or a quota).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, LogError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }
}
