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
        ))
        // BBR, not quinn's default Cubic: Cubic halves its window at every
        // loss, and on a link that drops 5% and reorders (tests/multi_host.rs)
        // it held a 10,000-item map to 32 s against BBR's 6 s. On loopback,
        // where nothing is lost, the suite measured no difference.
        .congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    Arc::new(transport)
}

/// The endpoint configuration of a server: its stateless reset key and
/// the key its connection ids are signed with, both derived from its
/// certificate's private key (HKDF-SHA256), so that they are secret and
/// the same across restarts.
///
/// Why: a controller killed with `kill -9` and started again on the same
/// profile (same port, same certificate) knows nothing of its old
/// connections. With quinn's defaults, random keys per endpoint, it drops
/// their peers' packets as carrying connection ids it did not issue, and
/// the resets it would send carry tokens they do not recognize, so engines
/// and clients would wait for the [`IDLE_TIMEOUT`] (30 s) to learn that
/// their connection is gone. With the same keys, the first packet a peer
/// sends (an engine's heartbeat, every second) is answered with a
/// stateless reset it accepts, and it reconnects at once.
fn server_endpoint_config(cert: &SelfSignedCert) -> Result<quinn::EndpointConfig, NetError> {
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"wasp quic endpoint keys");
    let prk = salt.extract(cert.key_der());
    // Fails only past HKDF's output limit (255 hashes); these are 1 each.
    let derive_failed = |_| NetError::tls("cannot derive the endpoint keys");
    let reset_key = ring::hmac::Key::from(
        prk.expand(&[b"stateless reset"], ring::hmac::HMAC_SHA256)
            .map_err(derive_failed)?,
    );
    let mut cid_key = [0u8; 8];
    prk.expand(&[b"connection ids"], CidKeyLen)
        .and_then(|okm| okm.fill(&mut cid_key))
        .map_err(derive_failed)?;
    let cid_key = u64::from_le_bytes(cid_key);
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    Ok(config)
}

/// The length of the connection id key, for HKDF's `expand`.
struct CidKeyLen;

impl ring::hkdf::KeyType for CidKeyLen {
    fn len(&self) -> usize {
        8
    }
}

/// Binds a server endpoint serving `cert`. Accept connections with
/// [`Endpoint::accept`], admit them through a [`ConnectionLimiter`], and
/// complete each handshake by awaiting `Incoming::accept()`'s result.
/// Its connection ids and stateless resets are signed with keys derived
/// from `cert`'s ([`server_endpoint_config`]), so a restarted server's
/// resets are honoured by the peers of the one before.
///
/// Must be called inside a tokio runtime.
pub fn server_endpoint(bind: SocketAddr, cert: &SelfSignedCert) -> Result<Endpoint, NetError> {
    let tls = tls::server_config(cert)?;
    let crypto = QuicServerConfig::try_from(tls).map_err(NetError::tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    let endpoint_config = server_endpoint_config(cert)?;
    let bind_error = |source| NetError::Bind { addr: bind, source };
    let socket = std::net::UdpSocket::bind(bind).map_err(bind_error)?;
    Endpoint::new(
        endpoint_config,
        Some(config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(bind_error)
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

    /// A server that dies without a word (its runtime dropped, as `kill -9`
    /// would) and comes back on the same port with the same certificate
    /// resets its predecessor's connections on their next packet: the
    /// client's connection ends `Reset`, not after the 30 s idle timeout
    /// (`TimedOut`), which is what quinn's default random reset key gave.
    #[test]
    fn a_restarted_server_resets_its_predecessors_connections() {
        let cert = SelfSignedCert::generate(localhost()).expect("generates");
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));

        // The first server, on a runtime of its own that is then dropped:
        // no CONNECTION_CLOSE is sent, the socket simply goes away.
        let first = tokio::runtime::Runtime::new().expect("runtime");
        let (addr, accepted) = first.block_on(async {
            let endpoint = server_endpoint(bind, &cert).expect("binds");
            let addr = endpoint.local_addr().expect("bound");
            let accepted = tokio::spawn(async move {
                let connection = endpoint.accept().await?.await.ok()?;
                // Held until the runtime dies.
                std::future::pending::<()>().await;
                Some((endpoint, connection))
            });
            (addr, accepted)
        });

        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let client = runtime.block_on(async {
            let client = client_endpoint().expect("binds");
            let connection = connect(&client, addr, &cert.fingerprint())
                .await
                .expect("connects");
            (client, connection)
        });
        drop(accepted);
        first.shutdown_background();

        let closed = runtime.block_on(async {
            // The dead runtime's threads drop its socket in the background:
            // the port is free once they have (seen busy on a loaded
            // machine), so the bind is retried until then.
            let mut tries = 0;
            let second = loop {
                match server_endpoint(addr, &cert) {
                    Ok(endpoint) => break endpoint,
                    Err(NetError::Bind { source, .. })
                        if source.kind() == std::io::ErrorKind::AddrInUse && tries < 500 =>
                    {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    Err(err) => panic!("the same port again: {err}"),
                }
            };
            let (_client, connection) = client;
            // Anything the client sends reaches the new server, which
            // knows no such connection and answers with a stateless reset
            // (a keep-alive sent while the bind was retried may already
            // have drawn it, before the stream opens).
            let closed = match connection.open_uni().await {
                Ok(mut stream) => {
                    let _ = stream.write_all(b"are you there?").await;
                    connection.closed().await
                }
                Err(already) => already,
            };
            drop(second);
            closed
        });
        assert!(
            matches!(closed, quinn::ConnectionError::Reset),
            "expected a stateless reset, got {closed:?}"
        );
    }
}
