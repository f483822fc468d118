//! The hub's core on a simulated clock, through thousands of seeded random
//! fault sequences (issue 11, item 8): engines that finish, fail, die,
//! fall silent and answer late; a records writer that commits late; a
//! controller that crashes, losing what was not committed, and restarts
//! from its records; clients that abort and ask for results. Each run
//! ends fault-free until quiet, then checks what wasp promises: every
//! accepted task reaches exactly one final state in the records, with
//! the right result, and no client receives a result twice.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use wasp_proto::db::{DbAnswer, DbRequest, ResultLookup, Status};
use wasp_proto::msg::{
    Answer, ClientMsg, ErrorKind, FromEngine, Items, Request, RetryPolicy, RunTask, TaskError,
    TaskLimits, TaskMeta, TaskResult, TaskSpec, ToClient, ToEngine, Values,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant, Value};
use wasp_sched::{Rng, SchedulerConfig, Scheme};

use super::{HubConfig, HubState, Output};
use crate::records::{Found, Read, ReadReply, Record, StoredTask, Want};

const MAX_DEATHS: u32 = 3;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

fn config(seed: u64) -> HubConfig {
    HubConfig {
        sched: SchedulerConfig {
            scheme: if seed.is_multiple_of(2) {
                Scheme::LeastLoad
            } else {
                Scheme::Lru
            },
            hwm: 1 + (seed % 3) as u32,
            seed,
            prefetch: Duration::from_millis(if seed % 4 < 2 { 0 } else { 5 }),
            time_slice: seed % 8 >= 4,
        },
        heartbeat_timeout: HEARTBEAT_TIMEOUT,
        max_engine_deaths: MAX_DEATHS,
        default_quotas: wasp_proto::msg::Quotas::default(),
        scheme_name: "sim".into(),
        tenants: Vec::new(),
    }
}

fn module() -> ModuleHash {
    ModuleHash::of(b"sim module")
}

fn tenant() -> Tenant {
    Tenant("sim".into())
}

/// What a task computes: its id, so a result names its task.
fn expected(id: TaskId) -> Value {
    Value::U64(id.0)
}

/// What the records hold: the committed log, applied.
#[derive(Default)]
struct Db {
    /// Every record emitted, in order; the first `committed` are durable.
    log: Vec<Record>,
    committed: usize,
    /// Where the current controller run's records start in `log`.
    run_start: usize,
    tasks: BTreeMap<TaskId, DbTask>,
    max_session: u32,
}

struct DbTask {
    spec: StoredTask,
    result: Option<TaskResult>,
}

impl Db {
    fn commit(&mut self, upto: usize) {
        while self.committed < upto.min(self.log.len()) {
            match &self.log[self.committed] {
                Record::Submitted(task) => {
                    let previous = self.tasks.insert(
                        task.id,
                        DbTask {
                            spec: StoredTask::clone(task),
                            result: None,
                        },
                    );
                    assert!(previous.is_none(), "task {} recorded twice", task.id);
                }
                Record::Finished(result) => {
                    let task = self
                        .tasks
                        .get_mut(&result.id)
                        .unwrap_or_else(|| panic!("task {} finished unrecorded", result.id));
                    assert!(
                        task.result.is_none(),
                        "task {} reached a final state twice",
                        result.id
                    );
                    task.result = Some(TaskResult::clone(result));
                }
                Record::Session { session, .. } => {
                    self.max_session = self.max_session.max(*session)
                }
                Record::Module { .. } | Record::Engine { .. } | Record::NamespaceBytes { .. } => {}
            }
            self.committed += 1;
        }
    }

    /// A controller crash: what was not committed is gone.
    fn crash(&mut self) {
        self.log.truncate(self.committed);
        self.run_start = self.committed;
    }

    /// Records committed since the controller (re)started: the count its
    /// writer reports.
    fn committed_this_run(&self) -> u64 {
        (self.committed - self.run_start) as u64
    }

