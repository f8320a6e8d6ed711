//! Crash and fault tests on the simulated storage. They pin the durability contract: after a
//! crash at any point (after the Nth write, sync or any change, with or without a torn write),
//! every acknowledged record is present exactly once and in order, nothing unacknowledged
//! appears twice or half, and sequence indexes stay consecutive; a torn tail is cut, a flipped
//! byte is detected and never served, and a full disk fails appends cleanly without harming
//! earlier data or later appends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::{open_sim, read_all, records, runtime, sim_config, tag};
use kinesin_log::{
    Log, LogError, LogId, SimFault, SimOp, SimStorage, BATCH_HEADER_LEN, RECORD_OVERHEAD_BYTES,
    SEGMENT_HEADER_LEN,
};

struct Attempt {
    log: LogId,
    append: u64,
    count: usize,
    acked_first: Option<u64>,
}

const LOGS: [(LogId, u64); 2] = [(LogId(1), 0), (LogId(2), 1000)];

/// Three concurrent clients append to two logs until `appends_per_client` each or the crash.
fn workload(log: &Log, appends_per_client: u64) -> Vec<Attempt> {
    let rt = runtime();
    let attempts = rt.block_on(async {
        let clients = (0..3u64).map(|client| async move {
            let mut mine = Vec::new();
            for k in 0..appends_per_client {
                let append = client * 1000 + k;
                let (id, _) = LOGS[(append % 2) as usize];
                let count = 1 + (append % 3) as usize;
                let result = log.append(id, append as i64, records(id, append, count, 40)).await;
                mine.push(Attempt {
                    log: id,
                    append,
                    count,
                    acked_first: result.ok().map(|o| o.first_seq_index),
                });
            }
            mine
        });
        let mut all = Vec::new();
        for mine in common::join_all(clients).await {
            all.extend(mine);
        }
        all
    });
    attempts
}

/// Checks the recovered logs against what was attempted and acknowledged.
fn check_recovered(log: &Log, attempts: &[Attempt], context: &str) {
    for (id, first) in LOGS {
        let stored = read_all(log, id);
        assert_eq!(log.first(id).unwrap(), first, "{context}: first index of {id}");
        let tip = log.tip(id).unwrap();
        assert_eq!(tip, first + stored.len() as u64, "{context}: tip of {id}");
        // Consecutive indexes, arrival never backwards, no record twice.
        let mut seen: HashMap<(u64, u64, usize), u64> = HashMap::new();
        for (i, record) in stored.iter().enumerate() {
            assert_eq!(record.seq_index, first + i as u64, "{context}: indexes of {id} not consecutive");
            if i > 0 {
                assert!(record.arrival_ms >= stored[i - 1].arrival_ms, "{context}: arrival went backwards");
            }
            let t = tag(record);
            assert_eq!(t.0, id.0, "{context}: record of another log in {id}");
            assert!(seen.insert(t, record.seq_index).is_none(), "{context}: record {t:?} stored twice");
        }
        let by_append: BTreeMap<u64, &Attempt> =
            attempts.iter().filter(|a| a.log == id).map(|a| (a.append, a)).collect();
        // Every acknowledged record is where its append said.
        for attempt in by_append.values() {
            if let Some(acked_first) = attempt.acked_first {
                for i in 0..attempt.count {
                    assert_eq!(
                        seen.get(&(id.0, attempt.append, i)),
                        Some(&(acked_first + i as u64)),
                        "{context}: acknowledged record {}:{i} of {id} lost or moved",
                        attempt.append
                    );
                }
            }
        }
        // Whatever else survived is whole appends that were attempted.
        for (&(_, append, index), &seq) in &seen {
            let attempt =
                by_append.get(&append).unwrap_or_else(|| panic!("{context}: unknown append {append}"));
            assert!(index < attempt.count, "{context}: record index out of range");
            for j in 0..attempt.count {
                assert_eq!(
                    seen.get(&(id.0, append, j)),
                    Some(&(seq - index as u64 + j as u64)),
                    "{context}: append {append} of {id} survived only in part or out of order"
                );
            }
        }
    }
}

/// What one crash run saw, to check that the runs exercise what they claim to.
#[derive(Default)]
struct Seen {
    crashed: u32,
    failed_appends: u32,
    unacked_survivors: u32,
}

