//! The HTTP front end: awsJson1_1 and CBOR over HTTP/1.1 and HTTP/2, cleartext and TLS.
//!
//! It does what AWS's front end does before a request reaches the service, in the same order
//! (reference §2.1, kinesalite's captures): method, content type, body present, JSON parse,
//! operation known, authentication header present, model validation; then the service call.
//! Every answer carries `x-amzn-RequestId` and `x-amz-id-2`; errors carry `x-amzn-ErrorType`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use kinesin_service::{Response as ServiceResponse, Service, SubscribeEvent};
use kinesin_wire::error::{ApiError, ErrorKind};
use kinesin_wire::model::model;
use kinesin_wire::operation::Op;
use kinesin_wire::ops::Output;
use kinesin_wire::request::Request as WireRequest;

pub mod audit;
pub mod auth;
mod authz;
pub mod conn;
pub mod console;
pub mod cors;
pub mod metrics_text;
pub mod obs;
pub mod opmetrics;
pub mod process;
pub mod tls;

/// Largest request body. The largest valid request is a PutRecords of 10 MiB of data (or a
/// PutRecord of one 10 MiB record): 13.4 MiB as base64 JSON, plus up to 500 partition keys of 256
/// characters and explicit hash keys, ~14 MiB in all; 16 MiB leaves room and nothing more.
/// Larger bodies are refused with 413 as soon as Content-Length says so, or when the 16 MiB are
/// exceeded while reading a body without one.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Connections served at once by default (`--max-connections`); more wait in the kernel's accept
/// queue until one closes.
pub const CONNECTIONS_MAX: usize = 4096;
/// At least this many connections per client address by default, so one SDK's pool (the Java
/// SDK's holds up to 50) always fits even under a small `--max-connections`.
pub const CONNECTIONS_PER_IP_FLOOR: usize = 64;
/// How long a connection refused for `--max-connections-per-ip` is kept open after its 503 is
/// written, so the client reads the answer instead of a reset; and how many such connections may
/// linger at once (beyond that, refused connections are closed at once).
pub const REFUSED_LINGER: Duration = Duration::from_millis(500);
pub const REFUSED_LINGERING_MAX: usize = 64;
/// Request bodies held in memory at once, over all connections (KiB granularity): a request
/// reserves its Content-Length (or `REQUEST_BODY_BYTES_MAX` when it has none) before reading its
/// body and keeps it until answered, so many concurrent large requests wait instead of exhausting
/// memory (128 HTTP/2 streams × 4,096 connections × 16 MiB would otherwise be possible).
pub const REQUEST_BODIES_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// HTTP/1.1 headers one request may carry (the SDKs send about ten); more: 431.
pub const HTTP1_HEADERS_MAX: usize = 100;
/// HTTP/1.1 read buffer, which bounds the request line and headers together; more: 431.
pub const HTTP1_BUFFER_BYTES_MAX: usize = 64 * 1024;
/// Default time a client has to send a request's headers (`--header-read-timeout-secs`): a
/// slow-header (slowloris) connection is closed after it. hyper starts this clock when an HTTP/1.1
/// connection opens and again when a response is done, so it also bounds the idle wait between
/// keep-alive requests; 30 s (hyper's own default) keeps pooled SDK connections useful.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a connection may sit with no request in flight and no bytes moving
/// (`--idle-timeout-secs`) before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time a client has to send a request's whole body once its headers are in
/// (`--body-read-timeout-secs`): 16 MiB at ~280 KB/s. A slow-body client holds its reservation of
/// the body budget meanwhile; after it, 408 `RequestTimeoutException` and the body is dropped.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP/2 keep-alive pings: a peer that does not answer one within the timeout is gone.
pub const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const TARGET_PREFIX: &str = "Kinesis_20131202";
const JSON_1_1: &str = "application/x-amz-json-1.1";
const JSON_PLAIN: &str = "application/json";
const CBOR_1_1: &str = "application/x-amz-cbor-1.1";

