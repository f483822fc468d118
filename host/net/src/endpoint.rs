//! QUIC endpoints with wasp's transport settings, the client's pinned
//! connect, and the server's connection cap.
//!
//! The settings, and what they bound:
//!
//! - **No 0-RTT.** The server's TLS config sets `max_early_data_size = 0`
//!   and issues no session tickets, the client disables resumption and early
//!   data, and nothing here calls `Connecting::into_0rtt`: a server acts on
//!   nothing before the handshake has completed. Callers must not call
//!   `into_0rtt` either.
//! - **Receive windows**: [`STREAM_RECEIVE_WINDOW`] per stream and
//!   [`RECEIVE_WINDOW`] per connection. A peer can make this side buffer at
//!   most the connection window of unread data, whatever the frame cap;
//!   frames larger than a window still flow, as the reader drains it. What
//!   the reader keeps of a frame is bounded by the frame cap instead
//!   ([`crate::framed`]).
//! - **Streams**: at most [`MAX_STREAMS`] concurrent streams of each kind
//!   per connection.
//! - **Liveness**: both sides send a keep-alive every [`KEEP_ALIVE`], and a
//!   connection that hears nothing for [`IDLE_TIMEOUT`] fails (its streams
//!   return [`NetError::ConnectionLost`]), so a dead peer is noticed within
//!   it. The idle timeout also bounds a handshake that stalls.
//! - **Connections**: [`ConnectionLimiter`] caps the connections a server
//!   holds; beyond it, incoming connections are refused before their
//!   handshake, which is cheap for the server.
//!
//! Not bounded here: how long a peer may take to authenticate once
//! connected (use [`crate::with_deadline`] on the first frame), and the
//! queue of not-yet-accepted incoming connections (quinn's `max_incoming`,
//! 65536 by default, each a few kilobytes).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, Incoming, TransportConfig, VarInt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::NetError;
use crate::tls::{self, PinnedCertVerifier, SelfSignedCert};

/// The receive window of one stream: 8 MiB, enough to keep a fast loopback
/// or LAN link busy without letting one stream hold a frame-cap's worth.
pub const STREAM_RECEIVE_WINDOW: u32 = 8 * 1024 * 1024;

/// The receive window of one connection, across its streams: 16 MiB.
pub const RECEIVE_WINDOW: u32 = 16 * 1024 * 1024;

/// Concurrent bidirectional (and, separately, unidirectional) streams a
/// peer may open on one connection.
pub const MAX_STREAMS: u32 = 64;

/// How often each side pings an otherwise quiet connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How long a connection may hear nothing before it is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The TLS server name clients send. Certificates are pinned by
/// fingerprint, so it only has to be a valid DNS name.
const SERVER_NAME: &str = "wasp";

fn transport_config() -> Arc<TransportConfig> {
    let mut transport = TransportConfig::default();
    transport
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(RECEIVE_WINDOW))
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS))
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_STREAMS))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE_TIMEOUT).expect("30 s is a valid idle timeout"),
        ));
    Arc::new(transport)
}

/// Binds a server endpoint serving `cert`. Accept connections with
/// [`Endpoint::accept`], admit them through a [`ConnectionLimiter`], and
/// complete each handshake by awaiting `Incoming::accept()`'s result.
///
/// Must be called inside a tokio runtime.
pub fn server_endpoint(bind: SocketAddr, cert: &SelfSignedCert) -> Result<Endpoint, NetError> {
    let tls = tls::server_config(cert)?;
    let crypto = QuicServerConfig::try_from(tls).map_err(NetError::tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    Endpoint::server(config, bind).map_err(|source| NetError::Bind { addr: bind, source })
}

/// Binds a client endpoint on an OS-chosen port: dual-stack `[::]:0` where
/// the OS allows it, else `0.0.0.0:0` (IPv4 only). One endpoint can hold
/// many connections; [`connect`] gives each its own pinned certificate.
///
/// Must be called inside a tokio runtime.
pub fn client_endpoint() -> Result<Endpoint, NetError> {
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    Endpoint::client(v6).or_else(|_| {
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        Endpoint::client(v4).map_err(|source| NetError::Bind { addr: v4, source })
    })
}

/// Connects to the server at `addr`, accepting only the certificate whose
/// sha256 is `fingerprint`, and completes the handshake.
///
/// A server with another certificate fails with
/// [`NetError::FingerprintMismatch`]; one at its connection cap with
/// [`NetError::Refused`]; an unreachable one with [`NetError::Connect`]
/// after the [`IDLE_TIMEOUT`].
pub async fn connect(
    endpoint: &Endpoint,
    addr: SocketAddr,
    fingerprint: &str,
) -> Result<Connection, NetError> {
    let verifier = Arc::new(PinnedCertVerifier::new(tls::parse_fingerprint(
        fingerprint,
    )?));
    let tls = tls::client_config(verifier.clone())?;
    let crypto = QuicClientConfig::try_from(tls).map_err(NetError::tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config());

    let connecting = endpoint
        .connect_with(config, addr, SERVER_NAME)
        .map_err(|err| NetError::Connect {
            addr,
            reason: err.to_string(),
        })?;
    connecting.await.map_err(|err| {
        if let Some(actual) = verifier.mismatch() {
            return NetError::FingerprintMismatch {
                addr,
                expected: verifier.pinned().to_owned(),
                actual: actual.to_owned(),
            };
        }
        match err {
            quinn::ConnectionError::ConnectionClosed(close)
                if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
            {
                NetError::Refused { addr }
            }
            err => NetError::Connect {
                addr,
                reason: err.to_string(),
            },
        }
    })
}

/// Caps the connections a server holds at once.
///
/// ```no_run
/// # async fn serve(endpoint: quinn::Endpoint) {
/// let limiter = wasp_net::ConnectionLimiter::new(1024);
/// while let Some(incoming) = endpoint.accept().await {
///     // Over the cap, `admit` refuses the connection and returns None.
///     let Some((incoming, permit)) = limiter.admit(incoming) else { continue };
///     tokio::spawn(async move {
///         let _permit = permit; // held for as long as the connection is
///         let Ok(connecting) = incoming.accept() else { return };
///         let Ok(connection) = connecting.await else { return };
///         // ... read the token within a deadline, then serve
///         # drop(connection);
///     });
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionLimiter {
    permits: Arc<Semaphore>,
    cap: usize,
}

/// A connection's place under a [`ConnectionLimiter`]'s cap, given back when
/// dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    _permit: OwnedSemaphorePermit,
}

