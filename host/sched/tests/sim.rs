//! The scheduler driven by a simulated cluster on a fake clock, as quinn's
//! `Pair` drives two endpoints: tasks arrive, engines take simulated service
//! times to finish them, engines join and leave, and every action the
//! scheduler emits is checked against the simulation's own bookkeeping.
//!
//! Everything is seeded, so a failure replays exactly. Speed is printed
//! (`--nocapture` shows it), never asserted: it is measured in benchmarks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use wasp_proto::{EngineId, TaskId};
use wasp_sched::{Action, Scheduler, SchedulerConfig, Scheme, TenantKey};

/// SplitMix64, for the simulation's own draws (arrivals, service times,
/// targets), independent of the scheduler's.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a simulated cluster looks like.
#[derive(Clone)]
struct Scenario {
    scheme: Scheme,
    hwm: u32,
    /// Engines 0..initial_engines join at time 0.
    initial_engines: u32,
    tasks: u64,
    /// Mean time between arrivals; 0 submits every task at time 0.
    interarrival_us: f64,
    /// An engine's mean service time.
    service_us: fn(EngineId) -> u64,
    /// Service times vary uniformly by ±50% around the mean.
    jitter: bool,
    /// The share of tasks restricted to 1–3 random engine ids below
    /// `max_engine_id`.
    targeted: f64,
    max_engine_id: u32,
    /// Engines joining or leaving mid-run: (time, engine, joins).
    churn: Vec<(u64, EngineId, bool)>,
    seed: u64,
}

impl Scenario {
    fn new(scheme: Scheme, hwm: u32, engines: u32, tasks: u64) -> Self {
        Self {
            scheme,
            hwm,
            initial_engines: engines,
            tasks,
            interarrival_us: 0.0,
            service_us: |_| 1_000,
            jitter: false,
            targeted: 0.0,
            max_engine_id: engines,
            churn: Vec::new(),
            seed: 7,
        }
    }

