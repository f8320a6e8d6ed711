//! The local implementations: the data directory as kinesin has always written it.
//!
//! - [`LocalShardLog`]: `kinesin_log::Log` (segment files under `<data-dir>/log`, one writer
//!   thread, group commit). Reads (pread and decryption of up to 10 MiB) run on the blocking
//!   pool. Epochs and seals are held in memory: one process owns the directory, takes every log
//!   at start (`acquire`) and re-seals closed shards from the catalog.
//! - [`RedbCatalog`]: `meta.redb`, one redb table per catalog table (`streams`, `account`), values
//!   the documents' bytes, exactly the layout of format version 1 (docs/format.md, "Metadata").
//!   Versions are not stored (the layout has no place for them): they are numbered in memory
//!   from the open, which is enough while one process owns the file (redb locks it).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use kinesin_log::{AppendOutcome, BatchKey, HistogramSnapshot, Log, LogConfig, LogId, LogStats, RecordIn};
use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableTable, TableDefinition, TableHandle};
use tokio::sync::watch;

use crate::catalog::{check, Catalog, ChangeFeed, Doc, Snapshot, Version, Write};
use crate::error::{CatalogError, ShardLogError};
use crate::owner::Ownership;
use crate::shard_log::{Epoch, KeySet, ReadOutcome, ReadRequest, ShardLog, TipWatch};

/// `kinesin_log::Log` as a [`ShardLog`].
pub struct LocalShardLog {
    log: Arc<Log>,
    owners: RwLock<HashMap<LogId, Arc<Ownership>>>,
}

impl LocalShardLog {
    /// Opens (creating if needed) the log directory and recovers every log in it.
    pub fn open(config: LogConfig) -> Result<LocalShardLog, ShardLogError> {
        LocalShardLog::from_log(Log::open_default(config)?)
    }

    /// Wraps an open log (for tests on simulated storage).
    pub fn from_log(log: Log) -> Result<LocalShardLog, ShardLogError> {
        let mut owners = HashMap::new();
        for id in log.ids() {
            owners.insert(id, Arc::new(Ownership::new(log.tip(id)?)));
        }
        Ok(LocalShardLog { log: Arc::new(log), owners: RwLock::new(owners) })
    }

    pub fn stats(&self) -> LogStats {
        self.log.stats()
    }

    pub fn sync_latency(&self) -> HistogramSnapshot {
        self.log.sync_latency()
    }

    fn owner(&self, id: LogId) -> Result<Arc<Ownership>, ShardLogError> {
        self.owners.read().get(&id).cloned().ok_or(ShardLogError::NotFound(id))
    }
}

fn read_now(log: &Log, id: LogId, request: ReadRequest, keys: &KeySet) -> Result<ReadOutcome, ShardLogError> {
    let horizon =
        if request.not_before_ms == i64::MIN { 0 } else { log.seek_time(id, request.not_before_ms)? };
    let start = request.from.max(horizon);
    let out = log.read_with(id, start, request.max_records, request.max_bytes, keys)?;
    let tip = log.tip(id)?;
    let newest_arrival_ms = log.newest_arrival_ms(id)?;
    Ok(ReadOutcome {
        records: out.records,
        start,
        next_seq_index: out.next_seq_index,
        tip,
        newest_arrival_ms,
    })
}

impl ShardLog for LocalShardLog {
    async fn create(&self, logs: &[(LogId, u64)]) -> Result<Vec<Epoch>, ShardLogError> {
        self.log.create_many(logs)?;
        let owners: Vec<Arc<Ownership>> =
            logs.iter().map(|(_, first)| Arc::new(Ownership::new(*first))).collect();
        {
            let mut map = self.owners.write();
            for ((id, _), owner) in logs.iter().zip(&owners) {
                map.insert(*id, Arc::clone(owner));
            }
        }
        let mut epochs = Vec::with_capacity(owners.len());
        for owner in owners {
            epochs.push(owner.acquire().await);
        }
        Ok(epochs)
    }

