//! The service's handle on the shard log: the backend chosen with `--storage`, and the epochs
//! this node holds on the logs it writes (taken at start and when it creates a log).

use std::collections::HashMap;
use std::future::Future;

use parking_lot::RwLock;

use kinesin_log::{AppendOutcome, BatchKey, HistogramSnapshot, LogId, LogStats, RecordIn};
use kinesin_storage::{
    AnyShardLog, Epoch, KeySet, ReadOutcome, ReadRequest, ShardLog, ShardLogError, TipWatch,
};

/// Where the service keeps streams and records (`kinesin serve --storage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StorageKind {
    /// The data directory: `meta.redb` and the segment files under `log/`.
    #[default]
    Local,
    /// Process memory only: nothing is written to disk, everything is gone at exit.
    Memory,
}

impl StorageKind {
    pub fn parse(text: &str) -> Result<StorageKind, String> {
        match text {
            "local" => Ok(StorageKind::Local),
            "memory" => Ok(StorageKind::Memory),
            other => Err(format!(
                "--storage {other}: expected `local` (the data directory) or `memory` (nothing on disk, gone at exit)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Local => "local",
            StorageKind::Memory => "memory",
        }
    }
}

/// The shard log with this node's epochs: callers name a log, the epoch goes with it.
pub(crate) struct Logs {
    backend: AnyShardLog,
    epochs: RwLock<HashMap<LogId, Epoch>>,
}

impl Logs {
    pub fn new(backend: AnyShardLog) -> Logs {
        Logs { backend, epochs: RwLock::new(HashMap::new()) }
    }

    /// The epoch held on `id`; a log this node never took gets epoch 0, which the backend fences.
    fn epoch(&self, id: LogId) -> Epoch {
        self.epochs.read().get(&id).copied().unwrap_or_default()
    }

    /// Creates logs, durable on return, and holds them.
    pub async fn create(&self, logs: &[(LogId, u64)]) -> Result<(), ShardLogError> {
        let epochs = self.backend.create(logs).await?;
        let mut held = self.epochs.write();
        for ((id, _), epoch) in logs.iter().zip(epochs) {
            held.insert(*id, epoch);
        }
        Ok(())
    }

    /// Takes an existing log for writing.
    pub async fn acquire(&self, id: LogId) -> Result<(), ShardLogError> {
        let epoch = self.backend.acquire(id).await?;
        self.epochs.write().insert(id, epoch);
        Ok(())
    }

    pub fn append<'a>(
        &'a self,
        id: LogId,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: Option<&'a BatchKey>,
    ) -> impl Future<Output = Result<AppendOutcome, ShardLogError>> + Send + 'a {
        self.backend.append(id, self.epoch(id), now_ms, records, key)
    }

    pub async fn seal(&self, id: LogId) -> Result<u64, ShardLogError> {
        self.backend.seal(id, self.epoch(id)).await
    }

    pub fn read(
        &self,
        id: LogId,
        request: ReadRequest,
        keys: KeySet,
    ) -> impl Future<Output = Result<ReadOutcome, ShardLogError>> + Send + '_ {
        self.backend.read(id, request, keys)
    }

    pub async fn seek_time(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        self.backend.seek_time(id, arrival_ms).await
    }

    pub async fn tip(&self, id: LogId) -> Result<u64, ShardLogError> {
        self.backend.tip(id).await
    }

    pub async fn trim_before(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        self.backend.trim_before(id, arrival_ms).await
    }

    pub async fn delete(&self, id: LogId) -> Result<(), ShardLogError> {
        let deleted = self.backend.delete(id).await;
        self.epochs.write().remove(&id);
        deleted
    }

    pub async fn ids(&self) -> Result<Vec<LogId>, ShardLogError> {
        self.backend.ids().await
    }

    pub fn watch(&self, id: LogId) -> Result<TipWatch, ShardLogError> {
        self.backend.watch(id)
    }

    pub fn shutdown(&self) {
        self.backend.shutdown();
    }

    pub fn stats(&self) -> LogStats {
        self.backend.stats()
    }

    pub fn sync_latency(&self) -> HistogramSnapshot {
        self.backend.sync_latency()
    }
}

/// Waits for a storage call from synchronous code: the control-plane paths that still run on a
/// thread allowed to block (the server's `block_in_place`, the tick thread, start-up). The
/// local and memory backends finish these calls (create, delete, trim, tip, seal after the
/// gates drained, catalog commits) without waiting on the runtime; once those paths are async,
/// `.await` replaces this. Data-plane reads and appends are awaited, never waited for here.
///
/// The future runs outside tokio's cooperative budget (`unconstrained`): called from a thread
/// inside a runtime context (the blocking pool's `block_on`), tokio's resources would otherwise
/// answer `Pending` once the budget of the enclosing task is spent, and this executor, which
/// never returns to tokio's scheduler, would poll them again forever (a CreateStream of more
/// than ~128 shards spun at 100% CPU).
pub(crate) fn wait<F: Future>(f: F) -> F::Output {
    futures::executor::block_on(tokio::task::unconstrained(f))
}
