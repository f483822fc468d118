//! The hub's state as a sans-IO core: the task table, the engine registry
//! and its liveness, the module store, pending namespace operations and
//! database requests, and the scheduler.
//!
//! As `wasp-sched` and quinn-proto are, it is driven by `handle_*` methods
//! that take the current time and read as [`Output`]s with
//! [`HubState::poll_output`]; it reads no clock, opens no socket and
//! touches no file. The hub (`crate::hub`) is the thin async loop around
//! it: it owns the connections, the timer and the records thread, turns
//! their events into calls here, and carries out the outputs. The
//! decisions that make wasp durable are all made here, so that they are
//! tested on a simulated clock (`sim`) through thousands of seeded fault
//! sequences:
//!
//! - A submission is answered with [`ToClient::Accepted`] only once its
//!   records are committed ([`HubState::handle_committed`]); so is an
//!   upload's answer.
//! - A task whose engine dies is queued again, up to
//!   [`HubConfig::max_engine_deaths`] times, then fails, as Dask's
//!   `KilledWorker`; a result from an engine the task is no longer on is
//!   dropped, so each task ends once.
//! - A failed task is retried as its [`RetryPolicy`] says.
//! - Unfinished tasks of an earlier run are queued again at start
//!   ([`HubState::restore_task`]).

mod db;
mod engines;
mod modules;
mod namespaces;
mod observe;
mod quotas;
#[cfg(test)]
mod sim;
mod tasks;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use wasp_proto::db::{DbAnswer, DbRequest};
use wasp_proto::msg::{
    Answer, ClientMsg, ClusterStatus, EngineStatus, ErrorKind, FromEngine, NamespaceOp, Quotas,
    RecordsStats, Request, RunTask, Share, Submission, TaskError, TaskMeta, TaskResult, TaskSpec,
    TenantInfo, TenantRequest, TenantUsage, ToClient, ToEngine,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant};
use wasp_sched::{Action, Scheduler, SchedulerConfig, TenantKey};

use crate::records::{Read, ReadReply, Record, RecordedUsage, StoredTask};
use crate::tenants::TenantChange;

pub(crate) use engines::Engines;
pub(crate) use modules::ModuleStore;
use namespaces::Namespaces;
use tasks::{Ending, TaskEntry, Tasks};

/// The settings the core decides with.
#[derive(Clone, Debug)]
pub(crate) struct HubConfig {
    /// The scheduler's.
    pub(crate) sched: SchedulerConfig,
    /// An engine silent this long is declared dead.
    pub(crate) heartbeat_timeout: Duration,
    /// A task whose engine died under it this many times fails.
    pub(crate) max_engine_deaths: u32,
    /// The quotas of a tenant that sets none of its own (a field `None`:
    /// no quota).
    pub(crate) default_quotas: Quotas,
    /// The scheme's name, for status.
    pub(crate) scheme_name: String,
    /// The configured tenants and their settings (a tenant of restored
    /// records that is not among them weighs
    /// [`wasp_sched::DEFAULT_WEIGHT`] and has the default quotas).
    pub(crate) tenants: Vec<(Tenant, TenantSettings)>,
}

/// What the core asks its driver to do.
#[derive(Debug)]
pub(crate) enum Output {
    /// Send a client a message.
    Client { session: u32, msg: ToClient },
    /// Send an engine a message.
    Engine { engine: EngineId, msg: ToEngine },
    /// Close an engine's connection: it was declared dead, and nothing it
    /// sends is wanted.
    CloseEngine { engine: EngineId, reason: String },
    /// Append a change to the records, in this order.
    Record(Record),
    /// Read the records, after every record output before it is
    /// committed; answer with [`HubState::handle_read`].
    Read { ticket: u64, read: Read },
    /// Stop the controller.
    Shutdown,
    /// Close a client's connection, telling it why (its tenant was
    /// removed).
    CloseClient { session: u32, reason: String },
    /// Apply an admin's change to the tenants file, then report with
    /// [`HubState::handle_tenants_applied`].
    Tenants {
        session: u32,
        id: u64,
        request: TenantRequest,
    },
    /// Answer the dashboard's request for a task: its record as JSON,
    /// `None` if the viewer has no such task, or why it could not be read.
    DashboardTask {
        request: u64,
        task: Result<Option<String>, String>,
    },
}

/// A configured tenant's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TenantSettings {
    /// Its fair-share weight.
    pub(crate) weight: u32,
    /// Whether it may stop the cluster and manage tenants.
    pub(crate) admin: bool,
    /// Its own quotas; a field `None` takes the default.
    pub(crate) quotas: Quotas,
}

/// How a tenant's tasks ended.
#[derive(Clone, Copy, Debug, Default)]
struct Outcomes {
    succeeded: u64,
    failed: u64,
}

struct ClientEntry {
    /// Shared by every task the client submits (a million queued tasks
    /// hold a pointer each, not a copy).
    tenant: Arc<Tenant>,
    admin: bool,
}

/// Outputs held until the records they depend on are committed.
#[derive(Default)]
struct CommitGate {
    /// Record outputs emitted so far.
    emitted: u64,
    /// Records the writer has committed.
    committed: u64,
    /// Each output with the count of records that must be committed first.
    held: VecDeque<(u64, Output)>,
}

/// The hub's state; see the module documentation.
pub(crate) struct HubState {
    config: HubConfig,
    sched: Scheduler,
    /// The scheduler's key of each tenant that submitted a task, for its
    /// fair share; one entry per tenant name, kept for the hub's life (the
    /// tenants are the configured ones, plus those of restored records).
    tenant_keys: HashMap<Tenant, TenantKey>,
    /// How each tenant's tasks ended since the controller started, for a
    /// tenant's own status (one entry per tenant, as `tenant_keys`).
    tenant_outcomes: HashMap<TenantKey, Outcomes>,
    /// The configured tenants by name: weight, admin flag, quotas.
    tenants: BTreeMap<Tenant, TenantSettings>,
    /// Submissions whose later slices are still to come, and the queued
    /// tasks they reserve.
    reservations: quotas::Reservations,
    /// Tenants removed while the controller runs: a client whose handshake
    /// raced the removal is closed when it joins.
    removed: HashSet<Tenant>,
    /// Microseconds since the Unix epoch at `now` zero: the records' clock.
    wall_base_us: u64,
    now: Duration,
    clients: HashMap<u32, ClientEntry>,
    engines: Engines,
    tasks: Tasks,
    modules: ModuleStore,
    namespaces: Namespaces,
    gate: CommitGate,
    outputs: VecDeque<Output>,
    /// Database requests waiting for a read of the records.
    reads: db::PendingReads,
    /// The session the controller numbers resubmitted tasks in.
    own_session: u32,
    next_own_task: u32,
    succeeded: u64,
    failed: u64,
    /// Counters and histograms for `/metrics`.
    observed: observe::Observed,
    /// What the dashboard shows.
    watch: view::Watch,
}

