//! The on-disk layout of a shard log segment (see `docs/format.md`, "Shard log segments").
//!
//! ```text
//! segment file = segment header (32 bytes) , batch*
//!
//! segment header, little-endian:
//!   0  magic            [u8; 8]  b"KNSNSEG\n"
//!   8  format_version   u16      2 (1 is read too: it has no encrypted batches)
//!  10  reserved         u16      0
//!  12  log_id           u64
//!  20  base_seq_index   u64      = the number in the file name
//!  28  header_crc       u32      crc32c of bytes 0..28
//!  32  (end)
//!
//! batch = batch header (32 bytes) , record{record_count}
//!   0  batch_len        u32      whole batch, header included
//!   4  batch_crc        u32      crc32c(bytes 32..batch_len ++ bytes 0..4 ++ bytes 8..32)
//!   8  first_seq_index  u64
//!  16  record_count     u32      >= 1
//!  20  arrival_ms       i64
//!  28  flags            u32      bit 0: encrypted; other bits 0
//!  32  (end)
//!
//! encrypted batch (flags bit 0) = batch header , key_generation u32 , nonce [u8; 12] ,
//!   AES-256-GCM(records) , tag [u8; 16]
//!   AAD = log_id u64 ++ bytes 0..4 ++ bytes 8..32 ++ key_generation u32 (40 bytes)
//!
//! record:
//!   0  partition_key_len u32
//!   4  partition_key     [u8; partition_key_len]
//!   .  data_len          u32
//!   .  data              [u8; data_len]
//! ```
//!
//! The batch checksum covers the records first and then the header fields other than the
//! checksum itself, so the caller's task can checksum the records before the writer thread
//! knows the sequence index and arrival time, and the writer only checksums 28 more bytes.

use bytes::Bytes;

use crate::crypt::{BatchKey, BatchKeys, NONCE_LEN, TAG_LEN};

/// Every segment file starts with these bytes.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"KNSNSEG\n";
/// The segment format this build writes. Version 2 added encrypted batches (batch flag bit 0);
/// a binary that knows only version 1 refuses such segments instead of taking an encrypted
/// batch for damage.
pub(crate) const FORMAT_VERSION: u16 = 2;
/// The oldest segment format this build reads (identical but for the batch flags).
pub(crate) const FORMAT_VERSION_MIN: u16 = 1;

// Segment header: each offset derives from the one before it.
const SEG_MAGIC_OFFSET: usize = 0;
const SEG_VERSION_OFFSET: usize = SEG_MAGIC_OFFSET + SEGMENT_MAGIC.len();
const SEG_RESERVED_OFFSET: usize = SEG_VERSION_OFFSET + size_of::<u16>();
const SEG_LOG_ID_OFFSET: usize = SEG_RESERVED_OFFSET + size_of::<u16>();
const SEG_BASE_OFFSET: usize = SEG_LOG_ID_OFFSET + size_of::<u64>();
const SEG_CRC_OFFSET: usize = SEG_BASE_OFFSET + size_of::<u64>();
/// Length of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: usize = SEG_CRC_OFFSET + size_of::<u32>();
const _: () = assert!(SEGMENT_HEADER_LEN == 32);

// Batch header.
const BATCH_LEN_OFFSET: usize = 0;
const BATCH_CRC_OFFSET: usize = BATCH_LEN_OFFSET + size_of::<u32>();
const BATCH_FIRST_SEQ_OFFSET: usize = BATCH_CRC_OFFSET + size_of::<u32>();
const BATCH_COUNT_OFFSET: usize = BATCH_FIRST_SEQ_OFFSET + size_of::<u64>();
const BATCH_ARRIVAL_OFFSET: usize = BATCH_COUNT_OFFSET + size_of::<u32>();
const BATCH_FLAGS_OFFSET: usize = BATCH_ARRIVAL_OFFSET + size_of::<i64>();
/// Length of the batch header in bytes.
pub const BATCH_HEADER_LEN: usize = BATCH_FLAGS_OFFSET + size_of::<u32>();
const _: () = assert!(BATCH_HEADER_LEN == 32);

