//! CBOR bodies (`application/x-amz-cbor-1.1`, reference §2.3): the Java SDKs' default encoding.
//!
//! A CBOR body has the structure of the JSON one, with two differences: blobs are byte strings
//! (major type 2), and timestamps are tag 1 followed by epoch **milliseconds** (not RFC 8949's
//! seconds; the Java SDKs write `writeTag(1)` then `toEpochMilli()`).
//!
//! Requests are decoded into the JSON value tree that the validator (`model::check_input`) and
//! the typed inputs (`ops`) already take, so every operation gets the same checks and the same
//! error messages in both encodings:
//! - byte strings become canonical base64 strings (what a JSON blob is), so blob validation and
//!   `ops::Blob` are unchanged; the cost is one base64 round trip of the payload (~1 ms per MiB);
//! - timestamps (tag 1 or untagged, integer or float) are epoch milliseconds; `to_json_seconds`
//!   turns those at the model's timestamp members into the JSON protocol's epoch seconds;
//! - definite and indefinite lengths are accepted; nesting is bounded by `DEPTH_MAX`.
//!
//! Responses are encoded by `to_vec`, a serde serializer that is not human-readable, so
//! `ops::Blob` writes bytes and `ops::Timestamp` writes tag 1 + integer milliseconds (through
//! the newtype name `EPOCH_MILLIS`). Integers take their shortest form; maps and arrays have
//! definite lengths.

use std::fmt;

