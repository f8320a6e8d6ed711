//! Segment index files (see `docs/format.md`, "Segment index files"): the sparse index of one
//! segment, so that opening a log does not read its segments.
//!
//! ```text
//! index file = index header (40 bytes) , entry{entry_count} , crc (4 bytes)
//!
//! index header, little-endian:
//!   0  magic            [u8; 8]  b"KNSNIDX\n"
//!   8  format_version   u16      1
//!  10  reserved         u16      0
//!  12  log_id           u64
//!  20  base_seq_index   u64      = the segment's base
//!  28  covered_len      u64      segment bytes the entries describe: [0, covered_len)
//!  36  entry_count      u32
//!  40  (end)
//!
//! entry (one per batch, 32 bytes):
//!   0  offset           u64      file offset of the batch in the segment
//!   8  batch_len        u32
//!  12  record_count     u32
//!  16  first_seq_index  u64
//!  24  arrival_ms       i64
//!  32  (end)
//!
//! crc = crc32c of every byte before it
//! ```
//!
//! An index is a cache of what a scan of the segment's first `covered_len` bytes would find: it
//! only ever describes durable bytes, it is written without fsync (a torn or stale index fails
//! its checks and the segment is scanned instead), and it is checked against the segment's
//! length and its own structure before it is trusted.

use std::io;
use std::path::{Path, PathBuf};

use crate::format::SEGMENT_HEADER_LEN;

/// The index file format this build reads and writes (independent of the segment format).
pub(crate) const FORMAT_VERSION: u16 = 1;
use crate::shard::BatchEntry;
use crate::{LogId, Storage};

/// Every index file starts with these bytes.
pub(crate) const INDEX_MAGIC: [u8; 8] = *b"KNSNIDX\n";
pub(crate) const INDEX_SUFFIX: &str = ".idx";
pub(crate) const INDEX_TMP_SUFFIX: &str = ".idx.tmp";

const IDX_MAGIC_OFFSET: usize = 0;
const IDX_VERSION_OFFSET: usize = IDX_MAGIC_OFFSET + INDEX_MAGIC.len();
const IDX_RESERVED_OFFSET: usize = IDX_VERSION_OFFSET + size_of::<u16>();
const IDX_LOG_ID_OFFSET: usize = IDX_RESERVED_OFFSET + size_of::<u16>();
const IDX_BASE_OFFSET: usize = IDX_LOG_ID_OFFSET + size_of::<u64>();
const IDX_COVERED_OFFSET: usize = IDX_BASE_OFFSET + size_of::<u64>();
const IDX_COUNT_OFFSET: usize = IDX_COVERED_OFFSET + size_of::<u64>();
pub(crate) const INDEX_HEADER_LEN: usize = IDX_COUNT_OFFSET + size_of::<u32>();
const _: () = assert!(INDEX_HEADER_LEN == 40);

const ENTRY_OFFSET_OFFSET: usize = 0;
const ENTRY_LEN_OFFSET: usize = ENTRY_OFFSET_OFFSET + size_of::<u64>();
const ENTRY_COUNT_OFFSET: usize = ENTRY_LEN_OFFSET + size_of::<u32>();
const ENTRY_FIRST_SEQ_OFFSET: usize = ENTRY_COUNT_OFFSET + size_of::<u32>();
const ENTRY_ARRIVAL_OFFSET: usize = ENTRY_FIRST_SEQ_OFFSET + size_of::<u64>();
pub(crate) const INDEX_ENTRY_LEN: usize = ENTRY_ARRIVAL_OFFSET + size_of::<i64>();
const _: () = assert!(INDEX_ENTRY_LEN == 32);
const INDEX_CRC_LEN: usize = size_of::<u32>();

/// What an index file says about its segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub covered_len: u64,
    pub entries: Vec<BatchEntry>,
}

pub(crate) fn index_file_name(base_seq_index: u64) -> String {
    format!("{}{INDEX_SUFFIX}", crate::format::segment_file_name(base_seq_index).trim_end_matches(".seg"))
}

pub(crate) fn index_path(dir: &Path, base_seq_index: u64) -> PathBuf {
    dir.join(index_file_name(base_seq_index))
}

