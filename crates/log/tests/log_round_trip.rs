//! Round trips through the public API on the real filesystem and on the simulated one: what is
//! appended reads back the same before and after a restart, sequence indexes and arrival times
//! follow the documented rules, and trim, delete and the read limits behave as specified.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{read_all, records, runtime, sim_config, tag};
use kinesin_log::{Durability, FsStorage, Log, LogConfig, LogError, LogId, RecordIn, SimStorage};

fn fs_config(dir: &std::path::Path) -> LogConfig {
    let mut config = LogConfig::new(dir);
    config.segment_bytes_max = 4096;
    config.tail_bytes_per_log_max = 2048;
    config
}

#[test]
fn append_read_restart_read_on_the_filesystem() {
    let rt = runtime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = fs_config(tmp.path());
    let a = LogId(1);
    let b = LogId(0xdead_beef);
    {
        let log = Log::open_default(config.clone()).expect("open");
        log.create(a, 0).expect("create a");
        log.create(b, 1000).expect("create b");
        assert!(matches!(log.create(a, 5), Err(LogError::AlreadyExists(id)) if id == a));
        assert_eq!(log.ids(), vec![a, b]);
        assert_eq!(log.tip(b).unwrap(), 1000);
        assert_eq!(log.first(b).unwrap(), 1000);
        assert_eq!(log.newest_arrival_ms(a).unwrap(), None);
        for n in 0..40u64 {
            let outcome = rt.block_on(log.append(a, 100 + n as i64, records(a, n, 3, 200))).expect("append");
            assert_eq!(outcome.first_seq_index, n * 3);
            assert_eq!(outcome.arrival_ms, 100 + n as i64);
        }
        let outcome = rt.block_on(log.append(b, 5, records(b, 0, 2, 10))).expect("append b");
        assert_eq!(outcome.first_seq_index, 1000);
        assert_eq!(log.tip(a).unwrap(), 120);
        let all = read_all(&log, a);
        assert_eq!(all.len(), 120);
        for (i, record) in all.iter().enumerate() {
            assert_eq!(record.seq_index, i as u64);
            assert_eq!(tag(record), (a.0, i as u64 / 3, i % 3));
            assert_eq!(record.partition_key, Bytes::from(format!("pk{}", i % 3)));
        }
        rt.block_on(log.close());
    }
    // Several segments were written (4 KiB each).
    let dir = tmp.path().join(format!("{:016x}", a.0));
    let segments = std::fs::read_dir(&dir).expect("log dir").count();
    assert!(segments > 3, "expected several segments, found {segments}");
    assert!(dir.join("00000000000000000000.seg").exists());

    let log = Log::open_default(config).expect("reopen");
    assert_eq!(log.ids(), vec![a, b]);
    assert_eq!(log.tip(a).unwrap(), 120);
    assert_eq!(log.first(b).unwrap(), 1000);
    assert_eq!(log.newest_arrival_ms(a).unwrap(), Some(139));
    let again = read_all(&log, a);
    assert_eq!(again.len(), 120);
    for (i, record) in again.iter().enumerate() {
        assert_eq!(record.seq_index, i as u64);
        assert_eq!(record.arrival_ms, 100 + i as i64 / 3);
        assert_eq!(tag(record), (a.0, i as u64 / 3, i % 3));
    }
    // Appends continue where the log left off.
    let outcome = rt.block_on(log.append(a, 0, records(a, 40, 1, 1))).expect("append after restart");
    assert_eq!(outcome.first_seq_index, 120);
    assert_eq!(outcome.arrival_ms, 139, "arrival never goes backwards, even across a restart");
}

#[test]
fn empty_log_keeps_its_first_index_across_restart() {
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    {
        let log = common::open_sim(&sim, &config);
        log.create(LogId(7), 123_456).expect("create");
    }
    sim.restart(None);
    let log = common::open_sim(&sim, &config);
    assert_eq!(log.ids(), vec![LogId(7)]);
    assert_eq!(log.tip(LogId(7)).unwrap(), 123_456);
    assert_eq!(log.first(LogId(7)).unwrap(), 123_456);
    let got = log.read(LogId(7), 0, 10, 1000).expect("read");
    assert!(got.records.is_empty());
    assert_eq!(got.next_seq_index, 123_456);
}