use base64::Engine;
use serde::ser::{self, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Nesting allowed in a request; Kinesis inputs nest at most 4 deep (PutRecords → Records →
/// entry → Data), so this only stops hostile bodies from exhausting the stack.
pub const DEPTH_MAX: usize = 32;

/// The newtype-struct name `ops::Timestamp` serializes through in binary formats; this
/// serializer writes it as tag 1, any other serializer as the bare integer.
pub const EPOCH_MILLIS: &str = "kinesin::cbor::EpochMillis";

/// CBOR tag for an epoch-based date/time (RFC 8949 §3.4.2; milliseconds in AWS's dialect).
const TAG_EPOCH: u64 = 1;

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;
/// Additional-information value for an indefinite length (and, in major type 7, "break").
const INDEFINITE: u8 = 31;
const BREAK: u8 = 0xff;

/// Why a body is not CBOR we can read. Answered as a SerializationException.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the body where decoding stopped.
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed CBOR at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one CBOR data item that fills `body` exactly.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder { buf: body, pos: 0 };
    let v = d.item(0)?;
    if d.pos != body.len() {
        return Err(d.err("trailing bytes after the top-level item"));
    }
    Ok(v)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// What a head announces: a major type and its argument, or an indefinite length.
enum Head {
    Arg(u8, u64),
    Indefinite(u8),
    /// Major type 7 with its raw additional information and argument bits.
    Simple(u8, u64),
}

impl<'a> Decoder<'a> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError { offset: self.pos, reason }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err("body ends inside an item"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn uint_bytes(&mut self, n: usize) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for &b in self.take(n)? {
            v = (v << 8) | u64::from(b);
        }
        Ok(v)
    }

    fn head(&mut self) -> Result<Head, DecodeError> {
        let initial = self.take(1)?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => self.uint_bytes(1)?,
            25 => self.uint_bytes(2)?,
            26 => self.uint_bytes(4)?,
            27 => self.uint_bytes(8)?,
            INDEFINITE => {
                return match major {
                    MAJOR_BYTES | MAJOR_TEXT | MAJOR_ARRAY | MAJOR_MAP => Ok(Head::Indefinite(major)),
                    MAJOR_SIMPLE => Err(self.err("unexpected break")),
                    _ => Err(self.err("indefinite length not allowed for this major type")),
                };
            }
            _ => return Err(self.err("reserved additional information")),
        };
        if major == MAJOR_SIMPLE {
            return Ok(Head::Simple(info, arg));
        }
        Ok(Head::Arg(major, arg))
    }

    /// A declared length, checked against the bytes left (each element takes at least one).
    fn length(&self, n: u64) -> Result<usize, DecodeError> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(self.err("declared length exceeds the body"));
        }
        Ok(n as usize)
    }

    fn at_break(&mut self) -> Result<bool, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&BREAK) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.err("body ends inside an indefinite-length item")),
        }
    }

    /// The bytes of a (possibly chunked) byte or text string of `major`.
    fn string_bytes(&mut self, head: Head, major: u8) -> Result<Vec<u8>, DecodeError> {
        match head {
            Head::Arg(_, n) => {
                let n = self.length(n)?;
                Ok(self.take(n)?.to_vec())
            }
            Head::Indefinite(_) => {
                let mut out = Vec::new();
                while !self.at_break()? {
                    match self.head()? {
                        Head::Arg(m, n) if m == major => {
                            let n = self.length(n)?;
                            out.extend_from_slice(self.take(n)?);
                        }
                        _ => return Err(self.err("chunk of an indefinite string has another type")),
                    }
                }
                Ok(out)
            }
            Head::Simple(..) => Err(self.err("not a string")),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > DEPTH_MAX {
            return Err(self.err("nested too deeply"));
        }
        let head = self.head()?;
        match head {
            Head::Arg(MAJOR_UINT, n) => Ok(Value::Number(Number::from(n))),
            Head::Arg(MAJOR_NINT, n) => Ok(match i64::try_from(n) {
                // -1 - n, with n ≤ i64::MAX, always fits.
                Ok(n) => Value::Number(Number::from(-1 - n)),
                Err(_) => float(-1.0 - n as f64),
            }),
            Head::Arg(MAJOR_BYTES, _) | Head::Indefinite(MAJOR_BYTES) => {
                let bytes = self.string_bytes(head, MAJOR_BYTES)?;
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)))
            }
            Head::Arg(MAJOR_TEXT, _) | Head::Indefinite(MAJOR_TEXT) => {
                let start = self.pos;
                let bytes = self.string_bytes(head, MAJOR_TEXT)?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| DecodeError { offset: start, reason: "text string is not UTF-8" })
            }
            Head::Arg(MAJOR_ARRAY, n) => {
                let n = self.length(n)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            Head::Indefinite(MAJOR_ARRAY) => {
                let mut items = Vec::new();
                while !self.at_break()? {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            Head::Arg(MAJOR_MAP, n) => {
                let n = self.length(n)?;
                let mut map = Map::new();
                for _ in 0..n {
                    let (k, v) = self.entry(depth)?;
                    map.insert(k, v);
                }
                Ok(Value::Object(map))
            }
            Head::Indefinite(MAJOR_MAP) => {
                let mut map = Map::new();
                while !self.at_break()? {
                    let (k, v) = self.entry(depth)?;
                    map.insert(k, v);
                }
                Ok(Value::Object(map))
            }
            Head::Arg(MAJOR_TAG, tag) => {
                let start = self.pos;
                let v = self.item(depth + 1)?;
                // Tag 1 carries milliseconds here; `to_json_seconds` converts them where the
                // model has a timestamp. Other tags add nothing Kinesis uses: keep the content.
                if tag == TAG_EPOCH && !v.is_number() {
                    return Err(DecodeError { offset: start, reason: "tag 1 must hold a number" });
                }
                Ok(v)
            }
            Head::Simple(info, arg) => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 | 23 => Ok(Value::Null), // null, undefined
                25 => Ok(float(f16_to_f64(arg as u16))),
                26 => Ok(float(f64::from(f32::from_bits(arg as u32)))),
                27 => Ok(float(f64::from_bits(arg))),
                _ => Err(self.err("unsupported simple value")),
            },
            _ => Err(self.err("unsupported item")),
        }
    }

    fn entry(&mut self, depth: usize) -> Result<(String, Value), DecodeError> {
        let start = self.pos;
        let key = match self.item(depth + 1)? {
            Value::String(k) => k,
            _ => return Err(DecodeError { offset: start, reason: "map key is not a text string" }),
        };
        let v = self.item(depth + 1)?;
        Ok((key, v))
    }
}

/// A JSON number for a float; NaN and infinities (not representable) become null, which the
/// validator treats as an absent member.
fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

