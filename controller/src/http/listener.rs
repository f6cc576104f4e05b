//! The listener of the API and metrics servers: a cap on connections, a smaller cap
//! per client address, and limits on how long one may be silent or open, so that slow
//! clients cannot pin connections or memory (issue 11, finding 5). Request timeouts
//! are the router's ([`super::REQUEST_TIMEOUT`]).
//!
//! ```text
//!   TcpListener ──accept (one permit of max_connections)──▶ LimitedStream ──▶ hyper
//!                     a client address already at max_per_client ──▶ closed at once
//!                     read: silent for `idle` while read ──▶ TimedOut ──▶ hyper closes
//!                     read/write: open for `lifetime`     ──▶ TimedOut ──▶ hyper closes
//!   drop(LimitedStream) ──▶ permit back ──▶ the next connection is accepted
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// What a [`LimitedListener`] allows each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Connections served at once from one client address; more are closed as soon as
    /// they are accepted, so that one client cannot take every slot.
    pub max_per_client: usize,
    /// How long a connection may send nothing while the server waits to read from it
    /// (headers, a body, the next keep-alive request).
    pub idle: Duration,
    /// How long a connection may stay open at all.
    pub lifetime: Duration,
}

/// The limits of the API and metrics listeners. A request through the API server's
/// service proxy takes milliseconds; 60 s is room for the slowest honest client, and
/// 256 connections for many replicas of `kubeseal` and Prometheus at once. One client
/// address gets a quarter of them: a pod that opens connections and trickles bytes
/// into them holds at most 64, and every other client (the API server's service
/// proxy, which is one address for all `kubeseal` users, and Prometheus) keeps the
/// rest.
pub const CONNECTION_LIMITS: ConnectionLimits = ConnectionLimits {
    max_connections: 256,
    max_per_client: 64,
    idle: Duration::from_secs(10),
    lifetime: Duration::from_secs(60),
};

/// A TCP listener for `axum::serve` that bounds its connections ([`ConnectionLimits`]):
/// it accepts only while fewer than `max_connections` are open, and each connection
/// fails its next read or write once it has been silent for `idle` while being read,
/// or open for `lifetime`, which makes hyper close it.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    limits: ConnectionLimits,
    permits: Arc<Semaphore>,
    clients: Arc<Clients>,
}

/// The open connections of each client address.
#[derive(Debug, Default)]
struct Clients(Mutex<HashMap<IpAddr, usize>>);

impl Clients {
    /// Counts one more connection from `ip`, unless it already has `max`.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            ip,
        })
    }
}

/// One connection's place in its client's count; given back when dropped.
#[derive(Debug)]
struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl LimitedListener {
    /// Bounds the connections of `inner`.
    pub fn new(inner: TcpListener, limits: ConnectionLimits) -> Self {
        LimitedListener {
            inner,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            clients: Arc::default(),
        }
    }
}

