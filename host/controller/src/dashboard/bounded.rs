//! The dashboard's listener: at most [`MAX_CONNECTIONS`] connections open.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::MAX_CONNECTIONS;

/// The dashboard's listener, with at most [`MAX_CONNECTIONS`] connections
/// open: past that it accepts no more until one closes (they wait in the
/// kernel's backlog), so open connections cannot grow without bound. The
/// controller's own work never waits on them.
pub(super) struct Bounded {
    inner: tokio::net::TcpListener,
    connections: Arc<Semaphore>,
}

impl Bounded {
    /// `listener`, bounded.
    pub(super) fn new(inner: tokio::net::TcpListener) -> Self {
        Self {
            inner,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }
}

/// A connection of [`Bounded`], counted until it is dropped.
pub(super) struct Counted {
    stream: tokio::net::TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for Bounded {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        let permit = loop {
            // The semaphore is never closed; should it be, wait a moment
            // rather than spin.
            match self.connections.clone().acquire_owned().await {
                Ok(permit) => break permit,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (
            Counted {
                stream,
                _permit: permit,
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
