//! The hub: the one task that owns the controller's state — the scheduler,
//! the engine registry, the task table and the module store — and changes
//! it in response to events from the connections. Nothing here is shared
//! behind a lock; connections talk to the hub through a channel, and the
//! hub answers through each connection's own channel.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use wasp_proto::msg::{
    ClientMsg, ClusterStatus, EngineStatus, ErrorKind, FromEngine, Items, NamespaceOp,
    NamespaceReply, RunTask, TaskError, TaskLimits, TaskMeta, TaskResult, TaskSpec, ToClient,
    ToEngine,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant};
use wasp_sched::{Action, Scheduler, SchedulerConfig};

use crate::config::ControllerConfig;
use crate::records::{Record, Records};

/// What connections tell the hub.
pub(crate) enum Event {
    /// A client completed its handshake.
    ClientJoined {
        session: u32,
        tenant: Tenant,
        admin: bool,
        tx: mpsc::UnboundedSender<ToClient>,
    },
    /// A client sent requests.
    ClientMsgs { session: u32, msgs: Vec<ClientMsg> },
    /// A client uploaded a module (hashed by its connection task).
    Upload {
        session: u32,
        hash: ModuleHash,
        bytes: Arc<Vec<u8>>,
    },
    /// A client's connection ended.
    ClientLeft { session: u32 },
    /// An engine completed its handshake.
    EngineJoined {
        engine: EngineId,
        name: String,
        cached: Vec<ModuleHash>,
        tx: mpsc::UnboundedSender<ToEngine>,
    },
    /// An engine sent messages.
    EngineMsgs {
        engine: EngineId,
        msgs: Vec<FromEngine>,
    },
    /// An engine's connection ended.
    EngineLeft { engine: EngineId },
}

struct ClientEntry {
    /// Shared by every task the client submits (a million queued tasks
    /// hold a pointer each, not a copy).
    tenant: Arc<Tenant>,
    admin: bool,
    tx: mpsc::UnboundedSender<ToClient>,
}

struct EngineEntry {
    name: String,
    tx: mpsc::UnboundedSender<ToEngine>,
    /// Modules the engine has (announced or sent): never sent twice.
    modules: HashSet<ModuleHash>,
    last_seen: Instant,
    done: u64,
    module_bytes_sent: u64,
}

struct TaskEntry {
    tenant: Arc<Tenant>,
    module: ModuleHash,
    /// Shared by the tasks of one submission that call the same function.
    func: Arc<str>,
    /// Taken when dispatched: a task runs once.
    items: Items,
    limits: TaskLimits,
    submitted_us: u64,
    engine: Option<EngineId>,
}

/// A namespace operation waiting for its engines' replies.
struct PendingNamespace {
    session: u32,
    targets: Vec<EngineId>,
    replies: Vec<Option<NamespaceReply>>,
}

struct StoredModule {
    bytes: Arc<Vec<u8>>,
    /// Tenants that uploaded it: only they may run it.
    tenants: HashSet<Tenant>,
}

/// The hub's state.
pub(crate) struct Hub {
    config: ControllerConfig,
    sched: Scheduler,
    started: Instant,
    clients: HashMap<u32, ClientEntry>,
    engines: BTreeMap<EngineId, EngineEntry>,
    /// Boxed: the table's slots are then 16 bytes, and a table grown for a
    /// million queued tasks does not hold twice their size in empty slots.
    tasks: HashMap<TaskId, Box<TaskEntry>>,
    modules: HashMap<ModuleHash, StoredModule>,
    records: Records,
    namespace_requests: HashMap<u64, PendingNamespace>,
    next_request: u64,
    succeeded: u64,
    failed: u64,
    shutdown: watch::Sender<bool>,
}

