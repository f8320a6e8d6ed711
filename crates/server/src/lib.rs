//! The HTTP front end: awsJson1_1 over HTTP/1.1 and cleartext HTTP/2 on one port.
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
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use kinesin_service::Service;
use kinesin_wire::error::{ApiError, ErrorKind};
use kinesin_wire::model::model;

/// Largest request body: 10 MiB of PutRecords data is ~13.4 MiB as base64 JSON.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Connections served at once; more wait in the kernel's accept queue.
pub const CONNECTIONS_MAX: usize = 4096;
/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

const TARGET_PREFIX: &str = "Kinesis_20131202";
const JSON_1_1: &str = "application/x-amz-json-1.1";
const JSON_PLAIN: &str = "application/json";
const CBOR_1_1: &str = "application/x-amz-cbor-1.1";

/// Serves `service` on `listener` until `shutdown` resolves, then drains connections.
pub async fn serve(listener: TcpListener, service: Arc<Service>, shutdown: impl Future<Output = ()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = service.clone();
        let handler = hyper::service::service_fn(move |req| {
            let svc = svc.clone();
            async move { Ok::<_, Infallible>(handle(&svc, req, peer).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("connections still open after the shutdown grace period"),
    }
}

/// The answer to one request.
pub async fn handle(service: &Service, req: Request<Incoming>, _peer: SocketAddr) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = answer(service, req).await;
    let h = resp.headers_mut();
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

async fn answer(service: &Service, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match Limited::new(body, REQUEST_BODY_BYTES_MAX).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, Bytes::new());
            }
            return plain(StatusCode::BAD_REQUEST, Bytes::new());
        }
    };
    let target = header("x-amz-target").unwrap_or_default();
    let (service_name, op) = target.split_once('.').unwrap_or((target.as_str(), ""));
    let op_known = service_name == TARGET_PREFIX && model().has_operation(op);
    if parts.method != Method::POST {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("Unable to determine service/operation name to be authorized"),
        );
    }
    let content_type = header("content-type").unwrap_or_default();
    let content_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let json_type = match content_type.as_str() {
        JSON_1_1 => JSON_1_1,
        JSON_PLAIN => JSON_PLAIN,
        CBOR_1_1 => {
            return json_error(
                JSON_1_1,
                &ApiError::new(
                    ErrorKind::Serialization,
                    "kinesin does not accept CBOR yet. Disable CBOR in the client: AWS_CBOR_DISABLE=true or -Daws.cborEnabled=false (Java SDK).",
                ),
            )
        }
        _ => {
            if target.is_empty() || op.is_empty() {
                return xml_error(StatusCode::FORBIDDEN, "AccessDeniedException", Some("Unable to determine service/operation name to be authorized"));
            }
            return xml_error(StatusCode::NOT_FOUND, "UnknownOperationException", None);
        }
    };
    if body.is_empty() {
        let kind = if op_known { ErrorKind::Serialization } else { ErrorKind::UnknownOperation };
        return json_error(json_type, &ApiError::bare(kind));
    }
    let mut value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => return json_error(json_type, &ApiError::bare(ErrorKind::Serialization)),
    };
    if !op_known {
        return json_error(json_type, &ApiError::bare(ErrorKind::UnknownOperation));
    }
    if let Err(e) = check_auth(
        &header("authorization"),
        parts.uri.query(),
        header("x-amz-date").is_some() || header("date").is_some(),
    ) {
        return json_error(json_type, &e);
    }
    if let Err(e) = model().check_input(op, &mut value) {
        return json_error(json_type, &e);
    }
    // Control-plane calls commit metadata synchronously (an fsync); keep them off the reactor.
    let result = if is_data_plane(op) {
        service.call(op, value).await
    } else {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(service.call(op, value)))
    };
    match result {
        Ok(out) => {
            let mut r = Response::new(Full::new(Bytes::from(out.to_json())));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(json_type));
            r
        }
        Err(e) => {
            if e.kind == ErrorKind::InternalFailure {
                tracing::error!(op, error = %e, "internal failure");
            }
            json_error(json_type, &e)
        }
    }
}

fn is_data_plane(op: &str) -> bool {
    matches!(op, "PutRecord" | "PutRecords" | "GetRecords" | "GetShardIterator" | "SubscribeToShard")
}

/// Presence and shape of SigV4 credentials; signatures are verified in a later issue.
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
                msg.push_str(&format!("Authorization={auth}"));
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

fn plain(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

fn json_error(content_type: &'static str, e: &ApiError) -> Response<Full<Bytes>> {
    let mut r = plain(
        StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
        Bytes::from(e.to_json()),
    );
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert("x-amzn-ErrorType", HeaderValue::from_static(e.kind.as_str()));
    r
}

fn xml_error(status: StatusCode, kind: &str, message: Option<&str>) -> Response<Full<Bytes>> {
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
}
