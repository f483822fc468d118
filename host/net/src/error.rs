//! [`NetError`], everything that can go wrong between two wasp nodes, with
//! messages that name the address, file or limit involved.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wasp_proto::codec::CodecError;

/// An error setting up or using a wasp connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The server presented a certificate other than the pinned one.
    #[error(
        "certificate fingerprint mismatch: expected {expected}, got {actual} \
         (is {addr} the controller named in the connection file?)"
    )]
    FingerprintMismatch {
        /// The server's address.
        addr: SocketAddr,
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint of the certificate the server presented.
        actual: String,
    },
    /// A fingerprint is not 64 hex digits.
    #[error("invalid certificate fingerprint {fingerprint:?}: expected 64 hex digits (sha256)")]
    BadFingerprint {
        /// The offending text.
        fingerprint: String,
    },
    /// The server refused the connection before the handshake, as it does
    /// when at its connection cap.
    #[error("the server at {addr} refused the connection (is it at its connection cap?)")]
    Refused {
        /// The server's address.
        addr: SocketAddr,
    },
    /// The controller completed the handshake but refused this peer's
    /// hello (a wrong token or protocol version), giving its reason.
    #[error("the controller refused the connection: {reason}")]
    Rejected {
        /// The controller's reason.
        reason: String,
    },
    /// A connection attempt failed for another reason.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The server's address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A certificate, key or TLS configuration was rejected.
    #[error("tls setup failed: {reason}")]
    Tls {
        /// Why.
        reason: String,
    },
    /// A UDP socket could not be bound.
    #[error("cannot bind udp socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The peer closed the connection, giving a code and reason.
    #[error("connection closed by peer (code {code}): {reason}")]
    Closed {
        /// The application's close code.
        code: u64,
        /// The reason the peer gave.
        reason: String,
    },
    /// This side closed the connection.
    #[error("connection closed locally")]
    LocallyClosed,
    /// The connection failed: timed out, reset, or a protocol error.
    #[error("connection lost: {reason}")]
    ConnectionLost {
        /// Why.
        reason: String,
    },
    /// The peer reset the stream being read.
    #[error("stream reset by peer (code {code})")]
    StreamReset {
        /// The peer's error code.
        code: u64,
    },
    /// The peer stopped reading the stream being written.
    #[error("peer stopped reading the stream (code {code})")]
    StreamStopped {
        /// The peer's error code.
        code: u64,
    },
    /// The stream was already finished or reset by this side.
    #[error("stream already closed")]
    StreamClosed,
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame {part}: expected {expected} bytes, got {got}")]
    Truncated {
        /// "prefix" or "payload".
        part: &'static str,
        /// Bytes the frame needed.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// A frame could not be encoded or decoded, or broke a size cap.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The same-host channel failed, or a peer sent on it what it may
    /// not (a memory file not sealed, over the frame cap, more than a
    /// frame may name, or none where a frame names some).
    #[error("same-host channel: {what}: {source}")]
    SameHost {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The peer sent a well-formed message that the protocol does not
    /// allow where it came (e.g. for an engine slot it was not assigned).
    #[error("the peer broke the protocol: {0}")]
    Protocol(String),
    /// Encoding or decoding a large frame on the blocking pool failed to
    /// finish (the runtime is shutting down, or the work panicked).
    #[error("encoding or decoding a frame off the async thread failed: {0}")]
    Blocking(String),
    /// Something did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// A connection file could not be read.
    #[error("cannot read connection file {}: {source}", path.display())]
    ReadConnectionFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A connection file is not valid JSON of the expected shape.
    #[error("connection file {} is malformed: {reason}", path.display())]
    MalformedConnectionFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A connection file or profile folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The profile folder cannot be located.
    #[error("cannot find a profile folder: {reason}")]
    Profile {
        /// Why.
        reason: String,
    },
}

impl NetError {
    /// Maps a quinn connection error, keeping the peer's close reason.
    pub(crate) fn connection(err: quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as E;
        match err {
            E::ApplicationClosed(close) => NetError::Closed {
                code: close.error_code.into_inner(),
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
            },
            E::LocallyClosed => NetError::LocallyClosed,
            err => NetError::ConnectionLost {
                reason: err.to_string(),
            },
        }
    }

    pub(crate) fn read(err: quinn::ReadError) -> Self {
        use quinn::ReadError as E;
        match err {
            E::Reset(code) => NetError::StreamReset {
                code: code.into_inner(),
            },
            E::ConnectionLost(err) => NetError::connection(err),
            E::ClosedStream => NetError::StreamClosed,
            // Only ordered reads are issued and 0-RTT is never used.
            err @ (E::IllegalOrderedRead | E::ZeroRttRejected) => NetError::ConnectionLost {
                reason: err.to_string(),
            },
        }
    }

    pub(crate) fn write(err: quinn::WriteError) -> Self {
        use quinn::WriteError as E;
        match err {
            E::Stopped(code) => NetError::StreamStopped {
                code: code.into_inner(),
            },
            E::ConnectionLost(err) => NetError::connection(err),
            E::ClosedStream => NetError::StreamClosed,
            err @ E::ZeroRttRejected => NetError::ConnectionLost {
                reason: err.to_string(),
            },
        }
    }

    pub(crate) fn tls(err: impl std::fmt::Display) -> Self {
        NetError::Tls {
            reason: err.to_string(),
        }
    }
}
