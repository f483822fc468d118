//! The scheduler proper: queued tasks, engines, and the loop that matches
//! them.
//!
//! # Queues
//!
//! Every submission gets a sequence number. Untargeted tasks wait in their
//! tenant's FIFO, and the fair share (`fair`) says which tenant's head
//! goes next; a targeted task waits in the *lane* of each engine it names,
//! whatever its tenant. A lane's head is runnable exactly when its engine is
//! below the high-water mark, so the available engines with a non-empty
//! lane sit in `ready`, ordered by the sequence number of their head. The
//! next task to dispatch is then the older of the fair share's choice (if
//! any engine is available) and `ready`'s first entry. With one tenant that
//! is the oldest task that can run, found without scanning; with several,
//! the untargeted ones are shared by weight and the targeted ones keep
//! their engines' submission order. Either way a task whose targets are
//! busy never holds back younger tasks that can run elsewhere.
//!
//! # Tasks
//!
//! A task's state lives in a slot of one vector, found from its id through
//! the only map keyed by task id (a B-tree); queue entries name the slot and the
//! submission's sequence number. A task named by several engines has an
//! entry in each lane; when it is dispatched or failed the other entries go
//! stale (their slot has moved on to another state or submission) and are
//! dropped lazily when they reach a lane's head. The tasks running on an
//! engine form a list through their slots, in dispatch order, so that a
//! dispatch or a finish allocates nothing and looks up no map but the
//! engine's.
//!
//! # Invariant
//!
//! After every `handle_*` call, no queued task could run: either every
//! engine is at the high-water mark or no tenant has an untargeted task
//! waiting, and `ready` is empty. The randomized test in `tests/ops.rs`
//! checks this after every step.

use std::collections::btree_map::Entry as MapEntry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use wasp_proto::{EngineId, TaskId};

use crate::config::{MAX_PREFETCH, MAX_PREFETCH_FAR, SchedulerConfig};
use crate::error::SchedError;
use crate::fair::{Charge, TenantKey, TenantStats, Tenants};
use crate::hash::IdMap;
use crate::pick::{Available, Load, pick_among};
use crate::rng::Rng;

/// What the scheduler asks its owner to do, read with
/// [`Scheduler::poll_action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `task` to `engine`. The scheduler already counts it as
    /// outstanding there until [`Scheduler::handle_finished`].
    Dispatch {
        /// The task to send.
        task: TaskId,
        /// The engine to run it.
        engine: EngineId,
    },
    /// Send `task` to `engine` to run at once beside the tasks it runs,
    /// which are another tenant's: the engine shares its time between them
    /// by weight ([`SchedulerConfig::time_slice`]). It does not count
    /// against the engine's high-water mark; the engine holds at most one
    /// such task at a time.
    Slice {
        /// The task to send.
        task: TaskId,
        /// The engine to run it.
        engine: EngineId,
    },
    /// Ask `engine` to hand `task` back if it has not started it: the task
    /// waits there behind another while an engine is idle (work stealing;
    /// see [`SchedulerConfig::prefetch`]). Answer with
    /// [`Scheduler::handle_retracted`]; until then the task stays
    /// outstanding on `engine`.
    Retract {
        /// The task to take back.
        task: TaskId,
        /// The engine holding it.
        engine: EngineId,
    },
    /// `task` was running (or prefetched) on `engine`, which left: the
    /// scheduler has forgotten it. The owner decides whether it runs again
    /// (submit it anew) or fails (Dask's `KilledWorker`).
    Lost {
        /// The task that lost its engine.
        task: TaskId,
        /// The engine that left.
        engine: EngineId,
    },
    /// Fail `task` without running it: none of its target engines is
    /// connected any more (ipyparallel's `ImpossibleDependency`).
    Fail {
        /// The task that failed.
        task: TaskId,
        /// Why, for the user, e.g. `engine 3, the task's last connected
        /// target, left`.
        reason: String,
    },
}

/// Where an aborted task was ([`Scheduler::handle_cancel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was queued and is forgotten.
    Dequeued,
    /// It is running on this engine.
    Running(EngineId),
}

/// Counters for `wasp cluster status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Engines connected.
    pub engines: usize,
    /// Engines below the high-water mark, that is, able to take a task now.
    pub available_engines: usize,
    /// Tasks waiting for an engine.
    pub queued: usize,
    /// Tasks dispatched and not yet finished.
    pub running: usize,
    /// Dispatches since the scheduler started.
    pub dispatched: u64,
    /// Finishes of running tasks since the scheduler started.
    pub finished: u64,
    /// Tasks failed by the scheduler since it started.
    pub failed: u64,
    /// The tenants with tasks queued or running or a weight set, by key.
    pub tenants: Vec<TenantStats>,
}

/// ipyparallel's task scheduler, with a fair share between tenants, as a
/// state machine.
///
/// Inputs are the `handle_*` methods, each taking the current time; outputs
/// are [`Action`]s, drained with [`poll_action`](Self::poll_action) after
/// every input. Nothing here reads a clock, spawns, or does I/O, so the
/// controller owns one `Scheduler` in one task and a test drives it on a fake
/// clock.
///
/// Every operation costs `O(log engines + log tenants)` plus, for a targeted
/// task, the length of its target list; none scans all engines, tenants or
/// the whole queue.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    rng: Rng,
    /// The latest time an input carried.
    now: Duration,
    engines: IdMap<EngineId, Engine>,
    /// The engines below the high-water mark, indexed for the scheme.
    available: Available,
    /// `(head sequence number, engine)` of each available engine whose lane
    /// has a live head.
    ready: BTreeSet<(u64, EngineId)>,
    /// Every queued or running task's slot: the only map keyed by task id.
    ///
    /// A B-tree, not a hash table: a session numbers its tasks in order, so
    /// the tasks in flight sit in a few leaves that stay in cache, where a
    /// hash would scatter a million queued tasks over tens of megabytes and
    /// make every submission and finish a cache miss (that took 40% of a
    /// decision). Nor has it a worst case that a client choosing its ids
    /// could provoke, or a random seed.
    tasks: BTreeMap<TaskId, u32>,
    /// Task states; a slot is reused once its task is done, and the vector
    /// is emptied whenever no task is left, so it holds at most the peak
    /// of queued and running tasks since the scheduler was last idle.
    slots: Vec<Slot>,
    /// Slots free for reuse.
    free: Vec<u32>,
    /// How many slots hold a queued task.
    queued: usize,
    tenants: Tenants,
    /// `(outstanding, engine)` of the engines another may take a task from:
    /// holding more than one task, the newest untargeted and not being
    /// retracted, their tasks longer than the prefetch budget (or of unknown
    /// length).
    stealable: BTreeSet<(u32, EngineId)>,
    /// `(tenant slot of its oldest task, engine)` of the engines that run
    /// tasks and hold no sliced one: where a tenant other than that one
    /// may slice in ([`SchedulerConfig::time_slice`]).
    sliceable: BTreeSet<(u32, EngineId)>,
    actions: VecDeque<Action>,
    /// A targeted task's eligible engines, reused between decisions.
    candidates: Vec<(EngineId, Load)>,
    /// The last submission's sequence number.
    submitted: u64,
    /// The last dispatch's sequence number: also the `lru` clock.
    dispatched: u64,
    finished: u64,
    failed: u64,
}

/// A place in a queue: the slot of the task and the submission it belongs
/// to. The entry is live while the slot holds that submission, queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) slot: u32,
}

/// No slot: the end of an engine's list of running tasks.
const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Slot {
    task: TaskId,
    /// The submission's sequence number, kept while it runs so that a task
    /// handed back is queued again in its place.
    seq: u64,
    /// The slot of its tenant in [`Tenants`].
    tenant: u32,
    state: State,
}

#[derive(Debug)]
enum State {
    Free,
    Queued {
        /// The connected engines the task may run on, sorted and
        /// deduplicated; `None` for any engine.
        targets: Option<Box<[EngineId]>>,
    },
    Running(Run),
}