/// A response body: a whole one, or SubscribeToShard's event stream.
pub type Body = BoxBody<Bytes, Infallible>;

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// HTTP/2 streams one connection may have open at once; a client that wants more opens another
/// connection (the Java SDK's Netty pool does).
pub const H2_STREAMS_PER_CONNECTION_MAX: u32 = 128;
/// HTTP/2 flow-control windows: a 10 MiB PutRecords body (≈13.4 MiB as base64 JSON, ≈10 MiB as
/// CBOR) arrives in a handful of window updates instead of ~200 with the 64 KiB default, while
/// one connection buffers at most `H2_CONNECTION_WINDOW_BYTES` that the handler has not read.
pub const H2_STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
pub const H2_CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Largest HTTP/2 frame we accept (the protocol default is 16 KiB).
pub const H2_FRAME_BYTES_MAX: u32 = 64 * 1024;
/// Largest header block we accept; SigV4 headers are well under 8 KiB.
pub const H2_HEADER_LIST_BYTES_MAX: u32 = 64 * 1024;
/// A TLS client that has not finished its handshake by then is dropped.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTPS listener: a bound socket and the TLS configuration to accept with.
pub struct TlsListener {
    pub listener: TcpListener,
    pub config: Arc<rustls::ServerConfig>,
}

/// Limits against abusive or broken clients that the operator may tune.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    pub connections_max: usize,
    /// Connections one client address may hold at once (`--max-connections-per-ip`); `None`:
    /// [`ServerLimits::connections_per_ip`]'s default.
    pub connections_per_ip_max: Option<usize>,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            connections_max: CONNECTIONS_MAX,
            connections_per_ip_max: None,
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

impl ServerLimits {
    /// Connections one client address may hold at once. By default a quarter of
    /// `connections_max` (1,024 of 4,096), so a flood from one address (or a few) leaves most slots
    /// to everyone else, yet at least [`CONNECTIONS_PER_IP_FLOOR`]: many clients share one
    /// address behind NAT, a proxy or Docker's port publishing, and each SDK pools up to ~50.
    pub fn connections_per_ip(&self) -> usize {
        self.connections_per_ip_max
            .unwrap_or_else(|| {
                (self.connections_max / 4).max(CONNECTIONS_PER_IP_FLOOR.min(self.connections_max))
            })
            .max(1)
    }
}

/// Everything one server is set up with besides its listeners and its service. Each server keeps
/// its own: two servers in one process (tests, an embedding program) may differ in every one.
#[derive(Debug, Default)]
pub struct ServerOptions {
    pub limits: ServerLimits,
    /// The principals whose SigV4 signatures are verified (`--credentials`); `None`: any
    /// well-formed signature is accepted.
    pub credentials: Option<auth::Credentials>,
    /// The page origins a browser may call the API from (`--cors-origins`); `None`: see
    /// [`cors::allowed`].
    pub cors_origins: Option<cors::Origins>,
    /// The audit trail of this server's requests (`--audit-log`), opened by [`audit::open`].
    pub audit: Option<audit::Audit>,
}

impl From<ServerLimits> for ServerOptions {
    fn from(limits: ServerLimits) -> ServerOptions {
        ServerOptions { limits, ..ServerOptions::default() }
    }
}

/// One server's state, built when it starts and reachable from each of its connections and
/// requests: its settings, and what its requests share (the body budget, the counters of
/// `/metrics`).
#[derive(Debug)]
pub struct Server {
    limits: ServerLimits,
    credentials: Option<auth::Credentials>,
    cors: cors::Origins,
    audit: Option<audit::Audit>,
    /// The memory budget of request bodies in flight, in KiB (`REQUEST_BODIES_BYTES_MAX`).
    body_budget: Semaphore,
    connections: obs::Connections,
    requests: opmetrics::Table,
}

impl Server {
    pub fn new(options: ServerOptions) -> Server {
        let cors = cors::allowed(options.cors_origins, options.credentials.is_some());
        Server {
            limits: options.limits,
            credentials: options.credentials,
            cors,
            audit: options.audit,
            body_budget: Semaphore::new(REQUEST_BODIES_BYTES_MAX / 1024),
            connections: obs::Connections::default(),
            requests: opmetrics::Table::default(),
        }
    }

    pub fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Whether requests must be signed by one of the configured principals.
    pub fn verifies_signatures(&self) -> bool {
        self.credentials.is_some()
    }
}