    fn lookup(&self, tenant: &Tenant, ids: &[TaskId], want: Want) -> Vec<Option<Found>> {
        ids.iter()
            .map(|id| {
                let task = self.tasks.get(id).filter(|t| t.spec.tenant == *tenant)?;
                let status = match &task.result {
                    None => Status::Queued,
                    Some(r) if r.outcome.is_ok() => Status::Succeeded,
                    Some(_) => Status::Failed,
                };
                Some(Found {
                    status,
                    result: matches!(want, Want::Result)
                        .then(|| task.result.clone())
                        .flatten(),
                    spec: matches!(want, Want::Spec).then(|| task.spec.clone()),
                })
            })
            .collect()
    }
}

struct SimEngine {
    /// Tasks it holds, the front one running.
    held: VecDeque<RunTask>,
    /// Stopped sending anything (a hung process): the hub should declare
    /// it dead.
    silent: bool,
    /// How often this engine's runs fail (in 1/8ths), to exercise retries.
    flaky: u64,
}

/// A client connection.
#[derive(Default)]
struct SimClient {
    /// Results received, by task: must never exceed one.
    results: HashMap<TaskId, u32>,
    /// Tasks it was told are accepted.
    accepted: HashSet<TaskId>,
    /// Task ids of `get_result` answered "pending": their result must come.
    awaiting: HashSet<TaskId>,
    next_seq: u32,
    next_request: u64,
}

