//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`, including every crash the fuzzers found,
//! added there once fixed) through the same entry points the fuzz targets call, so that a decoder
//! that panics again fails the ordinary test run without nightly or cargo-fuzz. A short
//! random-bytes run per entry point adds inputs the corpus lacks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::path::PathBuf;

use kinesin_wire::fuzzing;
use proptest::prelude::*;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("sigv4_header", fuzzing::sigv4_header),
    ("sigv4_query", fuzzing::sigv4_query),
    ("json_request", fuzzing::json_request),
    ("cbor_request", fuzzing::cbor_request),
    ("policy_document", fuzzing::policy_document),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

#[test]
fn corpus_replays_without_panics() {
    for (name, run) in TARGETS {
        let dir = corpus_dir(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} panics", path.display());
            count += 1;
        }
        assert!(count >= 4, "{name}: only {count} corpus files in {}", dir.display());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(target in 0usize..5, data in proptest::collection::vec(any::<u8>(), 0..512)) {
        (TARGETS[target].1)(&data);
    }

    /// Bytes that look like the real thing: a known prefix per target, then noise.
    #[test]
    fn near_valid_inputs_never_panic(op in any::<u8>(), noise in "[ -~]{0,200}") {
        fuzzing::json_request(&[&[op][..], b"{\"StreamName\":\"s\",", noise.as_bytes()].concat());
        fuzzing::sigv4_header(format!("AWS4-HMAC-SHA256 Credential=A/20240102/us-east-1/kinesis/aws4_request, {noise}\n20240102T030405Z").as_bytes());
        fuzzing::sigv4_query(format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20240102%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20240102T030405Z&{noise}").as_bytes());
        fuzzing::policy_document(format!("{{\"Statement\":{{\"Effect\":\"Allow\",{noise}").as_bytes());
        fuzzing::cbor_request(&[&[op, 0xa1][..], noise.as_bytes()].concat());
    }
}
