//! Operational endpoints beside the API, on the same port: `GET /metrics` (Prometheus text
//! format 0.0.4), `GET /health/live` and `GET /health/ready`. They answer only GET (and HEAD)
//! on exactly these paths; everything else goes to the API, which answers AWS-style errors as
//! before (a GET elsewhere is `AccessDeniedException`).
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
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// HTTP connections open now and accepted since start (both listeners).
static CONNECTIONS_OPEN: AtomicI64 = AtomicI64::new(0);
static CONNECTIONS_ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// Counts one connection while it lives.
pub(crate) struct ConnectionGuard(());

impl ConnectionGuard {
    pub(crate) fn new() -> ConnectionGuard {
        CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
        CONNECTIONS_ACCEPTED.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        CONNECTIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
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

/// The answer for an operational endpoint, or `None` when the request is for the API.
pub(crate) fn route<B>(slot: &ServiceSlot, req: &Request<B>) -> Option<Response<Body>> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return None;
    }
    let plain = "text/plain; charset=utf-8";
    match req.uri().path() {
        PATH_LIVE => Some(text(StatusCode::OK, plain, "live\n".into(), head)),
        PATH_READY => Some(match slot.get() {
            Some(_) => text(StatusCode::OK, plain, "ready\n".into(), head),
            None => text(StatusCode::SERVICE_UNAVAILABLE, plain, "recovering\n".into(), head),
        }),
        PATH_METRICS => Some(match slot.get() {
            Some(service) => {
                let body = tokio::task::block_in_place(|| render(service));
                text(StatusCode::OK, PROMETHEUS_TEXT, body, head)
            }
            None => text(StatusCode::SERVICE_UNAVAILABLE, plain, "recovering\n".into(), head),
        }),
        _ => None,
    }
}

/// The whole `/metrics` page: the service's metrics, then the front end's.
pub fn render(service: &Service) -> String {
    let mut out = String::with_capacity(64 * 1024);
    service.render_metrics(&mut out);
    let _ =
        writeln!(out, "# HELP kinesin_http_connections HTTP connections open now (plain and TLS listeners).");
    let _ = writeln!(out, "# TYPE kinesin_http_connections gauge");
    let _ = writeln!(out, "kinesin_http_connections {}", CONNECTIONS_OPEN.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP kinesin_http_connections_accepted_total HTTP connections accepted since start."
    );
    let _ = writeln!(out, "# TYPE kinesin_http_connections_accepted_total counter");
    let _ = writeln!(
        out,
        "kinesin_http_connections_accepted_total {}",
        CONNECTIONS_ACCEPTED.load(Ordering::Relaxed)
    );
    crate::opmetrics::render(&mut out);
    crate::process::render(&mut out);
    out
}