impl Default for Server {
    fn default() -> Server {
        Server::new(ServerOptions::default())
    }
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains connections.
pub async fn serve(listener: TcpListener, service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    serve_all(listener, None, service, shutdown).await
}

/// The connection builder: HTTP/1.1 or HTTP/2, told apart by the HTTP/2 connection preface
/// (so cleartext prior knowledge works, and TLS clients that skip ALPN too).
fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(HTTP1_HEADERS_MAX)
        .max_buf_size(HTTP1_BUFFER_BYTES_MAX);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT)
        .max_concurrent_streams(H2_STREAMS_PER_CONNECTION_MAX)
        .initial_stream_window_size(H2_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(H2_CONNECTION_WINDOW_BYTES)
        .max_frame_size(H2_FRAME_BYTES_MAX)
        .max_header_list_size(H2_HEADER_LIST_BYTES_MAX);
    builder
}

/// Serves `service` on the cleartext `listener` and, if given, the `tls` one (both HTTP/1.1 and
/// HTTP/2, the same handler) until `shutdown` resolves, then drains connections.
pub async fn serve_all(
    listener: TcpListener,
    tls: Option<TlsListener>,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, tls, service, ServerLimits::default(), shutdown).await
}

/// [`serve_all`] with the given limits.
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<TlsListener>,
    service: Arc<Service>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    serve_slot(listener, tls, obs::ServiceSlot::filled(service), limits, shutdown).await
}

/// As [`serve_with`] with all of a server's `options` (or just its limits), for a service that
/// may still be recovering: health checks answer at once, API requests wait until `slot` is
/// filled (see [`obs`]).
pub async fn serve_slot(
    listener: TcpListener,
    tls: Option<TlsListener>,
    slot: Arc<obs::ServiceSlot>,
    options: impl Into<ServerOptions>,
    shutdown: impl Future<Output = ()>,
) {
    let server = Arc::new(Server::new(options.into()));
    let limits = &server.limits;
    let builder = Arc::new(builder(limits));
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    let per_client = conn::PerClient::new(limits.connections_per_ip());
    let lingering = Arc::new(Semaphore::new(REFUSED_LINGERING_MAX));
    let idle_timeout = limits.idle_timeout;
    let (tls_listener, acceptor) = match tls {
        Some(t) => (Some(t.listener), Some(tokio_rustls::TlsAcceptor::from(t.config))),
        None => (None, None),
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (accepted, secure) = tokio::select! {
            r = listener.accept() => (r, false),
            r = accept_optional(tls_listener.as_ref()) => (r, true),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(client_slot) = per_client.try_acquire(peer.ip()) else {
            // The global permit goes back at once: one address cannot hold every slot.
            refuse(stream, peer, secure, per_client.max(), &lingering, &server.connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = conn::Activity::new();
        let stream = conn::Tracked::new(stream, activity.clone());
        let counted = obs::ConnectionGuard::new(&server);
        let slot = slot.clone();
        let handler_server = server.clone();
        let handler_activity = activity.clone();
        let handler = hyper::service::service_fn(move |req| {
            let slot = slot.clone();
            let server = handler_server.clone();
            // Counts the request as in flight until its response body is finished or dropped.
            let guard = handler_activity.begin();
            async move {
                if let Some(resp) =
                    obs::route(&server, &slot, &req).or_else(|| console::route(&server, &slot, &req))
                {
                    return Ok::<_, Infallible>(resp);
                }
                let svc = match slot.get() {
                    Some(s) => s.clone(),
                    None => slot.wait().await,
                };
                let resp = handle(&server, &svc, req, peer).await;
                Ok::<_, Infallible>(resp.map(|b| BodyExt::boxed(conn::HeldBody::new(b, guard))))
            }
        });
        match (&acceptor, secure) {
            (Some(acceptor), true) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
                    tokio::select! {
                        r = watcher.watch(conn) => if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        },
                        _ = activity.idle(idle_timeout) => tracing::debug!(%peer, "idle connection closed"),
                    }
                    drop(counted);
                    drop(client_slot);
                    drop(permit);
                });
            }
            _ => {
                let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        r = conn => if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        },
                        _ = activity.idle(idle_timeout) => tracing::debug!(%peer, "idle connection closed"),
                    }
                    drop(counted);
                    drop(client_slot);
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    drop(tls_listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("connections still open after the shutdown grace period"),
    }
}

