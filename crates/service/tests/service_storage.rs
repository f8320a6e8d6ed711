//! The service on both storage backends (`--storage local`, `--storage memory`): the same calls
//! answer the same; memory writes nothing to the data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use serde_json::{json, Value};

use kinesin_service::{Clock, Service, ServiceConfig, StorageKind};
use kinesin_wire::error::ApiError;
use kinesin_wire::model::model;

fn open(dir: &std::path::Path, storage: StorageKind) -> std::sync::Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.limits.enabled = false;
    cfg.storage = storage;
    std::sync::Arc::new(Service::open(cfg, Clock::system()).expect("open"))
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

async fn put(svc: &std::sync::Arc<Service>, data: &str) {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    call(svc, "PutRecord", json!({"StreamName": "s", "PartitionKey": data, "Data": data})).await.unwrap();
}

/// Every record of every shard: (shard, data, EncryptionType), and the shards' ends.
async fn read_all(svc: &std::sync::Arc<Service>) -> Vec<Value> {
    let shards = call(svc, "ListShards", json!({"StreamName": "s"})).await.unwrap();
    let mut out = Vec::new();
    for shard in shards["Shards"].as_array().unwrap() {
        let id = shard["ShardId"].as_str().unwrap();
        let it = call(
            svc,
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await
        .unwrap();
        let got = call(svc, "GetRecords", json!({"ShardIterator": it["ShardIterator"]})).await.unwrap();
        for r in got["Records"].as_array().unwrap() {
            out.push(json!([id, r["Data"], r.get("EncryptionType")]));
        }
        out.push(json!([id, "end", got.get("NextShardIterator").is_none(), got.get("ChildShards")]));
    }
    out
}

/// Puts, encryption, a split (which seals the parent), reads: what a client sees.
async fn scenario(svc: &std::sync::Arc<Service>) -> Vec<Value> {
    call(svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 2})).await.unwrap();
    for i in 0..6 {
        put(svc, &format!("plain-{i}")).await;
    }
    call(
        svc,
        "StartStreamEncryption",
        json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}),
    )
    .await
    .unwrap();
    for i in 0..4 {
        put(svc, &format!("sealed-{i}")).await;
    }
    call(
        svc,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "1000"}),
    )
    .await
    .unwrap();
    for i in 0..4 {
        put(svc, &format!("after-{i}")).await;
    }
    read_all(svc).await
}

#[tokio::test(flavor = "multi_thread")]
async fn both_backends_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let local = open(dir.path(), StorageKind::Local);
    let on_disk = scenario(&local).await;
    local.shutdown();
    let never = dir.path().join("memory");
    let memory = open(&never, StorageKind::Memory);
    let in_memory = scenario(&memory).await;
    assert_eq!(on_disk, in_memory);
    assert!(on_disk.iter().any(|r| r[2] == "KMS"), "{on_disk:?}");
    assert!(on_disk.iter().any(|r| r[1] == "end" && r[2] == true), "the split parent ends: {on_disk:?}");
    memory.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_storage_writes_nothing_to_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let svc = open(&data_dir, StorageKind::Memory);
    scenario(&svc).await;
    call(&svc, "DeleteStream", json!({"StreamName": "s"})).await.unwrap();
    svc.tick();
    svc.shutdown();
    drop(svc);
    assert!(!data_dir.exists(), "--storage memory created {}", data_dir.display());
    // And a second service on the same directory starts empty.
    let again = open(&data_dir, StorageKind::Memory);
    let listed = call(&again, "ListStreams", json!({})).await.unwrap();
    assert_eq!(listed["StreamNames"], json!([]));
    assert!(!data_dir.exists());
}
