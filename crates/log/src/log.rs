//! [`Log`]: the public face of the crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, Semaphore};

use crate::crypt::{BatchKey, BatchKeys, NoKeys};
use crate::files::FileCache;
use crate::format::{self, EncodeError, SEGMENT_HEADER_LEN};
use crate::recovery;
use crate::shard::{ActiveSegment, ReadState, SegmentState, Shard, WriteState};
use crate::tail::{Tail, TailBudget};
use crate::writer::{create_segment, AppendRequest, Stats, SteppedWriter, Writer};
use crate::{
    AppendOutcome, FsStorage, LogConfig, LogError, LogId, ReadOutcome, RecordIn, Storage,
    APPEND_QUEUE_BYTES_MAX, APPEND_QUEUE_DEPTH_MAX, LOGS_CREATED_AT_ONCE_MAX, SYNC_FILES_SEPARATELY_MAX,
};

/// Counters since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    pub appends_ok: u64,
    pub appends_failed: u64,
    pub bytes_written: u64,
    /// Group-commit rounds the writer ran.
    pub rounds: u64,
    /// Rounds that synced something (one per round, however many files it synced).
    pub sync_rounds: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
    /// `syncfs` calls: one per round that touched more than [`crate::SYNC_FILES_SEPARATELY_MAX`]
    /// files, and one per `create_many` of more than that many logs.
    pub fs_syncs: u64,
    /// Bytes held now in the in-memory tails of all logs (at most
    /// [`LogConfig::tail_bytes_total_max`] once each append is acknowledged).
    pub tail_bytes: u64,
    /// Segment files held open now by the handle cache (at most [`LogConfig::open_files_max`]).
    pub open_files: u64,
    /// Appends submitted and not yet answered now: queued for the writer or in its round.
    pub appends_in_flight: u64,
}

/// All shard logs under one directory, with one writer thread for all of them.
pub struct Log {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Instead of the thread, with [`Log::open_stepped`]: the writer its caller runs.
    stepped: Mutex<Option<SteppedWriter>>,
}

struct Inner {
    config: LogConfig,
    storage: Arc<dyn Storage>,
    logs: RwLock<BTreeMap<LogId, Arc<Shard>>>,
    /// `None` once shutting down. Appends send while holding the read lock, so after
    /// `shutdown` takes it nothing more reaches the writer.
    sender: RwLock<Option<mpsc::Sender<AppendRequest>>>,
    queue_slots: Arc<Semaphore>,
    queue_bytes: Arc<Semaphore>,
    stats: Arc<Stats>,
    files: Arc<FileCache>,
    tails: Arc<TailBudget>,
    /// Held by `create_many` and `delete` for their whole run.
    admin: Mutex<()>,
}

/// Damaged batches one read steps over before it gives up.
const READ_DAMAGE_RETRIES_MAX: usize = 16;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::io(op, path, source)
}

impl Log {
    /// Opens (creating if needed) the directory and recovers every shard log in it.
    pub fn open(config: LogConfig, storage: Arc<dyn Storage>) -> Result<Log, LogError> {
        Log::open_with(config, storage, false)
    }

    /// [`Log::open`] without a writer thread, for deterministic simulation: appends wait in the
    /// queue until the caller runs a group-commit round with [`Log::step_writer`] (and, under
    /// `Durability::Interval`, a periodic sync with [`Log::step_interval_sync`]). The rounds
    /// are the thread's; only the caller, not scheduling, decides which appends share one.
    /// `shutdown` runs whatever is still queued.
    pub fn open_stepped(config: LogConfig, storage: Arc<dyn Storage>) -> Result<Log, LogError> {
        Log::open_with(config, storage, true)
    }

