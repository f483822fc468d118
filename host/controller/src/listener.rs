//! Accepting connections: the connection cap, the handshake (token within a
//! deadline, nothing acted on before it), and one task per connection that
//! turns frames into hub events and hub answers into frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use quinn::{Connection, Endpoint};
use tokio::sync::{mpsc, watch};
use wasp_net::{ConnectionLimiter, FramedRecv, FramedSend, NetError, with_deadline};
use wasp_proto::msg::{
    ClientMsg, FromEngine, Hello, PROTOCOL_VERSION, Role, ToClient, ToEngine, Welcome,
};
use wasp_proto::{EngineId, ModuleHash, Tenant};

use crate::config::{ControllerConfig, TenantsFile};
use crate::hub::Event;

/// A Hello is small; a peer that announces more before authenticating is
/// refused without reading it.
const HELLO_CAP: usize = 1 << 20;

/// Most messages written in one frame.
const MAX_BATCH: usize = 256;

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) config: ControllerConfig,
    pub(crate) tenants: TenantsFile,
    pub(crate) hub: mpsc::UnboundedSender<Event>,
    next_session: AtomicU32,
    next_engine: AtomicU32,
}

impl Shared {
    pub(crate) fn new(
        config: ControllerConfig,
        tenants: TenantsFile,
        hub: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Self {
            config,
            tenants,
            hub,
            next_session: AtomicU32::new(1),
            next_engine: AtomicU32::new(0),
        }
    }
}

/// Accepts connections until shutdown.
pub(crate) async fn serve(
    endpoint: Endpoint,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limiter = ConnectionLimiter::new(shared.config.max_connections);
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = shutdown.changed() => break,
        };
        let Some(incoming) = incoming else { break };
        let Some((incoming, permit)) = limiter.admit(incoming) else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let remote = incoming.remote_address();
            let connection = match incoming.accept() {
                Ok(connecting) => connecting.await,
                Err(err) => Err(err),
            };
            match connection {
                Ok(connection) => {
                    if let Err(err) = handle(connection, &shared).await {
                        tracing::info!(%remote, cause = %err, "connection ended");
                    }
                }
                Err(err) => tracing::info!(%remote, cause = %err, "handshake failed"),
            }
        });
    }
    endpoint.close(0u32.into(), b"controller shutting down");
}

/// Authenticates a connection and serves it by role.
async fn handle(connection: Connection, shared: &Shared) -> Result<(), NetError> {
    let deadline = shared.config.handshake_deadline;
    let (mut send, recv) = with_deadline(
        deadline,
        "opening the first stream",
        wasp_net::accept_bi(&connection),
    )
    .await?;
    let mut recv = FramedRecv::with_cap(recv.into_inner(), HELLO_CAP);
    let hello: Option<Hello> = with_deadline(deadline, "presenting the token", recv.recv()).await?;
    let Some(hello) = hello else {
        return Ok(());
    };
    let frame_cap = shared.config.max_module_bytes + (1 << 20);
    let recv = FramedRecv::with_cap(recv.into_inner(), frame_cap);
    if hello.version != PROTOCOL_VERSION {
        let reason = format!(
            "protocol version {} is not supported: this controller speaks version {PROTOCOL_VERSION}",
            hello.version
        );
        return refuse(&connection, send, reason).await;
    }
    match hello.role {
        Role::Client => {
            let Some((tenant, admin)) = shared.tenants.tenant_of(&hello.token) else {
                return refuse(
                    &connection,
                    send,
                    "invalid token: it matches no tenant of this controller".into(),
                )
                .await;
            };
            let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
            send.send(&Welcome::Accepted {
                tenant: tenant.clone(),
                session,
                engine: None,
            })
            .await?;
            tracing::info!(session, %tenant, remote = %connection.remote_address(), "client connected");
            serve_client(session, tenant, admin, send, recv, shared).await
        }
        Role::Engine(engine_hello) => {
            if !shared.tenants.is_engine_token(&hello.token) {
                return refuse(&connection, send, "invalid engine token".into()).await;
            }
            let engine = EngineId(shared.next_engine.fetch_add(1, Ordering::Relaxed));
            send.send(&Welcome::Accepted {
                tenant: Tenant("engines".into()),
                session: 0,
                engine: Some(engine),
            })
            .await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = shared.hub.send(Event::EngineJoined {
                engine,
                name: engine_hello.name,
                cached: engine_hello.cached,
                tx,
            });
            let result = serve_engine(engine, send, recv, rx, shared).await;
            let _ = shared.hub.send(Event::EngineLeft { engine });
            result
        }
    }
}

