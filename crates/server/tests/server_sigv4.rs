//! Verified signatures through a real socket, over both HTTP versions. HTTP/2 requests carry no
//! Host header — the SDKs sign `:authority` as `host` — so a server that looked only at the Host
//! header would refuse every signed HTTP/2 request (the Java SDK's) while boto3 kept working.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

use kinesin_server::auth::Credentials;
use kinesin_server::{obs::ServiceSlot, serve_slot, ServerOptions};
use kinesin_service::{Clock, Service, ServiceConfig};
use kinesin_wire::sigv4;

const KEY: &str = "AKIDH2";
const SECRET: &str = "h2-secret";
const BODY: &[u8] = b"{}";

/// A request signed like an SDK: `host`, `x-amz-date`, `x-amz-target`, the body's hash.
fn signed(authority: &str, secret: &str, with_host_header: bool) -> Request<Full<Bytes>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let date = sigv4::format_amz_date(now);
    let target = "Kinesis_20131202.ListStreams";
    let headers = [("host", authority), ("x-amz-date", date.as_str()), ("x-amz-target", target)];
    let names: Vec<String> = ["host", "x-amz-date", "x-amz-target"].map(String::from).to_vec();
    let cr = sigv4::canonical_request("POST", "/", "", &headers, &names, &sigv4::sha256_hex(BODY), false);
    let scope = format!("{}/us-east-1/kinesis/aws4_request", &date[..8]);
    let sig = sigv4::sign(
        &sigv4::signing_key(secret, &date[..8], "us-east-1", "kinesis"),
        &sigv4::string_to_sign(&date, &scope, &cr),
    );
    let mut b = Request::post(format!("http://{authority}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", &date)
        .header("x-amz-target", target)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders=host;x-amz-date;x-amz-target, Signature={sig}"),
        );
    if with_host_header {
        b = b.header("host", authority);
    }
    b.body(Full::new(Bytes::from_static(BODY))).unwrap()
}

async fn status(resp: Response<hyper::body::Incoming>) -> (u16, String) {
    let s = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (s, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_over_http1_and_http2() {
    let creds = Credentials::from_toml(&format!(
        "[[principal]]\narn = \"arn:aws:iam::000000000000:user/h2\"\naccess_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\n"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let service =
        Arc::new(Service::open(ServiceConfig::new(dir.path().join("data")), Clock::system()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServerOptions { credentials: Some(creds), ..ServerOptions::default() };
    let task = tokio::spawn(serve_slot(listener, None, ServiceSlot::filled(service), options, async {
        let _ = stopped.await;
    }));
    let authority = addr.to_string();

    for (secret, want) in [(SECRET, 200), ("wrong", 400)] {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        let (s, body) = status(send.send_request(signed(&authority, secret, false)).await.unwrap()).await;
        assert_eq!(s, want, "HTTP/2: {body}");
        if want != 200 {
            assert!(body.contains("InvalidSignatureException"), "{body}");
        }

        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let (s, body) = status(send.send_request(signed(&authority, secret, true)).await.unwrap()).await;
        assert_eq!(s, want, "HTTP/1.1: {body}");
    }
    let _ = stop.send(());
    task.await.unwrap();
}
