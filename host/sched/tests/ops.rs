//! Random operation sequences against a plain model of the scheduler (as
//! quinn fuzzes its streams with `Arbitrary` operation lists): after every
//! step, and at every action, the scheduler must agree with the model.
//!
//! The model is deliberately naive (linear scans over everything) so that it
//! is obviously right; the ids come from small ranges so that duplicates,
//! unknown ids, rejoins and busy targets happen often.
//!
//! Tasks come from three tenants. The model does not replay the fair share
//! (`tests/fair.rs` measures it); it checks the orders the fair share must
//! keep: a tenant's untargeted tasks go in submission order, and no task
//! overtakes an older targeted task that could run. With one tenant that is
//! ipyparallel's rule, unchanged: no task overtakes an older runnable one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use wasp_proto::{EngineId, TaskId};
use wasp_sched::{
    Action, Cancelled, MAX_PREFETCH, MAX_PREFETCH_FAR, SchedError, Scheduler, SchedulerConfig,
    Scheme, TenantKey,
};

#[derive(Clone, Debug)]
enum Op {
    Join(u32),
    Leave(u32),
    /// Submit a task of a tenant (0..3), to targets or any engine.
    Submit(u64, u32, Option<Vec<u32>>),
    /// Set a tenant's weight (0 is refused).
    Weight(u32, u32),
    /// Abort any task id, queued, running or not.
    Cancel(u64),
    /// Finish any task id, running or not.
    Finish(u64),
    /// Finish the n-th running task (modulo their number), so that finishes
    /// usually hit; with its run time in microseconds, if given.
    FinishRunning(usize, Option<u64>),
    Tick(u64),
    /// An engine's round-trip time changed (microseconds).
    Rtt(u32, u64),
    /// Answer the n-th pending retract (modulo their number): handed back
    /// or already started.
    Answer(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..6u32).prop_map(Op::Join),
        1 => (0..6u32).prop_map(Op::Leave),
        5 => (0..30u64, 0..3u32, proptest::option::of(proptest::collection::vec(0..6u32, 0..4)))
            .prop_map(|(task, tenant, targets)| Op::Submit(task, tenant, targets)),
        1 => (0..3u32, 0..4u32).prop_map(|(tenant, weight)| Op::Weight(tenant, weight)),
        1 => (0..30u64).prop_map(Op::Cancel),
        1 => (0..30u64).prop_map(Op::Finish),
        4 => (any::<usize>(), proptest::option::of(0..3_000u64))
            .prop_map(|(n, micros)| Op::FinishRunning(n, micros)),
        1 => (0..1_000u64).prop_map(Op::Tick),
        1 => (0..6u32, 0..200_000u64).prop_map(|(engine, micros)| Op::Rtt(engine, micros)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(n, back)| Op::Answer(n, back)),
    ]
}

fn config() -> impl Strategy<Value = SchedulerConfig> {
    (
        proptest::sample::select(Scheme::ALL.to_vec()),
        0..4u32,
        any::<u64>(),
        proptest::sample::select(vec![0u64, 1_000]),
        any::<bool>(),
    )
        .prop_map(
            |(scheme, hwm, seed, prefetch_us, time_slice)| SchedulerConfig {
                scheme,
                hwm,
                seed,
                prefetch: Duration::from_micros(prefetch_us),
                time_slice,
            },
        )
}

/// What the scheduler should be doing, kept the slow and obvious way.
#[derive(Debug, Default)]
struct Model {
    hwm: u32,
    prefetch: Duration,
    time_slice: bool,
    /// Engine → the task sliced in beside its others (`Action::Slice`):
    /// running, but outside the engine's load.
    sliced: BTreeMap<u32, u64>,
    /// Each live engine's estimate of its tasks' run time, once one is known.
    run_time: BTreeMap<u32, Duration>,
    /// Each live engine's round-trip time, once told.
    rtt: BTreeMap<u32, Duration>,
    alive: BTreeSet<u32>,
    /// Queued tasks in submission order; targets `None` for any engine,
    /// otherwise the connected targets.
    queued: Vec<(u64, Option<Vec<u32>>)>,
    /// Each queued or running task's tenant.
    tenant_of: BTreeMap<u64, u32>,
    /// Running task → engine.
    running: BTreeMap<u64, u32>,
    /// Each task's submission number, to queue a retracted task in its place.
    submission: BTreeMap<u64, u64>,
    submitted: u64,
    /// Running task → dispatch number, to know each engine's newest.
    dispatch: BTreeMap<u64, u64>,
    dispatched: u64,
    /// Running tasks that named targets.
    targeted: BTreeSet<u64>,
    /// Engine → the task a retract was asked for.
    retracting: BTreeMap<u32, u64>,
}

