//! The service's one entry point driven with typed requests, no JSON anywhere: create a stream,
//! put records, get an iterator, read them back, split a shard and follow the children, and
//! the typed errors (`ServiceError`) a caller gets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::sync::Arc;

use bytes::Bytes;

use kinesin_service::error::ServiceError;
use kinesin_service::{Clock, Response, Service, ServiceConfig};
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ids::{HashKey, ShardId, StreamArn, StreamName};
use kinesin_wire::ops::*;
use kinesin_wire::request::Request;

const T0: i64 = 1_790_000_000_000;

fn open(dir: &std::path::Path) -> Arc<Service> {
    let mut cfg = ServiceConfig::new(dir.to_path_buf());
    cfg.limits.enabled = false;
    Arc::new(Service::open(cfg, Clock::manual(T0)).expect("open"))
}

fn name(n: &str) -> Option<StreamName> {
    Some(StreamName::parse(n).expect("a stream name"))
}

async fn output(svc: &Arc<Service>, req: Request) -> Result<Output, ServiceError> {
    // `?` words the service's error as `ServiceError` whatever `handle` returns.
    match svc.handle(req).await? {
        Response::Output(out) => Ok(out),
        Response::Events(_) => panic!("an event stream"),
    }
}

async fn create(svc: &Arc<Service>, stream: &str, shards: i64) {
    let out = output(
        svc,
        Request::CreateStream(CreateStreamInput {
            stream_name: StreamName::parse(stream).unwrap(),
            shard_count: Some(shards),
            stream_mode_details: None,
            tags: None,
            warm_throughput_mi_bps: None,
            max_record_size_in_ki_b: None,
            record_distribution_strategy: None,
        }),
    )
    .await
    .unwrap();
    assert!(matches!(out, Output::Empty), "{out:?}");
}

async fn put(svc: &Arc<Service>, stream: &str, key: HashKey, data: &'static [u8]) -> (String, String) {
    let out = output(
        svc,
        Request::PutRecord(PutRecordInput {
            stream_name: name(stream),
            stream_arn: None,
            data: Blob(Bytes::from_static(data)),
            partition_key: Some("pk".into()),
            explicit_hash_key: Some(key.to_string()),
            sequence_number_for_ordering: None,
            dry_run: None,
        }),
    )
    .await
    .unwrap();
    let Output::PutRecord { shard_id, sequence_number, .. } = out else { panic!("{out:?}") };
    (shard_id, sequence_number)
}

async fn iterator(svc: &Arc<Service>, stream: &str, shard: ShardId, kind: ShardIteratorType) -> String {
    let out = output(
        svc,
        Request::GetShardIterator(GetShardIteratorInput {
            stream_name: name(stream),
            stream_arn: None,
            shard_id: shard.to_string(),
            shard_iterator_type: kind,
            starting_sequence_number: None,
            timestamp: None,
            dry_run: None,
        }),
    )
    .await
    .unwrap();
    let Output::GetShardIterator { shard_iterator } = out else { panic!("{out:?}") };
    shard_iterator
}

