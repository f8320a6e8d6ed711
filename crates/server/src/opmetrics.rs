//! Per-operation request metrics for `/metrics`: requests that named each operation, those that
//! failed by error code, and how long they took to answer.
//!
//! Every request whose `X-Amz-Target` names an operation of the model is counted once it is
//! answered, whatever stopped it: validation, authentication, authorization, throttling or the
//! operation itself. The outcome is read from the response: a 2xx is a success, anything else an
//! error whose code is the `x-amzn-ErrorType` header (the error's `__type`).
//!
//! Cost on the hot path: the operation set is fixed (`kinesin_wire::operation::Op`), so the
//! counters are allocated once, one slot per operation, and a request finds its slot by its
//! operation's index; it then adds to a few relaxed atomics (no lock, no map, no allocation). Error codes are a fixed list
//! too, looked up only for errors.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::header::HeaderMap;
use hyper::Response;
use kinesin_log::{LatencyHistogram, LATENCY_BUCKETS_MS};
use kinesin_wire::error::ErrorKind;
use kinesin_wire::operation::Op;

/// The `le` bounds of `kinesin_request_duration_seconds`: [`LATENCY_BUCKETS_MS`] in seconds,
/// written out so the text is exact.
const BUCKETS_SECONDS: [&str; LATENCY_BUCKETS_MS.len()] = [
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10",
];

/// The error codes answered by the HTTP front end itself, besides [`ErrorKind::ALL`].
const FRONT_END_ERRORS: [&str; 2] = ["RequestEntityTooLargeException", "RequestTimeoutException"];

/// The `error_code` of an error answer with no (or an unknown) `x-amzn-ErrorType`.
pub const OTHER_ERROR: &str = "OtherError";

const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// The counters of one operation.
#[derive(Default)]
struct OpSlot {
    requests: AtomicU64,
    latency: LatencyHistogram,
}

/// One server's request counters.
pub struct Table {
    /// `slots[i]` belongs to `Op::ALL[i]` (sorted by name).
    slots: Box<[OpSlot]>,
    /// The `error_code` values: every error kind, the front end's own, then [`OTHER_ERROR`].
    codes: Vec<&'static str>,
    /// Errors of operation `i` with code `j` at `i * codes.len() + j`.
    errors: Box<[AtomicU64]>,
}

impl Table {
    /// The index in `codes` of an `x-amzn-ErrorType` value (AWS may append `:` and a URL).
    fn code_index(&self, header: &str) -> usize {
        let code = header.split(':').next().unwrap_or("");
        self.codes.iter().position(|c| *c == code).unwrap_or(self.codes.len() - 1)
    }
}

impl Default for Table {
    fn default() -> Table {
        let slots = Op::ALL.iter().map(|_| OpSlot::default()).collect();
        let mut codes: Vec<&'static str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        codes.extend(FRONT_END_ERRORS);
        codes.sort_unstable();
        codes.push(OTHER_ERROR);
        let errors = (0..Op::ALL.len() * codes.len()).map(|_| AtomicU64::new(0)).collect();
        Table { slots, codes, errors }
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("operations", &self.slots.len()).finish_non_exhaustive()
    }
}

/// One request being timed; [`RequestTimer::finish`] counts it.
pub struct RequestTimer {
    op: usize,
    start: Instant,
}

impl RequestTimer {
    /// Starts timing a request whose `X-Amz-Target` names a known operation; `None` otherwise
    /// (such requests are answered UnknownOperationException and not counted by operation).
    pub fn start(headers: &HeaderMap) -> Option<RequestTimer> {
        let target = headers.get("x-amz-target")?.to_str().ok()?;
        let op = target.strip_prefix(TARGET_PREFIX)?;
        let op = Op::from_name(op)? as usize;
        Some(RequestTimer { op, start: Instant::now() })
    }