impl Model {
    fn load(&self, engine: u32) -> u32 {
        self.held(engine).count() as u32
    }

    /// The tasks `engine` holds under its mark (not the one sliced in).
    fn held(&self, engine: u32) -> impl Iterator<Item = u64> + '_ {
        self.running
            .iter()
            .filter(move |&(task, &e)| e == engine && self.sliced.get(&e) != Some(task))
            .map(|(&task, _)| task)
    }

    /// A running task ended one way or another.
    fn ended(&mut self, task: u64) {
        self.running.remove(&task);
        self.retracting.retain(|_, t| *t != task);
        self.sliced.retain(|_, t| *t != task);
    }

    /// The high-water mark plus prefetch (`SchedulerConfig::prefetch`):
    /// `hwm + min(budget / run time, cap)`, 0 for no limit, where the
    /// budget is the prefetch or two round trips if more, and the cap
    /// MAX_PREFETCH grown in proportion to the budget (up to
    /// MAX_PREFETCH_FAR). With prefetch on, at least one task of lookahead.
    fn capacity(&self, engine: u32) -> u32 {
        if self.hwm == 0 {
            return 0;
        }
        if self.prefetch.is_zero() {
            return self.hwm;
        }
        let rtt = self.rtt.get(&engine).copied().unwrap_or_default();
        let budget = self.prefetch.max(rtt * 2);
        let cap = (u128::from(MAX_PREFETCH) * (budget.as_nanos() / self.prefetch.as_nanos()))
            .clamp(u128::from(MAX_PREFETCH), u128::from(MAX_PREFETCH_FAR));
        let fit = self
            .run_time
            .get(&engine)
            .map_or(0, |run| budget.as_nanos() / run.as_nanos().max(1));
        self.hwm + fit.clamp(1, cap) as u32
    }

    /// The task dispatched last to `engine` among those it holds.
    fn newest(&self, engine: u32) -> Option<u64> {
        self.held(engine).max_by_key(|task| self.dispatch[task])
    }

    /// Puts a task back in the queue at its submission's place.
    fn requeue(&mut self, task: u64) {
        let seq = self.submission[&task];
        let position = self
            .queued
            .iter()
            .position(|(t, _)| self.submission[t] > seq)
            .unwrap_or(self.queued.len());
        self.queued.insert(position, (task, None));
    }

    fn can_take(&self, engine: u32) -> bool {
        let capacity = self.capacity(engine);
        self.alive.contains(&engine) && (capacity == 0 || self.load(engine) < capacity)
    }

    /// A task ran for `sample` on `engine`: the estimate jumps up to a
    /// longer time and moves a quarter of the way down to a shorter one.
    fn ran(&mut self, engine: u32, sample: Duration) {
        let next = match self.run_time.get(&engine) {
            Some(&old) if sample < old => (old * 3 + sample) / 4,
            _ => sample,
        };
        self.run_time.insert(engine, next);
    }

    fn allows(targets: &Option<Vec<u32>>, engine: u32) -> bool {
        targets.as_ref().is_none_or(|list| list.contains(&engine))
    }

    fn runnable(&self, targets: &Option<Vec<u32>>) -> bool {
        self.alive
            .iter()
            .any(|&engine| Self::allows(targets, engine) && self.can_take(engine))
    }

    /// Applies one action, checking it was legal.
    fn apply(&mut self, action: Action) -> Result<(), TestCaseError> {
        match action {
            Action::Dispatch { task, engine } => {
                let (task, engine) = (task.0, engine.0);
                let position = self.queued.iter().position(|(t, _)| *t == task);
                let Some(position) = position else {
                    return Err(TestCaseError::fail(format!(
                        "dispatch of unqueued task {task}"
                    )));
                };
                prop_assert!(
                    self.alive.contains(&engine),
                    "dispatch to missing engine {engine}"
                );
                prop_assert!(
                    self.can_take(engine),
                    "engine {engine} is at the high-water mark"
                );
                prop_assert!(
                    Self::allows(&self.queued[position].1, engine),
                    "off-target dispatch"
                );
                let tenant = self.tenant_of[&task];
                let targeted = self.queued[position].1.is_some();
                // The fair share may have chosen another tenant's head, so
                // a targeted task may pass its own tenant's older
                // untargeted ones only if another tenant has some waiting.
                let others_waiting = self
                    .queued
                    .iter()
                    .any(|(t, targets)| targets.is_none() && self.tenant_of[t] != tenant);
                for (older, targets) in &self.queued[..position] {
                    if !self.runnable(targets) {
                        continue;
                    }
                    let same_tenant = self.tenant_of[older] == tenant;
                    let allowed =
                        targets.is_none() && (!same_tenant || (targeted && others_waiting));
                    prop_assert!(allowed, "task {task} overtook runnable task {older}");
                }
                let (_, targets) = self.queued.remove(position);
                if targets.is_some() {
                    self.targeted.insert(task);
                } else {
                    self.targeted.remove(&task);
                }
                self.running.insert(task, engine);
                self.dispatched += 1;
                self.dispatch.insert(task, self.dispatched);
            }
            Action::Slice { task, engine } => {
                let (task, engine) = (task.0, engine.0);
                prop_assert!(self.time_slice, "a slice with time slicing off");
                let position = self.queued.iter().position(|(t, _)| *t == task);
                let Some(position) = position else {
                    return Err(TestCaseError::fail(format!(
                        "slice of unqueued task {task}"
                    )));
                };
                prop_assert!(self.queued[position].1.is_none(), "a targeted task sliced");
                prop_assert!(self.alive.contains(&engine), "slice to missing engine");
                prop_assert!(
                    !self.sliced.contains_key(&engine),
                    "a second slice on engine {}",
                    engine
                );
                prop_assert!(!self.runnable(&None), "a slice while an engine has room");
                let tenant = self.tenant_of[&task];
                let oldest = self.held(engine).min_by_key(|t| self.dispatch[t]);
                let Some(oldest) = oldest else {
                    return Err(TestCaseError::fail(format!(
                        "slice onto idle engine {engine}"
                    )));
                };
                prop_assert!(
                    self.tenant_of[&oldest] != tenant,
                    "task {} sliced in beside its own tenant's task {}",
                    task,
                    oldest
                );
                let older_of_tenant = self.queued[..position]
                    .iter()
                    .any(|(t, targets)| targets.is_none() && self.tenant_of[t] == tenant);
                prop_assert!(!older_of_tenant, "slice of {} overtook its tenant", task);
                self.queued.remove(position);
                self.targeted.remove(&task);
                self.running.insert(task, engine);
                self.sliced.insert(engine, task);
                self.dispatched += 1;
                self.dispatch.insert(task, self.dispatched);
            }
            Action::Retract { task, engine } => {
                let (task, engine) = (task.0, engine.0);
                prop_assert!(!self.prefetch.is_zero(), "a retract without prefetch");
                prop_assert_eq!(
                    self.running.get(&task),
                    Some(&engine),
                    "retract of {} elsewhere",
                    task
                );
                prop_assert!(
                    !self.retracting.contains_key(&engine),
                    "two retracts on engine {}",
                    engine
                );
                prop_assert!(
                    !self.targeted.contains(&task),
                    "retract of targeted task {}",
                    task
                );
                prop_assert_eq!(self.newest(engine), Some(task), "retract of an older task");
                prop_assert!(
                    self.load(engine) > 1,
                    "retract of engine {}'s only task",
                    engine
                );
                let thief = self.alive.iter().any(|&e| e != engine && self.load(e) == 0);
                prop_assert!(thief, "a retract with no idle engine");
                self.retracting.insert(engine, task);
            }
            Action::Lost { task, engine } => {
                let (task, engine) = (task.0, engine.0);
                prop_assert_eq!(
                    self.running.get(&task),
                    Some(&engine),
                    "{} lost from an engine it was not on",
                    task
                );
                prop_assert!(
                    !self.alive.contains(&engine),
                    "{task} lost on live engine {engine}"
                );
                self.ended(task);
            }
            Action::Fail { task, reason } => {
                let task = task.0;
                if let Some(engine) = self.running.get(&task).copied() {
                    prop_assert!(
                        !self.alive.contains(&engine),
                        "{task} failed on live engine: {reason}"
                    );
                    self.ended(task);
                } else if let Some(position) = self.queued.iter().position(|(t, _)| *t == task) {
                    let targets = &self.queued[position].1;
                    prop_assert!(
                        targets
                            .as_ref()
                            .is_some_and(|list| list.iter().all(|e| !self.alive.contains(e))),
                        "queued task {task} failed with a live target: {reason}"
                    );
                    self.queued.remove(position);
                } else {
                    return Err(TestCaseError::fail(format!("fail of unknown task {task}")));
                }
            }
        }
        Ok(())
    }

    /// Everything the scheduler reports must match, and nothing queued may
    /// be runnable.
    fn check(&self, sched: &Scheduler) -> Result<(), TestCaseError> {
        let engines: BTreeSet<u32> = sched.engines().map(|e| e.0).collect();
        prop_assert_eq!(&engines, &self.alive);
        for engine in 0..6 {
            let expected = self.alive.contains(&engine).then(|| self.load(engine));
            prop_assert_eq!(
                sched.outstanding(EngineId(engine)),
                expected,
                "engine {}",
                engine
            );
        }
        prop_assert_eq!(sched.queued(), self.queued.len());
        prop_assert_eq!(sched.running(), self.running.len());
        for (&task, &engine) in &self.running {
            prop_assert_eq!(sched.engine_of(TaskId(task)), Some(EngineId(engine)));
            prop_assert!(
                self.alive.contains(&engine),
                "task {} left on a departed engine",
                task
            );
        }
        for (task, targets) in &self.queued {
            prop_assert!(!self.runnable(targets), "task {} could run but waits", task);
            if let Some(list) = targets {
                prop_assert!(
                    list.iter().any(|e| self.alive.contains(e)),
                    "task {} waits for departed engines only",
                    task
                );
            }
        }
        let stats = sched.stats();
        for tenant in 0..3 {
            let of = |task: &u64| self.tenant_of[task] == tenant;
            let queued = self.queued.iter().filter(|(t, _)| of(t)).count();
            let running = self.running.keys().filter(|t| of(t)).count();
            let reported = sched
                .tenant_stats(TenantKey(tenant))
                .map_or((0, 0), |t| (t.queued, t.running));
            prop_assert_eq!(reported, (queued, running), "tenant {}", tenant);
        }
        let per_tenant: usize = stats.tenants.iter().map(|t| t.queued).sum();
        prop_assert_eq!(per_tenant, self.queued.len());
        prop_assert_eq!(stats.engines, self.alive.len());
        prop_assert_eq!(stats.queued, self.queued.len());
        prop_assert_eq!(stats.running, self.running.len());
        Ok(())
    }
}