struct Sim {
    rng: Rng,
    seed: u64,
    now: Duration,
    hub: HubState,
    db: Db,
    engines: BTreeMap<EngineId, SimEngine>,
    /// Engines declared dead that still have something to say.
    zombies: Vec<(EngineId, RunTask)>,
    next_engine: u32,
    clients: BTreeMap<u32, SimClient>,
    /// Every task any client was told is accepted, over every run.
    accepted: HashSet<TaskId>,
    /// Tasks a client aborted.
    aborted: HashSet<TaskId>,
    next_session: u32,
    crashes: u32,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut sim = Self {
            rng: Rng::new(seed),
            seed,
            now: Duration::ZERO,
            hub: HubState::new(config(seed), 0, 1),
            db: Db::default(),
            engines: BTreeMap::new(),
            zombies: Vec::new(),
            next_engine: 0,
            clients: BTreeMap::new(),
            accepted: HashSet::new(),
            aborted: HashSet::new(),
            next_session: 2,
            crashes: 0,
        };
        sim.hub
            .restore_module(module(), tenant(), Arc::new(b"sim module".to_vec()));
        sim.start_cluster();
        sim
    }

    fn start_cluster(&mut self) {
        for _ in 0..1 + self.rng.below(3) {
            self.join_engine();
        }
        for _ in 0..1 + self.rng.below(2) {
            self.join_client();
        }
    }

    fn join_engine(&mut self) {
        let id = EngineId(self.next_engine);
        self.next_engine += 1;
        let flaky = self.rng.below(3) as u64;
        self.engines.insert(
            id,
            SimEngine {
                held: VecDeque::new(),
                silent: false,
                flaky,
            },
        );
        self.hub
            .handle_engine_joined(self.now, id, id, format!("sim-{}", id.0), vec![module()]);
    }

    fn join_client(&mut self) {
        let session = self.next_session;
        self.next_session += 1;
        self.clients.insert(session, SimClient::default());
        self.hub.handle_client_joined(session, tenant(), false);
    }

    /// Carries out the hub's outputs, as the driver and the peers would.
    fn pump(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Client { session, msg } => self.deliver_to_client(session, msg),
                Output::Engine { engine, msg } => self.deliver_to_engine(engine, msg),
                Output::CloseEngine { engine, .. } => {
                    // It may still have a result in flight: it arrives
                    // after the close and must be dropped.
                    if let Some(gone) = self.engines.remove(&engine)
                        && let Some(run) = gone.held.into_iter().next()
                    {
                        self.zombies.push((engine, run));
                    }
                }
                Output::Record(record) => self.db.log.push(record),
                Output::Read { ticket, read } => {
                    // Reads see every record before them: the writer
                    // commits them first.
                    let upto = self.db.log.len();
                    self.db.commit(upto);
                    let reply = match read {
                        Read::Lookup { tenant, ids, want } => {
                            ReadReply::Lookup(self.db.lookup(&tenant, &ids, want))
                        }
                        Read::Query { .. }
                        | Read::Purge { .. }
                        | Read::Usage
                        | Read::Task { .. } => ReadReply::Failed("not simulated".into()),
                    };
                    self.hub.handle_committed(self.db.committed_this_run());
                    self.hub.handle_read(self.now, ticket, reply);
                }
                // The simulation has one tenant, never administered, and
                // no dashboard.
                Output::Shutdown
                | Output::CloseClient { .. }
                | Output::Tenants { .. }
                | Output::DashboardTask { .. } => {}
            }
        }
    }

    fn deliver_to_client(&mut self, session: u32, msg: ToClient) {
        let Some(client) = self.clients.get_mut(&session) else {
            return;
        };
        match msg {
            ToClient::Results(results) => {
                for result in results {
                    let id = result.id;
                    let count = client.results.entry(id).or_insert(0);
                    *count += 1;
                    assert_eq!(
                        *count, 1,
                        "seed {}: session {session} got {id} twice",
                        self.seed
                    );
                    client.awaiting.remove(&id);
                    check_result(self.seed, &result, &self.aborted);
                }
            }
            ToClient::Accepted(ids) => {
                client.accepted.extend(ids.iter().copied());
                self.accepted.extend(ids);
            }
            ToClient::Answer { answer, .. } => {
                if let Answer::Db(DbAnswer::Results(found)) = answer {
                    for lookup in found {
                        if let ResultLookup::Finished(result) = lookup {
                            check_result(self.seed, &result, &self.aborted);
                        }
                    }
                }
            }
            ToClient::Closing(_) => {}
        }
    }

    fn deliver_to_engine(&mut self, id: EngineId, msg: ToEngine) {
        let Some(engine) = self.engines.get_mut(&id) else {
            return;
        };
        match msg {
            ToEngine::Run(run) => engine.held.push_back(run),
            ToEngine::Retract(task) => {
                // The front task has started; the others hand back.
                let position = engine.held.iter().position(|r| r.id == task);
                let run = match position {
                    Some(i) if i > 0 => engine.held.remove(i),
                    _ => None,
                };
                if !engine.silent {
                    let msgs = vec![FromEngine::Retracted { task, run }];
                    self.hub.handle_engine_msgs(self.now, id, msgs);
                }
            }
            ToEngine::Abort(task) => {
                if let Some(i) = engine.held.iter().position(|r| r.id == task)
                    && let Some(run) = engine.held.remove(i)
                    && !engine.silent
                {
                    let done = failure(run.id, ErrorKind::Aborted);
                    self.hub
                        .handle_engine_msgs(self.now, id, vec![FromEngine::Done(done)]);
                }
            }
            ToEngine::Namespace { request, .. } => {
                if !engine.silent {
                    let msgs = vec![FromEngine::Namespace {
                        request,
                        reply: Ok(wasp_proto::msg::Pulled::none()),
                    }];
                    self.hub.handle_engine_msgs(self.now, id, msgs);
                }
            }
            ToEngine::Module { .. } | ToEngine::Shutdown => {}
        }
    }

    /// One random event.
    fn step(&mut self, faults: bool) {
        self.now += Duration::from_millis(1 + self.rng.below(400) as u64);
        let roll = self.rng.below(100);
        match roll {
            0..=14 => self.submit(),
            15..=54 => self.finish_one(),
            55..=64 => self.commit_some(),
            65..=74 => self.heartbeats(),
            75..=77 if faults => self.kill_engine(),
            78..=79 if faults => self.silence_engine(),
            80..=82 if faults => self.late_answer(),
            83..=84 => self.abort_one(),
            85..=87 => self.get_result(),
            88 if faults && self.rng.below(4) == 0 => self.crash_controller(),
            89..=91 => {
                if self.engines.len() < 4 {
                    self.join_engine();
                }
            }
            _ => self.hub.handle_tick(self.now),
        }
        self.pump();
    }

    fn submit(&mut self) {
        let Some((&session, client)) = self.clients.iter_mut().next() else {
            return;
        };
        let count = 1 + self.rng.below(5);
        let mut specs = Vec::new();
        for _ in 0..count {
            let id = TaskId::new(session, client.next_seq);
            client.next_seq += 1;
            let retries = self.rng.below(3) as u32;
            specs.push(TaskSpec {
                id,
                module: module(),
                func: "f".into(),
                items: Items::encode(&[Vec::new()]).expect("encodes"),
                targets: None,
                limits: TaskLimits::default(),
                retry: RetryPolicy {
                    retries,
                    escalate: retries > 0,
                },
            });
        }
        self.hub.handle_client_msgs(
            self.now,
            session,
            vec![ClientMsg::Submit {
                submission: wasp_proto::msg::Submission::whole(&specs),
                specs,
            }],
        );
    }

    /// An engine finishes its running task: a result, or (if flaky) a
    /// time-limit failure.
    fn finish_one(&mut self) {
        let ids: Vec<EngineId> = self
            .engines
            .iter()
            .filter(|(_, e)| !e.held.is_empty() && !e.silent)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let id = ids[self.rng.below(ids.len())];
        let fails = self.rng.below(8) < self.engines[&id].flaky as usize;
        let Some(run) = self.engines.get_mut(&id).and_then(|e| e.held.pop_front()) else {
            return;
        };
        let done = if fails {
            failure(run.id, ErrorKind::Timeout)
        } else {
            success(run.id)
        };
        self.hub
            .handle_engine_msgs(self.now, id, vec![FromEngine::Done(done)]);
    }

    fn commit_some(&mut self) {
        let pending = self.db.log.len() - self.db.committed;
        let upto = self.db.committed + self.rng.below(pending + 1);
        self.db.commit(upto);
        self.hub.handle_committed(self.db.committed_this_run());
    }

    fn heartbeats(&mut self) {
        let alive: Vec<EngineId> = self
            .engines
            .iter()
            .filter(|(_, e)| !e.silent)
            .map(|(id, _)| *id)
            .collect();
        for id in alive {
            self.hub.handle_engine_msgs(
                self.now,
                id,
                vec![FromEngine::Heartbeat { resident_bytes: 1 }],
            );
        }
        self.hub.handle_tick(self.now);
    }

    fn random_engine(&mut self) -> Option<EngineId> {
        let ids: Vec<EngineId> = self.engines.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[self.rng.below(ids.len())])
    }

    /// kill -9: the connection closes.
    fn kill_engine(&mut self) {
        if let Some(id) = self.random_engine() {
            self.engines.remove(&id);
            self.hub.handle_engines_left(self.now, &[id]);
            self.join_engine();
        }
    }

    fn silence_engine(&mut self) {
        if let Some(id) = self.random_engine()
            && let Some(engine) = self.engines.get_mut(&id)
        {
            engine.silent = true;
        }
    }

    /// A declared-dead engine's result arrives anyway.
    fn late_answer(&mut self) {
        if let Some((engine, run)) = self.zombies.pop() {
            self.hub
                .handle_engine_msgs(self.now, engine, vec![FromEngine::Done(success(run.id))]);
        }
    }

    fn abort_one(&mut self) {
        let Some((&session, client)) = self.clients.iter_mut().next() else {
            return;
        };
        if client.next_seq == 0 {
            return;
        }
        let id = TaskId::new(session, self.rng.below(client.next_seq as usize) as u32);
        client.next_request += 1;
        let request = client.next_request;
        self.aborted.insert(id);
        let msg = ClientMsg::Request {
            id: request,
            request: Request::Db(DbRequest::Abort(vec![id])),
        };
        self.hub.handle_client_msgs(self.now, session, vec![msg]);
    }

    /// Another client asks for an accepted task's result: it must arrive,
    /// now or later.
    fn get_result(&mut self) {
        let Some(&id) = self.accepted.iter().next() else {
            return;
        };
        let Some((&session, client)) = self.clients.iter_mut().last() else {
            return;
        };
        if client.results.contains_key(&id) {
            return;
        }
        client.next_request += 1;
        let msg = ClientMsg::Request {
            id: client.next_request,
            request: Request::Db(DbRequest::GetResults(vec![id])),
        };
        if self.hub.tasks.contains(id) {
            client.awaiting.insert(id);
        }
        self.hub.handle_client_msgs(self.now, session, vec![msg]);
    }

    /// kill -9 of the controller: uncommitted records are lost; a new
    /// controller loads what was committed; engines and clients connect
    /// again.
    fn crash_controller(&mut self) {
        self.crashes += 1;
        self.db.crash();
        let next_session = self.db.max_session.max(self.next_session) + 1;
        self.next_session = next_session + 1;
        self.hub = HubState::new(config(self.seed), 0, next_session);
        self.hub
            .restore_module(module(), tenant(), Arc::new(b"sim module".to_vec()));
        let unfinished: Vec<StoredTask> = self
            .db
            .tasks
            .values()
            .filter(|t| t.result.is_none())
            .map(|t| t.spec.clone())
            .collect();
        for task in unfinished {
            self.hub.restore_task(self.now, task);
        }
        self.engines.clear();
        self.zombies.clear();
        self.clients.clear();
        self.start_cluster();
    }

    /// Runs fault-free until nothing is left to do.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            self.now += Duration::from_millis(100);
            self.heartbeats();
            self.pump();
            let upto = self.db.log.len();
            self.db.commit(upto);
            self.hub.handle_committed(self.db.committed_this_run());
            self.pump();
            if self.engines.values().all(|e| e.silent) {
                self.join_engine();
                self.pump();
            }
            let busy: Vec<EngineId> = self
                .engines
                .iter()
                .filter(|(_, e)| !e.held.is_empty() && !e.silent)
                .map(|(id, _)| *id)
                .collect();
            for id in busy {
                if let Some(run) = self.engines.get_mut(&id).and_then(|e| e.held.pop_front()) {
                    self.hub.handle_engine_msgs(
                        self.now,
                        id,
                        vec![FromEngine::Done(success(run.id))],
                    );
                    self.pump();
                }
            }
            if self.hub.unfinished() == 0 && self.db.committed == self.db.log.len() {
                return;
            }
        }
        panic!(
            "seed {}: {} tasks never finished",
            self.seed,
            self.hub.unfinished()
        );
    }

    /// What wasp promises, checked at the end.
    fn check(&self) {
        for id in &self.accepted {
            let task = self.db.tasks.get(id).unwrap_or_else(|| {
                panic!("seed {}: accepted {id} is not in the records", self.seed)
            });
            let result = task
                .result
                .as_ref()
                .unwrap_or_else(|| panic!("seed {}: accepted {id} never ended", self.seed));
            check_result(self.seed, result, &self.aborted);
        }
        for (session, client) in &self.clients {
            // Without a crash since it connected, a client hears of every
            // task it was told is accepted, and of every one it awaits.
            for id in client.accepted.iter().chain(&client.awaiting) {
                assert_eq!(
                    client.results.get(id),
                    Some(&1),
                    "seed {}: session {session} never got the result of {id}",
                    self.seed
                );
            }
        }
    }
}

