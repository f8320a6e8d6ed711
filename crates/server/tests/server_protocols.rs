//! The front end's transports and encodings, end to end through a real socket: cleartext HTTP/2
//! with prior knowledge, TLS with and without ALPN (the Java SDK's Netty client sends the HTTP/2
//! preface over TLS without negotiating), and CBOR requests, responses and errors. Pins the
//! regressions that would make the Java SDK fail while boto3 (JSON, HTTP/1.1) still passes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use kinesin_server::{serve_all, tls, TlsListener};
use kinesin_service::{Clock, Service, ServiceConfig};
use kinesin_wire::cbor;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=a/20150101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=abc";
const CBOR: &str = "application/x-amz-cbor-1.1";
const JSON: &str = "application/x-amz-json-1.1";

struct Server {
    http: SocketAddr,
    https: SocketAddr,
    cert: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServiceConfig::new(dir.path().join("data"));
        cfg.create_stream_ms = 0;
        let service = Arc::new(Service::open(cfg, Clock::system()).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (config, source) = tls::server_config(None, &dir.path().join("tls")).unwrap();
        let (http, https) = (listener.local_addr().unwrap(), tls_listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let tls = Some(TlsListener { listener: tls_listener, config });
            serve_all(listener, tls, service, async {
                let _ = stopped.await;
            })
            .await
        });
        Server { http, https, cert: source.cert_path().to_path_buf(), stop: Some(stop), task, _dir: dir }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }

    fn tls_connector(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

fn request(op: &str, content_type: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::post("/")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("content-type", content_type)
        .header("x-amz-date", "20260101T000000Z")
        .header("authorization", AUTH)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn collect(resp: Response<hyper::body::Incoming>) -> (Response<()>, Bytes) {
    let (parts, body) = resp.into_parts();
    (Response::from_parts(parts, ()), body.collect().await.unwrap().to_bytes())
}

/// One request over HTTP/2 with prior knowledge on `io`.
async fn h2<I>(io: I, req: Request<Full<Bytes>>) -> (Response<()>, Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    collect(send.send_request(req).await.unwrap()).await
}

/// One request over HTTP/1.1 on `io`.
async fn h1<I>(io: I, req: Request<Full<Bytes>>) -> (Response<()>, Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    collect(send.send_request(req).await.unwrap()).await
}

fn cbor_body(v: &Value) -> Vec<u8> {
    cbor::to_vec(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_http2_prior_knowledge() {
    let server = Server::start().await;
    let (resp, body) =
        h2(TcpStream::connect(server.http).await.unwrap(), request("ListStreams", JSON, b"{}".to_vec()))
            .await;
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["HasMoreStreams"], json!(false));
    // The same port still speaks HTTP/1.1.
    let (resp, _) =
        h1(TcpStream::connect(server.http).await.unwrap(), request("ListStreams", JSON, b"{}".to_vec()))
            .await;
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_and_without_alpn() {
    let server = Server::start().await;
    let name = ServerName::try_from("localhost").unwrap();
    for (alpn, http2) in
        [(&[b"h2".as_slice()][..], true), (&[], true), (&[b"http/1.1".as_slice()][..], false), (&[], false)]
    {
        let tcp = TcpStream::connect(server.https).await.unwrap();
        let stream = server.tls_connector(alpn).connect(name.clone(), tcp).await.unwrap();
        let req = request("ListStreams", JSON, b"{}".to_vec());
        let (resp, _) = if http2 { h2(stream, req).await } else { h1(stream, req).await };
        assert_eq!(resp.status(), 200, "alpn {alpn:?}, http2 {http2}");
        assert_eq!(resp.version(), if http2 { Version::HTTP_2 } else { Version::HTTP_11 });
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_requests_responses_and_errors() {
    let server = Server::start().await;
    let call = |op: &'static str, body: Vec<u8>| {
        let addr = server.http;
        async move { h2(TcpStream::connect(addr).await.unwrap(), request(op, CBOR, body)).await }
    };
    let (resp, body) = call("CreateStream", cbor_body(&json!({"StreamName": "c", "ShardCount": 1}))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], CBOR);
    assert_eq!(&body[..], [0xa0], "no output: an empty CBOR map");

    // PutRecord with Data as a byte string: {"StreamName":"c","PartitionKey":"k","Data":h'00ff01'}
    let mut put = vec![0xa3];
    put.extend(cbor_body(&json!("StreamName")));
    put.extend(cbor_body(&json!("c")));
    put.extend(cbor_body(&json!("PartitionKey")));
    put.extend(cbor_body(&json!("k")));
    put.extend(cbor_body(&json!("Data")));
    put.extend([0x43, 0x00, 0xff, 0x01]);
    let (resp, body) = call("PutRecord", put).await;
    assert_eq!(resp.status(), 200, "{:?}", cbor::decode(&body));
    let out = cbor::decode(&body).unwrap();
    let seq = out["SequenceNumber"].as_str().unwrap().to_string();

    // GetShardIterator AT_TIMESTAMP with tag 1 + ms an hour ago (indefinite-length map, as
    // Jackson writes it), then GetRecords.
    let hour_ago_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        as u64
        - 3_600_000;
    let mut gsi = vec![0xbf];
    for (k, v) in
        [("StreamName", "c"), ("ShardId", "shardId-000000000000"), ("ShardIteratorType", "AT_TIMESTAMP")]
    {
        gsi.extend(cbor_body(&json!(k)));
        gsi.extend(cbor_body(&json!(v)));
    }
    gsi.extend(cbor_body(&json!("Timestamp")));
    gsi.extend([0xc1, 0x1b]);
    gsi.extend(hour_ago_ms.to_be_bytes());
    gsi.push(0xff);
    let (resp, body) = call("GetShardIterator", gsi).await;
    assert_eq!(resp.status(), 200, "{:?}", cbor::decode(&body));
    let it = cbor::decode(&body).unwrap()["ShardIterator"].as_str().unwrap().to_string();
    let (resp, body) = call("GetRecords", cbor_body(&json!({"ShardIterator": it}))).await;
    assert_eq!(resp.status(), 200);
    // Data comes back as a byte string, the arrival time as tag 1 + uint64 ms.
    assert!(body.windows(4).any(|w| w == [0x43, 0x00, 0xff, 0x01]), "{body:02x?}");
    let at = body.windows(2).position(|w| w == [0xc1, 0x1b]).expect("tag 1 + uint64");
    let arrival_ms = u64::from_be_bytes(body[at + 2..at + 10].try_into().unwrap());
    assert!(arrival_ms > hour_ago_ms && arrival_ms < hour_ago_ms + 3_700_000, "{arrival_ms}");
    let out = cbor::decode(&body).unwrap();
    assert_eq!(out["Records"][0]["SequenceNumber"], json!(seq));
    assert_eq!(out["Records"][0]["Data"], json!("AP8B"));

    // Errors: CBOR map, CBOR content type, x-amzn-ErrorType.
    let (resp, body) = call("DescribeStream", cbor_body(&json!({"StreamName": "missing"}))).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], CBOR);
    assert_eq!(resp.headers()["x-amzn-errortype"], "ResourceNotFoundException");
    assert_eq!(
        cbor::decode(&body).unwrap(),
        json!({"__type": "ResourceNotFoundException", "message": "Stream missing under account 000000000000 not found."})
    );
    let (resp, body) = call("ListStreams", vec![0xa1, 0x61]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(cbor::decode(&body).unwrap()["__type"], json!("SerializationException"));
    let (_, body) = call("CreateStream", cbor_body(&json!({"StreamName": "a b", "ShardCount": 1}))).await;
    assert_eq!(cbor::decode(&body).unwrap()["__type"], json!("ValidationException"));
    server.stop().await;
}
