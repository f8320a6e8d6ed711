//! Opening a shard log: scan every segment, check every header and batch checksum, cut a torn
//! tail, report damage, and rebuild the sparse index and the in-memory tail.
//!
//! What a crash can leave, given how the writer works (it syncs a segment before starting the
//! next, and only ever appends to the last one):
//! - the last segment ends in a partial batch, or in bytes that are not a batch → cut it off;
//! - the last segment is shorter than its header (crash while creating it) → rewrite the header;
//! - a log directory without any segment (crash while creating the log) → remove it.
//!
//! Anything else that fails a check is damage (a flipped bit): it is logged with file and
//! offset, and the damaged batch and everything after it in that segment is not served. Later
//! segments are served as usual. If the damage is in the last segment, the log continues in a
//! new segment after the highest sequence index found in the damaged one.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::format::{self, HeaderError, SEGMENT_HEADER_LEN};
use crate::index::{self, SegmentIndex, INDEX_SUFFIX, INDEX_TMP_SUFFIX};
use crate::shard::{ActiveSegment, BatchEntry, ReadState, SegmentState, Shard, WriteState};
use crate::tail::Tail;
use crate::{LogError, LogId, Storage, StorageFile};

/// What scanning one segment's bytes found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub batches: Vec<BatchEntry>,
    /// Offset and reason of the first batch that failed a check.
    pub damage: Option<(u64, &'static str)>,
    /// End sequence index of the valid batches found after the damage (they are not served,
    /// but their indexes must never be handed out again).
    pub end_seq_after_damage: Option<u64>,
}

/// Checks the batches in `bytes` (a whole segment file) starting after the header.
pub(crate) fn scan_segment(bytes: &[u8], base_seq: u64) -> Scan {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Scan::default();
    }
    scan_from(&bytes[SEGMENT_HEADER_LEN..], SEGMENT_HEADER_LEN as u64, base_seq, i64::MIN)
}

/// Checks the batches in `bytes`, which hold a segment's bytes from file offset `file_offset`
/// to its end; the first batch must start at `expected_seq` and arrive no earlier than
/// `newest_arrival`. Offsets in the result are file offsets.
pub(crate) fn scan_from(bytes: &[u8], file_offset: u64, expected_seq: u64, newest_arrival: i64) -> Scan {
    let mut scan = Scan::default();
    let mut offset = 0usize;
    let mut expected_seq = expected_seq;
    let mut newest_arrival = newest_arrival;
    while offset < bytes.len() {
        let checked = format::check_batch(&bytes[offset..]).and_then(|header| {
            if header.first_seq_index != expected_seq {
                Err("batch does not start at the next sequence index")
            } else if header.arrival_ms < newest_arrival {
                Err("batch arrival time goes backwards")
            } else {
                Ok(header)
            }
        });
        match checked {
            Ok(header) => {
                scan.batches.push(BatchEntry {
                    offset: file_offset + offset as u64,
                    len: header.batch_len,
                    first_seq: header.first_seq_index,
                    count: header.record_count,
                    arrival_ms: header.arrival_ms,
                });
                expected_seq += u64::from(header.record_count);
                newest_arrival = header.arrival_ms;
                offset += header.batch_len as usize;
            }
            Err(why) => {
                scan.damage = Some((file_offset + offset as u64, why));
                scan.end_seq_after_damage = scan_after_damage(bytes, offset, expected_seq);
                break;
            }
        }
    }
    scan
}

/// Looks past a damaged batch for valid batches with higher sequence indexes (then the damage
/// is in the middle, not a torn tail) and returns where their sequence indexes end.
fn scan_after_damage(bytes: &[u8], damaged_at: usize, expected_seq: u64) -> Option<u64> {
    let mut end_seq = None;
    let mut offset = damaged_at + 1;
    while offset + format::BATCH_HEADER_LEN <= bytes.len() {
        let plausible = format::peek_batch_header(&bytes[offset..]).is_some_and(|header| {
            header.first_seq_index >= expected_seq
                && header.record_count > 0
                && header.flags & !format::FLAGS_KNOWN == 0
                && header.batch_len as usize >= format::BATCH_HEADER_LEN
                && header.batch_len as usize <= bytes.len() - offset
        });
        if plausible {
            if let Ok(header) = format::check_batch(&bytes[offset..]) {
                let end = header.first_seq_index + u64::from(header.record_count);
                end_seq = Some(end_seq.map_or(end, |seen: u64| seen.max(end)));
                offset += header.batch_len as usize;
                continue;
            }
        }
        offset += 1;
    }
    end_seq
}

