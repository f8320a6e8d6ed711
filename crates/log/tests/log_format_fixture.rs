//! Format compatibility: `tests/fixtures/v1/` is a data directory written by format version 1
//! (two logs; one with three sealed, indexed segments and an active one, one empty). A future
//! format change must keep reading it: this test opens a copy and checks every record.
//! Regenerate (only when adding a new fixture version, never to paper over a break) with
//! `cargo test -p kinesin-log --test log_format_fixture -- --ignored generate`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::path::{Path, PathBuf};

use kinesin_log::{BatchKey, Log, LogConfig, LogId, RecordIn};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn record(seq: u64) -> RecordIn {
    RecordIn {
        partition_key: format!("pk-{seq}").into_bytes().into(),
        data: format!("record {seq} of the v1 fixture").into_bytes().into(),
    }
}

fn config(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir);
    config.segment_bytes_max = 256;
    config
}

#[test]
#[ignore = "writes the committed fixture; run by hand for a new format version"]
fn generate() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let log = Log::open_default(config(&dir)).unwrap();
    log.create(LogId(0xbeef), 0).unwrap();
    log.create(LogId(0xcafe), 7).unwrap();
    for k in 0..10u64 {
        rt.block_on(log.append(LogId(0xbeef), 1_000 + k as i64, vec![record(2 * k), record(2 * k + 1)]))
            .unwrap();
    }
    log.shutdown();
}

#[test]
fn version_1_data_dir_is_read() {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&fixture_dir(), copy.path());
    let log = Log::open_default(config(copy.path())).unwrap();
    assert_eq!(log.ids(), vec![LogId(0xbeef), LogId(0xcafe)]);
    assert_eq!(log.tip(LogId(0xcafe)).unwrap(), 7);
    assert_eq!(log.tip(LogId(0xbeef)).unwrap(), 20);
    let got = log.read(LogId(0xbeef), 0, 100, 1 << 20).unwrap();
    assert_eq!(got.records.len(), 20);
    for (i, r) in got.records.iter().enumerate() {
        let want = record(i as u64);
        assert_eq!(r.seq_index, i as u64);
        assert_eq!(r.arrival_ms, 1_000 + i as i64 / 2);
        assert_eq!(r.partition_key, want.partition_key);
        assert_eq!(r.data, want.data);
    }
    assert_eq!(log.seek_time(LogId(0xbeef), 1_005).unwrap(), 10);
}

/// Encrypted appends to a version-1 data dir: the active version-1 segment holding records is
/// left as it is (an older binary still reads it) and the encrypted batch starts a version-2
/// segment; an empty version-1 segment is given a version-2 header. Everything reads back.
#[test]
fn encrypted_appends_never_land_in_a_version_1_segment() {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&fixture_dir(), copy.path());
    let key = BatchKey::new(1, &[3u8; 32]);
    let version = |path: &Path| u16::from_le_bytes(std::fs::read(path).unwrap()[8..10].try_into().unwrap());
    let beef = copy.path().join("000000000000beef");
    let v1_segments: Vec<PathBuf> = std::fs::read_dir(&beef)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    assert!(v1_segments.iter().all(|p| version(p) == 1));
    {
        let log = Log::open_default(config(copy.path())).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for id in [LogId(0xbeef), LogId(0xcafe)] {
            let tip = log.tip(id).unwrap();
            rt.block_on(log.append_encrypted(id, 5_000, vec![record(tip)], &key)).unwrap();
        }
        log.shutdown();
    }
    let log = Log::open_default(config(copy.path())).unwrap();
    for p in &v1_segments {
        assert_eq!(version(p), 1, "{} was rewritten", p.display());
    }
    assert_eq!(version(&beef.join("00000000000000000020.seg")), 2);
    assert_eq!(version(&copy.path().join("000000000000cafe/00000000000000000007.seg")), 2);
    let got = log.read_with(LogId(0xbeef), 0, 100, 1 << 20, &key).unwrap();
    assert_eq!(got.records.len(), 21);
    assert!(got.records[..20].iter().all(|r| !r.encrypted));
    assert!(got.records[20].encrypted);
    assert_eq!(got.records[20].data, record(20).data);
    let got = log.read_with(LogId(0xcafe), 0, 100, 1 << 20, &key).unwrap();
    assert_eq!(got.records.len(), 1);
    assert!(got.records[0].encrypted);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