/// Tells the peer why it is refused, gives it a moment to read that, and
/// closes the connection.
async fn refuse(
    connection: &Connection,
    mut send: FramedSend,
    reason: String,
) -> Result<(), NetError> {
    tracing::warn!(remote = %connection.remote_address(), %reason, "refusing connection");
    send.send(&Welcome::Refused {
        reason: reason.clone(),
    })
    .await?;
    let _ = send.finish();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), connection.closed()).await;
    connection.close(1u32.into(), reason.as_bytes());
    Ok(())
}

async fn serve_client(
    session: u32,
    tenant: Tenant,
    admin: bool,
    send: FramedSend,
    mut recv: FramedRecv,
    shared: &Shared,
) -> Result<(), NetError> {
    let (tx, rx) = mpsc::unbounded_channel::<ToClient>();
    let writer = tokio::spawn(write_batches(send, rx));
    let _ = shared.hub.send(Event::ClientJoined {
        session,
        tenant,
        admin,
        tx: tx.clone(),
    });
    let result = async {
        while let Some(batch) = recv.recv::<Vec<ClientMsg>>().await? {
            let mut msgs = Vec::with_capacity(batch.len());
            for msg in batch {
                match msg {
                    // Hash here, not in the hub: a large module must not
                    // stall everyone else's events.
                    ClientMsg::Upload(bytes) => {
                        if bytes.len() > shared.config.max_module_bytes {
                            let _ = tx.send(ToClient::Error(format!(
                                "module is {} bytes, over the controller's module size limit of {} bytes",
                                bytes.len(),
                                shared.config.max_module_bytes
                            )));
                            continue;
                        }
                        // Off the async thread: hashing tens of MB would
                        // hold up every connection and the hub.
                        let Ok((hash, bytes)) =
                            tokio::task::spawn_blocking(move || (ModuleHash::of(&bytes), bytes))
                                .await
                        else {
                            continue;
                        };
                        flush(shared, session, &mut msgs);
                        let _ = shared.hub.send(Event::Upload {
                            session,
                            hash,
                            bytes: Arc::new(bytes),
                        });
                    }
                    other => msgs.push(other),
                }
            }
            flush(shared, session, &mut msgs);
        }
        Ok(())
    }
    .await;
    // A frame over the cap is a module over the size limit: say so (the
    // reply pairs with the upload) before the connection closes.
    if let Err(NetError::Codec(wasp_proto::codec::CodecError::FrameTooLarge { len, .. })) = &result
    {
        let _ = tx.send(ToClient::Error(format!(
            "a message of {len} bytes is over the controller's module size limit of {} bytes \
             (wasp controller --max-module-size)",
            shared.config.max_module_bytes
        )));
    }
    let _ = shared.hub.send(Event::ClientLeft { session });
    drop(tx);
    if result.is_err() {
        // Let the writer deliver what is queued; the hub drops its sender
        // when it sees ClientLeft.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer).await;
    } else {
        writer.abort();
    }
    result
}

fn flush(shared: &Shared, session: u32, msgs: &mut Vec<ClientMsg>) {
    if !msgs.is_empty() {
        let _ = shared.hub.send(Event::ClientMsgs {
            session,
            msgs: std::mem::take(msgs),
        });
    }
}

async fn serve_engine(
    engine: EngineId,
    send: FramedSend,
    mut recv: FramedRecv,
    rx: mpsc::UnboundedReceiver<ToEngine>,
    shared: &Shared,
) -> Result<(), NetError> {
    let writer = tokio::spawn(write_batches(send, rx));
    let result = async {
        while let Some(msgs) = recv.recv::<Vec<FromEngine>>().await? {
            let _ = shared.hub.send(Event::EngineMsgs { engine, msgs });
        }
        Ok(())
    }
    .await;
    writer.abort();
    result
}

/// Writes what the hub sends, many messages to a frame.
async fn write_batches<T: serde::Serialize>(
    mut send: FramedSend,
    mut rx: mpsc::UnboundedReceiver<T>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if let Err(err) = send.send(&batch).await {
            tracing::info!(cause = %err, "could not write to a peer");
            return;
        }
        batch.clear();
    }
}
