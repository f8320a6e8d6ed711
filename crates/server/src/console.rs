//! The web console at `/console`: a page, a script and a style sheet compiled into the binary
//! (`crates/server/console/`), plus `/console/config.json` telling the page the signing region and
//! whether credentials are required.
//!
//! The console holds no privileges of its own. The browser calls the ordinary Kinesis JSON API
//! (`POST /`) and signs every request with SigV4 itself: with a dummy key when the server has no
//! credentials file (any well-formed signature is accepted then), with the access key the user
//! typed into the login form when it has one. So `--credentials` protects the console exactly as
//! it protects the API, and the server needs no session or proxy. The assets and the config are
//! public, like `/metrics`: they contain no data.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::obs::ServiceSlot;
use crate::Body;

pub const PATH: &str = "/console";

const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const SIGV4_JS: &str = include_str!("../console/sigv4.js");
const STYLE_CSS: &str = include_str!("../console/style.css");

/// Scripts and styles come only from this origin, and the page may call only this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; \
                   base-uri 'none'";

fn asset(status: StatusCode, content_type: &'static str, body: Bytes, head: bool) -> Response<Body> {
    let body = if head { Bytes::new() } else { body };
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary; a reload after an upgrade must not mix versions.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    r
}

/// The answer for a console path, or `None` when the request is not for the console.
pub(crate) fn route<B>(
    server: &crate::Server,
    slot: &ServiceSlot,
    req: &Request<B>,
) -> Option<Response<Body>> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return None;
    }
    let path = req.uri().path();
    let rest = path.strip_prefix(PATH)?;
    let html = "text/html; charset=utf-8";
    let js = "text/javascript; charset=utf-8";
    let stat = |s: &'static str| Bytes::from_static(s.as_bytes());
    Some(match rest {
        "" | "/" | "/index.html" => asset(StatusCode::OK, html, stat(INDEX_HTML), head),
        "/app.js" => asset(StatusCode::OK, js, stat(APP_JS), head),
        "/sigv4.js" => asset(StatusCode::OK, js, stat(SIGV4_JS), head),
        "/style.css" => asset(StatusCode::OK, "text/css; charset=utf-8", stat(STYLE_CSS), head),
        "/config.json" => match slot.get() {
            Some(service) => {
                let config = serde_json::json!({
                    "region": service.config().region,
                    "credentials_required": server.verifies_signatures(),
                });
                asset(StatusCode::OK, "application/json", Bytes::from(config.to_string()), head)
            }
            None => asset(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                stat("recovering\n"),
                head,
            ),
        },
        // `/consoles` and the like are not ours: let the API answer them as before.
        r if !r.starts_with('/') => return None,
        _ => asset(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", stat("not found\n"), head),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(method: Method, path: &str) -> Option<Response<Body>> {
        let req = Request::builder().method(method).uri(path).body(()).unwrap();
        route(&crate::Server::default(), &ServiceSlot::new(), &req)
    }

    fn content_type(r: &Response<Body>) -> &str {
        r.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap()
    }

    #[test]
    fn assets_served_with_their_types() {
        for (path, ct) in [
            ("/console", "text/html"),
            ("/console/", "text/html"),
            ("/console/app.js", "text/javascript"),
            ("/console/sigv4.js", "text/javascript"),
            ("/console/style.css", "text/css"),
        ] {
            let r = get(Method::GET, path).unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert!(content_type(&r).starts_with(ct), "{path}");
            assert!(r.headers().contains_key("content-security-policy"), "{path}");
        }
        assert_eq!(get(Method::HEAD, "/console/app.js").unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn other_paths_and_methods_left_to_the_api() {
        assert!(get(Method::POST, "/console").is_none());
        assert!(get(Method::GET, "/").is_none());
        assert!(get(Method::GET, "/consoles").is_none());
        assert_eq!(get(Method::GET, "/console/nope.js").unwrap().status(), StatusCode::NOT_FOUND);
        // No service yet (recovering): the config cannot say the region.
        assert_eq!(
            get(Method::GET, "/console/config.json").unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn page_loads_only_embedded_assets() {
        assert!(INDEX_HTML.contains("/console/app.js"));
        assert!(INDEX_HTML.contains("/console/sigv4.js"));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
    }
}