/// Batch flag: the records are encrypted (see the module comment).
pub(crate) const FLAG_ENCRYPTED: u32 = 1;
/// Every flag this build knows; a batch with another bit set is damaged.
pub(crate) const FLAGS_KNOWN: u32 = FLAG_ENCRYPTED;

// Encrypted batch: after the batch header.
const ENC_GENERATION_OFFSET: usize = BATCH_HEADER_LEN;
const ENC_NONCE_OFFSET: usize = ENC_GENERATION_OFFSET + size_of::<u32>();
const ENC_CIPHERTEXT_OFFSET: usize = ENC_NONCE_OFFSET + NONCE_LEN;
const _: () = assert!(ENC_CIPHERTEXT_OFFSET == 48);
/// Bytes an encrypted batch takes beyond the plain one: generation, nonce, tag.
pub const ENCRYPTION_OVERHEAD_BYTES: usize = ENC_CIPHERTEXT_OFFSET - BATCH_HEADER_LEN + TAG_LEN;
/// Bytes of the additional authenticated data of an encrypted batch.
const AAD_LEN: usize =
    size_of::<u64>() + size_of::<u32>() + (BATCH_HEADER_LEN - BATCH_FIRST_SEQ_OFFSET) + size_of::<u32>();
const _: () = assert!(AAD_LEN == 40);

/// Per record: partition key length and data length.
pub const RECORD_OVERHEAD_BYTES: usize = 2 * size_of::<u32>();

/// Largest encoded batch (header included) one append may produce. Kinesis caps a PutRecords
/// request at 5 MiB of payload; this leaves room for framing and for callers that batch more.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most records one append may carry (Kinesis allows 500 per PutRecords).
pub const BATCH_RECORDS_MAX: usize = 65_536;

/// Width of the sequence index in a segment file name.
pub(crate) const SEGMENT_NAME_DIGITS: usize = 20;
pub(crate) const SEGMENT_SUFFIX: &str = ".seg";
/// Width of the log id in a log directory name.
pub(crate) const LOG_DIR_DIGITS: usize = 16;
/// Suffix of a log directory that is being deleted.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

pub(crate) fn segment_file_name(base_seq_index: u64) -> String {
    format!("{base_seq_index:0width$}{SEGMENT_SUFFIX}", width = SEGMENT_NAME_DIGITS)
}

pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn log_dir_name(id: u64) -> String {
    format!("{id:0width$x}", width = LOG_DIR_DIGITS)
}

pub(crate) fn parse_log_dir_name(name: &str) -> Option<u64> {
    if name.len() != LOG_DIR_DIGITS || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

fn read_u16(bytes: &[u8], offset: usize) -> u16 {
    let mut raw = [0u8; 2];
    raw.copy_from_slice(&bytes[offset..offset + 2]);
    u16::from_le_bytes(raw)
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(raw)
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(raw)
}

fn read_i64(bytes: &[u8], offset: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[offset..offset + 8]);
    i64::from_le_bytes(raw)
}

