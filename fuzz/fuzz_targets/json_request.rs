#![no_main]
//! `cargo +nightly fuzz run json_request`; the corpus in `fuzz/corpus/json_request` is replayed by
//! `crates/wire/tests/fuzz_corpus.rs` on every test run.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kinesin_wire::fuzzing::json_request(data);
});
