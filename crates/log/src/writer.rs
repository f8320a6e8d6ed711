//! The writer thread: one for all logs. It takes every queued append (up to the round limits),
//! writes each to its log's active segment, then syncs each touched file and directory once
//! (group commit), and only then publishes the batches to readers and acknowledges them.
//!
//! Invariants:
//! - A segment is synced before the next one is started, so after a crash only the last segment
//!   of a log can end in unacknowledged bytes, and sequence indexes never have gaps. (Unless the
//!   disk persisted those unsynced bytes out of order, a hole before intact later batches:
//!   recovery then skips the indexes up to the last intact batch and serves none of them, so no
//!   index is handed out twice; none of them was acknowledged. `tests/log_simulation.rs`,
//!   stepped mode, crashes so.)
//! - A failed write or sync is undone by truncating the active segment back to its last durable
//!   length; until that truncation is durable (`truncate_pending`) nothing else is written.
//! - Under `Durability::Fsync`, a batch is visible to readers only after its sync succeeded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::files::FileCache;
use crate::format::{self, EncodedBatch, SEGMENT_HEADER_LEN};
use crate::histogram::LatencyHistogram;
use crate::index::SegmentIndex;
use crate::shard::{ActiveSegment, BatchEntry, SegmentState, Shard, WriteState};
use crate::storage::copy_io_error;
use crate::tail::TailBudget;
use crate::{
    AppendOutcome, Durability, LogConfig, LogError, LogId, Storage, StorageFile, GROUP_COMMIT_APPENDS_MAX,
    GROUP_COMMIT_BYTES_MAX, INDEX_CHECKPOINT_BYTES, SYNC_FILES_SEPARATELY_MAX,
};

pub(crate) struct AppendRequest {
    pub shard: Arc<Shard>,
    pub now_ms: i64,
    pub batch: EncodedBatch,
    pub reply: oneshot::Sender<Result<AppendOutcome, LogError>>,
    /// Queue slots, released when the request is answered.
    pub permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// Counters shared with [`crate::Log::stats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub appends_ok: AtomicU64,
    pub appends_failed: AtomicU64,
    pub bytes_written: AtomicU64,
    pub rounds: AtomicU64,
    pub sync_rounds: AtomicU64,
    pub file_syncs: AtomicU64,
    pub dir_syncs: AtomicU64,
    pub fs_syncs: AtomicU64,
    /// Time of each `fdatasync`, directory sync and `syncfs` the writer made.
    pub sync_latency: LatencyHistogram,
}

pub(crate) struct Writer {
    pub storage: Arc<dyn Storage>,
    pub config: LogConfig,
    pub stats: Arc<Stats>,
    pub files: Arc<FileCache>,
    pub tails: Arc<TailBudget>,
}

