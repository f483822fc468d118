//! Accepting connections: the connection cap, the handshake (token within a
//! deadline, nothing acted on before it), and one task per connection that
//! turns frames into hub events and hub answers into frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use quinn::{Connection, Endpoint};
use tokio::sync::{mpsc, watch};
use wasp_net::{
    ConnectionLimiter, FramedRecv, FramedSend, NetError, SameHost, SameHostListener, with_deadline,
};
use wasp_proto::msg::{
    Answer, ClientMsg, FromEngine, Hello, MAX_SLOTS, PROTOCOL_VERSION, Request, Role, Slotted,
    ToClient, ToEngine, Welcome,
};
use wasp_proto::{EngineId, ModuleHash, Tenant};

use crate::config::ControllerConfig;
use crate::hub::{CloseConnection, Event, Inbound};
use crate::outbox::{
    CLIENT_QUEUE_BYTES, CLIENT_REQUESTS_IN_FLIGHT, HUB_INBOX_BYTES, Inbox, OutboxRx, Weigh, outbox,
};
use crate::tenants::Registry;

/// A Hello is small; a peer that announces more before authenticating is
/// refused without reading it.
const HELLO_CAP: usize = 1 << 20;

/// Most messages written in one frame.
const MAX_BATCH: usize = 256;

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) config: ControllerConfig,
    pub(crate) tenants: Arc<Registry>,
    /// Bounded: [`HUB_INBOX_EVENTS`] events, and [`HUB_INBOX_BYTES`] of
    /// them by the `inbox` budget; a connection waits (and stops reading
    /// its peer) while the hub is behind.
    hub: mpsc::Sender<Inbound>,
    inbox: Inbox,
    next_session: AtomicU32,
    next_engine: AtomicU32,
    /// The same-host channel's sockets waiting for their `Hello`.
    same_host: Option<Arc<SameHostListener>>,
}

impl Shared {
    pub(crate) fn new(
        config: ControllerConfig,
        tenants: Arc<Registry>,
        hub: mpsc::Sender<Inbound>,
        first_session: u32,
        first_engine: u32,
        same_host: Option<Arc<SameHostListener>>,
    ) -> Self {
        Self {
            config,
            tenants,
            hub,
            inbox: Inbox::new(HUB_INBOX_BYTES),
            // Continue the numbering of earlier runs (from the records):
            // task ids and engine ids are never reused.
            next_session: AtomicU32::new(first_session),
            next_engine: AtomicU32::new(first_engine),
            same_host,
        }
    }

    /// The same-host socket `ticket` was given, if the peer presented one
    /// that is still good.
    fn same_host_of(&self, ticket: Option<&[u8]>) -> Option<Arc<SameHost>> {
        let listener = self.same_host.as_ref()?;
        listener.take(ticket?)
    }

    /// Hands the hub an event, waiting for room for its `weight` bytes.
    pub(crate) async fn to_hub(&self, event: Event, weight: usize) {
        let permit = self.inbox.admit(weight).await;
        // The hub gone means the controller is stopping.
        let _ = self.hub.send(Inbound { event, permit }).await;
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
    endpoint.close(0u32.into(), wasp_net::CONTROLLER_STOPPING.as_bytes());
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
    let mut recv = FramedRecv::with_cap(recv.into_inner(), frame_cap);
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
            let same_host = shared.same_host_of(hello.same_host_ticket.as_deref());
            send.send(&Welcome::Accepted {
                tenant: tenant.clone(),
                session,
                engines: Vec::new(),
                same_host: same_host.is_some(),
            })
            .await?;
            attach(&mut send, &mut recv, same_host);
            tracing::info!(session, %tenant, remote = %connection.remote_address(), "client connected");
            let (close, closed) = tokio::sync::oneshot::channel();
            tokio::select! {
                result = serve_client(session, tenant, admin, close, send, recv, shared) => result,
                // Its tenant was removed: nothing more is read from it,
                // and it learns why as the connection closes.
                Ok(reason) = closed => {
                    connection.close(3u32.into(), reason.as_bytes());
                    shared.to_hub(Event::ClientLeft { session }, 0).await;
                    Ok(())
                }
            }
        }
        Role::Engine(engine_hello) => {
            if !shared.tenants.is_engine_token(&hello.token) {
                return refuse(&connection, send, "invalid engine token".into()).await;
            }
            let slots = engine_hello.slots;
            if !(1..=MAX_SLOTS).contains(&slots) {
                let reason = format!(
                    "an engine process serves 1 to {MAX_SLOTS} engines (wasp engine --slots); \
                     this one asked for {slots}"
                );
                return refuse(&connection, send, reason).await;
            }
            // Ids for every slot, contiguous, never reused.
            let first = shared.next_engine.fetch_add(slots, Ordering::Relaxed);
            let engines: Vec<EngineId> = (0..slots).map(|i| EngineId(first + i)).collect();
            let same_host = shared.same_host_of(hello.same_host_ticket.as_deref());
            send.send(&Welcome::Accepted {
                tenant: Tenant("engines".into()),
                session: 0,
                engines: engines.clone(),
                same_host: same_host.is_some(),
            })
            .await?;
            attach(&mut send, &mut recv, same_host);
            // Unbounded in count and never waited on (the hub must not
            // wait on a peer); what it holds is bounded elsewhere: tasks
            // by the scheduler's hwm and prefetch (their items moved out
            // of the hub's task table, not copied), modules and namespace
            // operations shared (`Arc`) with the hub's own copy, and
            // namespace requests by each client's requests in flight.
            // One for the connection, whatever its slots.
            let (tx, rx, _gate) = outbox();
            let (close, closed) = CloseConnection::new();
            for (slot, &engine) in (0u32..).zip(&engines) {
                let name = if slots == 1 {
                    engine_hello.name.clone()
                } else {
                    format!("{}#{slot}", engine_hello.name)
                };
                shared
                    .to_hub(
                        Event::EngineJoined {
                            engine,
                            group: engines[0],
                            slot,
                            name,
                            cached: engine_hello.cached.clone(),
                            tx: tx.clone(),
                            close: close.clone(),
                        },
                        0,
                    )
                    .await;
            }
            drop((tx, close));
            let result = tokio::select! {
                result = serve_engines(&engines, send, recv, rx, shared) => result,
                () = report_rtt(&connection, &engines, shared) => Ok(()),
                // Declared dead (no heartbeat): nothing more is read from
                // it, and it learns why as the connection closes.
                Ok(reason) = closed => {
                    connection.close(2u32.into(), reason.as_bytes());
                    Ok(())
                }
            };
            // A peer that broke the protocol learns why.
            if let Err(NetError::Protocol(why)) = &result {
                connection.close(4u32.into(), why.as_bytes());
            }
            shared.to_hub(Event::EnginesLeft { engines }, 0).await;
            result
        }
    }
}