    async fn acquire(&self, id: LogId) -> Result<Epoch, ShardLogError> {
        Ok(self.owner(id)?.acquire().await)
    }

    async fn append(
        &self,
        id: LogId,
        epoch: Epoch,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: Option<&BatchKey>,
    ) -> Result<AppendOutcome, ShardLogError> {
        let owner = self.owner(id)?;
        let admitted = owner.admit(id, epoch).await?;
        let count = records.len() as u64;
        let out = self.log.append_with(id, now_ms, records, key).await?;
        drop(admitted);
        owner.advanced(out.first_seq_index + count);
        Ok(out)
    }

    async fn seal(&self, id: LogId, epoch: Epoch) -> Result<u64, ShardLogError> {
        let owner = self.owner(id)?;
        owner.seal(id, epoch, || Ok(self.log.tip(id)?)).await
    }

    async fn read(
        &self,
        id: LogId,
        request: ReadRequest,
        keys: KeySet,
    ) -> Result<ReadOutcome, ShardLogError> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let log = Arc::clone(&self.log);
                runtime.spawn_blocking(move || read_now(&log, id, request, &keys)).await.map_err(|e| {
                    ShardLogError::Unavailable {
                        detail: format!("the read task failed: {e}"),
                        client: "the read task failed".to_string(),
                        storage_full: false,
                    }
                })?
            }
            // No runtime (a synchronous caller): this thread may block.
            Err(_) => read_now(&self.log, id, request, &keys),
        }
    }

    async fn seek_time(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        Ok(self.log.seek_time(id, arrival_ms)?)
    }

    async fn tip(&self, id: LogId) -> Result<u64, ShardLogError> {
        Ok(self.log.tip(id)?)
    }

    async fn trim_before(&self, id: LogId, arrival_ms: i64) -> Result<u64, ShardLogError> {
        Ok(self.log.trim_before(id, arrival_ms)?)
    }

    async fn delete(&self, id: LogId) -> Result<(), ShardLogError> {
        self.log.delete(id)?;
        self.owners.write().remove(&id);
        Ok(())
    }

    async fn ids(&self) -> Result<Vec<LogId>, ShardLogError> {
        Ok(self.log.ids())
    }

    fn watch(&self, id: LogId) -> Result<TipWatch, ShardLogError> {
        Ok(self.owner(id)?.watch())
    }

    fn shutdown(&self) {
        self.log.shutdown();
    }
}