/// IEEE 754 half precision (RFC 8949 Appendix D).
fn f16_to_f64(half: u16) -> f64 {
    let exp = (half >> 10) & 0x1f;
    let mant = f64::from(half & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 => {
            if mant == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => (mant + 1024.0) * 2f64.powi(i32::from(exp) - 25),
    };
    if half & 0x8000 != 0 {
        -v
    } else {
        v
    }
}

/// Epoch milliseconds (as a decoded CBOR number) to the JSON protocol's epoch seconds, which
/// `ops::Timestamp` reads in a human-readable format. Non-numbers are left for the validator.
pub fn millis_to_seconds(v: &mut Value) {
    if let Some(ms) = v.as_f64() {
        *v = float(ms / 1000.0);
    }
}

// ---- encoding ----

/// Encodes `value` as CBOR (not human-readable: blobs as byte strings, timestamps as tag 1 +
/// epoch milliseconds).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut enc = Encoder { out: Vec::new() };
    value.serialize(&mut enc)?;
    Ok(enc.out)
}

/// An error body `{"__type": ..., "message": ...}` in CBOR (reference §2.3, §2.4), with the same
/// keys as the JSON one.
pub fn error_body(e: &ApiError) -> Vec<u8> {
    // The JSON form is the single definition of the keys; re-encode it.
    let v: Value = serde_json::from_slice(&e.to_json()).unwrap_or(Value::Null);
    to_vec(&v).unwrap_or_default()
}

/// A value the encoder cannot write (128-bit integers); a defect of ours, never of a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError(String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode as CBOR: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> EncodeError {
        EncodeError(msg.to_string())
    }
}

struct Encoder {
    out: Vec<u8>,
}

/// The shortest head for `major` with argument `arg`.
fn head_bytes(major: u8, arg: u64) -> ([u8; 9], usize) {
    let m = major << 5;
    let mut b = [0u8; 9];
    let len = if arg < 24 {
        b[0] = m | arg as u8;
        1
    } else if arg <= u64::from(u8::MAX) {
        b[0] = m | 24;
        b[1] = arg as u8;
        2
    } else if arg <= u64::from(u16::MAX) {
        b[0] = m | 25;
        b[1..3].copy_from_slice(&(arg as u16).to_be_bytes());
        3
    } else if arg <= u64::from(u32::MAX) {
        b[0] = m | 26;
        b[1..5].copy_from_slice(&(arg as u32).to_be_bytes());
        5
    } else {
        b[0] = m | 27;
        b[1..9].copy_from_slice(&arg.to_be_bytes());
        9
    };
    (b, len)
}

impl Encoder {
    fn head(&mut self, major: u8, arg: u64) {
        let (b, n) = head_bytes(major, arg);
        self.out.extend_from_slice(&b[..n]);
    }

    fn int(&mut self, v: i64) {
        if v >= 0 {
            self.head(MAJOR_UINT, v as u64);
        } else {
            // -1 - v is non-negative for every negative i64.
            self.head(MAJOR_NINT, (-1 - v) as u64);
        }
    }

    fn begin(&mut self) -> Compound<'_> {
        let start = self.out.len();
        Compound { enc: self, start, count: 0 }
    }
}

/// An array or map being written: its items go straight to the output and the head, whose
/// size depends on the count, is inserted in front of them at the end. Counting (rather than
/// trusting serde's length hint) keeps the head right even when fields are skipped.
struct Compound<'a> {
    enc: &'a mut Encoder,
    start: usize,
    count: u64,
}

