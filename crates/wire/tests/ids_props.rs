//! Property tests for the identifier and token codecs.
//!
//! They pin the invariants the service relies on: sequence numbers round-trip and sort numerically
//! (a lexical sort of 56-digit strings would break as soon as lengths differ), `even_split` tiles
//! the whole hash key space so every record has exactly one shard, and a sealed token that was
//! changed in any single character is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use kinesin_wire::ids::{HashKey, HashKeyRange, SequenceNumber, ShardId};
use kinesin_wire::token::{
    seal, unseal, PageToken, ShardIteratorToken, TokenError, TokenKey, TokenKind, MAX_PAGE_TOKEN_DATA_BYTES,
    MAX_PAYLOAD_BYTES, MAX_TOKEN_CHARS,
};
use proptest::prelude::*;
use std::cmp::Ordering;

/// Numeric order of two canonical (no leading zero) decimal strings.
fn decimal_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn any_seq() -> impl Strategy<Value = SequenceNumber> {
    (
        0..=SequenceNumber::MAX_SECS,
        any::<u32>(),
        0..=SequenceNumber::MAX_SEQ_INDEX,
        0..=SequenceNumber::MAX_SECS,
    )
        .prop_map(|(shard_create_secs, shard_index, seq_index, arrival_secs)| SequenceNumber {
            shard_create_secs,
            shard_index,
            seq_index,
            arrival_secs,
        })
}

/// Times between 2001 and 2100, as a real server would write.
fn realistic_seq() -> impl Strategy<Value = SequenceNumber> {
    (
        1_000_000_000u64..4_102_444_800,
        0u32..=ShardId::MAX.0,
        0..=SequenceNumber::MAX_SEQ_INDEX,
        1_000_000_000u64..4_102_444_800,
    )
        .prop_map(|(shard_create_secs, shard_index, seq_index, arrival_secs)| SequenceNumber {
            shard_create_secs,
            shard_index,
            seq_index,
            arrival_secs,
        })
}

fn any_iterator() -> impl Strategy<Value = ShardIteratorToken> {
    (any::<u64>(), any::<u32>(), any::<u64>(), any::<i64>()).prop_map(
        |(stream_incarnation, shard_index, position, issued_ms)| ShardIteratorToken {
            stream_incarnation,
            shard_index,
            position,
            issued_ms,
        },
    )
}