/// Turns away a connection over `--max-connections-per-ip`. On the cleartext listener it gets a
/// 503 `ServiceUnavailableException` saying why (SDKs retry 503 with backoff) before it is
/// closed; a TLS connection is closed at once (answering would need a handshake first).
fn refuse(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    secure: bool,
    per_ip_max: usize,
    lingering: &Arc<Semaphore>,
    connections: &obs::Connections,
) {
    connections.refused(peer, per_ip_max);
    if secure {
        return;
    }
    let message = format!(
        "Too many connections from {}: kinesin serves at most {per_ip_max} at once from one client \
         address (--max-connections-per-ip). Reuse connections or close idle ones, then retry.",
        peer.ip()
    );
    let body = ApiError::new(ErrorKind::ServiceUnavailable, message).to_json();
    let mut answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {JSON_1_1}\r\n\
         x-amzn-ErrorType: ServiceUnavailableException\r\nx-amzn-RequestId: {}\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        uuid::Uuid::new_v4(),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    // A new connection's send buffer is empty: the answer goes out without waiting.
    if !matches!(stream.try_write(&answer), Ok(n) if n == answer.len()) {
        return;
    }
    // Closing with unread bytes would reset the connection, and the client could lose the 503:
    // read what the client sent (its request), and what it sends meanwhile for a short while
    // when few refused connections linger already.
    drain_ready(&stream);
    let Ok(linger) = lingering.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        let _ = tokio::time::timeout(REFUSED_LINGER, async {
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        })
        .await;
        drop(linger);
    });
}

/// Reads and drops what has arrived on `stream` already (up to 64 KiB), without waiting.
fn drain_ready(stream: &tokio::net::TcpStream) {
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match stream.try_read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => return,
        }
    }
}

/// Accepts on `listener`, or never resolves when there is none.
async fn accept_optional(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The answer of `server` to one request.
pub async fn handle(
    server: &Server,
    service: &Arc<Service>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Some(mut resp) = cors::preflight(&req, &server.cors) {
        // AWS sends a request id with a preflight answer, but no x-amz-id-2.
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert("x-amzn-RequestId", v);
        }
        return resp;
    }
    let cors_origin = cors::answer_origin(&req, &server.cors);
    tracing::debug!(
        version = ?req.version(),
        target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or(""),
        content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or(""),
        "request"
    );
    let timer = opmetrics::RequestTimer::start(req.headers());
    let mut resp = answer(server, service, req, peer, &request_id).await;
    if let Some(timer) = timer {
        timer.finish(&server.requests, &resp);
    }
    let h = resp.headers_mut();
    if let Some(origin) = cors_origin {
        cors::decorate(h, origin);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    let id2: ([u8; 32], [u8; 16]) = rand::random();
    let id2: Vec<u8> = id2.0.iter().chain(id2.1.iter()).copied().collect();
    if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(id2)) {
        h.insert("x-amz-id-2", v);
    }
    resp
}

/// The encoding of one exchange, decided by the request's content type: the response (and any
/// error) uses the same one (reference §2.1, §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `application/x-amz-json-1.1` or `application/json`; the content type is echoed.
    Json(&'static str),
    /// `application/x-amz-cbor-1.1`.
    Cbor,
}

