//! Operational endpoints beside the API, on the same port: `GET /metrics` (Prometheus text
//! format 0.0.4), `GET /health/live`, `GET /health/ready` and `GET /health` (both in one JSON
//! object); and `GET /` from a browser (`Accept: text/html`) redirects to the console. They
//! answer only GET (and HEAD) on exactly these paths; everything else goes to the API, which
//! answers AWS-style errors as before (a GET elsewhere is `AccessDeniedException`).
//!
//! The listener is bound before the data is recovered: during recovery `/health/live` answers
//! 200, `/health/ready` and `/metrics` 503, and API requests wait until the service is ready
//! (clients see a slow first answer, not an error).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use kinesin_service::Service;

use crate::Body;

pub const PATH_METRICS: &str = "/metrics";
pub const PATH_LIVE: &str = "/health/live";
pub const PATH_READY: &str = "/health/ready";
pub const PATH_HEALTH: &str = "/health";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One server's connection counters (both its listeners).
#[derive(Debug, Default)]
pub(crate) struct Connections {
    /// Open now.
    open: AtomicI64,
    /// Accepted since the server started.
    accepted: AtomicU64,
    /// Turned away for `--max-connections-per-ip`.
    refused: AtomicU64,
    /// For the refusal warning: when it was last written (ms since the epoch), and the
    /// refusals since.
    refusal_logged_ms: AtomicU64,
    refusals_unlogged: AtomicU64,
}

impl Connections {
    /// Counts a connection refused for `--max-connections-per-ip` from `peer`, and warns at most
    /// once per second with the count since the last warning.
    pub(crate) fn refused(&self, peer: std::net::SocketAddr, per_ip_max: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.refused.fetch_add(1, Relaxed);
        let since = self.refusals_unlogged.fetch_add(1, Relaxed) + 1;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let last = self.refusal_logged_ms.load(Relaxed);
        if now_ms.saturating_sub(last) >= 1000
            && self.refusal_logged_ms.compare_exchange(last, now_ms, Relaxed, Relaxed).is_ok()
        {
            self.refusals_unlogged.store(0, Relaxed);
            tracing::warn!(
                client = %peer.ip(),
                refused = since,
                "refused {since} connection(s) over --max-connections-per-ip {per_ip_max} (latest from {})",
                peer.ip()
            );
        }
    }
}

/// Counts one connection of a server while it lives.
pub(crate) struct ConnectionGuard(Arc<crate::Server>);

