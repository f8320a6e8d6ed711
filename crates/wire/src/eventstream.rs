//! The AWS event-stream message encoding that SubscribeToShard answers with (reference §2.5).
//!
//! ```text
//! total_length   u32 BE  the whole message, both CRCs included
//! headers_length u32 BE
//! prelude_crc    u32 BE  CRC32 (IEEE) of the 8 bytes above
//! headers        headers_length bytes: name_len u8 | name | type u8 | value
//! payload        total_length - headers_length - 16 bytes
//! message_crc    u32 BE  CRC32 of everything before it
//! ```
//! Kinesis only sends string headers (type 7: u16 BE length, then UTF-8). The decoder
//! ([`decode_message`], for clients such as `kinesin bench`) reads every header type of the
//! format, so it can skip ones it does not use.

/// Bytes of the prelude (two lengths and their CRC) plus the trailing message CRC.
const FRAMING_BYTES: usize = 16;
/// Header value type 7: a string with a u16 length.
const HEADER_TYPE_STRING: u8 = 7;
/// The largest message we build (AWS's limit on one event-stream message is 16 MiB; one event
/// holds at most 2 MiB of records per second of budget, far below).
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One message: `headers` are (name, string value) pairs in order; names must be < 256 bytes
/// and values < 64 KiB (ours are fixed, short names).
pub fn encode_message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers_len: usize = headers.iter().map(|(n, v)| 1 + n.len() + 1 + 2 + v.len()).sum();
    let total = FRAMING_BYTES + headers_len + payload.len();
    assert!(total <= MESSAGE_BYTES_MAX, "event-stream message of {total} bytes is over the limit");
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        assert!(name.len() <= u8::MAX as usize, "header name too long");
        assert!(value.len() <= u16::MAX as usize, "header value too long");
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(HEADER_TYPE_STRING);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    debug_assert_eq!(out.len(), total);
    out
}

/// An `:message-type=event` message.
pub fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[(":message-type", "event"), (":event-type", event_type), (":content-type", content_type)],
        payload,
    )
}

/// An `:message-type=exception` message; the payload is the error's body in the stream's encoding.
pub fn exception(exception_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_message(
        &[
            (":message-type", "exception"),
            (":exception-type", exception_type),
            (":content-type", content_type),
        ],
        payload,
    )
}

// ------------------------------------------------------------------------------------ decoding

/// Bytes of the prelude: total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;

/// Why a buffer does not hold a well-formed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("event-stream prelude CRC mismatch: computed {computed:#010x}, message says {sent:#010x}")]
    PreludeCrc { computed: u32, sent: u32 },
    #[error("event-stream message CRC mismatch: computed {computed:#010x}, message says {sent:#010x}")]
    MessageCrc { computed: u32, sent: u32 },
    #[error("event-stream message length {total} is out of range (16..={MESSAGE_BYTES_MAX})")]
    Length { total: usize },
    #[error("event-stream headers length {headers} does not fit a {total}-byte message")]
    HeadersLength { headers: usize, total: usize },
    #[error("event-stream header at byte {offset} is malformed: {why}")]
    Header { offset: usize, why: &'static str },
}

/// A header value of any of the format's types (type byte in the comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// 0 (true) and 1 (false): no value bytes.
    Bool(bool),
    /// 2
    Byte(i8),
    /// 3
    Int16(i16),
    /// 4
    Int32(i32),
    /// 5
    Int64(i64),
    /// 6: u16 length, then the bytes.
    Bytes(Vec<u8>),
    /// 7: u16 length, then UTF-8.
    String(String),
    /// 8: milliseconds since the epoch, i64.
    Timestamp(i64),
    /// 9: 16 bytes.
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header (e.g. `:message-type`, `:event-type`), if present.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Decodes the first message of `buf`: `Ok(None)` when `buf` does not hold a whole message yet
/// (read more bytes and call again), else the message and how many bytes it took. Both CRCs are
/// checked; the prelude's before the length is trusted, so a corrupt length is reported as such
/// instead of making the caller wait for bytes that never come.
#[allow(
    clippy::expect_used,
    reason = "each try_into takes a slice of exactly the array length, cut just above"
)]
pub fn decode_message(buf: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    if buf.len() < PRELUDE_BYTES {
        return Ok(None);
    }
    let be32 = |at: usize| u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&buf[..8]);
    let sent = be32(8);
    if computed != sent {
        return Err(DecodeError::PreludeCrc { computed, sent });
    }
    let total = be32(0) as usize;
    let headers_len = be32(4) as usize;
    if !(FRAMING_BYTES..=MESSAGE_BYTES_MAX).contains(&total) {
        return Err(DecodeError::Length { total });
    }
    if headers_len > total - FRAMING_BYTES {
        return Err(DecodeError::HeadersLength { headers: headers_len, total });
    }
    if buf.len() < total {
        return Ok(None);
    }
    let computed = crc32fast::hash(&buf[..total - 4]);
    let sent = be32(total - 4);
    if computed != sent {
        return Err(DecodeError::MessageCrc { computed, sent });
    }
    let headers = decode_headers(&buf[PRELUDE_BYTES..PRELUDE_BYTES + headers_len])?;
    let payload = buf[PRELUDE_BYTES + headers_len..total - 4].to_vec();
    Ok(Some((Message { headers, payload }, total)))
}