impl Protocol {
    fn content_type(self) -> &'static str {
        match self {
            Protocol::Json(t) => t,
            Protocol::Cbor => CBOR_1_1,
        }
    }

    /// The body as the JSON value tree the validator takes; `None` if it is not an object.
    fn parse(self, op: &str, body: &[u8]) -> Option<serde_json::Value> {
        let mut value = match self {
            Protocol::Json(_) => serde_json::from_slice(body).ok()?,
            Protocol::Cbor => match kinesin_wire::cbor::decode(body) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "undecodable CBOR body");
                    return None;
                }
            },
        };
        if !value.is_object() {
            return None;
        }
        if self == Protocol::Cbor {
            model().for_each_timestamp(op, &mut value, &mut kinesin_wire::cbor::millis_to_seconds);
        }
        Some(value)
    }

    fn error(self, e: &ApiError) -> Response<Body> {
        let body = match self {
            Protocol::Json(_) => e.to_json(),
            Protocol::Cbor => kinesin_wire::cbor::error_body(e),
        };
        let mut r = plain(
            StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Bytes::from(body),
        );
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        r.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(e.kind.as_str()));
        r
    }

    fn output(self, out: &Output) -> Response<Body> {
        let body = match self {
            Protocol::Json(_) => out.to_json().map_err(|e| e.to_string()),
            Protocol::Cbor => out.to_cbor().map_err(|e| e.to_string()),
        };
        self.body_or_internal(body)
    }

    /// A success response with `body`, or, when the response could not be encoded, an
    /// InternalFailure (the detail goes to the log), never an empty success.
    fn body_or_internal(self, body: Result<Vec<u8>, String>) -> Response<Body> {
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a response");
                return self.error(&ApiError::internal("the response could not be encoded"));
            }
        };
        let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        r
    }

    /// A body in this encoding, for event-stream payloads.
    fn encode<T: serde::Serialize>(self, value: &T) -> Vec<u8> {
        match self {
            Protocol::Json(_) => serde_json::to_vec(value).unwrap_or_default(),
            Protocol::Cbor => kinesin_wire::cbor::to_vec(value).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot encode an event");
                Vec::new()
            }),
        }
    }

    /// One event-stream message of a SubscribeToShard response.
    fn event_message(self, ev: &SubscribeEvent) -> Bytes {
        use kinesin_wire::eventstream;
        let ct = self.content_type();
        Bytes::from(match ev {
            SubscribeEvent::Event(e) => eventstream::event("SubscribeToShardEvent", ct, &self.encode(e)),
            SubscribeEvent::Exception(e) => {
                let e = wire_error(e.clone());
                let body = serde_json::json!({ "message": e.message.clone().unwrap_or_default() });
                eventstream::exception(e.kind.as_str(), ct, &self.encode(&body))
            }
        })
    }

    /// The 200 response of SubscribeToShard: `initial-response`, then the subscription's events.
    fn event_stream(self, events: tokio::sync::mpsc::Receiver<SubscribeEvent>) -> Response<Body> {
        let initial: &[u8] = match self {
            Protocol::Json(_) => b"{}",
            Protocol::Cbor => &[0xa0],
        };
        let first =
            Bytes::from(kinesin_wire::eventstream::event("initial-response", self.content_type(), initial));
        let rest = futures::stream::unfold(events, move |mut rx| async move {
            let ev = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(self.event_message(&ev))), rx))
        });
        let frames =
            futures::StreamExt::chain(futures::stream::iter([Ok::<_, Infallible>(Frame::data(first))]), rest);
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(frames)));
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
        r
    }
}

