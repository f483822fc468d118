//! The connecting side's handshake, shared by clients and engines: connect
//! with the pinned fingerprint, open the stream, present the token in a
//! [`Hello`], and read the controller's [`Welcome`].

use std::time::Duration;

use quinn::{Connection, Endpoint};
use wasp_proto::msg::{Hello, PROTOCOL_VERSION, Role, Welcome};
use wasp_proto::{EngineId, Tenant};

use crate::connfile::ConnectionFile;
use crate::endpoint::{client_endpoint, connect};
use crate::error::NetError;
use crate::framed::{FramedRecv, FramedSend, open_bi, with_deadline};
use crate::same_host::SameHost;

/// How long the controller has to answer a Hello.
const WELCOME_DEADLINE: Duration = Duration::from_secs(10);

/// An authenticated connection to a controller.
pub struct Session {
    /// The local endpoint; keep it alive as long as the connection.
    pub endpoint: Endpoint,
    /// The connection.
    pub connection: Connection,
    /// Frames to the controller.
    pub send: FramedSend,
    /// Frames from the controller.
    pub recv: FramedRecv,
    /// The tenant the token maps to.
    pub tenant: Tenant,
    /// A client's session number.
    pub session: u32,
    /// An engine connection's assigned ids, one per slot in slot order;
    /// empty for a client.
    pub engines: Vec<EngineId>,
}

/// Connects to the controller in `file` as `role` and authenticates.
///
/// A wrong fingerprint fails in the TLS handshake
/// ([`NetError::FingerprintMismatch`]); a wrong token or protocol version
/// with the controller's reason ([`NetError::Rejected`]).
pub async fn dial(file: &ConnectionFile, role: Role) -> Result<Session, NetError> {
    let endpoint = client_endpoint()?;
    let connection = connect(&endpoint, file.address, &file.fingerprint).await?;
    let (mut send, mut recv) = open_bi(&connection).await?;
    let same_host = match &file.same_host {
        Some(name) => match SameHost::connect(name).await {
            Ok(reached) => Some(reached),
            Err(err) => {
                // Another host, or another network namespace: QUIC it is.
                tracing::debug!(cause = %err, "no same-host channel");
                None
            }
        },
        None => None,
    };
    let (same_host, ticket) = same_host.unzip();
    send.send(&Hello {
        version: PROTOCOL_VERSION,
        token: file.token.clone(),
        role,
        same_host_ticket: ticket,
    })
    .await?;
    let welcome: Option<Welcome> =
        with_deadline(WELCOME_DEADLINE, "the controller's welcome", recv.recv()).await?;
    match welcome {
        Some(Welcome::Accepted {
            tenant,
            session,
            engines,
            same_host: bound,
        }) => {
            if bound && let Some(channel) = same_host {
                let channel = std::sync::Arc::new(channel);
                send.attach_same_host(channel.clone());
                recv.attach_same_host(channel);
            }
            Ok(Session {
                endpoint,
                connection,
                send,
                recv,
                tenant,
                session,
                engines,
            })
        }
        Some(Welcome::Refused { reason }) => {
            connection.close(0u32.into(), b"refused");
            Err(NetError::Rejected { reason })
        }
        None => Err(NetError::Rejected {
            reason: "the controller closed the stream without answering".into(),
        }),
    }
}