/// The segment header as written.
pub(crate) fn encode_segment_header(log_id: u64, base_seq_index: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    out[SEG_MAGIC_OFFSET..SEG_VERSION_OFFSET].copy_from_slice(&SEGMENT_MAGIC);
    out[SEG_VERSION_OFFSET..SEG_RESERVED_OFFSET].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[SEG_RESERVED_OFFSET..SEG_LOG_ID_OFFSET].copy_from_slice(&0u16.to_le_bytes());
    out[SEG_LOG_ID_OFFSET..SEG_BASE_OFFSET].copy_from_slice(&log_id.to_le_bytes());
    out[SEG_BASE_OFFSET..SEG_CRC_OFFSET].copy_from_slice(&base_seq_index.to_le_bytes());
    let crc = crc32c::crc32c(&out[..SEG_CRC_OFFSET]);
    out[SEG_CRC_OFFSET..SEGMENT_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(
        decode_segment_header(&out),
        Ok(SegmentHeader { log_id, base_seq_index, format_version: FORMAT_VERSION })
    );
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub log_id: u64,
    pub base_seq_index: u64,
    /// `FORMAT_VERSION_MIN ..= FORMAT_VERSION`; only version 2 and later hold encrypted batches.
    pub format_version: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than a header.
    Short,
    /// Magic or checksum wrong: a torn or damaged header.
    Damaged(&'static str),
    /// A well-formed header of a format version this build does not know.
    UnsupportedVersion(u16),
}

pub(crate) fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Err(HeaderError::Short);
    }
    if bytes[SEG_MAGIC_OFFSET..SEG_VERSION_OFFSET] != SEGMENT_MAGIC {
        return Err(HeaderError::Damaged("bad segment magic"));
    }
    let crc = read_u32(bytes, SEG_CRC_OFFSET);
    if crc != crc32c::crc32c(&bytes[..SEG_CRC_OFFSET]) {
        return Err(HeaderError::Damaged("segment header checksum mismatch"));
    }
    let version = read_u16(bytes, SEG_VERSION_OFFSET);
    if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    if read_u16(bytes, SEG_RESERVED_OFFSET) != 0 {
        return Err(HeaderError::Damaged("segment header reserved field is not zero"));
    }
    Ok(SegmentHeader {
        format_version: version,
        log_id: read_u64(bytes, SEG_LOG_ID_OFFSET),
        base_seq_index: read_u64(bytes, SEG_BASE_OFFSET),
    })
}

/// A batch encoded by the appending task, before the writer assigns its sequence index and
/// arrival time. `buf` holds a zeroed batch header followed by the records.
#[derive(Debug)]
pub(crate) struct EncodedBatch {
    pub buf: Vec<u8>,
    pub record_count: u32,
    /// crc32c of `buf[BATCH_HEADER_LEN..]` (of a plain batch; an encrypted one is checksummed
    /// when it is sealed, after its encryption).
    pub records_crc: u32,
    /// The key and nonce to seal an encrypted batch with; `buf` then holds the header, room for
    /// the generation and nonce, the plaintext records and room for the tag.
    pub encryption: Option<(BatchKey, [u8; NONCE_LEN])>,
}

/// Why a batch could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EncodeError {
    Empty,
    TooManyRecords(usize),
    TooLarge(usize),
}

/// Encodes the records of one append (everything except the header fields the writer sets).
#[cfg(test)]
pub(crate) fn encode_records<'a, I>(records: I) -> Result<EncodedBatch, EncodeError>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    encode_records_with(records, None)
}

/// [`encode_records`], to be encrypted with `encryption` when sealed.
pub(crate) fn encode_records_with<'a, I>(
    records: I,
    encryption: Option<(BatchKey, [u8; NONCE_LEN])>,
) -> Result<EncodedBatch, EncodeError>
where
    I: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let count = records.len();
    if count == 0 {
        return Err(EncodeError::Empty);
    }
    if count > BATCH_RECORDS_MAX {
        return Err(EncodeError::TooManyRecords(count));
    }
    let overhead = if encryption.is_some() { ENCRYPTION_OVERHEAD_BYTES } else { 0 };
    let mut total = BATCH_HEADER_LEN + overhead;
    for (pk, data) in records.clone() {
        total = total.saturating_add(RECORD_OVERHEAD_BYTES + pk.len() + data.len());
    }
    if total > BATCH_BYTES_MAX {
        return Err(EncodeError::TooLarge(total));
    }
    let mut buf = Vec::with_capacity(total);
    let records_at = if encryption.is_some() { ENC_CIPHERTEXT_OFFSET } else { BATCH_HEADER_LEN };
    buf.resize(records_at, 0);
    for (pk, data) in records {
        // Both fit in u32: the whole batch is at most BATCH_BYTES_MAX.
        buf.extend_from_slice(&(pk.len() as u32).to_le_bytes());
        buf.extend_from_slice(pk);
        buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        buf.extend_from_slice(data);
    }
    if encryption.is_some() {
        buf.resize(buf.len() + TAG_LEN, 0);
        assert_eq!(buf.len(), total);
        // Checksummed once encrypted, in `seal_batch`.
        return Ok(EncodedBatch { buf, record_count: count as u32, records_crc: 0, encryption });
    }
    assert_eq!(buf.len(), total);
    let records_crc = crc32c::crc32c(&buf[BATCH_HEADER_LEN..]);
    Ok(EncodedBatch { buf, record_count: count as u32, records_crc, encryption: None })
}

