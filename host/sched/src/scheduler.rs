//! The scheduler proper: queued tasks, engines, and the loop that matches
//! them.
//!
//! # Queues
//!
//! Every submission gets a sequence number. Untargeted tasks wait in one
//! FIFO, `anywhere`; a targeted task waits in the *lane* of each engine it
//! names. A lane's head is runnable exactly when its engine is below the
//! high-water mark, so the available engines with a non-empty lane sit in
//! `ready`, ordered by the sequence number of their head. The next task to
//! dispatch is then the older of `anywhere`'s head (if any engine is
//! available) and `ready`'s first entry: the oldest task that can run, found
//! without scanning, and a task whose targets are busy never holds back
//! younger tasks that can run elsewhere.
//!
//! A task named by several engines has an entry in each lane; when it is
//! dispatched or failed the other entries go stale and are dropped lazily
//! when they reach a lane's head (an entry is live while `queued` still maps
//! its task to its sequence number).
//!
//! # Invariant
//!
//! After every `handle_*` call, no queued task could run: either every engine
//! is at the high-water mark or `anywhere` is empty, and `ready` is empty.
//! The randomized test in `tests/ops.rs` checks this after every step.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use wasp_proto::{EngineId, TaskId};

use crate::config::{MAX_PREFETCH, SchedulerConfig};
use crate::error::SchedError;
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
}

/// ipyparallel's task scheduler as a state machine.
///
/// Inputs are the `handle_*` methods, each taking the current time; outputs
/// are [`Action`]s, drained with [`poll_action`](Self::poll_action) after
/// every input. Nothing here reads a clock, spawns, or does I/O, so the
/// controller owns one `Scheduler` in one task and a test drives it on a fake
/// clock.
///
/// Every operation costs `O(log engines)` plus, for a targeted task, the
/// length of its target list; none scans all engines or the whole queue.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    rng: Rng,
    /// The latest time an input carried.
    now: Duration,
    engines: BTreeMap<EngineId, Engine>,
    /// The engines below the high-water mark, indexed for the scheme.
    available: Available,
    /// Untargeted tasks in submission order (entries may be stale).
    anywhere: VecDeque<Entry>,
    /// `(head sequence number, engine)` of each available engine whose lane
    /// has a live head.
    ready: BTreeSet<(u64, EngineId)>,
    queued: HashMap<TaskId, Queued>,
    running: HashMap<TaskId, Running>,
    /// Engines another may take a task from: holding more than one task,
    /// the newest untargeted and not being retracted, their tasks longer
    /// than the prefetch budget (or of unknown length).
    stealable: BTreeSet<EngineId>,
    actions: VecDeque<Action>,
    /// The last submission's sequence number.
    submitted: u64,
    /// The last dispatch's sequence number: also the `lru` clock.
    dispatched: u64,
    finished: u64,
    failed: u64,
}

/// A place in a queue: the task and the submission it belongs to.
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    task: TaskId,
}

#[derive(Debug)]
struct Queued {
    seq: u64,
    /// The connected engines the task may run on, sorted and deduplicated;
    /// `None` for any engine.
    targets: Option<Vec<EngineId>>,
}

#[derive(Debug)]
struct Running {
    engine: EngineId,
    /// The dispatch's sequence number, the key in [`Engine::running`].
    seq: u64,
    /// The submission's sequence number, kept to queue the task again in
    /// its place if it is retracted.
    submitted: u64,
    /// Whether it named target engines (only untargeted tasks are stolen).
    targeted: bool,
}

#[derive(Debug)]
struct Engine {
    load: Load,
    /// Tasks running here by dispatch sequence number, so that a departure
    /// fails them in the order they were sent.
    running: BTreeMap<u64, TaskId>,
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
    /// The task a retract was asked for, until the engine answers.
    retracting: Option<TaskId>,
}

impl Engine {
    /// Whether it may take another task.
    fn has_room(&self) -> bool {
        self.capacity == 0 || self.load.outstanding < self.capacity
    }
}