fn success(id: TaskId) -> TaskResult {
    TaskResult {
        id,
        outcome: Ok(Values::encode(&[Some(expected(id))]).expect("encodes")),
        meta: TaskMeta::default(),
    }
}

fn failure(id: TaskId, kind: ErrorKind) -> TaskResult {
    TaskResult {
        id,
        outcome: Err(TaskError {
            kind,
            message: format!("{kind:?}"),
            item: None,
        }),
        meta: TaskMeta {
            limits: TaskLimits {
                timeout_us: Some(1000),
                memory_bytes: None,
            },
            ..TaskMeta::default()
        },
    }
}

/// A final result is the task's own value, or an error wasp can explain.
fn check_result(seed: u64, result: &TaskResult, aborted: &HashSet<TaskId>) {
    match &result.outcome {
        Ok(values) => {
            let values = values.decode().expect("results decode");
            assert_eq!(
                values,
                [Some(expected(result.id))],
                "seed {seed}: {} has another task's result",
                result.id
            );
        }
        Err(err) => match err.kind {
            ErrorKind::Timeout => {}
            ErrorKind::Aborted => assert!(
                aborted.contains(&result.id),
                "seed {seed}: {} aborted unasked",
                result.id
            ),
            ErrorKind::EngineDied => {
                assert!(err.message.contains("KilledWorker"), "{}", err.message);
                assert!(
                    result.meta.attempts >= MAX_DEATHS,
                    "seed {seed}: {} failed after {} deaths",
                    result.id,
                    result.meta.attempts
                );
            }
            other => panic!("seed {seed}: {} failed unexpectedly: {other:?}", result.id),
        },
    }
}

