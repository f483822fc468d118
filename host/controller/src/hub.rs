//! The hub: the one task that owns the controller's state, a sans-IO
//! [`HubState`], and carries out what it decides. Connections talk to the
//! hub through a channel, and the hub answers through each connection's
//! own [`Outbox`]; the records thread commits what the state records and
//! answers its reads. Nothing here is shared behind a lock, and nothing
//! here decides: this loop only turns events into calls and outputs into
//! sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use wasp_proto::msg::{Answer, ClientMsg, FromEngine, Slotted, ToClient, ToEngine};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant};

use crate::outbox::Outbox;
use crate::records::Records;
use crate::state::{HubState, Output};
use crate::tenants::Registry;

/// How often the hub checks engines' liveness.
const TICK: Duration = Duration::from_secs(1);

/// An event and the share of the hub's inbox budget it holds until the hub
/// has handled it (see [`crate::outbox::Inbox`]).
pub(crate) struct Inbound {
    pub(crate) event: Event,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// What connections tell the hub.
pub(crate) enum Event {
    /// A client completed its handshake.
    ClientJoined {
        session: u32,
        tenant: Tenant,
        admin: bool,
        tx: Outbox<ToClient>,
        /// Closes the client's connection, with a reason, when its tenant
        /// is removed.
        close: oneshot::Sender<String>,
    },
    /// A client sent requests.
    ClientMsgs { session: u32, msgs: Vec<ClientMsg> },
    /// A client uploaded a module (hashed by its connection task).
    Upload {
        session: u32,
        /// The request's id.
        id: u64,
        hash: ModuleHash,
        bytes: Arc<Vec<u8>>,
    },
    /// A client's connection ended.
    ClientLeft { session: u32 },
    /// An engine completed its handshake (one event per slot of its
    /// connection).
    EngineJoined {
        engine: EngineId,
        /// The first engine of its connection: they share their modules.
        group: EngineId,
        /// Its index among its connection's engines.
        slot: u32,
        name: String,
        cached: Vec<ModuleHash>,
        /// Its connection's outbox, shared by the connection's engines.
        tx: Outbox<Slotted<ToEngine>>,
        /// Closes the engine's connection, with a reason, when the hub
        /// declares it dead (and with it the connection's other engines).
        close: CloseConnection,
    },
    /// An engine sent messages.
    EngineMsgs {
        engine: EngineId,
        msgs: Vec<FromEngine>,
    },
    /// An engine process's connection ended: its engines, one per slot.
    EnginesLeft { engines: Vec<EngineId> },
    /// The dashboard's server asks for the Prometheus text of `/metrics`.
    Metrics { reply: oneshot::Sender<String> },
    /// The dashboard's server asks for what a viewer of `tenant` (`admin`:
    /// of every tenant) sees, as JSON.
    DashboardView {
        tenant: Tenant,
        admin: bool,
        reply: oneshot::Sender<String>,
    },
    /// The dashboard's server asks for task `task`'s record as a viewer of
    /// `tenant` would see it: JSON, `None` if it has no such task, or why
    /// the records could not be read.
    DashboardTask {
        tenant: Tenant,
        admin: bool,
        task: TaskId,
        reply: oneshot::Sender<DashboardTaskReply>,
    },
    /// The round-trip time of an engine process's connection, as the
    /// transport measures it (sent every second, `listener::RTT_EVERY`).
    EnginesRtt {
        engines: Vec<EngineId>,
        rtt: Duration,
    },
}

struct EngineLink {
    tx: Outbox<Slotted<ToEngine>>,
    slot: u32,
    close: CloseConnection,
}

/// Closes a connection with a reason, once, whichever of the engines it
/// serves asks first.
#[derive(Clone)]
pub(crate) struct CloseConnection(Arc<std::sync::Mutex<Option<oneshot::Sender<String>>>>);

impl CloseConnection {
    /// The closer, and what the connection's task waits on.
    pub(crate) fn new() -> (Self, oneshot::Receiver<String>) {
        let (tx, rx) = oneshot::channel();
        (Self(Arc::new(std::sync::Mutex::new(Some(tx)))), rx)
    }

