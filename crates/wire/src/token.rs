//! Tamper-evident opaque tokens: shard iterators and pagination `NextToken`s.
//!
//! A token is standard base64 (with padding) of
//!
//! ```text
//! offset  size  content
//! 0       8     00 00 00 00 00 00 00 01   (so every token starts "AAAAAAAAAAE", like AWS's iterators)
//! 8       1     format version (1)
//! 9       1     kind: 1 = shard iterator, 2 = page token
//! 10      n     payload (layout per kind, little-endian integers)
//! 10+n    16    HMAC-SHA256(key, bytes 0..10+n), first 16 bytes
//! ```
//!
//! The MAC covers the kind byte, so a token of one kind never opens as another. Tokens are at most
//! [`MAX_TOKEN_CHARS`] characters (the model's limit for `ShardIterator`). Anything that does not
//! verify is [`TokenError::Invalid`]; expiry is the caller's business (tokens carry `issued_ms`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The secret that seals tokens. Random per deployment (or per process, if tokens need not
/// survive a restart).
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    #[allow(clippy::expect_used, reason = "HMAC-SHA256 takes keys of any length: new_from_slice cannot fail")]
    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length")
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// What a token is for; part of the MAC so kinds cannot be swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    ShardIterator,
    PageToken,
}

impl TokenKind {
    const fn tag(self) -> u8 {
        match self {
            TokenKind::ShardIterator => 1,
            TokenKind::PageToken => 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token this server sealed with this key for this kind: garbage, truncated,
    /// re-encoded, tampered with, or of another kind. AWS: `InvalidArgumentException`.
    #[error("invalid token")]
    Invalid,
    /// Sealing refused: the payload would make the token longer than [`MAX_TOKEN_CHARS`].
    #[error("token payload of {payload_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge { payload_bytes: usize, max_bytes: usize },
}

const PREFIX: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
const PREFIX_OFFSET: usize = 0;
const VERSION_OFFSET: usize = PREFIX_OFFSET + PREFIX.len();
const KIND_OFFSET: usize = VERSION_OFFSET + 1;
const PAYLOAD_OFFSET: usize = KIND_OFFSET + 1;
const HEADER_BYTES: usize = PAYLOAD_OFFSET;
/// Format version byte; below 0x40 so the 11th base64 character is `E`.
const FORMAT_VERSION: u8 = 1;
const _: () = assert!(FORMAT_VERSION < 0x40);
const MAC_BYTES: usize = 16;

/// Longest token produced or accepted, in characters (model limit of `ShardIterator`).
pub const MAX_TOKEN_CHARS: usize = 512;
/// Longest sealed byte string that encodes within [`MAX_TOKEN_CHARS`] (base64: 4 chars per 3 bytes).
const MAX_SEALED_BYTES: usize = MAX_TOKEN_CHARS / 4 * 3;
/// Largest payload [`seal`] accepts.
pub const MAX_PAYLOAD_BYTES: usize = MAX_SEALED_BYTES - HEADER_BYTES - MAC_BYTES;

/// Seals `payload` into an opaque token of the given kind.
pub fn seal(key: &TokenKey, kind: TokenKind, payload: &[u8]) -> Result<String, TokenError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(TokenError::TooLarge { payload_bytes: payload.len(), max_bytes: MAX_PAYLOAD_BYTES });
    }
    let mut sealed = Vec::with_capacity(HEADER_BYTES + payload.len() + MAC_BYTES);
    sealed.extend_from_slice(&PREFIX);
    sealed.push(FORMAT_VERSION);
    sealed.push(kind.tag());
    sealed.extend_from_slice(payload);
    let mut mac = key.mac();
    mac.update(&sealed);
    let tag = mac.finalize().into_bytes();
    sealed.extend_from_slice(&tag[..MAC_BYTES]);
    assert!(sealed.len() <= MAX_SEALED_BYTES);
    let token = STANDARD.encode(&sealed);
    assert!(token.len() <= MAX_TOKEN_CHARS);
    Ok(token)
}

/// Opens a token sealed by [`seal`] with the same key and kind, returning its payload.
pub fn unseal(key: &TokenKey, kind: TokenKind, token: &str) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Invalid);
    }
    // The STANDARD engine insists on canonical padding and zero trailing bits, so each byte string
    // has exactly one accepted encoding: a re-encoded token cannot sneak past the MAC check.
    let mut sealed = STANDARD.decode(token).map_err(|_| TokenError::Invalid)?;
    if sealed.len() < HEADER_BYTES + MAC_BYTES
        || sealed[PREFIX_OFFSET..VERSION_OFFSET] != PREFIX
        || sealed[VERSION_OFFSET] != FORMAT_VERSION
        || sealed[KIND_OFFSET] != kind.tag()
    {
        return Err(TokenError::Invalid);
    }
    let mac_offset = sealed.len() - MAC_BYTES;
    let mut mac = key.mac();
    mac.update(&sealed[..mac_offset]);
    mac.verify_truncated_left(&sealed[mac_offset..]).map_err(|_| TokenError::Invalid)?;
    sealed.truncate(mac_offset);
    sealed.drain(..PAYLOAD_OFFSET);
    Ok(sealed)
}