/// A batch written in this round, waiting for its sync.
struct Written {
    reply: oneshot::Sender<Result<AppendOutcome, LogError>>,
    segment_base: u64,
    entry: BatchEntry,
    buf: Bytes,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// Why a log's pending batches failed.
struct Failure {
    op: &'static str,
    path: std::path::PathBuf,
    source: io::Error,
}

impl Failure {
    fn error(&self) -> LogError {
        LogError::io(self.op, self.path.clone(), copy_io_error(&self.source))
    }
}

impl Writer {
    pub fn run(self, rx: mpsc::Receiver<AppendRequest>) {
        let interval = match self.config.durability {
            Durability::Fsync => None,
            Durability::Interval(every) => Some(every.max(Duration::from_millis(1))),
        };
        // Ordered, so that a periodic sync visits the logs in the same order every run.
        let mut dirty: BTreeMap<LogId, Arc<Shard>> = BTreeMap::new();
        let mut next_sync = interval.map(|every| Instant::now() + every);
        loop {
            let first = match (interval, next_sync) {
                (Some(every), Some(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.sync_dirty(&mut dirty);
                        next_sync = Some(now + every);
                        continue;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(request) => request,
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match rx.recv() {
                    Ok(request) => request,
                    Err(mpsc::RecvError) => break,
                },
            };
            let mut round_bytes = first.batch.buf.len();
            let mut round = vec![first];
            while round.len() < GROUP_COMMIT_APPENDS_MAX && round_bytes < GROUP_COMMIT_BYTES_MAX {
                match rx.try_recv() {
                    Ok(request) => {
                        round_bytes += request.batch.buf.len();
                        round.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.run_round(round, &mut dirty);
        }
        // All senders are gone and the queue is drained: make everything durable and stop.
        self.sync_dirty(&mut dirty);
    }

    fn run_round(&self, round: Vec<AppendRequest>, dirty: &mut BTreeMap<LogId, Arc<Shard>>) {
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        let fsync = matches!(self.config.durability, Durability::Fsync);
        // Logs touched in this round, in first-touch order, with their unsynced batches.
        let mut touched: Vec<(Arc<Shard>, Vec<Written>)> = Vec::new();
        let mut slot: HashMap<LogId, usize> = HashMap::new();
        for request in round {
            let shard = Arc::clone(&request.shard);
            let index = *slot.entry(shard.id).or_insert_with(|| {
                touched.push((Arc::clone(&shard), Vec::new()));
                touched.len() - 1
            });
            let pending = &mut touched[index].1;
            let mut state = shard.write.lock();
            match self.write_one(&shard, &mut state, request, pending) {
                Ok(written) if fsync => {
                    state.unpublished += 1;
                    pending.push(written);
                }
                Ok(written) => {
                    // Interval durability: acknowledged and visible once written.
                    dirty.insert(shard.id, Arc::clone(&shard));
                    self.publish(&shard, vec![written]);
                }
                Err((request_reply, error)) => {
                    self.stats.appends_failed.fetch_add(1, Ordering::Relaxed);
                    let _ = request_reply.send(Err(error));
                }
            }
        }
        if !fsync {
            return;
        }
        touched.retain(|(_, pending)| !pending.is_empty());
        if touched.is_empty() {
            return;
        }
        // Few files: one fdatasync each. Many: one syncfs for all of them, so the syncs per
        // round do not grow with the number of shards written (see ARCHITECTURE.md, "Choices").
        let shared_sync =
            if touched.len() > SYNC_FILES_SEPARATELY_MAX { Some(self.sync_filesystem()) } else { None };
        // Counted before the acknowledgements go out, so a caller that saw its append
        // acknowledged also sees the round counted.
        self.stats.sync_rounds.fetch_add(1, Ordering::Relaxed);
        for (shard, pending) in touched {
            let mut state = shard.write.lock();
            state.unpublished = state.unpublished.saturating_sub(pending.len());
            if state.deleted {
                self.fail(pending, || LogError::NotFound(shard.id));
                continue;
            }
            // Publish while still holding the write lock, so trimming cannot remove the
            // segment between the sync and the publication.
            let synced = match &shared_sync {
                None => self.sync_active(&shard, &mut state),
                Some(Ok(())) => {
                    state.active.synced_len = state.active.written_len;
                    state.dir_sync_pending = false;
                    Ok(())
                }
                Some(Err(failure)) => Err(Failure {
                    op: failure.op,
                    path: failure.path.clone(),
                    source: copy_io_error(&failure.source),
                }),
            };
            match synced {
                Ok(()) => {
                    self.publish(&shard, pending);
                    self.checkpoint(&shard, &mut state, false);
                }
                Err(failure) => {
                    tracing::error!(file = %failure.path.display(), op = failure.op, error = %failure.source, "sync failed; failing the appends of this round");
                    // Batches in earlier segments were synced when the segment was closed.
                    let active_base = state.active.base;
                    let (lost, kept): (Vec<_>, Vec<_>) =
                        pending.into_iter().partition(|w| w.segment_base == active_base);
                    self.truncate_back(&mut state, &lost);
                    self.fail(lost, || failure.error());
                    self.publish(&shard, kept);
                }
            }
        }
    }

    /// One `syncfs` covering every file and directory of the log.
    fn sync_filesystem(&self) -> Result<(), Failure> {
        let root = &self.config.dir;
        let started = Instant::now();
        self.storage.sync_filesystem(root).map_err(|source| Failure {
            op: "sync filesystem",
            path: root.clone(),
            source,
        })?;
        self.stats.sync_latency.observe(started.elapsed());
        self.stats.fs_syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes one batch. On error returns the reply channel with the error.
    #[allow(clippy::result_large_err)]
    fn write_one(
        &self,
        shard: &Shard,
        state: &mut WriteState,
        request: AppendRequest,
        pending: &mut Vec<Written>,
    ) -> Result<Written, (oneshot::Sender<Result<AppendOutcome, LogError>>, LogError)> {
        let AppendRequest { now_ms, mut batch, reply, permits, .. } = request;
        if state.deleted {
            return Err((reply, LogError::NotFound(shard.id)));
        }
        if state.truncate_pending {
            if let Err(error) = self.redo_truncate(state) {
                return Err((reply, error));
            }
        }
        let full = state.active.written_len >= self.config.segment_bytes_max
            && state.active.written_len > SEGMENT_HEADER_LEN as u64;
        let leaves_version_1 = batch.encryption.is_some() && !state.active.takes_encrypted;
        if state.needs_roll || full || leaves_version_1 {
            if let Err(failure) = self.roll(shard, state, pending) {
                return Err((reply, failure));
            }
        }

        let first_seq = state.next_seq;
        let arrival_ms = state.last_arrival_ms.map_or(now_ms, |last| last.max(now_ms));
        format::seal_batch(&mut batch, shard.id.0, first_seq, arrival_ms);
        let offset = state.active.written_len;
        let len = batch.buf.len() as u64;
        let file = match self.files.get(&state.active.path) {
            Ok(file) => file,
            Err(source) => return Err((reply, LogError::io("open", state.active.path.clone(), source))),
        };
        if let Err(source) = file.write_all_at(&batch.buf, offset) {
            tracing::error!(file = %state.active.path.display(), offset, error = %source, "write failed; undoing it");
            let error = LogError::io("write", state.active.path.clone(), source);
            // Undo the partial write; the durable bytes are untouched.
            if let Err(truncate_error) = file.set_len(offset) {
                tracing::error!(file = %state.active.path.display(), error = %truncate_error, "could not undo a failed write");
                state.truncate_pending = true;
            }
            return Err((reply, error));
        }
        self.stats.bytes_written.fetch_add(len, Ordering::Relaxed);
        state.active.written_len += len;
        state.next_seq += u64::from(batch.record_count);
        state.last_arrival_ms = Some(arrival_ms);
        Ok(Written {
            reply,
            segment_base: state.active.base,
            entry: BatchEntry { offset, len: len as u32, first_seq, count: batch.record_count, arrival_ms },
            buf: Bytes::from(batch.buf),
            _permits: permits,
        })
    }

    /// Closes the active segment (after syncing it) and starts a new one at `next_seq`.
    fn roll(
        &self,
        shard: &Shard,
        state: &mut WriteState,
        pending: &mut Vec<Written>,
    ) -> Result<(), LogError> {
        let fsync = matches!(self.config.durability, Durability::Fsync);
        if state.active.written_len > state.active.synced_len || state.dir_sync_pending {
            if let Err(failure) = self.sync_active(shard, state) {
                let error = failure.error();
                if fsync {
                    // The round's batches in this segment are not durable: fail them and undo.
                    // (Batches in segments closed earlier in this round stay: they are durable.)
                    let active_base = state.active.base;
                    let (lost, kept): (Vec<_>, Vec<_>) =
                        std::mem::take(pending).into_iter().partition(|w| w.segment_base == active_base);
                    *pending = kept;
                    state.unpublished = state.unpublished.saturating_sub(lost.len());
                    self.truncate_back(state, &lost);
                    self.fail(lost, || failure.error());
                }
                return Err(error);
            }
        }
        // The round's earlier batches of this log are durable now; they are published with the
        // rest of the round. Seal the segment with its index, so opening the log never reads it.
        self.seal_index(shard, state, pending);
        let base = state.next_seq;
        if base == state.active.base {
            return Err(LogError::Corrupt {
                path: state.active.path.clone(),
                offset: 0,
                why: "cannot start a new segment: the active segment starts at the same sequence index"
                    .into(),
            });
        }
        let path = shard.dir.join(format::segment_file_name(base));
        let file = create_segment(self.storage.as_ref(), &self.files, &path, shard.id, base)?;
        self.files.insert(&path, file);
        tracing::debug!(file = %path.display(), "started a new segment");
        state.active = ActiveSegment {
            base,
            path: path.clone(),
            written_len: SEGMENT_HEADER_LEN as u64,
            synced_len: 0,
            takes_encrypted: true,
        };
        state.needs_roll = false;
        state.dir_sync_pending = true;
        state.index_covered_len = Some(SEGMENT_HEADER_LEN as u64);
        shard.read.write().segments.push(SegmentState {
            base,
            path,
            batches: Vec::new(),
            len_bytes: SEGMENT_HEADER_LEN as u64,
        });
        Ok(())
    }

    /// Syncs the active segment's data and, if it is new, the log directory.
    fn sync_active(&self, shard: &Shard, state: &mut WriteState) -> Result<(), Failure> {
        if state.active.written_len > state.active.synced_len {
            let failure = |op, source| Failure { op, path: state.active.path.clone(), source };
            let file = self.files.get(&state.active.path).map_err(|source| failure("open", source))?;
            let started = Instant::now();
            file.sync_data().map_err(|source| failure("sync", source))?;
            self.stats.sync_latency.observe(started.elapsed());
            self.stats.file_syncs.fetch_add(1, Ordering::Relaxed);
            state.active.synced_len = state.active.written_len;
        }
        if state.dir_sync_pending {
            let started = Instant::now();
            self.storage.sync_dir(&shard.dir).map_err(|source| Failure {
                op: "sync directory",
                path: shard.dir.clone(),
                source,
            })?;
            self.stats.sync_latency.observe(started.elapsed());
            self.stats.dir_syncs.fetch_add(1, Ordering::Relaxed);
            state.dir_sync_pending = false;
        }
        Ok(())
    }

    /// After a failed sync: cut the active segment back to before the first lost batch and hand
    /// its sequence indexes out again. The cut must be durable before anything else is written.
    fn truncate_back(&self, state: &mut WriteState, lost: &[Written]) {
        let Some(first) =
            lost.iter().filter(|w| w.segment_base == state.active.base).min_by_key(|w| w.entry.offset)
        else {
            return;
        };
        assert!(first.entry.offset >= SEGMENT_HEADER_LEN as u64);
        state.active.written_len = first.entry.offset;
        state.active.synced_len = state.active.synced_len.min(first.entry.offset);
        state.next_seq = first.entry.first_seq;
        state.truncate_pending = true;
        if let Err(error) = self.redo_truncate(state) {
            tracing::error!(%error, "could not undo unsynced writes; will retry before the next write");
        }
    }

    fn redo_truncate(&self, state: &mut WriteState) -> Result<(), LogError> {
        let active = &mut state.active;
        let file = self
            .files
            .get(&active.path)
            .map_err(|source| LogError::io("open", active.path.clone(), source))?;
        file.set_len(active.written_len)
            .map_err(|source| LogError::io("truncate", active.path.clone(), source))?;
        file.sync_data().map_err(|source| LogError::io("sync", active.path.clone(), source))?;
        self.stats.file_syncs.fetch_add(1, Ordering::Relaxed);
        active.synced_len = active.written_len;
        state.truncate_pending = false;
        Ok(())
    }

    /// Makes batches visible to readers and acknowledges them.
    fn publish(&self, shard: &Arc<Shard>, written: Vec<Written>) {
        if written.is_empty() {
            return;
        }
        let tail_max = self.config.tail_bytes_per_log_max;
        let mut outcomes = Vec::with_capacity(written.len());
        {
            let mut read = shard.read.write();
            for w in written {
                read.publish(w.segment_base, w.entry, w.buf, tail_max);
                outcomes.push((
                    w.reply,
                    AppendOutcome { first_seq_index: w.entry.first_seq, arrival_ms: w.entry.arrival_ms },
                ));
            }
        }
        // Within the memory budget before anyone hears of the append.
        self.tails.touch(shard);
        self.tails.enforce();
        self.stats.appends_ok.fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        for (reply, outcome) in outcomes {
            // The caller may have stopped waiting; the append stands regardless.
            let _ = reply.send(Ok(outcome));
        }
    }

    fn fail(&self, written: Vec<Written>, error: impl Fn() -> LogError) {
        self.stats.appends_failed.fetch_add(written.len() as u64, Ordering::Relaxed);
        for w in written {
            let _ = w.reply.send(Err(error()));
        }
    }

    /// Interval durability: sync every log written since the last sync.
    fn sync_dirty(&self, dirty: &mut BTreeMap<LogId, Arc<Shard>>) {
        if dirty.is_empty() {
            return;
        }
        if dirty.len() > SYNC_FILES_SEPARATELY_MAX {
            match self.sync_filesystem() {
                Ok(()) => {
                    for shard in dirty.values() {
                        let mut state = shard.write.lock();
                        state.active.synced_len = state.active.written_len;
                        state.dir_sync_pending = false;
                        self.checkpoint(shard, &mut state, false);
                    }
                    dirty.clear();
                }
                Err(failure) => {
                    tracing::error!(path = %failure.path.display(), op = failure.op, error = %failure.source, "periodic sync failed; will retry");
                }
            }
            self.stats.sync_rounds.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut failed = BTreeMap::new();
        for (id, shard) in std::mem::take(dirty) {
            let mut state = shard.write.lock();
            if state.deleted {
                continue;
            }
            match self.sync_active(&shard, &mut state) {
                Ok(()) => self.checkpoint(&shard, &mut state, false),
                Err(failure) => {
                    tracing::error!(file = %failure.path.display(), op = failure.op, error = %failure.source, "periodic sync failed; will retry");
                    failed.insert(id, Arc::clone(&shard));
                }
            }
        }
        self.stats.sync_rounds.fetch_add(1, Ordering::Relaxed);
        *dirty = failed;
    }
}

/// The writer run by its caller instead of a thread ([`crate::Log::open_stepped`]): the same
/// rounds as [`Writer::run`], but the caller decides when each round runs and how many of the
/// queued appends (oldest first) it takes, and when a periodic sync happens. Nothing depends on
/// scheduling, so a simulation that makes these choices from a seed replays exactly.
pub(crate) struct SteppedWriter {
    writer: Writer,
    rx: mpsc::Receiver<AppendRequest>,
    queued: VecDeque<AppendRequest>,
    dirty: BTreeMap<LogId, Arc<Shard>>,
}

impl SteppedWriter {
    pub fn new(writer: Writer, rx: mpsc::Receiver<AppendRequest>) -> SteppedWriter {
        SteppedWriter { writer, rx, queued: VecDeque::new(), dirty: BTreeMap::new() }
    }

    fn pull(&mut self) {
        while let Ok(request) = self.rx.try_recv() {
            self.queued.push_back(request);
        }
    }

    /// Appends submitted and not yet taken into a round.
    pub fn queued(&mut self) -> usize {
        self.pull();
        self.queued.len()
    }

    /// Runs one group-commit round with at most `max` queued appends (and within the round
    /// limits the thread keeps); returns how many it took (0: none queued, no round).
    pub fn round(&mut self, max: usize) -> usize {
        self.pull();
        let limit = max.min(GROUP_COMMIT_APPENDS_MAX);
        let mut round = Vec::new();
        let mut round_bytes = 0;
        while round.len() < limit && (round.is_empty() || round_bytes < GROUP_COMMIT_BYTES_MAX) {
            let Some(request) = self.queued.pop_front() else { break };
            round_bytes += request.batch.buf.len();
            round.push(request);
        }
        let taken = round.len();
        if taken > 0 {
            self.writer.run_round(round, &mut self.dirty);
        }
        taken
    }

    /// Interval durability: the periodic sync the thread makes every interval.
    pub fn sync_interval(&mut self) {
        self.writer.sync_dirty(&mut self.dirty);
    }

    /// After the last sender is gone: every queued append in rounds, then a final sync, as the
    /// thread does when it stops.
    pub fn finish(mut self) {
        while self.round(usize::MAX) > 0 {}
        self.writer.sync_dirty(&mut self.dirty);
    }
}

impl Writer {
    /// Writes the index of the active segment, which was just synced whole and is being closed.
    /// `pending` holds this round's batches, not yet published.
    fn seal_index(&self, shard: &Shard, state: &mut WriteState, pending: &[Written]) {
        if state.index_covered_len.is_none() {
            return;
        }
        let base = state.active.base;
        let mut entries: Vec<BatchEntry> = {
            let read = shard.read.read();
            read.segments
                .iter()
                .rev()
                .find(|segment| segment.base == base)
                .map(|segment| segment.batches.clone())
                .unwrap_or_default()
        };
        entries.extend(pending.iter().filter(|w| w.segment_base == base).map(|w| w.entry));
        let index = SegmentIndex { covered_len: state.active.synced_len, entries };
        write_index_logged(self.storage.as_ref(), &shard.dir, shard.id, base, &index, true);
    }

    /// Writes the active segment's index when at least [`INDEX_CHECKPOINT_BYTES`] were synced
    /// since it last was (or whenever anything was, with `force`), so that a restart scans at
    /// most that much of it.
    pub(crate) fn checkpoint(&self, shard: &Shard, state: &mut WriteState, force: bool) {
        checkpoint(self.storage.as_ref(), shard, state, force, true);
    }
}

pub(crate) fn checkpoint(
    storage: &dyn Storage,
    shard: &Shard,
    state: &mut WriteState,
    force: bool,
    sync: bool,
) {
    let Some(covered) = state.index_covered_len else { return };
    let synced = state.active.synced_len;
    if synced <= covered || (!force && synced - covered < INDEX_CHECKPOINT_BYTES) {
        return;
    }
    let base = state.active.base;
    let entries: Vec<BatchEntry> = {
        let read = shard.read.read();
        let Some(segment) = read.segments.iter().rev().find(|segment| segment.base == base) else {
            return;
        };
        segment.batches.iter().take_while(|b| b.offset + u64::from(b.len) <= synced).copied().collect()
    };
    let covered_len = entries.last().map_or(SEGMENT_HEADER_LEN as u64, |b| b.offset + u64::from(b.len));
    if covered_len <= covered {
        return;
    }
    if write_index_logged(storage, &shard.dir, shard.id, base, &SegmentIndex { covered_len, entries }, sync) {
        state.index_covered_len = Some(covered_len);
    }
}

/// Writes an index; a failure only costs a scan at the next open, so it is logged, not raised.
pub(crate) fn write_index_logged(
    storage: &dyn Storage,
    dir: &std::path::Path,
    id: LogId,
    base: u64,
    index: &SegmentIndex,
    sync: bool,
) -> bool {
    match crate::index::write_index(storage, dir, id, base, index, sync) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), base, %error, "could not write a segment index; the next open scans the segment");
            false
        }
    }
}

/// Creates a segment file holding just its header (not yet synced). A leftover file of the same
/// name (from a failed earlier attempt) is replaced.
///
/// The caller caches the returned handle ([`FileCache::insert`]) once the segment is kept.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    files: &FileCache,
    path: &std::path::Path,
    id: LogId,
    base: u64,
) -> Result<Arc<dyn StorageFile>, LogError> {
    let file = match storage.create_file(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            files.forget(path);
            storage.remove_file(path).map_err(|source| LogError::io("remove", path, source))?;
            storage.create_file(path).map_err(|source| LogError::io("create", path, source))?
        }
        Err(source) => return Err(LogError::io("create", path, source)),
    };
    let header = format::encode_segment_header(id.0, base);
    if let Err(source) = file.write_all_at(&header, 0) {
        // Leave no half-made segment behind.
        if let Err(error) = storage.remove_file(path) {
            tracing::warn!(file = %path.display(), %error, "could not remove a half-made segment");
        }
        return Err(LogError::io("write", path, source));
    }
    Ok(file)
}
