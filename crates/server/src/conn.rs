//! Per-connection bookkeeping: for the idle timeout, when bytes last moved and how many requests
//! are in flight (a request counts until its response body is finished, so a long
//! SubscribeToShard stream is never cut as idle); and how many connections each client address
//! holds (`--max-connections-per-ip`).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How often an idle watch looks again, at most.
const IDLE_CHECK_INTERVAL: Duration = Duration::from_millis(250);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Shared between a connection's I/O, its request handler and its idle watch.
#[derive(Debug)]
pub struct Activity {
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity { last_ms: AtomicU64::new(now_ms()), in_flight: AtomicUsize::new(0) })
    }

    fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Marks a request in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight and no bytes moving for
    /// `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        let timeout_ms = timeout.as_millis() as u64;
        loop {
            let idle_ms = now_ms().saturating_sub(self.last_ms.load(Ordering::Relaxed));
            if idle_ms >= timeout_ms && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            let wait = Duration::from_millis(timeout_ms.saturating_sub(idle_ms))
                .clamp(Duration::from_millis(10), IDLE_CHECK_INTERVAL);
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request in flight; see [`Activity::begin`].
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A response body that keeps its request counted as in flight until the body is finished or
/// dropped. It passes the body's size through, so a whole body is sent with `Content-Length` (as
/// AWS does) and only a stream of unknown length (SubscribeToShard) is chunked.
pub struct HeldBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> HeldBody<B> {
    pub fn new(inner: B, in_flight: InFlight) -> HeldBody<B> {
        HeldBody { inner, _in_flight: in_flight }
    }
}

impl<B: Body + Unpin> Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Connections held per client address, for `--max-connections-per-ip`. IPv6 clients are
/// counted per /64, the block one host is usually given, so one host cannot dodge the limit by
/// cycling through its own addresses; IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Debug)]
pub struct PerClient {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    pub fn new(max: usize) -> Arc<PerClient> {
        Arc::new(PerClient { max: max.max(1), held: Mutex::new(HashMap::new()) })
    }

    /// The address connections are counted under.
    pub fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
            v4 => v4,
        }
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `max` already.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = PerClient::key(ip);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot { table: self.clone(), key })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(&PerClient::key(ip)).copied().unwrap_or(0)
    }
}

/// One connection counted against its client address until dropped.
#[derive(Debug)]
pub struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self.table.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// An I/O stream that records activity on every read and write that moves bytes.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Tracked<S> {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_limit_counts_each_address_and_frees_on_drop() {
        let table = PerClient::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = table.try_acquire(a).unwrap();
        let _a2 = table.try_acquire(a).unwrap();
        assert!(table.try_acquire(a).is_none());
        // IPv4-mapped IPv6 is the same client.
        assert!(table.try_acquire("::ffff:127.0.0.1".parse().unwrap()).is_none());
        let _b1 = table.try_acquire(b).unwrap();
        drop(a1);
        assert_eq!(table.held(a), 1);
        assert!(table.try_acquire(a).is_some());
        // One IPv6 /64 is one client.
        let x = table.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        let _y = table.try_acquire("2001:db8::ffff:2".parse().unwrap()).unwrap();
        assert!(table.try_acquire("2001:db8::3".parse().unwrap()).is_none());
        assert!(table.try_acquire("2001:db8:0:1::3".parse().unwrap()).is_some());
        drop(x);
        assert_eq!(table.held("2001:db8::9".parse().unwrap()), 1);
    }

    #[tokio::test]
    async fn idle_waits_for_requests_in_flight() {
        let a = Activity::new();
        let guard = a.begin();
        let watch = a.idle(Duration::from_millis(200));
        tokio::pin!(watch);
        assert!(tokio::time::timeout(Duration::from_millis(600), &mut watch).await.is_err());
        drop(guard);
        let t = Instant::now();
        assert!(tokio::time::timeout(Duration::from_secs(3), &mut watch).await.is_ok());
        assert!(t.elapsed() >= Duration::from_millis(150));
    }
}
