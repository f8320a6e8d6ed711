//! Damaged stored data is an error naming the file and what is wrong, never a silent default
//! (docs/format.md): every stored value of a copy of the `tests/fixtures/format/data-dir`
//! fixture is damaged in turn and the start must fail saying where and what. A file of a newer
//! format version is refused with "upgrade kinesin". And whatever fails underneath, an API
//! client never sees a server path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::path::{Path, PathBuf};

use base64::Engine;
use redb::{Database, TableDefinition};
use serde_json::{json, Value};

use kinesin_service::{Clock, Service, ServiceConfig};
use kinesin_wire::error::{ApiError, ErrorKind};
use kinesin_wire::model::model;

const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
const ACCOUNT: TableDefinition<&str, &[u8]> = TableDefinition::new("account");
/// The fixture's clock (see format_fixtures.rs).
const T0: i64 = 1_800_000_000_000;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/format/data-dir")
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

fn config(dir: &Path) -> ServiceConfig {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.limits.enabled = false;
    cfg
}

fn open(dir: &Path) -> Result<std::sync::Arc<Service>, String> {
    Service::open(config(dir), Clock::manual(T0 + 60_000)).map(std::sync::Arc::new).map_err(|e| e.to_string())
}

/// A copy of the fixture with `damage` applied to its metadata store; the error of the start.
fn start_error(damage: impl FnOnce(&Database)) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path());
    let path = dir.path().join("meta.redb");
    {
        let db = Database::open(&path).unwrap();
        damage(&db);
    }
    let e = open(dir.path()).err().expect("a damaged data dir must not start");
    (e, path.display().to_string())
}

fn get(db: &Database, table: TableDefinition<&str, &[u8]>, key: &str) -> Option<Vec<u8>> {
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(table).unwrap();
    let v = t.get(key).unwrap().map(|v| v.value().to_vec());
    v
}

fn put(db: &Database, table: TableDefinition<&str, &[u8]>, key: &str, value: &[u8]) {
    let tx = db.begin_write().unwrap();
    tx.open_table(table).unwrap().insert(key, value).unwrap();
    tx.commit().unwrap();
}

fn remove(db: &Database, table: TableDefinition<&str, &[u8]>, key: &str) {
    let tx = db.begin_write().unwrap();
    tx.open_table(table).unwrap().remove(key).unwrap();
    tx.commit().unwrap();
}

/// Rewrites the JSON document `key` of `table`.
fn edit(db: &Database, table: TableDefinition<&str, &[u8]>, key: &str, change: impl FnOnce(&mut Value)) {
    let mut doc: Value = serde_json::from_slice(&get(db, table, key).unwrap()).unwrap();
    change(&mut doc);
    put(db, table, key, &serde_json::to_vec(&doc).unwrap());
}

#[test]
fn the_fixture_starts_undamaged() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path());
    open(dir.path()).unwrap().shutdown();
}

#[test]
fn every_damaged_stream_document_value_fails_the_start_naming_the_store_document_and_what() {
    type Damage = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        ("wrong type", Box::new(|d| d["retention_hours"] = json!("24")), "invalid type"),
        ("unknown member", Box::new(|d| d["retentinn_hours"] = json!(24)), "unknown field `retentinn_hours`"),
        ("unknown shard member", Box::new(|d| d["shards"][0]["lgo_id"] = json!(1)), "unknown field `lgo_id`"),
        ("newer version", Box::new(|d| d["format_version"] = json!(2)), "format version 2, newer than"),
        ("version not a number", Box::new(|d| d["format_version"] = json!("one")), "is not a format version"),
        ("version 0", Box::new(|d| d["format_version"] = json!(0)), "is not a format version"),
        ("another name", Box::new(|d| d["name"] = json!("other")), "stored under \"fixture\""),
        (
            "shards out of order",
            Box::new(|d| d["shards"].as_array_mut().unwrap().swap(0, 2)),
            "shards must be in index order",
        ),
        ("missing parent", Box::new(|d| d["shards"][1]["parent"] = json!(7)), "is not an older shard"),
        (
            "log id twice",
            Box::new(|d| d["shards"][2]["log_id"] = d["shards"][1]["log_id"].clone()),
            "is used by another shard too",
        ),
        ("damaged hash key", Box::new(|d| d["shards"][1]["end_hash"] = json!("12x")), "end_hash \"12x\""),
        (
            "wrapped key not base64",
            Box::new(|d| d["encryption"]["data_keys"][0]["wrapped"] = json!("%%%")),
            "wrapped data key of generation 1 is damaged: not base64",
        ),
        (
            "wrapped key cut short",
            Box::new(|d| d["encryption"]["data_keys"][0]["wrapped"] = json!("AAAA")),
            "wrapped data key of generation 1 is damaged: 3 bytes, expected 60",
        ),
        (
            "generation 0",
            Box::new(|d| d["encryption"]["data_keys"][0]["generation"] = json!(0)),
            "generations must go up from 1",
        ),
        (
            "encrypted without a key",
            Box::new(|d| d["encryption"]["data_keys"] = json!([])),
            "encryption is on (encryption_key_id) but the stream has no data key",
        ),
        (
            "consumer twice",
            Box::new(|d| {
                let c = d["consumers"][0].clone();
                d["consumers"].as_array_mut().unwrap().push(c);
            }),
            "consumer \"fixture-consumer\" is listed twice",
        ),
        (
            "pending split at no hash key",
            Box::new(|d| d["pending_reshard"] = json!([{"Split": {"shard": 1, "at": "x"}}])),
            "pending split of shardId-000000000001",
        ),
    ];
    for (what, damage, says) in cases {
        let (e, path) = start_error(|db| edit(db, STREAMS, "fixture", |d| damage(d)));
        for part in [path.as_str(), "document fixture", says] {
            assert!(e.contains(part), "{what}: {e:?} does not say {part:?}");
        }
        if says.contains("newer than") {
            assert!(e.contains("upgrade kinesin"), "{what}: {e}");
        }
    }
    // Not JSON at all.
    let (e, path) = start_error(|db| put(db, STREAMS, "fixture", b"{\"name\": \"fix"));
    assert!(e.contains(&path) && e.contains("document fixture is damaged"), "{e}");
}