fn crash_and_check(op: SimOp, n: u64, torn_seed: Option<u64>, seen: &mut Seen) {
    let context = format!("crash after {op:?} #{n}, torn {torn_seed:?}");
    let sim = SimStorage::new();
    // Small segments so that crashes also hit segment creation.
    let config = sim_config(700);
    let attempts = {
        let log = open_sim(&sim, &config);
        for (id, first) in LOGS {
            log.create(id, first).unwrap();
        }
        sim.crash_after(op, n);
        let attempts = workload(&log, 16);
        log.shutdown();
        seen.crashed += u32::from(sim.is_stopped());
        seen.failed_appends += attempts.iter().filter(|a| a.acked_first.is_none()).count() as u32;
        attempts
    };
    sim.restart(torn_seed);
    let log = open_sim(&sim, &config);
    check_recovered(&log, &attempts, &context);
    let acked: usize = attempts.iter().filter(|a| a.acked_first.is_some()).map(|a| a.count).sum();
    let stored: usize = LOGS.iter().map(|(id, _)| read_all(&log, *id).len()).sum();
    seen.unacked_survivors += u32::from(stored > acked);
    if std::env::var("DEBUG_CRASH").is_ok() {
        eprintln!("{context}: acked {acked} stored {stored} attempts {}", attempts.len());
    }
    // The recovered log takes appends again, right after its tip.
    let rt = runtime();
    for (id, _) in LOGS {
        let tip = log.tip(id).unwrap();
        let outcome = rt.block_on(log.append(id, 0, records(id, 9999, 2, 5))).unwrap();
        assert_eq!(outcome.first_seq_index, tip, "{context}");
        assert_eq!(log.read(id, tip, 10, 1 << 20).unwrap().records.len(), 2, "{context}");
    }
}

#[test]
fn crash_after_every_nth_write() {
    let mut seen = Seen::default();
    for n in 1..=50 {
        crash_and_check(SimOp::Write, n, None, &mut seen);
        crash_and_check(SimOp::Write, n, Some(n), &mut seen);
    }
    // 48 appends write 48 batches plus segment headers: every run crashes.
    assert_eq!(seen.crashed, 100);
    assert!(seen.failed_appends > 100);
    assert!(seen.unacked_survivors > 5, "torn writes kept some unacknowledged batches");
}

#[test]
fn crash_after_every_nth_sync() {
    let mut seen = Seen::default();
    for n in 1..=50 {
        crash_and_check(SimOp::Sync, n, None, &mut seen);
        crash_and_check(SimOp::Sync, n, Some(n * 31), &mut seen);
    }
    assert!(seen.crashed >= 60, "crashed {} times", seen.crashed);
    assert!(seen.failed_appends > 100);
    // Whether unsynced bytes exist at a sync crash depends on how the writer happened to group
    // appends into rounds (timing); `crash_after_every_nth_change` pins that unacknowledged
    // batches do survive some crashes, so nothing timing-dependent is asserted here.
    eprintln!("{} runs kept unacknowledged batches", seen.unacked_survivors);
}

#[test]
fn crash_after_every_nth_change() {
    let mut seen = Seen::default();
    for n in 1..=110 {
        crash_and_check(SimOp::Any, n, Some(n * 7), &mut seen);
    }
    assert!(seen.crashed >= 90, "crashed {} times", seen.crashed);
    assert!(seen.unacked_survivors > 5);
}

#[test]
fn crash_during_create_leaves_no_half_log() {
    for n in 1..=8 {
        let sim = SimStorage::new();
        let config = sim_config(1 << 20);
        let created = {
            let log = open_sim(&sim, &config);
            sim.crash_after(SimOp::Any, n);
            log.create(LogId(5), 77).is_ok()
        };
        sim.restart(Some(n));
        let log = open_sim(&sim, &config);
        if created {
            assert_eq!(log.ids(), vec![LogId(5)], "crash after change #{n}");
        }
        if log.ids().contains(&LogId(5)) {
            assert_eq!(log.first(LogId(5)).unwrap(), 77);
            assert_eq!(log.tip(LogId(5)).unwrap(), 77);
        } else {
            log.create(LogId(5), 77).expect("the id is free again");
        }
    }
}

