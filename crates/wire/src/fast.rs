//! One-pass decoding of the hottest request, PutRecords in JSON, straight from the body bytes.
//!
//! The general path parses a body into a `serde_json::Value` tree, walks the tree against the
//! model (`model::check_input`) and converts it into the typed input (`ops`): three passes, an
//! owned string per record, base64 checked once and decoded again. Here the body is deserialized
//! once into borrowed fields, every constraint the model states for PutRecords is checked on the
//! typed fields, and each record's base64 is decoded once (the decode is the check).
//!
//! The fast path only ever *accepts*: anything it is not sure of — a constraint violated, a
//! member it does not know, StreamARN instead of StreamName, a duplicate key — answers `None`, and the caller takes the general path, which
//! produces AWS's exact error. So the two paths cannot disagree on what is an error, and the
//! input built here equals what the general path builds for the same body.

use std::borrow::Cow;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use crate::ids::StreamName;
use crate::ops::{Blob, PutRecordsInput, PutRecordsRequestEntry};

/// The model's constraints on PutRecords (crates/wire/model/kinesis.json).
const RECORDS_MAX: usize = 500;
const DATA_BYTES_MAX: usize = 10 * 1024 * 1024;
const PARTITION_KEY_CHARS_MAX: usize = 256;
const HASH_KEY_DIGITS_MAX: usize = 39;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<Entry<'a>>,
    #[serde(rename = "StreamName", borrow)]
    stream_name: Cow<'a, str>,
    #[serde(rename = "DryRun", default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry<'a> {
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, str>,
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: Cow<'a, str>,
    #[serde(rename = "ExplicitHashKey", borrow, default)]
    explicit_hash_key: Option<Cow<'a, str>>,
}

/// PutRecords from a JSON body, or `None` when the general path must decide.
pub fn put_records_json(body: &[u8]) -> Option<PutRecordsInput> {
    let req: Request = serde_json::from_slice(body).ok()?;
    if !(1..=RECORDS_MAX).contains(&req.records.len()) {
        return None;
    }
    let stream_name = StreamName::parse(req.stream_name.into_owned())?;
    let mut records = Vec::with_capacity(req.records.len());
    for e in req.records {
        let pk_chars = e.partition_key.chars().count();
        if !(1..=PARTITION_KEY_CHARS_MAX).contains(&pk_chars) {
            return None;
        }
        if let Some(h) = &e.explicit_hash_key {
            if !hash_key_ok(h) {
                return None;
            }
        }
        // Strict: canonical padding, no whitespace, zero trailing bits — never wider than the
        // model's own base64 check, so nothing accepted here would be refused there.
        let data = base64::engine::general_purpose::STANDARD.decode(e.data.as_bytes()).ok()?;
        if data.len() > DATA_BYTES_MAX {
            return None;
        }
        records.push(PutRecordsRequestEntry {
            data: Blob(Bytes::from(data)),
            explicit_hash_key: e.explicit_hash_key.map(Cow::into_owned),
            partition_key: Some(e.partition_key.into_owned()),
        });
    }
    Some(PutRecordsInput { stream_name: Some(stream_name), stream_arn: None, records, dry_run: req.dry_run })
}