impl Scheduler {
    /// A scheduler with no engines and no tasks.
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            rng: Rng::new(config.seed),
            available: Available::new(config.scheme),
            config,
            now: Duration::ZERO,
            engines: BTreeMap::new(),
            anywhere: VecDeque::new(),
            ready: BTreeSet::new(),
            queued: HashMap::new(),
            running: HashMap::new(),
            stealable: BTreeSet::new(),
            actions: VecDeque::new(),
            submitted: 0,
            dispatched: 0,
            finished: 0,
            failed: 0,
        }
    }

    /// A task was submitted. `targets` restricts it to those engines (as
    /// `rc[0].apply` does); `None` or an empty list means any engine.
    ///
    /// Targets that are not connected are dropped: engine ids are assigned
    /// in join order and never reused, so a client only names engines it was
    /// told about. If no target is left the task fails at once.
    pub fn handle_submit(
        &mut self,
        now: Duration,
        task: TaskId,
        targets: Option<Vec<EngineId>>,
    ) -> Result<(), SchedError> {
        self.observe(now);
        if self.queued.contains_key(&task) || self.running.contains_key(&task) {
            return Err(SchedError::DuplicateTask(task));
        }
        let targets = match targets {
            Some(mut requested) if !requested.is_empty() => {
                requested.sort_unstable();
                requested.dedup();
                let connected: Vec<EngineId> = requested
                    .iter()
                    .copied()
                    .filter(|engine| self.engines.contains_key(engine))
                    .collect();
                if connected.is_empty() {
                    let reason = format!(
                        "no target engine is connected (targets: {})",
                        list_engines(&requested)
                    );
                    self.fail(task, reason);
                    return Ok(());
                }
                Some(connected)
            }
            _ => None,
        };

        self.submitted += 1;
        let entry = Entry {
            seq: self.submitted,
            task,
        };
        match &targets {
            None => self.anywhere.push_back(entry),
            Some(list) => {
                for target in list {
                    if let Some(engine) = self.engines.get_mut(target) {
                        engine.lane.push_back(entry);
                    }
                }
            }
        }
        // Lanes that were empty get a head now; the others keep theirs.
        let fresh: Vec<EngineId> = targets
            .iter()
            .flatten()
            .copied()
            .filter(|target| {
                self.engines
                    .get(target)
                    .is_some_and(|e| e.ready_seq.is_none())
            })
            .collect();
        self.queued.insert(
            task,
            Queued {
                seq: entry.seq,
                targets,
            },
        );
        for target in fresh {
            self.refresh_ready(target);
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
                running: BTreeMap::new(),
                lane: VecDeque::new(),
                ready_seq: None,
                capacity: capacity(&self.config, None),
                run_time: None,
                retracting: None,
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
        self.stealable.remove(&engine);
        for task in gone.running.into_values() {
            self.running.remove(&task);
            self.actions.push_back(Action::Lost { task, engine });
        }
        for entry in gone.lane {
            let Some(queued) = self.queued.get_mut(&entry.task) else {
                continue;
            };
            if queued.seq != entry.seq {
                continue;
            }
            let Some(targets) = &mut queued.targets else {
                continue;
            };
            targets.retain(|&target| target != engine);
            if targets.is_empty() {
                self.queued.remove(&entry.task);
                let reason = format!("engine {engine}, the task's last connected target, left");
                self.fail(entry.task, reason);
            }
        }
        // Capacity only shrank: nothing new can run.
        Ok(())
    }

    /// A running task finished, successfully or not: its engine has room for
    /// another.
    pub fn handle_finished(&mut self, now: Duration, task: TaskId) -> Result<(), SchedError> {
        self.finish(now, task, None)
    }

    /// A running task finished after running for `run_time` on its engine
    /// (as the engine measured it): as [`handle_finished`](Self::handle_finished),
    /// and the time sizes the engine's prefetch
    /// ([`SchedulerConfig::prefetch`]).
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
        let Some(run) = self.running.remove(&task) else {
            return Err(SchedError::UnknownTask(task));
        };
        self.finished += 1;
        // A departure removes its engine's tasks from `running`.
        debug_assert!(
            self.engines.contains_key(&run.engine),
            "task {task} ran on engine {} which is gone",
            run.engine
        );
        self.release(run.engine, run.seq, |engine, config| {
            if let Some(run_time) = run_time {
                engine.run_time = Some(estimate_run_time(engine.run_time, run_time));
                engine.capacity = capacity(config, engine.run_time);
            }
            if engine.retracting == Some(task) {
                // It started before the retract arrived; the answer will
                // say so.
                engine.retracting = None;
            }
        });
        self.refresh_ready(run.engine);
        self.refresh_stealable(run.engine);
        self.pump();
        self.steal_for(run.engine);
        Ok(())
    }

    /// An engine answered a [`Action::Retract`]: `returned` if it handed the
    /// task back unstarted (it is queued again, ahead of younger tasks),
    /// otherwise it is running there and will finish as usual.
    pub fn handle_retracted(
        &mut self,
        now: Duration,
        task: TaskId,
        returned: bool,
    ) -> Result<(), SchedError> {
        self.observe(now);
        let Some(run) = self.running.get(&task) else {
            return Err(SchedError::UnknownTask(task));
        };
        let id = run.engine;
        let Some(engine) = self.engines.get_mut(&id) else {
            return Err(SchedError::UnknownTask(task));
        };
        if engine.retracting != Some(task) {
            return Err(SchedError::UnknownTask(task));
        }
        engine.retracting = None;
        if returned {
            let Some(run) = self.running.remove(&task) else {
                return Err(SchedError::UnknownTask(task));
            };
            self.release(id, run.seq, |_, _| {});
            // Every untargeted task still queued was submitted after it
            // (they are dispatched in order), so its place is the front.
            self.queued.insert(
                task,
                Queued {
                    seq: run.submitted,
                    targets: None,
                },
            );
            self.anywhere.push_front(Entry {
                seq: run.submitted,
                task,
            });
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
        if let Some(run) = self.running.get(&task) {
            return Ok(Cancelled::Running(run.engine));
        }
        let Some(queued) = self.queued.remove(&task) else {
            return Err(SchedError::UnknownTask(task));
        };
        // Its entries go stale; a lane whose head it was gets a new head.
        for target in queued.targets.into_iter().flatten() {
            self.refresh_ready(target);
        }
        self.pump();
        Ok(Cancelled::Dequeued)
    }

    /// Time passed. Nothing depends on time yet; task timeouts will.
    pub fn handle_tick(&mut self, now: Duration) {
        self.observe(now);
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
        self.queued.len()
    }

    /// How many tasks are dispatched and not finished, on all engines.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The tasks outstanding on `engine`, or `None` if it is not connected.
    pub fn outstanding(&self, engine: EngineId) -> Option<u32> {
        self.engines.get(&engine).map(|e| e.load.outstanding)
    }

    /// The engine `task` is running on, if it is running.
    pub fn engine_of(&self, task: TaskId) -> Option<EngineId> {
        self.running.get(&task).map(|run| run.engine)
    }

    /// The connected engines, in id order.
    pub fn engines(&self) -> impl Iterator<Item = EngineId> + '_ {
        self.engines.keys().copied()
    }

    /// Counters for a status display.
    pub fn stats(&self) -> Stats {
        Stats {
            engines: self.engines.len(),
            available_engines: self.available.len(),
            queued: self.queued.len(),
            running: self.running.len(),
            dispatched: self.dispatched,
            finished: self.finished,
            failed: self.failed,
        }
    }

    fn observe(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    fn fail(&mut self, task: TaskId, reason: String) {
        self.failed += 1;
        self.actions.push_back(Action::Fail { task, reason });
    }

    /// Dispatches runnable tasks, oldest first, until none is left.
    fn pump(&mut self) {
        loop {
            let anywhere = if self.available.is_empty() {
                None
            } else {
                self.anywhere_head()
            };
            let lane = self.ready.first().copied();
            let (entry, engine) = match (anywhere, lane) {
                (Some(entry), None) => self.pick_anywhere(entry),
                (Some(entry), Some((seq, _))) if entry.seq < seq => self.pick_anywhere(entry),
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
    }

    /// Takes `entry`, `anywhere`'s head, and picks among all available
    /// engines.
    fn pick_anywhere(&mut self, entry: Entry) -> (Entry, Option<EngineId>) {
        self.anywhere.pop_front();
        let engines = &self.engines;
        let load_of = |id| engines.get(&id).map_or(IDLE, |e: &Engine| e.load);
        (entry, self.available.pick(&mut self.rng, load_of))
    }

    /// The scheme's choice among the available targets of a queued task.
    fn pick_target(&mut self, entry: Entry) -> Option<EngineId> {
        let targets = self.queued.get(&entry.task)?.targets.as_deref()?;
        let candidates: Vec<(EngineId, Load)> = targets
            .iter()
            .filter_map(|&id| {
                let engine = self.engines.get(&id)?;
                engine.has_room().then_some((id, engine.load))
            })
            .collect();
        pick_among(self.config.scheme, &mut self.rng, &candidates)
    }

    /// `anywhere`'s first live entry, dropping stale ones.
    fn anywhere_head(&mut self) -> Option<Entry> {
        while let Some(&entry) = self.anywhere.front() {
            if is_live(&self.queued, entry) {
                return Some(entry);
            }
            self.anywhere.pop_front();
        }
        None
    }

    fn dispatch(&mut self, entry: Entry, id: EngineId) {
        let (Some(queued), Some(engine)) =
            (self.queued.remove(&entry.task), self.engines.get_mut(&id))
        else {
            debug_assert!(
                false,
                "dispatch of {} to {id}: unknown task or engine",
                entry.task
            );
            return;
        };
        self.available.remove(id, engine.load);
        self.dispatched += 1;
        engine.load = Load {
            outstanding: engine.load.outstanding + 1,
            last_used: self.dispatched,
        };
        engine.running.insert(self.dispatched, entry.task);
        if engine.has_room() {
            self.available.insert(id, engine.load);
        }
        self.running.insert(
            entry.task,
            Running {
                engine: id,
                seq: self.dispatched,
                submitted: entry.seq,
                targeted: queued.targets.is_some(),
            },
        );
        self.actions.push_back(Action::Dispatch {
            task: entry.task,
            engine: id,
        });
        // The engine may have reached the mark; other targets may have had
        // this task at their head.
        self.refresh_ready(id);
        self.refresh_stealable(id);
        for target in queued.targets.into_iter().flatten() {
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

    /// Takes the task dispatched as `seq` off engine `id`, after `update`
    /// has changed the engine (its capacity may shrink or grow), keeping
    /// `available` true to the room left.
    fn release(
        &mut self,
        id: EngineId,
        seq: u64,
        update: impl FnOnce(&mut Engine, &SchedulerConfig),
    ) {
        let Some(engine) = self.engines.get_mut(&id) else {
            return;
        };
        if engine.has_room() {
            self.available.remove(id, engine.load);
        }
        update(engine, &self.config);
        engine.load.outstanding = engine.load.outstanding.saturating_sub(1);
        engine.running.remove(&seq);
        // The capacity may have shrunk below the tasks still held.
        if engine.has_room() {
            self.available.insert(id, engine.load);
        }
    }

    /// Keeps `id`'s membership of `stealable` true to its state.
    fn refresh_stealable(&mut self, id: EngineId) {
        let Some(engine) = self.engines.get(&id) else {
            return;
        };
        let long = self.config.prefetch.is_zero()
            || engine.run_time.is_none_or(|run| run > self.config.prefetch);
        let newest_untargeted = engine
            .running
            .values()
            .next_back()
            .and_then(|task| self.running.get(task))
            .is_some_and(|run| !run.targeted);
        if !self.config.prefetch.is_zero()
            && long
            && engine.load.outstanding > 1
            && engine.retracting.is_none()
            && newest_untargeted
        {
            self.stealable.insert(id);
        } else {
            self.stealable.remove(&id);
        }
    }

    /// If `id` is idle with nothing queued for it, asks the engine holding
    /// the most for its newest task back.
    fn steal_for(&mut self, id: EngineId) {
        let idle = self
            .engines
            .get(&id)
            .is_some_and(|e| e.load.outstanding == 0 && e.has_room());
        if !idle || self.anywhere_head().is_some() {
            return;
        }
        let engines = &self.engines;
        let victim = self
            .stealable
            .iter()
            .copied()
            .filter(|&v| v != id)
            .max_by_key(|v| engines.get(v).map_or(0, |e| e.load.outstanding));
        let Some(victim) = victim else {
            return;
        };
        let Some(engine) = self.engines.get_mut(&victim) else {
            return;
        };
        let Some(&task) = engine.running.values().next_back() else {
            return;
        };
        engine.retracting = Some(task);
        self.stealable.remove(&victim);
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
            if is_live(&self.queued, head) {
                engine.ready_seq = Some(head.seq);
                self.ready.insert((head.seq, id));
                return;
            }
            engine.lane.pop_front();
        }
    }
}

const IDLE: Load = Load {
    outstanding: 0,
    last_used: 0,
};

/// The most tasks an engine whose tasks run for about `run_time` may hold:
/// the high-water mark, plus as many tasks as fit in the prefetch budget;
/// 0 (no limit) when the mark is 0.
fn capacity(config: &SchedulerConfig, run_time: Option<Duration>) -> u32 {
    if config.hwm == 0 {
        return 0;
    }
    if config.prefetch.is_zero() {
        return config.hwm;
    }
    // One task of lookahead whatever the length, so that no engine waits
    // a round trip between two tasks; stealing undoes it where it would
    // cost balance.
    let fit = run_time.map_or(0, |run| config.prefetch.as_nanos() / run.as_nanos().max(1));
    let extra = u32::try_from(fit)
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_PREFETCH);
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

fn is_live(queued: &HashMap<TaskId, Queued>, entry: Entry) -> bool {
    queued.get(&entry.task).is_some_and(|q| q.seq == entry.seq)
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
        s.handle_submit(T0, TaskId(task), targets)
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
            let task = s
                .running
                .keys()
                .copied()
                .find(|t| s.engine_of(*t) == Some(EngineId(1)));
            let task = task.expect("engine 1 holds a task");
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
        s.handle_submit(T0, TaskId(1), Some(vec![EngineId(7), EngineId(5)]))
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
            s.handle_submit(T0, TaskId(1), None),
            Err(SchedError::DuplicateTask(TaskId(1)))
        );
        assert_eq!(
            s.handle_submit(T0, TaskId(2), None),
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