fn table(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

/// `meta.redb` as a [`Catalog`].
pub struct RedbCatalog {
    db: Database,
    path: String,
    /// Held across each commit (redb serializes write transactions anyway) and snapshot.
    versions: Mutex<Versions>,
    feed: watch::Sender<u64>,
}

struct Versions {
    seq: u64,
    of: HashMap<(String, String), Version>,
}

impl RedbCatalog {
    /// Opens (creating if needed) the database and makes `tables` exist, as earlier versions
    /// did on every start.
    pub fn open(path: &Path, tables: &[&str]) -> Result<RedbCatalog, CatalogError> {
        let shown = path.display().to_string();
        let db = Database::create(path).map_err(|x| unavailable(&shown)(x.into()))?;
        RedbCatalog::from_db(db, shown, tables)
    }

    /// The catalog on another redb storage backend than a file (the crash simulation's
    /// simulated disk); `label` names the store in errors.
    pub fn open_on_backend(
        backend: impl redb::StorageBackend,
        label: &str,
        tables: &[&str],
    ) -> Result<RedbCatalog, CatalogError> {
        let e = unavailable(label);
        let db = Database::builder().create_with_backend(backend).map_err(|x| e(x.into()))?;
        RedbCatalog::from_db(db, label.to_string(), tables)
    }

    fn from_db(db: Database, shown: String, tables: &[&str]) -> Result<RedbCatalog, CatalogError> {
        let e = unavailable(&shown);
        let tx = db.begin_write().map_err(|x| e(x.into()))?;
        for name in tables {
            tx.open_table(table(name)).map_err(|x| e(x.into()))?;
        }
        tx.commit().map_err(|x| e(x.into()))?;
        let catalog = RedbCatalog {
            db,
            path: shown.clone(),
            versions: Mutex::new(Versions { seq: 1, of: HashMap::new() }),
            feed: watch::Sender::new(1),
        };
        let docs = catalog.read_all(&|_, _| 1)?;
        catalog.versions.lock().of = docs.into_iter().map(|d| ((d.table, d.key), 1)).collect();
        Ok(catalog)
    }

    fn read_all(&self, version: &dyn Fn(&str, &str) -> Version) -> Result<Vec<Doc>, CatalogError> {
        let e = unavailable(&self.path);
        let read = self.db.begin_read().map_err(|x| e(x.into()))?;
        let mut docs = Vec::new();
        let mut names: Vec<String> =
            read.list_tables().map_err(|x| e(x.into()))?.map(|h| h.name().to_string()).collect();
        names.sort();
        for name in names {
            let t = read.open_table(table(&name)).map_err(|x| e(x.into()))?;
            for entry in t.iter().map_err(|x| e(x.into()))? {
                let (k, v) = entry.map_err(|x| e(x.into()))?;
                let key = k.value().to_string();
                docs.push(Doc {
                    version: version(&name, &key),
                    table: name.clone(),
                    key,
                    value: v.value().to_vec(),
                });
            }
        }
        Ok(docs)
    }
}

fn unavailable(path: &str) -> impl Fn(redb::Error) -> CatalogError + '_ {
    move |e| CatalogError::Unavailable { store: path.to_string(), detail: e.to_string() }
}

impl Catalog for RedbCatalog {
    fn describe(&self) -> &str {
        &self.path
    }

    async fn snapshot(&self) -> Result<Snapshot, CatalogError> {
        let versions = self.versions.lock();
        let docs =
            self.read_all(&|t, k| versions.of.get(&(t.to_string(), k.to_string())).copied().unwrap_or(1))?;
        Ok(Snapshot { seq: versions.seq, docs })
    }

    async fn get(&self, t: &str, key: &str) -> Result<Option<Doc>, CatalogError> {
        let e = unavailable(&self.path);
        let versions = self.versions.lock();
        let read = self.db.begin_read().map_err(|x| e(x.into()))?;
        let opened = match read.open_table(table(t)) {
            Ok(opened) => opened,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(x) => return Err(e(x.into())),
        };
        let found = opened.get(key).map_err(|x| e(x.into()))?;
        Ok(found.map(|v| Doc {
            table: t.to_string(),
            key: key.to_string(),
            version: versions.of.get(&(t.to_string(), key.to_string())).copied().unwrap_or(1),
            value: v.value().to_vec(),
        }))
    }

