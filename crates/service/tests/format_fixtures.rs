//! Format compatibility of a whole data directory (docs/format.md): every committed data-dir
//! fixture under `tests/fixtures/format/` is opened (a copy) with the current code and read back
//! through the service: the stream, its tags, its shards (a closed parent after a split and its
//! two children), every record (plain ones written before StartStreamEncryption, encrypted ones
//! after, and the children's), the consumer, the encryption settings and the account settings.
//! A format change that breaks an existing data dir fails here.
//!
//! - `data-dir/` is written by the current code; regenerate it (after an intended format
//!   change, with a version bump and an upgrade path for the old one) with
//!   `cargo test -p kinesin-service --test format_fixtures -- --ignored generate_data_dir`.
//! - `data-dir-2026-12/` was written by the code of December 2026, before stream documents
//!   carried their own `format_version`. It is never regenerated: it stays what old data dirs
//!   look like.
//!
//! The fixtures are written on a manual clock at [`T0`] and read on one shortly after, so
//! retention never trims their records however old the checkout is.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use kinesin_service::{Clock, Service, ServiceConfig};
use kinesin_wire::error::ApiError;
use kinesin_wire::model::model;

/// When the fixtures were written (2027-01-15T08:00:00Z), on a manual clock.
const T0: i64 = 1_800_000_000_000;
const STREAM: &str = "fixture";
const CONSUMER: &str = "fixture-consumer";
/// The split point of shard 0: 2^127.
const SPLIT_AT: u128 = 1 << 127;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/format")
}

