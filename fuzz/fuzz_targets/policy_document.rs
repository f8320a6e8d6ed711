#![no_main]
//! `cargo +nightly fuzz run policy_document`; the corpus in `fuzz/corpus/policy_document` is replayed by
//! `crates/wire/tests/fuzz_corpus.rs` on every test run.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kinesin_wire::fuzzing::policy_document(data);
});