impl ConnectionGuard {
    pub(crate) fn new(server: &Arc<crate::Server>) -> ConnectionGuard {
        let c = &server.connections;
        c.open.fetch_add(1, Ordering::Relaxed);
        c.accepted.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(server.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The service, once recovery has finished. Reading it is one atomic load.
#[derive(Default)]
pub struct ServiceSlot {
    cell: OnceLock<Arc<Service>>,
    filled: tokio::sync::Notify,
}

impl ServiceSlot {
    /// An empty slot: the server answers health checks and holds API requests until [`fill`].
    ///
    /// [`fill`]: ServiceSlot::fill
    pub fn new() -> Arc<ServiceSlot> {
        Arc::new(ServiceSlot::default())
    }

    pub fn filled(service: Arc<Service>) -> Arc<ServiceSlot> {
        let slot = ServiceSlot::new();
        slot.fill(service);
        slot
    }

    /// Publishes the recovered service and wakes the requests waiting for it. Later calls are
    /// ignored.
    pub fn fill(&self, service: Arc<Service>) {
        let _ = self.cell.set(service);
        self.filled.notify_waiters();
    }

    pub fn get(&self) -> Option<&Arc<Service>> {
        self.cell.get()
    }

    /// Waits until the slot is filled.
    pub async fn wait(&self) -> Arc<Service> {
        loop {
            let notified = self.filled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(s) = self.cell.get() {
                return s.clone();
            }
            notified.await;
        }
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String, head: bool) -> Response<Body> {
    let body = if head { Bytes::new() } else { Bytes::from(body) };
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The answer for an operational endpoint of `server`, or `None` when the request is for the API.
pub(crate) fn route<B>(
    server: &crate::Server,
    slot: &ServiceSlot,
    req: &Request<B>,
) -> Option<Response<Body>> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return None;
    }
    let plain = "text/plain; charset=utf-8";
    match req.uri().path() {
        PATH_LIVE => Some(text(StatusCode::OK, plain, "live\n".into(), head)),
        PATH_HEALTH => {
            let ready = slot.get().is_some();
            let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            let body = serde_json::json!({ "live": true, "ready": ready }).to_string() + "\n";
            Some(text(status, "application/json", body, head))
        }
        // A browser opening the server's address lands on the console; SDKs and scripts that
        // GET / (they do not ask for HTML) still get AWS's answer.
        "/" if wants_html(req) => {
            let mut r = text(StatusCode::FOUND, plain, format!("See {}/\n", crate::console::PATH), head);
            r.headers_mut().insert(hyper::header::LOCATION, HeaderValue::from_static("/console/"));
            Some(r)
        }
        PATH_READY => Some(match slot.get() {
            Some(_) => text(StatusCode::OK, plain, "ready\n".into(), head),
            None => text(StatusCode::SERVICE_UNAVAILABLE, plain, "recovering\n".into(), head),
        }),
        PATH_METRICS => Some(match slot.get() {
            // Rendering reads the stream-table snapshot: it waits for no lock (and
            // `block_in_place` would panic on a current-thread runtime).
            Some(service) => text(StatusCode::OK, PROMETHEUS_TEXT, render(server, service), head),
            None => text(StatusCode::SERVICE_UNAVAILABLE, plain, "recovering\n".into(), head),
        }),
        _ => None,
    }
}

/// Whether the request's `Accept` asks for an HTML page (browsers' navigations do).
fn wants_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html")))
}

/// The whole `/metrics` page of `server`: the service's metrics, then the front end's.
pub fn render(server: &crate::Server, service: &Service) -> String {
    let c = &server.connections;
    let mut out = String::with_capacity(64 * 1024);
    crate::metrics_text::render(&mut out, &service.metrics_snapshot());
    let _ =
        writeln!(out, "# HELP kinesin_http_connections HTTP connections open now (plain and TLS listeners).");
    let _ = writeln!(out, "# TYPE kinesin_http_connections gauge");
    let _ = writeln!(out, "kinesin_http_connections {}", c.open.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP kinesin_http_connections_accepted_total HTTP connections accepted since start."
    );
    let _ = writeln!(out, "# TYPE kinesin_http_connections_accepted_total counter");
    let _ = writeln!(out, "kinesin_http_connections_accepted_total {}", c.accepted.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP kinesin_http_connections_refused_total HTTP connections turned away because their client address held --max-connections-per-ip already."
    );
    let _ = writeln!(out, "# TYPE kinesin_http_connections_refused_total counter");
    let _ = writeln!(out, "kinesin_http_connections_refused_total {}", c.refused.load(Ordering::Relaxed));
    crate::audit::render_metrics(server.audit.as_ref(), &mut out);
    crate::opmetrics::render(&server.requests, &mut out);
    crate::process::render(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, accept: Option<&str>) -> Option<Response<Body>> {
        let mut b = Request::builder().method(Method::GET).uri(path);
        if let Some(a) = accept {
            b = b.header("accept", a);
        }
        route(&crate::Server::default(), &ServiceSlot::new(), &b.body(()).unwrap())
    }

    #[test]
    fn health_is_503_while_recovering() {
        let r = get(PATH_HEALTH, None).unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(get(PATH_LIVE, None).unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn root_redirects_browsers_only() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let r = get("/", Some(browser)).unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[hyper::header::LOCATION], "/console/");
        assert!(get("/", None).is_none());
        assert!(get("/", Some("*/*")).is_none());
        assert!(get("/", Some("application/json")).is_none());
        assert!(get("/other", Some(browser)).is_none());
    }
}