    fn open_with(config: LogConfig, storage: Arc<dyn Storage>, stepped: bool) -> Result<Log, LogError> {
        assert!(config.segment_bytes_max > 0, "segment_bytes_max must be positive");
        assert!(config.open_files_max > 0, "open_files_max must be positive");
        let tails = Arc::new(TailBudget::new(config.tail_bytes_total_max));
        let root = config.dir.clone();
        storage.create_dir_all(&root).map_err(io("create directory", &root))?;
        if let Some(parent) = root.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            storage.sync_dir(parent).map_err(io("sync directory", parent))?;
        }
        let mut logs = BTreeMap::new();
        let mut recovered_indexes = Vec::new();
        let mut names = storage.list_dir(&root).map_err(io("list", &root))?;
        names.sort();
        for name in names {
            let path = root.join(&name);
            if name.strip_suffix(format::DELETED_SUFFIX).and_then(format::parse_log_dir_name).is_some() {
                tracing::info!(dir = %path.display(), "finishing an interrupted delete");
                storage.remove_dir_all(&path).map_err(io("remove", &path))?;
                storage.sync_dir(&root).map_err(io("sync directory", &root))?;
                continue;
            }
            let Some(id) = format::parse_log_dir_name(&name) else {
                tracing::warn!(path = %path.display(), "ignoring unknown entry in the log directory");
                continue;
            };
            if let Some(recovered) = recovery::recover_log(&storage, &root, LogId(id), &path, tails.total())?
            {
                recovered_indexes.push((LogId(id), path, recovered.indexes_to_write));
                logs.insert(LogId(id), Arc::new(recovered.shard));
            }
        }
        // One sync for every log's surviving bytes (a process crash can leave them unsynced in
        // the page cache): nothing is served that a later crash could take back. Only then may
        // indexes describe those bytes.
        storage.sync_filesystem(&root).map_err(io("sync filesystem", &root))?;
        let mut wrote_indexes = false;
        for (id, dir, indexes) in recovered_indexes {
            for (base, index) in indexes {
                wrote_indexes |=
                    crate::writer::write_index_logged(storage.as_ref(), &dir, id, base, &index, false);
            }
        }
        if wrote_indexes {
            storage.sync_filesystem(&root).map_err(io("sync filesystem", &root))?;
        }