pub(crate) struct Recovered {
    pub shard: Shard,
    /// Indexes of clean segments that had none (or a stale one), to write once the log is
    /// synced: an index must only describe durable bytes.
    pub indexes_to_write: Vec<(u64, SegmentIndex)>,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::io(op, path, source)
}

/// Opens the log in `dir`. Returns `None` if the directory holds no segment (an unfinished
/// create), after removing it.
///
/// A segment with a valid index is read only past the index's `covered_len` (for a sealed
/// segment: not at all); one without is read whole and scanned.
pub(crate) fn recover_log(
    storage: &Arc<dyn Storage>,
    root: &Path,
    id: LogId,
    dir: &Path,
    tail_total: Arc<AtomicUsize>,
) -> Result<Option<Recovered>, LogError> {
    let mut bases: Vec<(u64, String)> = Vec::new();
    let mut index_bases: Vec<u64> = Vec::new();
    for name in storage.list_dir(dir).map_err(io("list", dir))? {
        if let Some(base) = format::parse_segment_file_name(&name) {
            bases.push((base, name));
        } else if let Some(base) = name.strip_suffix(INDEX_SUFFIX).and_then(parse_base) {
            index_bases.push(base);
        } else if name.ends_with(INDEX_TMP_SUFFIX) {
            // An index write that did not finish.
            let path = dir.join(&name);
            storage.remove_file(&path).map_err(io("remove", &path))?;
        } else if name.ends_with(format::SEGMENT_SUFFIX) {
            // A segment whose name is damaged: ignoring it would drop its records unseen (and
            // a log left without segments is removed below).
            return Err(LogError::Corrupt {
                path: dir.join(&name),
                offset: 0,
                why: format!(
                    "a segment file name must be its first sequence index in {} decimal digits",
                    format::SEGMENT_NAME_DIGITS
                ),
            });
        } else {
            tracing::warn!(file = %dir.join(&name).display(), "ignoring unknown file in log directory")
        }
    }
    bases.sort();
    if bases.is_empty() {
        tracing::warn!(dir = %dir.display(), "log directory holds no segment (unfinished create); removing it");
        storage.remove_dir_all(dir).map_err(io("remove", dir))?;
        storage.sync_dir(root).map_err(io("sync", root))?;
        return Ok(None);
    }
    for base in &index_bases {
        if !bases.iter().any(|(b, _)| b == base) {
            // Left by a trim that removed the segment but not yet its index.
            index::remove_index(storage.as_ref(), dir, *base).map_err(io("remove", dir))?;
        }
    }

    // Load and check every segment first, then drop strays: a segment without any record
    // that starts inside the previous one is left from a segment start that failed (or a
    // crash during it) while the log went on in the previous segment.
    // Each segment is opened only while it is read here: a log may have many segments, and the
    // handle cache opens them again when they are read or written.
    struct Loaded {
        base: u64,
        path: std::path::PathBuf,
        len: u64,
        header_damage: Option<&'static str>,
        scan: Scan,
        /// Covered length of the index on disk that is still right, if any.
        indexed_len: Option<u64>,
    }
    let mut loaded: Vec<Loaded> = Vec::with_capacity(bases.len());
    let mut end_seq = 0u64;
    for (base, name) in &bases {
        let base = *base;
        let path = dir.join(name);
        let file = storage.open_file(&path).map_err(io("open", &path))?;
        let len = file.len_bytes().map_err(io("stat", &path))?;
        let index = if index_bases.contains(&base) {
            index::load_index(storage.as_ref(), dir, id, base)?.filter(|index| {
                let fits = index.covered_len <= len;
                if !fits {
                    tracing::warn!(file = %path.display(), "index covers more than the segment holds; scanning it");
                }
                fits
            })
        } else {
            None
        };
        // The newest indexed batch must still be where the index says (cheap: one header), or
        // the segment was rewritten under its index.
        let index = match index {
            Some(index) if !last_entry_matches(file.as_ref(), &index) => {
                tracing::warn!(file = %path.display(), "index does not match its segment; scanning it");
                None
            }
            other => other,
        };
        // And the segment's own header (32 bytes): a segment of a newer format version is
        // refused, and one naming another log scanned, even when its index lets the open skip it.
        let index = match index {
            Some(index) => {
                let mut header = [0u8; format::SEGMENT_HEADER_LEN];
                file.read_exact_at(&mut header, 0).map_err(io("read", &path))?;
                match format::decode_segment_header(&header) {
                    Ok(h) if h.log_id == id.0 && h.base_seq_index == base => Some(index),
                    Err(HeaderError::UnsupportedVersion(version)) => {
                        return Err(LogError::UnsupportedVersion {
                            path,
                            version,
                            supported: format::FORMAT_VERSION,
                        });
                    }
                    _ => {
                        tracing::warn!(file = %path.display(), "segment header does not match its index; scanning it");
                        None
                    }
                }
            }
            None => None,
        };
        let (header_damage, scan, indexed_len) = match index {
            Some(index) => {
                // Only the bytes written after the index was: none for a sealed segment.
                let mut tail = vec![0u8; usize::try_from(len - index.covered_len).unwrap_or(usize::MAX)];
                file.read_exact_at(&mut tail, index.covered_len).map_err(io("read", &path))?;
                let (next_seq, newest) =
                    index.entries.last().map_or((base, i64::MIN), |last| (last.end_seq(), last.arrival_ms));
                let mut scan = scan_from(&tail, index.covered_len, next_seq, newest);
                let mut batches = index.entries;
                batches.append(&mut scan.batches);
                scan.batches = batches;
                (None, scan, Some(index.covered_len))
            }
            None => {
                let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
                file.read_exact_at(&mut bytes, 0).map_err(io("read", &path))?;
                let header_damage = match format::decode_segment_header(&bytes) {
                    Ok(header) if header.log_id != id.0 || header.base_seq_index != base => {
                        return Err(LogError::Corrupt {
                            path,
                            offset: 0,
                            why: format!(
                                "header names log {:016x} from sequence index {}, but the file belongs to log {id} from {base}",
                                header.log_id, header.base_seq_index
                            ),
                        });
                    }
                    Ok(_) => None,
                    Err(HeaderError::UnsupportedVersion(version)) => {
                        return Err(LogError::UnsupportedVersion {
                            path,
                            version,
                            supported: format::FORMAT_VERSION,
                        });
                    }
                    Err(HeaderError::Short) => Some("segment shorter than its header"),
                    Err(HeaderError::Damaged(why)) => Some(why),
                };
                (header_damage, scan_segment(&bytes, base), None)
            }
        };
        let holds_records = !scan.batches.is_empty() || scan.end_seq_after_damage.is_some();
        if !loaded.is_empty() && base < end_seq {
            if holds_records {
                return Err(LogError::Corrupt {
                    path,
                    offset: 0,
                    why: format!("segment starts at sequence index {base}, inside the previous segment (which ends at {end_seq})"),
                });
            }
            tracing::warn!(file = %path.display(), "removing a stray empty segment that starts inside the previous one");
            storage.remove_file(&path).map_err(io("remove", &path))?;
            index::remove_index(storage.as_ref(), dir, base).map_err(io("remove", &path))?;
            storage.sync_dir(dir).map_err(io("sync directory", dir))?;
            continue;
        }
        end_seq = end_seq.max(base);
        if let Some(last) = scan.batches.last() {
            end_seq = end_seq.max(last.end_seq());
        }
        if let Some(end) = scan.end_seq_after_damage {
            end_seq = end_seq.max(end);
        }
        drop(file);
        loaded.push(Loaded { base, path, len, header_damage, scan, indexed_len });
    }

    let mut segments: Vec<SegmentState> = Vec::with_capacity(loaded.len());
    let mut indexes_to_write = Vec::new();
    let mut tip = 0u64;
    let mut newest_arrival_ms = None;
    let mut needs_roll = false;
    let mut last_len = 0u64;
    let mut last_indexed_len = None;
    let last_index = loaded.len() - 1;
    for (index, segment) in loaded.into_iter().enumerate() {
        let Loaded { base, path, mut len, header_damage, mut scan, indexed_len } = segment;
        let is_last = index == last_index;
        let found_batches = !scan.batches.is_empty() || scan.end_seq_after_damage.is_some();
        let mut clean = true;

        if let Some(why) = header_damage {
            if is_last && !found_batches {
                // A crash while creating this segment: nothing in it was ever acknowledged.
                tracing::warn!(file = %path.display(), why, "rewriting the torn header of the last segment");
                let file = storage.open_file(&path).map_err(io("open", &path))?;
                rewrite_header(&file, &path, id, base)?;
                len = SEGMENT_HEADER_LEN as u64;
                scan = Scan::default();
            } else {
                tracing::warn!(
                    file = %path.display(), offset = 0, why,
                    "damaged segment header; serving the batches that pass their own checks"
                );
                needs_roll |= is_last;
                clean = false;
            }
        }

        if let Some((offset, why)) = scan.damage {
            if is_last && scan.end_seq_after_damage.is_none() {
                tracing::warn!(file = %path.display(), offset, why, "cutting off a torn tail");
                let file = storage.open_file(&path).map_err(io("open", &path))?;
                file.set_len(offset).map_err(io("truncate", &path))?;
                file.sync_data().map_err(io("sync", &path))?;
                len = offset;
            } else {
                tracing::warn!(
                    file = %path.display(), offset, why,
                    "damaged batch; it and the rest of this segment are not served"
                );
                needs_roll |= is_last;
                clean = false;
            }
        }

        tip = tip.max(base);
        if let Some(last) = scan.batches.last() {
            tip = tip.max(last.end_seq());
            newest_arrival_ms = Some(last.arrival_ms);
        }
        if let Some(end) = scan.end_seq_after_damage {
            tip = tip.max(end);
        }
        let covered_len =
            scan.batches.last().map_or(SEGMENT_HEADER_LEN as u64, |b| b.offset + u64::from(b.len));
        let mut indexed_len = indexed_len;
        if clean && covered_len == len && indexed_len != Some(len) && len > SEGMENT_HEADER_LEN as u64 {
            indexes_to_write.push((base, SegmentIndex { covered_len, entries: scan.batches.clone() }));
            indexed_len = Some(len);
        }
        if is_last {
            last_len = len;
            last_indexed_len =
                if needs_roll { None } else { Some(indexed_len.unwrap_or(SEGMENT_HEADER_LEN as u64)) };
        }
        segments.push(SegmentState { base, path, batches: scan.batches, len_bytes: len });
    }

    let read = ReadState { segments, tip, newest_arrival_ms, tail: Tail::new(tail_total) };
    let Some(last) = read.segments.last() else {
        return Err(LogError::Corrupt { path: dir.to_path_buf(), offset: 0, why: "no segment".into() });
    };
    // What survived may sit unsynced in the page cache (after a process crash): the caller
    // makes it durable (one syncfs for all logs) before serving it, so no reader sees a record
    // a later crash could take back.
    let takes_encrypted = takes_encrypted(storage, &last.path, id, last.base, last_len)?;
    let active = ActiveSegment {
        base: last.base,
        path: last.path.clone(),
        written_len: last_len,
        synced_len: last_len,
        takes_encrypted,
    };
    // The in-memory tail starts empty: reads near the tip go to disk until new appends arrive,
    // which keeps a restart from reading every log's newest bytes.
    let write = WriteState {
        deleted: false,
        active,
        next_seq: tip,
        last_arrival_ms: read.newest_arrival_ms,
        needs_roll,
        dir_sync_pending: false,
        truncate_pending: false,
        unpublished: 0,
        index_covered_len: last_indexed_len,
    };
    Ok(Some(Recovered {
        shard: Shard {
            id,
            dir: dir.to_path_buf(),
            write: Mutex::new(write),
            read: RwLock::new(read),
            tail_tick: Default::default(),
        },
        indexes_to_write,
    }))
}