/// `^(0|([1-9]\d{0,38}))$`.
fn hash_key_ok(s: &str) -> bool {
    let b = s.as_bytes();
    match b {
        [b'0'] => true,
        [first, rest @ ..] => {
            (b'1'..=b'9').contains(first)
                && rest.len() < HASH_KEY_DIGITS_MAX
                && rest.iter().all(u8::is_ascii_digit)
        }
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::model;

    /// The general path for the same body: parse, check against the model, convert.
    fn general(body: &[u8]) -> Result<PutRecordsInput, String> {
        let mut v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        model().check_input("PutRecords", &mut v).map_err(|e| format!("{e:?}"))?;
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn same(a: &PutRecordsInput, b: &PutRecordsInput) {
        assert_eq!(a.stream_name, b.stream_name);
        assert_eq!(a.stream_arn, b.stream_arn);
        assert_eq!(a.dry_run, b.dry_run);
        assert_eq!(a.records.len(), b.records.len());
        for (x, y) in a.records.iter().zip(&b.records) {
            assert_eq!(x.data, y.data);
            assert_eq!(x.partition_key, y.partition_key);
            assert_eq!(x.explicit_hash_key, y.explicit_hash_key);
        }
    }

    #[test]
    fn accepts_what_the_general_path_accepts_and_builds_the_same_input() {
        for body in [
            r#"{"StreamName":"s","Records":[{"Data":"aGVsbG8=","PartitionKey":"k"}]}"#,
            r#"{"Records":[{"PartitionKey":"ü","Data":""},{"Data":"AA==","PartitionKey":"p","ExplicitHashKey":"0"}],"StreamName":"a.b-c_d","DryRun":false}"#,
            r#"{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211455"}]}"#,
            r#"{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k","ExplicitHashKey":null}],"DryRun":null}"#,
        ] {
            let fast =
                put_records_json(body.as_bytes()).unwrap_or_else(|| panic!("fast path refused {body}"));
            let slow = general(body.as_bytes()).unwrap();
            same(&fast, &slow);
        }
    }

    #[test]
    fn leaves_everything_doubtful_to_the_general_path() {
        let too_many = format!(
            r#"{{"StreamName":"s","Records":[{}]}}"#,
            vec![r#"{"Data":"","PartitionKey":"k"}"#; 501].join(",")
        );
        let long_key =
            format!(r#"{{"StreamName":"s","Records":[{{"Data":"","PartitionKey":"{}"}}]}}"#, "k".repeat(257));
        for body in [
            r#"{"StreamName":"s","Records":[]}"#.to_string(),
            too_many,
            long_key,
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":""}]}"#.into(),
            r#"{"StreamName":"bad name","Records":[{"Data":"","PartitionKey":"k"}]}"#.into(),
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","Records":[{"Data":"","PartitionKey":"k"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"AAA","PartitionKey":"k"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"AB==","PartitionKey":"k"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"A A=","PartitionKey":"k"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k","ExplicitHashKey":"01"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k","ExplicitHashKey":"1234567890123456789012345678901234567890"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k","Extra":1}]}"#.into(),
            r#"{"StreamName":"s","StreamName":"t","Records":[{"Data":"","PartitionKey":"k"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":""}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":1,"PartitionKey":"k"}]}"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k"}],"DryRun":"yes"}"#.into(),
            r#"[1,2]"#.into(),
            r#"{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k"}]"#.into(),
        ] {
            assert!(put_records_json(body.as_bytes()).is_none(), "fast path accepted {body}");
        }
    }

    proptest::proptest! {
        /// Whatever the fast path accepts, the general path accepts with the same input.
        #[test]
        fn never_wider_than_the_general_path(
            name in "[a-zA-Z0-9_. -]{0,3}",
            keys in proptest::collection::vec("[a-zü]{0,3}", 0..4),
            data in proptest::collection::vec("[A-Za-z0-9+/=]{0,9}", 0..4),
            hash in proptest::option::of("[0-9]{0,3}"),
        ) {
            let records: Vec<String> = keys.iter().zip(&data).map(|(k, d)| match &hash {
                Some(h) => format!(r#"{{"Data":"{d}","PartitionKey":"{k}","ExplicitHashKey":"{h}"}}"#),
                None => format!(r#"{{"Data":"{d}","PartitionKey":"{k}"}}"#),
            }).collect();
            let body = format!(r#"{{"StreamName":"{name}","Records":[{}]}}"#, records.join(","));
            if let Some(fast) = put_records_json(body.as_bytes()) {
                let slow = general(body.as_bytes());
                proptest::prop_assert!(slow.is_ok(), "{body}: fast accepted, general said {slow:?}");
                same(&fast, &slow.unwrap());
            }
        }
    }
}