    /// Arrivals at `load` times the cluster's capacity, with uniform jitter.
    fn at_load(mut self, load: f64) -> Self {
        let capacity_per_us: f64 = (0..self.initial_engines)
            .map(|id| 1.0 / (self.service_us)(EngineId(id)) as f64)
            .sum();
        self.interarrival_us = 1.0 / (capacity_per_us * load);
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival,
    Finish(TaskId, EngineId),
    Join(EngineId),
    Leave(EngineId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    NotSubmitted,
    Queued,
    Running(EngineId),
    Finished,
    Failed,
}

/// The result of a run, for the scenario's own assertions.
struct Outcome {
    /// Tasks dispatched to each engine id.
    per_engine: Vec<u64>,
    finished: u64,
    failed: u64,
    dispatches: u64,
    elapsed: Duration,
}

impl Outcome {
    fn report(&self, name: &str) {
        let secs = self.elapsed.as_secs_f64();
        eprintln!(
            "{name}: {} dispatches, {} finished, {} failed in {secs:.3} s: {:.0} decisions/s",
            self.dispatches,
            self.finished,
            self.failed,
            self.dispatches as f64 / secs
        );
    }

    fn counts(&self, engines: std::ops::Range<usize>) -> &[u64] {
        &self.per_engine[engines]
    }
}

struct Sim {
    scenario: Scenario,
    sched: Scheduler,
    rng: Rng,
    clock: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    event_seq: u64,
    submitted: u64,
    state: Vec<State>,
    targets: Vec<Option<Vec<EngineId>>>,
    alive: Vec<bool>,
    outstanding: Vec<u32>,
    per_engine: Vec<u64>,
    /// The last untargeted task dispatched: those leave in FIFO order.
    last_untargeted: Option<u64>,
    dispatches: u64,
}

impl Sim {
    fn new(scenario: Scenario) -> Self {
        let ids = scenario.max_engine_id as usize;
        let tasks = scenario.tasks as usize;
        let mut sim = Self {
            sched: Scheduler::new(SchedulerConfig {
                scheme: scenario.scheme,
                hwm: scenario.hwm,
                seed: scenario.seed,
                prefetch: Duration::ZERO,
                time_slice: false,
            }),
            rng: Rng(scenario.seed ^ 0x5151),
            clock: 0,
            events: BinaryHeap::new(),
            event_seq: 0,
            submitted: 0,
            state: vec![State::NotSubmitted; tasks],
            targets: vec![None; tasks],
            alive: vec![false; ids],
            outstanding: vec![0; ids],
            per_engine: vec![0; ids],
            last_untargeted: None,
            dispatches: 0,
            scenario,
        };
        for id in 0..sim.scenario.initial_engines {
            sim.schedule(0, Event::Join(EngineId(id)));
        }
        for (time, engine, joins) in sim.scenario.churn.clone() {
            let event = if joins {
                Event::Join(engine)
            } else {
                Event::Leave(engine)
            };
            sim.schedule(time, event);
        }
        // After the joins at time 0, so that the first tasks find engines.
        sim.schedule(0, Event::Arrival);
        sim
    }

    fn schedule(&mut self, time: u64, event: Event) {
        self.event_seq += 1;
        self.events.push(Reverse((time, self.event_seq, event)));
    }

    fn now(&self) -> Duration {
        Duration::from_micros(self.clock)
    }

    /// Runs until no event is left and checks that every task ended once.
    fn run(mut self) -> Outcome {
        let start = Instant::now();
        while let Some(Reverse((time, _, event))) = self.events.pop() {
            self.clock = time;
            self.step(event);
            self.drain();
            if let Event::Finish(_, engine) = event {
                // After the drain: the finish may have let a task in.
                self.check_engine(engine);
            }
        }
        let elapsed = start.elapsed();
        assert_eq!(self.sched.queued(), 0, "tasks left waiting");
        assert_eq!(self.sched.running(), 0, "tasks left running");
        let mut finished = 0;
        let mut failed = 0;
        for (task, state) in self.state.iter().enumerate() {
            match state {
                State::Finished => finished += 1,
                State::Failed => failed += 1,
                other => panic!("task {task} ended {other:?}"),
            }
        }
        Outcome {
            per_engine: self.per_engine,
            finished,
            failed,
            dispatches: self.dispatches,
            elapsed,
        }
    }

    fn step(&mut self, event: Event) {
        let now = self.now();
        match event {
            Event::Arrival => self.arrive(),
            Event::Finish(task, engine) => {
                let result = self.sched.handle_finished(now, task);
                if self.state[task.0 as usize] == State::Running(engine) {
                    result.expect("a running task finishes");
                    self.state[task.0 as usize] = State::Finished;
                    self.outstanding[engine.0 as usize] -= 1;
                } else {
                    // Its engine left and the task was failed: the late
                    // result is refused.
                    assert!(result.is_err(), "late result of {task} accepted");
                }
            }
            Event::Join(engine) => {
                self.sched
                    .handle_engine_joined(now, engine)
                    .expect("fresh engine");
                self.alive[engine.0 as usize] = true;
            }
            Event::Leave(engine) => {
                self.alive[engine.0 as usize] = false;
                self.sched
                    .handle_engine_left(now, engine)
                    .expect("connected engine");
                assert_eq!(self.sched.outstanding(engine), None);
            }
        }
    }

    fn arrive(&mut self) {
        let task = self.submitted;
        self.submitted += 1;
        let targets = (self.rng.unit() < self.scenario.targeted).then(|| {
            let n = 1 + self.rng.below(3);
            (0..n)
                .map(|_| EngineId(self.rng.below(u64::from(self.scenario.max_engine_id)) as u32))
                .collect::<Vec<_>>()
        });
        self.state[task as usize] = State::Queued;
        self.targets[task as usize] = targets.clone();
        self.sched
            .handle_submit(self.now(), TaskId(task), TenantKey(0), targets)
            .expect("fresh task");
        if self.submitted < self.scenario.tasks {
            let gap = if self.scenario.interarrival_us == 0.0 {
                0
            } else {
                (self.rng.unit() * 2.0 * self.scenario.interarrival_us) as u64
            };
            self.schedule(self.clock + gap, Event::Arrival);
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.sched.poll_action() {
            match action {
                Action::Dispatch { task, engine } => self.dispatched(task, engine),
                Action::Slice { task, .. } => panic!("{task} sliced with time slicing off"),
                Action::Fail { task, reason } => self.failed(task, &reason),
                // The owner decides (the controller runs it again); here
                // it ends, as it did on the engine that left.
                Action::Lost { task, engine } => {
                    assert_eq!(self.state[task.0 as usize], State::Running(engine));
                    self.failed(task, "its engine left");
                }
                Action::Retract { task, .. } => {
                    panic!("retract of {task}: prefetch is off in the simulation")
                }
            }
        }
    }

    fn dispatched(&mut self, task: TaskId, engine: EngineId) {
        let t = task.0 as usize;
        let e = engine.0 as usize;
        assert_eq!(self.state[t], State::Queued, "{task} dispatched twice");
        assert!(
            self.alive[e],
            "{task} dispatched to departed engine {engine}"
        );
        let hwm = self.scenario.hwm;
        assert!(
            hwm == 0 || self.outstanding[e] < hwm,
            "engine {engine} above hwm"
        );
        match &self.targets[t] {
            Some(targets) => assert!(targets.contains(&engine), "{task} sent off target"),
            None => {
                assert!(
                    self.last_untargeted < Some(task.0),
                    "{task} dispatched out of order"
                );
                self.last_untargeted = Some(task.0);
            }
        }
        self.state[t] = State::Running(engine);
        self.outstanding[e] += 1;
        self.per_engine[e] += 1;
        self.dispatches += 1;

        let mean = (self.scenario.service_us)(engine);
        let service = if self.scenario.jitter {
            mean / 2 + self.rng.below(mean + 1)
        } else {
            mean
        };
        self.schedule(self.clock + service, Event::Finish(task, engine));
    }

    fn failed(&mut self, task: TaskId, reason: &str) {
        let t = task.0 as usize;
        match self.state[t] {
            State::Running(engine) => {
                assert!(
                    !self.alive[engine.0 as usize],
                    "{task} failed on live engine: {reason}"
                );
                self.outstanding[engine.0 as usize] -= 1;
            }
            State::Queued => {
                let targets = self.targets[t]
                    .as_ref()
                    .expect("only targeted tasks fail queued");
                assert!(
                    targets.iter().all(|e| !self.alive[e.0 as usize]),
                    "{task} failed with a live target: {reason}"
                );
            }
            other => panic!("{task} failed when {other:?}: {reason}"),
        }
        self.state[t] = State::Failed;
    }

    fn check_engine(&self, engine: EngineId) {
        if self.alive[engine.0 as usize] {
            assert_eq!(
                self.sched.outstanding(engine),
                Some(self.outstanding[engine.0 as usize]),
                "engine {engine}"
            );
        }
    }
}

fn spread(counts: &[u64]) -> (u64, u64) {
    let min = counts.iter().copied().min().expect("engines");
    let max = counts.iter().copied().max().expect("engines");
    (min, max)
}

/// Every engine's count is within ±5 sigma of a fair multinomial share.
fn assert_statistically_even(name: &str, counts: &[u64]) {
    let total: u64 = counts.iter().sum();
    let p = 1.0 / counts.len() as f64;
    let mean = total as f64 * p;
    let sigma = (total as f64 * p * (1.0 - p)).sqrt();
    for (engine, &count) in counts.iter().enumerate() {
        assert!(
            (count as f64 - mean).abs() <= 5.0 * sigma,
            "{name}: engine {engine} got {count}, mean {mean:.0} ± {sigma:.1}"
        );
    }
}

#[test]
fn leastload_1000_engines_1m_tasks() {
    let scenario = Scenario::new(Scheme::LeastLoad, 1, 1_000, 1_000_000).at_load(0.8);
    let outcome = Sim::new(scenario).run();
    outcome.report("leastload 1000 engines, 1M tasks, 80% load");
    assert_eq!(outcome.finished, 1_000_000);
    let (min, max) = spread(&outcome.per_engine);
    assert!(max - min <= 2, "equal engines got {min}..={max} tasks");
}

#[test]
fn leastload_1000_engines_1m_tasks_queued_at_once() {
    let mut scenario = Scenario::new(Scheme::LeastLoad, 1, 1_000, 1_000_000);
    scenario.jitter = true;
    let outcome = Sim::new(scenario).run();
    outcome.report("leastload 1000 engines, 1M tasks queued at once, ±50% service");
    assert_eq!(outcome.finished, 1_000_000);
    assert_statistically_even("leastload saturated", &outcome.per_engine);
}

#[test]
fn every_scheme_spreads_equal_work_evenly() {
    for scheme in Scheme::ALL {
        let scenario = Scenario::new(scheme, 1, 100, 100_000).at_load(0.8);
        let outcome = Sim::new(scenario).run();
        outcome.report(&format!("{scheme} 100 engines, 100k tasks, 80% load"));
        assert_eq!(outcome.finished, 100_000);
        let (min, max) = spread(&outcome.per_engine);
        assert!(min > 0, "{scheme}: an engine got no work");
        match scheme {
            // Both rotate through idle engines when service times are equal.
            Scheme::LeastLoad | Scheme::Lru => {
                assert!(max - min <= 2, "{scheme}: {min}..={max}");
            }
            _ => assert_statistically_even(&scheme.to_string(), &outcome.per_engine),
        }
    }
}

#[test]
fn every_scheme_spreads_work_without_a_high_water_mark() {
    for scheme in Scheme::ALL {
        let mut scenario = Scenario::new(scheme, 0, 100, 100_000).at_load(0.8);
        scenario.jitter = true;
        let outcome = Sim::new(scenario).run();
        outcome.report(&format!(
            "{scheme} hwm=0, 100 engines, 100k tasks, 80% load"
        ));
        assert_eq!(outcome.finished, 100_000);
        assert_statistically_even(&scheme.to_string(), &outcome.per_engine);
    }
}

#[test]
fn load_aware_schemes_prefer_faster_engines() {
    // Engines 0..50 are three times as fast as engines 50..100. Without a
    // high-water mark only the scheme can steer work to the fast ones.
    for scheme in [Scheme::LeastLoad, Scheme::Weighted] {
        let mut scenario = Scenario::new(scheme, 0, 100, 100_000);
        scenario.service_us = |engine| if engine.0 < 50 { 1_000 } else { 3_000 };
        scenario.jitter = true;
        let scenario = scenario.at_load(0.7);
        let outcome = Sim::new(scenario).run();
        outcome.report(&format!("{scheme} fast and slow engines, hwm=0"));
        let fast: u64 = outcome.counts(0..50).iter().sum();
        let slow: u64 = outcome.counts(50..100).iter().sum();
        eprintln!("{scheme}: fast engines ran {fast} tasks, slow ones {slow}");
        assert!(fast * 2 > slow * 3, "{scheme}: fast {fast}, slow {slow}");
    }
}

#[test]
fn engines_join_and_leave_mid_run() {
    for scheme in Scheme::ALL {
        for hwm in [1, 2, 0] {
            let mut scenario = Scenario::new(scheme, hwm, 150, 30_000);
            scenario.max_engine_id = 200;
            scenario.targeted = 0.2;
            scenario.jitter = true;
            scenario.seed = 99 + u64::from(hwm);
            let mut scenario = scenario.at_load(0.9);
            let horizon = (scenario.interarrival_us * scenario.tasks as f64) as u64;
            let mut rng = Rng(scenario.seed);
            let mut churn = Vec::new();
            for id in 150..200 {
                churn.push((rng.below(horizon), EngineId(id), true));
            }
            // 40 distinct engines leave, some soon after joining.
            let mut leaving: Vec<u32> = (0..200).collect();
            for i in 0..40 {
                let j = i + rng.below(200 - i as u64) as usize;
                leaving.swap(i, j);
                let id = leaving[i];
                let joined = churn.iter().find(|(_, e, _)| e.0 == id).map_or(0, |c| c.0);
                churn.push((joined + 1 + rng.below(horizon), EngineId(id), false));
            }
            scenario.churn = churn;
            let outcome = Sim::new(scenario).run();
            outcome.report(&format!("{scheme} hwm={hwm} with churn"));
            assert_eq!(outcome.finished + outcome.failed, 30_000);
            assert!(
                outcome.failed > 0,
                "{scheme}: leaving engines failed nothing"
            );
        }
    }
}
