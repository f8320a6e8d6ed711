//! Format compatibility: `tests/fixtures/v1/` is a data directory written by format version 1
//! (two logs; one with three sealed, indexed segments and an active one, one empty). A future
//! format change must keep reading it: this test opens a copy and checks every record.
//! Regenerate (only when adding a new fixture version, never to paper over a break) with
//! `cargo test -p kinesin-log --test log_format_fixture -- --ignored generate`.

use std::path::{Path, PathBuf};

use kinesin_log::{Log, LogConfig, LogId, RecordIn};

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
