//! Certificates and TLS configuration: a controller serves a self-signed
//! certificate, and clients and engines pin it by its sha256 fingerprint
//! (from the connection file) instead of trusting any CA or host name.
//!
//! Everything here is TLS 1.3 only, speaks ALPN [`ALPN`], and uses rustls'
//! *ring* provider, passed explicitly to each configuration rather than
//! installed process-wide, so no other crate's choice of provider can change
//! (or panic) wasp's.

use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::NetError;

/// The ALPN protocol id of wasp's wire protocol; bump it with incompatible
/// changes so that mismatched peers fail the handshake with a clear error.
pub const ALPN: &[u8] = b"wasp/1";

/// The one crypto provider wasp uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: LazyLock<Arc<CryptoProvider>> =
        LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));
    PROVIDER.clone()
}

/// The lowercase hex sha256 of a DER certificate (64 characters): what a
/// connection file pins.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex::encode(Sha256::digest(cert_der))
}

/// Checks that `text` is a sha256 fingerprint (64 hex digits, either case)
/// and returns it in lowercase.
pub fn parse_fingerprint(text: &str) -> Result<String, NetError> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(NetError::BadFingerprint {
            fingerprint: text.to_owned(),
        })
    }
}

/// A self-signed certificate and its private key, both DER.
///
/// `Debug` shows the fingerprint, never the key.
pub struct SelfSignedCert {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl SelfSignedCert {
    /// Generates a fresh ECDSA P-256 certificate for the given names (DNS
    /// names or IP addresses). Clients ignore the names, since they pin the
    /// fingerprint, but they make the certificate recognizable.
    pub fn generate(subject_alt_names: impl Into<Vec<String>>) -> Result<Self, NetError> {
        let certified = rcgen::generate_simple_self_signed(subject_alt_names)
            .map_err(|err| NetError::tls(format!("cannot generate a certificate: {err}")))?;
        Ok(SelfSignedCert {
            cert: certified.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
        })
    }

    /// Reassembles a certificate saved with [`cert_der`](Self::cert_der) and
    /// [`key_der`](Self::key_der). The key is PKCS#8; the pair is checked
    /// when an endpoint is built from it.
    pub fn from_der(cert_der: Vec<u8>, key_der: Vec<u8>) -> Self {
        SelfSignedCert {
            cert: CertificateDer::from(cert_der),
            key: PrivatePkcs8KeyDer::from(key_der),
        }
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert
    }

    /// The private key, PKCS#8 DER. Keep it out of logs and files others
    /// can read.
    pub fn key_der(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    /// The certificate's sha256 fingerprint, see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }
}

impl Clone for SelfSignedCert {
    fn clone(&self) -> Self {
        SelfSignedCert {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for SelfSignedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfSignedCert")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The server side: TLS 1.3, ALPN `wasp/1`, no client certificates (clients
/// authenticate with the token instead), and no session tickets, so there is
/// neither resumption nor 0-RTT: every handshake presents the certificate.
pub(crate) fn server_config(cert: &SelfSignedCert) -> Result<rustls::ServerConfig, NetError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(NetError::tls)?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.clone()],
            PrivateKeyDer::Pkcs8(cert.key.clone_key()),
        )
        .map_err(|err| NetError::tls(format!("certificate or key rejected: {err}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // 0 (not u32::MAX) is what tells quinn the server takes no 0-RTT data.
    config.max_early_data_size = 0;
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The client side: TLS 1.3, ALPN `wasp/1`, the pinned-certificate
/// verifier, and no resumption or early data.
pub(crate) fn client_config(
    verifier: Arc<PinnedCertVerifier>,
) -> Result<rustls::ClientConfig, NetError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(NetError::tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// Accepts exactly the server certificate whose sha256 is the pinned
/// fingerprint, ignoring names, issuers, validity dates and chains: the pin
/// is the trust. Handshake signatures are still verified, so the server must
/// hold the certificate's private key.
#[derive(Debug)]
pub(crate) struct PinnedCertVerifier {
    pinned: String,
    /// The fingerprint of a rejected certificate, for the caller's error.
    mismatch: OnceLock<String>,
}

impl PinnedCertVerifier {
    /// `pinned` must already be normalized by [`parse_fingerprint`].
    pub(crate) fn new(pinned: String) -> Self {
        PinnedCertVerifier {
            pinned,
            mismatch: OnceLock::new(),
        }
    }

    /// The fingerprint of the certificate this verifier rejected, if any.
    pub(crate) fn mismatch(&self) -> Option<&str> {
        self.mismatch.get().map(String::as_str)
    }

    pub(crate) fn pinned(&self) -> &str {
        &self.pinned
    }
}

/// The rustls error for a certificate that is not the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("certificate fingerprint mismatch: expected {expected}, got {actual}")]
struct FingerprintMismatch {
    expected: String,
    actual: String,
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = fingerprint(end_entity);
        if actual == self.pinned {
            return Ok(ServerCertVerified::assertion());
        }
        let _ = self.mismatch.set(actual.clone());
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Other(rustls::OtherError(Arc::new(FingerprintMismatch {
                expected: self.pinned.clone(),
                actual,
            }))),
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the config offers TLS 1.3 only. Refuse regardless.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_lowercase_sha256_hex() {
        let fp = fingerprint(b"abc");
        assert_eq!(
            fp,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let cert = SelfSignedCert::generate(vec!["localhost".to_owned()]).expect("generates");
        let fp = cert.fingerprint();
        assert_eq!(fp.len(), 64);
        assert_eq!(fp, fp.to_ascii_lowercase());
        assert_eq!(fp, fingerprint(cert.cert_der()));
        // Debug shows the fingerprint and nothing of the key.
        let debug = format!("{cert:?}");
        assert!(debug.contains(&fp), "{debug}");
        assert!(!debug.contains("key"), "{debug}");
    }

    #[test]
    fn certificate_survives_der_round_trip() {
        let cert = SelfSignedCert::generate(vec!["localhost".to_owned()]).expect("generates");
        let back = SelfSignedCert::from_der(cert.cert_der().to_vec(), cert.key_der().to_vec());
        assert_eq!(back.fingerprint(), cert.fingerprint());
        server_config(&back).expect("the pair still matches");
    }

    #[test]
    fn parse_fingerprint_normalizes_and_refuses() {
        let upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert_eq!(
            parse_fingerprint(upper).expect("valid"),
            upper.to_ascii_lowercase()
        );
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            let err = parse_fingerprint(bad).expect_err("invalid");
            assert!(err.to_string().contains("64 hex digits"), "{err}");
        }
    }

    #[test]
    fn mismatched_keys_are_refused() {
        let a = SelfSignedCert::generate(vec!["a".to_owned()]).expect("generates");
        let b = SelfSignedCert::generate(vec!["b".to_owned()]).expect("generates");
        let mixed = SelfSignedCert::from_der(a.cert_der().to_vec(), b.key_der().to_vec());
        let err = server_config(&mixed).expect_err("key does not match");
        assert!(matches!(err, NetError::Tls { .. }), "{err:?}");
    }
}
