//! Encrypted batches under crashes. Pins that an encrypted batch recovers exactly like a plain
//! one (acknowledged ones survive, whole and in order, torn ones are cut), that a log mixing
//! plain batches and batches of several key generations reads back with the right
//! `encrypted` flag, that a batch whose generation is not given fails the read instead of being
//! taken for damage, and that ciphertext changed on disk (checksum fixed up) is never served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use common::{open_sim, records, runtime, sim_config, tag};
use kinesin_log::{BatchKey, BatchKeys, Log, LogError, LogId, NoKeys, SimOp, SimStorage, StoredRecord};

const LOG: LogId = LogId(1);

struct Keys(Vec<BatchKey>);

impl BatchKeys for Keys {
    fn key(&self, generation: u32) -> Option<BatchKey> {
        self.0.iter().find(|k| k.generation() == generation).cloned()
    }
}

fn keys() -> Keys {
    Keys(vec![BatchKey::new(1, &[7u8; 32]), BatchKey::new(2, &[8u8; 32])])
}

/// Append `k` is plain when `k % 3 == 0`, else encrypted with generation `1 + k % 2`.
fn generation_of(append: u64) -> Option<u32> {
    (!append.is_multiple_of(3)).then_some(1 + (append % 2) as u32)
}

fn read_all_keyed(log: &Log, keys: &dyn BatchKeys) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut from = log.first(LOG).expect("first");
    loop {
        let got = log.read_with(LOG, from, 5, 4096, keys).expect("read");
        if got.records.is_empty() {
            break;
        }
        from = got.next_seq_index;
        out.extend(got.records);
    }
    out
}

/// Appends `count` batches; returns (append, records, acknowledged first index).
fn workload(log: &Log, count: u64) -> Vec<(u64, usize, Option<u64>)> {
    let keys = keys();
    runtime().block_on(async {
        let mut out = Vec::new();
        for append in 0..count {
            let n = 1 + (append % 3) as usize;
            let recs = records(LOG, append, n, 30);
            let result = match generation_of(append) {
                None => log.append(LOG, append as i64, recs).await,
                Some(g) => log.append_encrypted(LOG, append as i64, recs, &keys.0[g as usize - 1]).await,
            };
            out.push((append, n, result.ok().map(|o| o.first_seq_index)));
        }
        out
    })
}

fn check(log: &Log, attempts: &[(u64, usize, Option<u64>)], context: &str) {
    let stored = read_all_keyed(log, &keys());
    let mut expect_seq = 0u64;
    let mut i = 0;
    while i < stored.len() {
        let (_, append, index) = tag(&stored[i]);
        assert_eq!(index, 0, "{context}: append {append} starts in the middle");
        let (_, n, _) = attempts[append as usize];
        for j in 0..n {
            let r = &stored[i + j];
            assert_eq!(tag(r), (LOG.0, append, j), "{context}: append {append} not whole");
            assert_eq!(r.seq_index, expect_seq, "{context}: indexes not consecutive");
            assert_eq!(r.encrypted, generation_of(append).is_some(), "{context}: encrypted flag of {append}");
            expect_seq += 1;
        }
        i += n;
    }
    for &(append, _, acked) in attempts {
        if let Some(first) = acked {
            let found = stored.iter().find(|r| r.seq_index == first).map(tag);
            assert_eq!(found, Some((LOG.0, append, 0)), "{context}: acknowledged append {append} lost");
        }
    }
}

#[test]
fn encrypted_batches_recover_like_plain_ones() {
    let mut crashed = 0;
    for op in [SimOp::Write, SimOp::Sync, SimOp::Any] {
        for n in 1..30 {
            for torn in [None, Some(n)] {
                let context = format!("crash after {op:?} #{n}, torn {torn:?}");
                let sim = SimStorage::new();
                let config = sim_config(600);
                let attempts = {
                    let log = open_sim(&sim, &config);
                    log.create(LOG, 0).unwrap();
                    sim.crash_after(op, n);
                    let attempts = workload(&log, 20);
                    log.shutdown();
                    crashed += u32::from(sim.is_stopped());
                    attempts
                };
                sim.restart(torn);
                let log = open_sim(&sim, &config);
                check(&log, &attempts, &context);
                log.shutdown();
            }
        }
    }
    assert!(crashed > 100, "the runs should crash mid-workload ({crashed})");
}

#[test]
fn missing_generation_fails_the_read_and_changed_ciphertext_is_never_served() {
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    let seg = std::path::PathBuf::from("/logs/0000000000000001/00000000000000000000.seg");
    {
        let log = open_sim(&sim, &config);
        log.create(LOG, 0).unwrap();
        workload(&log, 3); // plain, generation 2, generation 1
        assert_eq!(read_all_keyed(&log, &keys()).len(), 1 + 2 + 3);
        // Plain records read without keys; the encrypted batch after them fails the read.
        let got = log.read_with(LOG, 0, 100, 1 << 20, &NoKeys);
        assert!(matches!(got, Err(LogError::KeyUnavailable { generation: 2, .. })), "{got:?}");
        let plain = log.read_with(LOG, 0, 1, 1 << 20, &NoKeys).expect("plain record");
        assert!(!plain.records[0].encrypted);
        log.shutdown();
    }
    // Change one ciphertext byte of the last batch and fix its checksum.
    let mut bytes = sim.read_file(&seg).unwrap();
    let len = bytes.len();
    let last_batch_len = 32 + 32 + 3 * 8 + 3 * 3 + 3 * 30; // header, enc framing, 3 records
    let at = len - last_batch_len;
    assert_eq!(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize, last_batch_len);
    bytes[len - 20] ^= 0x01;
    let mut crc_input = bytes[at + 32..].to_vec();
    crc_input.extend_from_slice(&bytes[at..at + 4]);
    crc_input.extend_from_slice(&bytes[at + 8..at + 32]);
    let crc = crc32c::crc32c(&crc_input);
    bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    sim.overwrite_file(&seg, &bytes).unwrap();
    sim.restart(None);
    let log = open_sim(&sim, &config);
    assert_eq!(log.tip(LOG).unwrap(), 6, "the changed batch passes its checksum: not cut on open");
    let got = log.read_with(LOG, 3, 100, 1 << 20, &keys());
    assert!(matches!(got, Err(LogError::Unauthentic { .. })), "{got:?}");
    // Records before it are still served, and the changed batch is not quarantined.
    assert_eq!(log.read_with(LOG, 0, 3, 1 << 20, &keys()).unwrap().records.len(), 3);
    assert!(log.read_with(LOG, 3, 100, 1 << 20, &keys()).is_err());
}