    /// Counts the request with the outcome of `resp` (its status and `x-amzn-ErrorType`) and
    /// the time since [`start`](RequestTimer::start): until the response's head was ready, so a
    /// SubscribeToShard is timed until its subscription started, not for its whole life.
    pub fn finish<B>(self, t: &Table, resp: &Response<B>) {
        let slot = &t.slots[self.op];
        slot.latency.observe(self.start.elapsed());
        slot.requests.fetch_add(1, Ordering::Relaxed);
        if !resp.status().is_success() {
            let code = resp.headers().get("x-amzn-ErrorType").and_then(|v| v.to_str().ok()).unwrap_or("");
            t.errors[self.op * t.codes.len() + t.code_index(code)].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Appends the request families, in Prometheus text format, to `out`: the request counter of
/// every operation (0 included, so alerts see the series from the start), the error counters
/// that are not 0, and the latency histogram of the operations called at least once.
pub fn render(t: &Table, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP kinesin_requests_total API requests that named a known operation, by operation, whatever their outcome (validation, authentication, throttling and other errors included)."
    );
    let _ = writeln!(out, "# TYPE kinesin_requests_total counter");
    for (name, slot) in Op::ALL.iter().map(|op| op.name()).zip(t.slots.iter()) {
        let _ = writeln!(
            out,
            "kinesin_requests_total{{operation=\"{name}\"}} {}",
            slot.requests.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP kinesin_request_errors_total API requests answered with an error, by operation and error code (the x-amzn-ErrorType; {OTHER_ERROR} for an error answer without one)."
    );
    let _ = writeln!(out, "# TYPE kinesin_request_errors_total counter");
    for (name, errors) in Op::ALL.iter().map(|op| op.name()).zip(t.errors.chunks(t.codes.len())) {
        for (code, n) in t.codes.iter().zip(errors) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "kinesin_request_errors_total{{operation=\"{name}\",error_code=\"{code}\"}} {n}"
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP kinesin_request_duration_seconds Time from a request's arrival to its answer being ready (errors included), by operation, in seconds."
    );
    let _ = writeln!(out, "# TYPE kinesin_request_duration_seconds histogram");
    for (name, slot) in Op::ALL.iter().map(|op| op.name()).zip(t.slots.iter()) {
        let h = slot.latency.snapshot();
        if h.count == 0 {
            continue;
        }
        for (le, count) in BUCKETS_SECONDS.iter().zip(h.cumulative) {
            let _ = writeln!(
                out,
                "kinesin_request_duration_seconds_bucket{{operation=\"{name}\",le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "kinesin_request_duration_seconds_bucket{{operation=\"{name}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "kinesin_request_duration_seconds_sum{{operation=\"{name}\"}} {}",
            (h.sum_ms * 1000.0).round() / 1e6
        );
        let _ = writeln!(out, "kinesin_request_duration_seconds_count{{operation=\"{name}\"}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_bounds_match_the_millisecond_ones() {
        for (s, ms) in BUCKETS_SECONDS.iter().zip(LATENCY_BUCKETS_MS) {
            let s: f64 = s.parse().unwrap();
            assert!((s * 1000.0 - ms).abs() < 1e-9, "{s} vs {ms} ms");
        }
    }

    #[test]
    fn every_error_kind_has_its_code() {
        let t = Table::default();
        for k in ErrorKind::ALL {
            assert_eq!(t.codes[t.code_index(k.as_str())], k.as_str());
        }
        assert_eq!(t.codes[t.code_index("RequestTimeoutException")], "RequestTimeoutException");
        assert_eq!(t.codes[t.code_index("Nope")], OTHER_ERROR);
        assert_eq!(t.codes[t.code_index("")], OTHER_ERROR);
        assert_eq!(
            t.codes[t.code_index("ValidationException:http://internal.amazon.com/coral/")],
            "ValidationException"
        );
    }

    #[test]
    fn known_operations_are_counted_unknown_ones_not() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", "Kinesis_20131202.DescribeLimits".parse().unwrap());
        let table = Table::default();
        let t = RequestTimer::start(&h).expect("a known operation");
        let mut resp = Response::new(());
        *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
        resp.headers_mut().insert("x-amzn-ErrorType", "LimitExceededException".parse().unwrap());
        t.finish(&table, &resp);
        RequestTimer::start(&h).unwrap().finish(&table, &Response::new(()));
        let mut out = String::new();
        render(&table, &mut out);
        assert!(out.contains("kinesin_requests_total{operation=\"DescribeLimits\"} 2\n"), "{out}");
        assert!(out.contains(
            "kinesin_request_errors_total{operation=\"DescribeLimits\",error_code=\"LimitExceededException\"} 1\n"
        ));
        assert!(out.contains("kinesin_request_duration_seconds_count{operation=\"DescribeLimits\"} 2\n"));
        assert!(out.contains(
            "kinesin_request_duration_seconds_bucket{operation=\"DescribeLimits\",le=\"+Inf\"} 2\n"
        ));
        assert!(out.contains("kinesin_requests_total{operation=\"ListStreams\"} 0\n"));

        for target in ["Kinesis_20131202.Nope", "DescribeLimits", "Other_1.DescribeLimits", ""] {
            h.insert("x-amz-target", target.parse().unwrap());
            assert!(RequestTimer::start(&h).is_none(), "{target}");
        }
        assert!(RequestTimer::start(&HeaderMap::new()).is_none());
    }

    /// The hook's cost per request, for docs/metrics.md:
    /// `cargo test --release -p kinesin-server --lib hook_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn hook_cost() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", "Kinesis_20131202.PutRecords".parse().unwrap());
        let ok = Response::new(());
        let mut err = Response::new(());
        *err.status_mut() = hyper::StatusCode::BAD_REQUEST;
        err.headers_mut().insert("x-amzn-ErrorType", "ValidationException".parse().unwrap());
        let table = Table::default();
        for (what, resp) in [("success", &ok), ("error", &err)] {
            let n = 2_000_000;
            let start = Instant::now();
            for _ in 0..n {
                RequestTimer::start(std::hint::black_box(&h))
                    .unwrap()
                    .finish(&table, std::hint::black_box(resp));
            }
            println!("{what}: {:.1} ns per request", start.elapsed().as_nanos() as f64 / n as f64);
        }
    }
}