impl Hub {
    pub(crate) fn new(
        config: ControllerConfig,
        records: Records,
        shutdown: watch::Sender<bool>,
    ) -> Self {
        let sched = Scheduler::new(SchedulerConfig {
            scheme: config.scheme,
            hwm: config.hwm,
            seed: config.seed,
            prefetch: config.prefetch,
        });
        Self {
            config,
            sched,
            started: Instant::now(),
            clients: HashMap::new(),
            engines: BTreeMap::new(),
            tasks: HashMap::new(),
            modules: HashMap::new(),
            records,
            namespace_requests: HashMap::new(),
            next_request: 0,
            succeeded: 0,
            failed: 0,
            shutdown,
        }
    }

    /// Handles events until every connection's sender is gone or the
    /// controller shuts down.
    pub(crate) async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut shutdown = self.shutdown.subscribe();
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                n = events.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        break;
                    }
                    for event in batch.drain(..) {
                        self.handle(event);
                    }
                    self.drain_actions();
                }
                _ = tick.tick() => self.tick(),
                _ = shutdown.changed() => break,
            }
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::ClientJoined {
                session,
                tenant,
                admin,
                tx,
            } => {
                let tenant = Arc::new(tenant);
                self.clients
                    .insert(session, ClientEntry { tenant, admin, tx });
            }
            Event::ClientMsgs { session, msgs } => {
                for msg in msgs {
                    self.client_msg(session, msg);
                }
            }
            Event::Upload {
                session,
                hash,
                bytes,
            } => {
                let Some(client) = self.clients.get(&session) else {
                    return;
                };
                let stored = self.modules.entry(hash).or_insert_with(|| StoredModule {
                    bytes,
                    tenants: HashSet::new(),
                });
                stored.tenants.insert(Tenant::clone(&client.tenant));
                tracing::info!(module = %hash.short(), tenant = %client.tenant, "module stored");
                let _ = client.tx.send(ToClient::Uploaded(hash));
            }
            Event::ClientLeft { session } => {
                // Its tasks run on; their results stay in the records.
                self.clients.remove(&session);
            }
            Event::EngineJoined {
                engine,
                name,
                cached,
                tx,
            } => {
                tracing::info!(%engine, %name, cached = cached.len(), "engine joined");
                self.engines.insert(
                    engine,
                    EngineEntry {
                        name,
                        tx,
                        modules: cached.into_iter().collect(),
                        last_seen: Instant::now(),
                        done: 0,
                        module_bytes_sent: 0,
                    },
                );
                let now = self.now();
                log_refusal(self.sched.handle_engine_joined(now, engine));
            }
            Event::EngineMsgs { engine, msgs } => {
                if let Some(entry) = self.engines.get_mut(&engine) {
                    entry.last_seen = Instant::now();
                }
                for msg in msgs {
                    match msg {
                        FromEngine::Heartbeat => {}
                        FromEngine::Done(result) => self.finished(engine, result),
                        FromEngine::Namespace { request, reply } => {
                            self.namespace_reply(request, engine, reply);
                        }
                        FromEngine::Retracted { task, run } => self.retracted(engine, task, run),
                    }
                }
            }
            Event::EngineLeft { engine } => self.engine_left(engine, "its connection closed"),
        }
    }

    fn client_msg(&mut self, session: u32, msg: ClientMsg) {
        let Some(client) = self.clients.get(&session) else {
            return;
        };
        match msg {
            ClientMsg::HasModules(hashes) => {
                let known = hashes
                    .iter()
                    .map(|h| {
                        self.modules
                            .get(h)
                            .is_some_and(|m| m.tenants.contains(&client.tenant))
                    })
                    .collect();
                let _ = client.tx.send(ToClient::ModulesKnown(known));
            }
            // Uploads are hashed by the connection task and arrive as
            // `Event::Upload`.
            ClientMsg::Upload(_) => {}
            ClientMsg::Submit(specs) => {
                let tenant = client.tenant.clone();
                // A map's tasks all call one function: one copy of its name.
                let mut func: Option<Arc<str>> = None;
                for spec in specs {
                    let name = match &func {
                        Some(name) if **name == *spec.func => name.clone(),
                        _ => func.insert(Arc::from(spec.func.as_str())).clone(),
                    };
                    self.submit(session, &tenant, name, spec);
                }
            }
            ClientMsg::Namespace { targets, op } => {
                let tenant = Tenant::clone(&client.tenant);
                self.namespace(session, tenant, targets, op);
            }
            ClientMsg::Status => {
                let status = self.status();
                let _ = client.tx.send(ToClient::Status(status));
            }
            ClientMsg::Shutdown => {
                if client.admin {
                    tracing::info!(session, "shutdown requested");
                    let _ = client.tx.send(ToClient::ShuttingDown);
                    for engine in self.engines.values() {
                        let _ = engine.tx.send(ToEngine::Shutdown);
                    }
                    let _ = self.shutdown.send(true);
                } else {
                    let _ = client.tx.send(ToClient::Error(format!(
                        "tenant {} may not stop the cluster: its token is not an admin token",
                        client.tenant
                    )));
                }
            }
        }
    }

    /// Queues one task; `func` is `spec.func`, shared.
    fn submit(&mut self, session: u32, tenant: &Arc<Tenant>, func: Arc<str>, spec: TaskSpec) {
        let submitted_us = now_us();
        let refuse = |kind, message: String| TaskResult {
            id: spec.id,
            outcome: Err(TaskError {
                kind,
                message,
                item: None,
            }),
            meta: TaskMeta {
                submitted_us,
                ..TaskMeta::default()
            },
        };
        let refusal = if spec.id.session() != session {
            Some(refuse(
                ErrorKind::Call,
                format!("task id {} does not belong to session {session}", spec.id),
            ))
        } else if self.tasks.contains_key(&spec.id) {
            Some(refuse(
                ErrorKind::Call,
                format!("task id {} was already submitted", spec.id),
            ))
        } else if !self
            .modules
            .get(&spec.module)
            .is_some_and(|m| m.tenants.contains(&**tenant))
        {
            Some(refuse(
                ErrorKind::Module,
                format!("module {} is not uploaded for tenant {tenant}", spec.module),
            ))
        } else {
            None
        };
        if let Some(result) = refusal {
            self.deliver(result);
            return;
        }
        self.records.send(Record::Submitted {
            id: spec.id,
            tenant: tenant.clone(),
            module: spec.module,
            func: func.clone(),
            items: spec.items.len(),
            submitted_us,
        });
        self.tasks.insert(
            spec.id,
            Box::new(TaskEntry {
                tenant: tenant.clone(),
                module: spec.module,
                func,
                items: spec.items,
                limits: spec.limits,
                submitted_us,
                engine: None,
            }),
        );
        let now = self.now();
        log_refusal(self.sched.handle_submit(now, spec.id, spec.targets));
    }

    fn drain_actions(&mut self) {
        while let Some(action) = self.sched.poll_action() {
            match action {
                Action::Dispatch { task, engine } => self.dispatch(task, engine),
                Action::Retract { task, engine } => {
                    if let Some(entry) = self.engines.get(&engine) {
                        let _ = entry.tx.send(ToEngine::Retract(task));
                    }
                }
                Action::Fail { task, reason } => self.fail(task, reason),
            }
        }
    }

    fn dispatch(&mut self, id: TaskId, engine: EngineId) {
        let (Some(task), Some(entry)) = (self.tasks.get_mut(&id), self.engines.get_mut(&engine))
        else {
            tracing::error!(task = %id, %engine, "scheduler dispatched an unknown task or engine");
            return;
        };
        send_module_if_missing(entry, &self.modules, task.module);
        task.engine = Some(engine);
        let _ = entry.tx.send(ToEngine::Run(RunTask {
            id,
            tenant: Tenant::clone(&task.tenant),
            module: task.module,
            func: task.func.to_string(),
            items: std::mem::take(&mut task.items),
            limits: task.limits,
        }));
    }

    /// An engine answered a retract: the task is queued again with its
    /// items (`run`), or it runs there.
    fn retracted(&mut self, engine: EngineId, id: TaskId, run: Option<RunTask>) {
        // Only the engine holding the task may hand it back, and only once.
        let now = self.now();
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        if task.engine != Some(engine) || run.as_ref().is_some_and(|run| run.id != id) {
            tracing::warn!(task = %id, %engine, "ignoring a retract answer for a task not held there");
            return;
        }
        match (self.sched.handle_retracted(now, id, run.is_some()), run) {
            (Ok(()), Some(run)) => {
                task.items = run.items;
                task.engine = None;
            }
            (Ok(()), None) => {}
            (Err(err), None) => log_refusal(Err(err)),
            (Err(err), Some(_)) => {
                // Handed back unasked: the engine will not run it, and the
                // scheduler counts it there; end it rather than lose it.
                tracing::warn!(task = %id, %engine, cause = %err, "an engine handed back a task unasked");
                log_refusal(self.sched.handle_finished(now, id));
                self.complete(TaskResult {
                    id,
                    outcome: Err(TaskError {
                        kind: ErrorKind::EngineDied,
                        message: format!("engine {engine} dropped the task without running it"),
                        item: None,
                    }),
                    meta: TaskMeta {
                        engine: Some(engine),
                        ..TaskMeta::default()
                    },
                });
            }
        }
    }

    /// Sends a namespace operation to each target; the client's answer goes
    /// out when every target has replied.
    fn namespace(&mut self, session: u32, tenant: Tenant, targets: Vec<EngineId>, op: NamespaceOp) {
        let request = self.next_request;
        self.next_request += 1;
        let mut replies = vec![None; targets.len()];
        if let NamespaceOp::Load(hash) = &op
            && !self
                .modules
                .get(hash)
                .is_some_and(|m| m.tenants.contains(&tenant))
        {
            let reason = format!("module {hash} is not uploaded for tenant {tenant}");
            replies
                .iter_mut()
                .for_each(|r| *r = Some(Err(reason.clone())));
        }
        for (i, target) in targets.iter().enumerate() {
            if replies[i].is_some() {
                continue;
            }
            let Some(entry) = self.engines.get_mut(target) else {
                replies[i] = Some(Err(format!("engine {target} is not connected")));
                continue;
            };
            if let NamespaceOp::Load(hash) = &op {
                send_module_if_missing(entry, &self.modules, *hash);
            }
            let _ = entry.tx.send(ToEngine::Namespace {
                request,
                tenant: tenant.clone(),
                op: op.clone(),
            });
        }
        self.namespace_requests.insert(
            request,
            PendingNamespace {
                session,
                targets,
                replies,
            },
        );
        self.answer_namespace_if_complete(request);
    }

    fn namespace_reply(&mut self, request: u64, engine: EngineId, reply: NamespaceReply) {
        let Some(pending) = self.namespace_requests.get_mut(&request) else {
            return;
        };
        for (target, slot) in pending.targets.iter().zip(pending.replies.iter_mut()) {
            if *target == engine && slot.is_none() {
                *slot = Some(reply);
                break;
            }
        }
        self.answer_namespace_if_complete(request);
    }

    fn answer_namespace_if_complete(&mut self, request: u64) {
        let complete = self
            .namespace_requests
            .get(&request)
            .is_some_and(|p| p.replies.iter().all(Option::is_some));
        if !complete {
            return;
        }
        if let Some(pending) = self.namespace_requests.remove(&request)
            && let Some(client) = self.clients.get(&pending.session)
        {
            let replies = pending.replies.into_iter().flatten().collect();
            let _ = client.tx.send(ToClient::Namespace(replies));
        }
    }

    fn fail(&mut self, id: TaskId, reason: String) {
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let kind = if task.engine.is_some() {
            ErrorKind::EngineDied
        } else {
            ErrorKind::Unschedulable
        };
        let result = TaskResult {
            id,
            outcome: Err(TaskError {
                kind,
                message: reason,
                item: None,
            }),
            meta: TaskMeta {
                engine: task.engine,
                ..TaskMeta::default()
            },
        };
        self.complete(result);
    }

    fn finished(&mut self, engine: EngineId, result: TaskResult) {
        // Only the engine the task was sent to may finish it.
        if self.tasks.get(&result.id).and_then(|t| t.engine) != Some(engine) {
            tracing::warn!(task = %result.id, %engine, "ignoring a result for a task not running there");
            return;
        }
        if let Some(entry) = self.engines.get_mut(&engine) {
            entry.done += 1;
        }
        let now = self.now();
        // The engine's own clock: its run time, without the network.
        let meta = &result.meta;
        let run_time = Duration::from_micros(meta.completed_us.saturating_sub(meta.started_us));
        log_refusal(self.sched.handle_finished_after(now, result.id, run_time));
        self.complete(result);
    }

    /// Records a task's end and sends it to its client.
    fn complete(&mut self, mut result: TaskResult) {
        let Some(task) = self.tasks.remove(&result.id) else {
            return;
        };
        result.meta.submitted_us = task.submitted_us;
        if result.outcome.is_ok() {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        self.records
            .send(Record::Finished(Box::new(result.clone())));
        self.deliver(result);
    }

    fn deliver(&self, result: TaskResult) {
        if let Some(client) = self.clients.get(&result.id.session()) {
            let _ = client.tx.send(ToClient::Results(vec![result]));
        }
    }

    fn engine_left(&mut self, engine: EngineId, why: &str) {
        if self.engines.remove(&engine).is_some() {
            tracing::warn!(%engine, why, "engine left");
            let waiting: Vec<u64> = self
                .namespace_requests
                .iter()
                .filter(|(_, p)| p.targets.contains(&engine))
                .map(|(request, _)| *request)
                .collect();
            for request in waiting {
                self.namespace_reply(request, engine, Err(format!("engine {engine} left: {why}")));
            }
            let now = self.now();
            log_refusal(self.sched.handle_engine_left(now, engine));
            self.drain_actions();
        }
    }

    fn tick(&mut self) {
        let timeout = self.config.heartbeat_timeout;
        let silent: Vec<EngineId> = self
            .engines
            .iter()
            .filter(|(_, e)| e.last_seen.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for engine in silent {
            self.engine_left(engine, "no heartbeat");
        }
        let now = self.now();
        self.sched.handle_tick(now);
        self.drain_actions();
    }

    fn status(&self) -> ClusterStatus {
        let running = self.tasks.values().filter(|t| t.engine.is_some()).count() as u64;
        ClusterStatus {
            engines: self
                .engines
                .iter()
                .map(|(id, e)| EngineStatus {
                    id: *id,
                    name: e.name.clone(),
                    outstanding: self.sched.outstanding(*id).unwrap_or(0),
                    done: e.done,
                    module_bytes_sent: e.module_bytes_sent,
                })
                .collect(),
            queued: self.tasks.len() as u64 - running,
            running,
            succeeded: self.succeeded,
            failed: self.failed,
            scheme: self.config.scheme.to_string(),
            hwm: self.config.hwm,
        }
    }
}

/// Sends `hash`'s bytes to an engine that lacks them, once, counting them.
fn send_module_if_missing(
    entry: &mut EngineEntry,
    modules: &HashMap<ModuleHash, StoredModule>,
    hash: ModuleHash,
) {
    if entry.modules.contains(&hash) {
        return;
    }
    if let Some(stored) = modules.get(&hash) {
        entry.module_bytes_sent += stored.bytes.len() as u64;
        entry.modules.insert(hash);
        let _ = entry.tx.send(ToEngine::Module {
            hash,
            bytes: stored.bytes.as_ref().clone(),
        });
    }
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The scheduler refuses events that contradict its state (an unknown task,
/// a duplicate engine); the hub already filters those, so one reaching here
/// is a bug worth a log line, not a crash.
fn log_refusal(result: Result<(), wasp_sched::SchedError>) {
    if let Err(err) = result {
        tracing::warn!(cause = %err, "the scheduler refused an event");
    }
}
