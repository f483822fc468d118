//! Scheduler decisions per second: `wasp_sched::Scheduler` alone, no
//! network, driven by a simulated cluster of many engines.
//!
//! Every task is submitted at time zero (the scheduler dispatches as it
//! goes, up to the high-water mark on each engine); then one running task
//! at a time, drawn at random, finishes, which frees its engine for the
//! next queued task. A decision is one `Action::Dispatch`; the figure is
//! decisions over the time of the whole run, submissions included, as the
//! scheduler's own simulation test (`host/sched/tests/sim.rs`) counts it.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value as Json, json};
use wasp_proto::{EngineId, TaskId};
use wasp_sched::{Action, Scheduler, SchedulerConfig, Scheme, TenantKey};

/// SplitMix64: which running task finishes next, seeded so that every run
/// makes the same decisions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((u128::from(z) * n as u128) >> 64) as usize
    }
}

/// Runs `tasks` tasks through a scheduler with `engines` engines (`scheme`,
/// `hwm` 1) and returns the decisions, the seconds and their ratio.
pub fn decisions_per_second(scheme: Scheme, engines: u32, tasks: u64) -> anyhow::Result<Json> {
    let mut sched = Scheduler::new(SchedulerConfig {
        scheme,
        hwm: 1,
        seed: 7,
        // Whatever else the scheduler grows keeps its default.
        ..SchedulerConfig::default()
    });
    let mut rng = Rng(42);
    let mut running: Vec<TaskId> = Vec::with_capacity(engines as usize);
    let mut decisions = 0u64;

    let mut clock = Duration::ZERO;
    for id in 0..engines {
        sched.handle_engine_joined(clock, EngineId(id))?;
    }
    let started = Instant::now();
    for id in 0..tasks {
        // One tenant: the figure is the scheduler's speed, the fair share
        // included (its choice among one tenant costs the same lookups).
        sched.handle_submit(clock, TaskId(id), TenantKey(0), None)?;
        decisions += drain(&mut sched, clock, &mut running)?;
    }
    while !running.is_empty() {
        clock += Duration::from_micros(1);
        let done = running.swap_remove(rng.below(running.len()));
        sched.handle_finished(clock, done)?;
        decisions += drain(&mut sched, clock, &mut running)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if decisions != tasks || sched.queued() != 0 || sched.running() != 0 {
        bail!(
            "the simulation ended after {decisions} decisions for {tasks} tasks, \
             with {} queued and {} running",
            sched.queued(),
            sched.running()
        );
    }
    Ok(json!({
        "scheme": scheme.name(),
        "engines": engines,
        "tasks": tasks,
        "seconds": seconds,
        "decisions_per_s": decisions as f64 / seconds,
    }))
}

/// Takes the scheduler's pending actions: the tasks dispatched join
/// `running`; returns how many there were.
fn drain(sched: &mut Scheduler, now: Duration, running: &mut Vec<TaskId>) -> anyhow::Result<u64> {
    let mut dispatched = 0;
    while let Some(action) = sched.poll_action() {
        match action {
            Action::Dispatch { task, .. } | Action::Slice { task, .. } => {
                running.push(task);
                dispatched += 1;
            }
            // A simulated engine starts what it holds at once, so it never
            // has an unstarted task to hand back.
            Action::Retract { task, .. } => sched.handle_retracted(now, task, false)?,
            Action::Fail { task, reason } => bail!("task {task} failed: {reason}"),
            Action::Lost { task, engine } => bail!("task {task} lost with engine {engine}"),
        }
    }
    Ok(dispatched)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task is dispatched exactly once, whatever the scheme.
    #[test]
    fn every_task_is_decided_once() {
        for scheme in Scheme::ALL {
            let run = decisions_per_second(scheme, 10, 5_000).expect("the simulation runs");
            assert_eq!(run["tasks"], 5_000, "{scheme:?}");
            assert!(run["decisions_per_s"].as_f64().is_some_and(|r| r > 0.0));
        }
    }
}