impl HubState {
    /// A core with no clients, engines or tasks. `wall_base_us` is the wall
    /// clock (microseconds since the Unix epoch) at time zero;
    /// `own_session` a session number no client has, for the ids of
    /// resubmitted tasks.
    pub(crate) fn new(config: HubConfig, wall_base_us: u64, own_session: u32) -> Self {
        let mut state = Self {
            sched: Scheduler::new(config.sched.clone()),
            tenant_keys: HashMap::new(),
            tenant_outcomes: HashMap::new(),
            tenants: BTreeMap::new(),
            reservations: quotas::Reservations::default(),
            removed: HashSet::new(),
            config,
            wall_base_us,
            now: Duration::ZERO,
            clients: HashMap::new(),
            engines: Engines::default(),
            tasks: Tasks::default(),
            modules: ModuleStore::default(),
            namespaces: Namespaces::default(),
            gate: CommitGate::default(),
            outputs: VecDeque::new(),
            reads: db::PendingReads::default(),
            own_session,
            next_own_task: 0,
            succeeded: 0,
            failed: 0,
            observed: observe::Observed::default(),
            watch: view::Watch::default(),
        };
        for (tenant, settings) in state.config.tenants.clone() {
            state.tenants.insert(tenant.clone(), settings);
            state.apply_settings(&tenant);
        }
        state
    }

