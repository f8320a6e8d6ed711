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
//!
//! Without `--credentials`, though, kinesin accepts any well-formed signature, and `*` would let
//! every web site the user visits drive a local kinesin from the browser (create and delete
//! streams, read records): the preflight is what stops them. So the default depends on it
//! (`--cors-origins`): `*` when signatures are verified, as AWS; otherwise only pages served
//! from this machine (`http(s)://localhost`, `127.0.0.0/8`, `[::1]`, any port). Other origins
//! get no CORS headers, so their browser refuses the call; kinesin itself refuses nothing.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use hyper::{Method, Request, Response, StatusCode};

use crate::Body;

/// Which page origins may call the API from a browser (`--cors-origins`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    /// Every origin, as AWS (`*`).
    Any,
    /// Pages served from this machine: `http(s)://localhost`, `127.0.0.0/8` or `[::1]`.
    Loopback,
    /// Exactly these origins (`scheme://host[:port]`, compared without case).
    List(Vec<String>),
}

impl Origins {
    /// `*`, `loopback`, or a comma-separated list of origins.
    pub fn parse(s: &str) -> Result<Origins, String> {
        match s.trim() {
            "*" => return Ok(Origins::Any),
            "loopback" => return Ok(Origins::Loopback),
            _ => {}
        }
        let mut list = Vec::new();
        for o in s.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let rest = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains('/')) {
                return Err(format!(
                    "--cors-origins: {o:?} is not an origin; give `*`, `loopback`, or origins such as \
                     http://localhost:3000,https://app.example.com (scheme, host and port, no path)"
                ));
            }
            list.push(o.to_ascii_lowercase());
        }
        if list.is_empty() {
            return Err("--cors-origins: give `*`, `loopback`, or a comma-separated list of origins".into());
        }
        Ok(Origins::List(list))
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::Loopback => is_loopback_origin(origin),
            Origins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// The origins a server allows: `configured` (`--cors-origins`), else `*` when it verifies
/// signatures and loopback pages only when it does not.
pub fn allowed(configured: Option<Origins>, verifies_signatures: bool) -> Origins {
    match configured {
        Some(o) => o,
        None if verifies_signatures => Origins::Any,
        None => Origins::Loopback,
    }
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, after)) if after.is_empty() || after.starts_with(':') => h,
            _ => return false,
        },
        None => rest.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `Access-Control-Allow-Origin` value for the request, or `None` when it has no origin or
/// one that is not allowed: `*` when every origin is (as AWS), else the request's own origin.
fn allow_origin<B>(req: &Request<B>, origins: &Origins) -> Option<HeaderValue> {
    let value = req.headers().get(ORIGIN)?;
    let origin = value.to_str().ok()?;
    if !origins.allows(origin) {
        log_refused(origin);
        return None;
    }
    Some(if *origins == Origins::Any { HeaderValue::from_static("*") } else { value.clone() })
}

/// One warning per 10 s at most: a developer whose page is refused sees only "CORS error" in the
/// browser, so the server says which flag opens it. The limit is process-wide on purpose: it
/// bounds the volume of the one log the servers of a process share, and carries no count.
fn log_refused(origin: &str) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static LAST_S: AtomicU64 = AtomicU64::new(0);
    let now_s =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let last = LAST_S.load(Relaxed);
    if now_s.saturating_sub(last) >= 10 && LAST_S.compare_exchange(last, now_s, Relaxed, Relaxed).is_ok() {
        let shown: String = origin.chars().take(100).collect();
        tracing::warn!(
            origin = %shown,
            "a browser page from {shown} may not call kinesin (no CORS headers sent): allow it with \
             --cors-origins; without --credentials only pages of this machine may by default"
        );
    }
}

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

/// The `Access-Control-Allow-Origin` the answer to this request carries, if any: it comes from
/// a browser page of an origin in `origins`. Give it to [`decorate`].
pub(crate) fn answer_origin<B>(req: &Request<B>, origins: &Origins) -> Option<HeaderValue> {
    allow_origin(req, origins)
}

/// The answer to a preflight (`OPTIONS` with `Origin`), or `None` for any other request. A
/// refused origin gets the 200 without CORS headers, which its browser reads as a refusal.
pub(crate) fn preflight<B>(req: &Request<B>, origins: &Origins) -> Option<Response<Body>> {
    preflight_for(req, origins)
}

fn preflight_for<B>(req: &Request<B>, origins: &Origins) -> Option<Response<Body>> {
    if req.method() != Method::OPTIONS || !req.headers().contains_key(ORIGIN) {
        return None;
    }
    let mut r = crate::plain(StatusCode::OK, bytes::Bytes::new());
    let Some(allow) = allow_origin(req, origins) else {
        return Some(r);
    };
    let h = r.headers_mut();
    if allow != "*" {
        h.insert(VARY, HeaderValue::from_static("Origin"));
    }
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
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

/// The headers every answer to a page of an allowed origin carries.
pub(crate) fn decorate(h: &mut HeaderMap, allow_origin: HeaderValue) {
    if allow_origin != "*" {
        h.insert(VARY, HeaderValue::from_static("Origin"));
    }
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
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

    fn preflight(req: &Request<()>) -> Option<Response<Body>> {
        preflight_for(req, &Origins::Any)
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

    #[test]
    fn loopback_policy_allows_only_pages_of_this_machine() {
        let o = Origins::Loopback;
        for ok in [
            "http://localhost:3000",
            "https://LOCALHOST",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:5173",
        ] {
            assert!(o.allows(ok), "{ok}");
        }
        for no in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
            "http://[::1]evil",
            "http://192.168.1.5:3000",
            "localhost",
        ] {
            assert!(!o.allows(no), "{no}");
        }
        let asked = options(&[("origin", "https://evil.example"), ("access-control-request-method", "POST")]);
        let r = preflight_for(&asked, &o).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        let asked =
            options(&[("origin", "http://localhost:3000"), ("access-control-request-method", "POST")]);
        let r = preflight_for(&asked, &o).unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "http://localhost:3000");
        assert_eq!(r.headers()["vary"], "Origin");
    }

    #[test]
    fn origins_parse() {
        assert_eq!(Origins::parse("*").unwrap(), Origins::Any);
        assert_eq!(Origins::parse("loopback").unwrap(), Origins::Loopback);
        let list = Origins::parse("http://localhost:3000, https://App.example.com").unwrap();
        assert!(list.allows("https://app.example.com") && list.allows("http://localhost:3000"));
        assert!(!list.allows("http://localhost:3001"));
        for bad in ["", "app.example.com", "https://app.example.com/path", "ftp://x", "http://"] {
            let e = Origins::parse(bad).unwrap_err();
            assert!(e.starts_with("--cors-origins"), "{bad}: {e}");
        }
    }
}
