//! Black-box test through the official AWS SDK for Rust (`aws-sdk-kinesis` with `aws-config`).
//!
//! It starts the binary Cargo built for this test (`CARGO_BIN_EXE_kinesin`, so it always runs the
//! code under test, never a stale release build) on a free loopback port, points an unmodified
//! SDK client at it (`endpoint_url`, plain http, the SDK's default HTTP client) and drives the
//! data plane, the control plane and enhanced fan-out. It pins that the SDK's own deserializers
//! accept kinesin's responses — including SubscribeToShard's event stream, which the SDK decodes
//! frame by frame with CRC checks — and that errors map to the SDK's typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, ShardIteratorType, StartingPosition, StreamStatus,
    SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;

/// How long the server gets to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the subscription gets to deliver every record.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A `kinesin serve --ephemeral` process, killed on drop.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    /// Like `start`, with `extra` flags (e.g. `--credentials FILE`).
    fn start_with(extra: &[&str]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_kinesin"))
            .args(["serve", "--ephemeral", "--listen", &listen])
            .args(["--create-stream-ms", "0", "--delete-stream-ms", "0", "--update-stream-ms", "0"])
            .args(["--limits", "off"])
            .args(extra)
            .env_remove("KINESIN_DATA_DIR")
            .env_remove("KINESIN_CREDENTIALS")
            .env("KINESIN_LOG_LEVEL", std::env::var("KINESIN_LOG_LEVEL").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kinesin");
        let mut server = Server { child, endpoint: format!("http://{listen}") };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while std::net::TcpStream::connect(&listen).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("kinesin exited during start-up: {status}");
            }
            assert!(Instant::now() < deadline, "kinesin did not listen on {listen}");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDK client configured the way a user would: aws-config with static credentials, a
/// region, and the endpoint override. Retries off so that errors surface as they are.
async fn client(endpoint: &str) -> Client {
    client_with(endpoint, Credentials::new("AKIDKINESINTEST", "secret", None, None, "test")).await
}

/// Like `client`, with the given static credentials.
async fn client_with(endpoint: &str, credentials: Credentials) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    Client::new(&config)
}

