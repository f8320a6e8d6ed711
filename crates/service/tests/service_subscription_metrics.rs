//! `/metrics` exposes the lag of each enhanced fan-out consumer: the service's metrics snapshot
//! has one subscription figure (rendered as a `kinesin_subscription_millis_behind_latest` series)
//! per live subscription (consumer and
//! shard), the MillisBehindLatest of the latest event sent to it. The web console reads it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use kinesin_service::{Clock, Response, Service, ServiceConfig, SubscribeEvent};
use kinesin_wire::model::model;
use kinesin_wire::operation::Op;
use kinesin_wire::request::Request;

async fn call(svc: &Arc<Service>, op: &str, mut body: Value) -> Value {
    model().check_input(op, &mut body).unwrap();
    let request = Request::from_value(Op::from_name(op).expect("an operation"), body).unwrap();
    let Response::Output(out) = svc.handle(request).await.unwrap() else {
        panic!("{op} answered an event stream")
    };
    let bytes = out.to_json().unwrap();
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// The subscriptions `/metrics` shows, as `stream consumer shard millis_behind_latest`.
fn series(svc: &Arc<Service>) -> Vec<String> {
    svc.metrics_snapshot()
        .subscriptions
        .iter()
        .map(|s| format!("{} {} {} {}", s.stream, s.consumer, s.shard, s.millis_behind_latest))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_live_subscription_reports_its_millis_behind_latest() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServiceConfig::new(dir.path().to_path_buf());
    cfg.create_stream_ms = 0;
    let svc = Arc::new(Service::open(cfg, Clock::system()).unwrap());
    call(&svc, "CreateStream", json!({"StreamName": "lag", "ShardCount": 2})).await;
    let arn = call(&svc, "DescribeStreamSummary", json!({"StreamName": "lag"})).await
        ["StreamDescriptionSummary"]["StreamARN"]
        .as_str()
        .unwrap()
        .to_string();
    let consumer = call(&svc, "RegisterStreamConsumer", json!({"StreamARN": arn, "ConsumerName": "billing"}))
        .await["Consumer"]["ConsumerARN"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &svc,
        "PutRecord",
        json!({"StreamName": "lag", "PartitionKey": "a", "Data": "aGk=", "ExplicitHashKey": "0"}),
    )
    .await;
    assert!(series(&svc).is_empty(), "no subscription yet: {:?}", series(&svc));

    let request = Request::from_value(
        Op::SubscribeToShard,
        json!({"ConsumerARN": consumer, "ShardId": "shardId-000000000000",
            "StartingPosition": {"Type": "TRIM_HORIZON"}}),
    )
    .unwrap();
    let Response::Events(mut rx) = svc.handle(request).await.unwrap() else { panic!("no event stream") };
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
    let SubscribeEvent::Event(ev) = first else { panic!("an exception: {first:?}") };
    assert_eq!(ev.records.len(), 1);
    // The gauge is set right after the event is queued: wait for it without sleeping blindly.
    let want = format!("lag billing shardId-000000000000 {}", ev.millis_behind_latest);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while series(&svc) != [want.clone()] {
        assert!(std::time::Instant::now() < deadline, "got {:?}, want {want}", series(&svc));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The series goes with the subscription (here: the consumer is deregistered).
    call(&svc, "DeregisterStreamConsumer", json!({"ConsumerARN": consumer})).await;
    while tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().is_some() {}
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !series(&svc).is_empty() {
        assert!(std::time::Instant::now() < deadline, "still {:?}", series(&svc));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