    /// The next thing to do, oldest first.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn observe(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    fn wall_us(&self) -> u64 {
        self.wall_base_us
            .saturating_add(u64::try_from(self.now.as_micros()).unwrap_or(u64::MAX))
    }

    // ---- restoring an earlier run -------------------------------------

    /// A module stored by an earlier run, for `tenant`.
    pub(crate) fn restore_module(&mut self, hash: ModuleHash, tenant: Tenant, bytes: Arc<Vec<u8>>) {
        self.modules.insert(hash, tenant, bytes);
    }

    /// An unfinished task of an earlier run: queued again. Its result goes
    /// to whoever asks for it (`get_result`): its client is gone.
    pub(crate) fn restore_task(&mut self, now: Duration, task: StoredTask) {
        self.observe(now);
        let id = task.id;
        if self.tasks.contains(id) {
            return;
        }
        let targets = task.targets.clone();
        self.tasks.insert(id, TaskEntry::restored(task));
        self.submit_to_scheduler(id, targets);
    }

    // ---- connections ---------------------------------------------------

    /// A client completed its handshake.
    pub(crate) fn handle_client_joined(&mut self, session: u32, tenant: Tenant, admin: bool) {
        if self.removed.contains(&tenant) {
            self.outputs.push_back(Output::CloseClient {
                session,
                reason: removed_reason(&tenant),
            });
            return;
        }
        self.record(Record::Session {
            session,
            tenant: tenant.clone(),
        });
        self.clients.insert(
            session,
            ClientEntry {
                tenant: Arc::new(tenant),
                admin,
            },
        );
    }

    /// A client's connection ended. Its tasks run on; their results stay
    /// in the records.
    pub(crate) fn handle_client_left(&mut self, session: u32) {
        self.clients.remove(&session);
        self.namespaces.forget_session(session);
        self.reservations.forget_session(session);
    }

    /// An engine completed its handshake. `group` is the first engine of
    /// its process (itself, for a process of one slot): the engines of a
    /// group share their compiled modules, so each is sent once per group.
    pub(crate) fn handle_engine_joined(
        &mut self,
        now: Duration,
        engine: EngineId,
        group: EngineId,
        name: String,
        cached: Vec<ModuleHash>,
    ) {
        self.observe(now);
        tracing::info!(%engine, %name, cached = cached.len(), "engine joined");
        self.record(Record::Engine {
            engine,
            name: name.clone(),
        });
        self.engines.join(engine, group, name, cached, now);
        self.watch.engine_joined(engine);
        log_refusal(self.sched.handle_engine_joined(now, engine));
        self.drain_scheduler();
    }

    /// An engine process's connection ended: its engines (one per slot)
    /// leave together.
    pub(crate) fn handle_engines_left(&mut self, now: Duration, engines: &[EngineId]) {
        self.observe(now);
        self.engines_gone(engines, "its connection closed");
    }

    /// The round-trip time of the connection `engines` share (one engine
    /// process's slots): their prefetch covers it, so that engines far from
    /// the controller keep tasks in hand while the next ones cross.
    pub(crate) fn handle_engines_rtt(
        &mut self,
        now: Duration,
        engines: &[EngineId],
        rtt: Duration,
    ) {
        self.observe(now);
        for &engine in engines {
            if self.engines.contains(engine) {
                log_refusal(self.sched.handle_engine_rtt(now, engine, rtt));
            }
        }
        self.drain_scheduler();
    }

    /// Time passed: engines silent past the heartbeat timeout are
    /// declared dead and disconnected.
    pub(crate) fn handle_tick(&mut self, now: Duration) {
        self.observe(now);
        let silent = self.engines.silent(now, self.config.heartbeat_timeout);
        let reason = format!(
            "no heartbeat for {:?} (heartbeat_timeout)",
            self.config.heartbeat_timeout
        );
        for &engine in &silent {
            self.outputs.push_back(Output::CloseEngine {
                engine,
                reason: reason.clone(),
            });
        }
        // Together: the slots of a silent process fall silent at once.
        self.engines_gone(&silent, &reason);
        self.sched.handle_tick(now);
        self.drain_scheduler();
    }

    /// The writer has committed the first `count` records.
    pub(crate) fn handle_committed(&mut self, count: u64) {
        let gate = &mut self.gate;
        gate.committed = gate.committed.max(count);
        while gate
            .held
            .front()
            .is_some_and(|(needs, _)| *needs <= gate.committed)
        {
            let Some((_, mut output)) = gate.held.pop_front() else {
                break;
            };
            // A task that ended before its submission was committed has
            // sent its result, which tells the client all an
            // acknowledgement would (and saves it a wakeup per short task).
            if let Output::Client {
                msg: ToClient::Accepted(ids),
                ..
            } = &mut output
            {
                ids.retain(|id| self.tasks.contains(*id));
                if ids.is_empty() {
                    continue;
                }
            }
            self.outputs.push_back(output);
        }
    }

    // ---- clients -------------------------------------------------------

    /// A client stored a module (hashed by its connection).
    pub(crate) fn handle_upload(
        &mut self,
        session: u32,
        id: u64,
        hash: ModuleHash,
        bytes: Arc<Vec<u8>>,
    ) {
        let Some(client) = self.clients.get(&session) else {
            return;
        };
        let tenant = Tenant::clone(&client.tenant);
        let quota = self.module_quota(&tenant);
        match self
            .modules
            .admit(hash, &tenant, bytes.len() as u64, &quota)
        {
            Ok(false) => self.answer(session, id, Answer::Uploaded(hash)),
            Ok(true) => {
                tracing::info!(module = %hash.short(), %tenant, "module stored");
                self.modules.insert(hash, tenant.clone(), bytes.clone());
                self.record(Record::Module {
                    hash,
                    tenant,
                    bytes,
                });
                self.answer_after_commit(session, id, Answer::Uploaded(hash));
            }
            Err(refusal) => {
                tracing::warn!(module = %hash.short(), %tenant, "module storage limit reached");
                self.answer(session, id, Answer::Error(refusal));
            }
        }
    }

    /// A client sent requests and submissions.
    pub(crate) fn handle_client_msgs(&mut self, now: Duration, session: u32, msgs: Vec<ClientMsg>) {
        self.observe(now);
        for msg in msgs {
            match msg {
                ClientMsg::Request { id, request } => self.request(session, id, request),
                ClientMsg::Submit { submission, specs } => {
                    self.submit_all(session, submission, specs);
                }
            }
            self.drain_scheduler();
        }
    }

    fn request(&mut self, session: u32, id: u64, request: Request) {
        let Some(client) = self.clients.get(&session) else {
            return;
        };
        let tenant = client.tenant.clone();
        let admin = client.admin;
        match request {
            Request::HasModules(hashes) => {
                let known = hashes
                    .iter()
                    .map(|h| self.modules.has(h, &tenant))
                    .collect();
                self.answer(session, id, Answer::ModulesKnown(known));
            }
            // Uploads are hashed by the connection task and arrive through
            // `handle_upload`.
            Request::Upload(_) => {}
            Request::Namespace { targets, op } => {
                self.namespace(session, id, Tenant::clone(&tenant), targets, op);
            }
            Request::Status => {
                let status = if admin {
                    self.status()
                } else {
                    self.tenant_status(&tenant)
                };
                self.answer(session, id, Answer::Status(status));
            }
            Request::Shutdown => {
                if admin {
                    tracing::info!(session, "shutdown requested");
                    self.answer(session, id, Answer::ShuttingDown);
                    for engine in self.engines.ids() {
                        self.outputs.push_back(Output::Engine {
                            engine,
                            msg: ToEngine::Shutdown,
                        });
                    }
                    self.outputs.push_back(Output::Shutdown);
                } else {
                    let refusal = format!(
                        "tenant {tenant} may not stop the cluster: its token is not an admin token"
                    );
                    self.answer(session, id, Answer::Error(refusal));
                }
            }
            Request::Db(request) => self.db_request(session, id, tenant, request),
            Request::Tenants(request) => {
                if !admin {
                    let refusal = format!(
                        "tenant {tenant} may not manage tenants: its token is not an admin token"
                    );
                    self.answer(session, id, Answer::Error(refusal));
                } else if request == TenantRequest::List {
                    self.read(Read::Usage, db::Then::TenantList { session, id });
                } else if let TenantRequest::Add { weight: 0, .. }
                | TenantRequest::Set {
                    weight: Some(0), ..
                } = request
                {
                    let refusal = "a tenant's weight must be at least 1".to_string();
                    self.answer(session, id, Answer::Error(refusal));
                } else {
                    self.outputs.push_back(Output::Tenants {
                        session,
                        id,
                        request,
                    });
                }
            }
        }
    }

    // ---- tenants -------------------------------------------------------

    /// An admin's change was applied to the tenants file (or refused,
    /// saying why): carry it out on the running work and answer.
    pub(crate) fn handle_tenants_applied(
        &mut self,
        now: Duration,
        session: u32,
        id: u64,
        applied: Result<Option<TenantChange>, String>,
    ) {
        self.observe(now);
        let change = match applied {
            Err(refusal) => return self.answer(session, id, Answer::Error(refusal)),
            Ok(change) => change,
        };
        let answer = match change {
            None => None,
            Some(TenantChange::Added {
                name,
                weight,
                quotas,
                file,
            }) => {
                tracing::info!(tenant = %name, weight, ?quotas, "tenant added");
                self.removed.remove(&name);
                self.tenants.insert(
                    name.clone(),
                    TenantSettings {
                        weight,
                        admin: false,
                        quotas,
                    },
                );
                self.apply_settings(&name);
                Some(Answer::TenantAdded {
                    name: name.0,
                    file: file.display().to_string(),
                })
            }
            Some(TenantChange::Changed {
                name,
                weight,
                quotas,
            }) => {
                tracing::info!(tenant = %name, weight, ?quotas, "tenant changed");
                if let Some(settings) = self.tenants.get_mut(&name) {
                    settings.weight = weight;
                    settings.quotas = quotas;
                }
                self.apply_settings(&name);
                None
            }
            Some(TenantChange::Removed { name }) => {
                self.remove_tenant(&name);
                None
            }
        };
        match answer {
            Some(answer) => self.answer(session, id, answer),
            // The tenants after the change, with their recorded usage.
            None => {
                self.read(Read::Usage, db::Then::TenantList { session, id });
            }
        }
        self.drain_scheduler();
    }

    /// Gives the scheduler `tenant`'s settings: its fair-share weight and
    /// its running-task quota.
    fn apply_settings(&mut self, tenant: &Tenant) {
        let Some(settings) = self.tenants.get(tenant).copied() else {
            return;
        };
        let max_running = self.quotas_of(tenant).running;
        let key = self.tenant_key(tenant);
        let now = self.now;
        let weight = settings.weight;
        if let Err(err) = self.sched.handle_tenant(now, key, weight) {
            tracing::warn!(%tenant, weight, cause = %err, "tenant weight refused");
        }
        let cap = max_running.map(|cap| u32::try_from(cap).unwrap_or(u32::MAX));
        self.sched.handle_tenant_max_running(now, key, cap);
    }

    /// The quotas in force for `tenant`: its own, or else the defaults.
    fn quotas_of(&self, tenant: &Tenant) -> Quotas {
        let own = self
            .tenants
            .get(tenant)
            .map(|s| s.quotas)
            .unwrap_or_default();
        own.or(self.config.default_quotas)
    }

    /// `tenant`'s queued tasks and its quota of them.
    fn queue_of(&self, tenant: &Tenant, quotas: &Quotas) -> quotas::Queue {
        quotas::Queue {
            queued: self
                .tenant_keys
                .get(tenant)
                .and_then(|&key| self.sched.tenant_stats(key))
                .map_or(0, |stats| stats.queued as u64),
            quota: quotas.queued,
        }
    }

    /// Why `adding` more tasks of `tenant` would pass its queued-task
    /// quota, if they would.
    fn queued_refusal(&self, tenant: &Tenant, adding: u64) -> Option<String> {
        let queue = self.queue_of(tenant, &self.quotas_of(tenant));
        quotas::queued_refusal(tenant, &queue, self.reservations.reserved(tenant), adding)
    }

    /// `tenant`'s module storage quota, and how its refusal names it.
    fn module_quota(&self, tenant: &Tenant) -> modules::Quota {
        let own = self.tenants.get(tenant).and_then(|s| s.quotas.module_bytes);
        match own {
            Some(bytes) => modules::Quota {
                bytes,
                name: format!(
                    "tenant {tenant}'s module storage quota (module_bytes = {} = {bytes} bytes; \
                     wasp tenant set {tenant} --max-module-bytes SIZE)",
                    crate::config::human_bytes(bytes)
                ),
            },
            None => {
                let bytes = self.config.default_quotas.module_bytes.unwrap_or(u64::MAX);
                modules::Quota {
                    bytes,
                    name: format!(
                        "the module storage limit (max_module_storage = {} = {bytes} bytes; \
                         wasp controller --max-module-storage, or for one tenant wasp tenant \
                         set {tenant} --max-module-bytes SIZE)",
                        crate::config::human_bytes(bytes)
                    ),
                }
            }
        }
    }

    /// A revoked tenant: its clients are disconnected and its unfinished
    /// tasks aborted (queued ones never run, running ones stop at their
    /// engine's next epoch tick); its records stay.
    fn remove_tenant(&mut self, tenant: &Tenant) {
        let sessions: Vec<u32> = self
            .clients
            .iter()
            .filter(|(_, c)| *c.tenant == *tenant)
            .map(|(s, _)| *s)
            .collect();
        let tasks = self.tasks.of_tenant(tenant);
        tracing::warn!(%tenant, clients = sessions.len(), tasks = tasks.len(), "tenant removed");
        for session in sessions {
            self.clients.remove(&session);
            self.outputs.push_back(Output::CloseClient {
                session,
                reason: removed_reason(tenant),
            });
        }
        for task in tasks {
            db::abort(self, task);
        }
        let key = self.tenant_key(tenant);
        let now = self.now;
        self.sched.handle_tenant_removed(now, key);
        self.tenants.remove(tenant);
        self.removed.insert(tenant.clone());
    }

    /// Every configured tenant with its work since the controller started
    /// and its `recorded` usage.
    pub(crate) fn tenant_list(
        &mut self,
        recorded: &HashMap<Tenant, RecordedUsage>,
    ) -> Vec<TenantInfo> {
        let tenants: Vec<(Tenant, TenantSettings)> =
            self.tenants.iter().map(|(t, s)| (t.clone(), *s)).collect();
        tenants
            .into_iter()
            .map(|(tenant, settings)| {
                let key = self.tenant_key(&tenant);
                let stats = self.sched.tenant_stats(key);
                let outcomes = self.tenant_outcomes.get(&key).copied().unwrap_or_default();
                TenantInfo {
                    name: tenant.0.clone(),
                    weight: settings.weight,
                    admin: settings.admin,
                    quotas: settings.quotas.or(self.config.default_quotas),
                    queued: stats.as_ref().map_or(0, |s| s.queued as u64),
                    running: stats.as_ref().map_or(0, |s| s.running as u64),
                    succeeded: outcomes.succeeded,
                    failed: outcomes.failed,
                    engine_us: stats.map_or(0, |s| {
                        u64::try_from(s.usage.as_micros()).unwrap_or(u64::MAX)
                    }),
                    recorded: recorded
                        .get(&tenant)
                        .map_or_else(TenantUsage::default, |u| TenantUsage {
                            succeeded: u.succeeded,
                            failed: u.failed,
                            engine_us: u.engine_us,
                            argument_bytes: u.argument_bytes,
                            result_bytes: u.result_bytes,
                            module_bytes: u.module_bytes,
                            namespace_bytes: u.namespace_bytes,
                        }),
                }
            })
            .collect()
    }

    fn answer(&mut self, session: u32, id: u64, answer: Answer) {
        self.outputs.push_back(Output::Client {
            session,
            msg: ToClient::Answer { id, answer },
        });
    }

    /// Sends an answer once every record emitted so far is committed.
    fn answer_after_commit(&mut self, session: u32, id: u64, answer: Answer) {
        self.after_commit(Output::Client {
            session,
            msg: ToClient::Answer { id, answer },
        });
    }

    fn after_commit(&mut self, output: Output) {
        let gate = &mut self.gate;
        if gate.committed >= gate.emitted {
            self.outputs.push_back(output);
        } else {
            gate.held.push_back((gate.emitted, output));
        }
    }

    fn record(&mut self, record: Record) {
        self.gate.emitted += 1;
        self.outputs.push_back(Output::Record(record));
    }

    /// Accepts a batch of submissions: each valid one is recorded and
    /// queued, and the client hears which were accepted once they are
    /// committed; an invalid one fails at once, not accepted.
    ///
    /// The tenant's queued-task quota and ceilings are checked for the
    /// whole `submission` (see `quotas`): a refusal fails every task of it,
    /// with [`ErrorKind::Quota`] and a message naming the quota.
    fn submit_all(&mut self, session: u32, submission: Submission, specs: Vec<TaskSpec>) {
        let Some(client) = self.clients.get(&session) else {
            return;
        };
        let tenant = client.tenant.clone();
        let quotas = self.quotas_of(&tenant);
        let queue = self.queue_of(&tenant, &quotas);
        let first_id = specs.first().map_or(submission.first, |spec| spec.id);
        let admitted = self.reservations.admit(
            session,
            &tenant,
            submission,
            first_id,
            specs.len() as u64,
            queue,
        );
        // A map's tasks share their limits: one check for all of them.
        let limits = specs.first().map(|spec| spec.limits);
        let held = match (admitted, limits) {
            (Ok(()), Some(limits)) => {
                quotas::within_ceilings(limits, &quotas, &tenant).map(|held| (limits, held))
            }
            (Ok(()), None) => return,
            (Err(refusal), _) => Err(refusal),
        };
        let (asked, held) = match held {
            Ok(pair) => pair,
            Err(refusal) => {
                tracing::info!(%tenant, tasks = specs.len(), "a submission refused by quota");
                let submitted_us = self.wall_us();
                let results = specs
                    .iter()
                    .map(|spec| refused(spec.id, ErrorKind::Quota, refusal.clone(), submitted_us))
                    .collect();
                self.outputs.push_back(Output::Client {
                    session,
                    msg: ToClient::Results(results),
                });
                return;
            }
        };
        let mut accepted = Vec::with_capacity(specs.len());
        // A map's tasks all call one function: one copy of its module's
        // hash and of its name.
        let mut func: Option<Arc<str>> = None;
        let mut module: Option<Arc<ModuleHash>> = None;
        for mut spec in specs {
            let name = match &func {
                Some(name) if **name == *spec.func => name.clone(),
                _ => func.insert(Arc::from(spec.func.as_str())).clone(),
            };
            let hash = match &module {
                Some(hash) if **hash == spec.module => hash.clone(),
                _ => module.insert(Arc::new(spec.module)).clone(),
            };
            spec.limits = if spec.limits == asked {
                held
            } else {
                match quotas::within_ceilings(spec.limits, &quotas, &tenant) {
                    Ok(held) => held,
                    Err(refusal) => {
                        let result = refused(spec.id, ErrorKind::Quota, refusal, self.wall_us());
                        self.outputs.push_back(Output::Client {
                            session,
                            msg: ToClient::Results(vec![result]),
                        });
                        continue;
                    }
                }
            };
            if let Some(id) = self.submit(session, &tenant, (hash, name), spec) {
                accepted.push(id);
            }
        }
        if let Some(func) = func.filter(|_| !accepted.is_empty()) {
            let now_us = self.wall_us();
            let tenant = Arc::clone(&tenant);
            let (first, total) = (submission.first, submission.tasks);
            self.watch.submitted(first, total, tenant, func, now_us);
        }
        if !accepted.is_empty() {
            self.after_commit(Output::Client {
                session,
                msg: ToClient::Accepted(accepted),
            });
        }
    }

    /// Queues one task; `callee` is `spec.module` and `spec.func`, shared.
    /// Returns its id if it was accepted.
    fn submit(
        &mut self,
        session: u32,
        tenant: &Arc<Tenant>,
        callee: (Arc<ModuleHash>, Arc<str>),
        spec: TaskSpec,
    ) -> Option<TaskId> {
        let submitted_us = self.wall_us();
        let refusal = if spec.id.session() != session {
            Some((
                ErrorKind::Call,
                format!("task id {} does not belong to session {session}", spec.id),
            ))
        } else if self.tasks.contains(spec.id) {
            Some((
                ErrorKind::Call,
                format!("task id {} was already submitted", spec.id),
            ))
        } else if !self.modules.has(&spec.module, tenant) {
            Some((
                ErrorKind::Module,
                format!("module {} is not uploaded for tenant {tenant}", spec.module),
            ))
        } else {
            None
        };
        if let Some((kind, message)) = refusal {
            let result = refused(spec.id, kind, message, submitted_us);
            self.outputs.push_back(Output::Client {
                session,
                msg: ToClient::Results(vec![result]),
            });
            return None;
        }
        let id = spec.id;
        let targets = spec.targets.clone();
        let entry = TaskEntry::submitted(tenant.clone(), callee, spec, submitted_us, session);
        self.observed.argument_bytes += entry.items.byte_len() as u64;
        self.record(Record::Submitted(Box::new(entry.stored(id))));
        self.tasks.insert(id, entry);
        self.submit_to_scheduler(id, targets);
        Some(id)
    }

    /// Queues task `id`, already in `tasks`, for its tenant's fair share.
    fn submit_to_scheduler(&mut self, id: TaskId, targets: Option<Vec<EngineId>>) {
        let now = self.now;
        let Some(task) = self.tasks.get(id) else {
            tracing::error!(task = %id, "a task to schedule has no entry");
            return;
        };
        // Every tenant weighs the default, 1, until weights are configured.
        let tenant = Arc::clone(&task.tenant);
        let key = self.tenant_key(&tenant);
        log_refusal(self.sched.handle_submit(now, id, key, targets));
    }

    /// The scheduler's key of `tenant`, given it the first time it is seen.
    fn tenant_key(&mut self, tenant: &Tenant) -> TenantKey {
        if let Some(&key) = self.tenant_keys.get(tenant) {
            return key;
        }
        let key = TenantKey(u32::try_from(self.tenant_keys.len()).unwrap_or(u32::MAX));
        self.tenant_keys.insert(Tenant::clone(tenant), key);
        key
    }

    // ---- the scheduler's decisions --------------------------------------

    fn drain_scheduler(&mut self) {
        while let Some(action) = self.sched.poll_action() {
            match action {
                Action::Dispatch { task, engine } => self.dispatch(task, engine, false),
                Action::Slice { task, engine } => self.dispatch(task, engine, true),
                Action::Retract { task, engine } => {
                    if self.engines.contains(engine) {
                        self.outputs.push_back(Output::Engine {
                            engine,
                            msg: ToEngine::Retract(task),
                        });
                    }
                }
                Action::Lost { task, engine } => self.lost(task, engine),
                Action::Fail { task, reason } => {
                    self.end(task, Ending::failed(ErrorKind::Unschedulable, reason, None));
                }
            }
        }
    }

    /// Sends task `id` to `engine`: `sliced`, to run at once beside the
    /// task it runs ([`Action::Slice`]).
    fn dispatch(&mut self, id: TaskId, engine: EngineId, sliced: bool) {
        let now_us = self.wall_us();
        let Some(task) = self.tasks.get_mut(id) else {
            tracing::error!(task = %id, %engine, "scheduler dispatched an unknown task");
            return;
        };
        if !self.engines.contains(engine) {
            tracing::error!(task = %id, %engine, "scheduler dispatched to an unknown engine");
            return;
        }
        task.engine = Some(engine);
        let held = view::Held {
            task: id,
            tenant: Arc::clone(&task.tenant),
            func: Arc::clone(&task.func),
            since_us: now_us,
        };
        self.watch.dispatched(engine, held);
        self.observed.dispatched += 1;
        if task.deaths == 0 && task.retries_used == 0 {
            // Its wait in the queue (a task handed back by work stealing
            // counts again at its next dispatch).
            let waited = now_us.saturating_sub(task.submitted_us);
            self.observed.dispatch_wait.observe(waited as f64 / 1e6);
        }
        let weight = self
            .tenants
            .get(&task.tenant)
            .map_or(wasp_sched::DEFAULT_WEIGHT, |settings| settings.weight);
        let run = RunTask {
            id,
            tenant: Tenant::clone(&task.tenant),
            module: *task.module,
            func: task.func.to_string(),
            // Shared bytes: the entry keeps them for a retry.
            items: task.items.clone(),
            limits: task.limits,
            share: Share { sliced, weight },
        };
        if sliced {
            tracing::debug!(task = %id, %engine, "task sliced in beside the engine's own");
        }
        self.send_module_if_missing(engine, run.module);
        self.outputs.push_back(Output::Engine {
            engine,
            msg: ToEngine::Run(run),
        });
    }

    /// Sends `hash`'s bytes to an engine that lacks them, once.
    fn send_module_if_missing(&mut self, engine: EngineId, hash: ModuleHash) {
        let Some(bytes) = self.modules.bytes(&hash) else {
            return;
        };
        if self
            .engines
            .note_module_sent(engine, hash, bytes.len() as u64)
        {
            self.observed.module_misses += 1;
            self.observed.module_bytes_sent += bytes.len() as u64;
            self.outputs.push_back(Output::Engine {
                engine,
                msg: ToEngine::Module { hash, bytes },
            });
        } else {
            self.observed.module_hits += 1;
        }
    }

    /// `engines` are gone: their namespace requests fail, and their tasks
    /// go back to the queue (through [`Action::Lost`]). All leave the
    /// scheduler before any task is dispatched again, so that a task of
    /// one is never sent to another that is leaving with it (the slots of
    /// one process die together), which would count a death per slot.
    fn engines_gone(&mut self, engines: &[EngineId], why: &str) {
        let now = self.now;
        for &engine in engines {
            if !self.engines.leave(engine) {
                continue;
            }
            self.watch.engine_left(engine);
            tracing::warn!(%engine, why, "engine left");
            let failed = self.namespaces.engine_left(engine, why);
            for (session, id, replies) in failed {
                self.answer_namespace(session, id, replies);
            }
            log_refusal(self.sched.handle_engine_left(now, engine));
        }
        self.drain_scheduler();
    }

    /// The engine running `id` died: queue it again, or fail it if engines
    /// died under it too often (or it was being aborted).
    fn lost(&mut self, id: TaskId, engine: EngineId) {
        let max = self.config.max_engine_deaths;
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        task.engine = None;
        task.deaths += 1;
        let (deaths, aborting, targets) = (task.deaths, task.aborting, task.targets.clone());
        if aborting {
            self.end(id, Ending::aborted(Some(engine)));
        } else if deaths >= max {
            let message = format!(
                "KilledWorker: the task's engine died under it {deaths} times (last engine {engine}), \
                 the most allowed (max_engine_deaths = {max}; wasp controller --max-engine-deaths)"
            );
            self.end(
                id,
                Ending::failed(ErrorKind::EngineDied, message, Some(engine)),
            );
        } else {
            tracing::info!(task = %id, %engine, deaths, "task queued again after its engine died");
            self.submit_to_scheduler(id, targets);
        }
    }

    // ---- engines -------------------------------------------------------

    /// An engine sent messages.
    pub(crate) fn handle_engine_msgs(
        &mut self,
        now: Duration,
        engine: EngineId,
        msgs: Vec<FromEngine>,
    ) {
        self.observe(now);
        if !self.engines.seen(engine, now) {
            // Declared dead: nothing it says counts.
            return;
        }
        for msg in msgs {
            match msg {
                FromEngine::Heartbeat { resident_bytes } => {
                    self.engines.reported_memory(engine, resident_bytes);
                }
                FromEngine::Done(result) => self.finished(engine, result),
                FromEngine::Namespace { request, reply } => {
                    if let Some((session, id, replies)) =
                        self.namespaces.reply(request, engine, reply)
                    {
                        self.answer_namespace(session, id, replies);
                    }
                }
                FromEngine::Retracted { task, run } => self.retracted(engine, task, run.is_some()),
            }
        }
        self.drain_scheduler();
    }

    /// An engine answered a retract: the task is queued again, or it runs
    /// there.
    fn retracted(&mut self, engine: EngineId, id: TaskId, returned: bool) {
        let now = self.now;
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        // Only the engine holding the task may hand it back.
        if task.engine != Some(engine) {
            tracing::warn!(task = %id, %engine, "ignoring a retract answer for a task not held there");
            return;
        }
        match self.sched.handle_retracted(now, id, returned) {
            Ok(()) => {
                if returned {
                    task.engine = None;
                    self.watch.released(engine, id);
                }
            }
            Err(err) if returned => {
                // Handed back unasked: the engine will not run it, and the
                // scheduler counts it there; end it rather than lose it.
                tracing::warn!(task = %id, %engine, cause = %err, "an engine handed back a task unasked");
                log_refusal(self.sched.handle_finished(now, id));
                let message = format!("engine {engine} dropped the task without running it");
                self.end(
                    id,
                    Ending::failed(ErrorKind::EngineDied, message, Some(engine)),
                );
            }
            Err(err) => log_refusal(Err(err)),
        }
    }

    fn finished(&mut self, engine: EngineId, result: TaskResult) {
        // Only the engine the task was sent to may finish it: a result from
        // one it was taken from (declared dead, then back) is dropped.
        let Some(task) = self.tasks.get_mut(result.id) else {
            tracing::warn!(task = %result.id, %engine, "ignoring a result for a task not running there");
            return;
        };
        if task.engine != Some(engine) {
            tracing::warn!(task = %result.id, %engine, "ignoring a result for a task not running there");
            return;
        }
        let id = result.id;
        let tenant = Arc::clone(&task.tenant);
        let retry = match &result.outcome {
            Err(err) => task.retry_after(err, &result.meta).map(|limits| {
                tracing::info!(task = %id, kind = ?err.kind, retry = task.retries_used, "retrying a failed task");
                (limits, task.targets.clone())
            }),
            Ok(_) => None,
        };
        let retry = retry.map(|(limits, targets)| {
            // An escalation stops at the tenant's ceilings.
            let limits = quotas::capped(limits, &self.quotas_of(&tenant));
            if let Some(task) = self.tasks.get_mut(id) {
                task.engine = None;
                task.limits = limits;
            }
            targets
        });
        self.engines.count_done(engine);
        let now = self.now;
        // The engine's own clock: its run time, without the network.
        let meta = &result.meta;
        let run_time = Duration::from_micros(meta.completed_us.saturating_sub(meta.started_us));
        self.observed.run_time.observe(run_time.as_secs_f64());
        // A task aborted before it started comes back without a run.
        if let Some(held) = self.watch.released(engine, id)
            && meta.started_us != 0
        {
            self.watch.ran(view::Run {
                task: id,
                tenant: held.tenant,
                engine: engine.0,
                func: held.func,
                started_us: meta.started_us,
                completed_us: meta.completed_us,
                peak_memory_bytes: meta.peak_memory_bytes,
                ok: result.outcome.is_ok(),
            });
        }
        log_refusal(self.sched.handle_finished_after(now, id, run_time));
        match retry {
            Some(targets) => self.submit_to_scheduler(id, targets),
            None => self.end(id, Ending::Result(result)),
        }
    }

    /// Records a task's final state and sends its result to every client
    /// waiting for it.
    fn end(&mut self, id: TaskId, ending: Ending) {
        let Some(task) = self.tasks.remove(id) else {
            return;
        };
        let result = ending.into_result(id, &task);
        let key = self.tenant_key(&task.tenant);
        let now_us = self.wall_us();
        let latency = now_us.saturating_sub(task.submitted_us);
        self.observed.task_latency.observe(latency as f64 / 1e6);
        let outcome = observe::outcome(result.outcome.as_ref().err().map(|e| e.kind));
        *self.observed.ended.entry((key, outcome)).or_insert(0) += 1;
        if let Ok(values) = &result.outcome {
            self.observed.result_bytes += values.byte_len() as u64;
        }
        let failure = result.outcome.as_ref().err().map(|err| view::Failure {
            task: id,
            tenant: Arc::clone(&task.tenant),
            engine: result.meta.engine.map(|e| e.0),
            func: Arc::clone(&task.func),
            kind: outcome,
            message: err.message.clone(),
            at_us: now_us,
        });
        self.watch.ended(id, failure, now_us);
        let outcomes = self.tenant_outcomes.entry(key).or_default();
        if result.outcome.is_ok() {
            self.succeeded += 1;
            outcomes.succeeded += 1;
        } else {
            self.failed += 1;
            outcomes.failed += 1;
        }
        self.record(Record::Finished(Box::new(result.clone())));
        let mut sessions = task.deliver_to.into_vec();
        sessions.retain(|s| self.clients.contains_key(s));
        let last = sessions.pop();
        for session in sessions {
            self.outputs.push_back(Output::Client {
                session,
                msg: ToClient::Results(vec![result.clone()]),
            });
        }
        if let Some(session) = last {
            self.outputs.push_back(Output::Client {
                session,
                msg: ToClient::Results(vec![result]),
            });
        }
    }

    // ---- namespaces ----------------------------------------------------

    /// Sends a namespace operation to each distinct target; the client's
    /// answer goes out when every target has replied. Nothing is sent if
    /// a target is not connected or the module to load is not the
    /// tenant's: the whole request is refused, naming why.
    fn namespace(
        &mut self,
        session: u32,
        id: u64,
        tenant: Tenant,
        targets: Vec<EngineId>,
        op: NamespaceOp,
    ) {
        let distinct = match namespaces::distinct_targets(targets, &self.engines) {
            Ok(distinct) => distinct,
            Err(refusal) => {
                self.answer(session, id, Answer::Error(refusal));
                return;
            }
        };
        if let NamespaceOp::Load(hash) = &op
            && !self.modules.has(hash, &tenant)
        {
            let refusal = format!("module {hash} is not uploaded for tenant {tenant}");
            self.answer(session, id, Answer::Error(refusal));
            return;
        }
        // What a push moves, for the tenant's usage: its values as
        // encoded (the controller never decodes them), to each engine.
        if let NamespaceOp::Push(entries) = &op {
            let bytes = (entries.byte_len() as u64).saturating_mul(distinct.len() as u64);
            self.record_namespace_bytes(&tenant, bytes);
        }
        // One copy of the operation, however many engines it goes to.
        let op = Arc::new(wasp_proto::msg::Encoded::new(op));
        let quota_bytes = self.quotas_of(&tenant).namespace_bytes;
        let request = self.namespaces.start(session, id, distinct.clone());
        for engine in distinct {
            if let NamespaceOp::Load(hash) = &**op {
                self.send_module_if_missing(engine, *hash);
            }
            self.outputs.push_back(Output::Engine {
                engine,
                msg: ToEngine::Namespace {
                    request,
                    tenant: tenant.clone(),
                    quota_bytes,
                    op: op.clone(),
                },
            });
        }
        if let Some((session, id, replies)) = self.namespaces.complete(request) {
            self.answer_namespace(session, id, replies);
        }
    }

    /// Answers a namespace request, counting the values it pulled toward
    /// the tenant's usage.
    fn answer_namespace(
        &mut self,
        session: u32,
        id: u64,
        replies: Vec<wasp_proto::msg::NamespaceReply>,
    ) {
        // The values as encoded: the controller never decodes them.
        let pulled: usize = replies.iter().flatten().map(|p| p.byte_len()).sum();
        if let Some(client) = self.clients.get(&session) {
            let tenant = Tenant::clone(&client.tenant);
            self.record_namespace_bytes(&tenant, pulled as u64);
        }
        self.answer(session, id, Answer::Namespace(replies));
    }

    fn record_namespace_bytes(&mut self, tenant: &Tenant, bytes: u64) {
        if bytes > 0 {
            self.record(Record::NamespaceBytes {
                tenant: tenant.clone(),
                bytes,
            });
        }
    }

    // ---- the task database ----------------------------------------------

    fn db_request(&mut self, session: u32, id: u64, tenant: Arc<Tenant>, request: DbRequest) {
        db::request(self, session, id, tenant, request);
    }

    /// The records answered a [`Output::Read`].
    pub(crate) fn handle_read(&mut self, now: Duration, ticket: u64, reply: ReadReply) {
        self.observe(now);
        db::read_done(self, ticket, reply);
        self.drain_scheduler();
    }

    fn read(&mut self, read: Read, then: db::Then) -> u64 {
        let ticket = self.reads.start(then);
        self.outputs.push_back(Output::Read { ticket, read });
        ticket
    }

    /// The dashboard asks for task `id`'s record, as a viewer of `tenant`
    /// (`admin`: of every tenant); answered by [`Output::DashboardTask`]
    /// with `request`.
    pub(crate) fn handle_dashboard_task(
        &mut self,
        request: u64,
        tenant: &Tenant,
        admin: bool,
        id: TaskId,
    ) {
        db::dashboard_task(self, request, tenant, admin, id);
    }

    fn db_answer(&mut self, session: u32, id: u64, answer: DbAnswer) {
        self.answer(session, id, Answer::Db(answer));
    }

    /// A new id in the controller's own session (for resubmitted tasks).
    fn own_task_id(&mut self) -> Option<TaskId> {
        let seq = self.next_own_task;
        self.next_own_task = seq.checked_add(1)?;
        Some(TaskId::new(self.own_session, seq))
    }

    // ---- status --------------------------------------------------------

    fn status(&self) -> ClusterStatus {
        let running = self.sched.running() as u64;
        ClusterStatus {
            engines: self.engine_statuses(true),
            queued: (self.tasks.len() as u64).saturating_sub(running),
            running,
            succeeded: self.succeeded,
            failed: self.failed,
            scheme: self.config.scheme_name.clone(),
            hwm: self.config.sched.hwm,
            // The driver fills in what the records cost (it owns SQLite).
            records: RecordsStats::default(),
        }
    }

    /// Every connected engine; its load (tasks held and done, module
    /// bytes sent) only `with_load`, since that is every tenant's work.
    fn engine_statuses(&self, with_load: bool) -> Vec<EngineStatus> {
        self.engines
            .iter()
            .map(|(id, e)| EngineStatus {
                id,
                name: e.name.clone(),
                outstanding: if with_load {
                    self.sched.outstanding(id).unwrap_or(0)
                } else {
                    0
                },
                done: if with_load { e.done } else { 0 },
                module_bytes_sent: if with_load { e.module_bytes_sent } else { 0 },
            })
            .collect()
    }

    /// The status a tenant that is not an admin sees: the engines (their
    /// ids and names, to target them), not their load, and its own tasks'
    /// counts; nothing of another tenant's work, nor of the records' cost.
    fn tenant_status(&mut self, tenant: &Tenant) -> ClusterStatus {
        let key = self.tenant_key(tenant);
        let (queued, running) = self
            .sched
            .tenant_stats(key)
            .map_or((0, 0), |t| (t.queued as u64, t.running as u64));
        let outcomes = self.tenant_outcomes.get(&key).copied().unwrap_or_default();
        ClusterStatus {
            engines: self.engine_statuses(false),
            queued,
            running,
            succeeded: outcomes.succeeded,
            failed: outcomes.failed,
            scheme: self.config.scheme_name.clone(),
            hwm: self.config.sched.hwm,
            records: RecordsStats::default(),
        }
    }

    /// Whether `engine` holds a task (`/metrics` and the dashboard call it
    /// busy).
    fn engine_busy(&self, engine: EngineId) -> bool {
        self.sched.outstanding(engine).unwrap_or(0) > 0
    }

    /// The Prometheus text of what the controller has seen and holds now
    /// (`/metrics`, for admins: every tenant's figures).
    pub(crate) fn metrics(&self) -> String {
        let mut by_tenant: Vec<(String, u64, u64)> = self
            .tenant_keys
            .iter()
            .map(|(tenant, &key)| {
                let (queued, running) = self
                    .sched
                    .tenant_stats(key)
                    .map_or((0, 0), |t| (t.queued as u64, t.running as u64));
                (tenant.0.clone(), queued, running)
            })
            .collect();
        by_tenant.sort();
        let busy = self
            .engines
            .ids()
            .into_iter()
            .filter(|&id| self.engine_busy(id))
            .count() as u64;
        // Reported by the engines: a liar's figure must not overflow.
        let (engines_resident_bytes, engine_process_resident_bytes_max) = self
            .engines
            .processes_resident_bytes()
            .fold((0, 0), |(sum, max), bytes| {
                (u64::saturating_add(sum, bytes), u64::max(max, bytes))
            });
        let gauges = observe::Gauges {
            by_tenant,
            busy_engines: busy,
            idle_engines: self.engines.ids().len() as u64 - busy,
            engines_resident_bytes,
            engine_process_resident_bytes_max,
        };
        let names: HashMap<TenantKey, &str> = self
            .tenant_keys
            .iter()
            .map(|(tenant, &key)| (key, tenant.0.as_str()))
            .collect();
        observe::render(&self.observed, &gauges, |key| {
            names
                .get(&key)
                .map_or_else(|| format!("#{}", key.0), |n| (*n).to_owned())
        })
    }

    /// What the dashboard shows a viewer of `tenant` (`admin`: of every
    /// tenant), as JSON: the engines, the queue by tenant, the maps'
    /// progress, the recent runs and failures.
    pub(crate) fn dashboard_view(&mut self, now: Duration, tenant: &Tenant, admin: bool) -> String {
        self.observe(now);
        let now_us = self.wall_us();
        let mut queue = Vec::new();
        let keys: Vec<(Tenant, TenantKey)> = self
            .tenant_keys
            .iter()
            .filter(|(t, _)| admin || *t == tenant)
            .map(|(t, k)| (t.clone(), *k))
            .collect();
        for (name, key) in keys {
            let stats = self.sched.tenant_stats(key);
            let outcomes = self.tenant_outcomes.get(&key).copied().unwrap_or_default();
            queue.push(view::TenantRow {
                weight: self
                    .tenants
                    .get(&name)
                    .map_or(wasp_sched::DEFAULT_WEIGHT, |s| s.weight),
                tenant: name.0,
                queued: stats.as_ref().map_or(0, |s| s.queued as u64),
                running: stats.as_ref().map_or(0, |s| s.running as u64),
                succeeded: outcomes.succeeded,
                failed: outcomes.failed,
                usage_s: stats.map_or(0.0, |s| s.usage.as_secs_f64()),
            });
        }
        queue.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        let engines = self
            .engines
            .iter()
            .map(|(id, entry)| {
                let watched = self.watch.engines.get(&id);
                let totals = watched.map_or_else(Default::default, |w| w.totals(tenant, admin));
                view::EngineRow {
                    id: id.0,
                    // Engines name themselves `HOST:PID`.
                    host: entry
                        .name
                        .rsplit_once(':')
                        .map_or(entry.name.as_str(), |(host, _)| host)
                        .to_owned(),
                    name: entry.name.clone(),
                    state: if self.engine_busy(id) { "busy" } else { "idle" },
                    current: self.watch.current(id, tenant, admin),
                    done: totals.done,
                    failed: totals.failed,
                    busy_s: totals.busy_us as f64 / 1e6,
                    memory_bytes: self.engines.resident_bytes(id),
                    last_heartbeat_us: self
                        .wall_base_us
                        .saturating_add(entry.last_seen().as_micros() as u64),
                }
            })
            .collect();
        let (runs, failures, maps) = self.watch.work_of(tenant, admin, now_us);
        let view = view::DashboardView {
            tenant: tenant.0.clone(),
            admin,
            now_us,
            engines,
            queue,
            maps,
            runs,
            failures,
        };
        serde_json::to_string(&view).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
    }

    /// Tasks not yet in a final state.
    #[cfg(test)]
    pub(crate) fn unfinished(&self) -> usize {
        self.tasks.len()
    }
}

/// The result of a task refused at submission: it never ran.
fn refused(id: TaskId, kind: ErrorKind, message: String, submitted_us: u64) -> TaskResult {
    TaskResult {
        id,
        outcome: Err(TaskError {
            kind,
            message,
            item: None,
        }),
        meta: TaskMeta {
            submitted_us,
            ..TaskMeta::default()
        },
    }
}

/// What a client of a removed tenant is told.
fn removed_reason(tenant: &Tenant) -> String {
    format!("tenant {tenant} was removed: its token is revoked")
}

/// The scheduler refuses events that contradict its state (an unknown task,
/// a duplicate engine); the core already filters those, so one reaching here
/// is a bug worth a log line, not a crash.
fn log_refusal(result: Result<(), wasp_sched::SchedError>) {
    if let Err(err) = result {
        tracing::warn!(cause = %err, "the scheduler refused an event");
    }
}
