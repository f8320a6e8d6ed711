//! Service semantics that need a controllable clock or a restart, pinned without HTTP:
//! iterator expiry and tampering, incarnations (an old iterator never reads a re-created stream),
//! retention (expired records are not served), status transitions, routing, persistence.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::sync::Arc;

use serde_json::{json, Value};

use kinesin_service::{Clock, Response, Service, ServiceConfig};
use kinesin_wire::error::{ApiError, ErrorKind};
use kinesin_wire::ids::{HashKey, SequenceNumber};
use kinesin_wire::model::model;
use kinesin_wire::operation::Op;
use kinesin_wire::request::Request;

const T0: i64 = 1_790_000_000_000;

fn open(dir: &std::path::Path, clock: &Clock) -> Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    // The manual clock stands still: rate limits (service_reshard.rs) would throttle these calls.
    cfg.limits.enabled = false;
    cfg.create_stream_ms = 0;
    cfg.delete_stream_ms = 0;
    Arc::new(Service::open(cfg, clock.clone()).expect("open"))
}

async fn call(svc: &Arc<Service>, op: &str, mut body: Value) -> Result<Value, ApiError> {
    model().check_input(op, &mut body)?;
    let request = Request::from_value(Op::from_name(op).expect("an operation"), body)?;
    let Response::Output(out) = svc.handle(request).await? else { panic!("{op} answered an event stream") };
    let bytes = out.to_json().unwrap();
    Ok(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

async fn put(svc: &Arc<Service>, stream: &str, pk: &str, data: &str) -> Value {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    call(svc, "PutRecord", json!({"StreamName": stream, "PartitionKey": pk, "Data": data})).await.unwrap()
}

async fn iterator(svc: &Arc<Service>, stream: &str, shard: &str, kind: &str) -> String {
    let v = call(
        svc,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
    )
    .await
    .unwrap();
    v["ShardIterator"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn iterators_expire_after_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    let it = iterator(&svc, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    clock.advance(300_000);
    call(&svc, "GetRecords", json!({"ShardIterator": it})).await.expect("still valid at exactly 300 s");
    clock.advance(1);
    let e = call(&svc, "GetRecords", json!({"ShardIterator": it})).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ExpiredIterator);
    let m = e.message.unwrap();
    assert!(m.starts_with("Iterator expired. The iterator was created at time "), "{m}");
    assert!(
        m.ends_with("which is further in the future than the tolerated delay of 300000 milliseconds."),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_iterators_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    let it = iterator(&svc, "s", "0", "LATEST").await;
    let mut bytes = it.clone().into_bytes();
    for i in [12, it.len() / 2, it.len() - 3] {
        let orig = bytes[i];
        bytes[i] = if orig == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bytes.clone()).unwrap();
        let e = call(&svc, "GetRecords", json!({"ShardIterator": bad})).await.unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_deref()),
            (ErrorKind::InvalidArgument, Some("Invalid ShardIterator."))
        );
        bytes[i] = orig;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_iterator_never_reads_a_recreated_stream() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    let old = iterator(&svc, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    call(&svc, "DeleteStream", json!({"StreamName": "s"})).await.unwrap();
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    put(&svc, "s", "k", "secret of the new stream").await;
    let e = call(&svc, "GetRecords", json!({"ShardIterator": old})).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_past_retention_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    put(&svc, "s", "k", "old").await;
    clock.advance(23 * 3_600_000);
    put(&svc, "s", "k", "young").await;
    clock.advance(2 * 3_600_000);
    // The first record is now 25 h old, the second 2 h.
    let it = iterator(&svc, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    let v = call(&svc, "GetRecords", json!({"ShardIterator": it})).await.unwrap();
    let recs = v["Records"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{v}");
    assert_eq!(recs[0]["Data"], "eW91bmc=");
    // An AT_TIMESTAMP before the trim horizon starts at the trim horizon.
    let v = call(
        &svc,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": (T0 / 1000) as f64}),
    )
    .await
    .unwrap();
    let v = call(&svc, "GetRecords", json!({"ShardIterator": v["ShardIterator"]})).await.unwrap();
    assert_eq!(v["Records"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_turns_active_after_the_configured_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let mut cfg = ServiceConfig::new(dir.path().to_path_buf());
    cfg.limits.enabled = false;
    cfg.create_stream_ms = 500;
    let svc = Arc::new(Service::open(cfg, clock.clone()).unwrap());
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 2})).await.unwrap();
    let v = call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap();
    assert_eq!(v["StreamDescriptionSummary"]["StreamStatus"], "CREATING");
    let e = call(&svc, "PutRecord", json!({"StreamName": "s", "PartitionKey": "a", "Data": "AA=="}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ResourceNotFound);
    clock.advance(500);
    let v = call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap();
    assert_eq!(v["StreamDescriptionSummary"]["StreamStatus"], "ACTIVE");
    assert_eq!(v["StreamDescriptionSummary"]["OpenShardCount"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_route_by_md5_and_explicit_hash_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 7})).await.unwrap();
    let shards = call(&svc, "ListShards", json!({"StreamName": "s"})).await.unwrap();
    let shards = shards["Shards"].as_array().unwrap().clone();
    let shard_of = |key: HashKey| -> String {
        shards
            .iter()
            .find(|s| {
                let lo = HashKey::parse(s["HashKeyRange"]["StartingHashKey"].as_str().unwrap()).unwrap();
                let hi = HashKey::parse(s["HashKeyRange"]["EndingHashKey"].as_str().unwrap()).unwrap();
                lo <= key && key <= hi
            })
            .unwrap()["ShardId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for i in 0..50 {
        let pk = format!("user-{i}");
        let v = put(&svc, "s", &pk, "x").await;
        assert_eq!(v["ShardId"].as_str().unwrap(), shard_of(HashKey::from_partition_key(&pk)), "{pk}");
    }
    let key = HashKey(u128::MAX / 7 * 3 + 5);
    let v = call(
        &svc,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "ignored", "ExplicitHashKey": key.to_string(), "Data": "AA=="}),
    )
    .await
    .unwrap();
    assert_eq!(v["ShardId"].as_str().unwrap(), shard_of(key));
    let e = call(
        &svc,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "a", "ExplicitHashKey": "340282366920938463463374607431768211456", "Data": "AA=="}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert_eq!(
        e.message.unwrap(),
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sequence_numbers_increase_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let mut seqs = Vec::new();
    {
        let svc = open(dir.path(), &clock);
        call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
        for i in 0..20 {
            clock.advance(37);
            let v = put(&svc, "s", "k", &format!("r{i}")).await;
            seqs.push(SequenceNumber::parse(v["SequenceNumber"].as_str().unwrap()).unwrap());
        }
        svc.shutdown();
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let svc = open(dir.path(), &clock);
    let it = iterator(&svc, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    let v = call(&svc, "GetRecords", json!({"ShardIterator": it})).await.unwrap();
    let got: Vec<SequenceNumber> = v["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| SequenceNumber::parse(r["SequenceNumber"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(got, seqs);
    // New records after the restart still sort after the old ones.
    let v = put(&svc, "s", "k", "after").await;
    assert!(SequenceNumber::parse(v["SequenceNumber"].as_str().unwrap()).unwrap() > *seqs.last().unwrap());
    // AFTER_SEQUENCE_NUMBER of the 10th record starts at the 11th.
    let v = call(
        &svc,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
               "StartingSequenceNumber": seqs[9].encode()}),
    )
    .await
    .unwrap();
    let v = call(&svc, "GetRecords", json!({"ShardIterator": v["ShardIterator"], "Limit": 1})).await.unwrap();
    assert_eq!(v["Records"][0]["SequenceNumber"].as_str().unwrap(), seqs[10].encode());
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_starting_sequence_number_comes_the_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    // Same second as the shard's creation: the record's number must still exceed the start.
    let first = put(&svc, "s", "k", "first").await;
    let shards = call(&svc, "ListShards", json!({"StreamName": "s"})).await.unwrap();
    let start =
        shards["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"].as_str().unwrap().to_string();
    let first_seq = first["SequenceNumber"].as_str().unwrap();
    assert!(SequenceNumber::parse(first_seq).unwrap() > SequenceNumber::parse(&start).unwrap());
    let v = call(
        &svc,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
               "StartingSequenceNumber": start}),
    )
    .await
    .unwrap();
    let v = call(&svc, "GetRecords", json!({"ShardIterator": v["ShardIterator"]})).await.unwrap();
    assert_eq!(v["Records"][0]["SequenceNumber"].as_str().unwrap(), first_seq);
}
