//! Bounds on what a client (or a peer) can hold: connections, the time to send
//! headers and bodies, and heavy crypto in flight. Both ports accept through
//! [`Acceptor`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The limits of one port.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Open connections at most; more are closed at once (and counted).
    pub max_connections: usize,
    /// Time to receive a request's headers — and, between requests, how long
    /// a kept-alive connection may stay idle.
    pub header_timeout: Duration,
    /// Time to receive a request's body once its headers arrived.
    pub body_timeout: Duration,
}

impl PortLimits {
    pub const API_DEFAULT: PortLimits = PortLimits {
        max_connections: 4096,
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
    };

    /// Peers keep connections open between Raft messages; their client pool
    /// forgets idle ones after [`PEER_POOL_IDLE`], before this closes them.
    pub const PEER_DEFAULT: PortLimits = PortLimits {
        max_connections: 256,
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(10),
    };
}

/// How long the peer client keeps an idle connection (below the peer port's
/// header timeout, so a client never reuses one the server is closing).
pub const PEER_POOL_IDLE: Duration = Duration::from_secs(20);

/// Accepts connections within a port's connection cap, backing off on accept
/// errors (e.g. out of file descriptors) instead of spinning.
pub struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    name: &'static str,
    refused: AtomicU64,
    accept_errors: AtomicU64,
}

impl Acceptor {
    pub fn new(listener: TcpListener, limits: &PortLimits, name: &'static str) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            name,
            refused: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        }
    }

    /// The next connection, with the permit it holds until it closes; `None`
    /// once `shutdown` fires.
    pub async fn accept(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
        let mut backoff = Duration::from_millis(5);
        loop {
            let r = tokio::select! {
                r = self.listener.accept() => r,
                _ = shutdown.cancelled() => return None,
            };
            match r {
                Ok((stream, remote)) => match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let _ = stream.set_nodelay(true);
                        return Some((stream, remote, permit));
                    }
                    Err(_) => {
                        // Full: close it now rather than let it wait unseen.
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(port = self.name, %remote, "connection refused: at the connection limit");
                    }
                },
                Err(e) => {
                    self.accept_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(port = self.name, error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Connections closed because the port was at its limit.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Accept errors so far.
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    /// Open connections now.
    pub fn open(&self, limits: &PortLimits) -> usize {
        limits
            .max_connections
            .max(1)
            .saturating_sub(self.permits.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_counted() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = PortLimits {
            max_connections: 2,
            ..PortLimits::API_DEFAULT
        };
        let acc = Acceptor::new(listener, &limits, "test");
        let stop = CancellationToken::new();
        let mut clients = Vec::new();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let a = acc.accept(&stop).await.unwrap();
        let b = acc.accept(&stop).await.unwrap();
        assert_eq!(acc.open(&limits), 2);
        // A third is accepted and closed at once; its client sees EOF.
        let mut third = TcpStream::connect(addr).await.unwrap();
        let accept = tokio::spawn(async move {
            let c = acc.accept(&stop).await;
            (acc, c.is_some())
        });
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
            .await
            .expect("closed, not left waiting")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // Freeing a permit lets the next connection in.
        drop(a);
        let _fourth = TcpStream::connect(addr).await.unwrap();
        let (acc, got) = accept.await.unwrap();
        assert!(got);
        assert_eq!(acc.refused(), 1);
        drop(b);
    }
}
