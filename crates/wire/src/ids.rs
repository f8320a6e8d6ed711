//! Identifiers of the Kinesis API: hash keys, shard ids, sequence numbers, stream and consumer
//! names and ARNs.
//!
//! These are pure codecs: they turn the decimal / textual forms that travel on the wire into
//! newtypes and back, and they never touch the clock, the disk or the network. Semantics follow
//! `shared/reference/kinesis-api.md` §3.1–§3.3.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};

// ---------------------------------------------------------------------------------------------
// Hash keys
// ---------------------------------------------------------------------------------------------

/// Longest decimal hash key the API accepts: pattern `0|([1-9]\d{0,38})`.
const HASH_KEY_DIGITS_MAX: usize = 39;

/// A point in the 128-bit hash key space `[0, 2^128 − 1]` that routes records to shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

/// Why a decimal string is not a hash key.
///
/// The two cases map to different AWS errors: `Malformed` fails the model's pattern
/// (`ValidationException`), `OutOfRange` matches it but exceeds 2^128 − 1
/// (`InvalidArgumentException` "Invalid ExplicitHashKey. ExplicitHashKey must be in the range:
/// [0, 2^128-1]. Specified value was <v>").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashKeyError {
    /// Not a decimal number matching `0|([1-9]\d{0,38})`: empty, a non-digit, a leading zero or
    /// more than 39 digits.
    #[error("hash key is not a decimal number matching 0|([1-9]\\d{{0,38}})")]
    Malformed,
    /// A 39-digit number above 2^128 − 1.
    #[error("hash key must be in the range: [0, 2^128-1]")]
    OutOfRange,
}

impl HashKey {
    pub const MIN: HashKey = HashKey(0);
    pub const MAX: HashKey = HashKey(u128::MAX);

    /// Parses a decimal hash key as sent in `ExplicitHashKey`, `StartingHashKey` or
    /// `NewStartingHashKey`.
    pub fn parse(text: &str) -> Result<HashKey, HashKeyError> {
        let digits = text.as_bytes();
        if !matches_decimal_pattern(digits, HASH_KEY_DIGITS_MAX) {
            return Err(HashKeyError::Malformed);
        }
        let mut value: u128 = 0;
        for &digit in digits {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(digit - b'0')))
                .ok_or(HashKeyError::OutOfRange)?;
        }
        Ok(HashKey(value))
    }

    /// The routing key of a record without `ExplicitHashKey`: MD5 of the partition key's UTF-8
    /// bytes read as a big-endian unsigned integer (KCL: `new BigInteger(1, md5(pk))`).
    pub fn from_partition_key(partition_key: &str) -> HashKey {
        let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
        // Big-endian on purpose: this is the byte order AWS and the KCL use, not a storage format.
        HashKey(u128::from_be_bytes(digest))
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for HashKey {
    type Err = HashKeyError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        HashKey::parse(text)
    }
}

/// An inclusive range `[start, end]` of hash keys, as in a shard's `HashKeyRange`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashKeyRange {
    pub start: HashKey,
    pub end: HashKey,
}

impl HashKeyRange {
    /// The whole key space; the range of a one-shard stream.
    pub const FULL: HashKeyRange = HashKeyRange { start: HashKey::MIN, end: HashKey::MAX };

    /// A range, or `None` when `start > end`.
    pub fn new(start: HashKey, end: HashKey) -> Option<HashKeyRange> {
        (start <= end).then_some(HashKeyRange { start, end })
    }

    pub fn contains(&self, key: HashKey) -> bool {
        self.start <= key && key <= self.end
    }

    /// The ranges of a new stream with `shard_count` shards, in shard index order:
    /// step = floor(2^128 / n); shard i covers `[i·step, (i+1)·step − 1]` and the last one ends at
    /// 2^128 − 1 (kinesalite `createStream.js`, matches AWS). `shard_count == 0` gives no ranges.
    pub fn even_split(shard_count: u32) -> Vec<HashKeyRange> {
        match shard_count {
            0 => return Vec::new(),
            1 => return vec![HashKeyRange::FULL],
            _ => {}
        }
        let n = u128::from(shard_count);
        // floor(2^128 / n) without 2^128: it is floor((2^128 − 1) / n), plus one exactly when n
        // divides 2^128, i.e. when (2^128 − 1) mod n == n − 1. For n ≥ 2 the result fits.
        let step = u128::MAX / n + u128::from(u128::MAX % n == n - 1);
        let mut ranges = Vec::with_capacity(shard_count as usize);
        for i in 0..n {
            // i < n, so i·step ≤ (n − 1)·floor(2^128 / n) < 2^128; likewise (i + 1)·step for
            // every shard but the last.
            let start = i * step;
            let end = if i + 1 == n { u128::MAX } else { (i + 1) * step - 1 };
            ranges.push(HashKeyRange { start: HashKey(start), end: HashKey(end) });
        }
        debug_assert_eq!(ranges.len(), shard_count as usize);
        ranges
    }
}

// ---------------------------------------------------------------------------------------------
// Shard ids
// ---------------------------------------------------------------------------------------------

/// A shard's index within its stream; rendered as `shardId-` + 12 zero-padded digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    /// Largest index accepted on input (AWS and kinesalite cap at 2^31 − 1).
    pub const MAX: ShardId = ShardId(i32::MAX as u32);

    /// Parses a shard id the way AWS and kinesalite do: the part after the first `-` (or the
    /// whole string when there is none) must be all digits with a value in `0..=2^31 − 1`.
    /// So `shardId-000000000001`, `shardId-1`, `shard-1` and `1` all give index 1.
    pub fn parse_lenient(text: &str) -> Option<ShardId> {
        let digits = match text.split_once('-') {
            Some((_, rest)) => rest,
            None => text,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut value: u32 = 0;
        for digit in digits.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(digit - b'0')))
                .filter(|&v| v <= ShardId::MAX.0)?;
        }
        Some(ShardId(value))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shardId-{:012}", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers
// ---------------------------------------------------------------------------------------------

/// A record's sequence number in AWS's "version 2" layout (reverse-engineered by kinesalite,
/// checked against real AWS values; reference §3.3).
///
/// The number is a 188-bit value, i.e. 47 hex digits, most significant first:
///
/// ```text
/// hex digit  [0]  [1..10)       [10]        [11..27)   [27..29) [29..38)      [38..46)     [46]
///            2    shard create  shard index seq index  byte1=00 arrival secs  shard index  version 2
///                 secs (36 bit) low nibble  (64 bit,                (36 bit)  (32 bit)
///                                           high bit 0)
/// ```
///
/// Rendered in decimal it is 56 digits for any time after 1970, starting with `4` or `5`.
///
/// Ordering (`Ord`) is the numeric order of the 188-bit value, so within one shard it is the order
/// of `seq_index` (then arrival time), which is how records must be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SequenceNumber {
    /// Creation time of the shard, epoch seconds (≤ [`SequenceNumber::MAX_SECS`]).
    pub shard_create_secs: u64,
    /// Index of the shard within its stream.
    pub shard_index: u32,
    /// Per-shard counter (≤ [`SequenceNumber::MAX_SEQ_INDEX`]).
    pub seq_index: u64,
    /// Arrival time of the record, epoch seconds (≤ [`SequenceNumber::MAX_SECS`]).
    pub arrival_secs: u64,
}

/// A `SequenceNumberForOrdering` as PutRecord reads it (see
/// [`SequenceNumber::parse_for_ordering`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderingSequence {
    /// Layout version: 0, 1 or 2.
    pub version: u8,
    /// Arrival time, epoch seconds (versions 1 and 2 carry one).
    pub arrival_secs: Option<u64>,
}

/// Why a string is not a sequence number this server understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeqError {
    /// Fails the model's pattern `0|([1-9]\d{0,128})`: empty, a non-digit, a leading zero or more
    /// than 129 digits. AWS answers `ValidationException`.
    #[error("sequence number is not a decimal number matching 0|([1-9]\\d{{0,128}})")]
    Malformed,
    /// A decimal number, but not a version-2 sequence number (wrong size, marker digit, version,
    /// reserved byte, or inconsistent shard index). AWS answers `InvalidArgumentException`.
    #[error("not a valid sequence number: {reason}")]
    Unrecognized { reason: &'static str },
}

// Bit layout of the 188-bit value, least significant field first; each offset is derived from the
// field below it. Widths are in bits.
const VERSION_SHIFT: u32 = 0;
const VERSION_BITS: u32 = 4;
const SHARD_INDEX_SHIFT: u32 = VERSION_SHIFT + VERSION_BITS;
const SHARD_INDEX_BITS: u32 = 32;
const ARRIVAL_SHIFT: u32 = SHARD_INDEX_SHIFT + SHARD_INDEX_BITS;
const SECS_BITS: u32 = 36;
const BYTE1_SHIFT: u32 = ARRIVAL_SHIFT + SECS_BITS;
const BYTE1_BITS: u32 = 8;
const SEQ_INDEX_SHIFT: u32 = BYTE1_SHIFT + BYTE1_BITS;
const SEQ_INDEX_BITS: u32 = 64;
const SHARD_NIBBLE_SHIFT: u32 = SEQ_INDEX_SHIFT + SEQ_INDEX_BITS;
const SHARD_NIBBLE_BITS: u32 = 4;
const CREATE_SHIFT: u32 = SHARD_NIBBLE_SHIFT + SHARD_NIBBLE_BITS;
const MARKER_SHIFT: u32 = CREATE_SHIFT + SECS_BITS;
const MARKER_BITS: u32 = 4;
const TOTAL_BITS: u32 = MARKER_SHIFT + MARKER_BITS;
const _: () = assert!(TOTAL_BITS == 188);
const _: () = assert!(TOTAL_BITS <= U192::BITS);

/// Sequence numbers below 2^124 are read as if this bit were set (AWS's version 0).
const V0_FLOOR_BIT: u32 = 124;
/// Version-0 (128-bit) sequence numbers are below 2^129.
const V0_BITS_MAX: u32 = 129;
/// Arrival seconds of a version-1 sequence number: hex digits 13..22 of 47.
const V1_ARRIVAL_SHIFT: u32 = (47 - 22) * 4;

/// Value of the leading hex digit and of the trailing version digit.
const MARKER: u64 = 2;
const VERSION: u64 = 2;
/// Longest decimal the model accepts for a sequence number.
const SEQ_DIGITS_MAX: usize = 129;
/// 2^188 − 1 has 57 decimal digits; anything longer cannot be in the layout.
const SEQ_DIGITS_LAYOUT_MAX: usize = 57;

impl SequenceNumber {
    /// Largest `seq_index` (the high bit is reserved). Also the `seq_index` of a closed shard's
    /// `EndingSequenceNumber`.
    pub const MAX_SEQ_INDEX: u64 = 0x7fff_ffff_ffff_ffff;
    /// Largest time that fits the 9-hex-digit fields (year 4147).
    pub const MAX_SECS: u64 = (1 << SECS_BITS) - 1;
    /// Shard creation times from this one on (epoch seconds, year 2477) make AWS refuse a
    /// sequence number as SequenceNumberForOrdering ("Date too large" in kinesalite).
    pub const CREATE_SECS_LIMIT: u64 = 16_025_175_000;