impl Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        // The semaphore is never closed, so acquiring fails never; without a permit the
        // connection would still be served, only uncounted.
        let permit = self.permits.clone().acquire_owned().await.ok();
        loop {
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            let Some(slot) = self.clients.enter(addr.ip(), self.limits.max_per_client) else {
                // Dropping the stream closes it; the permit serves the next one.
                tracing::debug!(client = %addr.ip(), "connection refused: the client has too many open");
                continue;
            };
            return (LimitedStream::new(stream, permit, slot, self.limits), addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One connection of a [`LimitedListener`]; its slot is freed when it is dropped.
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    idle_for: Duration,
    idle: Pin<Box<Sleep>>,
    end: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
    _slot: ClientSlot,
}

impl LimitedStream {
    fn new(
        inner: TcpStream,
        permit: Option<OwnedSemaphorePermit>,
        slot: ClientSlot,
        limits: ConnectionLimits,
    ) -> Self {
        LimitedStream {
            inner,
            idle_for: limits.idle,
            idle: Box::pin(tokio::time::sleep(limits.idle)),
            end: Box::pin(tokio::time::sleep(limits.lifetime)),
            _permit: permit,
            _slot: slot,
        }
    }

    /// An error once the connection has lived too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.end
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| io::Error::new(io::ErrorKind::TimedOut, "connection open too long"))
    }

    fn touch(&mut self) {
        let next = tokio::time::Instant::now() + self.idle_for;
        self.idle.as_mut().reset(next);
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if self.idle.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle too long",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            // The peer reads what we write: it is alive.
            self.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::IntoFuture as _;

    use tokio::net::TcpSocket;

    use super::*;
    use crate::http::api_router;
    use crate::http::tests::{keys, state};

    /// Serves the API over loopback with `limits`; the address.
    async fn serve_limited(limits: ConnectionLimits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = api_router(state(keys(&[1]), 9, 9));
        tokio::spawn(axum::serve(LimitedListener::new(listener, limits), app).into_future());
        addr
    }

    async fn send(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            stream.writable().await?;
            match stream.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn recv(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            stream.readable().await?;
            match stream.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
        }
    }

    async fn healthz_over(addr: SocketAddr) -> String {
        let client = TcpStream::connect(addr).await.expect("connect");
        send(
            &client,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = recv(&client, &mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_slow_connection_is_cut_and_the_server_keeps_serving() {
        // One connection at a time: the healthz request below is served only once
        // the slow connection is gone.
        let addr = serve_limited(ConnectionLimits {
            max_connections: 1,
            max_per_client: 1,
            idle: Duration::from_millis(200),
            lifetime: Duration::from_secs(3600),
        })
        .await;
        let slow = TcpStream::connect(addr).await.expect("connect");
        send(&slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write half the headers");
        let served = tokio::spawn(healthz_over(addr));
        // A watchdog, not a timing: without the idle limit the read never ends.
        let mut buf = [0u8; 256];
        let cut = tokio::time::timeout(Duration::from_secs(60), recv(&slow, &mut buf))
            .await
            .expect("the server cuts the slow connection");
        assert!(
            matches!(cut, Ok(0) | Err(_)),
            "{cut:?}: no answer to half a request"
        );
        let answer = served.await.expect("the client task");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(healthz_over(addr).await.ends_with("ok"));
    }

    #[tokio::test]
    async fn the_listener_accepts_no_more_than_its_cap_at_once() {
        use futures::FutureExt as _;
        let inner = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = inner.local_addr().expect("address");
        let mut listener = LimitedListener::new(
            inner,
            ConnectionLimits {
                max_connections: 1,
                ..CONNECTION_LIMITS
            },
        );
        let _a = TcpStream::connect(addr).await.expect("connect");
        let _b = TcpStream::connect(addr).await.expect("connect");
        let (first, _) = Listener::accept(&mut listener).await;
        assert!(
            Listener::accept(&mut listener).now_or_never().is_none(),
            "a second connection waits while the first is open"
        );
        drop(first);
        let (_second, _) = Listener::accept(&mut listener).await;
    }

    #[tokio::test]
    async fn one_client_address_gets_no_more_than_its_share_and_others_are_still_served() {
        let inner = TcpListener::bind("0.0.0.0:0").await.expect("bind");
        let port = inner.local_addr().expect("address").port();
        let mut listener = LimitedListener::new(
            inner,
            ConnectionLimits {
                max_connections: 8,
                max_per_client: 2,
                ..CONNECTION_LIMITS
            },
        );
        let hog: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut held = Vec::new();
        for _ in 0..2 {
            let client = TcpStream::connect(hog).await.expect("connect");
            held.push((client, Listener::accept(&mut listener).await));
        }
        // A third connection from the same address is closed without being served...
        let third = TcpStream::connect(hog).await.expect("connect");
        // ...while another address (127.0.0.2 is loopback too) is accepted.
        let other = TcpSocket::new_v4().expect("socket");
        other
            .bind(([127, 0, 0, 2], 0).into())
            .expect("bind a second loopback address");
        let _other = other.connect(hog).await.expect("connect");
        let (_served, addr) = Listener::accept(&mut listener).await;
        assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 2]));
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), recv(&third, &mut buf))
            .await
            .expect("the refused connection is closed at once");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        // When one of its connections ends, the client may open another.
        drop(held.pop());
        let _again = TcpStream::connect(hog).await.expect("connect");
        let (_, addr) = Listener::accept(&mut listener).await;
        assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    }

    #[tokio::test]
    async fn a_connection_is_cut_after_its_lifetime_even_when_never_idle() {
        let addr = serve_limited(ConnectionLimits {
            max_connections: 4,
            max_per_client: 4,
            idle: Duration::from_secs(3600),
            lifetime: Duration::from_millis(200),
        })
        .await;
        let slow = TcpStream::connect(addr).await.expect("connect");
        // One header byte at a time, forever: never idle, never done.
        let trickle = async {
            loop {
                if send(&slow, b"X").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut probe = [0u8; 64];
                match slow.try_read(&mut probe) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    _ => return,
                }
            }
        };
        // A watchdog, not a timing: without the lifetime the trickle never ends.
        tokio::time::timeout(Duration::from_secs(60), trickle)
            .await
            .expect("the server cuts the trickling connection");
        assert!(healthz_over(addr).await.ends_with("ok"));
    }
}