fn open(dir: &Path, clock: &Clock) -> std::sync::Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.limits.enabled = false;
    std::sync::Arc::new(Service::open(cfg, clock.clone()).expect("the fixture data dir opens"))
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

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The records the fixture holds, by shard: (partition key, data).
fn expected_records() -> Vec<(&'static str, Vec<(String, String)>)> {
    let parent = (0..5)
        .map(|i| {
            let data = if i < 3 { format!("plain {i}") } else { format!("sealed {i}") };
            (format!("pk-{i}"), data)
        })
        .collect();
    vec![
        ("shardId-000000000000", parent),
        ("shardId-000000000001", vec![("low".to_string(), "child low 5".to_string())]),
        ("shardId-000000000002", vec![("high".to_string(), "child high 6".to_string())]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes the committed fixture tests/fixtures/format/data-dir; run by hand after a format change"]
async fn generate_data_dir() {
    let dir = fixtures().join("data-dir");
    let _ = std::fs::remove_dir_all(&dir);
    let clock = Clock::manual(T0);
    let svc = open(&dir, &clock);
    call(&svc, "CreateStream", json!({"StreamName": STREAM, "ShardCount": 1})).await.unwrap();
    call(&svc, "AddTagsToStream", json!({"StreamName": STREAM, "Tags": {"team": "format"}})).await.unwrap();
    call(&svc, "UpdateAccountSettings", json!({"MinimumThroughputBillingCommitment": {"Status": "ENABLED"}}))
        .await
        .unwrap();
    let records = expected_records();
    for (i, (pk, data)) in records[0].1.iter().enumerate() {
        if i == 3 {
            call(
                &svc,
                "StartStreamEncryption",
                json!({"StreamName": STREAM, "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}),
            )
            .await
            .unwrap();
        }
        call(&svc, "PutRecord", json!({"StreamName": STREAM, "PartitionKey": pk, "Data": b64(data)}))
            .await
            .unwrap();
        clock.advance(1);
    }
    clock.advance(1_000);
    call(
        &svc,
        "SplitShard",
        json!({"StreamName": STREAM, "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": SPLIT_AT.to_string()}),
    )
    .await
    .unwrap();
    for (shard, hash) in [(1, 1u128), (2, SPLIT_AT + 1)] {
        let (pk, data) = &records[shard].1[0];
        call(
            &svc,
            "PutRecord",
            json!({"StreamName": STREAM, "PartitionKey": pk, "Data": b64(data), "ExplicitHashKey": hash.to_string()}),
        )
        .await
        .unwrap();
    }
    let arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{STREAM}");
    call(&svc, "RegisterStreamConsumer", json!({"StreamARN": arn, "ConsumerName": CONSUMER})).await.unwrap();
    clock.advance(10_000);
    svc.tick();
    svc.shutdown();
    drop(svc);
    // redb grows its file in large steps; compacting keeps the committed fixture small.
    let mut db = redb::Database::open(dir.join("meta.redb")).unwrap();
    db.compact().unwrap();
}

/// Opens a copy of `name` and checks everything the fixture holds.
async fn read_back(name: &str) {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join(name), copy.path());
    let clock = Clock::manual(T0 + 60_000);
    let svc = open(copy.path(), &clock);

    let streams = call(&svc, "ListStreams", json!({})).await.unwrap();
    assert_eq!(streams["StreamNames"], json!([STREAM]), "{name}");
    let summary = call(&svc, "DescribeStreamSummary", json!({"StreamName": STREAM})).await.unwrap();
    let d = &summary["StreamDescriptionSummary"];
    assert_eq!(d["StreamStatus"], "ACTIVE", "{name}");
    assert_eq!(d["EncryptionType"], "KMS", "{name}");
    assert_eq!(d["KeyId"], "alias/aws/kinesis", "{name}");
    assert_eq!(d["OpenShardCount"], 2, "{name}");
    assert_eq!(d["ConsumerCount"], 1, "{name}");
    let tags = call(&svc, "ListTagsForStream", json!({"StreamName": STREAM})).await.unwrap();
    assert_eq!(tags["Tags"], json!([{"Key": "team", "Value": "format"}]), "{name}");
    let settings = call(&svc, "DescribeAccountSettings", json!({})).await.unwrap();
    assert_eq!(settings["MinimumThroughputBillingCommitment"]["Status"], "ENABLED", "{name}");

    let shards = call(&svc, "ListShards", json!({"StreamName": STREAM})).await.unwrap();
    let shards = shards["Shards"].as_array().unwrap();
    let range = |i: usize| {
        let r = &shards[i]["HashKeyRange"];
        (r["StartingHashKey"].as_str().unwrap().to_string(), r["EndingHashKey"].as_str().unwrap().to_string())
    };
    let max = u128::MAX.to_string();
    assert_eq!(shards.len(), 3, "{name}");
    assert_eq!(range(0), ("0".to_string(), max.clone()), "{name}");
    assert_eq!(range(1), ("0".to_string(), (SPLIT_AT - 1).to_string()), "{name}");
    assert_eq!(range(2), (SPLIT_AT.to_string(), max), "{name}");
    assert!(
        shards[0]["SequenceNumberRange"]["EndingSequenceNumber"].is_string(),
        "{name}: the parent is closed"
    );
    for child in &shards[1..] {
        assert_eq!(child["ParentShardId"], "shardId-000000000000", "{name}");
        assert!(child["SequenceNumberRange"]["EndingSequenceNumber"].is_null(), "{name}: children are open");
    }

    for (shard, want) in expected_records() {
        let it = call(
            &svc,
            "GetShardIterator",
            json!({"StreamName": STREAM, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await
        .unwrap();
        let got = call(&svc, "GetRecords", json!({"ShardIterator": it["ShardIterator"]})).await.unwrap();
        let got: Vec<(String, String)> = got["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let data =
                    base64::engine::general_purpose::STANDARD.decode(r["Data"].as_str().unwrap()).unwrap();
                (r["PartitionKey"].as_str().unwrap().to_string(), String::from_utf8(data).unwrap())
            })
            .collect();
        assert_eq!(got, want, "{name}: records of {shard}");
    }

    let arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{STREAM}");
    let consumers = call(&svc, "ListStreamConsumers", json!({"StreamARN": arn})).await.unwrap();
    let consumers = consumers["Consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 1, "{name}");
    assert_eq!(consumers[0]["ConsumerName"], CONSUMER, "{name}");
    assert_eq!(consumers[0]["ConsumerStatus"], "ACTIVE", "{name}");

    // The data dir keeps working: a new record, encrypted, after a restart.
    call(&svc, "PutRecord", json!({"StreamName": STREAM, "PartitionKey": "new", "Data": b64("after")}))
        .await
        .unwrap();
    svc.shutdown();
    drop(svc);
    let svc = open(copy.path(), &clock);
    let summary = call(&svc, "DescribeStreamSummary", json!({"StreamName": STREAM})).await.unwrap();
    assert_eq!(summary["StreamDescriptionSummary"]["OpenShardCount"], 2, "{name}");
    svc.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_current_data_dir_fixture_reads_back() {
    read_back("data-dir").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_2026_12_data_dir_fixture_reads_back() {
    read_back("data-dir-2026-12").await;
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