fn last_entry_matches(file: &dyn StorageFile, index: &SegmentIndex) -> bool {
    let Some(last) = index.entries.last() else { return true };
    let mut raw = [0u8; format::BATCH_HEADER_LEN];
    if file.read_exact_at(&mut raw, last.offset).is_err() {
        return false;
    }
    format::peek_batch_header(&raw).is_some_and(|header| {
        header.batch_len == last.len
            && header.first_seq_index == last.first_seq
            && header.record_count == last.count
            && header.arrival_ms == last.arrival_ms
    })
}

fn parse_base(digits: &str) -> Option<u64> {
    format::parse_segment_file_name(&format!("{digits}{}", format::SEGMENT_SUFFIX))
}

/// Whether the active segment may receive encrypted batches: yes for format version 2. An
/// empty version-1 segment gets a version-2 header (nothing in it to keep); one with records is
/// left as it is and the writer moves on before its first encrypted batch.
fn takes_encrypted(
    storage: &Arc<dyn Storage>,
    path: &Path,
    id: LogId,
    base: u64,
    len: u64,
) -> Result<bool, LogError> {
    let file = storage.open_file(path).map_err(io("open", path))?;
    let mut raw = [0u8; SEGMENT_HEADER_LEN];
    if file.read_exact_at(&mut raw, 0).is_err() {
        return Ok(false);
    }
    match format::decode_segment_header(&raw) {
        Ok(header) if header.format_version >= 2 => Ok(true),
        Ok(_) if len == SEGMENT_HEADER_LEN as u64 => {
            rewrite_header(&file, path, id, base)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn rewrite_header(file: &Arc<dyn StorageFile>, path: &Path, id: LogId, base: u64) -> Result<(), LogError> {
    file.set_len(0).map_err(io("truncate", path))?;
    file.write_all_at(&format::encode_segment_header(id.0, base), 0).map_err(io("write", path))?;
    file.sync_data().map_err(io("sync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: u64, n: usize, arrival: i64) -> Vec<u8> {
        let records: Vec<(Vec<u8>, Vec<u8>)> =
            (0..n).map(|i| (b"pk".to_vec(), vec![i as u8; 10 + i])).collect();
        let mut encoded =
            format::encode_records(records.iter().map(|(k, d)| (&k[..], &d[..]))).expect("encodes");
        format::seal_batch(&mut encoded, 1, first, arrival);
        encoded.buf
    }

    fn segment(base: u64, batches: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format::encode_segment_header(1, base).to_vec();
        for b in batches {
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn clean_segment_scans_fully() {
        let bytes = segment(5, &[batch(5, 2, 10), batch(7, 3, 10), batch(10, 1, 11)]);
        let scan = scan_segment(&bytes, 5);
        assert_eq!(scan.batches.len(), 3);
        assert!(scan.damage.is_none());
        assert_eq!(scan.batches[2].end_seq(), 11);
    }

    #[test]
    fn torn_tail_is_damage_with_nothing_after() {
        let full = segment(0, &[batch(0, 2, 1), batch(2, 2, 1)]);
        let cut = full.len() - 5;
        let scan = scan_segment(&full[..cut], 0);
        assert_eq!(scan.batches.len(), 1);
        assert!(scan.damage.is_some());
        assert_eq!(scan.end_seq_after_damage, None);
    }

    #[test]
    fn flipped_length_in_the_middle_is_found_by_resync() {
        let b0 = batch(0, 2, 1);
        let mut bytes = segment(0, &[b0.clone(), batch(2, 2, 1), batch(4, 1, 2)]);
        // Damage the second batch's length field.
        bytes[SEGMENT_HEADER_LEN + b0.len()] ^= 0x40;
        let scan = scan_segment(&bytes, 0);
        assert_eq!(scan.batches.len(), 1);
        assert_eq!(scan.damage.map(|(offset, _)| offset), Some((SEGMENT_HEADER_LEN + b0.len()) as u64));
        assert_eq!(scan.end_seq_after_damage, Some(5));
    }

    #[test]
    fn wrong_sequence_index_is_damage() {
        let bytes = segment(0, &[batch(0, 2, 1), batch(3, 2, 1)]);
        let scan = scan_segment(&bytes, 0);
        assert_eq!(scan.batches.len(), 1);
        assert!(scan.damage.is_some());
    }
}