#[test]
fn crash_during_delete_leaves_the_whole_log_or_nothing() {
    let rt = runtime();
    for n in 1..=6 {
        let sim = SimStorage::new();
        let config = sim_config(300);
        let id = LogId(6);
        {
            let log = open_sim(&sim, &config);
            log.create(id, 0).unwrap();
            for k in 0..10 {
                rt.block_on(log.append(id, k, records(id, k as u64, 2, 30))).unwrap();
            }
            sim.crash_after(SimOp::Any, n);
            let _ = log.delete(id);
        }
        sim.restart(None);
        let log = open_sim(&sim, &config);
        if log.ids().contains(&id) {
            assert_eq!(read_all(&log, id).len(), 20, "crash after change #{n}");
        }
        assert!(sim.list_dir_names(Path::new("/logs")).iter().all(|name| !name.ends_with(".deleted")));
    }
}

trait ListNames {
    fn list_dir_names(&self, path: &Path) -> Vec<String>;
}

impl ListNames for SimStorage {
    fn list_dir_names(&self, path: &Path) -> Vec<String> {
        kinesin_log::Storage::list_dir(self, path).unwrap()
    }
}

fn segment_path(id: LogId, base: u64) -> PathBuf {
    PathBuf::from(format!("/logs/{:016x}/{base:020}.seg", id.0))
}

/// Encoded size of a batch made by `records(_, _, n, pad)` with short tags.
fn batch_len(n: usize, pad: usize) -> usize {
    BATCH_HEADER_LEN + (0..n).map(|i| RECORD_OVERHEAD_BYTES + format!("pk{i}").len() + pad).sum::<usize>()
}

#[test]
fn torn_tail_is_cut_at_every_offset_of_the_last_batch() {
    let rt = runtime();
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    let id = LogId(1);
    {
        let log = open_sim(&sim, &config);
        log.create(id, 0).unwrap();
        for k in 0..3 {
            rt.block_on(log.append(id, k, records(id, k as u64, 3, 50))).unwrap();
        }
    }
    let path = segment_path(id, 0);
    let full = sim.read_file(&path).unwrap();
    let last_len = batch_len(3, 50);
    assert_eq!(full.len(), SEGMENT_HEADER_LEN + 3 * last_len);
    let last_offset = full.len() - last_len;
    for cut in last_offset..full.len() {
        sim.overwrite_file(&path, &full[..cut]).unwrap();
        let log = open_sim(&sim, &config);
        assert_eq!(log.tip(id).unwrap(), 6, "cut at {cut}");
        let stored = read_all(&log, id);
        assert_eq!(stored.len(), 6, "cut at {cut}");
        assert_eq!(
            sim.read_file(&path).unwrap().len(),
            last_offset,
            "the torn bytes are gone (cut at {cut})"
        );
        let outcome = rt.block_on(log.append(id, 10, records(id, 50, 1, 5))).unwrap();
        assert_eq!(outcome.first_seq_index, 6);
    }
    // A torn tail made of zeros (a file extended but not written) is cut as well.
    let mut zeros = full[..last_offset].to_vec();
    zeros.extend_from_slice(&[0u8; 100]);
    sim.overwrite_file(&path, &zeros).unwrap();
    let log = open_sim(&sim, &config);
    assert_eq!(log.tip(id).unwrap(), 6);
}

