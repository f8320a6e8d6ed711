//! `kinesin health`: asks a running server's `/health/ready` (or another health URL) and exits 0
//! when it answers 2xx, 1 otherwise. For container health checks and service managers: the
//! runtime image has no curl, and this needs nothing but the binary (plain HTTP over std's
//! TcpStream, one request, bounded by a timeout).

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// URL to ask (plain http) [default: /health/ready of KINESIN_LISTEN's address, else of
    /// 127.0.0.1:4567; an unspecified address such as 0.0.0.0 is asked on the loopback].
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// The default URL for a server listening on `listen` (`KINESIN_LISTEN`'s form, `host:port`).
pub fn default_url(listen: Option<&str>) -> String {
    let listen = listen.map(str::trim).filter(|l| !l.is_empty()).unwrap_or("127.0.0.1:4567");
    let (host, port) = match listen.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (listen, "4567"),
    };
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h => h,
    };
    format!("http://{host}:{port}/health/ready")
}

pub fn run(args: HealthArgs) -> Result<()> {
    let url =
        args.url.clone().unwrap_or_else(|| default_url(std::env::var("KINESIN_LISTEN").ok().as_deref()));
    let status = check(&url, Duration::from_secs(args.timeout_secs.max(1)))?;
    if !(200..300).contains(&status.0) {
        bail!("{url} answered {} {}", status.0, status.1);
    }
    crate::outln!("{url}: {} {}", status.0, status.1);
    Ok(())
}

/// GETs `url` and returns its status code and reason.
fn check(url: &str, timeout: Duration) -> Result<(u16, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--url {url}: only http:// URLs are supported (ask the plain listener, not --tls-listen)")
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> =
        with_port.to_socket_addrs().with_context(|| format!("{url}: cannot resolve {authority}"))?.collect();
    let mut last = None;
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(
            &a,
            deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
        ) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        bail!(
            "{url}: cannot connect ({}); is `kinesin serve` running there?",
            last.map_or_else(|| "no address".to_string(), |e| e.to_string())
        )
    };
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    // One write: a server may answer and close as soon as it has the request line.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: kinesin-health\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).with_context(|| format!("{url}: sending the request"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut buf)
            .with_context(|| format!("{url}: no answer within {} s", timeout.as_secs()))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("{url}: not an HTTP answer: {line:?}")
    };
    let Ok(code) = code.parse::<u16>() else { bail!("{url}: not an HTTP answer: {line:?}") };
    if !version.starts_with("HTTP/") {
        bail!("{url}: not an HTTP answer: {line:?}");
    }
    Ok((code, parts.next().unwrap_or("").trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_from_listen_addresses() {
        assert_eq!(default_url(None), "http://127.0.0.1:4567/health/ready");
        assert_eq!(default_url(Some("0.0.0.0:8080")), "http://127.0.0.1:8080/health/ready");
        assert_eq!(default_url(Some("[::]:4567")), "http://[::1]:4567/health/ready");
        assert_eq!(default_url(Some("10.1.2.3:4567")), "http://10.1.2.3:4567/health/ready");
    }

    #[test]
    fn answers_are_read() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 503 Service Unavailable\r\n\r\nrecovering"] {
                let (mut s, _) = l.accept().unwrap();
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut b).unwrap();
                    assert!(n > 0, "request cut short: {req:?}");
                    req.extend_from_slice(&b[..n]);
                }
                assert!(req.starts_with(b"GET /health/ready HTTP/1.1\r\n"), "{req:?}");
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        let url = format!("http://127.0.0.1:{port}/health/ready");
        assert_eq!(check(&url, Duration::from_secs(3)).unwrap(), (200, "OK".into()));
        assert_eq!(check(&url, Duration::from_secs(3)).unwrap(), (503, "Service Unavailable".into()));
        t.join().unwrap();
        assert!(check("https://127.0.0.1/", Duration::from_secs(1)).is_err());
    }
}