impl ConnectionLimiter {
    /// A limiter admitting at most `cap` connections at once.
    pub fn new(cap: usize) -> Self {
        ConnectionLimiter {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Connections that may still be admitted.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Admits `incoming` with a permit to hold for the connection's life, or,
    /// at the cap, refuses it (the client sees [`NetError::Refused`]) and
    /// returns `None`.
    pub fn admit(&self, incoming: Incoming) -> Option<(Incoming, ConnectionPermit)> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some((incoming, ConnectionPermit { _permit: permit })),
            Err(_) => {
                tracing::warn!(
                    remote = %incoming.remote_address(),
                    cap = self.cap,
                    "refusing connection: at the connection cap"
                );
                incoming.refuse();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{localhost, server};

    #[tokio::test]
    async fn wrong_fingerprint_is_refused_with_both_fingerprints() {
        let (endpoint, cert) = server();
        let addr = endpoint.local_addr().expect("bound");
        let accepting = tokio::spawn(async move {
            if let Some(incoming) = endpoint.accept().await {
                // The handshake fails on the client's side.
                let _ = incoming.await;
            }
        });
        let other = SelfSignedCert::generate(localhost()).expect("generates");

        let client = client_endpoint().expect("binds");
        let err = connect(&client, addr, &other.fingerprint())
            .await
            .expect_err("another certificate");
        let text = err.to_string();
        assert!(text.contains("certificate fingerprint mismatch"), "{text}");
        assert!(text.contains(&other.fingerprint()), "{text}");
        assert!(text.contains(&cert.fingerprint()), "{text}");
        assert!(
            matches!(err, NetError::FingerprintMismatch { .. }),
            "{err:?}"
        );
        accepting.await.expect("server task");
    }

    #[tokio::test]
    async fn malformed_fingerprint_is_refused_before_connecting() {
        let client = client_endpoint().expect("binds");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
        let err = connect(&client, addr, "not-a-fingerprint")
            .await
            .expect_err("malformed");
        assert!(matches!(err, NetError::BadFingerprint { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_refused() {
        let (endpoint, cert) = server();
        let addr = endpoint.local_addr().expect("bound");
        let limiter = ConnectionLimiter::new(2);
        let server_limiter = limiter.clone();
        let serving = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(incoming) = endpoint.accept().await {
                if let Some((incoming, permit)) = server_limiter.admit(incoming) {
                    let connection = incoming.await.expect("handshake");
                    held.push((connection, permit));
                }
            }
            held
        });

        let client = client_endpoint().expect("binds");
        let first = connect(&client, addr, &cert.fingerprint())
            .await
            .expect("first");
        let second = connect(&client, addr, &cert.fingerprint())
            .await
            .expect("second");
        // Refused at once, not left to time out: the error says so.
        let err = connect(&client, addr, &cert.fingerprint())
            .await
            .expect_err("over the cap");
        assert!(matches!(err, NetError::Refused { .. }), "{err:?}");
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(limiter.available(), 0);

        // Closing one frees its place once the server drops it; here the
        // server holds connections until its endpoint stops, so stop it.
        first.close(VarInt::from_u32(0), b"done");
        second.close(VarInt::from_u32(0), b"done");
        client.wait_idle().await;
        serving.abort();
        let _ = serving.await;
        assert_eq!(limiter.available(), 2);
    }
}