pub(crate) fn encode_index(log_id: u64, base: u64, index: &SegmentIndex) -> Vec<u8> {
    // Checked just before it is written, as it is checked when read back.
    assert!(check_entries(base, index).is_ok(), "an index must describe a clean segment");
    let mut out =
        Vec::with_capacity(INDEX_HEADER_LEN + index.entries.len() * INDEX_ENTRY_LEN + INDEX_CRC_LEN);
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&log_id.to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&index.covered_len.to_le_bytes());
    // At most one entry per 32-byte batch of a segment well below 2^32 * 32 bytes.
    out.extend_from_slice(&(index.entries.len() as u32).to_le_bytes());
    debug_assert_eq!(out.len(), INDEX_HEADER_LEN);
    for entry in &index.entries {
        out.extend_from_slice(&entry.offset.to_le_bytes());
        out.extend_from_slice(&entry.len.to_le_bytes());
        out.extend_from_slice(&entry.count.to_le_bytes());
        out.extend_from_slice(&entry.first_seq.to_le_bytes());
        out.extend_from_slice(&entry.arrival_ms.to_le_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    // Paired with the check on open.
    debug_assert_eq!(decode_index(&out, log_id, base).as_ref(), Ok(index));
    out
}

fn le<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
    let mut raw = [0u8; N];
    raw.copy_from_slice(&bytes[offset..offset + N]);
    raw
}

/// Why an index file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IndexError {
    /// Torn, damaged or describing another segment: scan the segment instead.
    Damaged(&'static str),
    /// A well-formed index of an unknown format version.
    UnsupportedVersion(u16),
}

pub(crate) fn decode_index(bytes: &[u8], log_id: u64, base: u64) -> Result<SegmentIndex, IndexError> {
    if bytes.len() < INDEX_HEADER_LEN + INDEX_CRC_LEN {
        return Err(IndexError::Damaged("index shorter than its header"));
    }
    if bytes[IDX_MAGIC_OFFSET..IDX_VERSION_OFFSET] != INDEX_MAGIC {
        return Err(IndexError::Damaged("bad index magic"));
    }
    let body = bytes.len() - INDEX_CRC_LEN;
    if u32::from_le_bytes(le(bytes, body)) != crc32c::crc32c(&bytes[..body]) {
        return Err(IndexError::Damaged("index checksum mismatch"));
    }
    let version = u16::from_le_bytes(le(bytes, IDX_VERSION_OFFSET));
    if version != FORMAT_VERSION {
        return Err(IndexError::UnsupportedVersion(version));
    }
    if u16::from_le_bytes(le(bytes, IDX_RESERVED_OFFSET)) != 0 {
        return Err(IndexError::Damaged("index reserved field is not zero"));
    }
    if u64::from_le_bytes(le(bytes, IDX_LOG_ID_OFFSET)) != log_id
        || u64::from_le_bytes(le(bytes, IDX_BASE_OFFSET)) != base
    {
        return Err(IndexError::Damaged("index names another segment"));
    }
    let covered_len = u64::from_le_bytes(le(bytes, IDX_COVERED_OFFSET));
    let count = u32::from_le_bytes(le(bytes, IDX_COUNT_OFFSET)) as usize;
    if count.checked_mul(INDEX_ENTRY_LEN) != Some(body - INDEX_HEADER_LEN) {
        return Err(IndexError::Damaged("index entry count does not match its length"));
    }
    let entries = bytes[INDEX_HEADER_LEN..body]
        .chunks_exact(INDEX_ENTRY_LEN)
        .map(|raw| BatchEntry {
            offset: u64::from_le_bytes(le(raw, ENTRY_OFFSET_OFFSET)),
            len: u32::from_le_bytes(le(raw, ENTRY_LEN_OFFSET)),
            count: u32::from_le_bytes(le(raw, ENTRY_COUNT_OFFSET)),
            first_seq: u64::from_le_bytes(le(raw, ENTRY_FIRST_SEQ_OFFSET)),
            arrival_ms: i64::from_le_bytes(le(raw, ENTRY_ARRIVAL_OFFSET)),
        })
        .collect();
    let index = SegmentIndex { covered_len, entries };
    check_entries(base, &index).map_err(IndexError::Damaged)?;
    Ok(index)
}