#[derive(Debug)]
struct Run {
    engine: EngineId,
    /// What its tenant was charged at the dispatch.
    charge: Charge,
    /// Whether it named target engines (only untargeted tasks are stolen).
    targeted: bool,
    /// The neighbours in its engine's list, in dispatch order.
    prev: u32,
    next: u32,
}

#[derive(Debug)]
struct Engine {
    load: Load,
    /// The first and last of its running tasks by dispatch, so that a
    /// departure hands them back in the order they were sent and a steal
    /// takes the newest.
    first: u32,
    last: u32,
    /// Targeted tasks naming this engine, in submission order (entries may be
    /// stale).
    lane: VecDeque<Entry>,
    /// The head sequence number under which this engine is in `ready`.
    ready_seq: Option<u64>,
    /// The most tasks it may hold (0: no limit): the high-water mark plus
    /// prefetch.
    capacity: u32,
    /// How long its recent tasks ran, for prefetch.
    run_time: Option<Duration>,
    /// Its connection's round-trip time, for prefetch (zero until told).
    rtt: Duration,
    /// The task a retract was asked for, until the engine answers.
    retracting: Option<TaskId>,
    /// The load it is in `stealable` under.
    steal_key: Option<u32>,
    /// The slot of the task it runs time-sliced beside its others
    /// ([`Action::Slice`]), outside its list and its load; or [`NONE`].
    slice: u32,
    /// The tenant slot it is in `sliceable` under.
    slice_key: Option<u32>,
}

impl Engine {
    /// Whether it may take another task.
    fn has_room(&self) -> bool {
        self.capacity == 0 || self.load.outstanding < self.capacity
    }
}

