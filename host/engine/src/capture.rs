//! Bounded capture of a task's stdout and stderr.
//!
//! wasmtime-wasi's `MemoryOutputPipe` bounds its buffer but cannot be
//! drained between calls (a reused instance reports each call's output on
//! its own) and does not record that a write was refused. This pipe does
//! both: when a write would pass the limit it keeps what fits, marks itself
//! overflowed and reports the stream closed, so the guest sees a write error
//! and the runtime can name the output limit in the call's error.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// One captured output stream with a byte limit. Clones share the buffer.
#[derive(Clone, Debug)]
pub(crate) struct CapturePipe {
    shared: Arc<Mutex<Buffer>>,
}

#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Buffer {
    /// Appends what fits; returns whether all of `data` fit.
    fn append(&mut self, data: &[u8]) -> bool {
        let room = self.limit.saturating_sub(self.bytes.len());
        let take = data.len().min(room);
        self.bytes.extend_from_slice(&data[..take]);
        if take < data.len() {
            self.overflowed = true;
        }
        take == data.len()
    }
}

impl CapturePipe {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Buffer {
                bytes: Vec::new(),
                limit,
                overflowed: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means a writer panicked mid-append; the bytes
        // are still a valid prefix of the output.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the bytes captured so far.
    pub(crate) fn peek(&self) -> Vec<u8> {
        self.lock().bytes.clone()
    }

    /// Whether a write was refused for passing the limit.
    pub(crate) fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// Takes the bytes captured so far and whether the limit was passed,
    /// leaving the pipe empty for the next call.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut buffer = self.lock();
        let overflowed = std::mem::take(&mut buffer.overflowed);
        (std::mem::take(&mut buffer.bytes), overflowed)
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        if self.lock().append(&bytes) {
            Ok(())
        } else {
            Err(StreamError::Closed)
        }
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        let buffer = self.lock();
        if buffer.overflowed {
            return Err(StreamError::Closed);
        }
        // Offer one byte past the limit once it is reached, so that the next
        // write overflows (and is recorded) instead of the guest waiting.
        Ok(buffer.limit.saturating_sub(buffer.bytes.len()).max(1))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut buffer = self.lock();
        if buffer.overflowed || !buffer.append(data) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "captured output limit reached",
            )));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_fits_and_records_overflow() {
        let mut pipe = CapturePipe::new(8);
        assert!(pipe.write(bytes::Bytes::from_static(b"hello")).is_ok());
        assert!(matches!(
            pipe.write(bytes::Bytes::from_static(b" world")),
            Err(StreamError::Closed)
        ));
        assert!(matches!(pipe.check_write(), Err(StreamError::Closed)));
        let (bytes, overflowed) = pipe.take();
        assert_eq!(bytes, b"hello wo");
        assert!(overflowed);
        // Drained: the next call starts empty and under the limit.
        assert_eq!(pipe.take(), (Vec::new(), false));
        assert!(pipe.check_write().is_ok());
    }
}
