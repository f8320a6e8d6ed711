//! Resharding, throughput limits and on-demand scaling, pinned without HTTP on a manual clock:
//! a split closes the parent at exactly the records it holds and routes new puts to the children;
//! a reader that follows ChildShards sees every record once; the write buckets admit AWS's rates
//! after a one-second burst; PutRecords fails only the records over the limit; a hot on-demand
//! shard is split by `tick` alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use kinesin_service::{Clock, Response, Service, ServiceConfig};
use kinesin_wire::error::{ApiError, ErrorKind};
use kinesin_wire::model::model;
use kinesin_wire::operation::Op;
use kinesin_wire::request::Request;

const T0: i64 = 1_790_000_000_000;

fn open(dir: &std::path::Path, clock: &Clock, limits: bool) -> Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.create_stream_ms = 0;
    cfg.delete_stream_ms = 0;
    cfg.update_stream_ms = 0;
    cfg.limits.enabled = limits;
    Arc::new(Service::open(cfg, clock.clone()).expect("open"))
}

async fn call(svc: &Arc<Service>, op: &str, mut body: Value) -> Result<Value, ApiError> {
    model().check_input(op, &mut body)?;
    let request = Request::from_value(Op::from_name(op).expect("an operation"), body)?;
    let Response::Output(out) = svc.handle(request).await? else { panic!("{op} answered an event stream") };
    let bytes = out.to_json().unwrap();
    Ok(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn put(svc: &Arc<Service>, pk: &str, data: &str) -> Value {
    call(svc, "PutRecord", json!({"StreamName": "s", "PartitionKey": pk, "Data": b64(data)})).await.unwrap()
}

async fn shards(svc: &Arc<Service>) -> Vec<Value> {
    call(svc, "ListShards", json!({"StreamName": "s"})).await.unwrap()["Shards"].as_array().unwrap().clone()
}

/// Reads one shard to its end; returns the data and the child shard ids.
async fn drain(svc: &Arc<Service>, shard: &str) -> (Vec<String>, Vec<String>) {
    let it = call(
        svc,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await
    .unwrap();
    let mut it = it["ShardIterator"].as_str().unwrap().to_string();
    let mut data = Vec::new();
    loop {
        let v = call(svc, "GetRecords", json!({"ShardIterator": it})).await.unwrap();
        for r in v["Records"].as_array().unwrap() {
            let d = base64::engine::general_purpose::STANDARD.decode(r["Data"].as_str().unwrap()).unwrap();
            data.push(String::from_utf8(d).unwrap());
        }
        match v["NextShardIterator"].as_str() {
            Some(next) if !v["Records"].as_array().unwrap().is_empty() => it = next.to_string(),
            Some(_) => return (data, Vec::new()),
            None => {
                let children = v["ChildShards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["ShardId"].as_str().unwrap().to_string())
                    .collect();
                return (data, children);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn split_then_merge_keeps_lineage_and_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock, false);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    for i in 0..10 {
        put(&svc, &format!("k{i}"), &format!("a{i}")).await;
    }
    call(
        &svc,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000",
               "NewStartingHashKey": "170141183460469231731687303715884105728"}),
    )
    .await
    .unwrap();
    for i in 0..10 {
        let v = put(&svc, &format!("k{i}"), &format!("b{i}")).await;
        assert_ne!(v["ShardId"], "shardId-000000000000", "no put lands in a closed parent");
    }
    let list = shards(&svc).await;
    assert_eq!(list.len(), 3);
    assert!(list[0]["SequenceNumberRange"]["EndingSequenceNumber"].is_string());
    assert_eq!(list[1]["ParentShardId"], "shardId-000000000000");
    assert_eq!(list[2]["HashKeyRange"]["StartingHashKey"], "170141183460469231731687303715884105728");
    let (parent, children) = drain(&svc, "shardId-000000000000").await;
    assert_eq!(parent, (0..10).map(|i| format!("a{i}")).collect::<Vec<_>>());
    assert_eq!(children, vec!["shardId-000000000001", "shardId-000000000002"]);

    call(
        &svc,
        "MergeShards",
        json!({"StreamName": "s", "ShardToMerge": "shardId-000000000001", "AdjacentShardToMerge": "shardId-000000000002"}),
    )
    .await
    .unwrap();
    let list = shards(&svc).await;
    assert_eq!(list[3]["ParentShardId"], "shardId-000000000001");
    assert_eq!(list[3]["AdjacentParentShardId"], "shardId-000000000002");
    assert_eq!(list[3]["HashKeyRange"]["StartingHashKey"], "0");
    let mut seen: Vec<String> = Vec::new();
    for c in ["shardId-000000000001", "shardId-000000000002"] {
        let (d, ch) = drain(&svc, c).await;
        assert_eq!(ch, vec!["shardId-000000000003"]);
        seen.extend(d);
    }
    seen.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("b{i}")).collect();
    want.sort();
    assert_eq!(seen, want);

    // Errors, with AWS's wording.
    let e = call(&svc, "MergeShards", json!({"StreamName": "s", "ShardToMerge": "shardId-000000000000", "AdjacentShardToMerge": "shardId-000000000003"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = call(
        &svc,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000003", "NewStartingHashKey": "1"}),
    )
    .await
    .unwrap_err();
    assert!(e.message.unwrap().contains("is not both greater than one plus the shard's StartingHashKey 0"));
    let e = call(
        &svc,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "100"}),
    )
    .await
    .unwrap_err();
    assert!(
        e.message.unwrap().contains("has already been merged or split"),
        "closed parents do not split again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn update_shard_count_scales_uniformly_and_counts_against_the_daily_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock, false);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 3})).await.unwrap();
    let target = |n: i64| json!({"StreamName": "s", "TargetShardCount": n, "ScalingType": "UNIFORM_SCALING"});
    call(&svc, "UpdateShardCount", target(4)).await.unwrap();
    let open: Vec<Value> = shards(&svc)
        .await
        .into_iter()
        .filter(|s| s["SequenceNumberRange"]["EndingSequenceNumber"].is_null())
        .collect();
    assert_eq!(open.len(), 4);
    let mut starts: Vec<u128> = open
        .iter()
        .map(|s| s["HashKeyRange"]["StartingHashKey"].as_str().unwrap().parse().unwrap())
        .collect();
    starts.sort_unstable();
    assert_eq!(starts, vec![0, 1 << 126, 2 << 126, 3 << 126], "the even ranges of 4 shards");
    let e = call(&svc, "UpdateShardCount", target(9)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    let e = call(&svc, "UpdateShardCount", target(1)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    for n in [2, 4, 2, 4, 2, 4, 2, 4, 2] {
        call(&svc, "UpdateShardCount", target(n)).await.unwrap();
    }
    let e = call(&svc, "UpdateShardCount", target(4)).await.unwrap_err();
    assert!(e.message.unwrap().contains("in the last 24 hours"));
    clock.advance(24 * 3_600_000);
    call(&svc, "UpdateShardCount", target(4)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_demand_streams_refuse_manual_resharding() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock, false);
    call(&svc, "CreateStream", json!({"StreamName": "s", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}))
        .await
        .unwrap();
    let e = call(
        &svc,
        "UpdateShardCount",
        json!({"StreamName": "s", "TargetShardCount": 5, "ScalingType": "UNIFORM_SCALING"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Validation);
    assert_eq!(
        e.message.as_deref(),
        Some("UpdateShardCount is only supported for data streams with the provisioned capacity mode.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_throttled_to_the_shard_rate() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock, true);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    let batch: Vec<Value> =
        (0..500).map(|i| json!({"PartitionKey": format!("k{i}"), "Data": b64("x")})).collect();
    let v = call(&svc, "PutRecords", json!({"StreamName": "s", "Records": batch.clone()})).await.unwrap();
    assert_eq!(v["FailedRecordCount"], 0);
    let v = call(&svc, "PutRecords", json!({"StreamName": "s", "Records": batch.clone()})).await.unwrap();
    assert_eq!(v["FailedRecordCount"], 0, "the one-second burst holds 1,000 records");
    let v = call(&svc, "PutRecords", json!({"StreamName": "s", "Records": batch.clone()})).await.unwrap();
    assert_eq!(v["FailedRecordCount"], 500);
    assert_eq!(v["Records"][0]["ErrorCode"], "ProvisionedThroughputExceededException");
    assert_eq!(
        v["Records"][0]["ErrorMessage"],
        "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000."
    );
    let e = call(&svc, "PutRecord", json!({"StreamName": "s", "PartitionKey": "k", "Data": b64("x")}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProvisionedThroughputExceeded);
    clock.advance(300);
    let v = call(&svc, "PutRecords", json!({"StreamName": "s", "Records": batch})).await.unwrap();
    assert_eq!(v["FailedRecordCount"], 200, "300 ms refill 300 records");
    // Control plane: DescribeLimits allows 1 call per second.
    call(&svc, "DescribeLimits", json!({})).await.unwrap();
    let e = call(&svc, "DescribeLimits", json!({})).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_on_demand_shard_is_split_by_tick() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let svc = open(dir.path(), &clock, true);
    call(&svc, "CreateStream", json!({"StreamName": "s", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}))
        .await
        .unwrap();
    svc.tick();
    for _ in 0..5 {
        for _ in 0..2 {
            let batch: Vec<Value> =
                (0..500).map(|_| json!({"PartitionKey": "hot", "Data": b64("x")})).collect();
            call(&svc, "PutRecords", json!({"StreamName": "s", "Records": batch})).await.unwrap();
        }
        clock.advance(1000);
        svc.tick();
    }
    let list = shards(&svc).await;
    assert_eq!(list.len(), 6, "one shard split: {list:?}");
    let open = list.iter().filter(|s| s["SequenceNumberRange"]["EndingSequenceNumber"].is_null()).count();
    assert_eq!(open, 5);
}

/// A reshard accepted with `--update-stream-ms` waits for the end of UPDATING: the old shards
/// stay listed and keep taking writes until then (as AWS shows them), and a restart in between
/// still applies it.
#[tokio::test(flavor = "multi_thread")]
async fn a_reshard_takes_effect_when_updating_ends_also_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let reopen = |clock: &Clock| {
        let mut cfg = ServiceConfig::new(dir.path().to_path_buf());
        cfg.create_stream_ms = 0;
        cfg.update_stream_ms = 1000;
        cfg.limits.enabled = false;
        Arc::new(Service::open(cfg, clock.clone()).expect("open"))
    };
    let svc = reopen(&clock);
    call(&svc, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await.unwrap();
    let half = "170141183460469231731687303715884105728";
    call(
        &svc,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": half}),
    )
    .await
    .unwrap();
    let status = |v: &Value| v["StreamDescriptionSummary"]["StreamStatus"].as_str().unwrap().to_string();
    let v = call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap();
    assert_eq!(
        (status(&v), v["StreamDescriptionSummary"]["OpenShardCount"].as_u64()),
        ("UPDATING".into(), Some(1))
    );
    assert_eq!(shards(&svc).await.len(), 1);
    assert_eq!(put(&svc, "k", "during").await["ShardId"], "shardId-000000000000");

    // Restart while UPDATING: the pending split is in the stream document.
    svc.shutdown();
    drop(svc);
    let svc = reopen(&clock);
    assert_eq!(shards(&svc).await.len(), 1);
    clock.advance(999);
    svc.tick();
    assert_eq!(shards(&svc).await.len(), 1, "not before UPDATING ends");
    clock.advance(1);
    svc.tick();
    let list = shards(&svc).await;
    assert_eq!(list.len(), 3);
    assert!(list[0]["SequenceNumberRange"]["EndingSequenceNumber"].is_string());
    let v = call(&svc, "DescribeStreamSummary", json!({"StreamName": "s"})).await.unwrap();
    assert_eq!(
        (status(&v), v["StreamDescriptionSummary"]["OpenShardCount"].as_u64()),
        ("ACTIVE".into(), Some(2))
    );
    assert_ne!(put(&svc, "k", "after").await["ShardId"], "shardId-000000000000");
    let (parent, children) = drain(&svc, "shardId-000000000000").await;
    assert_eq!(parent, vec!["during"]);
    assert_eq!(children, vec!["shardId-000000000001", "shardId-000000000002"]);
}