async fn answer(
    server: &Server,
    service: &Arc<Service>,
    req: Request<Incoming>,
    peer: SocketAddr,
    request_id: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let declared_bytes = header("content-length").and_then(|v| v.parse::<u64>().ok());
    if declared_bytes.is_some_and(|n| n > REQUEST_BODY_BYTES_MAX as u64) {
        return too_large();
    }
    let reserved_kib = declared_bytes.unwrap_or(REQUEST_BODY_BYTES_MAX as u64).div_ceil(1024).max(1) as u32;
    let Ok(_body_budget) = server.body_budget.acquire_many(reserved_kib).await else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, Bytes::new());
    };
    let body_read_timeout = server.limits.body_read_timeout;
    let collected =
        tokio::time::timeout(body_read_timeout, Limited::new(body, REQUEST_BODY_BYTES_MAX).collect());
    let Ok(collected) = collected.await else {
        return request_timeout(body_read_timeout);
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                return too_large();
            }
            return plain(StatusCode::BAD_REQUEST, Bytes::new());
        }
    };
    let target = header("x-amz-target").unwrap_or_default();
    let (service_name, op_name) = target.split_once('.').unwrap_or((target.as_str(), ""));
    let known = if service_name == TARGET_PREFIX { Op::from_name(op_name) } else { None };
    let op_known = known.is_some();
    if parts.method != Method::POST {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("Unable to determine service/operation name to be authorized"),
        );
    }
    let content_type = header("content-type").unwrap_or_default();
    let content_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let protocol = match content_type.as_str() {
        JSON_1_1 => Protocol::Json(JSON_1_1),
        JSON_PLAIN => Protocol::Json(JSON_PLAIN),
        CBOR_1_1 => Protocol::Cbor,
        // A POST kinesin cannot decode: 400 in the JSON protocol, as AWS answers an empty POST
        // (SerializationException when the target names a real operation), rather than the XML
        // 403/404 AWS's older front end gave. The message says what a request needs.
        other => {
            let what = if other.is_empty() { "no Content-Type" } else { "an unsupported Content-Type" };
            let (kind, detail) = if body.is_empty() && op_known {
                (ErrorKind::Serialization, "and no body")
            } else {
                (ErrorKind::UnknownOperation, "")
            };
            let sep = if detail.is_empty() { "" } else { " " };
            let message = format!(
                "The request has {what}{sep}{detail}: send Content-Type: {JSON_1_1} (or {CBOR_1_1}) with \
                 X-Amz-Target: {TARGET_PREFIX}.<Operation> and the operation's input as the body."
            );
            return Protocol::Json(JSON_1_1).error(&ApiError::new(kind, message));
        }
    };
    if body.is_empty() {
        let kind = if op_known { ErrorKind::Serialization } else { ErrorKind::UnknownOperation };
        return protocol.error(&ApiError::bare(kind));
    }
    // PutRecords in JSON, the hot path, is decoded in one pass when the body is plainly valid;
    // anything else (including every error) takes the general path.
    let fast = match protocol {
        Protocol::Json(_) if known == Some(Op::PutRecords) => WireRequest::put_records_fast(&body),
        _ => None,
    };
    let parsed = if fast.is_some() { Some(serde_json::Value::Null) } else { protocol.parse(op_name, &body) };
    let Some(value) = parsed else {
        return protocol.error(&ApiError::bare(ErrorKind::Serialization));
    };
    let Some(op) = known else {
        return protocol.error(&ApiError::bare(ErrorKind::UnknownOperation));
    };
    let audit = server.audit.as_ref();
    let mut note = Note {
        caller: audit::Caller {
            arn: None,
            access_key_id: auth::presented_access_key(header("authorization").as_deref(), parts.uri.query()),
            source_ip: peer.ip().to_string(),
            user_agent: header("user-agent"),
        },
        params: None,
        response: None,
        denied: false,
        audited: audit.is_some(),
    };
    let result = authorized_call(server, service, &parts, body, value, fast, op, protocol, &mut note).await;
    if let Err(e) = &result {
        if e.kind == ErrorKind::InternalFailure {
            tracing::error!(op = op.name(), error = %e, "internal failure");
        }
    }
    if let Some(audit) = audit {
        if audit.wants(op.is_data_plane(), note.denied) {
            let cfg = service.config();
            audit.record(&audit::Event {
                op,
                region: &cfg.region,
                account_id: &cfg.account_id,
                caller: &note.caller,
                request: note.params.as_ref(),
                response: note.response.take(),
                error: result.as_ref().err().map(|e| (e.kind.as_str(), e.message.as_deref().unwrap_or(""))),
                request_id,
            });
        }
    }
    result.unwrap_or_else(|e| protocol.error(&e))
}

/// What the audit trail needs to know of a request, gathered as it is answered.
struct Note {
    caller: audit::Caller,
    /// The validated request without record data (only when a trail is installed).
    params: Option<serde_json::Value>,
    response: Option<serde_json::Value>,
    /// Authentication or authorization refused the request.
    denied: bool,
    audited: bool,
}

