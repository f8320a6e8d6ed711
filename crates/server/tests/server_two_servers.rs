//! Two servers in one process, each with its own settings (issue 14: credentials, the audit
//! trail, the body-read timeout, the body budget and the connection counters were process-wide,
//! so a second server silently kept the first one's). Both serve the same service; every check
//! asks both servers the same thing and expects each to answer by its own settings.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use kinesin_server::auth::Credentials;
use kinesin_server::cors::Origins;
use kinesin_server::obs::ServiceSlot;
use kinesin_server::{audit, serve_slot, ServerLimits, ServerOptions};
use kinesin_service::{Clock, Service, ServiceConfig};
use kinesin_wire::sigv4;

const KEY: &str = "AKIDSERVERA";
const SECRET: &str = "server-a-secret";

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(service: &Arc<Service>, options: ServerOptions) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let slot = ServiceSlot::filled(service.clone());
        let task = tokio::spawn(serve_slot(listener, None, slot, options, async {
            let _ = stopped.await;
        }));
        Running { addr, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

struct Pair {
    a: Running,
    b: Running,
    dir: tempfile::TempDir,
}

/// Server A: credentials, a 1 s body timeout, `a_per_ip` connections per client address, an
/// audit trail in `a.log`, one allowed page origin. Server B: none of those, a 2 s body timeout,
/// its own trail in `b.log`.
async fn pair(a_per_ip: Option<usize>) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let service =
        Arc::new(Service::open(ServiceConfig::new(dir.path().join("data")), Clock::system()).unwrap());
    let credentials = Credentials::from_toml(&format!(
        "[[principal]]\narn = \"arn:aws:iam::000000000000:user/a\"\naccess_key_id = \"{KEY}\"\nsecret_access_key = \"{SECRET}\"\n"
    ))
    .unwrap();
    let a = ServerOptions {
        limits: ServerLimits {
            body_read_timeout: Duration::from_secs(1),
            connections_per_ip_max: a_per_ip,
            ..ServerLimits::default()
        },
        credentials: Some(credentials),
        cors_origins: Some(Origins::parse("https://app.example.com").unwrap()),
        audit: Some(audit::open(audit::AuditConfig::new(dir.path().join("a.log"))).unwrap()),
    };
    let b = ServerOptions {
        limits: ServerLimits { body_read_timeout: Duration::from_secs(2), ..ServerLimits::default() },
        audit: Some(audit::open(audit::AuditConfig::new(dir.path().join("b.log"))).unwrap()),
        ..ServerOptions::default()
    };
    let a = Running::start(&service, a).await;
    let b = Running::start(&service, b).await;
    Pair { a, b, dir }
}