#[test]
fn arrival_is_clamped_and_seek_time_finds_the_first_at_or_after() {
    let rt = runtime();
    let sim = SimStorage::new();
    let log = common::open_sim(&sim, &sim_config(512));
    let id = LogId(1);
    log.create(id, 10).unwrap();
    // now_ms goes 100, 200, 150 (clamped to 200), 300.
    let times = [100, 200, 150, 300];
    let mut firsts = Vec::new();
    for (n, now) in times.iter().enumerate() {
        let outcome = rt.block_on(log.append(id, *now, records(id, n as u64, 2, 100))).unwrap();
        firsts.push(outcome.first_seq_index);
    }
    assert_eq!(firsts, vec![10, 12, 14, 16]);
    let arrivals: Vec<i64> = read_all(&log, id).iter().map(|r| r.arrival_ms).collect();
    assert_eq!(arrivals, vec![100, 100, 200, 200, 200, 200, 300, 300]);
    assert_eq!(log.seek_time(id, 0).unwrap(), 10);
    assert_eq!(log.seek_time(id, 100).unwrap(), 10);
    assert_eq!(log.seek_time(id, 101).unwrap(), 12);
    assert_eq!(log.seek_time(id, 200).unwrap(), 12);
    assert_eq!(log.seek_time(id, 250).unwrap(), 16);
    assert_eq!(log.seek_time(id, 301).unwrap(), 18, "past the newest: the tip");
    assert_eq!(log.newest_arrival_ms(id).unwrap(), Some(300));
}

#[test]
fn read_limits() {
    let rt = runtime();
    let sim = SimStorage::new();
    let log = common::open_sim(&sim, &sim_config(1024));
    let id = LogId(3);
    log.create(id, 0).unwrap();
    for n in 0..10 {
        // Each record carries 2 (key) + 98 (data) = 100 bytes.
        rt.block_on(log.append(id, n, records(id, n as u64, 5, 98))).unwrap();
    }
    let got = log.read(id, 0, 3, 1 << 20).unwrap();
    assert_eq!(got.records.iter().map(|r| r.seq_index).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(got.next_seq_index, 3);
    // 250 bytes: two records fit, the third would exceed.
    let got = log.read(id, 7, 100, 250).unwrap();
    assert_eq!(got.records.iter().map(|r| r.seq_index).collect::<Vec<_>>(), vec![7, 8]);
    assert_eq!(got.next_seq_index, 9);
    // Always at least one record, even if it alone exceeds max_bytes.
    let got = log.read(id, 20, 100, 1).unwrap();
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].seq_index, 20);
    // max_records == 0 reads nothing.
    let got = log.read(id, 20, 0, 1 << 20).unwrap();
    assert!(got.records.is_empty());
    assert_eq!(got.next_seq_index, 20);
    // Reading at the tip returns nothing and points at the tip.
    let got = log.read(id, 50, 10, 1 << 20).unwrap();
    assert!(got.records.is_empty());
    assert_eq!(got.next_seq_index, 50);
    // A read spanning many batches and segments (some from memory, most from disk).
    let got = log.read(id, 0, 1000, 1 << 20).unwrap();
    assert_eq!(got.records.len(), 50);
    assert!(got.records.iter().enumerate().all(|(i, r)| r.seq_index == i as u64));
    assert_eq!(got.next_seq_index, 50);
}

#[test]
fn trim_frees_old_segments_and_delete_removes_the_log() {
    let rt = runtime();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = fs_config(tmp.path());
    let log = Log::open(config.clone(), Arc::new(FsStorage)).unwrap();
    let id = LogId(9);
    log.create(id, 0).unwrap();
    for n in 0..60u64 {
        rt.block_on(log.append(id, n as i64 * 10, records(id, n, 2, 200))).unwrap();
    }
    let dir = tmp.path().join(format!("{:016x}", id.0));
    let count_files = || std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    let before = count_files();
    assert!(before >= 4, "{before} segments");
    assert_eq!(log.trim_before(id, 0).unwrap(), 0, "nothing is older than 0");
    let freed = log.trim_before(id, 300).unwrap();
    assert!(freed > 0);
    let first = log.first(id).unwrap();
    assert!(first > 0);
    // Everything that arrived at or after 300 is still there; only whole segments went.
    let kept = read_all(&log, id);
    assert_eq!(kept.first().map(|r| r.seq_index), Some(first));
    assert!(kept.iter().all(|r| r.seq_index >= first));
    assert!(log.seek_time(id, 300).unwrap() >= first);
    let at_300 = log.read(id, log.seek_time(id, 300).unwrap(), 1, 1 << 20).unwrap();
    assert_eq!(at_300.records[0].arrival_ms, 300);
    assert!(count_files() < before);
    // Reading below first starts at first.
    assert_eq!(log.read(id, 0, 1, 1 << 20).unwrap().records[0].seq_index, first);

    // Trimming everything leaves an empty log at the same tip, also after a restart.
    let tip = log.tip(id).unwrap();
    assert!(log.trim_before(id, 10_000).unwrap() > 0);
    assert_eq!(log.first(id).unwrap(), tip);
    assert_eq!(log.tip(id).unwrap(), tip);
    assert_eq!(log.newest_arrival_ms(id).unwrap(), None);
    assert_eq!(count_files(), 1);
    drop(log);
    let log = Log::open(config.clone(), Arc::new(FsStorage)).unwrap();
    assert_eq!(log.first(id).unwrap(), tip);
    assert_eq!(log.tip(id).unwrap(), tip);
    assert_eq!(rt.block_on(log.append(id, 5, records(id, 99, 1, 1))).unwrap().first_seq_index, tip);

    log.delete(id).unwrap();
    assert!(!dir.exists());
    assert!(log.ids().is_empty());
    assert!(matches!(log.read(id, 0, 1, 1), Err(LogError::NotFound(_))));
    assert!(matches!(rt.block_on(log.append(id, 0, records(id, 0, 1, 1))), Err(LogError::NotFound(_))));
    assert!(matches!(log.delete(id), Err(LogError::NotFound(_))));
    drop(log);
    let log = Log::open(config, Arc::new(FsStorage)).unwrap();
    assert!(log.ids().is_empty());
    log.create(id, 5).unwrap();
    assert_eq!(log.tip(id).unwrap(), 5);
}