/// The authenticated data of an encrypted batch: everything in its header but the checksum,
/// the log it belongs to and the key generation. Moving a batch to another log or place, or
/// changing its count, time, flags or generation, fails its authentication.
fn batch_aad(log_id: u64, header: &[u8], generation: u32) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    let mut at = 0;
    for part in [
        &log_id.to_le_bytes()[..],
        &header[BATCH_LEN_OFFSET..BATCH_CRC_OFFSET],
        &header[BATCH_FIRST_SEQ_OFFSET..BATCH_HEADER_LEN],
        &generation.to_le_bytes()[..],
    ] {
        aad[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    assert_eq!(at, AAD_LEN);
    aad
}

/// Fills in the batch header of an encoded batch once the writer knows its place in the log,
/// and encrypts it if it is to be.
pub(crate) fn seal_batch(batch: &mut EncodedBatch, log_id: u64, first_seq_index: u64, arrival_ms: i64) {
    let len = batch.buf.len();
    assert!(len >= BATCH_HEADER_LEN);
    assert!(len <= BATCH_BYTES_MAX);
    let header = &mut batch.buf[..BATCH_HEADER_LEN];
    header[BATCH_LEN_OFFSET..BATCH_CRC_OFFSET].copy_from_slice(&(len as u32).to_le_bytes());
    header[BATCH_FIRST_SEQ_OFFSET..BATCH_COUNT_OFFSET].copy_from_slice(&first_seq_index.to_le_bytes());
    header[BATCH_COUNT_OFFSET..BATCH_ARRIVAL_OFFSET].copy_from_slice(&batch.record_count.to_le_bytes());
    header[BATCH_ARRIVAL_OFFSET..BATCH_FLAGS_OFFSET].copy_from_slice(&arrival_ms.to_le_bytes());
    let flags = if batch.encryption.is_some() { FLAG_ENCRYPTED } else { 0 };
    header[BATCH_FLAGS_OFFSET..BATCH_HEADER_LEN].copy_from_slice(&flags.to_le_bytes());
    if let Some((key, nonce)) = &batch.encryption {
        assert!(len >= BATCH_HEADER_LEN + ENCRYPTION_OVERHEAD_BYTES);
        let generation = key.generation();
        let aad = batch_aad(log_id, &batch.buf[..BATCH_HEADER_LEN], generation);
        batch.buf[ENC_GENERATION_OFFSET..ENC_NONCE_OFFSET].copy_from_slice(&generation.to_le_bytes());
        batch.buf[ENC_NONCE_OFFSET..ENC_CIPHERTEXT_OFFSET].copy_from_slice(nonce);
        let tag = key.seal(*nonce, &aad, &mut batch.buf[ENC_CIPHERTEXT_OFFSET..len - TAG_LEN]);
        batch.buf[len - TAG_LEN..].copy_from_slice(&tag);
        batch.records_crc = crc32c::crc32c(&batch.buf[BATCH_HEADER_LEN..]);
    }
    let header = &mut batch.buf[..BATCH_HEADER_LEN];
    let crc = header_crc(batch.records_crc, header);
    header[BATCH_CRC_OFFSET..BATCH_FIRST_SEQ_OFFSET].copy_from_slice(&crc.to_le_bytes());
    // Check the batch just before it is written, as it will be checked when read back.
    debug_assert!(check_batch(&batch.buf).is_ok());
}

fn header_crc(records_crc: u32, header: &[u8]) -> u32 {
    let crc = crc32c::crc32c_append(records_crc, &header[BATCH_LEN_OFFSET..BATCH_CRC_OFFSET]);
    crc32c::crc32c_append(crc, &header[BATCH_FIRST_SEQ_OFFSET..BATCH_HEADER_LEN])
}

/// The fixed fields of a batch header, read without checking anything but the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub batch_len: u32,
    pub crc: u32,
    pub first_seq_index: u64,
    pub record_count: u32,
    pub arrival_ms: i64,
    pub flags: u32,
}

