//! Scale: many logs on one node. Pins that the in-memory tails of 10,000 logs stay within
//! `tail_bytes_total_max` (evicted logs then read from disk, correctly), that the open segment
//! files of 2,000 logs appended and read stay within `open_files_max`, and that `create_many`
//! makes many logs durable with one sync round. The ignored tests measure, on the real
//! filesystem, how long creating 1,000 logs takes and the process RSS with 10,000 empty logs:
//! `cargo test --release -p kinesin-log --test log_scale -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use common::{records, runtime, sim_config, tag};
use kinesin_log::{Log, LogConfig, LogId, SimStorage};

/// Appends one batch to each log, all at once (so that they share group-commit rounds).
fn append_to_all(log: &Log, ids: &[LogId], append: u64, pad: usize) {
    runtime().block_on(async {
        let appends =
            ids.iter().map(|id| log.append(*id, 1_000 + append as i64, records(*id, append, 2, pad)));
        for result in common::join_all(appends).await {
            result.expect("append");
        }
    });
}

#[test]
fn tails_of_10000_logs_stay_within_the_memory_budget() {
    let sim = SimStorage::new();
    let mut config = sim_config(1 << 20);
    config.tail_bytes_per_log_max = 64 * 1024;
    config.tail_bytes_total_max = 1 << 20;
    config.open_files_max = 64;
    let log = Log::open(config.clone(), Arc::new(sim.clone())).expect("open");
    let ids: Vec<LogId> = (1..=10_000).map(LogId).collect();
    let creates: Vec<(LogId, u64)> = ids.iter().map(|id| (*id, 0)).collect();
    log.create_many(&creates).expect("create_many");
    // 2 records of ~200 bytes a log and round: ~4.5 MB a round in all, over 4x the budget.
    for append in 0..3 {
        append_to_all(&log, &ids, append, 200);
        let held = log.stats().tail_bytes;
        assert!(held <= config.tail_bytes_total_max as u64, "round {append}: {held} bytes in tails");
        assert!(held > 0, "recent appends are kept in memory");
    }
    // Reads of evicted logs come from the segments, and are right.
    for id in [ids[0], ids[4_999], ids[9_999]] {
        let got = log.read(id, 0, 100, 1 << 20).expect("read");
        let tags: Vec<(u64, u64, usize)> = got.records.iter().map(tag).collect();
        let want: Vec<(u64, u64, usize)> =
            (0..3u64).flat_map(|append| (0..2).map(move |i| (id.0, append, i))).collect();
        assert_eq!(tags, want, "log {id}");
        let held = log.stats().tail_bytes;
        assert!(held <= config.tail_bytes_total_max as u64);
    }
    assert!(sim.counts().open_handles_max <= config.open_files_max as u64);
    log.delete(ids[9_999]).expect("delete");
    drop(log);
}

#[test]
fn open_files_of_2000_logs_stay_within_the_cap() {
    let sim = SimStorage::new();
    let mut config = sim_config(4096); // small segments: several files per log
    config.open_files_max = 32;
    let cap = config.open_files_max as u64;
    let ids: Vec<LogId> = (1..=2_000).map(LogId).collect();
    {
        let log = Log::open(config.clone(), Arc::new(sim.clone())).expect("open");
        for chunk in ids.chunks(500) {
            let creates: Vec<(LogId, u64)> = chunk.iter().map(|id| (*id, 0)).collect();
            log.create_many(&creates).expect("create_many");
        }
        for append in 0..12 {
            append_to_all(&log, &ids, append, 300);
            assert!(log.stats().open_files < cap);
        }
        for id in ids.iter().step_by(7) {
            assert_eq!(common::read_all(&log, *id).len(), 24, "log {id}");
        }
        assert!(log.read(ids[0], 0, 1, 1 << 20).is_ok());
    }
    assert!(sim.counts().open_handles_max <= cap, "{} open at once", sim.counts().open_handles_max);
    assert_eq!(sim.counts().open_handles, 0, "every handle is closed with the log");
    // Again after a restart: recovery opens files one at a time.
    sim.restart(None);
    let log = Log::open(config.clone(), Arc::new(sim.clone())).expect("reopen");
    for id in ids.iter().step_by(97) {
        assert_eq!(common::read_all(&log, *id).len(), 24, "log {id} after restart");
    }
    append_to_all(&log, &ids, 12, 300);
    drop(log);
    assert!(sim.counts().open_handles_max <= cap, "{} open at once", sim.counts().open_handles_max);
}

