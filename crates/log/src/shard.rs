//! The in-memory state of one shard log: what the writer needs (`WriteState`, behind a mutex
//! only the writer thread and the admin operations take) and what readers see (`ReadState`,
//! behind a read-write lock). Readers see only batches the writer published, and the writer
//! publishes a batch only once it is acknowledged (durable, under `Durability::Fsync`).
//!
//! Lock order: `Shard::write` before `Shard::read`; never the other way round.

use std::path::PathBuf;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::crypt::BatchKeys;
use crate::files::FileCache;
use crate::format::{self, DecodeError, BATCH_HEADER_LEN, RECORD_OVERHEAD_BYTES};
use crate::tail::{MemBatch, Tail, TailTick};
use crate::{LogError, LogId, ReadOutcome, StoredRecord};

/// One batch in the sparse index: where it is and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchEntry {
    pub offset: u64,
    pub len: u32,
    pub first_seq: u64,
    pub count: u32,
    pub arrival_ms: i64,
}

impl BatchEntry {
    pub fn end_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count)
    }

    /// Partition key and data bytes of all records (the unit of `max_bytes`).
    pub fn payload_bytes(&self) -> u64 {
        let framing = BATCH_HEADER_LEN as u64 + u64::from(self.count) * RECORD_OVERHEAD_BYTES as u64;
        u64::from(self.len).saturating_sub(framing)
    }
}

/// A segment file as readers see it. Its handle comes from the [`FileCache`] when needed.
#[derive(Debug)]
pub(crate) struct SegmentState {
    pub base: u64,
    pub path: PathBuf,
    /// Servable batches, in order. A damaged segment lists only the batches before the damage.
    pub batches: Vec<BatchEntry>,
    /// Bytes the file takes on disk (freed when it is trimmed).
    pub len_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct ReadState {
    /// Ordered by `base`; never empty while the log exists (the last one is being written).
    pub segments: Vec<SegmentState>,
    /// Next sequence index the log will assign, counting only published batches.
    pub tip: u64,
    pub newest_arrival_ms: Option<i64>,
    /// The newest batches, oldest first, each also listed in `segments`.
    pub tail: Tail,
}

/// The segment the writer appends to. Its handle comes from the [`FileCache`] for each write
/// and sync.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub base: u64,
    pub path: PathBuf,
    /// Bytes written (the file's length as far as the writer knows).
    pub written_len: u64,
    /// Bytes known durable.
    pub synced_len: u64,
    /// False for a segment of format version 1 (left by an older kinesin), which must not
    /// receive encrypted batches: the writer moves to a new segment before the first one, so
    /// that an older binary refuses the new segment instead of taking the batch for damage.
    pub takes_encrypted: bool,
}

#[derive(Debug)]
pub(crate) struct WriteState {
    pub deleted: bool,
    pub active: ActiveSegment,
    /// Next sequence index to assign (written batches included).
    pub next_seq: u64,
    /// Newest arrival time handed out; arrival times never go backwards within a log.
    pub last_arrival_ms: Option<i64>,
    /// The active segment must not take more batches (damaged on open): start a new one first.
    pub needs_roll: bool,
    /// The log directory gained a segment file whose entry is not yet durable.
    pub dir_sync_pending: bool,
    /// A truncation of the active segment (undoing a failed write) is not yet durable; redo it
    /// before the next write.
    pub truncate_pending: bool,
    /// Batches written but not yet published to readers (only between the write and sync
    /// phases of a group-commit round).
    pub unpublished: usize,
    /// Segment bytes the active segment's index file covers; `None` if the active segment must
    /// never get one (damage was found in it).
    pub index_covered_len: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Shard {
    pub id: LogId,
    pub dir: PathBuf,
    pub write: Mutex<WriteState>,
    pub read: RwLock<ReadState>,
    /// Place in the recency order of in-memory tails (see `crate::tail`).
    pub tail_tick: TailTick,
}

impl ReadState {
    /// Oldest stored sequence index (the tip when nothing is stored).
    pub fn first(&self) -> u64 {
        self.segments
            .iter()
            .find_map(|segment| segment.batches.first())
            .map_or(self.tip, |batch| batch.first_seq)
    }

    /// Adds a batch the writer made durable (or wrote, under interval durability).
    pub fn publish(&mut self, segment_base: u64, entry: BatchEntry, buf: Bytes, tail_bytes_max: usize) {
        assert!(entry.first_seq >= self.tip, "batches are published in order");
        let Some(segment) = self.segments.iter_mut().rev().find(|segment| segment.base == segment_base)
        else {
            // The writer only publishes into its active segment, which trimming never removes
            // while batches are unpublished.
            tracing::error!(segment_base, "published batch has no segment; not served");
            return;
        };
        debug_assert!(segment.batches.last().is_none_or(|last| last.end_seq() <= entry.first_seq));
        segment.batches.push(entry);
        segment.len_bytes = segment.len_bytes.max(entry.offset + u64::from(entry.len));
        self.tip = entry.end_seq();
        self.newest_arrival_ms = Some(entry.arrival_ms);
        self.push_tail(MemBatch { first_seq: entry.first_seq, buf }, tail_bytes_max);
    }