impl Scheduler {
    /// A scheduler with no engines, tenants or tasks.
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            rng: Rng::new(config.seed),
            available: Available::new(config.scheme),
            config,
            now: Duration::ZERO,
            engines: IdMap::default(),
            ready: BTreeSet::new(),
            tasks: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            queued: 0,
            tenants: Tenants::default(),
            stealable: BTreeSet::new(),
            sliceable: BTreeSet::new(),
            actions: VecDeque::new(),
            candidates: Vec::new(),
            submitted: 0,
            dispatched: 0,
            finished: 0,
            failed: 0,
        }
    }

    /// Sets `tenant`'s weight: between tenants with work waiting, engine
    /// time is shared in proportion to their weights. A tenant whose weight
    /// was never set weighs [`DEFAULT_WEIGHT`](crate::DEFAULT_WEIGHT).
    ///
    /// The new weight applies to charges from now on; the engine time the
    /// tenant used so far keeps the weight it was charged at. A weight of 0
    /// is refused: such a tenant could never be chosen.
    pub fn handle_tenant(
        &mut self,
        now: Duration,
        tenant: TenantKey,
        weight: u32,
    ) -> Result<(), SchedError> {
        self.observe(now);
        if weight == 0 {
            return Err(SchedError::ZeroWeight(tenant));
        }
        self.tenants.set_weight(tenant, weight);
        Ok(())
    }

    /// Caps how many of `tenant`'s tasks run at once (its running-task
    /// quota; `None`: no cap). Its untargeted tasks past the cap stay
    /// queued, in order, until one of its tasks ends; the other tenants
    /// take the engines meanwhile. Targeted tasks are not held (they wait
    /// in their engines' lanes among other tenants' tasks) but count
    /// toward the cap. Lowering the cap below what runs stops nothing.
    pub fn handle_tenant_max_running(
        &mut self,
        now: Duration,
        tenant: TenantKey,
        max_running: Option<u32>,
    ) {
        self.observe(now);
        let cap = max_running.map(|cap| usize::try_from(cap).unwrap_or(usize::MAX));
        self.tenants.set_max_running(tenant, cap);
        self.pump();
    }

    /// `tenant` is gone from the owner's configuration: it weighs the
    /// default again, with no running cap, and the scheduler forgets it once it has no task
    /// queued or running. Its tasks stay.
    pub fn handle_tenant_removed(&mut self, now: Duration, tenant: TenantKey) {
        self.observe(now);
        self.tenants.unset_weight(tenant);
    }

    /// `tenant` submitted a task. `targets` restricts it to those engines
    /// (as `rc[0].apply` does); `None` or an empty list means any engine.
    ///
    /// Targets that are not connected are dropped: engine ids are assigned
    /// in join order and never reused, so a client only names engines it was
    /// told about. If no target is left the task fails at once.
    pub fn handle_submit(
        &mut self,
        now: Duration,
        task: TaskId,
        tenant: TenantKey,
        targets: Option<Vec<EngineId>>,
    ) -> Result<(), SchedError> {
        self.observe(now);
        let vacant = match self.tasks.entry(task) {
            MapEntry::Occupied(_) => return Err(SchedError::DuplicateTask(task)),
            MapEntry::Vacant(vacant) => vacant,
        };
        let targets: Option<Box<[EngineId]>> = match targets {
            Some(mut requested) if !requested.is_empty() => {
                requested.sort_unstable();
                requested.dedup();
                let connected: Box<[EngineId]> = requested
                    .iter()
                    .copied()
                    .filter(|engine| self.engines.contains_key(engine))
                    .collect();
                if connected.is_empty() {
                    let reason = format!(
                        "no target engine is connected (targets: {})",
                        list_engines(&requested)
                    );
                    self.failed += 1;
                    self.actions.push_back(Action::Fail { task, reason });
                    return Ok(());
                }
                Some(connected)
            }
            _ => None,
        };
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => match u32::try_from(self.slots.len()) {
                Ok(slot) if slot != NONE => {
                    self.slots.push(Slot {
                        task,
                        seq: 0,
                        tenant: 0,
                        state: State::Free,
                    });
                    slot
                }
                _ => return Err(SchedError::TooManyTasks(task)),
            },
        };
        vacant.insert(slot);

        self.submitted += 1;
        let entry = Entry {
            seq: self.submitted,
            slot,
        };
        let owner = self.tenants.slot(tenant);
        self.queued += 1;
        let lanes = targets.as_ref().map_or(0, |list| list.len());
        match &targets {
            None => self.tenants.push(owner, entry, false),
            Some(list) => {
                self.tenants.push_targeted(owner);
                for target in list {
                    if let Some(engine) = self.engines.get_mut(target) {
                        engine.lane.push_back(entry);
                    }
                }
            }
        }
        self.slots[slot as usize] = Slot {
            task,
            seq: entry.seq,
            tenant: owner,
            state: State::Queued { targets },
        };
        // Lanes that were empty get a head now; the others keep theirs.
        for i in 0..lanes {
            let State::Queued {
                targets: Some(list),
            } = &self.slots[slot as usize].state
            else {
                break;
            };
            let target = list[i];
            if self
                .engines
                .get(&target)
                .is_some_and(|e| e.ready_seq.is_none())
            {
                self.refresh_ready(target);
            }
        }
        self.pump();
        Ok(())
    }

    /// An engine connected and can take tasks.
    pub fn handle_engine_joined(
        &mut self,
        now: Duration,
        engine: EngineId,
    ) -> Result<(), SchedError> {
        self.observe(now);
        if self.engines.contains_key(&engine) {
            return Err(SchedError::DuplicateEngine(engine));
        }
        let load = Load {
            outstanding: 0,
            last_used: 0,
        };
        self.engines.insert(
            engine,
            Engine {
                load,
                first: NONE,
                last: NONE,
                lane: VecDeque::new(),
                ready_seq: None,
                capacity: capacity(&self.config, None, Duration::ZERO),
                run_time: None,
                rtt: Duration::ZERO,
                retracting: None,
                steal_key: None,
                slice: NONE,
                slice_key: None,
            },
        );
        // Any high-water mark admits an idle engine.
        self.available.insert(engine, load);
        self.pump();
        self.steal_for(engine);
        Ok(())
    }

    /// An engine disconnected or was declared dead.
    ///
    /// Its running tasks are handed to the owner, in dispatch order, as
    /// [`Action::Lost`] (to run again or fail, the owner's choice). Then
    /// queued tasks that named it and no other connected engine fail;
    /// other queued tasks stay.
    pub fn handle_engine_left(
        &mut self,
        now: Duration,
        engine: EngineId,
    ) -> Result<(), SchedError> {
        self.observe(now);
        let Some(gone) = self.engines.remove(&engine) else {
            return Err(SchedError::UnknownEngine(engine));
        };
        if gone.has_room() {
            self.available.remove(engine, gone.load);
        }
        if let Some(seq) = gone.ready_seq {
            self.ready.remove(&(seq, engine));
        }
        if let Some(load) = gone.steal_key {
            self.stealable.remove(&(load, engine));
        }
        if let Some(owner) = gone.slice_key {
            self.sliceable.remove(&(owner, engine));
        }
        // Its running tasks in dispatch order, then the one sliced in.
        let mut next = gone.first;
        let mut sliced = gone.slice;
        while next != NONE || sliced != NONE {
            if next == NONE {
                next = std::mem::replace(&mut sliced, NONE);
            }
            let slot = next;
            let Some(Slot {
                task,
                tenant,
                state: State::Running(run),
                ..
            }) = self.slots.get(slot as usize)
            else {
                debug_assert!(false, "engine {engine}'s list holds a slot not running");
                break;
            };
            let (task, tenant, charge) = (*task, *tenant, run.charge);
            next = run.next;
            self.tasks.remove(&task);
            self.tenants.lost(tenant, charge);
            self.free_slot(slot);
            self.actions.push_back(Action::Lost { task, engine });
        }
        for entry in gone.lane {
            if !is_live(&self.slots, entry) {
                continue;
            }
            let slot = &mut self.slots[entry.slot as usize];
            let State::Queued {
                targets: Some(targets),
            } = &mut slot.state
            else {
                continue;
            };
            let left: Box<[EngineId]> = targets
                .iter()
                .copied()
                .filter(|&target| target != engine)
                .collect();
            if !left.is_empty() {
                *targets = left;
                continue;
            }
            let (task, tenant) = (slot.task, slot.tenant);
            self.tasks.remove(&task);
            self.tenants.dequeued(tenant, true);
            self.queued -= 1;
            self.free_slot(entry.slot);
            let reason = format!("engine {engine}, the task's last connected target, left");
            self.fail(task, reason);
        }
        // Capacity only shrank: nothing new can run.
        Ok(())
    }

    /// A running task finished, successfully or not: its engine has room for
    /// another. Its tenant is charged the estimate it was dispatched with.
    pub fn handle_finished(&mut self, now: Duration, task: TaskId) -> Result<(), SchedError> {
        self.finish(now, task, None)
    }

    /// A running task finished after running for `run_time` on its engine
    /// (as the engine measured it): as [`handle_finished`](Self::handle_finished),
    /// and the time sizes the engine's prefetch
    /// ([`SchedulerConfig::prefetch`]) and is what the task's tenant is
    /// charged for the fair share.
    pub fn handle_finished_after(
        &mut self,
        now: Duration,
        task: TaskId,
        run_time: Duration,
    ) -> Result<(), SchedError> {
        self.finish(now, task, Some(run_time))
    }

    fn finish(
        &mut self,
        now: Duration,
        task: TaskId,
        run_time: Option<Duration>,
    ) -> Result<(), SchedError> {
        self.observe(now);
        let Some(slot) = self.tasks.remove(&task) else {
            return Err(SchedError::UnknownTask(task));
        };
        let Some(Slot {
            tenant,
            state: State::Running(run),
            ..
        }) = self.slots.get(slot as usize)
        else {
            // Queued, not running: it stays queued.
            self.tasks.insert(task, slot);
            return Err(SchedError::UnknownTask(task));
        };
        let (engine, tenant, charge) = (run.engine, *tenant, run.charge);
        self.finished += 1;
        // A departure removes its engine's tasks from `tasks`.
        debug_assert!(
            self.engines.contains_key(&engine),
            "task {task} ran on engine {engine} which is gone"
        );
        self.release(engine, slot, |engine, config| {
            if let Some(run_time) = run_time {
                engine.run_time = Some(estimate_run_time(engine.run_time, run_time));
                engine.capacity = capacity(config, engine.run_time, engine.rtt);
            }
            if engine.retracting == Some(task) {
                // It started before the retract arrived; the answer will
                // say so.
                engine.retracting = None;
            }
        });
        self.free_slot(slot);
        self.tenants.finished(tenant, charge, run_time);
        self.refresh_ready(engine);
        self.refresh_stealable(engine);
        self.pump();
        self.steal_for(engine);
        Ok(())
    }

    /// An engine answered a [`Action::Retract`]: `returned` if it handed the
    /// task back unstarted (it is queued again, ahead of its tenant's
    /// younger tasks, and its charge is refunded), otherwise it is running
    /// there and will finish as usual.
    pub fn handle_retracted(
        &mut self,
        now: Duration,
        task: TaskId,
        returned: bool,
    ) -> Result<(), SchedError> {
        self.observe(now);
        let Some(&slot) = self.tasks.get(&task) else {
            return Err(SchedError::UnknownTask(task));
        };
        let Some(Slot {
            seq,
            tenant,
            state: State::Running(run),
            ..
        }) = self.slots.get(slot as usize)
        else {
            return Err(SchedError::UnknownTask(task));
        };
        let (seq, tenant, charge, id) = (*seq, *tenant, run.charge, run.engine);
        let Some(engine) = self.engines.get_mut(&id) else {
            return Err(SchedError::UnknownTask(task));
        };
        if engine.retracting != Some(task) {
            return Err(SchedError::UnknownTask(task));
        }
        engine.retracting = None;
        if returned {
            self.release(id, slot, |_, _| {});
            self.slots[slot as usize].state = State::Queued { targets: None };
            self.queued += 1;
            self.tenants.returned(tenant, charge);
            // Every untargeted task of its tenant still queued was
            // submitted after it (they are dispatched in order), so its
            // place is the front.
            self.tenants.push(tenant, Entry { seq, slot }, true);
            self.refresh_ready(id);
        }
        self.refresh_stealable(id);
        self.pump();
        Ok(())
    }

    /// A client aborted `task`: a queued task is forgotten at once
    /// ([`Cancelled::Dequeued`]); a running one stays outstanding on its
    /// engine, which the owner asks to stop it, until it finishes as usual
    /// ([`Cancelled::Running`]).
    pub fn handle_cancel(&mut self, now: Duration, task: TaskId) -> Result<Cancelled, SchedError> {
        self.observe(now);
        let Some(&slot) = self.tasks.get(&task) else {
            return Err(SchedError::UnknownTask(task));
        };
        let Some(state) = self.slots.get_mut(slot as usize) else {
            return Err(SchedError::UnknownTask(task));
        };
        let tenant = state.tenant;
        let targets = match &mut state.state {
            State::Running(run) => return Ok(Cancelled::Running(run.engine)),
            State::Free => return Err(SchedError::UnknownTask(task)),
            State::Queued { targets } => targets.take(),
        };
        self.tasks.remove(&task);
        self.queued -= 1;
        self.tenants.dequeued(tenant, targets.is_some());
        self.free_slot(slot);
        // Its entries go stale; a lane whose head it was gets a new head.
        for &target in targets.iter().flatten() {
            self.refresh_ready(target);
        }
        self.pump();
        Ok(Cancelled::Dequeued)
    }

    /// Time passed. Nothing depends on time yet; task timeouts will.
    pub fn handle_tick(&mut self, now: Duration) {
        self.observe(now);
    }

    /// `engine`'s connection has a round-trip time of `rtt` (measured by
    /// the transport): its prefetch budget covers it
    /// ([`SchedulerConfig::prefetch`]), so that an engine far away keeps
    /// enough tasks in hand. Dispatches what its new room admits.
    pub fn handle_engine_rtt(
        &mut self,
        now: Duration,
        engine: EngineId,
        rtt: Duration,
    ) -> Result<(), SchedError> {
        self.observe(now);
        let Some(entry) = self.engines.get_mut(&engine) else {
            return Err(SchedError::UnknownEngine(engine));
        };
        if entry.rtt == rtt {
            return Ok(());
        }
        if entry.has_room() {
            self.available.remove(engine, entry.load);
        }
        entry.rtt = rtt;
        entry.capacity = capacity(&self.config, entry.run_time, rtt);
        if entry.has_room() {
            self.available.insert(engine, entry.load);
        }
        self.refresh_ready(engine);
        self.refresh_stealable(engine);
        self.pump();
        Ok(())
    }

    /// The next action to carry out, oldest first; `None` when there is
    /// nothing to do until the next input.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The configuration the scheduler was built with.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The latest time an input carried (inputs that go back in time leave
    /// it unchanged).
    pub fn now(&self) -> Duration {
        self.now
    }

    /// How many tasks wait for an engine.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// How many tasks are dispatched and not finished, on all engines.
    pub fn running(&self) -> usize {
        self.tasks.len() - self.queued
    }

    /// The tasks outstanding on `engine`, or `None` if it is not connected.
    pub fn outstanding(&self, engine: EngineId) -> Option<u32> {
        self.engines.get(&engine).map(|e| e.load.outstanding)
    }

    /// The engine `task` is running on, if it is running.
    pub fn engine_of(&self, task: TaskId) -> Option<EngineId> {
        let &slot = self.tasks.get(&task)?;
        match &self.slots.get(slot as usize)?.state {
            State::Running(run) => Some(run.engine),
            _ => None,
        }
    }

    /// The connected engines, in id order.
    pub fn engines(&self) -> impl Iterator<Item = EngineId> + '_ {
        let mut ids: Vec<EngineId> = self.engines.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
    }

    /// `tenant`'s figures, if it has tasks queued or running or a weight
    /// set.
    pub fn tenant_stats(&self, tenant: TenantKey) -> Option<TenantStats> {
        self.tenants.stats_of(tenant)
    }

    /// Counters for a status display.
    pub fn stats(&self) -> Stats {
        Stats {
            engines: self.engines.len(),
            available_engines: self.available.len(),
            queued: self.queued(),
            running: self.running(),
            dispatched: self.dispatched,
            finished: self.finished,
            failed: self.failed,
            tenants: self.tenants.stats(),
        }
    }

    fn observe(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    fn fail(&mut self, task: TaskId, reason: String) {
        self.failed += 1;
        self.actions.push_back(Action::Fail { task, reason });
    }

    /// Marks `slot` free; empties the slot vector when no task is left, so
    /// that a burst's memory is not held forever.
    fn free_slot(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.state = State::Free;
            self.free.push(slot);
        }
        if self.tasks.is_empty() {
            // Stale entries may still name slots; `is_live` finds no slot
            // or a later submission there.
            self.slots.clear();
            self.free.clear();
            if self.slots.capacity() > 4096 {
                self.slots.shrink_to_fit();
                self.free.shrink_to_fit();
            }
        }
    }

    /// Dispatches runnable tasks, oldest first within a tenant and a lane,
    /// until none is left.
    fn pump(&mut self) {
        loop {
            let fair = if self.available.is_empty() {
                None
            } else {
                let slots = &self.slots;
                self.tenants.head(|entry| is_live(slots, entry))
            };
            let lane = self.ready.first().copied();
            let (entry, engine) = match (fair, lane) {
                (Some((_, entry)), None) => (entry, self.pick_anywhere()),
                (Some((_, entry)), Some((seq, _))) if entry.seq < seq => {
                    (entry, self.pick_anywhere())
                }
                (_, Some((_, head_of))) => {
                    let Some(entry) = self
                        .engines
                        .get(&head_of)
                        .and_then(|e| e.lane.front().copied())
                    else {
                        debug_assert!(false, "engine {head_of} is ready with an empty lane");
                        break;
                    };
                    (entry, self.pick_target(entry))
                }
                (None, None) => break,
            };
            let Some(engine) = engine else {
                debug_assert!(false, "a runnable task found no engine");
                break;
            };
            self.dispatch(entry, engine);
        }
        if self.config.time_slice {
            self.pump_slices();
        }
    }

    /// With no engine below its mark, slices tenants in beside other
    /// tenants' tasks, on engines holding no sliced task yet, in the fair
    /// share's order: the first tenant (of the next [`SLICE_CANDIDATES`])
    /// that some such engine does not run already.
    fn pump_slices(&mut self) {
        while !self.sliceable.is_empty() {
            let (slots, sliceable) = (&self.slots, &self.sliceable);
            let picked = self.tenants.head_where(
                SLICE_CANDIDATES,
                |entry| is_live(slots, entry),
                |tenant| slice_engine(sliceable, tenant).is_some(),
            );
            let Some((tenant, entry)) = picked else {
                return;
            };
            let Some(engine) = slice_engine(&self.sliceable, tenant) else {
                return;
            };
            self.dispatch_slice(entry, engine);
        }
    }

    /// Sends the queued task of `entry` to run beside engine `id`'s tasks.
    fn dispatch_slice(&mut self, entry: Entry, id: EngineId) {
        let Some(slot) = self.slots.get_mut(entry.slot as usize) else {
            debug_assert!(false, "slice of slot {}: unknown", entry.slot);
            return;
        };
        let State::Queued { targets: None } = slot.state else {
            debug_assert!(false, "slice of slot {}: not queued untargeted", entry.slot);
            return;
        };
        let (task, tenant) = (slot.task, slot.tenant);
        let Some(engine) = self.engines.get_mut(&id) else {
            debug_assert!(false, "slice to {id}: unknown");
            return;
        };
        engine.slice = entry.slot;
        self.dispatched += 1;
        let charge = self.tenants.dispatched(tenant, false);
        self.queued -= 1;
        self.slots[entry.slot as usize].state = State::Running(Run {
            engine: id,
            charge,
            targeted: false,
            prev: NONE,
            next: NONE,
        });
        self.actions.push_back(Action::Slice { task, engine: id });
        self.refresh_sliceable(id);
    }

    /// Keeps `id`'s membership of `sliceable` true to its state: in it
    /// when slicing is on, it runs tasks and holds no sliced one, under
    /// the tenant of its oldest task.
    fn refresh_sliceable(&mut self, id: EngineId) {
        if !self.config.time_slice {
            return;
        }
        let Some(engine) = self.engines.get_mut(&id) else {
            return;
        };
        let owner = match self.slots.get(engine.first as usize) {
            Some(slot) if engine.slice == NONE => Some(slot.tenant),
            _ => None,
        };
        rekey(&mut self.sliceable, id, &mut engine.slice_key, owner);
    }

    /// The scheme's choice among all available engines.
    fn pick_anywhere(&mut self) -> Option<EngineId> {
        let engines = &self.engines;
        let load_of = |id| engines.get(&id).map_or(IDLE, |e: &Engine| e.load);
        self.available.pick(&mut self.rng, load_of)
    }

    /// The scheme's choice among the available targets of a queued task.
    fn pick_target(&mut self, entry: Entry) -> Option<EngineId> {
        let Some(State::Queued {
            targets: Some(targets),
        }) = self.slots.get(entry.slot as usize).map(|s| &s.state)
        else {
            return None;
        };
        self.candidates.clear();
        for &id in targets.iter() {
            if let Some(engine) = self.engines.get(&id)
                && engine.has_room()
            {
                self.candidates.push((id, engine.load));
            }
        }
        pick_among(self.config.scheme, &mut self.rng, &self.candidates)
    }

    fn dispatch(&mut self, entry: Entry, id: EngineId) {
        let (Some(slot), Some(engine)) = (
            self.slots.get_mut(entry.slot as usize),
            self.engines.get_mut(&id),
        ) else {
            debug_assert!(false, "dispatch of slot {} to {id}: unknown", entry.slot);
            return;
        };
        let State::Queued { targets } = std::mem::replace(&mut slot.state, State::Free) else {
            debug_assert!(false, "dispatch of slot {}: not queued", entry.slot);
            return;
        };
        let (task, tenant) = (slot.task, slot.tenant);
        self.available.remove(id, engine.load);
        self.dispatched += 1;
        engine.load = Load {
            outstanding: engine.load.outstanding + 1,
            last_used: self.dispatched,
        };
        if engine.has_room() {
            self.available.insert(id, engine.load);
        }
        // Append to the engine's list of running tasks.
        let prev = engine.last;
        engine.last = entry.slot;
        if prev == NONE {
            engine.first = entry.slot;
        } else if let Some(Slot {
            state: State::Running(run),
            ..
        }) = self.slots.get_mut(prev as usize)
        {
            run.next = entry.slot;
        }
        let targeted = targets.is_some();
        let charge = self.tenants.dispatched(tenant, targeted);
        self.queued -= 1;
        self.slots[entry.slot as usize].state = State::Running(Run {
            engine: id,
            charge,
            targeted,
            prev,
            next: NONE,
        });
        self.actions
            .push_back(Action::Dispatch { task, engine: id });
        // The engine may have reached the mark; other targets may have had
        // this task at their head.
        self.refresh_ready(id);
        self.refresh_stealable(id);
        self.refresh_sliceable(id);
        for &target in targets.iter().flatten() {
            if target != id
                && self
                    .engines
                    .get(&target)
                    .is_some_and(|e| e.ready_seq == Some(entry.seq))
            {
                self.refresh_ready(target);
            }
        }
    }

    /// Takes the task in `slot` off engine `id`, after `update` has changed
    /// the engine (its capacity may shrink or grow), keeping `available`
    /// true to the room left. The slot stays `Running` for the caller.
    fn release(
        &mut self,
        id: EngineId,
        slot: u32,
        update: impl FnOnce(&mut Engine, &SchedulerConfig),
    ) {
        let Some(engine) = self.engines.get_mut(&id) else {
            return;
        };
        if engine.slice == slot {
            // Sliced in: outside the list and the load.
            engine.slice = NONE;
            self.refresh_sliceable(id);
            return;
        }
        if engine.has_room() {
            self.available.remove(id, engine.load);
        }
        update(engine, &self.config);
        engine.load.outstanding = engine.load.outstanding.saturating_sub(1);
        unlink(&mut self.slots, engine, slot);
        // The capacity may have shrunk below the tasks still held.
        if engine.has_room() {
            self.available.insert(id, engine.load);
        }
        self.refresh_sliceable(id);
    }

    /// Keeps `id`'s membership of `stealable` true to its state.
    fn refresh_stealable(&mut self, id: EngineId) {
        let Some(engine) = self.engines.get_mut(&id) else {
            return;
        };
        let budget = prefetch_budget(&self.config, engine.rtt);
        let long = engine.run_time.is_none_or(|run| run > budget);
        let newest_untargeted = matches!(
            self.slots.get(engine.last as usize),
            Some(Slot { state: State::Running(run), .. }) if !run.targeted
        );
        let key = (!budget.is_zero()
            && long
            && engine.load.outstanding > 1
            && engine.retracting.is_none()
            && newest_untargeted)
            .then_some(engine.load.outstanding);
        rekey(&mut self.stealable, id, &mut engine.steal_key, key);
    }

    /// If `id` is idle with nothing queued for it, asks the engine holding
    /// the most for its newest task back.
    fn steal_for(&mut self, id: EngineId) {
        let idle = self
            .engines
            .get(&id)
            .is_some_and(|e| e.load.outstanding == 0 && e.has_room());
        if !idle || self.tenants.any_waiting() {
            return;
        }
        // The most loaded, the highest id among equals.
        let victim = self
            .stealable
            .iter()
            .rev()
            .map(|&(_, victim)| victim)
            .find(|&victim| victim != id);
        let Some(victim) = victim else {
            return;
        };
        let Some(engine) = self.engines.get_mut(&victim) else {
            return;
        };
        let Some(task) = self.slots.get(engine.last as usize).map(|s| s.task) else {
            return;
        };
        engine.retracting = Some(task);
        if let Some(load) = engine.steal_key.take() {
            self.stealable.remove(&(load, victim));
        }
        self.actions.push_back(Action::Retract {
            task,
            engine: victim,
        });
    }

    /// Puts `id` in `ready` under its lane's live head if it is below the
    /// mark, or takes it out.
    fn refresh_ready(&mut self, id: EngineId) {
        let Some(engine) = self.engines.get_mut(&id) else {
            return;
        };
        if let Some(seq) = engine.ready_seq.take() {
            self.ready.remove(&(seq, id));
        }
        if !engine.has_room() {
            return;
        }
        while let Some(&head) = engine.lane.front() {
            if is_live(&self.slots, head) {
                engine.ready_seq = Some(head.seq);
                self.ready.insert((head.seq, id));
                return;
            }
            engine.lane.pop_front();
        }
    }
}

