//! Helpers for this crate's tests: a real server endpoint on loopback.

use std::net::{Ipv4Addr, SocketAddr};

use crate::endpoint::server_endpoint;
use crate::tls::SelfSignedCert;

pub(crate) fn localhost() -> Vec<String> {
    vec!["localhost".to_owned()]
}

/// A server endpoint on 127.0.0.1 with a fresh certificate.
pub(crate) fn server() -> (quinn::Endpoint, SelfSignedCert) {
    let cert = SelfSignedCert::generate(localhost()).expect("generates");
    let endpoint =
        server_endpoint(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), &cert).expect("binds");
    (endpoint, cert)
}