#[test]
fn invalid_appends_and_shutdown_are_reported() {
    let rt = runtime();
    let sim = SimStorage::new();
    let log = common::open_sim(&sim, &sim_config(1 << 20));
    let id = LogId(1);
    log.create(id, 0).unwrap();
    assert!(matches!(rt.block_on(log.append(id, 0, Vec::new())), Err(LogError::InvalidAppend(_))));
    let huge = vec![RecordIn {
        partition_key: Bytes::new(),
        data: Bytes::from(vec![0u8; kinesin_log::BATCH_BYTES_MAX]),
    }];
    assert!(matches!(rt.block_on(log.append(id, 0, huge)), Err(LogError::InvalidAppend(_))));
    rt.block_on(log.append(id, 0, records(id, 0, 1, 1))).unwrap();
    log.shutdown();
    assert!(matches!(rt.block_on(log.append(id, 0, records(id, 1, 1, 1))), Err(LogError::ShuttingDown)));
    // Reads still work after shutdown.
    assert_eq!(read_all(&log, id).len(), 1);
}

#[test]
fn interval_durability_acknowledges_after_write_and_syncs_later() {
    let rt = runtime();
    let sim = SimStorage::new();
    let mut config = sim_config(1 << 20);
    config.durability = Durability::Interval(Duration::from_millis(20));
    let id = LogId(4);
    {
        let log = common::open_sim(&sim, &config);
        log.create(id, 0).unwrap();
        let syncs_before = sim.counts().file_syncs;
        for n in 0..20 {
            rt.block_on(log.append(id, n, records(id, n as u64, 1, 10))).unwrap();
        }
        assert!(sim.counts().file_syncs - syncs_before < 20, "appends did not wait for a sync each");
        assert_eq!(read_all(&log, id).len(), 20, "acknowledged appends are visible at once");
        // The interval sync runs (awaited, bounded).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sim.counts().file_syncs == syncs_before {
            assert!(std::time::Instant::now() < deadline, "the interval sync never ran");
            std::thread::yield_now();
        }
    }
    sim.restart(None);
    let log = common::open_sim(&sim, &config);
    assert_eq!(read_all(&log, id).len(), 20, "synced by the interval (or on shutdown)");
}

#[test]
fn unknown_format_version_is_a_clear_error() {
    let sim = SimStorage::new();
    let config = sim_config(1 << 20);
    {
        let log = common::open_sim(&sim, &config);
        log.create(LogId(2), 0).unwrap();
    }
    let path = std::path::Path::new("/logs/0000000000000002/00000000000000000000.seg");
    let mut bytes = sim.read_file(path).unwrap();
    // Version 9 at offset 8, with a correct header checksum.
    bytes[8..10].copy_from_slice(&9u16.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    sim.overwrite_file(path, &bytes).unwrap();
    let err = Log::open(config, Arc::new(sim.clone())).unwrap_err();
    assert!(matches!(err, LogError::UnsupportedVersion { version: 9, .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("00000000000000000000.seg: format version 9") && text.contains("upgrade kinesin"),
        "{err}"
    );
}