impl BatchHeader {
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }
}

pub(crate) fn peek_batch_header(bytes: &[u8]) -> Option<BatchHeader> {
    if bytes.len() < BATCH_HEADER_LEN {
        return None;
    }
    Some(BatchHeader {
        batch_len: read_u32(bytes, BATCH_LEN_OFFSET),
        crc: read_u32(bytes, BATCH_CRC_OFFSET),
        first_seq_index: read_u64(bytes, BATCH_FIRST_SEQ_OFFSET),
        record_count: read_u32(bytes, BATCH_COUNT_OFFSET),
        arrival_ms: read_i64(bytes, BATCH_ARRIVAL_OFFSET),
        flags: read_u32(bytes, BATCH_FLAGS_OFFSET),
    })
}

/// Checks the batch at the start of `bytes` (which may continue past it): length, checksum,
/// and that the records fill the batch exactly. Returns the header.
pub(crate) fn check_batch(bytes: &[u8]) -> Result<BatchHeader, &'static str> {
    let header = peek_batch_header(bytes).ok_or("truncated batch header")?;
    let len = header.batch_len as usize;
    if len < BATCH_HEADER_LEN {
        return Err("batch length shorter than its header");
    }
    if len > BATCH_BYTES_MAX {
        return Err("batch length above the maximum");
    }
    if len > bytes.len() {
        return Err("batch runs past the end of the file");
    }
    let batch = &bytes[..len];
    let crc = header_crc(crc32c::crc32c(&batch[BATCH_HEADER_LEN..]), &batch[..BATCH_HEADER_LEN]);
    if crc != header.crc {
        return Err("batch checksum mismatch");
    }
    if header.flags & !FLAGS_KNOWN != 0 {
        return Err("batch has unknown flags");
    }
    if header.record_count == 0 {
        return Err("batch holds no records");
    }
    if header.record_count as usize > BATCH_RECORDS_MAX {
        return Err("batch record count above the maximum");
    }
    if header.is_encrypted() {
        // The records are walked once decrypted (`decode_records`); their authentication tag,
        // not this checksum, is what tells a deliberate change.
        if len
            < BATCH_HEADER_LEN
                + ENCRYPTION_OVERHEAD_BYTES
                + header.record_count as usize * RECORD_OVERHEAD_BYTES
        {
            return Err("encrypted batch shorter than its records can be");
        }
        return Ok(header);
    }
    // Walk the records once so that decoding later cannot run off the end.
    let mut pos = BATCH_HEADER_LEN;
    for _ in 0..header.record_count {
        for _field in 0..2 {
            if pos + size_of::<u32>() > len {
                return Err("record length field past the end of the batch");
            }
            let field_len = read_u32(batch, pos) as usize;
            pos += size_of::<u32>();
            if field_len > len - pos {
                return Err("record field past the end of the batch");
            }
            pos += field_len;
        }
    }
    if pos != len {
        return Err("bytes left over after the last record");
    }
    Ok(header)
}

