//! wasp's QUIC glue, shared by the controller, the engines and the clients:
//! endpoints with bounded windows and no 0-RTT, self-signed certificates
//! pinned by fingerprint, connection files, and streams of length-prefixed
//! messages.
//!
//! A controller generates a [`SelfSignedCert`], serves it with
//! [`server_endpoint`], admits connections through a [`ConnectionLimiter`]
//! and writes a [`ConnectionFile`] (address, fingerprint, token) into its
//! [`Profile`]. A client or engine reads that file, opens a
//! [`client_endpoint`] and [`connect`]s, which succeeds only if the server
//! holds the pinned certificate. Both sides then talk through
//! [`FramedSend`] and [`FramedRecv`], whose frames are encoded by
//! [`wasp_proto::codec`] and capped before anything is allocated.
//!
//! # Layout
//! - [`tls`]: [`SelfSignedCert`], [`fingerprint`], and the rustls
//!   configurations with the pinned-certificate verifier.
//! - [`endpoint`]: [`server_endpoint`], [`client_endpoint`], [`connect`],
//!   the transport limits, and [`ConnectionLimiter`].
//! - [`framed`]: [`FramedSend`], [`FramedRecv`], [`open_bi`], [`accept_bi`],
//!   [`with_deadline`].
//! - [`dial`](mod@dial): the connecting side's handshake, [`dial()`] to a
//!   [`Session`].
//! - [`same_host`]: the same-host channel, on which big values travel as
//!   sealed memory files the receiver maps ([`SameHost`],
//!   [`SameHostListener`]).
//! - [`connfile`]: [`ConnectionFile`] and [`Profile`].
//! - [`error`]: [`NetError`], every failure with the address, file or
//!   limit involved.
//! - [`wakeups`]: a short time slice for the threads that carry
//!   messages, so that they run promptly beside computing engines.
//! - [`backoff`]: when to try again and when to give up (sans-IO), for
//!   engines and clients reconnecting and the cluster supervisor's restarts.

#![warn(missing_docs)]

pub mod backoff;
pub mod connfile;
pub mod dial;
pub mod endpoint;
pub mod error;
pub mod framed;
pub mod same_host;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod wakeups;

pub use connfile::{ConnectionFile, Profile};

/// The reason a controller gives when it closes its endpoint on purpose,
/// as it stops. Its peers take it as the end they were told of (an engine
/// does not reconnect; a client that asked for the stop has its answer),
/// not as a loss.
pub const CONTROLLER_STOPPING: &str = "controller shutting down";
pub use dial::{Session, dial};
pub use endpoint::{
    ConnectionLimiter, ConnectionPermit, client_endpoint, connect, server_endpoint,
};
pub use error::NetError;
pub use framed::{FramedRecv, FramedSend, accept_bi, open_bi, with_deadline};
pub use same_host::{SameHost, SameHostListener};
pub use tls::{ALPN, SelfSignedCert, fingerprint, parse_fingerprint};

// Re-exported so users need not depend on quinn's exact version themselves.
pub use quinn;