    /// The position just before the record with `seq_index` of a shard: arrival time 0, which no
    /// record has (none arrives in 1970), so it sorts after every earlier record and before that
    /// one. SubscribeToShard's ContinuationSequenceNumber is such a position, as on AWS: resuming
    /// AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER from it both start at that record, and neither
    /// delivers the last record again.
    pub fn before_record(shard_create_secs: u64, shard_index: u32, seq_index: u64) -> SequenceNumber {
        SequenceNumber { shard_create_secs, shard_index, seq_index, arrival_secs: 0 }
    }

    /// Whether this is a position between records (see [`SequenceNumber::before_record`]).
    pub fn is_between_records(&self) -> bool {
        self.arrival_secs == 0
    }

    /// Whether every field fits the layout; `encode` requires this.
    pub fn is_encodable(&self) -> bool {
        self.shard_create_secs <= Self::MAX_SECS
            && self.arrival_secs <= Self::MAX_SECS
            && self.seq_index <= Self::MAX_SEQ_INDEX
    }

    /// The decimal form sent on the wire (no leading zeros; 56 digits for realistic times).
    ///
    /// # Panics
    /// If a field does not fit the layout (see [`SequenceNumber::is_encodable`]); fields come from
    /// the server's own counters and clock, never from a request.
    pub fn encode(&self) -> String {
        assert!(self.shard_create_secs <= Self::MAX_SECS);
        assert!(self.arrival_secs <= Self::MAX_SECS);
        assert!(self.seq_index <= Self::MAX_SEQ_INDEX);
        let value = self.to_bits();
        let text = value.to_decimal();
        debug_assert_eq!(SequenceNumber::parse(&text), Ok(*self));
        text
    }

    /// Parses a decimal sequence number issued in the version-2 layout.
    #[allow(clippy::expect_used, reason = "the shard index field is 32 bits wide, so it fits a u32")]
    pub fn parse(text: &str) -> Result<SequenceNumber, SeqError> {
        let digits = text.as_bytes();
        if !matches_decimal_pattern(digits, SEQ_DIGITS_MAX) {
            return Err(SeqError::Malformed);
        }
        let too_big = SeqError::Unrecognized { reason: "value is wider than 188 bits" };
        if digits.len() > SEQ_DIGITS_LAYOUT_MAX {
            return Err(too_big);
        }
        let value = U192::from_decimal(digits).ok_or(too_big)?;
        if value.field(TOTAL_BITS, U192::BITS - TOTAL_BITS) != 0 {
            return Err(too_big);
        }
        if value.field(MARKER_SHIFT, MARKER_BITS) != MARKER {
            return Err(SeqError::Unrecognized { reason: "leading hex digit is not 2" });
        }
        if value.field(VERSION_SHIFT, VERSION_BITS) != VERSION {
            return Err(SeqError::Unrecognized { reason: "version is not 2" });
        }
        if value.field(BYTE1_SHIFT, BYTE1_BITS) != 0 {
            return Err(SeqError::Unrecognized { reason: "reserved byte is not zero" });
        }
        let seq_index = value.field(SEQ_INDEX_SHIFT, SEQ_INDEX_BITS);
        if seq_index > Self::MAX_SEQ_INDEX {
            return Err(SeqError::Unrecognized { reason: "sequence index has its high bit set" });
        }
        let shard_index = value.field(SHARD_INDEX_SHIFT, SHARD_INDEX_BITS);
        if value.field(SHARD_NIBBLE_SHIFT, SHARD_NIBBLE_BITS) != shard_index & 0xf {
            return Err(SeqError::Unrecognized { reason: "the two shard index fields disagree" });
        }
        let parsed = SequenceNumber {
            shard_create_secs: value.field(CREATE_SHIFT, SECS_BITS),
            shard_index: u32::try_from(shard_index).expect("field is 32 bits wide"),
            seq_index,
            arrival_secs: value.field(ARRIVAL_SHIFT, SECS_BITS),
        };
        debug_assert!(parsed.is_encodable());
        debug_assert_eq!(parsed.to_bits(), value);
        Ok(parsed)
    }

    fn to_bits(self) -> U192 {
        let mut value = U192::ZERO;
        value.set_field(VERSION_SHIFT, VERSION_BITS, VERSION);
        value.set_field(SHARD_INDEX_SHIFT, SHARD_INDEX_BITS, u64::from(self.shard_index));
        value.set_field(ARRIVAL_SHIFT, SECS_BITS, self.arrival_secs);
        value.set_field(BYTE1_SHIFT, BYTE1_BITS, 0);
        value.set_field(SEQ_INDEX_SHIFT, SEQ_INDEX_BITS, self.seq_index);
        value.set_field(SHARD_NIBBLE_SHIFT, SHARD_NIBBLE_BITS, u64::from(self.shard_index & 0xf));
        value.set_field(CREATE_SHIFT, SECS_BITS, self.shard_create_secs);
        value.set_field(MARKER_SHIFT, MARKER_BITS, MARKER);
        value
    }