impl Compound<'_> {
    fn finish(self, major: u8) {
        let (b, n) = head_bytes(major, self.count);
        self.enc.out.splice(self.start..self.start, b[..n].iter().copied());
    }
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Variant<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Variant<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out.push(if v { 0xf5 } else { 0xf4 });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.int(i64::from(v));
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.int(i64::from(v));
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.int(i64::from(v));
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.int(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.head(MAJOR_UINT, u64::from(v));
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.head(MAJOR_UINT, u64::from(v));
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.head(MAJOR_UINT, u64::from(v));
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.head(MAJOR_UINT, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.out.push(0xfb);
        self.out.extend_from_slice(&v.to_bits().to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        let mut b = [0u8; 4];
        self.serialize_str(v.encode_utf8(&mut b))
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.head(MAJOR_TEXT, v.len() as u64);
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.head(MAJOR_BYTES, v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), EncodeError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        self.out.push(0xf6);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), EncodeError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), EncodeError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        if name == EPOCH_MILLIS {
            self.head(MAJOR_TAG, TAG_EPOCH);
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        self.head(MAJOR_MAP, 1);
        self.serialize_str(variant)?;
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        Ok(self.begin())
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, EncodeError> {
        Ok(self.begin())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, EncodeError> {
        Ok(self.begin())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<'a>, EncodeError> {
        self.head(MAJOR_MAP, 1);
        self.serialize_str(variant)?;
        Ok(Variant(self.begin()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, EncodeError> {
        Ok(self.begin())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, EncodeError> {
        Ok(self.begin())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<'a>, EncodeError> {
        self.head(MAJOR_MAP, 1);
        self.serialize_str(variant)?;
        Ok(Variant(self.begin()))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        self.count += 1;
        v.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish(MAJOR_ARRAY);
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), EncodeError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<(), EncodeError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), EncodeError> {
        self.count += 1;
        k.serialize(&mut *self.enc)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        v.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish(MAJOR_MAP);
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        self.count += 1;
        ser::Serializer::serialize_str(&mut *self.enc, key)?;
        v.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), EncodeError> {
        self.finish(MAJOR_MAP);
        Ok(())
    }
}

/// The inner array or map of a `{variant: ...}` wrapper.
struct Variant<'a>(Compound<'a>);

impl ser::SerializeTupleVariant for Variant<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), EncodeError> {
        ser::SerializeSeq::serialize_element(&mut self.0, v)
    }
    fn end(self) -> Result<(), EncodeError> {
        ser::SerializeSeq::end(self.0)
    }
}

impl ser::SerializeStructVariant for Variant<'_> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        ser::SerializeStruct::serialize_field(&mut self.0, key, v)
    }
    fn end(self) -> Result<(), EncodeError> {
        ser::SerializeStruct::end(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::ops::{Blob, Output, RecordOut, Timestamp};
    use bytes::Bytes;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Reference §6: GetShardIterator's Timestamp as the Java SDK v2 sends it (floci #2368).
    #[test]
    fn java_timestamp_vector_decodes_to_milliseconds() {
        let mut body = hex("a1 69 54696d657374616d70 c1 1b 000001a013accc38");
        assert_eq!(body[0], 0xa1);
        let v = decode(&body).unwrap();
        assert_eq!(v, json!({"Timestamp": 1_787_036_486_712u64}));
        // The same map, indefinite-length, as Jackson writes it.
        body[0] = 0xbf;
        body.push(BREAK);
        let mut v = decode(&body).unwrap();
        millis_to_seconds(v.get_mut("Timestamp").unwrap());
        let t: Timestamp = serde_json::from_value(v["Timestamp"].clone()).unwrap();
        assert_eq!(t, Timestamp(1_787_036_486_712));
    }

    #[test]
    fn timestamps_encode_as_tag_1_milliseconds() {
        assert_eq!(to_vec(&Timestamp(1_787_036_486_712)).unwrap(), hex("c1 1b 000001a013accc38"));
        assert_eq!(to_vec(&Timestamp(0)).unwrap(), hex("c1 00"));
    }

    #[test]
    fn blobs_are_byte_strings_both_ways() {
        assert_eq!(to_vec(&Blob(Bytes::from_static(b"hello"))).unwrap(), hex("45 68656c6c6f"));
        // {"Data": h'68656c6c6f'} → the JSON body's base64 string.
        let v = decode(&hex("a1 64 44617461 45 68656c6c6f")).unwrap();
        assert_eq!(v, json!({"Data": "aGVsbG8="}));
        // Chunked (indefinite-length) byte string.
        let v = decode(&hex("a1 64 44617461 5f 42 6865 43 6c6c6f ff")).unwrap();
        assert_eq!(v, json!({"Data": "aGVsbG8="}));
        let v = decode(&hex("a1 64 44617461 40")).unwrap();
        assert_eq!(v, json!({"Data": ""}));
    }

    #[test]
    fn scalars_decode() {
        assert_eq!(decode(&hex("00")).unwrap(), json!(0));
        assert_eq!(decode(&hex("17")).unwrap(), json!(23));
        assert_eq!(decode(&hex("1818")).unwrap(), json!(24));
        assert_eq!(decode(&hex("1903e8")).unwrap(), json!(1000));
        assert_eq!(decode(&hex("1bffffffffffffffff")).unwrap(), json!(u64::MAX));
        assert_eq!(decode(&hex("20")).unwrap(), json!(-1));
        assert_eq!(decode(&hex("3903e7")).unwrap(), json!(-1000));
        assert_eq!(decode(&hex("3b7fffffffffffffff")).unwrap(), json!(i64::MIN));
        assert_eq!(decode(&hex("f4")).unwrap(), json!(false));
        assert_eq!(decode(&hex("f5")).unwrap(), json!(true));
        assert_eq!(decode(&hex("f6")).unwrap(), Value::Null);
        assert_eq!(decode(&hex("f93c00")).unwrap(), json!(1.0));
        assert_eq!(decode(&hex("f9c400")).unwrap(), json!(-4.0));
        assert_eq!(decode(&hex("fa47c35000")).unwrap(), json!(100000.0));
        assert_eq!(decode(&hex("fb3ff199999999999a")).unwrap(), json!(1.1));
        assert_eq!(decode(&hex("7f 657374726561 646d696e67 ff")).unwrap(), json!("streaming"));
        assert_eq!(decode(&hex("9f 01 82 02 03 9f 04 05 ff ff")).unwrap(), json!([1, [2, 3], [4, 5]]));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for bad in [
            "",                    // nothing
            "a1",                  // map without its entry
            "a1 01 02",            // integer key
            "5a ffffffff",         // byte string longer than the body
            "9b ffffffffffffffff", // absurd array length
            "bf 61 61",            // unterminated indefinite map
            "5f 61 61 ff",         // text chunk in a byte string
            "62 c328",             // invalid UTF-8
            "c1 61 61",            // tag 1 on a string
            "ff",                  // lone break
            "1c",                  // reserved additional information
            "00 00",               // trailing bytes
            "f8 20",               // simple value
        ] {
            assert!(decode(&hex(bad)).is_err(), "{bad}");
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x81u8, 1000).chain([0x00]).collect();
        assert_eq!(decode(&deep).unwrap_err().reason, "nested too deeply");
    }

    #[test]
    fn outputs_round_trip_through_our_decoder() {
        let out = Output::GetRecords {
            records: vec![RecordOut {
                sequence_number: "49647060812288014558888668248263847763900017820167045122".into(),
                approximate_arrival_timestamp: Timestamp(1_701_760_153_593),
                data: Blob(Bytes::from_static(b"\x00\xffhello")),
                partition_key: "pk".into(),
                encryption_type: None,
            }],
            next_shard_iterator: None,
            millis_behind_latest: 0,
            child_shards: None,
        };
        let bytes = to_vec(&out).unwrap();
        // Tag 1 + uint64 ms for the arrival time.
        assert!(bytes.windows(10).any(|w| w == hex("c1 1b 0000018c38cf37f9")), "{bytes:02x?}");
        let v = decode(&bytes).unwrap();
        assert_eq!(
            v,
            json!({"Records": [{
                "SequenceNumber": "49647060812288014558888668248263847763900017820167045122",
                "ApproximateArrivalTimestamp": 1_701_760_153_593u64,
                "Data": "AP9oZWxsbw==",
                "PartitionKey": "pk",
            }], "MillisBehindLatest": 0})
        );
    }

    #[test]
    fn long_arrays_and_strings_take_wider_heads() {
        let items: Vec<u32> = (0..300).collect();
        let bytes = to_vec(&items).unwrap();
        assert_eq!(&bytes[..3], &hex("99 012c")[..]);
        assert_eq!(decode(&bytes).unwrap(), json!(items));
        let s = "x".repeat(70_000);
        let bytes = to_vec(&s).unwrap();
        assert_eq!(&bytes[..5], &hex("7a 00011170")[..]);
        assert_eq!(decode(&bytes).unwrap(), json!(s));
        assert_eq!(to_vec(&-1_000_000i64).unwrap(), hex("3a 000f423f"));
    }

    #[test]
    fn errors_have_type_and_message() {
        let e = ApiError::new(ErrorKind::ResourceNotFound, "Stream s under account 000000000000 not found.");
        let v = decode(&error_body(&e)).unwrap();
        assert_eq!(
            v,
            json!({"__type": "ResourceNotFoundException", "message": "Stream s under account 000000000000 not found."})
        );
        assert_eq!(
            error_body(&ApiError::bare(ErrorKind::Serialization)),
            hex("a1 66 5f5f74797065 76")
                .iter()
                .copied()
                .chain(b"SerializationException".iter().copied())
                .collect::<Vec<u8>>()
        );
    }
}