impl Pair {
    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// One request over a new HTTP/1.1 connection: (status, headers, body).
async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> (u16, hyper::HeaderMap, String) {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// ListStreams with a well-formed signature by a key that no credentials file holds.
fn unverified_list_streams() -> Request<Full<Bytes>> {
    let date = sigv4::format_amz_date(unix_now());
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDNOBODY/{}/us-east-1/kinesis/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=abc",
        &date[..8]
    );
    Request::post("/")
        .header("host", "kinesin")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .header("x-amz-date", date)
        .header("authorization", auth)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap()
}

/// ListStreams signed by server A's principal.
fn signed_list_streams() -> Request<Full<Bytes>> {
    let date = sigv4::format_amz_date(unix_now());
    let body: &[u8] = b"{}";
    let target = "Kinesis_20131202.ListStreams";
    let headers = [("host", "kinesin"), ("x-amz-date", date.as_str()), ("x-amz-target", target)];
    let names: Vec<String> = ["host", "x-amz-date", "x-amz-target"].map(String::from).to_vec();
    let cr = sigv4::canonical_request("POST", "/", "", &headers, &names, &sigv4::sha256_hex(body), false);
    let scope = format!("{}/us-east-1/kinesis/aws4_request", &date[..8]);
    let sig = sigv4::sign(
        &sigv4::signing_key(SECRET, &date[..8], "us-east-1", "kinesis"),
        &sigv4::string_to_sign(&date, &scope, &cr),
    );
    Request::post("/")
        .header("host", "kinesin")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", &date)
        .header("x-amz-target", target)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders=host;x-amz-date;x-amz-target, Signature={sig}"),
        )
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn get_metrics() -> Request<Full<Bytes>> {
    Request::get("/metrics").header("host", "kinesin").body(Full::new(Bytes::new())).unwrap()
}

async fn metrics(addr: SocketAddr) -> String {
    let (status, _, body) = send(addr, get_metrics()).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn metric(page: &str, series: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_verifies_with_its_own_credentials() {
    let p = pair(None).await;
    let (status, _, body) = send(p.a.addr, unverified_list_streams()).await;
    assert_eq!(status, 400, "A has credentials and must refuse an unknown key: {body}");
    assert!(body.contains("UnrecognizedClientException"), "{body}");
    let (status, _, body) = send(p.a.addr, signed_list_streams()).await;
    assert_eq!(status, 200, "A's own principal: {body}");
    let (status, _, body) = send(p.b.addr, unverified_list_streams()).await;
    assert_eq!(status, 200, "B has no credentials and accepts any well-formed signature: {body}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_keeps_its_own_body_read_timeout() {
    let p = pair(None).await;
    for (addr, secs) in [(p.a.addr, 1u64), (p.b.addr, 2)] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Headers that promise a body which never comes.
        s.write_all(
            b"POST / HTTP/1.1\r\nhost: kinesin\r\ncontent-type: application/x-amz-json-1.1\r\n\
              x-amz-target: Kinesis_20131202.ListStreams\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        let start = Instant::now();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await.unwrap().unwrap();
        let waited = start.elapsed();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.contains(&format!("within {secs} s of its headers")),
            "server with {secs} s: {answer}"
        );
        assert!(
            waited >= Duration::from_millis(secs * 1000 - 100),
            "{secs} s server answered after {waited:?}"
        );
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_counts_its_own_connections() {
    let p = pair(Some(1)).await;
    // A allows one connection per address: a second is answered 503 and counted by A only.
    let held = TcpStream::connect(p.a.addr).await.unwrap();
    let mut second = TcpStream::connect(p.a.addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("at most 1 at once"), "{answer}");
    // B's default allows many: two connections held, and a third answers /metrics.
    let _b1 = TcpStream::connect(p.b.addr).await.unwrap();
    let _b2 = TcpStream::connect(p.b.addr).await.unwrap();
    let page_b = metrics(p.b.addr).await;
    assert_eq!(metric(&page_b, "kinesin_http_connections_refused_total"), 0, "{page_b}");
    drop(held);
    // A's slot frees once A sees the close; its /metrics then shows its own refusal.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page_a = loop {
        let io = TokioIo::new(TcpStream::connect(p.a.addr).await.unwrap());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        // Until A sees the close, a new connection is still refused (503): try again.
        if let Ok(resp) = sender.send_request(get_metrics()).await {
            if resp.status() == hyper::StatusCode::OK {
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                break String::from_utf8_lossy(&body).into_owned();
            }
        }
        assert!(Instant::now() < deadline, "A kept refusing after the held connection closed");
        tokio::task::yield_now().await;
    };
    assert!(metric(&page_a, "kinesin_http_connections_refused_total") >= 1, "{page_a}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_writes_its_own_audit_trail_and_counts_its_own_requests() {
    let p = pair(None).await;
    let (status, _, _) = send(p.a.addr, signed_list_streams()).await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let (status, _, _) = send(p.b.addr, unverified_list_streams()).await;
        assert_eq!(status, 200);
    }
    // Each trail's writer thread appends its lines within a tick of the request: poll, bounded.
    let dir = p.dir.path().to_path_buf();
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default().lines().map(str::to_string).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while (lines("a.log").is_empty() || lines("b.log").len() < 2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a, b) = (lines("a.log"), lines("b.log"));
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].contains("arn:aws:iam::000000000000:user/a"), "{a:?}");
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b.iter().all(|l| l.contains("AKIDNOBODY") && !l.contains("user/a")), "{b:?}");
    let series = "kinesin_requests_total{operation=\"ListStreams\"}";
    assert_eq!(metric(&metrics(p.a.addr).await, series), 1);
    assert_eq!(metric(&metrics(p.b.addr).await, series), 2);
    let series = "kinesin_audit_events_total{file=\"main\"}";
    assert_eq!(metric(&metrics(p.a.addr).await, series), 1);
    assert_eq!(metric(&metrics(p.b.addr).await, series), 2);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_allows_its_own_cors_origins() {
    let p = pair(None).await;
    let preflight = |origin: &str| {
        Request::options("/")
            .header("host", "kinesin")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let allowed =
        |h: &hyper::HeaderMap| h.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
    let (_, h, _) = send(p.a.addr, preflight("https://app.example.com")).await;
    assert_eq!(allowed(&h).as_deref(), Some("https://app.example.com"));
    let (_, h, _) = send(p.a.addr, preflight("http://localhost:3000")).await;
    assert_eq!(allowed(&h), None, "A allows only its listed origin");
    // B: no --cors-origins and no credentials: pages of this machine only.
    let (_, h, _) = send(p.b.addr, preflight("https://app.example.com")).await;
    assert_eq!(allowed(&h), None);
    let (_, h, _) = send(p.b.addr, preflight("http://localhost:3000")).await;
    assert_eq!(allowed(&h).as_deref(), Some("http://localhost:3000"));
    p.stop().await;
}