/// Moves engine `id` in an index of `(key, engine)` from the key it is
/// under (`current`, `None` for absent) to `new`.
fn rekey(
    index: &mut BTreeSet<(u32, EngineId)>,
    id: EngineId,
    current: &mut Option<u32>,
    new: Option<u32>,
) {
    if *current == new {
        return;
    }
    if let Some(old) = current.take() {
        index.remove(&(old, id));
    }
    if let Some(key) = new {
        index.insert((key, id));
    }
    *current = new;
}

/// How many tenants, in the fair share's order, a time slice is offered
/// to before it is left empty: a bound on the cost of a decision when the
/// first ones hold every engine already.
const SLICE_CANDIDATES: usize = 8;

/// The engine a task of `tenant` may slice in beside: of those in
/// `sliceable`, the one with the lowest owner other than `tenant`, then
/// the lowest id.
fn slice_engine(sliceable: &BTreeSet<(u32, EngineId)>, tenant: u32) -> Option<EngineId> {
    match sliceable.first() {
        Some(&(owner, id)) if owner != tenant => Some(id),
        _ => sliceable
            .range((tenant.saturating_add(1), EngineId(0))..)
            .next()
            .map(|&(_, id)| id),
    }
}

/// Takes `slot` out of `engine`'s list of running tasks.
fn unlink(slots: &mut [Slot], engine: &mut Engine, slot: u32) {
    let Some(Slot {
        state: State::Running(run),
        ..
    }) = slots.get_mut(slot as usize)
    else {
        debug_assert!(false, "slot {slot} is not running");
        return;
    };
    let (prev, next) = (run.prev, run.next);
    run.prev = NONE;
    run.next = NONE;
    if prev == NONE {
        engine.first = next;
    } else if let Some(Slot {
        state: State::Running(run),
        ..
    }) = slots.get_mut(prev as usize)
    {
        run.next = next;
    }
    if next == NONE {
        engine.last = prev;
    } else if let Some(Slot {
        state: State::Running(run),
        ..
    }) = slots.get_mut(next as usize)
    {
        run.prev = prev;
    }
}