#[test]
fn damaged_account_values_fail_the_start_naming_the_store_and_value() {
    type Damage = Box<dyn Fn(&Database)>;
    let cases: Vec<(&str, Damage, &str, &str)> = vec![
        (
            "counters missing",
            Box::new(|db| remove(db, ACCOUNT, "counters")),
            "counters",
            "missing, but streams exist",
        ),
        (
            "counters behind the log ids",
            Box::new(|db| edit(db, ACCOUNT, "counters", |c| c["next_log_id"] = json!(2))),
            "counters",
            "next_log_id 2 is not above log_id 3",
        ),
        (
            "counters behind the incarnations",
            Box::new(|db| edit(db, ACCOUNT, "counters", |c| c["next_incarnation"] = json!(1))),
            "counters",
            "next_incarnation 1 is not above",
        ),
        (
            "counters with an unknown member",
            Box::new(|db| edit(db, ACCOUNT, "counters", |c| c["next_log"] = json!(9))),
            "counters",
            "unknown field `next_log`",
        ),
        (
            "settings of the wrong type",
            Box::new(|db| edit(db, ACCOUNT, "settings", |s| s["billing_commitment_enabled_ms"] = json!("x"))),
            "settings",
            "invalid type",
        ),
        (
            "settings of a newer version",
            Box::new(|db| edit(db, ACCOUNT, "settings", |s| s["format_version"] = json!(3))),
            "settings",
            "format version 3, newer than this kinesin understands (1); upgrade kinesin",
        ),
        (
            "token key cut short",
            Box::new(|db| put(db, ACCOUNT, "token_key", &[7u8; 31])),
            "token_key",
            "expected 32 bytes, found 31",
        ),
        (
            "store of a newer version",
            Box::new(|db| put(db, ACCOUNT, "format_version", b"2")),
            "format version 2",
            "newer than this kinesin understands (1); upgrade kinesin",
        ),
        (
            "store version not a number",
            Box::new(|db| put(db, ACCOUNT, "format_version", b"\"x\"")),
            "format_version",
            "damaged",
        ),
    ];
    for (what, damage, key, says) in cases {
        let (e, path) = start_error(|db| damage(db));
        for part in [path.as_str(), key, says] {
            assert!(e.contains(part), "{what}: {e:?} does not say {part:?}");
        }
    }
}

#[test]
fn a_keyring_file_of_a_newer_version_or_damaged_is_refused_naming_it() {
    for (what, change, says) in [
        ("newer", "format_version = 1\n", "format_version = 2\n"),
        ("unknown key", "enabled = true\n", "enabled = true\nenabeld = true\n"),
        ("material cut short", "material = \"", "material = \"AAAA"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture(), dir.path());
        let file = dir.path().join("kms/aws-kinesis.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(change), "{what}: the fixture's keyring changed: {text}");
        // Cut the material to a wrong length: keep the first 4 characters of the base64.
        let damaged = if what == "material cut short" {
            let start = text.find("material = \"").unwrap() + "material = \"".len();
            let end = start + text[start..].find('"').unwrap();
            format!("{}AAAA{}", &text[..start], &text[end..])
        } else {
            text.replacen(change, says, 1)
        };
        std::fs::write(&file, damaged).unwrap();
        let e = open(dir.path()).err().expect("a damaged keyring must not load");
        assert!(e.contains(&file.display().to_string()), "{what}: {e}");
        match what {
            "newer" => {
                assert!(e.contains("format_version 2 is newer") && e.contains("upgrade kinesin"), "{e}")
            }
            "unknown key" => assert!(e.contains("enabeld"), "{e}"),
            _ => assert!(e.contains("material must be 32 bytes"), "{e}"),
        }
    }
    // The key kinesin makes on first start says its version.
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).unwrap().shutdown();
    let text = std::fs::read_to_string(dir.path().join("kms/aws-kinesis.toml")).unwrap();
    assert!(text.contains("format_version = 1\n"), "{text}");
}