fn run(seed: u64, steps: usize) -> Sim {
    let mut sim = Sim::new(seed);
    for _ in 0..steps {
        sim.step(true);
    }
    sim.settle();
    sim.check();
    sim
}

#[test]
fn every_accepted_task_ends_once_whatever_dies() {
    let mut crashes = 0;
    let mut accepted = 0;
    for seed in 0..2000 {
        let sim = run(seed, 300);
        crashes += sim.crashes;
        accepted += sim.accepted.len();
    }
    // The sequences did exercise what they are for.
    assert!(crashes > 50, "only {crashes} controller crashes");
    assert!(accepted > 10_000, "only {accepted} tasks accepted");
}

#[test]
fn a_task_whose_engines_keep_dying_fails_as_killed_worker() {
    let mut sim = Sim::new(7);
    sim.engines.clear();
    let mut hub = HubState::new(config(7), 0, 1);
    hub.restore_module(module(), tenant(), Arc::new(b"sim module".to_vec()));
    sim.hub = hub;
    sim.clients.clear();
    sim.join_client();
    sim.submit();
    sim.pump();
    let session = *sim.clients.keys().next().expect("a client");
    let first = TaskId::new(session, 0);
    for death in 1..=MAX_DEATHS {
        sim.join_engine();
        sim.pump();
        let (&engine, held) = sim
            .engines
            .iter()
            .find(|(_, e)| e.held.iter().any(|r| r.id == first))
            .expect("the task was dispatched");
        assert!(!held.held.is_empty());
        sim.engines.remove(&engine);
        sim.hub.handle_engines_left(sim.now, &[engine]);
        sim.pump();
        let got = sim.clients[&session].results.contains_key(&first);
        assert_eq!(got, death == MAX_DEATHS, "after death {death}");
    }
}