fn any_page() -> impl Strategy<Value = PageToken> {
    (any::<u64>(), "\\PC{0,80}", any::<i64>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(
        |(stream_incarnation, after, issued_ms, extra)| PageToken {
            stream_incarnation,
            after,
            issued_ms,
            extra,
        },
    )
}

/// floor(2^128 / n) for n ≥ 2, computed differently from the code under test:
/// 2^128 = 2·(q·n + r) with q, r from 2^127, so the floor is 2q + floor(2r / n).
fn floor_two_pow_128_over(n: u32) -> u128 {
    let n = u128::from(n);
    let half = 1u128 << 127;
    2 * (half / n) + 2 * (half % n) / n
}

/// Replaces the character at `index % len` with a different one from a pool of base64 and
/// non-base64 characters.
fn flip_char(token: &str, index: usize, pick: usize) -> String {
    const POOL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .";
    let bytes = token.as_bytes();
    let index = index % bytes.len();
    let mut replacement = POOL[pick % POOL.len()];
    if replacement == bytes[index] {
        replacement = POOL[(pick + 1) % POOL.len()];
    }
    let mut out = bytes.to_vec();
    out[index] = replacement;
    String::from_utf8(out).expect("ASCII in, ASCII out")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn seq_round_trips(seq in any_seq()) {
        let text = seq.encode();
        prop_assert!(!text.starts_with('0'));
        prop_assert_eq!(SequenceNumber::parse(&text), Ok(seq));
        prop_assert_eq!(text.parse::<SequenceNumber>(), Ok(seq));
        prop_assert_eq!(seq.to_string(), text);
    }

    #[test]
    fn realistic_seq_is_56_digits(seq in realistic_seq()) {
        let text = seq.encode();
        prop_assert_eq!(text.len(), 56);
        prop_assert!(text.starts_with('4') || text.starts_with('5'), "{}", text);
    }

    #[test]
    fn seq_order_is_numeric(a in any_seq(), b in any_seq()) {
        prop_assert_eq!(a.cmp(&b), decimal_cmp(&a.encode(), &b.encode()));
        prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
    }

    #[test]
    fn seq_order_within_a_shard_is_seq_index_order(
        base in realistic_seq(),
        seq_a in 0..=SequenceNumber::MAX_SEQ_INDEX,
        seq_b in 0..=SequenceNumber::MAX_SEQ_INDEX,
        arrival_a in 0..=SequenceNumber::MAX_SECS,
        arrival_b in 0..=SequenceNumber::MAX_SECS,
    ) {
        prop_assume!(seq_a != seq_b);
        let a = SequenceNumber { seq_index: seq_a, arrival_secs: arrival_a, ..base };
        let b = SequenceNumber { seq_index: seq_b, arrival_secs: arrival_b, ..base };
        prop_assert_eq!(a.cmp(&b), seq_a.cmp(&seq_b));
        prop_assert_eq!(decimal_cmp(&a.encode(), &b.encode()), seq_a.cmp(&seq_b));
    }

    #[test]
    fn seq_parse_never_panics(text in "[0-9]{0,130}|\\PC{0,60}") {
        if let Ok(seq) = SequenceNumber::parse(&text) {
            prop_assert_eq!(seq.encode(), text);
        }
    }

    #[test]
    fn hash_key_round_trips(value in any::<u128>()) {
        let key = HashKey(value);
        prop_assert_eq!(HashKey::parse(&key.to_string()), Ok(key));
        prop_assert_eq!(key.to_string(), value.to_string());
    }

    #[test]
    fn even_split_tiles_the_key_space(n in 1u32..=2000) {
        let ranges = HashKeyRange::even_split(n);
        prop_assert_eq!(ranges.len(), n as usize);
        prop_assert_eq!(ranges[0].start, HashKey::MIN);
        prop_assert_eq!(ranges[ranges.len() - 1].end, HashKey::MAX);
        for (i, range) in ranges.iter().enumerate() {
            prop_assert!(range.start <= range.end);
            if n > 1 {
                prop_assert_eq!(range.start.0, floor_two_pow_128_over(n) * i as u128);
            }
        }
        for pair in ranges.windows(2) {
            // No gap, no overlap: each range starts right after the previous one ends.
            prop_assert_eq!(pair[0].end.0.checked_add(1), Some(pair[1].start.0));
        }
    }

    #[test]
    fn every_partition_key_lands_in_exactly_one_range(
        n in 1u32..=2000,
        partition_key in "\\PC{1,256}",
    ) {
        let key = HashKey::from_partition_key(&partition_key);
        let ranges = HashKeyRange::even_split(n);
        prop_assert_eq!(ranges.iter().filter(|r| r.contains(key)).count(), 1);
    }

    #[test]
    fn shard_id_display_parses_back(index in 0u32..=ShardId::MAX.0) {
        let id = ShardId(index);
        prop_assert_eq!(ShardId::parse_lenient(&id.to_string()), Some(id));
        prop_assert_eq!(ShardId::parse_lenient(&index.to_string()), Some(id));
    }

    #[test]
    fn iterator_round_trips(token in any_iterator(), key in any::<[u8; 32]>()) {
        let key = TokenKey::from_bytes(key);
        let sealed = token.seal(&key);
        prop_assert!(sealed.starts_with("AAAAAAAAAAE"));
        prop_assert!(sealed.len() <= MAX_TOKEN_CHARS);
        prop_assert_eq!(ShardIteratorToken::open(&sealed, &key), Ok(token));
        prop_assert_eq!(PageToken::open(&sealed, &key), Err(TokenError::Invalid));
    }

    #[test]
    fn page_token_round_trips(token in any_page(), key in any::<[u8; 32]>()) {
        prop_assume!(token.after.len() + token.extra.len() <= MAX_PAGE_TOKEN_DATA_BYTES);
        let key = TokenKey::from_bytes(key);
        let sealed = token.seal(&key).expect("within the limit");
        prop_assert!(sealed.len() <= MAX_TOKEN_CHARS);
        prop_assert_eq!(PageToken::open(&sealed, &key), Ok(token));
        prop_assert_eq!(ShardIteratorToken::open(&sealed, &key), Err(TokenError::Invalid));
    }

    #[test]
    fn flipped_iterator_char_is_rejected(
        token in any_iterator(),
        index in any::<usize>(),
        pick in any::<usize>(),
    ) {
        let key = TokenKey::from_bytes([5; 32]);
        let sealed = token.seal(&key);
        let flipped = flip_char(&sealed, index, pick);
        prop_assert_ne!(&flipped, &sealed);
        prop_assert_eq!(ShardIteratorToken::open(&flipped, &key), Err(TokenError::Invalid));
    }

    #[test]
    fn flipped_page_char_is_rejected(
        token in any_page(),
        index in any::<usize>(),
        pick in any::<usize>(),
    ) {
        prop_assume!(token.after.len() + token.extra.len() <= MAX_PAGE_TOKEN_DATA_BYTES);
        let key = TokenKey::from_bytes([6; 32]);
        let sealed = token.seal(&key).expect("within the limit");
        let flipped = flip_char(&sealed, index, pick);
        prop_assert_eq!(PageToken::open(&flipped, &key), Err(TokenError::Invalid));
    }

    #[test]
    fn generic_seal_round_trips_and_rejects_bit_flips(
        payload in prop::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD_BYTES),
        bit in any::<usize>(),
    ) {
        let key = TokenKey::from_bytes([4; 32]);
        let sealed = seal(&key, TokenKind::PageToken, &payload).unwrap();
        prop_assert!(sealed.len() <= MAX_TOKEN_CHARS);
        prop_assert_eq!(unseal(&key, TokenKind::PageToken, &sealed), Ok(payload.clone()));
        prop_assert_eq!(
            unseal(&key, TokenKind::ShardIterator, &sealed),
            Err(TokenError::Invalid)
        );
        // Flip one bit of the sealed bytes and encode properly: only the MAC can catch it.
        use base64::Engine;
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(&sealed).unwrap();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let tampered = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert_eq!(unseal(&key, TokenKind::PageToken, &tampered), Err(TokenError::Invalid));
    }
}

#[test]
fn every_flip_of_one_iterator_is_rejected() {
    // Exhaustive over positions and the whole base64 alphabet for one token.
    let key = TokenKey::from_bytes([3; 32]);
    let sealed =
        ShardIteratorToken { stream_incarnation: 1, shard_index: 2, position: 3, issued_ms: 4 }.seal(&key);
    for index in 0..sealed.len() {
        for pick in 0..70 {
            let flipped = flip_char(&sealed, index, pick);
            assert_eq!(ShardIteratorToken::open(&flipped, &key), Err(TokenError::Invalid), "{flipped}");
        }
    }
}