#[test]
fn create_many_is_one_sync_round_and_survives_a_crash() {
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    let log = Log::open(config.clone(), Arc::new(sim.clone())).expect("open");
    let before = sim.counts();
    let creates: Vec<(LogId, u64)> = (1..=100).map(|i| (LogId(i), i * 10)).collect();
    log.create_many(&creates).expect("create_many");
    let after = sim.counts();
    assert_eq!(after.fs_syncs - before.fs_syncs, 1, "one syncfs");
    assert_eq!(after.dir_syncs - before.dir_syncs, 1, "one sync of the parent directory");
    assert_eq!(after.file_syncs, before.file_syncs, "no per-file sync");
    // Duplicates are refused before anything is made.
    let err = log.create_many(&[(LogId(500), 0), (LogId(500), 0)]).unwrap_err();
    assert!(matches!(err, kinesin_log::LogError::AlreadyExists(LogId(500))));
    assert!(log.create_many(&[(LogId(501), 0), (LogId(1), 0)]).is_err());
    assert!(log.tip(LogId(501)).is_err(), "all or nothing");
    sim.restart(None);
    drop(log);
    let log = Log::open(config, Arc::new(sim.clone())).expect("reopen");
    for (id, first) in creates {
        assert_eq!(log.tip(id).expect("survived the crash"), first);
    }
    assert_eq!(log.ids().len(), 100);
}

/// A directory on the disk the tests run on (not a tmpfs), removed at the end.
fn real_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

#[test]
#[ignore = "measures the real filesystem; run by hand"]
fn bench_create_1000_logs() {
    let dir = real_dir();
    let log = Log::open_default(LogConfig::new(dir.path().join("log"))).expect("open");
    for round in 0..3u64 {
        let creates: Vec<(LogId, u64)> = (0..1_000).map(|i| (LogId(round * 1_000 + i), 0)).collect();
        let started = Instant::now();
        log.create_many(&creates).expect("create_many");
        println!("create_many of 1,000 logs: {} ms", started.elapsed().as_millis());
    }
    let started = Instant::now();
    for i in 0..20 {
        log.create(LogId(10_000 + i), 0).expect("create");
    }
    println!("create of 1 log: {:.1} ms each", started.elapsed().as_secs_f64() * 1e3 / 20.0);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS value")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|dir| dir.count()).unwrap_or(0)
}

#[test]
#[ignore = "measures the real filesystem and process memory; run by hand"]
fn bench_rss_of_10000_empty_logs() {
    let dir = real_dir();
    let path: PathBuf = dir.path().join("log");
    let before = rss_kib();
    {
        let log = Log::open_default(LogConfig::new(&path)).expect("open");
        let creates: Vec<(LogId, u64)> = (0..10_000).map(|i| (LogId(i), 0)).collect();
        let started = Instant::now();
        log.create_many(&creates).expect("create_many");
        println!("create_many of 10,000 logs: {} ms", started.elapsed().as_millis());
        println!(
            "RSS after creating 10,000 logs: {} MiB (+{} MiB)",
            rss_kib() / 1024,
            (rss_kib() - before) / 1024
        );
    }
    let started = Instant::now();
    let log = Log::open_default(LogConfig::new(&path)).expect("reopen");
    println!("open of 10,000 empty logs: {} ms", started.elapsed().as_millis());
    assert_eq!(log.ids().len(), 10_000);
    println!(
        "RSS after opening 10,000 empty logs: {} MiB (+{} MiB over the test process); {} open descriptors",
        rss_kib() / 1024,
        (rss_kib() - before) / 1024,
        open_fds()
    );
}