    /// Reads a `SequenceNumberForOrdering` the way AWS's PutRecord does (kinesalite's captures
    /// of AWS): more leniently than a sequence number handed to GetShardIterator. Accepted are
    /// the version-2 layout above, the older version-1 layout (47 hex digits ending in 1), and
    /// 128-bit version-0 numbers (anything below 2^129; below 2^124 counts as if 2^124 were
    /// added, so `0` passes). Refused: any other version digit, a sequence index with its high
    /// bit set, and a shard creation time of [`SequenceNumber::CREATE_SECS_LIMIT`] or later (so
    /// the all-`f` value fails). The caller refuses an arrival time in the future.
    pub fn parse_for_ordering(text: &str) -> Result<OrderingSequence, SeqError> {
        let digits = text.as_bytes();
        if !matches_decimal_pattern(digits, SEQ_DIGITS_MAX) {
            return Err(SeqError::Malformed);
        }
        let too_big = SeqError::Unrecognized { reason: "value is wider than 188 bits" };
        if digits.len() > SEQ_DIGITS_LAYOUT_MAX {
            return Err(too_big);
        }
        let mut value = U192::from_decimal(digits).ok_or(too_big)?;
        let date_too_large = SeqError::Unrecognized { reason: "shard creation time is too large" };
        if value.bit_len() <= V0_FLOOR_BIT {
            value.set_field(V0_FLOOR_BIT, 1, 1);
        }
        let bits = value.bit_len();
        if bits <= V0_BITS_MAX {
            // Version 0: the nine hex digits below the leading one are the creation time.
            let hex_digits = bits.div_ceil(4);
            let create_secs = value.field((hex_digits - 10) * 4, SECS_BITS);
            if create_secs >= Self::CREATE_SECS_LIMIT {
                return Err(date_too_large);
            }
            return Ok(OrderingSequence { version: 0, arrival_secs: None });
        }
        // Versions 1 and 2: 47 hex digits, the leading one 2, and more than 2^185 itself.
        let in_range = bits == TOTAL_BITS - 2
            && value.field(MARKER_SHIFT, MARKER_BITS) == MARKER
            && value != U192::ZERO.with_bit(TOTAL_BITS - 3);
        if !in_range {
            return Err(SeqError::Unrecognized { reason: "not in any sequence number layout" });
        }
        match value.field(VERSION_SHIFT, VERSION_BITS) {
            1 => Ok(OrderingSequence {
                version: 1,
                arrival_secs: Some(value.field(V1_ARRIVAL_SHIFT, SECS_BITS)),
            }),
            2 => {
                if value.field(SEQ_INDEX_SHIFT, SEQ_INDEX_BITS) > Self::MAX_SEQ_INDEX {
                    return Err(SeqError::Unrecognized { reason: "sequence index has its high bit set" });
                }
                if value.field(CREATE_SHIFT, SECS_BITS) >= Self::CREATE_SECS_LIMIT {
                    return Err(date_too_large);
                }
                Ok(OrderingSequence { version: 2, arrival_secs: Some(value.field(ARRIVAL_SHIFT, SECS_BITS)) })
            }
            _ => Err(SeqError::Unrecognized { reason: "version is neither 1 nor 2" }),
        }
    }

    /// The fields in the order of their significance in the 188-bit value.
    fn significance_key(&self) -> (u64, u32, u64, u64, u32) {
        (self.shard_create_secs, self.shard_index & 0xf, self.seq_index, self.arrival_secs, self.shard_index)
    }
}