    async fn commit(&self, writes: &[Write<'_>]) -> Result<Version, CatalogError> {
        let e = unavailable(&self.path);
        let mut versions = self.versions.lock();
        for w in writes {
            check(&self.path, w, versions.of.get(&(w.table.to_string(), w.key.to_string())).copied())?;
        }
        let seq = versions.seq + 1;
        let tx = self.db.begin_write().map_err(|x| e(x.into()))?;
        for w in writes {
            let mut t = tx.open_table(table(w.table)).map_err(|x| e(x.into()))?;
            match w.value {
                Some(value) => {
                    t.insert(w.key, value).map_err(|x| e(x.into()))?;
                }
                None => {
                    t.remove(w.key).map_err(|x| e(x.into()))?;
                }
            }
        }
        tx.commit().map_err(|x| e(x.into()))?;
        versions.seq = seq;
        for w in writes {
            let key = (w.table.to_string(), w.key.to_string());
            match w.value {
                Some(_) => versions.of.insert(key, seq),
                None => versions.of.remove(&key),
            };
        }
        drop(versions);
        self.feed.send_replace(seq);
        Ok(seq)
    }

    fn changes(&self) -> ChangeFeed {
        ChangeFeed::new(self.feed.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::Path;
    use std::sync::Arc;

    use bytes::Bytes;
    use kinesin_log::{FsStorage, Log, LogConfig, LogId, RecordIn, Storage, StorageFile};
    use parking_lot::Mutex;

    use super::LocalShardLog;
    use crate::{KeySet, ReadRequest, ShardLog};

    /// The real filesystem, noting the thread of every read.
    #[derive(Default)]
    struct Spy {
        readers: Arc<Mutex<Vec<String>>>,
    }

    #[derive(Debug)]
    struct SpyFile {
        file: Arc<dyn StorageFile>,
        readers: Arc<Mutex<Vec<String>>>,
    }

    impl StorageFile for SpyFile {
        fn len_bytes(&self) -> io::Result<u64> {
            self.file.len_bytes()
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            self.readers.lock().push(std::thread::current().name().unwrap_or("").to_string());
            self.file.read_exact_at(buf, offset)
        }
        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            self.file.write_all_at(buf, offset)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.file.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.file.sync_data()
        }
    }

    impl Spy {
        fn wrap(&self, file: io::Result<Arc<dyn StorageFile>>) -> io::Result<Arc<dyn StorageFile>> {
            Ok(Arc::new(SpyFile { file: file?, readers: Arc::clone(&self.readers) }))
        }
    }

    impl Storage for Spy {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            FsStorage.create_dir_all(path)
        }
        fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
            FsStorage.list_dir(path)
        }
        fn sync_dir(&self, path: &Path) -> io::Result<()> {
            FsStorage.sync_dir(path)
        }
        fn create_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
            self.wrap(FsStorage.create_file(path))
        }
        fn create_file_with_mode(&self, path: &Path, mode: u32) -> io::Result<Arc<dyn StorageFile>> {
            self.wrap(FsStorage.create_file_with_mode(path, mode))
        }
        fn open_file(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
            self.wrap(FsStorage.open_file(path))
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            FsStorage.remove_file(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            FsStorage.rename(from, to)
        }
        fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
            FsStorage.remove_dir_all(path)
        }
        fn sync_filesystem(&self, path: &Path) -> io::Result<()> {
            FsStorage.sync_filesystem(path)
        }
    }

    /// GetRecords and SubscribeToShard read (pread, decryption) up to 10 MiB: never on the
    /// runtime thread that awaits the read.
    #[tokio::test(flavor = "current_thread")]
    async fn reads_run_on_the_blocking_pool_not_on_the_awaiting_thread() {
        let dir = tempfile::tempdir().unwrap();
        let spy = Spy::default();
        let readers = Arc::clone(&spy.readers);
        // No in-memory tail: every read goes to the segment file.
        let config =
            LogConfig { tail_bytes_per_log_max: 0, tail_bytes_total_max: 0, ..LogConfig::new(dir.path()) };
        let log = LocalShardLog::from_log(Log::open(config, Arc::new(spy)).unwrap()).unwrap();
        let id = LogId(1);
        let epoch = log.create(&[(id, 1)]).await.unwrap()[0];
        let record = RecordIn { partition_key: Bytes::from("pk"), data: Bytes::from(vec![1u8; 1000]) };
        log.append(id, epoch, 1, vec![record], None).await.unwrap();
        readers.lock().clear();
        let request = ReadRequest { from: 0, not_before_ms: i64::MIN, max_records: 10, max_bytes: 1 << 20 };
        let out = log.read(id, request, KeySet::default()).await.unwrap();
        assert_eq!(out.records.len(), 1);
        let here = std::thread::current().name().unwrap_or("").to_string();
        let readers = readers.lock().clone();
        assert!(!readers.is_empty(), "the read did not reach the file");
        assert!(readers.iter().all(|r| *r != here), "read on the awaiting thread {here:?}: {readers:?}");
        log.shutdown();
    }
}