    fn close(&self, reason: String) {
        let taken = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(tx) = taken {
            let _ = tx.send(reason);
        }
    }
}

struct ClientLink {
    tx: Outbox<ToClient>,
    close: oneshot::Sender<String>,
}

/// A task's record for the dashboard (see [`Event::DashboardTask`]).
pub(crate) type DashboardTaskReply = Result<Option<String>, String>;

/// The hub: the state and the ends of its channels.
pub(crate) struct Hub {
    state: HubState,
    started: Instant,
    clients: HashMap<u32, ClientLink>,
    /// Sessions with an admin token: only they are told what the records
    /// cost (a tenant's status shows its own work only).
    admins: HashSet<u32>,
    engines: HashMap<EngineId, EngineLink>,
    records: Records,
    /// The tenants file, changed here when an admin asks.
    tenants: Arc<Registry>,
    /// The dashboard's requests for a task's record waiting for the
    /// records, by request number: at most the dashboard's own bound on
    /// such requests (`dashboard::MAX_TASK_REQUESTS`).
    dashboard_tasks: HashMap<u64, oneshot::Sender<DashboardTaskReply>>,
    next_dashboard_task: u64,
    shutdown: watch::Sender<bool>,
}

impl Hub {
    pub(crate) fn new(
        state: HubState,
        records: Records,
        tenants: Arc<Registry>,
        shutdown: watch::Sender<bool>,
    ) -> Self {
        Self {
            state,
            tenants,
            started: Instant::now(),
            clients: HashMap::new(),
            admins: HashSet::new(),
            engines: HashMap::new(),
            dashboard_tasks: HashMap::new(),
            next_dashboard_task: 0,
            records,
            shutdown,
        }
    }

