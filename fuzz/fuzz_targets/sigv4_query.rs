#![no_main]
//! `cargo +nightly fuzz run sigv4_query`; the corpus in `fuzz/corpus/sigv4_query` is replayed by
//! `crates/wire/tests/fuzz_corpus.rs` on every test run.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kinesin_wire::fuzzing::sigv4_query(data);
});