/// Authentication, validation of the members naming the resource, authorization, the rest of
/// validation, then the operation (see `authz` for why authorization comes first).
#[allow(clippy::too_many_arguments)] // the request's parts, each used once; a struct would only rename them
async fn authorized_call(
    server: &Server,
    service: &Arc<Service>,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    mut value: serde_json::Value,
    fast: Option<WireRequest>,
    op: Op,
    protocol: Protocol,
    note: &mut Note,
) -> Result<Response<Body>, ApiError> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let refused = |note: &mut Note, e: ApiError| {
        note.denied = true;
        e
    };
    check_auth(
        &header("authorization"),
        parts.uri.query(),
        header("x-amz-date").is_some() || header("date").is_some(),
    )
    .map_err(|e| refused(note, e))?;
    // With credentials configured, the signature must verify over the exact bytes received.
    let mut principal = None;
    if let Some(credentials) = &server.credentials {
        let p = credentials
            .verify(parts, &body, &service.config().region, auth::unix_now())
            .map_err(|e| refused(note, e))?;
        note.caller.arn = Some(p.arn.clone());
        principal = Some(p);
    }
    drop(body);
    match &fast {
        // Decoded and checked on the one-pass path; authorization and the audit trail read only
        // the stream and the record count, so they get just those.
        Some(WireRequest::PutRecords(input)) if note.audited || principal.is_some() => {
            value = serde_json::json!({
                "StreamName": input.stream_name,
                "Records": vec![serde_json::Value::Null; input.records.len()],
            });
        }
        Some(_) => {}
        None if principal.is_none() => model().check_input(op.name(), &mut value)?,
        // Authorization comes before the rest of validation (see `authz`): a malformed name is
        // answered with the whole validation error, as AWS words it.
        None if !model().members_valid(op.name(), &value, authz::NAMING_MEMBERS) => {
            model().check_input(op.name(), &mut value)?
        }
        None => {}
    }
    if note.audited {
        note.params = Some(audit::request_parameters(&value));
    }
    if let Some(p) = principal {
        let resource = authz::resource(op, &value, service).await;
        let resource_policy = authz::resource_policy(&resource, service).await;
        p.authorize(&format!("kinesis:{op}"), &resource, resource_policy.as_ref())
            .map_err(|e| refused(note, e))?;
        if fast.is_none() {
            model().check_input(op.name(), &mut value)?;
            if note.audited {
                note.params = Some(audit::request_parameters(&value));
            }
        }
    }
    // The typed request: decoded once here, the service never sees the JSON.
    let request = match fast {
        Some(request) => request,
        None => {
            if op == Op::PutResourcePolicy {
                authz::check_put_policy(&value).map_err(ApiError::invalid_argument)?;
            }
            WireRequest::from_value(op, value)?
        }
    };
    // Control-plane calls commit metadata synchronously (an fsync); keep them off the reactor.
    let response = if op.is_data_plane() {
        service.handle(request).await?
    } else {
        control_call(service, request).await?
    };
    match response {
        ServiceResponse::Events(events) => Ok(protocol.event_stream(events)),
        ServiceResponse::Output(out) => {
            if note.audited && !op.is_data_plane() {
                note.response = out.to_json().ok().and_then(|body| audit::response_elements(&body));
            }
            Ok(protocol.output(&out))
        }
    }
}

/// The wire's wording of the service's error (the exception name, status and message AWS uses).
fn wire_error<E: Into<ApiError>>(e: E) -> ApiError {
    e.into()
}

/// Runs a control-plane call on the blocking pool: it commits metadata synchronously (an fsync)
/// and a reshard waits for the parents' appends in flight, which must not hold a runtime worker.
/// Works on any runtime (`block_in_place` panics on a current-thread one). A client that goes
/// away does not cancel the call half-way: it finishes and its answer is dropped.
async fn control_call(service: &Arc<Service>, request: WireRequest) -> Result<ServiceResponse, ApiError> {
    let op = request.op();
    let service = service.clone();
    let runtime = tokio::runtime::Handle::current();
    // The call's future does not wait on I/O or timers of the runtime (it is synchronous inside),
    // so driving it from a blocking-pool thread works on a current-thread runtime too.
    match tokio::task::spawn_blocking(move || runtime.block_on(service.handle(request))).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(op = op.name(), error = %e, "a control-plane call panicked");
            Err(ApiError::internal("The server failed while running the request; retry it."))
        }
    }
}

/// 408 for a body not received within the body read `timeout`; the connection is closed.
fn request_timeout(timeout: Duration) -> Response<Body> {
    let body = serde_json::json!({
        "__type": "RequestTimeoutException",
        "message": format!(
            "The request body did not arrive within {} s of its headers; send it faster or split the request.",
            timeout.as_secs()
        ),
    });
    let mut r = plain(StatusCode::REQUEST_TIMEOUT, Bytes::from(body.to_string()));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    r.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static("RequestTimeoutException"));
    r.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// 413 for a body over `REQUEST_BODY_BYTES_MAX`, with a message that says the limit.