#[test]
fn the_engines_of_a_process_that_dies_leave_together_and_count_one_death() {
    let mut sim = Sim::new(11);
    sim.engines.clear();
    let mut hub = HubState::new(config(11), 0, 1);
    hub.restore_module(module(), tenant(), Arc::new(b"sim module".to_vec()));
    sim.hub = hub;
    sim.clients.clear();
    sim.join_client();
    // One process of two engines (slots).
    let process = [EngineId(0), EngineId(1)];
    for id in process {
        let idle = SimEngine {
            held: VecDeque::new(),
            silent: false,
            flaky: 0,
        };
        sim.engines.insert(id, idle);
        sim.hub.handle_engine_joined(
            sim.now,
            id,
            process[0],
            format!("sim#{}", id.0),
            vec![module()],
        );
    }
    sim.next_engine = 2;
    sim.submit();
    sim.pump();
    let session = *sim.clients.keys().next().expect("a client");
    let first = TaskId::new(session, 0);
    assert!(
        process
            .iter()
            .any(|id| sim.engines[id].held.iter().any(|r| r.id == first)),
        "dispatched to the process"
    );
    // The process dies: its engines leave as one, and the task is not
    // sent to the slot dying beside its own.
    for id in process {
        sim.engines.remove(&id);
    }
    sim.hub.handle_engines_left(sim.now, &process);
    sim.pump();
    // That was one death: it takes MAX_DEATHS - 1 more to fail it.
    for death in 2..=MAX_DEATHS {
        sim.join_engine();
        sim.pump();
        let (&engine, _) = sim
            .engines
            .iter()
            .find(|(_, e)| e.held.iter().any(|r| r.id == first))
            .expect("the task was dispatched again");
        sim.engines.remove(&engine);
        sim.hub.handle_engines_left(sim.now, &[engine]);
        sim.pump();
        let got = sim.clients[&session].results.contains_key(&first);
        assert_eq!(got, death == MAX_DEATHS, "after death {death}");
    }
}