    pub fn push_tail(&mut self, batch: MemBatch, tail_bytes_max: usize) {
        self.tail.push_back(batch);
        while self.tail.bytes() > tail_bytes_max {
            if self.tail.pop_front().is_none() {
                break;
            }
        }
    }

    /// Drops in-memory batches below `first_seq` (after trimming).
    pub fn trim_tail(&mut self, first_seq: u64) {
        while self.tail.front().is_some_and(|batch| batch.first_seq < first_seq) {
            self.tail.pop_front();
        }
    }

    /// First sequence index whose arrival time is at or after `arrival_ms`, or the tip.
    pub fn seek_time(&self, arrival_ms: i64) -> u64 {
        for segment in &self.segments {
            let index = segment.batches.partition_point(|batch| batch.arrival_ms < arrival_ms);
            if let Some(batch) = segment.batches.get(index) {
                return batch.first_seq;
            }
        }
        self.tip
    }

    /// Picks the batches a read needs, under the lock; the I/O happens after it is released.
    pub fn plan_read(&self, from_seq: u64, max_records: usize, max_bytes: usize) -> ReadPlan {
        let from_seq = from_seq.max(self.first());
        let mut plan = ReadPlan { from_seq, items: Vec::new() };
        if max_records == 0 || from_seq >= self.tip {
            return plan;
        }
        // The last segment whose base is at or below `from_seq` (or the first segment).
        let mut segment_index =
            self.segments.partition_point(|segment| segment.base <= from_seq).saturating_sub(1);
        let mut batch_index =
            self.segments[segment_index].batches.partition_point(|batch| batch.end_seq() <= from_seq);
        let mut records = 0usize;
        let mut bytes = 0u64;
        while segment_index < self.segments.len() {
            let segment = &self.segments[segment_index];
            let Some(batch) = segment.batches.get(batch_index) else {
                segment_index += 1;
                batch_index = 0;
                continue;
            };
            if records >= max_records || (records > 0 && bytes >= max_bytes as u64) {
                break;
            }
            let skipped = from_seq.saturating_sub(batch.first_seq);
            records += (u64::from(batch.count) - skipped.min(u64::from(batch.count))) as usize;
            bytes += batch.payload_bytes();
            let source = match self.tail.find(batch.first_seq) {
                Some(mem) => Source::Memory(mem.buf.clone()),
                None => Source::Disk { path: segment.path.clone() },
            };
            plan.items.push(PlanItem { entry: *batch, source });
            batch_index += 1;
        }
        plan
    }
}

#[derive(Debug)]
pub(crate) enum Source {
    Memory(Bytes),
    Disk { path: PathBuf },
}

#[derive(Debug)]
pub(crate) struct PlanItem {
    pub entry: BatchEntry,
    pub source: Source,
}

#[derive(Debug)]
pub(crate) struct ReadPlan {
    pub from_seq: u64,
    pub items: Vec<PlanItem>,
}

/// A batch that failed its checks when read from disk.
#[derive(Debug)]
pub(crate) struct Damage {
    pub path: PathBuf,
    pub offset: u64,
    pub why: String,
}

impl ReadPlan {
    /// Reads the planned batches (adjacent batches of one file in one read), checks each one
    /// read from disk against its checksum and index entry, and cuts the result to the limits.
    /// Stops at a batch that fails its checks and returns it as [`Damage`] with the records
    /// before it.
    pub fn execute(
        self,
        log_id: LogId,
        keys: &dyn BatchKeys,
        files: &FileCache,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(ReadOutcome, Option<Damage>), LogError> {
        let mut out = ReadOutcome { records: Vec::new(), next_seq_index: self.from_seq };
        let mut bytes = 0usize;
        let mut index = 0;
        while index < self.items.len() {
            // Gather a run of adjacent batches in the same file.
            let mut run_end = index + 1;
            if let Source::Disk { path } = &self.items[index].source {
                while let Some(next) = self.items.get(run_end) {
                    let previous = &self.items[run_end - 1].entry;
                    let adjacent = next.entry.offset == previous.offset + u64::from(previous.len);
                    match &next.source {
                        Source::Disk { path: next_path } if adjacent && path == next_path => run_end += 1,
                        _ => break,
                    }
                }
            }
            let (buffers, damage) = read_run(files, &self.items[index..run_end])?;
            let mut damage = damage;
            for (item, buf) in self.items[index..run_end].iter().zip(buffers) {
                let (records, encrypted) = match format::decode_records(&buf, log_id.0, keys) {
                    Ok(decoded) => decoded,
                    Err(DecodeError::Damaged(why)) => {
                        damage = Some(damage_at(item, why));
                        break;
                    }
                    // Not damage: the bytes passed their checksum. Nothing of the batch is served
                    // and the read fails; the records before it are not returned either, so the
                    // caller's position stays at or before the batch.
                    Err(DecodeError::KeyUnavailable(generation)) => {
                        return Err(LogError::KeyUnavailable { id: log_id, generation });
                    }
                    Err(DecodeError::Unauthentic) => {
                        let Damage { path, offset, .. } = damage_at(item, "");
                        tracing::error!(file = %path.display(), offset, "encrypted batch failed authentication; not served");
                        return Err(LogError::Unauthentic { path, offset });
                    }
                };
                for (i, record) in records.into_iter().enumerate() {
                    let seq_index = item.entry.first_seq + i as u64;
                    if seq_index < self.from_seq {
                        continue;
                    }
                    let size = record.partition_key.len() + record.data.len();
                    if out.records.len() >= max_records
                        || (!out.records.is_empty() && bytes + size > max_bytes)
                    {
                        return Ok((out, None));
                    }
                    bytes += size;
                    out.next_seq_index = seq_index + 1;
                    out.records.push(StoredRecord {
                        seq_index,
                        arrival_ms: item.entry.arrival_ms,
                        partition_key: record.partition_key,
                        data: record.data,
                        encrypted,
                    });
                }
            }
            if damage.is_some() {
                return Ok((out, damage));
            }
            index = run_end;
        }
        Ok((out, None))
    }
}

fn damage_at(item: &PlanItem, why: &str) -> Damage {
    let path = match &item.source {
        Source::Disk { path, .. } => path.clone(),
        Source::Memory(_) => PathBuf::from("<memory>"),
    };
    Damage { path, offset: item.entry.offset, why: why.to_owned() }
}

/// Returns one buffer per item of the run, up to the first batch that fails its checks.
///
/// The segment is opened through the cache; if it was removed since the read was planned (a
/// trim), the open fails with `NotFound` and the caller plans again.
fn read_run(files: &FileCache, run: &[PlanItem]) -> Result<(Vec<Bytes>, Option<Damage>), LogError> {
    let first = &run[0];
    let path = match &first.source {
        Source::Memory(buf) => return Ok((vec![buf.clone()], None)),
        Source::Disk { path } => path,
    };
    let file = files.get(path).map_err(|source| LogError::io("open", path.clone(), source))?;
    let start = first.entry.offset;
    let end = run.last().map_or(start, |last| last.entry.offset + u64::from(last.entry.len));
    let mut buf = vec![0u8; (end - start) as usize];
    if let Err(source) = file.read_exact_at(&mut buf, start) {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            // The file is shorter than its index says.
            return Ok((Vec::new(), Some(damage_at(first, "segment ends before the indexed batch"))));
        }
        return Err(LogError::io("read", path.clone(), source));
    }
    // One read buffer for the whole run; every record handed out is a slice of it.
    let buf = Bytes::from(buf);
    let mut out = Vec::with_capacity(run.len());
    for item in run {
        let at = (item.entry.offset - start) as usize;
        let batch = buf.slice(at..at + item.entry.len as usize);
        // Paired with the checks before the write: the bytes must be what the index says.
        let header = match format::check_batch(&batch) {
            Ok(header) => header,
            Err(why) => return Ok((out, Some(damage_at(item, why)))),
        };
        if header.first_seq_index != item.entry.first_seq || header.record_count != item.entry.count {
            return Ok((out, Some(damage_at(item, "batch header does not match the index"))));
        }
        out.push(batch);
    }
    Ok((out, None))
}

impl Shard {
    /// A batch failed its checks when read: it and the rest of its segment are not served from
    /// now on (as recovery would have decided had it scanned the segment), and the log goes on
    /// in a new segment if it was the one being written.
    pub fn quarantine(&self, damage: &Damage) {
        tracing::error!(
            file = %damage.path.display(), offset = damage.offset, why = %damage.why,
            "damaged batch; it and the rest of this segment are not served"
        );
        let mut state = self.write.lock();
        let mut read = self.read.write();
        let Some(segment) = read.segments.iter_mut().find(|segment| segment.path == damage.path) else {
            return;
        };
        segment.batches.retain(|batch| batch.offset < damage.offset);
        if state.active.path == damage.path {
            state.needs_roll = true;
            state.index_covered_len = None;
        }
        let first = read.first();
        read.trim_tail(first);
    }
}