#[allow(
    clippy::expect_used,
    reason = "each try_into takes a slice of exactly the array length, cut just above by take(n)"
)]
fn decode_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let start_len = b.len();
    let mut out = Vec::new();
    while !b.is_empty() {
        let offset = PRELUDE_BYTES + start_len - b.len();
        let err = |why| DecodeError::Header { offset, why };
        let name_len = usize::from(b[0]);
        let name = b.get(1..1 + name_len).ok_or(err("name runs past the headers"))?;
        let name = std::str::from_utf8(name).map_err(|_| err("name is not UTF-8"))?.to_string();
        b = &b[1 + name_len..];
        let (&kind, rest) = b.split_first().ok_or(err("no value type"))?;
        b = rest;
        let mut take = |n: usize| -> Result<&[u8], DecodeError> {
            let (v, rest) = b.split_at_checked(n).ok_or(err("value runs past the headers"))?;
            b = rest;
            Ok(v)
        };
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(take(1)?[0] as i8),
            3 => HeaderValue::Int16(i16::from_be_bytes(take(2)?.try_into().expect("2 bytes"))),
            4 => HeaderValue::Int32(i32::from_be_bytes(take(4)?.try_into().expect("4 bytes"))),
            5 => HeaderValue::Int64(i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"))),
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"))),
            9 => HeaderValue::Uuid(take(16)?.try_into().expect("16 bytes")),
            6 | 7 => {
                let len = usize::from(u16::from_be_bytes(take(2)?.try_into().expect("2 bytes")));
                let v = take(len)?.to_vec();
                if kind == 6 {
                    HeaderValue::Bytes(v)
                } else {
                    HeaderValue::String(String::from_utf8(v).map_err(|_| err("string value is not UTF-8"))?)
                }
            }
            _ => return Err(err("unknown value type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Reference §6: the initial-response frame, 104 bytes, CRCs computed with zlib.
    #[test]
    fn initial_response_matches_the_reference_vector() {
        let want = unhex(
            "00000068 00000056 4e681724
             0d 3a6d6573736167652d74797065 07 0005 6576656e74
             0b 3a6576656e742d74797065     07 0010 696e697469616c2d726573706f6e7365
             0d 3a636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e
             7b7d
             fe942c1d",
        );
        let got = event("initial-response", "application/json", b"{}");
        assert_eq!(got.len(), 104);
        assert_eq!(got, want);
    }

    #[test]
    fn a_flipped_byte_breaks_the_message_crc() {
        let mut m = exception("ResourceInUseException", "application/json", br#"{"message":"x"}"#);
        let n = m.len();
        let crc = u32::from_be_bytes(m[n - 4..].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&m[..n - 4]));
        m[20] ^= 1;
        assert_ne!(crc, crc32fast::hash(&m[..n - 4]));
    }

    #[test]
    fn decode_reads_back_what_encode_wrote() {
        let m = event("SubscribeToShardEvent", "application/json", br#"{"Records":[]}"#);
        let (msg, used) = decode_message(&m).unwrap().unwrap();
        assert_eq!(used, m.len());
        assert_eq!(msg.header_str(":message-type"), Some("event"));
        assert_eq!(msg.header_str(":event-type"), Some("SubscribeToShardEvent"));
        assert_eq!(msg.header_str(":content-type"), Some("application/json"));
        assert_eq!(msg.header_str(":exception-type"), None);
        assert_eq!(msg.payload, br#"{"Records":[]}"#);
    }

    #[test]
    fn decode_reads_the_reference_vector() {
        let m = event("initial-response", "application/json", b"{}");
        let (msg, used) = decode_message(&m).unwrap().unwrap();
        assert_eq!(used, 104);
        assert_eq!(msg.header_str(":event-type"), Some("initial-response"));
        assert_eq!(msg.payload, b"{}");
    }

    #[test]
    fn decode_waits_for_a_whole_message_and_leaves_the_next_one() {
        let mut two = exception("ResourceInUseException", "application/json", b"{}");
        let first_len = two.len();
        two.extend(event("SubscribeToShardEvent", "application/json", b"{\"a\":1}"));
        for cut in 0..first_len {
            assert_eq!(decode_message(&two[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (first, used) = decode_message(&two).unwrap().unwrap();
        assert_eq!(used, first_len);
        assert_eq!(first.header_str(":exception-type"), Some("ResourceInUseException"));
        let (second, used2) = decode_message(&two[used..]).unwrap().unwrap();
        assert_eq!(used + used2, two.len());
        assert_eq!(second.payload, b"{\"a\":1}");
    }

    #[test]
    fn decode_checks_both_crcs() {
        let m = event("SubscribeToShardEvent", "application/json", b"{}");
        // A flipped bit in the lengths breaks the prelude CRC (checked before the length is used).
        let mut bad = m.clone();
        bad[3] ^= 1;
        assert!(matches!(decode_message(&bad), Err(DecodeError::PreludeCrc { .. })));
        // ... in the prelude CRC itself, too.
        let mut bad = m.clone();
        bad[9] ^= 1;
        assert!(matches!(decode_message(&bad), Err(DecodeError::PreludeCrc { .. })));
        // A flipped bit anywhere after the prelude breaks the message CRC.
        for at in PRELUDE_BYTES..m.len() {
            let mut bad = m.clone();
            bad[at] ^= 0x10;
            assert!(matches!(decode_message(&bad), Err(DecodeError::MessageCrc { .. })), "byte {at}");
        }
    }

    /// A message with every header type, framed by hand (valid CRCs), decodes to those values.
    #[test]
    fn decode_reads_every_header_type() {
        let mut headers = Vec::new();
        let mut put = |name: &str, kind: u8, value: &[u8]| {
            headers.push(name.len() as u8);
            headers.extend_from_slice(name.as_bytes());
            headers.push(kind);
            headers.extend_from_slice(value);
        };
        put("t", 0, &[]);
        put("f", 1, &[]);
        put("b", 2, &[0xff]);
        put("s", 3, &(-2i16).to_be_bytes());
        put("i", 4, &7i32.to_be_bytes());
        put("l", 5, &(-9i64).to_be_bytes());
        put("y", 6, &[0, 2, 0xde, 0xad]);
        put("z", 7, &[0, 2, b'h', b'i']);
        put("ts", 8, &1_700_000_000_000i64.to_be_bytes());
        put("u", 9, &[7u8; 16]);
        let total = FRAMING_BYTES + headers.len() + 1;
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m.extend_from_slice(&headers);
        m.push(b'!');
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        let (msg, _) = decode_message(&m).unwrap().unwrap();
        let values: Vec<HeaderValue> = msg.headers.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                HeaderValue::Bool(true),
                HeaderValue::Bool(false),
                HeaderValue::Byte(-1),
                HeaderValue::Int16(-2),
                HeaderValue::Int32(7),
                HeaderValue::Int64(-9),
                HeaderValue::Bytes(vec![0xde, 0xad]),
                HeaderValue::String("hi".into()),
                HeaderValue::Timestamp(1_700_000_000_000),
                HeaderValue::Uuid([7; 16]),
            ]
        );
        assert_eq!(msg.payload, b"!");
    }

    #[test]
    fn decode_rejects_lengths_that_cannot_be() {
        let frame = |total: u32, headers: u32| {
            let mut m = Vec::new();
            m.extend_from_slice(&total.to_be_bytes());
            m.extend_from_slice(&headers.to_be_bytes());
            let crc = crc32fast::hash(&m);
            m.extend_from_slice(&crc.to_be_bytes());
            m
        };
        assert!(matches!(decode_message(&frame(15, 0)), Err(DecodeError::Length { total: 15 })));
        assert!(matches!(decode_message(&frame(u32::MAX, 0)), Err(DecodeError::Length { .. })));
        assert!(matches!(decode_message(&frame(20, 5)), Err(DecodeError::HeadersLength { .. })));
        // A header whose value runs past the headers section.
        let mut m = frame(16 + 4, 4);
        m.extend_from_slice(&[1, b'x', 7, 0]);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(decode_message(&m), Err(DecodeError::Header { offset: 12, .. })));
    }
}
