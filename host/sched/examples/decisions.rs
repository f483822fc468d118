//! Scheduler decisions per second with 1,000 engines, the figure
//! `bench/src/schedsim.rs` reports, measured from this crate alone so that
//! it can be run without building the benchmark suite (which pulls
//! wasmtime):
//!
//! ```text
//! cargo run --release -p wasp-sched --example decisions [-- ENGINES TASKS TENANTS]
//! ```
//!
//! The same simulation as the benchmark: every task is submitted at time
//! zero (the scheduler dispatches as it goes, up to the high-water mark and
//! prefetch on each engine); then one running task at a time, drawn at
//! random, finishes, which frees its engine for the next queued task. A
//! decision is one `Action::Dispatch`; the figure is decisions over the time
//! of the whole run, submissions included. With more than one tenant, tasks
//! are dealt to the tenants in turn (weights 1, 2, 3, ...), so that the fair
//! share's choice of tenant is part of every decision.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use wasp_proto::{EngineId, TaskId};
use wasp_sched::{Action, Rng, SchedError, Scheduler, SchedulerConfig, TenantKey};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut next = |default: u64| {
        args.next()
            .and_then(|arg| arg.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let engines = next(1_000) as u32;
    let tasks = next(1_000_000);
    let tenants = next(1).max(1) as u32;
    match run(engines, tasks, tenants) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(engines: u32, tasks: u64, tenants: u32) -> Result<(), String> {
    let mut sched = Scheduler::new(SchedulerConfig {
        hwm: 1,
        seed: 7,
        ..SchedulerConfig::default()
    });
    for key in 0..tenants {
        sched
            .handle_tenant(Duration::ZERO, TenantKey(key), key + 1)
            .map_err(|err| err.to_string())?;
    }
    let mut rng = Rng::new(42);
    let mut running: Vec<TaskId> = Vec::with_capacity(engines as usize * 2);
    let mut decisions = 0u64;
    let mut clock = Duration::ZERO;
    let refused = |err: SchedError| err.to_string();
    for id in 0..engines {
        sched
            .handle_engine_joined(clock, EngineId(id))
            .map_err(refused)?;
    }
    let started = Instant::now();
    for id in 0..tasks {
        let tenant = TenantKey((id % u64::from(tenants)) as u32);
        sched
            .handle_submit(clock, TaskId(id), tenant, None)
            .map_err(refused)?;
        decisions += drain(&mut sched, clock, &mut running)?;
    }
    while !running.is_empty() {
        clock += Duration::from_micros(1);
        let done = running.swap_remove(rng.below(running.len()));
        sched.handle_finished(clock, done).map_err(refused)?;
        decisions += drain(&mut sched, clock, &mut running)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if decisions != tasks || sched.queued() != 0 || sched.running() != 0 {
        return Err(format!(
            "{decisions} decisions for {tasks} tasks, {} queued and {} running at the end",
            sched.queued(),
            sched.running()
        ));
    }
    println!(
        "{engines} engines, {tasks} tasks, {tenants} tenant(s): {decisions} decisions in {seconds:.3} s: {:.0} decisions/s",
        decisions as f64 / seconds
    );
    Ok(())
}

/// Takes the scheduler's pending actions: dispatched tasks join `running`;
/// returns how many there were.
fn drain(sched: &mut Scheduler, now: Duration, running: &mut Vec<TaskId>) -> Result<u64, String> {
    let mut dispatched = 0;
    while let Some(action) = sched.poll_action() {
        match action {
            Action::Dispatch { task, .. } | Action::Slice { task, .. } => {
                running.push(task);
                dispatched += 1;
            }
            // A simulated engine starts what it holds at once, so it never
            // has an unstarted task to hand back.
            Action::Retract { task, .. } => sched
                .handle_retracted(now, task, false)
                .map_err(|err| err.to_string())?,
            Action::Fail { task, reason } => return Err(format!("task {task} failed: {reason}")),
            Action::Lost { task, engine } => {
                return Err(format!("task {task} lost with engine {engine}"));
            }
        }
    }
    Ok(dispatched)
}