/// GetRecords once: the records' data, the next iterator and the child shards.
async fn read(svc: &Arc<Service>, it: &str) -> (Vec<Bytes>, Option<String>, Vec<String>) {
    let out = output(
        svc,
        Request::GetRecords(GetRecordsInput {
            shard_iterator: it.to_string(),
            limit: None,
            stream_arn: None,
            dry_run: None,
        }),
    )
    .await
    .unwrap();
    let Output::GetRecords { records, next_shard_iterator, child_shards, .. } = out else {
        panic!("{out:?}")
    };
    let children = child_shards.unwrap_or_default().into_iter().map(|c| c.shard_id).collect();
    (records.into_iter().map(|r| r.data.0).collect(), next_shard_iterator, children)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_put_iterate_read_split_and_follow_the_children() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(dir.path());
    create(&svc, "typed", 1).await;
    let (shard, first) = put(&svc, "typed", HashKey(1), b"one").await;
    assert_eq!(shard, "shardId-000000000000");
    let (_, second) = put(&svc, "typed", HashKey(u128::MAX), b"two").await;
    assert!(first.len() == 56 && second > first, "{first} {second}");

    let it = iterator(&svc, "typed", ShardId(0), ShardIteratorType::TrimHorizon).await;
    let (data, next, children) = read(&svc, &it).await;
    assert_eq!(data, [Bytes::from_static(b"one"), Bytes::from_static(b"two")]);
    assert!(children.is_empty());
    let after = next.expect("an open shard has a next iterator");

    // Split at the middle: the parent closes, new records go to the children.
    let half = HashKey(1 << 127);
    let out = output(
        &svc,
        Request::SplitShard(SplitShardInput {
            stream_name: None,
            stream_arn: Some(StreamArn::new("us-east-1", "000000000000", "typed")),
            shard_to_split: "shardId-000000000000".into(),
            new_starting_hash_key: half.to_string(),
        }),
    )
    .await
    .unwrap();
    assert!(matches!(out, Output::Empty));
    let (low, _) = put(&svc, "typed", HashKey(5), b"low").await;
    let (high, _) = put(&svc, "typed", HashKey(u128::MAX), b"high").await;
    assert_eq!((low.as_str(), high.as_str()), ("shardId-000000000001", "shardId-000000000002"));

    // The parent's reader reaches its end and learns its children.
    let (data, next, children) = read(&svc, &after).await;
    assert!(data.is_empty(), "{data:?}");
    assert!(next.is_none(), "a closed shard's end has no next iterator");
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    let it = iterator(&svc, "typed", ShardId(2), ShardIteratorType::TrimHorizon).await;
    assert_eq!(read(&svc, &it).await.0, [Bytes::from_static(b"high")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_errors_carry_the_aws_kind_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(dir.path());
    let e = output(
        &svc,
        Request::DescribeStreamSummary(StreamRef { stream_name: name("absent"), stream_arn: None }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        ServiceError::ResourceNotFound("Stream absent under account 000000000000 not found.".into())
    );
    assert_eq!(e.kind(), ErrorKind::ResourceNotFound);

    let e = output(&svc, Request::DescribeStreamSummary(StreamRef { stream_name: None, stream_arn: None }))
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::InvalidArgument(_)), "{e}");

    // A StreamARN of another account names no stream here.
    let other = StreamArn::new("us-east-1", "111111111111", "s");
    let e = output(
        &svc,
        Request::DescribeStreamSummary(StreamRef { stream_name: None, stream_arn: Some(other) }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceNotFound);

    let e =
        output(&svc, Request::NotImplemented(kinesin_wire::operation::Op::ListChannels)).await.unwrap_err();
    assert!(
        matches!(&e, ServiceError::InvalidArgument(m) if m.contains("does not implement ListChannels")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_iterator_type_is_served_without_a_fallback_arm() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(dir.path());
    create(&svc, "kinds", 1).await;
    let (_, seq) = put(&svc, "kinds", HashKey(0), b"x").await;
    for (kind, seq_given, want) in [
        (ShardIteratorType::TrimHorizon, None, 1),
        (ShardIteratorType::Latest, None, 0),
        (ShardIteratorType::AtSequenceNumber, Some(seq.clone()), 1),
        (ShardIteratorType::AfterSequenceNumber, Some(seq.clone()), 0),
    ] {
        let out = output(
            &svc,
            Request::GetShardIterator(GetShardIteratorInput {
                stream_name: name("kinds"),
                stream_arn: None,
                shard_id: "shardId-000000000000".into(),
                shard_iterator_type: kind,
                starting_sequence_number: seq_given,
                timestamp: None,
                dry_run: None,
            }),
        )
        .await
        .unwrap();
        let Output::GetShardIterator { shard_iterator } = out else { panic!("{out:?}") };
        assert_eq!(read(&svc, &shard_iterator).await.0.len(), want, "{kind}");
    }
    // AT_SEQUENCE_NUMBER without a sequence number: AWS's message, naming the type.
    let e = output(
        &svc,
        Request::GetShardIterator(GetShardIteratorInput {
            stream_name: name("kinds"),
            stream_arn: None,
            shard_id: "shardId-000000000000".into(),
            shard_iterator_type: ShardIteratorType::AtSequenceNumber,
            starting_sequence_number: None,
            timestamp: None,
            dry_run: None,
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ServiceError::InvalidArgument(m) if m.contains("Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber")),
        "{e}"
    );
}