const IDLE: Load = Load {
    outstanding: 0,
    last_used: 0,
};

/// How much queued work, in run time, an engine `rtt` away may hold
/// beyond the mark: the prefetch setting, or two round trips if more (one
/// to ask for the next task, one of slack), so that it never idles waiting
/// for a task to cross its link. Zero when prefetch is off.
fn prefetch_budget(config: &SchedulerConfig, rtt: Duration) -> Duration {
    if config.prefetch.is_zero() {
        return Duration::ZERO;
    }
    config.prefetch.max(rtt.saturating_mul(2))
}

/// The most tasks an engine whose tasks run for about `run_time`, `rtt`
/// away, may hold: the high-water mark, plus as many tasks as fit in its
/// prefetch budget ([`prefetch_budget`]); 0 (no limit) when the mark is 0.
/// The count cap is [`MAX_PREFETCH`], grown in proportion where the round
/// trip stretches the budget, up to [`MAX_PREFETCH_FAR`].
fn capacity(config: &SchedulerConfig, run_time: Option<Duration>, rtt: Duration) -> u32 {
    if config.hwm == 0 {
        return 0;
    }
    let budget = prefetch_budget(config, rtt);
    if budget.is_zero() {
        return config.hwm;
    }
    let stretch = budget.as_nanos() / config.prefetch.as_nanos().max(1);
    let cap = u32::try_from(u128::from(MAX_PREFETCH).saturating_mul(stretch))
        .unwrap_or(u32::MAX)
        .clamp(MAX_PREFETCH, MAX_PREFETCH_FAR);
    // One task of lookahead whatever the length, so that no engine waits
    // a round trip between two tasks; stealing undoes it where it would
    // cost balance.
    let fit = run_time.map_or(0, |run| budget.as_nanos() / run.as_nanos().max(1));
    let extra = u32::try_from(fit).unwrap_or(u32::MAX).clamp(1, cap);
    config.hwm.saturating_add(extra)
}