fn run(config: SchedulerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model {
        hwm: config.hwm,
        prefetch: config.prefetch,
        time_slice: config.time_slice,
        ..Model::default()
    };
    let mut sched = Scheduler::new(config);
    let mut now = Duration::ZERO;
    for op in ops {
        now += Duration::from_millis(1);
        match op {
            Op::Join(engine) => {
                let result = sched.handle_engine_joined(now, EngineId(engine));
                if model.alive.insert(engine) {
                    model.run_time.remove(&engine);
                    model.rtt.remove(&engine);
                    prop_assert_eq!(result, Ok(()));
                } else {
                    prop_assert_eq!(result, Err(SchedError::DuplicateEngine(EngineId(engine))));
                }
            }
            Op::Leave(engine) => {
                let result = sched.handle_engine_left(now, EngineId(engine));
                if model.alive.remove(&engine) {
                    prop_assert_eq!(result, Ok(()));
                    model.retracting.remove(&engine);
                    for (_, targets) in &mut model.queued {
                        if let Some(list) = targets {
                            list.retain(|&e| e != engine);
                        }
                    }
                } else {
                    prop_assert_eq!(result, Err(SchedError::UnknownEngine(EngineId(engine))));
                }
            }
            Op::Submit(task, tenant, targets) => {
                let duplicate = model.running.contains_key(&task)
                    || model.queued.iter().any(|(t, _)| *t == task);
                if !duplicate {
                    model.submitted += 1;
                    model.submission.insert(task, model.submitted);
                    model.tenant_of.insert(task, tenant);
                }
                let requested = targets
                    .clone()
                    .map(|list| list.into_iter().map(EngineId).collect());
                let result = sched.handle_submit(now, TaskId(task), TenantKey(tenant), requested);
                if duplicate {
                    prop_assert_eq!(result, Err(SchedError::DuplicateTask(TaskId(task))));
                } else {
                    prop_assert_eq!(result, Ok(()));
                    let targets = targets.filter(|list| !list.is_empty()).map(|mut list| {
                        list.retain(|e| model.alive.contains(e));
                        list
                    });
                    model.queued.push((task, targets));
                }
            }
            Op::Finish(task) => finish(&mut sched, &mut model, now, task, None)?,
            Op::FinishRunning(n, micros) => {
                if !model.running.is_empty() {
                    let task = *model
                        .running
                        .keys()
                        .nth(n % model.running.len())
                        .expect("in range");
                    let run_time = micros.map(Duration::from_micros);
                    finish(&mut sched, &mut model, now, task, run_time)?;
                }
            }
            Op::Tick(ms) => sched.handle_tick(Duration::from_millis(ms)),
            Op::Rtt(engine, micros) => {
                let result =
                    sched.handle_engine_rtt(now, EngineId(engine), Duration::from_micros(micros));
                prop_assert_eq!(result.is_ok(), model.alive.contains(&engine));
                if result.is_ok() {
                    model.rtt.insert(engine, Duration::from_micros(micros));
                }
            }
            Op::Weight(tenant, weight) => {
                let result = sched.handle_tenant(now, TenantKey(tenant), weight);
                if weight == 0 {
                    prop_assert_eq!(result, Err(SchedError::ZeroWeight(TenantKey(tenant))));
                } else {
                    prop_assert_eq!(result, Ok(()));
                }
            }
            Op::Cancel(task) => {
                let result = sched.handle_cancel(now, TaskId(task));
                if let Some(&engine) = model.running.get(&task) {
                    prop_assert_eq!(result, Ok(Cancelled::Running(EngineId(engine))));
                } else if let Some(position) = model.queued.iter().position(|(t, _)| *t == task) {
                    prop_assert_eq!(result, Ok(Cancelled::Dequeued));
                    model.queued.remove(position);
                } else {
                    prop_assert_eq!(result, Err(SchedError::UnknownTask(TaskId(task))));
                }
            }
            Op::Answer(n, back) => {
                if !model.retracting.is_empty() {
                    let (&engine, &task) = model
                        .retracting
                        .iter()
                        .nth(n % model.retracting.len())
                        .expect("in range");
                    let result = sched.handle_retracted(now, TaskId(task), back);
                    prop_assert_eq!(result, Ok(()));
                    model.retracting.remove(&engine);
                    if back {
                        model.running.remove(&task);
                        model.requeue(task);
                    }
                } else {
                    let result = sched.handle_retracted(now, TaskId(99), back);
                    prop_assert_eq!(result, Err(SchedError::UnknownTask(TaskId(99))));
                }
            }
        }
        while let Some(action) = sched.poll_action() {
            model.apply(action)?;
        }
        model.check(&sched)?;
    }
    Ok(())
}

fn finish(
    sched: &mut Scheduler,
    model: &mut Model,
    now: Duration,
    task: u64,
    run_time: Option<Duration>,
) -> Result<(), TestCaseError> {
    let result = match run_time {
        Some(run_time) => sched.handle_finished_after(now, TaskId(task), run_time),
        None => sched.handle_finished(now, TaskId(task)),
    };
    if let Some(engine) = model.running.get(&task).copied() {
        let sliced = model.sliced.get(&engine) == Some(&task);
        model.ended(task);
        // A sliced task's run time shared its engine: it does not size
        // the engine's prefetch.
        if let Some(run_time) = run_time.filter(|_| !sliced) {
            model.ran(engine, run_time);
        }
        prop_assert_eq!(result, Ok(()));
    } else {
        prop_assert_eq!(result, Err(SchedError::UnknownTask(TaskId(task))));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scheduler_agrees_with_the_model(config in config(), ops in proptest::collection::vec(op(), 1..200)) {
        run(config, ops)?;
    }
}