/// One decoded record: partition key and data share the batch buffer.
#[derive(Debug, Clone)]
pub(crate) struct RecordView {
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// Why the records of a batch could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes do not hold what the batch header says: damage.
    Damaged(&'static str),
    /// The batch is encrypted with a key generation the caller could not provide.
    KeyUnavailable(u32),
    /// The encrypted batch fails its authentication: changed on disk (its checksum was fixed
    /// up too), or the key given for its generation is not the one it was sealed with.
    Unauthentic,
}

/// Decodes the records of a batch that passed `check_batch` (or was sealed in this process),
/// decrypting it with the key of its generation from `keys` if it is encrypted. Returns the
/// records and whether they were encrypted. Malformed input yields an error, never a panic.
pub(crate) fn decode_records(
    batch: &Bytes,
    log_id: u64,
    keys: &dyn BatchKeys,
) -> Result<(Vec<RecordView>, bool), DecodeError> {
    let header = peek_batch_header(batch).ok_or(DecodeError::Damaged("truncated batch header"))?;
    let len = header.batch_len as usize;
    if len > batch.len() || len < BATCH_HEADER_LEN {
        return Err(DecodeError::Damaged("batch length does not match its buffer"));
    }
    if !header.is_encrypted() {
        let records = decode_region(&batch.slice(BATCH_HEADER_LEN..len), header.record_count)
            .map_err(DecodeError::Damaged)?;
        return Ok((records, false));
    }
    if len < BATCH_HEADER_LEN + ENCRYPTION_OVERHEAD_BYTES {
        return Err(DecodeError::Damaged("encrypted batch shorter than its framing"));
    }
    let generation = read_u32(batch, ENC_GENERATION_OFFSET);
    let key = keys.key(generation).ok_or(DecodeError::KeyUnavailable(generation))?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&batch[ENC_NONCE_OFFSET..ENC_CIPHERTEXT_OFFSET]);
    let aad = batch_aad(log_id, &batch[..BATCH_HEADER_LEN], generation);
    let mut plain = batch[ENC_CIPHERTEXT_OFFSET..len].to_vec();
    let plain_len = key.open(nonce, &aad, &mut plain).ok_or(DecodeError::Unauthentic)?;
    plain.truncate(plain_len);
    // Authentic, so written by this code: a malformed plaintext would be a bug, still not a panic.
    let records = decode_region(&Bytes::from(plain), header.record_count).map_err(DecodeError::Damaged)?;
    Ok((records, true))
}