fn too_large() -> Response<Body> {
    let body = serde_json::json!({
        "__type": "RequestEntityTooLargeException",
        "message": format!(
            "The request body exceeds {REQUEST_BODY_BYTES_MAX} bytes; PutRecords takes at most 10 MiB of records per call."
        ),
    });
    let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, Bytes::from(body.to_string()));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    r.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static("RequestEntityTooLargeException"));
    r
}

/// Presence and shape of SigV4 credentials; `auth` verifies the signature when credentials are
/// configured.
fn check_auth(authorization: &Option<String>, query: Option<&str>, has_date: bool) -> Result<(), ApiError> {
    let query_params: Vec<(&str, &str)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let has_query_auth = query_params.iter().any(|(k, _)| *k == "X-Amz-Algorithm");
    match (authorization, has_query_auth) {
        (Some(_), true) => Err(ApiError::new(
            ErrorKind::InvalidSignature,
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        )),
        (None, false) => {
            Err(ApiError::new(ErrorKind::MissingAuthenticationToken, "Missing Authentication Token"))
        }
        (Some(auth), false) => {
            let params: Vec<&str> = auth.split([',', ' ']).skip(1).filter(|s| !s.is_empty()).collect();
            let has = |name: &str| {
                params
                    .iter()
                    .any(|p| p.trim().split_once('=').is_some_and(|(k, v)| k == name && !v.is_empty()))
            };
            let mut msg = String::new();
            for p in ["Credential", "Signature", "SignedHeaders"] {
                if !has(p) {
                    msg.push_str(&format!("Authorization header requires '{p}' parameter. "));
                }
            }
            if !has_date {
                msg.push_str(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
                );
            }
            if msg.is_empty() {
                Ok(())
            } else {
                msg.push_str(&format!("Authorization={}", kinesin_wire::error::echo(auth)));
                Err(ApiError::new(ErrorKind::IncompleteSignature, msg))
            }
        }
        (None, true) => {
            let mut msg = String::new();
            for p in [
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Signature",
                "X-Amz-SignedHeaders",
                "X-Amz-Date",
            ] {
                if !query_params.iter().any(|(k, v)| *k == p && !v.is_empty()) {
                    msg.push_str(&format!("AWS query-string parameters must include '{p}'. "));
                }
            }
            if msg.is_empty() {
                Ok(())
            } else {
                msg.push_str("Re-examine the query-string parameters.");
                Err(ApiError::new(ErrorKind::IncompleteSignature, msg))
            }
        }
    }
}

fn plain(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r
}

fn xml_error(status: StatusCode, kind: &str, message: Option<&str>) -> Response<Body> {
    let body = match message {
        Some(m) => format!("<{kind}>\n  <Message>{m}</Message>\n</{kind}>\n"),
        None => format!("<{kind}/>\n"),
    };
    plain(status, Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_checks() {
        assert_eq!(check_auth(&None, None, true).unwrap_err().kind, ErrorKind::MissingAuthenticationToken);
        let good = Some("AWS4-HMAC-SHA256 Credential=a/20150101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=abc".to_string());
        assert!(check_auth(&good, None, true).is_ok());
        let e = check_auth(&good, None, false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IncompleteSignature);
        let e = check_auth(&Some("AWS4-HMAC-SHA256 Signature=abc".into()), None, true).unwrap_err();
        assert!(e.message.unwrap().starts_with("Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter."));
        assert_eq!(
            check_auth(&good, Some("X-Amz-Algorithm=x"), true).unwrap_err().kind,
            ErrorKind::InvalidSignature
        );
        let e = check_auth(&None, Some("X-Amz-Algorithm=AWS4-HMAC-SHA256"), false).unwrap_err();
        assert!(e.message.unwrap().contains("must include 'X-Amz-Credential'"));
    }

    #[test]
    fn a_response_that_cannot_be_encoded_is_an_internal_failure_not_an_empty_success() {
        for protocol in [Protocol::Json("application/x-amz-json-1.1"), Protocol::Cbor] {
            let r = protocol.body_or_internal(Err("no".into()));
            assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(r.headers()["x-amzn-ErrorType"], ErrorKind::InternalFailure.as_str());
            let r = protocol.body_or_internal(Ok(b"{}".to_vec()));
            assert_eq!(r.status(), StatusCode::OK);
        }
    }
}