/// Three segments of three batches each; flips every byte of the middle batch of segment
/// `damaged` and checks that the damage is never served and the rest is.
fn flip_every_byte_of_a_middle_batch(damaged: usize) {
    let rt = runtime();
    let sim = SimStorage::new();
    let id = LogId(1);
    let pad = 40;
    let one = batch_len(2, pad);
    // Room for exactly three batches per segment.
    let config = sim_config((SEGMENT_HEADER_LEN + 3 * one) as u64);
    {
        let log = open_sim(&sim, &config);
        log.create(id, 0).unwrap();
        for k in 0..9u64 {
            rt.block_on(log.append(id, k as i64, records(id, k, 2, pad))).unwrap();
        }
    }
    let bases = [0u64, 6, 12];
    for base in bases {
        assert!(sim.read_file(&segment_path(id, base)).is_ok(), "segment {base} exists");
    }
    let path = segment_path(id, bases[damaged]);
    let pristine_all: Vec<_> = sim.list_dir_names(Path::new("/logs/0000000000000001"));
    let pristine = sim.read_file(&path).unwrap();
    let start = SEGMENT_HEADER_LEN + one;
    for at in start..start + one {
        // Start from the pristine image each time (also undoing any new segment).
        let sim = SimStorage::new();
        {
            let log = open_sim(&sim, &config);
            log.create(id, 0).unwrap();
            for k in 0..9u64 {
                rt.block_on(log.append(id, k as i64, records(id, k, 2, pad))).unwrap();
            }
        }
        assert_eq!(sim.list_dir_names(Path::new("/logs/0000000000000001")), pristine_all);
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x10;
        sim.overwrite_file(&path, &bytes).unwrap();
        let log = open_sim(&sim, &config);
        let context = format!("segment {damaged}, byte {at}");
        assert_eq!(log.tip(id).unwrap(), 18, "{context}: the tip never moves back over damage");
        // Read everything, stepping over the hole the damage leaves.
        let mut got = Vec::new();
        let mut from = 0;
        while from < 18 {
            let out = log.read(id, from, 100, 1 << 20).unwrap();
            if out.records.is_empty() {
                from += 1;
                continue;
            }
            from = out.next_seq_index;
            got.extend(out.records);
        }
        let seqs: Vec<u64> = got.iter().map(|r| r.seq_index).collect();
        let damaged_base = bases[damaged];
        let expected: Vec<u64> =
            (0..18).filter(|s| *s < damaged_base + 2 || *s >= damaged_base + 6).collect();
        assert_eq!(seqs, expected, "{context}");
        for record in &got {
            let (_, append, i) = tag(record);
            assert_eq!(record.seq_index, append * 2 + i as u64, "{context}: wrong data served");
        }
        // New appends go after everything ever written.
        let outcome = rt.block_on(log.append(id, 100, records(id, 9, 1, 5))).unwrap();
        assert_eq!(outcome.first_seq_index, 18, "{context}");
        drop(log);
        // And the damage is handled the same way on the next open.
        let log = open_sim(&sim, &config);
        assert_eq!(log.tip(id).unwrap(), 19, "{context}");
        assert_eq!(log.read(id, 18, 10, 1 << 20).unwrap().records.len(), 1, "{context}");
    }
}

#[test]
fn flipped_byte_in_an_older_segment_is_not_served() {
    flip_every_byte_of_a_middle_batch(1);
}

#[test]
fn flipped_byte_in_the_last_segment_is_not_served() {
    flip_every_byte_of_a_middle_batch(2);
}

#[test]
fn full_disk_fails_appends_cleanly_and_recovers() {
    let rt = runtime();
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    let id = LogId(1);
    let log = open_sim(&sim, &config);
    log.create(id, 0).unwrap();
    for k in 0..5u64 {
        rt.block_on(log.append(id, 1, records(id, k, 2, 20))).unwrap();
    }
    sim.set_disk_full(true);
    let err = rt.block_on(log.append(id, 2, records(id, 5, 2, 20))).unwrap_err();
    assert!(err.is_storage_full(), "{err}");
    let message = err.to_string();
    assert!(message.contains("No space left on device"), "{message}");
    assert!(message.contains("/logs/0000000000000001/00000000000000000000.seg"), "{message}");
    assert!(matches!(err, LogError::Io { op: "write", .. }));
    assert_eq!(log.tip(id).unwrap(), 10);
    assert_eq!(read_all(&log, id).len(), 10, "earlier data intact");
    sim.set_disk_full(false);
    let outcome = rt.block_on(log.append(id, 3, records(id, 6, 2, 20))).unwrap();
    assert_eq!(outcome.first_seq_index, 10, "the failed append left no gap");

    // A sync that fails with ENOSPC fails its append; the next one reuses the indexes.
    sim.fail_nth(SimOp::Sync, 1, SimFault::NoSpace);
    let err = rt.block_on(log.append(id, 4, records(id, 7, 2, 20))).unwrap_err();
    assert!(err.is_storage_full(), "{err}");
    assert!(matches!(err, LogError::Io { op: "sync", .. }), "{err}");
    assert_eq!(log.tip(id).unwrap(), 12);
    let outcome = rt.block_on(log.append(id, 5, records(id, 8, 2, 20))).unwrap();
    assert_eq!(outcome.first_seq_index, 12);
    let stats = log.stats();
    assert_eq!(stats.appends_failed, 2);
    drop(log);

    sim.restart(Some(3));
    let log = open_sim(&sim, &config);
    let stored = read_all(&log, id);
    let appends: Vec<u64> = stored.iter().map(|r| tag(r).1).collect();
    assert_eq!(appends, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 6, 6, 8, 8], "failed appends never appear");
}