/// Decodes `count` records filling `region` exactly; every key and data is a slice of it.
fn decode_region(region: &Bytes, count: u32) -> Result<Vec<RecordView>, &'static str> {
    let len = region.len();
    let mut out = Vec::with_capacity(count as usize);
    let mut pos = 0;
    let take = |pos: &mut usize| -> Result<Bytes, &'static str> {
        if *pos + size_of::<u32>() > len {
            return Err("record length field past the end of the batch");
        }
        let field_len = read_u32(region, *pos) as usize;
        *pos += size_of::<u32>();
        if field_len > len - *pos {
            return Err("record field past the end of the batch");
        }
        let field = region.slice(*pos..*pos + field_len);
        *pos += field_len;
        Ok(field)
    };
    for _ in 0..count {
        let partition_key = take(&mut pos)?;
        let data = take(&mut pos)?;
        out.push(RecordView { partition_key, data });
    }
    if pos != len {
        return Err("bytes left over after the last record");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::NoKeys;

    fn sealed(records: &[(&[u8], &[u8])], first: u64, arrival: i64) -> Vec<u8> {
        let mut batch = encode_records(records.iter().copied()).expect("encodes");
        seal_batch(&mut batch, 1, first, arrival);
        batch.buf
    }

    #[test]
    fn segment_header_round_trips_and_detects_damage() {
        let header = encode_segment_header(0xabcd, 42);
        assert_eq!(
            decode_segment_header(&header),
            Ok(SegmentHeader { log_id: 0xabcd, base_seq_index: 42, format_version: 2 })
        );
        assert_eq!(decode_segment_header(&header[..31]), Err(HeaderError::Short));
        for i in 0..SEGMENT_HEADER_LEN {
            let mut bad = header;
            bad[i] ^= 0x01;
            assert!(decode_segment_header(&bad).is_err(), "flip at {i} not detected");
        }
    }

    #[test]
    fn unknown_version_is_reported_as_such() {
        let mut header = encode_segment_header(1, 0);
        header[SEG_VERSION_OFFSET..SEG_RESERVED_OFFSET].copy_from_slice(&7u16.to_le_bytes());
        let crc = crc32c::crc32c(&header[..SEG_CRC_OFFSET]);
        header[SEG_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_segment_header(&header), Err(HeaderError::UnsupportedVersion(7)));
    }

    #[test]
    fn batch_round_trips() {
        let buf = sealed(&[(b"pk1", b"hello"), (b"", b""), (b"k", &[7u8; 300])], 99, -5);
        assert_eq!(buf.len(), BATCH_HEADER_LEN + 3 * RECORD_OVERHEAD_BYTES + 3 + 5 + 1 + 300);
        let header = check_batch(&buf).expect("valid");
        assert_eq!(header.first_seq_index, 99);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.arrival_ms, -5);
        let (records, encrypted) = decode_records(&Bytes::from(buf), 1, &NoKeys).expect("decodes");
        assert!(!encrypted);
        assert_eq!(&records[0].partition_key[..], b"pk1");
        assert_eq!(&records[0].data[..], b"hello");
        assert!(records[1].partition_key.is_empty());
        assert_eq!(records[2].data.len(), 300);
    }

    #[test]
    fn every_flipped_bit_in_a_batch_is_detected() {
        let buf = sealed(&[(b"pk", b"data"), (b"pk2", b"more data")], 7, 1000);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(check_batch(&bad).is_err(), "flip of bit {bit} at byte {i} passed");
            }
        }
    }

    #[test]
    fn every_truncation_of_a_batch_is_detected() {
        let buf = sealed(&[(b"pk", b"data")], 7, 1000);
        for len in 0..buf.len() {
            assert!(check_batch(&buf[..len]).is_err(), "truncation to {len} passed");
        }
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(encode_records(std::iter::empty::<(&[u8], &[u8])>()).unwrap_err(), EncodeError::Empty);
        let big = vec![0u8; BATCH_BYTES_MAX];
        assert!(matches!(encode_records([(&b"k"[..], &big[..])].into_iter()), Err(EncodeError::TooLarge(_))));
    }

    /// The worked example in docs/format.md, byte for byte (checksum aside).
    #[test]
    fn documented_example_batch() {
        let buf = sealed(&[(b"pk", b"hi")], 5, 1000);
        let expected: Vec<u8> = [
            &[0x2c, 0, 0, 0][..],
            &buf[4..8],
            &[5, 0, 0, 0, 0, 0, 0, 0],
            &[1, 0, 0, 0],
            &[0xe8, 0x03, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0],
            &[2, 0, 0, 0, b'p', b'k'],
            &[2, 0, 0, 0, b'h', b'i'],
        ]
        .concat();
        assert_eq!(buf, expected);
        let mut crc_input = buf[BATCH_HEADER_LEN..].to_vec();
        crc_input.extend_from_slice(&buf[0..4]);
        crc_input.extend_from_slice(&buf[8..BATCH_HEADER_LEN]);
        assert_eq!(&buf[4..8], &crc32c::crc32c(&crc_input).to_le_bytes());
        assert_eq!(&encode_segment_header(1, 0)[..8], b"KNSNSEG\n");
    }

    const KEY_A: [u8; 32] = [0x11; 32];
    const KEY_B: [u8; 32] = [0x22; 32];

    fn sealed_encrypted(records: &[(&[u8], &[u8])], key: &BatchKey, first: u64, arrival: i64) -> Vec<u8> {
        let nonce = crate::crypt::random_nonce().expect("randomness");
        let mut batch =
            encode_records_with(records.iter().copied(), Some((key.clone(), nonce))).expect("encodes");
        seal_batch(&mut batch, 9, first, arrival);
        batch.buf
    }

    /// Rewrites the checksum after a deliberate change, as someone editing the file would.
    fn fix_crc(buf: &mut [u8]) {
        let crc = header_crc(crc32c::crc32c(&buf[BATCH_HEADER_LEN..]), &buf[..BATCH_HEADER_LEN]);
        buf[BATCH_CRC_OFFSET..BATCH_FIRST_SEQ_OFFSET].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn encrypted_batch_round_trips_and_hides_the_records() {
        let key = BatchKey::new(3, &KEY_A);
        let records: [(&[u8], &[u8]); 2] = [(b"secret-key", b"secret-data-marker"), (b"", b"")];
        let buf = sealed_encrypted(&records, &key, 40, 1234);
        let plain_len = BATCH_HEADER_LEN + 2 * RECORD_OVERHEAD_BYTES + 10 + 18;
        assert_eq!(buf.len(), plain_len + ENCRYPTION_OVERHEAD_BYTES);
        let header = check_batch(&buf).expect("valid");
        assert!(header.is_encrypted());
        assert_eq!(header.first_seq_index, 40);
        assert_eq!(&buf[ENC_GENERATION_OFFSET..ENC_NONCE_OFFSET], &3u32.to_le_bytes());
        for needle in [&b"secret-key"[..], b"secret-data-marker"] {
            assert!(!buf.windows(needle.len()).any(|w| w == needle), "plaintext found in the batch");
        }
        let (decoded, encrypted) = decode_records(&Bytes::from(buf), 9, &key).expect("decrypts");
        assert!(encrypted);
        assert_eq!(&decoded[0].partition_key[..], b"secret-key");
        assert_eq!(&decoded[0].data[..], b"secret-data-marker");
        assert!(decoded[1].data.is_empty());
    }

    #[test]
    fn tampered_encrypted_batch_is_never_decoded() {
        let key = BatchKey::new(1, &KEY_A);
        let buf = sealed_encrypted(&[(b"pk", b"some data to protect")], &key, 7, 1000);
        // Every byte after the checksum, changed and the checksum fixed up: the checksum passes,
        // the authentication does not (or the header no longer makes sense).
        for i in BATCH_FIRST_SEQ_OFFSET..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            fix_crc(&mut bad);
            let checked = check_batch(&bad);
            let decoded = checked.ok().map(|_| decode_records(&Bytes::from(bad), 9, &key));
            match decoded {
                None | Some(Err(DecodeError::Unauthentic)) | Some(Err(DecodeError::Damaged(_))) => {}
                Some(Err(DecodeError::KeyUnavailable(_)))
                    if (ENC_GENERATION_OFFSET..ENC_NONCE_OFFSET).contains(&i) => {}
                other => panic!("change at byte {i} not detected: {other:?}"),
            }
        }
        // The same batch moved to another log fails too (the log id is authenticated).
        assert_eq!(
            decode_records(&Bytes::from(buf.clone()), 10, &key).unwrap_err(),
            DecodeError::Unauthentic
        );
        // And every flipped bit without a fixed checksum is caught by the checksum.
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            assert!(check_batch(&bad).is_err(), "flip at {i} passed the checksum");
        }
    }

    #[test]
    fn encrypted_batch_needs_the_right_key_of_its_generation() {
        let key = BatchKey::new(5, &KEY_A);
        let buf = Bytes::from(sealed_encrypted(&[(b"pk", b"data")], &key, 0, 0));
        assert_eq!(decode_records(&buf, 9, &NoKeys).unwrap_err(), DecodeError::KeyUnavailable(5));
        assert_eq!(
            decode_records(&buf, 9, &BatchKey::new(6, &KEY_A)).unwrap_err(),
            DecodeError::KeyUnavailable(5)
        );
        assert_eq!(decode_records(&buf, 9, &BatchKey::new(5, &KEY_B)).unwrap_err(), DecodeError::Unauthentic);
    }

    #[test]
    fn nonces_are_unique_per_batch() {
        let key = BatchKey::new(1, &KEY_A);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let buf = sealed_encrypted(&[(b"pk", b"same data")], &key, 0, 0);
            assert!(seen.insert(buf[ENC_NONCE_OFFSET..ENC_CIPHERTEXT_OFFSET].to_vec()), "nonce repeated");
        }
    }

    #[test]
    fn version_1_segments_are_read_and_version_2_written() {
        let header = encode_segment_header(1, 0);
        assert_eq!(&header[SEG_VERSION_OFFSET..SEG_RESERVED_OFFSET], &2u16.to_le_bytes());
        let mut old = header;
        old[SEG_VERSION_OFFSET..SEG_RESERVED_OFFSET].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32c::crc32c(&old[..SEG_CRC_OFFSET]);
        old[SEG_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_segment_header(&old).is_ok());
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_file_name(12), "00000000000000000012.seg");
        assert_eq!(parse_segment_file_name("00000000000000000012.seg"), Some(12));
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("12.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000001x.seg"), None);
        assert_eq!(log_dir_name(0xfe), "00000000000000fe");
        assert_eq!(parse_log_dir_name("00000000000000fe"), Some(0xfe));
        assert_eq!(parse_log_dir_name("00000000000000fe.deleted"), None);
    }
}