        let stats = Arc::new(Stats::default());
        let (sender, receiver) = mpsc::channel();
        let files = Arc::new(FileCache::new(Arc::clone(&storage), config.open_files_max));
        let writer = Writer {
            storage: Arc::clone(&storage),
            config: config.clone(),
            stats: Arc::clone(&stats),
            files: Arc::clone(&files),
            tails: Arc::clone(&tails),
        };
        let (handle, stepped) = if stepped {
            (None, Some(SteppedWriter::new(writer, receiver)))
        } else {
            let handle = std::thread::Builder::new()
                .name("kinesin-log-writer".into())
                .spawn(move || writer.run(receiver))
                .map_err(io("spawn writer thread", &root))?;
            (Some(handle), None)
        };
        Ok(Log {
            inner: Arc::new(Inner {
                config,
                storage,
                logs: RwLock::new(logs),
                sender: RwLock::new(Some(sender)),
                queue_slots: Arc::new(Semaphore::new(APPEND_QUEUE_DEPTH_MAX)),
                queue_bytes: Arc::new(Semaphore::new(APPEND_QUEUE_BYTES_MAX)),
                stats,
                files,
                tails,
                admin: Mutex::new(()),
            }),
            writer: Mutex::new(handle),
            stepped: Mutex::new(stepped),
        })
    }

    /// Opens on the real filesystem.
    pub fn open_default(config: LogConfig) -> Result<Log, LogError> {
        Log::open(config, Arc::new(FsStorage))
    }

    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Ids of all logs, ascending.
    pub fn ids(&self) -> Vec<LogId> {
        self.inner.logs.read().keys().copied().collect()
    }

    fn shard(&self, id: LogId) -> Result<Arc<Shard>, LogError> {
        self.inner.logs.read().get(&id).cloned().ok_or(LogError::NotFound(id))
    }

    fn log_dir(&self, id: LogId) -> PathBuf {
        self.inner.config.dir.join(format::log_dir_name(id.0))
    }

    /// Creates an empty log whose first record will get `first_seq_index`. Durable on return.
    pub fn create(&self, id: LogId, first_seq_index: u64) -> Result<(), LogError> {
        self.create_many(&[(id, first_seq_index)])
    }

    /// Creates empty logs, each `(id, first sequence index)`, all durable on return, with one
    /// sync round: for at most [`SYNC_FILES_SEPARATELY_MAX`] logs an `fdatasync` of each new
    /// segment and an `fsync` of each new directory, for more one `syncfs`; then one `fsync` of
    /// the parent directory. All or nothing: on error none of them exists (a crash part way may
    /// leave directories that the next open removes, or whole logs the caller never heard of,
    /// as a crash in `create` could).
    pub fn create_many(&self, logs: &[(LogId, u64)]) -> Result<(), LogError> {
        assert!(
            logs.len() <= LOGS_CREATED_AT_ONCE_MAX,
            "create at most {LOGS_CREATED_AT_ONCE_MAX} logs at once"
        );
        if logs.is_empty() {
            return Ok(());
        }
        let storage = self.inner.storage.as_ref();
        let root = &self.inner.config.dir;
        // Serialises creates and deletes, which work on directories outside the map lock.
        let _admin = self.inner.admin.lock();
        {
            let existing = self.inner.logs.read();
            let mut seen = std::collections::HashSet::with_capacity(logs.len());
            for (id, _) in logs {
                if existing.contains_key(id) || !seen.insert(*id) {
                    return Err(LogError::AlreadyExists(*id));
                }
            }
        }
        /// A log made on disk, not yet durable.
        struct Made {
            id: LogId,
            first_seq_index: u64,
            dir: PathBuf,
            path: PathBuf,
        }
        let sync_each = logs.len() <= SYNC_FILES_SEPARATELY_MAX;
        let mut made: Vec<Made> = Vec::with_capacity(logs.len());
        let result = (|| {
            for &(id, first_seq_index) in logs {
                let dir = self.log_dir(id);
                if storage.list_dir(&dir).is_ok() {
                    // Left over from a create or delete that failed part way; it was never a log.
                    self.inner.files.forget_under(&dir);
                    storage.remove_dir_all(&dir).map_err(io("remove", &dir))?;
                }
                storage.create_dir_all(&dir).map_err(io("create directory", &dir))?;
                let path = dir.join(format::segment_file_name(first_seq_index));
                match create_segment(storage, &self.inner.files, &path, id, first_seq_index) {
                    Ok(file) => {
                        // Few: cached, to sync them below (and as the first append's handle).
                        // Many: closed at once, so creating 10,000 logs opens one file at a time.
                        if sync_each {
                            self.inner.files.insert(&path, file);
                        }
                        made.push(Made { id, first_seq_index, dir, path });
                    }
                    Err(error) => {
                        if let Err(cleanup) = storage.remove_dir_all(&dir) {
                            tracing::warn!(dir = %dir.display(), error = %cleanup, "could not clean up after a failed create");
                        }
                        return Err(error);
                    }
                }
            }
            if !sync_each {
                // Segments and the new directories' entries, all in one call.
                storage.sync_filesystem(root).map_err(io("sync filesystem", root))?;
                self.inner.stats.fs_syncs.fetch_add(1, Ordering::Relaxed);
            } else {
                for Made { dir, path, .. } in &made {
                    let file = self.inner.files.get(path).map_err(io("open", path))?;
                    file.sync_data().map_err(io("sync", path))?;
                    storage.sync_dir(dir).map_err(io("sync directory", dir))?;
                }
            }
            storage.sync_dir(root).map_err(io("sync directory", root))
        })();
        if let Err(error) = result {
            for Made { dir, .. } in &made {
                self.inner.files.forget_under(dir);
                if let Err(cleanup) = storage.remove_dir_all(dir) {
                    tracing::warn!(dir = %dir.display(), error = %cleanup, "could not clean up after a failed create");
                }
            }
            return Err(error);
        }
        let header_len = SEGMENT_HEADER_LEN as u64;
        let mut map = self.inner.logs.write();
        for Made { id, first_seq_index, dir, path } in made {
            let shard = Shard {
                id,
                dir,
                write: Mutex::new(WriteState {
                    deleted: false,
                    active: ActiveSegment {
                        base: first_seq_index,
                        path: path.clone(),
                        written_len: header_len,
                        synced_len: header_len,
                        takes_encrypted: true,
                    },
                    next_seq: first_seq_index,
                    last_arrival_ms: None,
                    needs_roll: false,
                    dir_sync_pending: false,
                    truncate_pending: false,
                    unpublished: 0,
                    index_covered_len: Some(header_len),
                }),
                read: RwLock::new(ReadState {
                    segments: vec![SegmentState {
                        base: first_seq_index,
                        path,
                        batches: Vec::new(),
                        len_bytes: header_len,
                    }],
                    tip: first_seq_index,
                    newest_arrival_ms: None,
                    tail: Tail::new(self.inner.tails.total()),
                }),
                tail_tick: Default::default(),
            };
            map.insert(id, Arc::new(shard));
        }
        Ok(())
    }

    /// Appends the records as one batch. Resolves once the batch is acknowledged: durable under
    /// `Durability::Fsync`, written under `Durability::Interval`. Waits while the writer's queue
    /// is full.
    pub async fn append(
        &self,
        id: LogId,
        now_ms: i64,
        records: Vec<RecordIn>,
    ) -> Result<AppendOutcome, LogError> {
        self.append_with(id, now_ms, records, None).await
    }

    /// [`Log::append`], the batch stored encrypted with `key` (AES-256-GCM, a random nonce per
    /// batch; `docs/format.md`, "Encrypted batches"). Reading it back needs the key of its
    /// generation ([`Log::read_with`]).
    pub async fn append_encrypted(
        &self,
        id: LogId,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: &BatchKey,
    ) -> Result<AppendOutcome, LogError> {
        self.append_with(id, now_ms, records, Some(key)).await
    }

    /// [`Log::append`] or [`Log::append_encrypted`], as `key` says.
    pub async fn append_with(
        &self,
        id: LogId,
        now_ms: i64,
        records: Vec<RecordIn>,
        key: Option<&BatchKey>,
    ) -> Result<AppendOutcome, LogError> {
        let encryption = match key {
            None => None,
            Some(key) => {
                let nonce = crate::crypt::random_nonce().ok_or_else(|| {
                    LogError::InvalidAppend(
                        "the system random generator failed; no nonce for the batch".into(),
                    )
                })?;
                Some((key.clone(), nonce))
            }
        };
        let batch = format::encode_records_with(
            records.iter().map(|r| (&r.partition_key[..], &r.data[..])),
            encryption,
        )
        .map_err(|error| match error {
            EncodeError::Empty => LogError::InvalidAppend("no records".into()),
            EncodeError::TooManyRecords(n) => {
                LogError::InvalidAppend(format!("{n} records, at most {} allowed", format::BATCH_RECORDS_MAX))
            }
            EncodeError::TooLarge(n) => LogError::InvalidAppend(format!(
                "{n} bytes encoded, at most {} allowed",
                format::BATCH_BYTES_MAX
            )),
        })?;
        drop(records);
        let shard = self.shard(id)?;
        let slot =
            Arc::clone(&self.inner.queue_slots).acquire_owned().await.map_err(|_| LogError::ShuttingDown)?;
        // BATCH_BYTES_MAX < APPEND_QUEUE_BYTES_MAX < u32::MAX, so one batch always fits.
        let bytes = Arc::clone(&self.inner.queue_bytes)
            .acquire_many_owned(batch.buf.len() as u32)
            .await
            .map_err(|_| LogError::ShuttingDown)?;
        let (reply, answer) = oneshot::channel();
        {
            let sender = self.inner.sender.read();
            let sender = sender.as_ref().ok_or(LogError::ShuttingDown)?;
            sender
                .send(AppendRequest { shard, now_ms, batch, reply, permits: (slot, bytes) })
                .map_err(|_| LogError::ShuttingDown)?;
        }
        answer.await.map_err(|_| LogError::ShuttingDown)?
    }

    /// Reads records with `seq_index >= from_seq_index` (from `first()` if below it), in order,
    /// at most `max_records`, stopping before a record that would take the partition key and
    /// data bytes past `max_bytes`, but with at least one record if any is available (and
    /// `max_records > 0`).
    pub fn read(
        &self,
        id: LogId,
        from_seq_index: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<ReadOutcome, LogError> {
        self.read_with(id, from_seq_index, max_records, max_bytes, &NoKeys)
    }

    /// [`Log::read`], decrypting encrypted batches with the keys of their generations from
    /// `keys`. A batch whose generation `keys` does not have fails the read with
    /// [`LogError::KeyUnavailable`]; one that fails authentication with
    /// [`LogError::Unauthentic`] (never served, never quarantined: the key may be wrong).
    pub fn read_with(
        &self,
        id: LogId,
        from_seq_index: u64,
        max_records: usize,
        max_bytes: usize,
        keys: &dyn BatchKeys,
    ) -> Result<ReadOutcome, LogError> {
        let shard = self.shard(id)?;
        // Each damaged batch found takes itself and the rest of its segment out of the index,
        // so the retries are few; the bound keeps a pathological disk from looping forever.
        self.inner.tails.touch(&shard);
        for _ in 0..READ_DAMAGE_RETRIES_MAX {
            let plan = shard.read.read().plan_read(from_seq_index, max_records, max_bytes);
            let (out, damage) = match plan.execute(id, keys, &self.inner.files, max_records, max_bytes) {
                // The segment was trimmed after the read was planned: plan again.
                Err(LogError::Io { op: "open", path, source })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && !shard.read.read().segments.iter().any(|segment| segment.path == path) =>
                {
                    continue
                }
                other => other?,
            };
            let Some(damage) = damage else { return Ok(out) };
            shard.quarantine(&damage);
            if !out.records.is_empty() {
                return Ok(out);
            }
        }
        Err(LogError::Corrupt {
            path: shard.dir.clone(),
            offset: 0,
            why: format!("{READ_DAMAGE_RETRIES_MAX} damaged batches found in one read"),
        })
    }

    /// First sequence index whose arrival time is at or after `arrival_ms`; the tip if none.
    pub fn seek_time(&self, id: LogId, arrival_ms: i64) -> Result<u64, LogError> {
        Ok(self.shard(id)?.read.read().seek_time(arrival_ms))
    }

    /// The sequence index the next appended record will get.
    pub fn tip(&self, id: LogId) -> Result<u64, LogError> {
        Ok(self.shard(id)?.read.read().tip)
    }

    /// The oldest stored sequence index (the tip if the log is empty).
    pub fn first(&self, id: LogId) -> Result<u64, LogError> {
        Ok(self.shard(id)?.read.read().first())
    }

    /// Arrival time of the newest stored record.
    pub fn newest_arrival_ms(&self, id: LogId) -> Result<Option<i64>, LogError> {
        Ok(self.shard(id)?.read.read().newest_arrival_ms)
    }

    /// Removes whole segments whose newest record arrived before `arrival_ms`, oldest first.
    /// The segment being written is closed and removed too if all of it is older (the log then
    /// continues in a new empty segment). Returns the bytes freed.
    pub fn trim_before(&self, id: LogId, arrival_ms: i64) -> Result<u64, LogError> {
        let shard = self.shard(id)?;
        let storage = self.inner.storage.as_ref();
        let mut state = shard.write.lock();
        if state.deleted {
            return Err(LogError::NotFound(id));
        }
        let (drop_count, roll) = {
            let read = shard.read.read();
            let older = |segment: &SegmentState| {
                segment.batches.last().is_none_or(|batch| batch.arrival_ms < arrival_ms)
            };
            let last = read.segments.len() - 1;
            let drop_count = read.segments[..last].iter().take_while(|segment| older(segment)).count();
            let active = &read.segments[last];
            let roll = drop_count == last
                && !active.batches.is_empty()
                && older(active)
                && state.unpublished == 0
                && !state.truncate_pending;
            (drop_count, roll)
        };
        if drop_count == 0 && !roll {
            return Ok(0);
        }
        if roll {
            self.trim_roll(&shard, &mut state)?;
        }
        let removed: Vec<SegmentState> = {
            let mut read = shard.read.write();
            let count = if roll { drop_count + 1 } else { drop_count };
            let removed: Vec<SegmentState> = read.segments.drain(..count).collect();
            let first = read.first();
            read.trim_tail(first);
            if read.segments.iter().all(|segment| segment.batches.is_empty()) {
                read.newest_arrival_ms = None;
            }
            removed
        };
        // Oldest first, so that a crash part way leaves a log without a gap.
        let mut freed = 0;
        let mut removed = removed.into_iter();
        while let Some(segment) = removed.next() {
            self.inner.files.forget(&segment.path);
            if let Err(source) = storage.remove_file(&segment.path) {
                // The files from here on are still there: serve them again, or a later trim
                // could remove newer segments and leave a gap behind these after a restart.
                let mut read = shard.read.write();
                let back: Vec<SegmentState> = std::iter::once(segment).chain(removed).collect();
                read.segments.splice(0..0, back);
                read.newest_arrival_ms =
                    read.segments.iter().rev().find_map(|s| s.batches.last()).map(|batch| batch.arrival_ms);
                return Err(LogError::io("remove", read.segments[0].path.clone(), source));
            }
            freed += segment.len_bytes;
            // An index left behind is removed by the next open.
            if let Err(error) = crate::index::remove_index(storage, &shard.dir, segment.base) {
                tracing::warn!(dir = %shard.dir.display(), base = segment.base, %error, "could not remove a segment index");
            }
        }
        drop(state);
        storage.sync_dir(&shard.dir).map_err(io("sync directory", &shard.dir))?;
        tracing::debug!(log = %id, segments = removed.len(), freed, "trimmed");
        Ok(freed)
    }

    /// Closes the active segment (syncing it) and starts an empty one at the tip, durably.
    fn trim_roll(&self, shard: &Shard, state: &mut WriteState) -> Result<(), LogError> {
        let storage = self.inner.storage.as_ref();
        if state.active.written_len > state.active.synced_len {
            let active = self.inner.files.get(&state.active.path).map_err(io("open", &state.active.path))?;
            active.sync_data().map_err(io("sync", &state.active.path))?;
            state.active.synced_len = state.active.written_len;
        }
        let base = state.next_seq;
        assert!(base > state.active.base, "the active segment holds batches");
        let path = shard.dir.join(format::segment_file_name(base));
        let file = create_segment(storage, &self.inner.files, &path, shard.id, base)?;
        // Cached at once, so that the handle counts against the cap while it is used.
        self.inner.files.insert(&path, Arc::clone(&file));
        let made_durable = file
            .sync_data()
            .map_err(io("sync", &path))
            .and_then(|()| storage.sync_dir(&shard.dir).map_err(io("sync directory", &shard.dir)));
        if let Err(error) = made_durable {
            // The log goes on in the old segment; leave no stray segment behind (recovery also
            // removes one left by a crash).
            self.inner.files.forget(&path);
            if let Err(cleanup) = storage.remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %cleanup, "could not remove a stray segment");
            }
            return Err(error);
        }
        let header_len = SEGMENT_HEADER_LEN as u64;
        state.active = ActiveSegment {
            base,
            path: path.clone(),
            written_len: header_len,
            synced_len: header_len,
            takes_encrypted: true,
        };
        state.needs_roll = false;
        state.dir_sync_pending = false;
        state.index_covered_len = Some(header_len);
        shard.read.write().segments.push(SegmentState {
            base,
            path,
            batches: Vec::new(),
            len_bytes: header_len,
        });
        Ok(())
    }

    /// Removes the log and its files. Appends still queued for it fail with `NotFound`.
    pub fn delete(&self, id: LogId) -> Result<(), LogError> {
        let storage = self.inner.storage.as_ref();
        let root = &self.inner.config.dir;
        let _admin = self.inner.admin.lock();
        let mut logs = self.inner.logs.write();
        let shard = logs.remove(&id).ok_or(LogError::NotFound(id))?;
        shard.write.lock().deleted = true;
        shard.read.write().tail.clear();
        self.inner.tails.forget(&shard);
        self.inner.files.forget_under(&shard.dir);
        // Rename first so that a crash leaves either the whole log or a tombstone that `open`
        // finishes removing.
        let tombstone = root.join(format!("{}{}", format::log_dir_name(id.0), format::DELETED_SUFFIX));
        if storage.list_dir(&tombstone).is_ok() {
            storage.remove_dir_all(&tombstone).map_err(io("remove", &tombstone))?;
        }
        storage.rename(&shard.dir, &tombstone).map_err(io("rename", &shard.dir))?;
        storage.sync_dir(root).map_err(io("sync directory", root))?;
        storage.remove_dir_all(&tombstone).map_err(io("remove", &tombstone))?;
        storage.sync_dir(root).map_err(io("sync directory", root))?;
        Ok(())
    }

    /// Opened with [`Log::open_stepped`]: appends submitted and waiting for a round.
    pub fn queued_appends(&self) -> usize {
        self.stepped.lock().as_mut().map_or(0, SteppedWriter::queued)
    }

    /// Opened with [`Log::open_stepped`]: runs one group-commit round with at most `max` of
    /// the queued appends, oldest first, and returns how many it took (0 when none are queued,
    /// or the log was not opened stepped). Their `append` futures are answered when it returns.
    pub fn step_writer(&self, max: usize) -> usize {
        self.stepped.lock().as_mut().map_or(0, |writer| writer.round(max))
    }

    /// Opened with [`Log::open_stepped`] under `Durability::Interval`: the periodic sync of
    /// every log written since the last one.
    pub fn step_interval_sync(&self) {
        if let Some(writer) = self.stepped.lock().as_mut() {
            writer.sync_interval();
        }
    }

    pub fn stats(&self) -> LogStats {
        let stats = &self.inner.stats;
        LogStats {
            appends_ok: stats.appends_ok.load(Ordering::Relaxed),
            appends_failed: stats.appends_failed.load(Ordering::Relaxed),
            bytes_written: stats.bytes_written.load(Ordering::Relaxed),
            rounds: stats.rounds.load(Ordering::Relaxed),
            sync_rounds: stats.sync_rounds.load(Ordering::Relaxed),
            file_syncs: stats.file_syncs.load(Ordering::Relaxed),
            dir_syncs: stats.dir_syncs.load(Ordering::Relaxed),
            fs_syncs: stats.fs_syncs.load(Ordering::Relaxed),
            tail_bytes: self.inner.tails.bytes() as u64,
            open_files: self.inner.files.len() as u64,
            appends_in_flight: APPEND_QUEUE_DEPTH_MAX
                .saturating_sub(self.inner.queue_slots.available_permits())
                as u64,
        }
    }

    /// Time of every sync the writer made (`fdatasync`, directory sync, `syncfs`) since open.
    pub fn sync_latency(&self) -> crate::HistogramSnapshot {
        self.inner.stats.sync_latency.snapshot()
    }

    /// Stops taking appends, lets the writer finish (and sync) everything queued, and waits for
    /// it. Reads keep working. Blocks the calling thread; from async code prefer `close`.
    pub fn shutdown(&self) {
        drop(self.inner.sender.write().take());
        self.inner.queue_slots.close();
        self.inner.queue_bytes.close();
        let thread = self.writer.lock().take();
        let stepped = self.stepped.lock().take();
        if thread.is_some() || stepped.is_some() {
            if let Some(handle) = thread {
                if handle.join().is_err() {
                    tracing::error!("the log writer thread panicked");
                }
            }
            if let Some(writer) = stepped {
                writer.finish();
            }
            // Everything is synced now: index every log's active segment, so that the next open
            // reads nothing.
            let logs: Vec<Arc<Shard>> = self.inner.logs.read().values().cloned().collect();
            let storage = self.inner.storage.as_ref();
            for shard in logs {
                let mut state = shard.write.lock();
                if !state.deleted {
                    crate::writer::checkpoint(storage, &shard, &mut state, true, false);
                }
            }
            if let Err(error) = storage.sync_filesystem(&self.inner.config.dir) {
                tracing::warn!(%error, "could not sync the segment indexes at shutdown; the next open scans more");
            }
        }
    }

    /// `shutdown` without blocking the async runtime.
    pub async fn close(self) {
        let log = self;
        if let Err(error) = tokio::task::spawn_blocking(move || log.shutdown()).await {
            tracing::error!(%error, "log shutdown task failed");
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.inner.config.dir)
            .field("logs", &self.inner.logs.read().len())
            .finish()
    }
}
