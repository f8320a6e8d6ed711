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
//! Kinesis only sends string headers (type 7: u16 BE length, then UTF-8).

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
}