fn record(i: usize) -> Vec<u8> {
    format!("record-{i:04}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_round_trip_and_enhanced_fan_out() {
    let server = Server::start();
    let kinesis = client(&server.endpoint).await;
    let stream = "sdk-rust";

    // CreateStream, then wait (the server makes it ACTIVE at once with --create-stream-ms 0).
    kinesis.create_stream().stream_name(stream).shard_count(1).send().await.expect("CreateStream");
    let summary = kinesis
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary
        .expect("summary");
    assert_eq!(summary.stream_status, StreamStatus::Active);
    assert_eq!(summary.open_shard_count, 1);
    let stream_arn = summary.stream_arn;
    assert_eq!(stream_arn, "arn:aws:kinesis:us-east-1:000000000000:stream/sdk-rust");

    // ListShards.
    let shards = kinesis.list_shards().stream_name(stream).send().await.expect("ListShards");
    let shard_ids: Vec<&str> = shards.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(shard_ids, ["shardId-000000000000"]);
    let shard_id = shard_ids[0].to_string();

    // Register a consumer before writing, and subscribe from TRIM_HORIZON.
    let consumer = kinesis
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("sdk-consumer")
        .send()
        .await
        .expect("RegisterStreamConsumer")
        .consumer
        .expect("consumer");
    let consumer_arn = consumer.consumer_arn().to_string();
    assert!(consumer_arn.starts_with(&format!("{stream_arn}/consumer/sdk-consumer:")), "{consumer_arn}");
    let described = kinesis
        .describe_stream_consumer()
        .consumer_arn(&consumer_arn)
        .send()
        .await
        .expect("DescribeStreamConsumer")
        .consumer_description
        .expect("description");
    assert_eq!(described.consumer_status, ConsumerStatus::Active);

    // PutRecord, then PutRecords.
    let mut sent: Vec<(Vec<u8>, String)> = Vec::new();
    let put = kinesis
        .put_record()
        .stream_name(stream)
        .partition_key("pk-0")
        .data(Blob::new(record(0)))
        .send()
        .await
        .expect("PutRecord");
    assert_eq!(put.shard_id(), shard_id);
    sent.push((record(0), put.sequence_number().to_string()));
    let entries: Vec<PutRecordsRequestEntry> = (1..100)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(record(i)))
                .partition_key(format!("pk-{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let puts = kinesis
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries))
        .send()
        .await
        .expect("PutRecords");
    assert_eq!(puts.failed_record_count(), Some(0));
    assert_eq!(puts.records().len(), 99);
    for (i, r) in puts.records().iter().enumerate() {
        sent.push((record(i + 1), r.sequence_number().expect("sequence number").to_string()));
    }

    // GetShardIterator + GetRecords from TRIM_HORIZON: every record, in order, intact.
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(&shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator;
    let mut got: Vec<(Vec<u8>, String)> = Vec::new();
    while got.len() < sent.len() {
        let out = kinesis
            .get_records()
            .shard_iterator(iterator.expect("open shard has a next iterator"))
            .limit(30)
            .send()
            .await
            .expect("GetRecords");
        assert!(!out.records().is_empty(), "GetRecords returned nothing after {} records", got.len());
        for r in out.records() {
            got.push((r.data().as_ref().to_vec(), r.sequence_number().to_string()));
            assert!(r.approximate_arrival_timestamp().is_some());
        }
        iterator = out.next_shard_iterator;
    }
    assert_eq!(got, sent);

    // SubscribeToShard over the SDK's default HTTP client: the event stream delivers every
    // record, then continues (ContinuationSequenceNumber) after the last one.
    let mut subscription = kinesis
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id(&shard_id)
        .starting_position(
            StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon).build().unwrap(),
        )
        .send()
        .await
        .expect("SubscribeToShard");
    let mut pushed: Vec<(Vec<u8>, String)> = Vec::new();
    let mut last_continuation = None;
    let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
    while pushed.len() < sent.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, subscription.event_stream.recv()).await else {
            panic!("subscription delivered {} of {} records in time", pushed.len(), sent.len());
        };
        let event = next.expect("event stream").expect("event stream ended early");
        match event {
            SubscribeToShardEventStream::SubscribeToShardEvent(e) => {
                for r in e.records() {
                    pushed.push((r.data().as_ref().to_vec(), r.sequence_number().to_string()));
                }
                last_continuation = Some(e.continuation_sequence_number().to_string());
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(pushed, sent);
    // Past the last record delivered (as on AWS), so that resuming from it repeats nothing;
    // both are decimals of the same width, so text order is numeric order.
    let (cont, last_seq) = (last_continuation.expect("a continuation"), &sent.last().unwrap().1);
    assert!((cont.len(), cont.as_str()) > (last_seq.len(), last_seq.as_str()), "{cont} <= {last_seq}");

    // A record put while subscribed is pushed too.
    let live = kinesis
        .put_record()
        .stream_name(stream)
        .partition_key("pk-live")
        .data(Blob::new(b"live".to_vec()))
        .send()
        .await
        .expect("PutRecord (live)");
    let live_pushed = loop {
        let event = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscription.event_stream.recv())
            .await
            .expect("live record pushed in time")
            .expect("event stream")
            .expect("event stream ended early");
        if let SubscribeToShardEventStream::SubscribeToShardEvent(e) = event {
            if let Some(r) = e.records().first() {
                break r.clone();
            }
        }
    };
    assert_eq!(live_pushed.data().as_ref(), b"live");
    assert_eq!(live_pushed.sequence_number(), live.sequence_number());
    drop(subscription);

    // A missing stream is the SDK's typed ResourceNotFoundException.
    let err = kinesis
        .describe_stream_summary()
        .stream_name("sdk-rust-missing")
        .send()
        .await
        .expect_err("a missing stream is an error")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    assert_eq!(aws_sdk_kinesis::error::ProvideErrorMetadata::code(&err), Some("ResourceNotFoundException"));
    let err = kinesis
        .put_record()
        .stream_name("sdk-rust-missing")
        .partition_key("pk")
        .data(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect_err("a missing stream is an error")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    // DeregisterStreamConsumer; then the consumer is gone (ResourceNotFoundException).
    kinesis
        .deregister_stream_consumer()
        .consumer_arn(&consumer_arn)
        .send()
        .await
        .expect("DeregisterStreamConsumer");
    let err = kinesis
        .describe_stream_consumer()
        .consumer_arn(&consumer_arn)
        .send()
        .await
        .expect_err("a deregistered consumer is gone")
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");

    kinesis.delete_stream().stream_name(stream).send().await.expect("DeleteStream");
    let streams = kinesis.list_streams().send().await.expect("ListStreams");
    assert!(streams.stream_names().is_empty(), "{:?}", streams.stream_names());
}

/// With `--credentials` every request's SigV4 signature is verified: the SDK, configured with
/// static credentials (with and without a session token), is accepted on the control plane, the
/// data plane and SubscribeToShard; a wrong secret is `InvalidSignatureException`, an unknown key
/// or a wrong session token `UnrecognizedClientException`, as the SDK's generic service error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_signatures_verified_with_credentials() {
    let dir = std::env::temp_dir().join(format!("kinesin-sdk-rust-sigv4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("credentials.toml");
    std::fs::write(
        &file,
        r#"
[[principal]]
arn = "arn:aws:iam::000000000000:user/rust-admin"
access_key_id = "AKIARUSTADMIN"
secret_access_key = "rust-admin-secret"

[[principal]]
arn = "arn:aws:sts::000000000000:assumed-role/rust/session"
access_key_id = "ASIARUSTSESSION"
secret_access_key = "rust-session-secret"
session_token = "rust-session-token"
"#,
    )
    .unwrap();
    let server = Server::start_with(&["--credentials", file.to_str().unwrap()]);
    let admin = client_with(
        &server.endpoint,
        Credentials::new("AKIARUSTADMIN", "rust-admin-secret", None, None, "test"),
    )
    .await;
    let session = client_with(
        &server.endpoint,
        Credentials::new(
            "ASIARUSTSESSION",
            "rust-session-secret",
            Some("rust-session-token".into()),
            None,
            "test",
        ),
    )
    .await;
    let stream = "sdk-rust-signed";

    admin.create_stream().stream_name(stream).shard_count(1).send().await.expect("CreateStream");
    let stream_arn = session
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary
        .expect("summary")
        .stream_arn;

    // PutRecord by both principals; GetRecords by each sees both.
    let mut sent = Vec::new();
    for (i, k) in [&admin, &session].into_iter().enumerate() {
        let put = k
            .put_record()
            .stream_name(stream)
            .partition_key(format!("pk-{i}"))
            .data(Blob::new(record(i)))
            .send()
            .await
            .expect("PutRecord");
        sent.push((record(i), put.sequence_number().to_string()));
    }
    for k in [&admin, &session] {
        let iterator = k
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator
            .expect("iterator");
        let out = k.get_records().shard_iterator(iterator).send().await.expect("GetRecords");
        let got: Vec<(Vec<u8>, String)> = out
            .records()
            .iter()
            .map(|r| (r.data().as_ref().to_vec(), r.sequence_number().to_string()))
            .collect();
        assert_eq!(got, sent);
    }

    // One SubscribeToShard event, signed with the session token.
    let consumer_arn = admin
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("sdk-rust-signed")
        .send()
        .await
        .expect("RegisterStreamConsumer")
        .consumer
        .expect("consumer")
        .consumer_arn;
    let mut subscription = session
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(
            StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon).build().unwrap(),
        )
        .send()
        .await
        .expect("SubscribeToShard");
    let mut pushed = Vec::new();
    while pushed.len() < sent.len() {
        let event = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscription.event_stream.recv())
            .await
            .expect("records pushed in time")
            .expect("event stream")
            .expect("event stream ended early");
        let SubscribeToShardEventStream::SubscribeToShardEvent(e) = event else {
            panic!("unexpected event {event:?}");
        };
        pushed.extend(
            e.records().iter().map(|r| (r.data().as_ref().to_vec(), r.sequence_number().to_string())),
        );
    }
    assert_eq!(pushed, sent);
    drop(subscription);

    // Rejections carry AWS's error code in the SDK's generic (unmodeled) service error.
    use aws_sdk_kinesis::error::ProvideErrorMetadata;
    let cases = [
        (Credentials::new("AKIARUSTADMIN", "wrong-secret", None, None, "test"), "InvalidSignatureException"),
        (
            Credentials::new(
                "ASIARUSTSESSION",
                "wrong-secret",
                Some("rust-session-token".into()),
                None,
                "test",
            ),
            "InvalidSignatureException",
        ),
        (Credentials::new("AKIARUSTUNKNOWN", "whatever", None, None, "test"), "UnrecognizedClientException"),
        (
            Credentials::new(
                "ASIARUSTSESSION",
                "rust-session-secret",
                Some("another-token".into()),
                None,
                "test",
            ),
            "UnrecognizedClientException",
        ),
    ];
    for (credentials, code) in cases {
        let key = credentials.access_key_id().to_string();
        let k = client_with(&server.endpoint, credentials).await;
        let err = k.list_streams().send().await.expect_err("rejected").into_service_error();
        assert_eq!(err.meta().code(), Some(code), "{key}: {err:?}");
        let err = k
            .put_record()
            .stream_name(stream)
            .partition_key("pk")
            .data(Blob::new(b"x".to_vec()))
            .send()
            .await
            .expect_err("rejected")
            .into_service_error();
        assert_eq!(err.code(), Some(code), "{key}: {err:?}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