/// CRC-32C (Castagnoli), bit by bit: enough for a test that rewrites a checksum.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

fn segment(dir: &Path, log: u64) -> PathBuf {
    dir.join(format!("log/{log:016x}/00000000000000000001.seg"))
}

#[test]
fn a_segment_of_a_newer_format_version_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path());
    let seg = segment(dir.path(), 2);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8..10].copy_from_slice(&3u16.to_le_bytes());
    let crc = crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, bytes).unwrap();
    let e = open(dir.path()).err().expect("a newer segment must not be read");
    assert!(e.contains(&seg.display().to_string()) && e.contains("format version 3"), "{e}");
    assert!(e.contains("upgrade kinesin"), "{e}");
}

async fn call(svc: &std::sync::Arc<Service>, op: &str, mut body: Value) -> Result<Value, ApiError> {
    model().check_input(op, &mut body)?;
    let op = kinesin_wire::operation::Op::from_name(op).expect("an operation of the model");
    let request = kinesin_wire::request::Request::from_value(op, body)?;
    let kinesin_service::Response::Output(out) = svc.handle(request).await? else {
        panic!("{op} answered an event stream")
    };
    let bytes = out.to_json().unwrap();
    Ok(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

/// Reads `shard` from its start until an error; the error (there must be one).
async fn read_error(svc: &std::sync::Arc<Service>, shard: &str) -> ApiError {
    let it = call(
        svc,
        "GetShardIterator",
        json!({"StreamName": "fixture", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await
    .unwrap();
    let mut it = it["ShardIterator"].as_str().unwrap().to_string();
    for _ in 0..10 {
        match call(svc, "GetRecords", json!({"ShardIterator": it})).await {
            Err(e) => return e,
            Ok(v) => match v["NextShardIterator"].as_str() {
                Some(next) => it = next.to_string(),
                None => break,
            },
        }
    }
    panic!("reading {shard} never failed")
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_never_see_a_server_path_when_stored_records_fail() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path());
    // An encrypted batch of shard 0 changed on disk, its checksum fixed up: it fails its
    // authentication when read.
    let seg = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut at = 32;
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let flags = u32::from_le_bytes(bytes[at + 28..at + 32].try_into().unwrap());
        if flags & 1 == 1 {
            bytes[at + 48] ^= 0x5a;
            let mut covered = bytes[at + 32..at + len].to_vec();
            covered.extend_from_slice(&bytes[at..at + 4]);
            covered.extend_from_slice(&bytes[at + 8..at + 32]);
            let crc = crc32c(&covered);
            bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            break;
        }
        at += len;
        assert!(at < bytes.len(), "the fixture has no encrypted batch in shard 0");
    }
    std::fs::write(&seg, bytes).unwrap();
    let svc = std::sync::Arc::new(Service::open(config(dir.path()), Clock::manual(T0 + 60_000)).unwrap());
    // Shard 2's segment disappears under the running server.
    std::fs::remove_file(segment(dir.path(), 3)).unwrap();
    let _ = std::fs::remove_file(segment(dir.path(), 3).with_extension("idx"));

    let root = dir.path().display().to_string();
    for (shard, says) in
        [("shardId-000000000000", "failed authentication"), ("shardId-000000000002", "No such file")]
    {
        let e = read_error(&svc, shard).await;
        assert_eq!(e.kind, ErrorKind::InternalFailure, "{shard}: {e}");
        let message = e.message.clone().unwrap_or_default();
        assert!(message.contains(says), "{shard}: {message}");
        for leak in [root.as_str(), ".seg", "/log/"] {
            assert!(!message.contains(leak), "{shard}: the client sees {leak:?}: {message}");
        }
    }
    svc.shutdown();
}

#[test]
fn base64_is_what_the_fixture_keyring_holds() {
    // Guards the keyring test above: the material it cuts is base64 of 32 bytes.
    let text = std::fs::read_to_string(fixture().join("kms/aws-kinesis.toml")).unwrap();
    let start = text.find("material = \"").unwrap() + "material = \"".len();
    let end = start + text[start..].find('"').unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(&text[start..end]).unwrap();
    assert_eq!(raw.len(), 32);
}

#[test]
fn a_missing_shard_log_or_a_damaged_segment_name_fails_the_start_naming_it() {
    // A shard's log directory gone.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path());
    let log = dir.path().join("log/0000000000000002");
    std::fs::remove_dir_all(&log).unwrap();
    let e = open(dir.path()).err().expect("a missing log must not start");
    assert!(
        e.contains(&log.display().to_string())
            && e.contains("shardId-000000000001")
            && e.contains("is missing"),
        "{e}"
    );

    // A segment whose name is damaged: not silently ignored (nor its directory removed as empty).
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), dir.path());
    let seg = segment(dir.path(), 2);
    let bad = seg.with_file_name("0000000000000000000x.seg");
    std::fs::rename(&seg, &bad).unwrap();
    let e = open(dir.path()).err().expect("a misnamed segment must not start");
    assert!(e.contains(&bad.display().to_string()) && e.contains("segment file name"), "{e}");
    assert!(bad.exists(), "the misnamed segment was removed");
}
