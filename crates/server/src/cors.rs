//! CORS, as AWS's Kinesis front end answers it, so the AWS SDK for JavaScript in a browser page
//! (another origin than kinesin's) can call the API.
//!
//! What AWS does (kinesalite's connection tests, re-captured against production Kinesis in
//! 2019; DynamoDB's front end answers the same): a request that carries `Origin` gets
//! `Access-Control-Allow-Origin: *` on every answer, errors included, and
//! `Access-Control-Expose-Headers` naming the response headers an SDK reads (request id, error
//! type). An `OPTIONS` request with `Origin` is a preflight: 200 with an empty body, the requested
//! method and headers echoed in `Access-Control-Allow-Methods` / `-Headers`, and
//! `Access-Control-Max-Age: 172800` (two days), before any authentication. Without `Origin`,
//! `OPTIONS` is an ordinary non-POST request (403 `AccessDeniedException`).
//!
//! `*` never lets a page send the browser's cookies or HTTP credentials, and kinesin uses none:
//! every request is signed with SigV4 by the caller, so `--credentials` protects the API from
//! browser pages exactly as from any other client.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use hyper::{Method, Request, Response, StatusCode};

use crate::Body;

/// How long a browser may cache a preflight answer, as AWS sends it.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 172_800;
/// The longest `Access-Control-Request-Headers` echoed back. The SDK asks for about ten headers
/// (~150 bytes); a longer list is cut at a name boundary, so a browser that asked for more than
/// this refuses the call instead of kinesin reflecting an unbounded header.
pub const REQUEST_HEADERS_ECHO_BYTES_MAX: usize = 2048;
/// The longest `Access-Control-Request-Method` echoed back (methods are short tokens).
pub const REQUEST_METHOD_ECHO_BYTES_MAX: usize = 32;
/// Response headers a page may read: the ones AWS exposes.
pub const EXPOSED_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";

/// Whether the request comes from a browser page of some origin.
pub(crate) fn has_origin<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(ORIGIN)
}

/// The answer to a preflight (`OPTIONS` with `Origin`), or `None` for any other request.
pub(crate) fn preflight<B>(req: &Request<B>) -> Option<Response<Body>> {
    if req.method() != Method::OPTIONS || !has_origin(req) {
        return None;
    }
    let mut r = crate::plain(StatusCode::OK, bytes::Bytes::new());
    let h = r.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if let Some(v) = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).and_then(bounded_header_list) {
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(v) = req.headers().get(ACCESS_CONTROL_REQUEST_METHOD) {
        if v.len() <= REQUEST_METHOD_ECHO_BYTES_MAX {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
    }
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(PREFLIGHT_MAX_AGE_SECS));
    Some(r)
}

/// The headers every answer to a request with `Origin` carries.
pub(crate) fn decorate(h: &mut HeaderMap) {
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
}

/// The requested header list, cut after the last whole name that fits the echo bound.
fn bounded_header_list(v: &HeaderValue) -> Option<HeaderValue> {
    if v.len() <= REQUEST_HEADERS_ECHO_BYTES_MAX {
        return Some(v.clone());
    }
    let bytes = &v.as_bytes()[..=REQUEST_HEADERS_ECHO_BYTES_MAX];
    let cut = bytes.iter().rposition(|&b| b == b',')?;
    HeaderValue::from_bytes(bytes[..cut].trim_ascii_end()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(Method::OPTIONS).uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn preflight_echoes_method_and_headers() {
        let r = preflight(&options(&[
            ("origin", "http://localhost:8080"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization,content-type,x-amz-date,x-amz-target"),
        ]))
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(h["access-control-allow-headers"], "authorization,content-type,x-amz-date,x-amz-target");
        assert_eq!(h["access-control-max-age"], "172800");
    }

    #[test]
    fn only_options_with_origin_is_a_preflight() {
        assert!(preflight(&options(&[])).is_none());
        let post = Request::builder().method(Method::POST).header("origin", "x").body(()).unwrap();
        assert!(preflight(&post).is_none());
    }

    #[test]
    fn long_header_lists_are_cut_at_a_name() {
        let names: Vec<String> = (0..1000).map(|i| format!("x-h{i}")).collect();
        let asked = names.join(", ");
        let r = preflight(&options(&[("origin", "o"), ("access-control-request-headers", &asked)])).unwrap();
        let echoed = r.headers()["access-control-allow-headers"].to_str().unwrap();
        assert!(echoed.len() <= REQUEST_HEADERS_ECHO_BYTES_MAX, "{}", echoed.len());
        assert!(asked.starts_with(echoed));
        // Whole names only: the asked list goes on with a separator right after the echo.
        assert_eq!(asked.as_bytes()[echoed.len()], b',');
        // One absurd name that does not fit: nothing is echoed, the browser refuses the call.
        let one = "x".repeat(REQUEST_HEADERS_ECHO_BYTES_MAX + 10);
        let r = preflight(&options(&[("origin", "o"), ("access-control-request-headers", &one)])).unwrap();
        assert!(!r.headers().contains_key("access-control-allow-headers"));
    }
}