    /// The state's clock: time since the hub started.
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Handles events until every connection's sender is gone, the
    /// controller shuts down, or the records fail.
    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<Inbound>) {
        let mut tick = tokio::time::interval(TICK);
        let mut shutdown = self.shutdown.subscribe();
        let mut committed = self.records.committed.clone();
        let mut failed = self.records.failed.clone();
        let mut batch = Vec::new();
        // Restored tasks may have outputs (records, failures) already.
        self.carry_out();
        loop {
            tokio::select! {
                n = events.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        break;
                    }
                    for inbound in batch.drain(..) {
                        self.handle(inbound.event);
                        // The event's bytes are handled (moved into state
                        // that has bounds of its own): the next may come in.
                        drop(inbound.permit);
                        // One event's records at most wait beside the
                        // writer's channel (a submission of up to 4,096
                        // tasks), not a whole batch of events' (a million
                        // under a burst of submissions).
                        self.carry_out();
                        self.records.catch_up().await;
                    }
                }
                Ok(()) = committed.changed() => {
                    let count = *committed.borrow_and_update();
                    self.state.handle_committed(count);
                }
                Some((ticket, reply)) = self.records.replies.recv() => {
                    let now = self.now();
                    self.state.handle_read(now, ticket, reply);
                }
                _ = tick.tick() => {
                    let now = self.now();
                    self.state.handle_tick(now);
                }
                Ok(()) = failed.changed() => {
                    if let Some(reason) = failed.borrow().clone() {
                        // Without its records the controller cannot promise
                        // that an accepted task is not lost: it stops, and
                        // a supervisor or an operator restarts it.
                        tracing::error!(%reason, "the task records failed; the controller stops");
                        break;
                    }
                }
                _ = shutdown.changed() => break,
            }
            self.carry_out();
            // Waits here, taking no events, while the records writer is
            // behind.
            self.records.catch_up().await;
        }
        let _ = self.shutdown.send(true);
    }

    fn handle(&mut self, event: Event) {
        let now = self.now();
        let state = &mut self.state;
        match event {
            Event::ClientJoined {
                session,
                tenant,
                admin,
                tx,
                close,
            } => {
                self.clients.insert(session, ClientLink { tx, close });
                if admin {
                    self.admins.insert(session);
                }
                state.handle_client_joined(session, tenant, admin);
            }
            Event::ClientMsgs { session, msgs } => state.handle_client_msgs(now, session, msgs),
            Event::Upload {
                session,
                id,
                hash,
                bytes,
            } => state.handle_upload(session, id, hash, bytes),
            Event::ClientLeft { session } => {
                self.clients.remove(&session);
                self.admins.remove(&session);
                state.handle_client_left(session);
            }
            Event::EngineJoined {
                engine,
                group,
                slot,
                name,
                cached,
                tx,
                close,
            } => {
                self.engines.insert(engine, EngineLink { tx, slot, close });
                state.handle_engine_joined(now, engine, group, name, cached);
            }
            Event::EngineMsgs { engine, msgs } => state.handle_engine_msgs(now, engine, msgs),
            Event::EnginesRtt { engines, rtt } => state.handle_engines_rtt(now, &engines, rtt),
            Event::Metrics { reply } => {
                let _ = reply.send(state.metrics());
            }
            Event::DashboardView {
                tenant,
                admin,
                reply,
            } => {
                let _ = reply.send(state.dashboard_view(now, &tenant, admin));
            }
            Event::DashboardTask {
                tenant,
                admin,
                task,
                reply,
            } => {
                let request = self.next_dashboard_task;
                self.next_dashboard_task += 1;
                self.dashboard_tasks.insert(request, reply);
                state.handle_dashboard_task(request, &tenant, admin, task);
            }
            Event::EnginesLeft { engines } => {
                for engine in &engines {
                    self.engines.remove(engine);
                }
                state.handle_engines_left(now, &engines);
            }
        }
    }

    /// Carries out everything the state decided.
    fn carry_out(&mut self) {
        while let Some(output) = self.state.poll_output() {
            match output {
                Output::Client { session, mut msg } => {
                    // The core knows nothing of SQLite: what the records
                    // cost is filled in here.
                    if let ToClient::Answer {
                        answer: Answer::Status(status),
                        ..
                    } = &mut msg
                        && self.admins.contains(&session)
                    {
                        status.records = self.records.counters.snapshot();
                    }
                    if let Some(link) = self.clients.get(&session) {
                        let _ = link.tx.send(msg);
                    }
                }
                Output::Engine { engine, msg } => {
                    if let Some(link) = self.engines.get(&engine) {
                        let _ = link.tx.send(Slotted {
                            slot: link.slot,
                            msg,
                        });
                    }
                }
                Output::CloseEngine { engine, reason } => {
                    if let Some(link) = self.engines.remove(&engine) {
                        tracing::warn!(%engine, %reason, "disconnecting an engine");
                        link.close.close(reason);
                    }
                }
                Output::CloseClient { session, reason } => {
                    if let Some(link) = self.clients.remove(&session) {
                        tracing::warn!(session, %reason, "disconnecting a client");
                        let _ = link.tx.send(ToClient::Closing(reason.clone()));
                        let _ = link.close.send(reason);
                    }
                    self.admins.remove(&session);
                }
                Output::Tenants {
                    session,
                    id,
                    request,
                } => {
                    let applied = self.tenants.apply(&request);
                    let now = self.now();
                    self.state.handle_tenants_applied(now, session, id, applied);
                }
                Output::DashboardTask { request, task } => {
                    if let Some(reply) = self.dashboard_tasks.remove(&request) {
                        let _ = reply.send(task);
                    }
                }
                Output::Record(record) => self.records.send(record),
                Output::Read { ticket, read } => self.records.read(ticket, read),
                Output::Shutdown => {
                    let _ = self.shutdown.send(true);
                }
            }
        }
    }
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
