#![no_main]
//! `cargo +nightly fuzz run sigv4_header`; the corpus in `fuzz/corpus/sigv4_header` is replayed by
//! `crates/wire/tests/fuzz_corpus.rs` on every test run.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kinesin_wire::fuzzing::sigv4_header(data);
});