/// The rules a scan of a clean segment guarantees: batches back to back from the header to
/// `covered_len`, consecutive sequence indexes from the base, arrival times never going back.
fn check_entries(base: u64, index: &SegmentIndex) -> Result<(), &'static str> {
    let mut offset = SEGMENT_HEADER_LEN as u64;
    let mut seq = base;
    let mut arrival = i64::MIN;
    for entry in &index.entries {
        if entry.offset != offset {
            return Err("index entries are not back to back");
        }
        if entry.first_seq != seq {
            return Err("index entries do not follow each other's sequence indexes");
        }
        if entry.count == 0 || (entry.len as usize) < crate::format::BATCH_HEADER_LEN {
            return Err("index entry describes an impossible batch");
        }
        if entry.arrival_ms < arrival {
            return Err("index entry arrival time goes backwards");
        }
        offset += u64::from(entry.len);
        seq += u64::from(entry.count);
        arrival = entry.arrival_ms;
    }
    if offset != index.covered_len {
        return Err("index entries do not end at the covered length");
    }
    Ok(())
}

/// Reads and checks the index of segment `base`; `None` (after a log line) if it is missing or
/// fails a check, so the caller scans the segment.
pub(crate) fn load_index(
    storage: &dyn Storage,
    dir: &Path,
    id: LogId,
    base: u64,
) -> Result<Option<SegmentIndex>, crate::LogError> {
    let path = index_path(dir, base);
    let file = match storage.open_file(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(crate::LogError::io("open", path, source)),
    };
    let len = file.len_bytes().map_err(|source| crate::LogError::io("stat", &path, source))?;
    let mut bytes = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact_at(&mut bytes, 0).map_err(|source| crate::LogError::io("read", &path, source))?;
    match decode_index(&bytes, id.0, base) {
        Ok(index) => Ok(Some(index)),
        Err(IndexError::Damaged(why)) => {
            tracing::warn!(file = %path.display(), why, "ignoring a damaged index; scanning its segment");
            Ok(None)
        }
        Err(IndexError::UnsupportedVersion(version)) => {
            Err(crate::LogError::UnsupportedVersion { path, version, supported: FORMAT_VERSION })
        }
    }
}

/// Writes the index of segment `base`, replacing the old one atomically
/// ([`crate::storage::replace_file`]: a temporary `<base>.idx.tmp`, renamed over the index).
/// With `sync`, the file and then the directory are synced, so the index survives a crash;
/// without, the caller syncs (one `syncfs` after writing many). A torn or lost index is never
/// wrong, only slower: it fails its checks, or an older one covers less, and the segment is
/// scanned from there.
pub(crate) fn write_index(
    storage: &dyn Storage,
    dir: &Path,
    id: LogId,
    base: u64,
    index: &SegmentIndex,
    sync: bool,
) -> io::Result<()> {
    let bytes = encode_index(id.0, base, index);
    // `replace_file`'s temporary file is `<base>.idx.tmp` (INDEX_TMP_SUFFIX), which recovery removes.
    crate::storage::replace_file(storage, &index_path(dir, base), &bytes, 0o666, sync)
}

/// Removes the index of segment `base`, if any.
pub(crate) fn remove_index(storage: &dyn Storage, dir: &Path, base: u64) -> io::Result<()> {
    match storage.remove_file(&index_path(dir, base)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentIndex {
        let e0 = BatchEntry { offset: 32, len: 44, first_seq: 5, count: 1, arrival_ms: 1000 };
        let e1 = BatchEntry { offset: 76, len: 100, first_seq: 6, count: 3, arrival_ms: 1000 };
        SegmentIndex { covered_len: 176, entries: vec![e0, e1] }
    }

    #[test]
    fn index_round_trips_and_every_flipped_bit_is_detected() {
        let bytes = encode_index(7, 5, &sample());
        assert_eq!(bytes.len(), INDEX_HEADER_LEN + 2 * INDEX_ENTRY_LEN + 4);
        assert_eq!(decode_index(&bytes, 7, 5), Ok(sample()));
        assert!(decode_index(&bytes, 8, 5).is_err());
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_index(&damaged, 7, 5).is_err(), "bit {bit}");
        }
        for cut in 0..bytes.len() {
            assert!(decode_index(&bytes[..cut], 7, 5).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn inconsistent_entries_are_refused() {
        let mut index = sample();
        index.entries[1].first_seq = 7;
        assert!(check_entries(5, &index).is_err());
        let mut index = sample();
        index.covered_len = 200;
        assert!(check_entries(5, &index).is_err());
    }
}