/// The next estimate of an engine's task run time: up at once to a longer
/// task (so a long task after short ones stops prefetch right away), down
/// by a quarter of the gap after a shorter one (so one short task among
/// long ones does not open it).
fn estimate_run_time(estimate: Option<Duration>, sample: Duration) -> Duration {
    match estimate {
        Some(estimate) if sample < estimate => (estimate * 3 + sample) / 4,
        _ => sample,
    }
}

/// Whether `entry` still names a queued task: its slot holds the same
/// submission, not yet dispatched.
fn is_live(slots: &[Slot], entry: Entry) -> bool {
    slots
        .get(entry.slot as usize)
        .is_some_and(|slot| slot.seq == entry.seq && matches!(slot.state, State::Queued { .. }))
}

/// `0, 3, 7`, shortened after a few ids: a target list can name every engine.
fn list_engines(engines: &[EngineId]) -> String {
    const SHOWN: usize = 8;
    let mut out = String::new();
    for (i, engine) in engines.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{engine}");
    }
    if engines.len() > SHOWN {
        let _ = write!(out, ", … ({} engines)", engines.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scheme;

    const T0: Duration = Duration::ZERO;

    fn sched(scheme: Scheme, hwm: u32) -> Scheduler {
        Scheduler::new(SchedulerConfig {
            scheme,
            hwm,
            seed: 42,
            prefetch: Duration::ZERO,
            time_slice: false,
        })
    }

    fn with_engines(scheme: Scheme, hwm: u32, n: u32) -> Scheduler {
        let mut s = sched(scheme, hwm);
        for id in 0..n {
            s.handle_engine_joined(T0, EngineId(id))
                .expect("fresh engine");
        }
        s
    }

    fn actions(s: &mut Scheduler) -> Vec<Action> {
        std::iter::from_fn(|| s.poll_action()).collect()
    }

    /// Submits `task` untargeted and returns the engine it was sent to, if
    /// it was dispatched at once.
    fn submit(s: &mut Scheduler, task: u64) -> Option<u32> {
        submit_to(s, task, None)
    }

    fn submit_to(s: &mut Scheduler, task: u64, targets: Option<&[u32]>) -> Option<u32> {
        let targets = targets.map(|t| t.iter().copied().map(EngineId).collect());
        s.handle_submit(T0, TaskId(task), TenantKey(0), targets)
            .expect("fresh task");
        match actions(s).as_slice() {
            [] => None,
            [Action::Dispatch { task: t, engine }] if *t == TaskId(task) => Some(engine.0),
            other => panic!("unexpected actions {other:?}"),
        }
    }

    fn finish(s: &mut Scheduler, task: u64) -> Vec<Action> {
        s.handle_finished(T0, TaskId(task)).expect("running task");
        actions(s)
    }

    fn dispatch(task: u64, engine: u32) -> Action {
        Action::Dispatch {
            task: TaskId(task),
            engine: EngineId(engine),
        }
    }

    #[test]
    fn leastload_picks_the_least_loaded_engine() {
        let mut s = with_engines(Scheme::LeastLoad, 0, 3);
        // Fresh engines in join order, then the least loaded.
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(1));
        assert_eq!(submit(&mut s, 3), Some(2));
        assert_eq!(submit(&mut s, 4), Some(0));
        finish(&mut s, 2);
        // Engine 1 now has 0 tasks, the others 2 and 1.
        assert_eq!(submit(&mut s, 5), Some(1));
        assert_eq!(submit(&mut s, 6), Some(2));
        assert_eq!(s.outstanding(EngineId(0)), Some(2));
        assert_eq!(s.outstanding(EngineId(1)), Some(1));
        assert_eq!(s.outstanding(EngineId(2)), Some(2));
    }

    #[test]
    fn leastload_breaks_ties_by_join_order_then_least_recent_use() {
        let mut s = with_engines(Scheme::LeastLoad, 0, 3);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(1));
        finish(&mut s, 1);
        finish(&mut s, 2);
        // All idle: 2 never ran anything, then 0 is the least recently used.
        assert_eq!(submit(&mut s, 3), Some(2));
        assert_eq!(submit(&mut s, 4), Some(0));
        assert_eq!(submit(&mut s, 5), Some(1));
    }

    #[test]
    fn lru_rotates() {
        let mut s = with_engines(Scheme::Lru, 0, 3);
        let picks: Vec<_> = (0..7).map(|task| submit(&mut s, task)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0].map(Some));
        // Load does not matter to lru: engine 0 has three tasks, and still
        // comes round in turn after 1 and 2.
        finish(&mut s, 1);
        assert_eq!(submit(&mut s, 7), Some(1));
    }

    /// `n` engines, `hwm = 1`, 1 ms of prefetch.
    fn prefetching(n: u32) -> Scheduler {
        let mut s = Scheduler::new(SchedulerConfig {
            scheme: Scheme::LeastLoad,
            hwm: 1,
            seed: 42,
            prefetch: Duration::from_millis(1),
            time_slice: false,
        });
        for id in 0..n {
            s.handle_engine_joined(T0, EngineId(id))
                .expect("fresh engine");
        }
        s
    }

    fn finish_after(s: &mut Scheduler, task: u64, micros: u64) -> Vec<Action> {
        s.handle_finished_after(T0, TaskId(task), Duration::from_micros(micros))
            .expect("running task");
        actions(s)
    }

    fn retract(task: u64, engine: u32) -> Action {
        Action::Retract {
            task: TaskId(task),
            engine: EngineId(engine),
        }
    }

    #[test]
    fn prefetch_gives_short_tasks_room_and_long_tasks_one_of_lookahead() {
        let mut s = prefetching(1);
        // Nothing is known of the engine yet: the mark plus one lookahead.
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(0));
        for task in 3..=60 {
            assert_eq!(submit(&mut s, task), None);
        }
        // Task 1 ran for 250 us: 1 ms holds four more, so five in all.
        assert_eq!(
            finish_after(&mut s, 1, 250),
            (3..=6).map(|t| dispatch(t, 0)).collect::<Vec<_>>()
        );
        assert_eq!(s.outstanding(EngineId(0)), Some(5));
        // Very short tasks: the estimate decays by a quarter of the gap per
        // task (250 us to under 1 ms / 16 in five), and the room is capped
        // at MAX_PREFETCH extra.
        let held = 1 + MAX_PREFETCH;
        let mut next = 2;
        for _ in 0..6 {
            finish_after(&mut s, next, 1);
            next += 1;
        }
        assert_eq!(s.outstanding(EngineId(0)), Some(held));
        // A task longer than the budget shrinks the room to one lookahead
        // at once: the engine keeps what it holds and gets nothing until
        // it holds fewer than two.
        for i in 0..held - 2 {
            assert_eq!(finish_after(&mut s, next, 5_000), [], "finish {i}");
            next += 1;
        }
        assert_eq!(s.outstanding(EngineId(0)), Some(2));
        assert_eq!(finish_after(&mut s, next, 5_000).len(), 1);
        assert_eq!(s.outstanding(EngineId(0)), Some(2));
    }

    #[test]
    fn an_engine_far_away_holds_two_round_trips_of_work() {
        let mut s = prefetching(1);
        for task in 1..=5_000 {
            submit(&mut s, task);
        }
        // Tasks of 1 ms on a short link: 1 ms of budget holds one more.
        finish_after(&mut s, 1, 1_000);
        assert_eq!(s.outstanding(EngineId(0)), Some(2));
        // 60 ms away, it holds 120 ms of them beyond the mark, sent at once.
        let rtt = Duration::from_millis(60);
        s.handle_engine_rtt(T0, EngineId(0), rtt)
            .expect("known engine");
        assert_eq!(actions(&mut s).len(), 119);
        assert_eq!(s.outstanding(EngineId(0)), Some(1 + 120));
        // Past the near cap, and bounded still: 1 us tasks 60 ms away
        // would fit 120,000; the cap grows with the budget, 16 a
        // millisecond of it (1,920), below the far cap.
        for task in 2..=30 {
            finish_after(&mut s, task, 1);
        }
        assert_eq!(s.outstanding(EngineId(0)), Some(1 + MAX_PREFETCH * 120));
        const { assert!(MAX_PREFETCH * 120 < MAX_PREFETCH_FAR) };
        // Near again: nothing more is sent until it holds less than its
        // room on a short link, and that room is the near cap.
        s.handle_engine_rtt(T0, EngineId(0), Duration::from_micros(100))
            .expect("known engine");
        assert_eq!(actions(&mut s), []);
        let held = s.outstanding(EngineId(0)).expect("known engine");
        for next in (31..).take(held as usize) {
            finish_after(&mut s, next, 1);
        }
        assert_eq!(s.outstanding(EngineId(0)), Some(1 + MAX_PREFETCH));
        // An engine the scheduler does not know is refused.
        assert!(s.handle_engine_rtt(T0, EngineId(9), rtt).is_err());
    }

    #[test]
    fn one_short_task_among_long_ones_does_not_open_prefetch() {
        let mut s = prefetching(1);
        for task in 1..=10 {
            submit(&mut s, task);
        }
        assert_eq!(finish_after(&mut s, 1, 20_000).len(), 1);
        // The estimate falls by a quarter of the gap: still over 1 ms.
        assert_eq!(finish_after(&mut s, 2, 1).len(), 1);
        assert_eq!(s.outstanding(EngineId(0)), Some(2));
    }

    #[test]
    fn a_zero_budget_keeps_the_mark_alone() {
        let mut strict = with_engines(Scheme::LeastLoad, 1, 1);
        for task in 1..=5 {
            submit(&mut strict, task);
        }
        assert_eq!(strict.outstanding(EngineId(0)), Some(1));
        assert_eq!(finish_after(&mut strict, 1, 1), [dispatch(2, 0)]);
        assert_eq!(strict.outstanding(EngineId(0)), Some(1));
    }

    /// Engine 0 runs task 1 with task 3 behind it; engine 1 runs task 2.
    fn one_waiting_behind_another() -> Scheduler {
        let mut s = prefetching(2);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(1));
        assert_eq!(submit(&mut s, 3), Some(0));
        s
    }

    #[test]
    fn an_idle_engine_takes_back_a_long_task_waiting_elsewhere() {
        let mut s = one_waiting_behind_another();
        // Engine 1 is idle and nothing is queued: take task 3 back.
        assert_eq!(finish_after(&mut s, 2, 5_000), [retract(3, 0)]);
        assert_eq!(s.outstanding(EngineId(0)), Some(2));
        s.handle_retracted(T0, TaskId(3), true).expect("retracting");
        assert_eq!(actions(&mut s), [dispatch(3, 1)]);
        assert_eq!(s.outstanding(EngineId(0)), Some(1));
        assert_eq!(s.engine_of(TaskId(3)), Some(EngineId(1)));
    }

    #[test]
    fn a_retract_that_comes_too_late_leaves_the_task_where_it_runs() {
        let mut s = one_waiting_behind_another();
        assert_eq!(finish_after(&mut s, 2, 5_000), [retract(3, 0)]);
        s.handle_retracted(T0, TaskId(3), false)
            .expect("retracting");
        assert_eq!(actions(&mut s), []);
        assert_eq!(s.engine_of(TaskId(3)), Some(EngineId(0)));
        // A second answer is refused; the task finishes where it ran.
        assert_eq!(
            s.handle_retracted(T0, TaskId(3), true),
            Err(SchedError::UnknownTask(TaskId(3)))
        );
        finish_after(&mut s, 1, 5_000);
        assert_eq!(finish_after(&mut s, 3, 5_000), []);
    }

    #[test]
    fn short_tasks_and_targeted_tasks_are_not_taken_back() {
        // Engine 0's tasks are known to be short: waiting for them costs
        // less than a retract's round trip.
        let mut s = prefetching(2);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(1));
        assert_eq!(finish_after(&mut s, 1, 10), []);
        for task in 3..=20 {
            submit(&mut s, task);
        }
        while s.outstanding(EngineId(1)) != Some(0) {
            let engine = &s.engines[&EngineId(1)];
            let task = s.slots[engine.first as usize].task;
            let sent = finish_after(&mut s, task.0, 5_000);
            assert!(
                !sent.iter().any(|a| matches!(a, Action::Retract { .. })),
                "{sent:?}"
            );
        }
        // A targeted task waiting on engine 0 stays there.
        let mut s = prefetching(2);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(1));
        assert_eq!(submit_to(&mut s, 3, Some(&[0])), Some(0));
        assert_eq!(finish_after(&mut s, 2, 5_000), []);
    }

    #[test]
    fn hwm_one_sends_work_to_idle_engines_only() {
        let mut s = with_engines(Scheme::LeastLoad, 1, 2);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), Some(1));
        assert_eq!(submit(&mut s, 3), None);
        assert_eq!(submit(&mut s, 4), None);
        assert_eq!(s.queued(), 2);
        // The engine that frees up gets the oldest waiting task.
        assert_eq!(finish(&mut s, 2), [dispatch(3, 1)]);
        assert_eq!(finish(&mut s, 1), [dispatch(4, 0)]);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn hwm_zero_is_unlimited() {
        for scheme in Scheme::ALL {
            let mut s = with_engines(scheme, 0, 1);
            for task in 0..100 {
                assert_eq!(submit(&mut s, task), Some(0), "{scheme}");
            }
            assert_eq!(s.outstanding(EngineId(0)), Some(100));
        }
    }

    #[test]
    fn hwm_two_allows_two_per_engine() {
        for scheme in Scheme::ALL {
            let mut s = with_engines(scheme, 2, 2);
            let placed: Vec<_> = (0..5).map(|task| submit(&mut s, task)).collect();
            assert_eq!(placed[4], None, "{scheme}");
            assert_eq!(s.outstanding(EngineId(0)), Some(2), "{scheme}");
            assert_eq!(s.outstanding(EngineId(1)), Some(2), "{scheme}");
            let engine = placed[0].expect("dispatched");
            assert_eq!(finish(&mut s, 0), [dispatch(4, engine)], "{scheme}");
        }
    }

    #[test]
    fn every_scheme_only_picks_engines_below_the_mark() {
        for scheme in Scheme::ALL {
            let mut s = with_engines(scheme, 1, 4);
            let mut engines: Vec<_> = (0..4)
                .map(|task| submit(&mut s, task).expect("idle"))
                .collect();
            engines.sort_unstable();
            assert_eq!(engines, [0, 1, 2, 3], "{scheme}");
            assert_eq!(submit(&mut s, 4), None, "{scheme}");
        }
    }

    #[test]
    fn targeted_tasks_run_only_on_their_targets() {
        for scheme in Scheme::ALL {
            let mut s = with_engines(scheme, 0, 4);
            for task in 0..20 {
                let engine = submit_to(&mut s, task, Some(&[1, 3])).expect("dispatched");
                assert!(engine == 1 || engine == 3, "{scheme}: {engine}");
            }
            assert_eq!(submit_to(&mut s, 20, Some(&[2, 2])), Some(2), "{scheme}");
        }
    }

    #[test]
    fn a_task_waits_for_its_busy_target_without_blocking_others() {
        let mut s = with_engines(Scheme::LeastLoad, 1, 2);
        assert_eq!(submit_to(&mut s, 1, Some(&[0])), Some(0));
        // Engine 0 is busy: task 2 waits for it, task 3 goes to engine 1.
        assert_eq!(submit_to(&mut s, 2, Some(&[0])), None);
        assert_eq!(submit(&mut s, 3), Some(1));
        assert_eq!(submit(&mut s, 4), None);
        // Engine 0 frees up: the older task 2 goes first, though 4 could
        // run there too.
        assert_eq!(finish(&mut s, 1), [dispatch(2, 0)]);
        assert_eq!(finish(&mut s, 2), [dispatch(4, 0)]);
    }

    #[test]
    fn an_untargeted_task_takes_a_free_engine_before_a_younger_targeted_one() {
        let mut s = with_engines(Scheme::LeastLoad, 1, 1);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), None);
        assert_eq!(submit_to(&mut s, 3, Some(&[0])), None);
        assert_eq!(finish(&mut s, 1), [dispatch(2, 0)]);
        assert_eq!(finish(&mut s, 2), [dispatch(3, 0)]);
    }

    #[test]
    fn a_task_naming_several_targets_is_dispatched_once() {
        let mut s = with_engines(Scheme::LeastLoad, 1, 3);
        for task in 0..3 {
            submit(&mut s, task).expect("idle engine");
        }
        assert_eq!(submit_to(&mut s, 10, Some(&[0, 1])), None);
        assert_eq!(submit_to(&mut s, 11, Some(&[1])), None);
        // Engine 0 takes task 10; when engine 1 frees up, 10's stale entry
        // in its lane is skipped and task 11 runs.
        assert_eq!(finish(&mut s, 0), [dispatch(10, 0)]);
        assert_eq!(finish(&mut s, 1), [dispatch(11, 1)]);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn a_task_whose_targets_are_unknown_fails_at_once() {
        let mut s = with_engines(Scheme::LeastLoad, 1, 2);
        s.handle_submit(
            T0,
            TaskId(1),
            TenantKey(0),
            Some(vec![EngineId(7), EngineId(5)]),
        )
        .expect("fresh task");
        assert_eq!(
            actions(&mut s),
            [Action::Fail {
                task: TaskId(1),
                reason: "no target engine is connected (targets: 5, 7)".into(),
            }]
        );
        // Unknown targets beside a known one are dropped.
        assert_eq!(submit_to(&mut s, 2, Some(&[9, 1])), Some(1));
        // An empty target list means any engine.
        assert_eq!(submit_to(&mut s, 3, Some(&[])), Some(0));
    }

    #[test]
    fn an_engine_leaving_hands_back_its_running_tasks_and_fails_orphaned_queued_ones() {
        let mut s = with_engines(Scheme::LeastLoad, 2, 2);
        assert_eq!(submit_to(&mut s, 1, Some(&[1])), Some(1));
        assert_eq!(submit_to(&mut s, 2, Some(&[1])), Some(1));
        assert_eq!(submit_to(&mut s, 3, Some(&[1])), None);
        assert_eq!(submit_to(&mut s, 4, Some(&[0, 1])), Some(0));
        assert_eq!(submit_to(&mut s, 5, Some(&[0])), Some(0));
        assert_eq!(submit_to(&mut s, 6, Some(&[1, 0])), None);
        assert_eq!(submit(&mut s, 7), None);
        s.handle_engine_left(T0, EngineId(1)).expect("connected");
        let died = |task| Action::Lost {
            task: TaskId(task),
            engine: EngineId(1),
        };
        assert_eq!(
            actions(&mut s),
            [
                died(1),
                died(2),
                Action::Fail {
                    task: TaskId(3),
                    reason: "engine 1, the task's last connected target, left".into(),
                },
            ]
        );
        // Tasks 6 and 7 still wait for engine 0; a late result from engine 1
        // is refused.
        assert_eq!(s.queued(), 2);
        assert_eq!(
            s.handle_finished(T0, TaskId(1)),
            Err(SchedError::UnknownTask(TaskId(1)))
        );
        assert_eq!(finish(&mut s, 4), [dispatch(6, 0)]);
        assert_eq!(finish(&mut s, 5), [dispatch(7, 0)]);
        assert_eq!(s.engines().collect::<Vec<_>>(), [EngineId(0)]);
    }

    #[test]
    fn cancel_forgets_a_queued_task_and_names_the_engine_of_a_running_one() {
        // Issue 11: abort. One engine, one task at a time.
        let mut s = with_engines(Scheme::LeastLoad, 1, 1);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit_to(&mut s, 2, Some(&[0])), None);
        assert_eq!(submit(&mut s, 3), None);
        assert_eq!(
            s.handle_cancel(T0, TaskId(1)),
            Ok(Cancelled::Running(EngineId(0)))
        );
        // The targeted lane's head is cancelled: the next task runs after 1.
        assert_eq!(s.handle_cancel(T0, TaskId(2)), Ok(Cancelled::Dequeued));
        assert!(actions(&mut s).is_empty());
        assert_eq!(s.queued(), 1);
        assert_eq!(finish(&mut s, 1), [dispatch(3, 0)]);
        assert_eq!(
            s.handle_cancel(T0, TaskId(2)),
            Err(SchedError::UnknownTask(TaskId(2)))
        );
    }

    #[test]
    fn tasks_wait_for_the_first_engine() {
        let mut s = sched(Scheme::Lru, 1);
        assert_eq!(submit(&mut s, 1), None);
        assert_eq!(submit(&mut s, 2), None);
        s.handle_engine_joined(T0, EngineId(4))
            .expect("fresh engine");
        assert_eq!(actions(&mut s), [dispatch(1, 4)]);
    }

    #[test]
    fn unknown_and_duplicate_ids_are_refused_without_effect() {
        let mut s = with_engines(Scheme::LeastLoad, 1, 1);
        assert_eq!(submit(&mut s, 1), Some(0));
        assert_eq!(submit(&mut s, 2), None);
        let before = s.stats();
        assert_eq!(
            s.handle_submit(T0, TaskId(1), TenantKey(0), None),
            Err(SchedError::DuplicateTask(TaskId(1)))
        );
        assert_eq!(
            s.handle_submit(T0, TaskId(2), TenantKey(0), None),
            Err(SchedError::DuplicateTask(TaskId(2)))
        );
        assert_eq!(
            s.handle_finished(T0, TaskId(2)),
            Err(SchedError::UnknownTask(TaskId(2)))
        );
        assert_eq!(
            s.handle_finished(T0, TaskId(99)),
            Err(SchedError::UnknownTask(TaskId(99)))
        );
        assert_eq!(
            s.handle_engine_joined(T0, EngineId(0)),
            Err(SchedError::DuplicateEngine(EngineId(0)))
        );
        assert_eq!(
            s.handle_engine_left(T0, EngineId(5)),
            Err(SchedError::UnknownEngine(EngineId(5)))
        );
        assert_eq!(s.poll_action(), None);
        assert_eq!(s.stats(), before);
        // A finished task's id may be submitted again.
        assert_eq!(finish(&mut s, 1), [dispatch(2, 0)]);
        assert_eq!(finish(&mut s, 2), []);
        assert_eq!(submit(&mut s, 1), Some(0));
    }

    #[test]
    fn same_seed_same_decisions() {
        for scheme in [Scheme::PlainRandom, Scheme::TwoBin, Scheme::Weighted] {
            let run = || {
                let mut s = with_engines(scheme, 0, 10);
                (0..200)
                    .map(|task| submit(&mut s, task))
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(), run(), "{scheme}");
        }
    }

    #[test]
    fn time_only_moves_forward() {
        let mut s = sched(Scheme::LeastLoad, 1);
        s.handle_tick(Duration::from_secs(5));
        s.handle_tick(Duration::from_secs(3));
        assert_eq!(s.now(), Duration::from_secs(5));
    }

    #[test]
    fn long_target_lists_are_shortened_in_messages() {
        let engines: Vec<_> = (0..20).map(EngineId).collect();
        assert_eq!(
            list_engines(&engines),
            "0, 1, 2, 3, 4, 5, 6, 7, … (20 engines)"
        );
    }
}