impl Ord for SequenceNumber {
    /// Numeric order of the encoded values. Compared field by field in order of significance
    /// (no big-integer work); for encodable values this is exactly the numeric order, and since
    /// every field takes part it agrees with `Eq` for any value.
    fn cmp(&self, other: &Self) -> Ordering {
        self.significance_key().cmp(&other.significance_key())
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for SequenceNumber {
    type Err = SeqError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SequenceNumber::parse(text)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Whether `digits` matches `0|([1-9]\d{0,max_digits-1})`.
fn matches_decimal_pattern(digits: &[u8], max_digits: usize) -> bool {
    match digits {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        _ => digits.len() <= max_digits && digits.iter().all(u8::is_ascii_digit),
    }
}

/// A 192-bit unsigned integer, just wide enough for a sequence number; limbs least significant
/// first. Only the few operations the codec needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct U192([u64; 3]);

/// 10^19, the largest power of ten in a u64: decimal conversion works in 19-digit chunks.
const DECIMAL_CHUNK: u64 = 10_000_000_000_000_000_000;
const DECIMAL_CHUNK_DIGITS: usize = 19;
/// 2^192 < 10^58, so four 19-digit chunks always suffice.
const DECIMAL_CHUNKS_MAX: usize = 4;

impl U192 {
    const BITS: u32 = 192;
    const ZERO: U192 = U192([0; 3]);

    /// Bits needed to write the value (0 for zero).
    fn bit_len(&self) -> u32 {
        for (i, limb) in self.0.iter().enumerate().rev() {
            if *limb != 0 {
                return i as u32 * 64 + (64 - limb.leading_zeros());
            }
        }
        0
    }

    /// The value with bit `bit` set as well.
    fn with_bit(mut self, bit: u32) -> U192 {
        self.0[(bit / 64) as usize] |= 1 << (bit % 64);
        self
    }

    /// The `width`-bit field starting at bit `shift`.
    fn field(&self, shift: u32, width: u32) -> u64 {
        debug_assert!((1..=64).contains(&width));
        debug_assert!(shift + width <= Self::BITS);
        let limb = (shift / 64) as usize;
        let offset = shift % 64;
        let mut bits = self.0[limb] >> offset;
        if offset != 0 && limb + 1 < self.0.len() {
            bits |= self.0[limb + 1] << (64 - offset);
        }
        if width == 64 {
            bits
        } else {
            bits & ((1 << width) - 1)
        }
    }

    /// ORs `value` into the `width`-bit field starting at bit `shift`.
    fn set_field(&mut self, shift: u32, width: u32, value: u64) {
        debug_assert!((1..=64).contains(&width));
        debug_assert!(shift + width <= Self::BITS);
        debug_assert!(width == 64 || value >> width == 0);
        let limb = (shift / 64) as usize;
        let offset = shift % 64;
        self.0[limb] |= value << offset;
        if offset != 0 && limb + 1 < self.0.len() {
            self.0[limb + 1] |= value >> (64 - offset);
        }
        debug_assert_eq!(self.field(shift, width), value);
    }

    /// `self · factor + addend`, or `None` on overflow.
    fn mul_add(self, factor: u64, addend: u64) -> Option<U192> {
        let mut out = [0u64; 3];
        let mut carry = u128::from(addend);
        for (slot, &limb) in out.iter_mut().zip(self.0.iter()) {
            let wide = u128::from(limb) * u128::from(factor) + carry;
            *slot = wide as u64; // low 64 bits; the rest carries
            carry = wide >> 64;
        }
        (carry == 0).then_some(U192(out))
    }

    /// Divides in place and returns the remainder.
    fn div_rem(&mut self, divisor: u64) -> u64 {
        debug_assert!(divisor != 0);
        let mut remainder: u128 = 0;
        for limb in self.0.iter_mut().rev() {
            let wide = (remainder << 64) | u128::from(*limb);
            *limb = (wide / u128::from(divisor)) as u64; // < 2^64 because remainder < divisor
            remainder = wide % u128::from(divisor);
        }
        remainder as u64
    }

    /// Parses ASCII digits (already validated), or `None` if the value needs more than 192 bits.
    fn from_decimal(digits: &[u8]) -> Option<U192> {
        debug_assert!(digits.iter().all(u8::is_ascii_digit));
        let mut value = U192::ZERO;
        for chunk in digits.chunks(DECIMAL_CHUNK_DIGITS) {
            let mut chunk_value: u64 = 0;
            for &digit in chunk {
                chunk_value = chunk_value * 10 + u64::from(digit - b'0');
            }
            let factor = 10u64.pow(chunk.len() as u32);
            value = value.mul_add(factor, chunk_value)?;
        }
        Some(value)
    }

    fn to_decimal(self) -> String {
        let mut rest = self;
        let mut chunks = [0u64; DECIMAL_CHUNKS_MAX];
        let mut used = 0;
        loop {
            assert!(used < DECIMAL_CHUNKS_MAX);
            chunks[used] = rest.div_rem(DECIMAL_CHUNK);
            used += 1;
            if rest == U192::ZERO {
                break;
            }
        }
        let mut text = String::with_capacity(used * DECIMAL_CHUNK_DIGITS);
        let mut chunks = chunks[..used].iter().rev();
        if let Some(first) = chunks.next() {
            text.push_str(&first.to_string());
        }
        for chunk in chunks {
            text.push_str(&format!("{chunk:019}"));
        }
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Names and ARNs
// ---------------------------------------------------------------------------------------------

/// Prefix of a deserialization error that the request decoder answers as
/// `InvalidArgumentException` (with the rest as its message) rather than as a
/// `SerializationException`: a member that passed the model's pattern but does not parse.
pub const INVALID_ARGUMENT_PREFIX: &str = "InvalidArgumentException: ";

/// Longest stream or consumer name (the model's `max`).
const NAME_CHARS_MAX: usize = 128;

/// Whether `text` is a stream or consumer name: `[a-zA-Z0-9_.-]{1,128}`.
fn is_name(text: &str) -> bool {
    (1..=NAME_CHARS_MAX).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The name, if `text` matches `[a-zA-Z0-9_.-]{1,128}`.
            pub fn parse(text: impl Into<String>) -> Option<$name> {
                let text = text.into();
                is_name(&text).then_some($name(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(text).ok_or_else(|| {
                    serde::de::Error::custom(concat!($what, " must match [a-zA-Z0-9_.-]{1,128}"))
                })
            }
        }
    };
}

name_type!(
    /// A stream's name, `[a-zA-Z0-9_.-]{1,128}`.
    StreamName,
    "StreamName"
);
name_type!(
    /// An enhanced fan-out consumer's name, `[a-zA-Z0-9_.-]{1,128}`.
    ConsumerName,
    "ConsumerName"
);

/// A stream's ARN, `arn:<partition>:kinesis:<region>:<account>:stream/<name>`, parsed once.
/// It keeps the text it was parsed from, so an error message repeats what the client sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamArn {
    text: String,
    /// Byte ranges of region, account and name within `text`.
    region: (usize, usize),
    account: (usize, usize),
    name: usize,
}

impl StreamArn {
    /// The ARN of stream `name` in `region` and `account` (partition `aws`).
    pub fn new(region: &str, account: &str, name: &str) -> StreamArn {
        let text = format!("arn:aws:kinesis:{region}:{account}:stream/{name}");
        let r0 = "arn:aws:kinesis:".len();
        let a0 = r0 + region.len() + 1;
        StreamArn {
            region: (r0, r0 + region.len()),
            account: (a0, a0 + account.len()),
            name: a0 + account.len() + ":stream/".len(),
            text,
        }
    }

    /// Parses `arn:aws*:kinesis:<region>:<account>:stream/<name>` (a name without `/`).
    pub fn parse(text: &str) -> Option<StreamArn> {
        let mut parts = text.splitn(6, ':');
        let (arn_word, partition, service, region, account, resource) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if arn_word != "arn" || !partition.starts_with("aws") || service != "kinesis" {
            return None;
        }
        let name = resource.strip_prefix("stream/")?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        let r0 = arn_word.len() + partition.len() + service.len() + 3;
        let a0 = r0 + region.len() + 1;
        Some(StreamArn {
            text: text.to_string(),
            region: (r0, r0 + region.len()),
            account: (a0, a0 + account.len()),
            name: text.len() - name.len(),
        })
    }

    /// The message of an `InvalidArgumentException` for a StreamARN that does not parse.
    pub fn malformed(text: &str) -> String {
        format!(
            "StreamARN {} is not a stream ARN: expected arn:aws:kinesis:<region>:<account>:stream/<name>.",
            crate::error::echo(text)
        )
    }

    pub fn region(&self) -> &str {
        &self.text[self.region.0..self.region.1]
    }

    pub fn account(&self) -> &str {
        &self.text[self.account.0..self.account.1]
    }

    pub fn name(&self) -> &str {
        &self.text[self.name..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for StreamArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for StreamArn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for StreamArn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StreamArn, D::Error> {
        let text = String::deserialize(d)?;
        StreamArn::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{INVALID_ARGUMENT_PREFIX}{}", StreamArn::malformed(&text)))
        })
    }
}

/// An enhanced fan-out consumer's ARN, `<stream ARN>/consumer/<name>:<creation epoch seconds>`,
/// parsed once; it keeps the text it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerArn {
    text: String,
    stream: StreamArn,
    name: (usize, usize),
    created_secs: i64,
}

impl ConsumerArn {
    /// The ARN AWS gives consumer `name` of `stream`, registered at `created_ms`.
    pub fn new(stream: &StreamArn, name: &str, created_ms: i64) -> ConsumerArn {
        let n0 = stream.text.len() + "/consumer/".len();
        ConsumerArn {
            text: format!("{stream}/consumer/{name}:{}", created_ms.div_euclid(1000)),
            stream: stream.clone(),
            name: (n0, n0 + name.len()),
            created_secs: created_ms.div_euclid(1000),
        }
    }

    pub fn parse(text: &str) -> Option<ConsumerArn> {
        let (stream, rest) = text.split_once("/consumer/")?;
        let (name, secs) = rest.rsplit_once(':')?;
        let stream = StreamArn::parse(stream)?;
        let n0 = stream.text.len() + "/consumer/".len();
        Some(ConsumerArn {
            text: text.to_string(),
            name: (n0, n0 + name.len()),
            created_secs: secs.parse().ok()?,
            stream,
        })
    }

    /// The message of an `InvalidArgumentException` for a ConsumerARN that does not parse.
    pub fn malformed(text: &str) -> String {
        format!(
            "ConsumerARN {} is not a consumer ARN: expected <stream ARN>/consumer/<name>:<creation epoch seconds>.",
            crate::error::echo(text)
        )
    }

    pub fn stream(&self) -> &StreamArn {
        &self.stream
    }

    pub fn name(&self) -> &str {
        &self.text[self.name.0..self.name.1]
    }

    pub fn created_secs(&self) -> i64 {
        self.created_secs
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ConsumerArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for ConsumerArn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for ConsumerArn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ConsumerArn, D::Error> {
        let text = String::deserialize(d)?;
        ConsumerArn::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{INVALID_ARGUMENT_PREFIX}{}", ConsumerArn::malformed(&text)))
        })
    }
}

#[cfg(test)]
mod arn_tests {
    use super::*;

    #[test]
    fn stream_arns_parse_into_their_parts_and_keep_their_text() {
        let a = StreamArn::parse("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/orders").unwrap();
        assert_eq!((a.region(), a.account(), a.name()), ("cn-north-1", "123456789012", "orders"));
        assert_eq!(a.to_string(), "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/orders");
        let b = StreamArn::new("us-east-1", "000000000000", "s");
        assert_eq!(b.as_str(), "arn:aws:kinesis:us-east-1:000000000000:stream/s");
        assert_eq!(StreamArn::parse(b.as_str()).unwrap(), b);
        assert_eq!((b.region(), b.account(), b.name()), ("us-east-1", "000000000000", "s"));
        for bad in [
            "",
            "arn:aws:kinesis:us-east-1:000000000000:stream/",
            "arn:aws:kinesis:us-east-1:000000000000:stream/a/b",
            "arn:aws:s3:us-east-1:000000000000:stream/a",
            "arn:aws:kinesis:us-east-1:000000000000:channel/a",
            "nra:aws:kinesis:us-east-1:000000000000:stream/a",
        ] {
            assert!(StreamArn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn consumer_arns_parse_into_their_parts_and_keep_their_text() {
        let s = StreamArn::new("us-east-1", "000000000000", "s");
        let c = ConsumerArn::new(&s, "billing", 1_700_000_000_999);
        assert_eq!(c.as_str(), "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/billing:1700000000");
        let p = ConsumerArn::parse(c.as_str()).unwrap();
        assert_eq!(p, c);
        assert_eq!((p.stream(), p.name(), p.created_secs()), (&s, "billing", 1_700_000_000));
        assert!(ConsumerArn::parse("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/x").is_none());
        assert!(ConsumerArn::parse("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/x:y").is_none());
    }

    #[test]
    fn names_follow_the_model_pattern() {
        assert!(StreamName::parse("a.b-c_D9").is_some());
        assert!(StreamName::parse("").is_none());
        assert!(StreamName::parse("a b").is_none());
        assert!(StreamName::parse("x".repeat(129)).is_none());
        assert!(ConsumerName::parse("x".repeat(128)).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_POW_127: u128 = 170_141_183_460_469_231_731_687_303_715_884_105_728;

    #[test]
    fn hash_key_parses_bounds() {
        assert_eq!(HashKey::parse("0"), Ok(HashKey(0)));
        assert_eq!(HashKey::parse("340282366920938463463374607431768211455"), Ok(HashKey::MAX));
        assert_eq!(HashKey::parse("340282366920938463463374607431768211456"), Err(HashKeyError::OutOfRange));
        assert_eq!(HashKey::parse("999999999999999999999999999999999999999"), Err(HashKeyError::OutOfRange));
    }

    #[test]
    fn hash_key_rejects_pattern_violations() {
        for text in
            ["", "-1", "+1", "01", "00", "1 ", " 1", "1e3", "１", "3402823669209384634633746074317682114550"]
        {
            assert_eq!(HashKey::parse(text), Err(HashKeyError::Malformed), "{text:?}");
        }
    }

    #[test]
    fn hash_key_displays_decimal() {
        assert_eq!(HashKey::MAX.to_string(), "340282366920938463463374607431768211455");
        assert_eq!(HashKey(0).to_string(), "0");
    }

    #[test]
    fn partition_key_hash_is_big_endian_md5() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(HashKey::from_partition_key(""), HashKey(0xd41d8cd98f00b204e9800998ecf8427e));
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(HashKey::from_partition_key("a"), HashKey(0x0cc175b9c0f1b6a831c399e269772661));
    }

    #[test]
    fn even_split_matches_aws() {
        assert_eq!(HashKeyRange::even_split(1), vec![HashKeyRange::FULL]);
        let two = HashKeyRange::even_split(2);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].start, HashKey(0));
        assert_eq!(two[0].end, HashKey(TWO_POW_127 - 1));
        assert_eq!(two[1].start.to_string(), "170141183460469231731687303715884105728");
        assert_eq!(two[1].end, HashKey::MAX);
        // 3 does not divide 2^128: the last shard absorbs the remainder.
        let three = HashKeyRange::even_split(3);
        assert_eq!(three[1].start, HashKey(u128::MAX / 3));
        assert_eq!(three[2].end, HashKey::MAX);
        assert!(HashKeyRange::even_split(0).is_empty());
    }

    #[test]
    fn range_contains_is_inclusive() {
        let range = HashKeyRange::new(HashKey(10), HashKey(20)).unwrap();
        assert!(!range.contains(HashKey(9)));
        assert!(range.contains(HashKey(10)));
        assert!(range.contains(HashKey(20)));
        assert!(!range.contains(HashKey(21)));
        assert_eq!(HashKeyRange::new(HashKey(2), HashKey(1)), None);
    }

    #[test]
    fn shard_id_display_and_lenient_parse() {
        assert_eq!(ShardId(0).to_string(), "shardId-000000000000");
        assert_eq!(ShardId(12345).to_string(), "shardId-000000012345");
        for text in ["shardId-000000000001", "shardId-1", "shard-1", "1", "x-01"] {
            assert_eq!(ShardId::parse_lenient(text), Some(ShardId(1)), "{text}");
        }
        assert_eq!(ShardId::parse_lenient("shardId-2147483647"), Some(ShardId::MAX));
        for text in [
            "",
            "shardId-",
            "shardId-2147483648",
            "shardId-99999999999999999999",
            "shardId-1-2",
            "shardId--1",
            "shardId-+1",
            "shardId- 1",
            "shardId",
        ] {
            assert_eq!(ShardId::parse_lenient(text), None, "{text}");
        }
    }

    #[test]
    fn sequence_number_vector_2023() {
        let text = "49647060812288014558888668248263847763900017820167045122";
        let seq = SequenceNumber::parse(text).unwrap();
        assert_eq!(
            seq,
            SequenceNumber {
                shard_create_secs: 1_701_746_677, // 2023-12-05 03:24:37 UTC
                shard_index: 0,
                seq_index: 26054,
                arrival_secs: 1_701_760_152, // 2023-12-05 07:09:12 UTC
            }
        );
        assert_eq!(seq.encode(), text);
    }

    #[test]
    fn sequence_number_vector_2022() {
        let text = "49628566489653659107048838082246518393102916603510521906";
        let seq = SequenceNumber::parse(text).unwrap();
        println!("{text} decodes to {seq:?}");
        assert_eq!(
            seq,
            SequenceNumber {
                shard_create_secs: 1_649_914_545, // 2022-04-14 05:35:45 UTC
                shard_index: 3,
                seq_index: 6_071_978,
                arrival_secs: 1_649_930_048, // 2022-04-14 09:54:08 UTC
            }
        );
        // 2022-04-14 00:00:00 UTC and 2022-04-15 00:00:00 UTC.
        let day = 1_649_894_400..1_649_980_800;
        assert!(seq.arrival_secs <= 1_649_930_049, "arrival not after the record timestamp");
        assert!(day.contains(&seq.arrival_secs));
        assert!(seq.shard_create_secs <= seq.arrival_secs);
        assert!(seq.shard_create_secs > 1_600_000_000);
        assert_eq!(seq.encode(), text);
    }

    #[test]
    fn sequence_number_shape() {
        let start = SequenceNumber { shard_create_secs: 0, shard_index: 0, seq_index: 0, arrival_secs: 0 };
        // 2·16^46 + 2
        assert_eq!(start.encode(), "49039857307708443467467104868809893875799651909875269634");
        let end = SequenceNumber {
            shard_create_secs: 1_700_000_000,
            shard_index: 0xffff_ffff,
            seq_index: SequenceNumber::MAX_SEQ_INDEX,
            arrival_secs: SequenceNumber::MAX_SECS,
        };
        let text = end.encode();
        assert_eq!(text.len(), 56);
        assert_eq!(SequenceNumber::parse(&text), Ok(end));
    }

    #[test]
    fn sequence_number_rejects() {
        let good = "49647060812288014558888668248263847763900017820167045122";
        for text in ["", "0x1", "049647060812288014558888668248263847763900017820167045122"] {
            assert_eq!(SequenceNumber::parse(text), Err(SeqError::Malformed), "{text}");
        }
        assert_eq!(SequenceNumber::parse(&"9".repeat(130)), Err(SeqError::Malformed));
        let mut unrecognized = vec![
            "0".to_string(),
            "1".to_string(),
            "9".repeat(129),
            "9".repeat(58),
            // version digit 3 instead of 2
            "49647060812288014558888668248263847763900017820167045123".to_string(),
            // version 1 layout (leading hex digit 1)
            "19647060812288014558888668248263847763900017820167045122".to_string(),
        ];
        // Leading hex digit 3: 3·16^46 + 2.
        let mut bits = U192::ZERO;
        bits.set_field(MARKER_SHIFT, MARKER_BITS, 3);
        bits.set_field(VERSION_SHIFT, VERSION_BITS, 2);
        unrecognized.push(bits.to_decimal());
        // Reserved byte set.
        let mut bits = SequenceNumber::parse(good).unwrap().to_bits();
        bits.set_field(BYTE1_SHIFT, BYTE1_BITS, 1);
        unrecognized.push(bits.to_decimal());
        // High bit of the sequence index set.
        let mut bits = SequenceNumber::parse(good).unwrap().to_bits();
        bits.set_field(SEQ_INDEX_SHIFT + 63, 1, 1);
        unrecognized.push(bits.to_decimal());
        // Shard nibble disagrees with the shard index.
        let mut bits = SequenceNumber::parse(good).unwrap().to_bits();
        bits.set_field(SHARD_NIBBLE_SHIFT, SHARD_NIBBLE_BITS, 1);
        unrecognized.push(bits.to_decimal());
        for text in unrecognized {
            assert!(matches!(SequenceNumber::parse(&text), Err(SeqError::Unrecognized { .. })), "{text}");
        }
    }

    /// Hex digits to the decimal text AWS takes.
    fn from_hex(hex: &str) -> String {
        let mut v = U192::ZERO;
        for c in hex.chars() {
            v = v.mul_add(16, u64::from(c.to_digit(16).unwrap())).unwrap();
        }
        v.to_decimal()
    }

    #[test]
    fn ordering_sequence_numbers_as_aws_reads_them() {
        // kinesalite's captures of AWS's PutRecord: accepted...
        for (hex, version) in [
            ("20000000000000000000000000000000000000000000002", 2),
            ("20000000000000000000000000000000000000000000001", 1),
            ("20000000000000000000000000000000000000800000002", 2),
        ] {
            assert_eq!(
                SequenceNumber::parse_for_ordering(&from_hex(hex)).map(|o| o.version),
                Ok(version),
                "{hex}"
            );
        }
        assert_eq!(SequenceNumber::parse_for_ordering("0").map(|o| o.version), Ok(0));
        let real = "49647060812288014558888668248263847763900017820167045122";
        let arrival = SequenceNumber::parse(real).unwrap().arrival_secs;
        assert_eq!(
            SequenceNumber::parse_for_ordering(real),
            Ok(OrderingSequence { version: 2, arrival_secs: Some(arrival) })
        );
        // ... and refused.
        for hex in [
            "20000000000000000000000000000000000000000000000",
            "20000000000000000000000000000000000000000000004",
            "20000000000000000000000000000000000000000000003",
            "30000000000000000000000000000000000000000000001",
            "1ffffffffff7fffffffffffffff000000000007fffffff2",
            "20000000000800000000000000000000000000000000002",
            "13bb2cc3d80000000000000000000000",
            "2ffffffffff7fffffffffffffff000000000007fffffff2",
        ] {
            assert!(
                matches!(
                    SequenceNumber::parse_for_ordering(&from_hex(hex)),
                    Err(SeqError::Unrecognized { .. })
                ),
                "{hex}"
            );
        }
        assert_eq!(SequenceNumber::parse_for_ordering("01"), Err(SeqError::Malformed));
        // A version-1 number carries its arrival time in hex digits 13..22.
        let v1 = from_hex("200000000000000abcdef00000000000000000000000001");
        assert_eq!(SequenceNumber::parse_for_ordering(&v1).unwrap().arrival_secs, Some(0xabc_def0));
    }

    #[test]
    fn sequence_number_order_follows_fields() {
        let base = SequenceNumber {
            shard_create_secs: 1_701_746_677,
            shard_index: 7,
            seq_index: 10,
            arrival_secs: 1_701_760_152,
        };
        let later = SequenceNumber { seq_index: 11, arrival_secs: base.arrival_secs - 5, ..base };
        assert!(base < later);
        assert!(base.encode() < later.encode());
    }

    #[test]
    fn u192_decimal_round_trip_at_the_edges() {
        let max = U192([u64::MAX; 3]);
        let text = max.to_decimal();
        assert_eq!(text, "6277101735386680763835789423207666416102355444464034512895");
        assert_eq!(U192::from_decimal(text.as_bytes()), Some(max));
        assert_eq!(U192::from_decimal(b"6277101735386680763835789423207666416102355444464034512896"), None);
        assert_eq!(U192::ZERO.to_decimal(), "0");
        assert_eq!(U192::from_decimal(b"0"), Some(U192::ZERO));
    }
}
