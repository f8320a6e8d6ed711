//! Checkpointed recovery: opening a log reads its segment index files, not its segments. Pins
//! that after a clean shutdown no segment byte is read at open beyond one batch header per
//! segment, that after a crash only the unindexed tail of each active segment is read (at most
//! `INDEX_CHECKPOINT_BYTES`), and that a damaged or missing index falls back to a scan that
//! serves the same records.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{open_sim, read_all, records, runtime, sim_config};
use kinesin_log::{Log, LogConfig, LogId, SimStorage, INDEX_CHECKPOINT_BYTES};

const LOGS: u64 = 4;
const SEGMENT_BYTES: u64 = 64 * 1024;
/// One log is enough to show the bound, and keeps the simulated syncs of a growing file cheap.
const CRASH_LOGS: u64 = 1;

/// Appends of 4 records of ~1 KiB each: 1 MiB per log with 64 KiB segments (16 segments), or
/// enough for three index checkpoints in one big segment.
fn appends_per_log() -> u64 {
    256
}

/// Fills `LOGS` logs with about 1 MiB each; returns the bytes stored.
fn fill(sim: &SimStorage, config: &LogConfig) -> u64 {
    let rt = runtime();
    let log = open_sim(sim, config);
    for id in 0..LOGS {
        log.create(LogId(id), 0).unwrap();
    }
    for k in 0..appends_per_log() {
        for id in 0..LOGS {
            rt.block_on(log.append(LogId(id), k as i64, records(LogId(id), k, 4, 1000))).unwrap();
        }
    }
    log.stats().bytes_written
}

fn bytes_read_by_open(sim: &SimStorage, config: &LogConfig) -> (u64, Log) {
    let before = sim.counts().bytes_read;
    let log = open_sim(sim, config);
    (sim.counts().bytes_read - before, log)
}

#[test]
fn clean_restart_reads_indexes_not_segments() {
    let sim = SimStorage::new();
    let config = sim_config(SEGMENT_BYTES);
    let stored = fill(&sim, &config);
    let (read, log) = bytes_read_by_open(&sim, &config);
    eprintln!("stored {stored} bytes; open read {read}");
    // Index files hold 32 bytes per batch of ~4 KiB: about 1% of the data, plus a header each.
    assert!(read * 50 < stored, "open read {read} of {stored} bytes");
    for id in 0..LOGS {
        let got = read_all(&log, LogId(id));
        assert_eq!(got.len(), 1024);
        assert!(got.iter().enumerate().all(|(i, r)| r.seq_index == i as u64));
    }
}

#[test]
fn crash_restart_scans_only_the_unindexed_tail() {
    let sim = SimStorage::new();
    let config = sim_config(1 << 30);
    let mut stored = 0;
    for _ in 0..(2 * INDEX_CHECKPOINT_BYTES / (1 << 20)) {
        stored += fill_more(&sim, &config);
    }
    let (read, log) = bytes_read_by_open(&sim, &config);
    eprintln!("stored {stored} bytes in one segment per log; open after a crash read {read}");
    assert!(read <= CRASH_LOGS * (INDEX_CHECKPOINT_BYTES + 64 * 1024), "open read {read} of {stored} bytes");
    assert!(read * 2 < stored, "open read {read} of {stored} bytes");
    let expected = 1024 * 2 * INDEX_CHECKPOINT_BYTES as usize / (1 << 20);
    for id in 0..CRASH_LOGS {
        assert_eq!(read_all(&log, LogId(id)).len(), expected);
    }
}

/// Appends another ~1 MiB to each log (creating them on the first call), then crashes.
fn fill_more(sim: &SimStorage, config: &LogConfig) -> u64 {
    let rt = runtime();
    let log = open_sim(sim, config);
    if log.ids().is_empty() {
        for id in 0..CRASH_LOGS {
            log.create(LogId(id), 0).unwrap();
        }
    }
    for k in 0..appends_per_log() {
        for id in 0..CRASH_LOGS {
            let tip = log.tip(LogId(id)).unwrap();
            rt.block_on(log.append(LogId(id), k as i64, records(LogId(id), tip, 4, 1000))).unwrap();
        }
    }
    let written = log.stats().bytes_written;
    // Power cut before the clean shutdown could index the active segments.
    sim.crash_after(kinesin_log::SimOp::Any, 1);
    drop(log);
    sim.restart(None);
    written
}

#[test]
fn damaged_or_missing_indexes_fall_back_to_a_scan() {
    let sim = SimStorage::new();
    let config = sim_config(SEGMENT_BYTES);
    fill(&sim, &config);
    let dir = Path::new("/logs/0000000000000001");
    let mut names: Vec<String> = kinesin_log::Storage::list_dir(&sim, dir).unwrap();
    names.sort();
    let indexes: Vec<&String> = names.iter().filter(|n| n.ends_with(".idx")).collect();
    assert!(indexes.len() >= 15, "{names:?}");
    // Flip a byte in one index, empty another, remove a third.
    let flip = dir.join(indexes[1]);
    let mut bytes = sim.read_file(&flip).unwrap();
    bytes[50] ^= 0x01;
    sim.overwrite_file(&flip, &bytes).unwrap();
    sim.overwrite_file(&dir.join(indexes[2]), &[]).unwrap();
    kinesin_log::Storage::remove_file(&sim, &dir.join(indexes[3])).unwrap();
    let (read, log) = bytes_read_by_open(&sim, &config);
    assert!(read >= 3 * SEGMENT_BYTES, "three segments scanned, read {read}");
    let got = read_all(&log, LogId(1));
    assert_eq!(got.len(), 1024);
    assert!(got.iter().enumerate().all(|(i, r)| r.seq_index == i as u64));
    drop(log);
    // The scan rewrote the indexes: the next open reads little again.
    let (read, _log) = bytes_read_by_open(&sim, &config);
    assert!(read < SEGMENT_BYTES, "read {read} after the indexes were rewritten");
}

/// Restart time on the real filesystem, proportional to the 10 GiB target. Ignored by
/// default; `KINESIN_RECOVERY_BENCH_MB` sets the data size (default 1024).
#[test]
#[ignore = "writes to the real disk; run by hand for numbers"]
fn restart_time_on_the_filesystem() {
    let megabytes: u64 =
        std::env::var("KINESIN_RECOVERY_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut config = LogConfig::new(dir.path());
    config.segment_bytes_max = 64 * 1024 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let logs = 16u64;
    {
        let log = Arc::new(Log::open_default(config.clone()).unwrap());
        for id in 0..logs {
            log.create(LogId(id), 0).unwrap();
        }
        // 500 records of 1 KiB per append, 16 logs appending concurrently.
        let appends = megabytes * 1024 * 1024 / (500 * 1024) / logs;
        rt.block_on(async {
            let tasks: Vec<_> = (0..logs)
                .map(|id| {
                    let log = Arc::clone(&log);
                    tokio::spawn(async move {
                        for k in 0..appends {
                            log.append(LogId(id), k as i64, records(LogId(id), k, 500, 1024)).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        eprintln!("wrote {} MB", log.stats().bytes_written / 1_000_000);
    }
    let start = std::time::Instant::now();
    let log = Log::open_default(config).unwrap();
    let elapsed = start.elapsed();
    eprintln!("restart of {megabytes} MiB in {logs} logs: {:.1} ms", elapsed.as_secs_f64() * 1e3);
    assert!(log.tip(LogId(0)).unwrap() > 0);
}