/// Moves every frame after the `Welcome`, both ways, through the peer's
/// same-host channel, if it has one.
fn attach(send: &mut FramedSend, recv: &mut FramedRecv, same_host: Option<Arc<SameHost>>) {
    if let Some(channel) = same_host {
        send.attach_same_host(channel.clone());
        recv.attach_same_host(channel);
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
    close: tokio::sync::oneshot::Sender<String>,
    send: FramedSend,
    mut recv: FramedRecv,
    shared: &Shared,
) -> Result<(), NetError> {
    // Results and answers for this client: bounded by the gate, which
    // this reader waits at before each frame while more than
    // CLIENT_QUEUE_BYTES are queued or CLIENT_REQUESTS_IN_FLIGHT requests
    // are unanswered. A client that stops reading its results stops
    // being read; only its own submissions wait.
    let (tx, rx, gate) = outbox::<ToClient>();
    let writer = tokio::spawn(write_batches(send, rx));
    shared
        .to_hub(
            Event::ClientJoined {
                session,
                tenant,
                admin,
                tx: tx.clone(),
                close,
            },
            0,
        )
        .await;
    let result = async {
        loop {
            gate.wait_open(CLIENT_QUEUE_BYTES, CLIENT_REQUESTS_IN_FLIGHT)
                .await;
            let Some(batch) = recv.recv::<Vec<ClientMsg>>().await? else {
                break;
            };
            let requests = batch
                .iter()
                .filter(|m| matches!(m, ClientMsg::Request { .. }))
                .count();
            gate.requests_read(requests);
            let mut msgs = Vec::with_capacity(batch.len());
            for msg in batch {
                match msg {
                    // Hash here, not in the hub: a large module must not
                    // stall everyone else's events.
                    ClientMsg::Request {
                        id,
                        request: Request::Upload(bytes),
                    } => {
                        if bytes.len() > shared.config.max_module_bytes {
                            tx.send(ToClient::Answer {
                                id,
                                answer: Answer::Error(format!(
                                    "module is {} bytes, over the controller's module size limit \
                                     (max_module_size = {} bytes; wasp controller --max-module-size)",
                                    bytes.len(),
                                    shared.config.max_module_bytes
                                )),
                            });
                            continue;
                        }
                        // Off the async thread: hashing tens of MB would
                        // hold up every connection and the hub.
                        let Ok((hash, bytes)) =
                            tokio::task::spawn_blocking(move || (ModuleHash::of(&bytes), bytes))
                                .await
                        else {
                            // Only when the runtime is shutting down; the
                            // request is still answered.
                            tx.send(ToClient::Answer {
                                id,
                                answer: Answer::Error("the controller is shutting down".into()),
                            });
                            continue;
                        };
                        flush(shared, session, &mut msgs).await;
                        let weight = bytes.len();
                        shared
                            .to_hub(
                                Event::Upload {
                                    session,
                                    id,
                                    hash,
                                    bytes: Arc::new(bytes),
                                },
                                weight,
                            )
                            .await;
                    }
                    other => msgs.push(other),
                }
            }
            flush(shared, session, &mut msgs).await;
        }
        Ok(())
    }
    .await;
    // A frame over the cap is a module over the size limit: say so before
    // the connection closes (the frame could not be read far enough to
    // learn which request it held).
    if let Err(NetError::Codec(wasp_proto::codec::CodecError::FrameTooLarge { len, .. })) = &result
    {
        tx.send(ToClient::Closing(format!(
            "a message of {len} bytes is over the controller's module size limit \
             (max_module_size = {} bytes; wasp controller --max-module-size)",
            shared.config.max_module_bytes
        )));
    }
    shared.to_hub(Event::ClientLeft { session }, 0).await;
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

async fn flush(shared: &Shared, session: u32, msgs: &mut Vec<ClientMsg>) {
    if !msgs.is_empty() {
        let msgs = std::mem::take(msgs);
        let weight = msgs.weight();
        shared
            .to_hub(Event::ClientMsgs { session, msgs }, weight)
            .await;
    }
}

/// Serves an engine connection: hands the hub each engine's messages,
/// in order, and writes what the hub sends them.
async fn serve_engines(
    engines: &[EngineId],
    send: FramedSend,
    mut recv: FramedRecv,
    rx: OutboxRx<Slotted<ToEngine>>,
    shared: &Shared,
) -> Result<(), NetError> {
    let writer = tokio::spawn(write_batches(send, rx));
    let result = async {
        while let Some(batch) = recv.recv::<Vec<Slotted<FromEngine>>>().await? {
            // One event per run of messages from the same engine, so a
            // process of one slot costs one event per frame, as before.
            let mut batch = batch.into_iter().peekable();
            while let Some(Slotted { slot, msg }) = batch.next() {
                let engine = slot_engine(engines, slot)?;
                let mut msgs = vec![msg];
                while let Some(next) = batch.next_if(|m| m.slot == slot) {
                    msgs.push(next.msg);
                }
                let weight = msgs.weight();
                shared
                    .to_hub(Event::EngineMsgs { engine, msgs }, weight)
                    .await;
            }
        }
        Ok(())
    }
    .await;
    writer.abort();
    result
}

/// How often an engine connection's round-trip time goes to the hub.
const RTT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Tells the hub the connection's round-trip time, at once and every
/// [`RTT_EVERY`] (the scheduler sizes its engines' prefetch by it); never
/// returns.
async fn report_rtt(connection: &Connection, engines: &[EngineId], shared: &Shared) {
    let mut every = tokio::time::interval(RTT_EVERY);
    let mut told = None;
    loop {
        every.tick().await;
        let rtt = connection.rtt();
        // Small changes change nothing the scheduler decides.
        let moved = told.is_none_or(|told: std::time::Duration| {
            rtt.abs_diff(told) > told / 8 + std::time::Duration::from_micros(50)
        });
        if moved {
            told = Some(rtt);
            let engines = engines.to_vec();
            shared.to_hub(Event::EnginesRtt { engines, rtt }, 0).await;
        }
    }
}

/// The engine id of `slot` on a connection of `engines`.
fn slot_engine(engines: &[EngineId], slot: u32) -> Result<EngineId, NetError> {
    usize::try_from(slot)
        .ok()
        .and_then(|i| engines.get(i))
        .copied()
        .ok_or_else(|| {
            NetError::Protocol(format!(
                "a message from engine slot {slot}, but this connection serves {} (slots 0 to {})",
                engines.len(),
                engines.len().saturating_sub(1)
            ))
        })
}

/// A batch this large is encoded on the blocking pool, not the async
/// thread (a module for an engine, a large result for a client).
const ENCODE_OFF_THREAD: usize = 1 << 20;

/// Writes what the hub sends, many messages to a frame, and opens the
/// connection's gate for what it wrote.
async fn write_batches<T: serde::Serialize + Weigh + IsAnswer + Send + 'static>(
    mut send: FramedSend,
    mut rx: OutboxRx<T>,
) {
    let mut batch = Vec::new();
    while let Some(weight) = rx.recv_many(&mut batch, MAX_BATCH).await {
        let answers = batch.iter().filter(|m| m.is_answer()).count();
        let sent = if weight > ENCODE_OFF_THREAD {
            match send.send_off_thread(std::mem::take(&mut batch)).await {
                Ok(back) => {
                    batch = back;
                    Ok(())
                }
                Err(err) => Err(err),
            }
        } else {
            send.send(&batch).await
        };
        rx.written(weight, answers);
        if let Err(err) = sent {
            tracing::info!(cause = %err, "could not write to a peer");
            return;
        }
        batch.clear();
    }
}

/// Whether a message answers a request (counted against the requests in
/// flight of its connection).
trait IsAnswer {
    fn is_answer(&self) -> bool;
}

impl IsAnswer for ToClient {
    fn is_answer(&self) -> bool {
        matches!(self, ToClient::Answer { .. })
    }
}

impl IsAnswer for Slotted<ToEngine> {
    fn is_answer(&self) -> bool {
        false
    }
}
