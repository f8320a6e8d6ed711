//! Who waits for whom: readers never wait for the writer lock; a reshard that waits for its
//! parents' appends in flight delays neither other streams nor its stream's other shards, and
//! the puts to its parents only until the switch. An append in flight is stood in for by a gate
//! held from the test (no sleeps decide anything; every wait is bounded).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use kinesin_wire::error::ApiError;
use kinesin_wire::model::model;

use crate::reshard::GateGuard;
use crate::{Clock, Service, ServiceConfig};

const T0: i64 = 1_790_000_000_000;
/// Bounds every wait: an operation that should not wait finishes far sooner; one that hangs
/// fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(10);
/// The hash key halfway through the range: the split point of shard 0 of a 1-shard stream.
const HALF: &str = "170141183460469231731687303715884105728";

fn open(dir: &std::path::Path, clock: &Clock) -> Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.limits.enabled = false;
    Arc::new(Service::open(cfg, clock.clone()).expect("open"))
}

async fn call(svc: &Arc<Service>, op: &str, mut body: Value) -> Result<Value, ApiError> {
    model().check_input(op, &mut body)?;
    let op = kinesin_wire::operation::Op::from_name(op).expect("an operation of the model");
    let request = kinesin_wire::request::Request::from_value(op, body)?;
    let crate::Response::Output(out) = svc.handle(request).await? else {
        panic!("{op} answered an event stream")
    };
    let bytes = out.to_json().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

/// A control-plane call where the server runs it: on the blocking pool.
fn control(
    svc: &Arc<Service>,
    op: &'static str,
    body: Value,
) -> tokio::task::JoinHandle<Result<Value, ApiError>> {
    let svc = svc.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || rt.block_on(call(&svc, op, body)))
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

fn put_body(stream: &str, hash_key: &str) -> Value {
    json!({"StreamName": stream, "PartitionKey": "k", "ExplicitHashKey": hash_key, "Data": "AA=="})
}

/// Holds the write gate of `shard` of `stream` as an append in flight would.
fn hold(svc: &Service, stream: &str, shard: usize) -> GateGuard {
    let s = svc.find(Some(stream), None).unwrap();
    s.shards[shard].gate.hold_for_test().expect("the gate is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshard_waiting_for_appends_delays_only_its_parents_puts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "a", "ShardCount": 2})).await.unwrap();
    call(&svc, "CreateStream", json!({"StreamName": "b", "ShardCount": 1})).await.unwrap();
    let parent = svc.find(Some("a"), None).unwrap().shards[0].clone();
    let in_flight = hold(&svc, "a", 0);

    // Split shard 0 of `a` (its upper half starts at 2^126): it waits for the append in flight.
    let split = control(
        &svc,
        "SplitShard",
        json!({"StreamName": "a", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": (1u128 << 126).to_string()}),
    );
    bounded("the split closing the parent's gate", async {
        while !parent.gate.is_closed_for_test() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;

    // A put to the parent waits for the switch...
    let to_parent = {
        let svc = svc.clone();
        tokio::spawn(async move { call(&svc, "PutRecord", put_body("a", "5")).await })
    };
    // ...while puts to another stream, and to the stream's other shard, go on, and so do readers.
    let v = bounded("a put to another stream", call(&svc, "PutRecord", put_body("b", "5"))).await.unwrap();
    assert_eq!(v["ShardId"], "shardId-000000000000");
    let v = bounded("a put to the stream's other shard", call(&svc, "PutRecord", put_body("a", HALF)))
        .await
        .unwrap();
    assert_eq!(v["ShardId"], "shardId-000000000001");
    let v = bounded("DescribeStreamSummary", call(&svc, "DescribeStreamSummary", json!({"StreamName": "a"})))
        .await
        .unwrap();
    assert_eq!(v["StreamDescriptionSummary"]["OpenShardCount"], 2, "the split is not published yet");
    assert!(!split.is_finished(), "the split still waits for the append in flight");
    assert!(!to_parent.is_finished(), "the put to the parent waits for the switch");

    // The append finishes: the split commits, and the waiting put lands in a child.
    drop(in_flight);
    bounded("the split", split).await.unwrap().unwrap();
    let v = bounded("the put to the parent", to_parent).await.unwrap().unwrap();
    assert_eq!(v["ShardId"], "shardId-000000000002", "the low child holds hash key 5");
    let v = call(&svc, "DescribeStreamSummary", json!({"StreamName": "a"})).await.unwrap();
    assert_eq!(v["StreamDescriptionSummary"]["OpenShardCount"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_puts_never_wait_for_the_writer_lock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    // A control-plane writer holds the lock (as across a slow fsync or a reshard's drain).
    let writer = svc.state.lock();
    let v = bounded("PutRecord", call(&svc, "PutRecord", put_body("s", "5"))).await.unwrap();
    let seq = v["SequenceNumber"].as_str().unwrap().to_string();
    let v = bounded("DescribeStreamSummary", call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})))
        .await
        .unwrap();
    assert_eq!(v["StreamDescriptionSummary"]["StreamStatus"], "ACTIVE");
    bounded("ListStreams", call(&svc, "ListStreams", json!({}))).await.unwrap();
    bounded("ListShards", call(&svc, "ListShards", json!({"StreamName": "s"}))).await.unwrap();
    let it = bounded(
        "GetShardIterator",
        call(
            &svc,
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
        ),
    )
    .await
    .unwrap();
    let v = bounded("GetRecords", call(&svc, "GetRecords", json!({"ShardIterator": it["ShardIterator"]})))
        .await
        .unwrap();
    assert_eq!(v["Records"][0]["SequenceNumber"], seq.as_str());
    drop(writer);
}

/// A transition that is due is shown at once, to readers and writers, before the background
/// task commits it; the task's commit changes nothing they see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_transitions_show_before_the_background_task_commits_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let mut cfg = ServiceConfig::new(dir.path().to_path_buf());
    cfg.limits.enabled = false;
    cfg.create_stream_ms = 500;
    cfg.delete_stream_ms = 500;
    let svc = Arc::new(Service::open(cfg, clock.clone()).unwrap());
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    let status = |v: &Value| v["StreamDescriptionSummary"]["StreamStatus"].as_str().unwrap().to_string();
    assert_eq!(
        status(&call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap()),
        "CREATING"
    );
    assert!(call(&svc, "PutRecord", put_body("s", "5")).await.is_err(), "not writable while CREATING");
    clock.advance(500);
    assert_eq!(
        status(&call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap()),
        "ACTIVE"
    );
    call(&svc, "PutRecord", put_body("s", "5")).await.expect("writable once CREATING is over");
    // Control-plane writers see it ACTIVE too (they need it so).
    call(&svc, "IncreaseStreamRetentionPeriod", json!({"StreamName": "s", "RetentionPeriodHours": 48}))
        .await
        .expect("a writer sees what readers see");
    svc.tick();
    assert_eq!(
        status(&call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap()),
        "ACTIVE"
    );

    call(&svc, "DeleteStream", json!({"StreamName": "s"})).await.unwrap();
    assert_eq!(
        status(&call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap()),
        "DELETING"
    );
    clock.advance(500);
    let e = call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap_err();
    assert_eq!(e.kind, kinesin_wire::error::ErrorKind::ResourceNotFound);
    let v = call(&svc, "ListStreams", json!({})).await.unwrap();
    assert_eq!(v["StreamNames"], json!([]));
    // Writers too: deleting it again finds nothing, and the name is free at once.
    let e = call(&svc, "DeleteStream", json!({"StreamName": "s"})).await.unwrap_err();
    assert_eq!(e.kind, kinesin_wire::error::ErrorKind::ResourceNotFound);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    // The background task removes the old stream's logs, not the new stream.
    svc.tick();
    assert_eq!(
        status(&call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap()),
        "CREATING"
    );
    svc.shutdown();
    drop(svc);
    let mut cfg = ServiceConfig::new(dir.path().to_path_buf());
    cfg.limits.enabled = false;
    let svc = Arc::new(Service::open(cfg, clock.clone()).unwrap());
    assert_eq!(
        status(&call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap()),
        "CREATING",
        "the new stream's document survived the old one's removal"
    );
}

/// A CreateStream of many shards, run as the server runs it (the blocking pool's `block_on`),
/// finishes: the storage calls it waits for are not cut off by tokio's cooperative budget
/// (it spun forever at 100% CPU past ~128 shards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_stream_of_a_thousand_shards_finishes_on_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let mut cfg = ServiceConfig::new(dir.path().to_path_buf());
    cfg.limits.enabled = false;
    cfg.shard_limit = 5000;
    let svc = Arc::new(Service::open(cfg, clock).unwrap());
    let created = control(&svc, "CreateStream", json!({"StreamName": "big", "ShardCount": 1000}));
    bounded("CreateStream of 1000 shards", created).await.unwrap().unwrap();
    let v = call(&svc, "DescribeStreamSummary", json!({"StreamName": "big"})).await.unwrap();
    assert_eq!(v["StreamDescriptionSummary"]["OpenShardCount"], 1000);
    svc.shutdown();
}
