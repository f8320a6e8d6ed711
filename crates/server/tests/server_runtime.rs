//! The server on a current-thread runtime: control-plane calls (which commit metadata with an
//! fsync) run on the blocking pool, and /metrics renders in place, neither through
//! `block_in_place`, which panics on this runtime and so dropped the connection of every
//! CreateStream and every scrape.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use kinesin_service::{Clock, Service, ServiceConfig};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=a/20150101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=abc";

async fn call(addr: std::net::SocketAddr, op: &str, body: Value) -> (u16, Value) {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", "20260101T000000Z")
        .header("authorization", AUTH)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = send.send_request(req).await.expect("an answer, not a dropped connection");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "current_thread")]
async fn control_plane_calls_work_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let service =
        Arc::new(Service::open(ServiceConfig::new(dir.path().join("data")), Clock::system()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kinesin_server::serve(listener, service, async {
        let _ = stopped.await;
    }));

    let (status, body) = call(addr, "CreateStream", json!({"StreamName": "rt", "ShardCount": 1})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(addr, "DescribeStreamSummary", json!({"StreamName": "rt"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["StreamDescriptionSummary"]["StreamStatus"], "ACTIVE",
        "ACTIVE for the very next request"
    );
    let (status, body) =
        call(addr, "PutRecord", json!({"StreamName": "rt", "PartitionKey": "k", "Data": "AA=="})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(addr, "DeleteStream", json!({"StreamName": "rt"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(addr, "DescribeStreamSummary", json!({"StreamName": "rt"})).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("ResourceNotFoundException")), "gone at once");

    // /metrics too rendered through `block_in_place`.
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("/metrics").body(Full::new(Bytes::new())).unwrap();
    let resp = send.send_request(req).await.expect("an answer, not a dropped connection");
    assert_eq!(resp.status(), 200);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("kinesin_"), "the metrics page");

    let _ = stop.send(());
    server.await.unwrap();
}