// ---------------------------------------------------------------------------------------------
// Shard iterators
// ---------------------------------------------------------------------------------------------

/// What a shard iterator says: where to read next, in which incarnation of which stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardIteratorToken {
    /// Identifies one incarnation of a stream: a deleted and re-created stream gets a new one,
    /// so an old iterator never reads the new stream. The caller compares it.
    pub stream_incarnation: u64,
    pub shard_index: u32,
    /// The next sequence index to read.
    pub position: u64,
    /// When the iterator was issued, epoch milliseconds (iterators expire after 300 s).
    pub issued_ms: i64,
}

// Payload layout, little-endian.
const ITER_INCARNATION_OFFSET: usize = 0;
const ITER_SHARD_OFFSET: usize = ITER_INCARNATION_OFFSET + 8;
const ITER_POSITION_OFFSET: usize = ITER_SHARD_OFFSET + 4;
const ITER_ISSUED_OFFSET: usize = ITER_POSITION_OFFSET + 8;
const ITER_PAYLOAD_BYTES: usize = ITER_ISSUED_OFFSET + 8;
const _: () = assert!(ITER_PAYLOAD_BYTES <= MAX_PAYLOAD_BYTES);

impl ShardIteratorToken {
    #[allow(
        clippy::expect_used,
        reason = "a shard iterator payload is fixed-size and within the sealing limit"
    )]
    pub fn seal(&self, key: &TokenKey) -> String {
        let mut payload = [0u8; ITER_PAYLOAD_BYTES];
        payload[ITER_INCARNATION_OFFSET..ITER_SHARD_OFFSET]
            .copy_from_slice(&self.stream_incarnation.to_le_bytes());
        payload[ITER_SHARD_OFFSET..ITER_POSITION_OFFSET].copy_from_slice(&self.shard_index.to_le_bytes());
        payload[ITER_POSITION_OFFSET..ITER_ISSUED_OFFSET].copy_from_slice(&self.position.to_le_bytes());
        payload[ITER_ISSUED_OFFSET..ITER_PAYLOAD_BYTES].copy_from_slice(&self.issued_ms.to_le_bytes());
        seal(key, TokenKind::ShardIterator, &payload)
            .expect("a shard iterator payload is fixed-size and within the limit")
    }

    /// Opens an iterator. One pair of surrounding double quotes is ignored, as AWS does: shell
    /// scripts often pass the CLI's JSON-quoted `"ShardIterator"` value on unchanged.
    pub fn open(token: &str, key: &TokenKey) -> Result<ShardIteratorToken, TokenError> {
        let token = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(token);
        let payload = unseal(key, TokenKind::ShardIterator, token)?;
        let payload: [u8; ITER_PAYLOAD_BYTES] = payload.try_into().map_err(|_| TokenError::Invalid)?;
        Ok(ShardIteratorToken {
            stream_incarnation: u64::from_le_bytes(le_field(&payload, ITER_INCARNATION_OFFSET)),
            shard_index: u32::from_le_bytes(le_field(&payload, ITER_SHARD_OFFSET)),
            position: u64::from_le_bytes(le_field(&payload, ITER_POSITION_OFFSET)),
            issued_ms: i64::from_le_bytes(le_field(&payload, ITER_ISSUED_OFFSET)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Page tokens
// ---------------------------------------------------------------------------------------------

/// A `NextToken` for ListShards / ListStreams / ListStreamConsumers: resume after `after`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageToken {
    /// The stream incarnation the listing belongs to (0 for account-wide listings).
    pub stream_incarnation: u64,
    /// The last item returned (a shard id, stream name, consumer name, ...).
    pub after: String,
    /// When the token was issued, epoch milliseconds.
    pub issued_ms: i64,
    /// Anything else the listing needs to resume (e.g. a filter), opaque to this crate.
    pub extra: Vec<u8>,
}

// Payload layout, little-endian: incarnation u64, issued_ms i64, after_len u16, after bytes,
// extra_len u16, extra bytes.
const PAGE_INCARNATION_OFFSET: usize = 0;
const PAGE_ISSUED_OFFSET: usize = PAGE_INCARNATION_OFFSET + 8;
const PAGE_AFTER_LEN_OFFSET: usize = PAGE_ISSUED_OFFSET + 8;
const PAGE_AFTER_OFFSET: usize = PAGE_AFTER_LEN_OFFSET + 2;
const PAGE_FIXED_BYTES: usize = PAGE_AFTER_OFFSET + 2;
/// Largest `after.len() + extra.len()` a page token can carry.
pub const MAX_PAGE_TOKEN_DATA_BYTES: usize = MAX_PAYLOAD_BYTES - PAGE_FIXED_BYTES;
const _: () = assert!(MAX_PAYLOAD_BYTES <= u16::MAX as usize);

impl PageToken {
    /// Fails with [`TokenError::TooLarge`] when `after` and `extra` together exceed
    /// [`MAX_PAGE_TOKEN_DATA_BYTES`].
    pub fn seal(&self, key: &TokenKey) -> Result<String, TokenError> {
        let data_bytes = self.after.len() + self.extra.len();
        if data_bytes > MAX_PAGE_TOKEN_DATA_BYTES {
            return Err(TokenError::TooLarge {
                payload_bytes: PAGE_FIXED_BYTES + data_bytes,
                max_bytes: MAX_PAYLOAD_BYTES,
            });
        }
        // Both lengths are ≤ MAX_PAYLOAD_BYTES ≤ u16::MAX (checked above and at compile time).
        let after_len = u16::try_from(self.after.len()).map_err(|_| TokenError::Invalid)?;
        let extra_len = u16::try_from(self.extra.len()).map_err(|_| TokenError::Invalid)?;
        let mut payload = Vec::with_capacity(PAGE_FIXED_BYTES + data_bytes);
        payload.extend_from_slice(&self.stream_incarnation.to_le_bytes());
        payload.extend_from_slice(&self.issued_ms.to_le_bytes());
        payload.extend_from_slice(&after_len.to_le_bytes());
        payload.extend_from_slice(self.after.as_bytes());
        payload.extend_from_slice(&extra_len.to_le_bytes());
        payload.extend_from_slice(&self.extra);
        debug_assert_eq!(payload.len(), PAGE_FIXED_BYTES + data_bytes);
        seal(key, TokenKind::PageToken, &payload)
    }

    pub fn open(token: &str, key: &TokenKey) -> Result<PageToken, TokenError> {
        let payload = unseal(key, TokenKind::PageToken, token)?;
        // The MAC vouches for the bytes, but parse defensively all the same.
        if payload.len() < PAGE_FIXED_BYTES {
            return Err(TokenError::Invalid);
        }
        let stream_incarnation = u64::from_le_bytes(le_field(&payload, PAGE_INCARNATION_OFFSET));
        let issued_ms = i64::from_le_bytes(le_field(&payload, PAGE_ISSUED_OFFSET));
        let after_len = usize::from(u16::from_le_bytes(le_field(&payload, PAGE_AFTER_LEN_OFFSET)));
        let after_end = PAGE_AFTER_OFFSET + after_len;
        let extra_offset = after_end + 2;
        if payload.len() < extra_offset {
            return Err(TokenError::Invalid);
        }
        let extra_len = usize::from(u16::from_le_bytes(le_field(&payload, after_end)));
        if payload.len() != extra_offset + extra_len {
            return Err(TokenError::Invalid);
        }
        let after = std::str::from_utf8(&payload[PAGE_AFTER_OFFSET..after_end])
            .map_err(|_| TokenError::Invalid)?
            .to_owned();
        Ok(PageToken { stream_incarnation, after, issued_ms, extra: payload[extra_offset..].to_vec() })
    }
}

/// The `N` bytes at `offset`; the caller has checked the length.
#[allow(clippy::expect_used, reason = "callers check the payload length before reading fields")]
fn le_field<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
    bytes[offset..offset + N].try_into().expect("caller checked the length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::from_bytes([byte; 32])
    }

    fn iterator() -> ShardIteratorToken {
        ShardIteratorToken {
            stream_incarnation: 0x0123_4567_89ab_cdef,
            shard_index: 3,
            position: 26054,
            issued_ms: 1_701_760_152_000,
        }
    }

    #[test]
    fn iterator_looks_like_aws() {
        let token = iterator().seal(&key(7));
        assert!(token.starts_with("AAAAAAAAAAE"), "{token}");
        assert!(token.len() <= MAX_TOKEN_CHARS);
        assert_eq!(ShardIteratorToken::open(&token, &key(7)), Ok(iterator()));
    }

    #[test]
    fn iterator_in_one_pair_of_double_quotes_opens() {
        let token = iterator().seal(&key(7));
        assert_eq!(ShardIteratorToken::open(&format!("\"{token}\""), &key(7)), Ok(iterator()));
        for bad in
            [format!("\"\"{token}\"\""), format!("\"{token}"), format!("{token}\""), format!("'{token}'")]
        {
            assert_eq!(ShardIteratorToken::open(&bad, &key(7)), Err(TokenError::Invalid), "{bad}");
        }
    }

    #[test]
    fn iterator_rejects_other_key_kind_and_garbage() {
        let token = iterator().seal(&key(7));
        assert_eq!(ShardIteratorToken::open(&token, &key(8)), Err(TokenError::Invalid));
        assert_eq!(PageToken::open(&token, &key(7)), Err(TokenError::Invalid));
        for garbage in ["", "AAAAAAAAAAE=", "not base64!", &"A".repeat(600)] {
            assert_eq!(ShardIteratorToken::open(garbage, &key(7)), Err(TokenError::Invalid), "{garbage}");
        }
        // Truncated.
        assert_eq!(ShardIteratorToken::open(&token[..token.len() - 4], &key(7)), Err(TokenError::Invalid));
        // URL-safe re-encoding.
        let bytes = STANDARD.decode(&token).unwrap();
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        if url_safe != token {
            assert_eq!(ShardIteratorToken::open(&url_safe, &key(7)), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn non_canonical_base64_is_invalid() {
        // 10 + 2 + 16 = 28 sealed bytes: the last group carries one byte, "xy==".
        let token = seal(&key(4), TokenKind::PageToken, &[1, 2]).unwrap();
        assert!(token.ends_with("=="), "{token}");
        assert!(unseal(&key(4), TokenKind::PageToken, &token).is_ok());
        let unpadded = token.trim_end_matches('=');
        assert_eq!(unseal(&key(4), TokenKind::PageToken, unpadded), Err(TokenError::Invalid));
        // Same bytes, but non-zero trailing bits in the last data character.
        let mut chars: Vec<u8> = token.clone().into_bytes();
        let last_data = chars.len() - 3;
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let sextet = alphabet.iter().position(|&c| c == chars[last_data]).unwrap();
        assert_eq!(sextet & 0xf, 0, "canonical encoding has zero trailing bits");
        chars[last_data] = alphabet[sextet | 1];
        let sloppy = String::from_utf8(chars).unwrap();
        assert_eq!(unseal(&key(4), TokenKind::PageToken, &sloppy), Err(TokenError::Invalid));
    }

    #[test]
    fn page_token_round_trip_and_kind_separation() {
        let page = PageToken {
            stream_incarnation: 42,
            after: "shardId-000000000007".to_owned(),
            issued_ms: -1,
            extra: vec![1, 2, 3],
        };
        let token = page.seal(&key(1)).unwrap();
        assert_eq!(PageToken::open(&token, &key(1)), Ok(page));
        assert_eq!(ShardIteratorToken::open(&token, &key(1)), Err(TokenError::Invalid));
    }

    #[test]
    fn page_token_limits() {
        let mut page = PageToken {
            stream_incarnation: 0,
            after: "é".repeat(MAX_PAGE_TOKEN_DATA_BYTES / 2),
            issued_ms: 0,
            extra: Vec::new(),
        };
        let token = page.seal(&key(1)).unwrap();
        assert!(token.len() <= MAX_TOKEN_CHARS);
        assert_eq!(PageToken::open(&token, &key(1)), Ok(page.clone()));
        page.extra = vec![0; MAX_PAGE_TOKEN_DATA_BYTES - page.after.len() + 1];
        assert!(matches!(page.seal(&key(1)), Err(TokenError::TooLarge { .. })));
    }

    #[test]
    fn generic_seal_limits() {
        let max = vec![0xa5; MAX_PAYLOAD_BYTES];
        let token = seal(&key(2), TokenKind::PageToken, &max).unwrap();
        assert!(token.len() <= MAX_TOKEN_CHARS);
        assert_eq!(unseal(&key(2), TokenKind::PageToken, &token), Ok(max));
        assert!(matches!(
            seal(&key(2), TokenKind::PageToken, &[0; MAX_PAYLOAD_BYTES + 1]),
            Err(TokenError::TooLarge { .. })
        ));
        assert_eq!(
            unseal(&key(2), TokenKind::PageToken, &seal(&key(2), TokenKind::PageToken, &[]).unwrap()),
            Ok(Vec::new())
        );
    }

    #[test]
    fn sealed_page_token_with_bad_inner_layout_is_invalid() {
        // A correctly sealed PageToken payload whose lengths do not add up.
        let token = seal(&key(3), TokenKind::PageToken, &[0; PAGE_FIXED_BYTES + 1]).unwrap();
        assert_eq!(PageToken::open(&token, &key(3)), Err(TokenError::Invalid));
        let mut payload = vec![0; PAGE_FIXED_BYTES];
        payload[PAGE_AFTER_LEN_OFFSET] = 1;
        let token = seal(&key(3), TokenKind::PageToken, &payload).unwrap();
        assert_eq!(PageToken::open(&token, &key(3)), Err(TokenError::Invalid));
    }
}
