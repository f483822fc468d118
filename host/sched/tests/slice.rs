//! Time slicing between tenants (issue 12, `SchedulerConfig::time_slice`):
//! a tenant whose turn it is runs a task beside another tenant's on a full
//! engine instead of waiting for it to end. `tests/ops.rs` checks the rules
//! on random operation sequences; these are the cases by name.

use std::time::Duration;

use wasp_proto::{EngineId, TaskId};
use wasp_sched::{Action, Cancelled, Scheduler, SchedulerConfig, TenantKey};

const A: TenantKey = TenantKey(0);
const B: TenantKey = TenantKey(1);
const T0: Duration = Duration::ZERO;

/// `engines` engines, `hwm = 1`, no prefetch, slicing on or off.
fn cluster(engines: u32, time_slice: bool) -> Scheduler {
    let mut sched = Scheduler::new(SchedulerConfig {
        prefetch: Duration::ZERO,
        time_slice,
        ..SchedulerConfig::default()
    });
    for id in 0..engines {
        sched
            .handle_engine_joined(T0, EngineId(id))
            .expect("fresh engine");
    }
    sched
}

fn submit(sched: &mut Scheduler, task: u64, tenant: TenantKey) -> Vec<Action> {
    sched
        .handle_submit(T0, TaskId(task), tenant, None)
        .expect("fresh task");
    std::iter::from_fn(|| sched.poll_action()).collect()
}

fn finish(sched: &mut Scheduler, task: u64) -> Vec<Action> {
    sched
        .handle_finished_after(T0, TaskId(task), Duration::from_millis(1))
        .expect("running task");
    std::iter::from_fn(|| sched.poll_action()).collect()
}

fn dispatch(task: u64, engine: u32) -> Action {
    Action::Dispatch {
        task: TaskId(task),
        engine: EngineId(engine),
    }
}

fn slice(task: u64, engine: u32) -> Action {
    Action::Slice {
        task: TaskId(task),
        engine: EngineId(engine),
    }
}

/// Tenant A's backlog of ten holds both engines.
fn flooded(time_slice: bool) -> Scheduler {
    let mut sched = cluster(2, time_slice);
    let mut sent = Vec::new();
    for task in 0..10 {
        sent.extend(submit(&mut sched, task, A));
    }
    assert_eq!(sent, [dispatch(0, 0), dispatch(1, 1)]);
    sched
}

#[test]
fn a_tenant_slices_in_beside_another_tenants_backlog() {
    let mut sched = flooded(true);
    // B's tasks go at once, one beside each engine's A task, the engines'
    // loads unchanged.
    assert_eq!(submit(&mut sched, 100, B), [slice(100, 0)]);
    assert_eq!(submit(&mut sched, 101, B), [slice(101, 1)]);
    assert_eq!(sched.outstanding(EngineId(0)), Some(1));
    assert_eq!(sched.engine_of(TaskId(101)), Some(EngineId(1)));
    // One slice per engine: the third waits for one to end.
    assert_eq!(submit(&mut sched, 102, B), []);
    assert_eq!(finish(&mut sched, 100), [slice(102, 0)]);
    // A's own backlog never slices in beside A.
    assert_eq!(finish(&mut sched, 102), []);
    assert_eq!(finish(&mut sched, 101), []);
    // A's task ends: the room goes to A's next, and so on as before.
    assert_eq!(finish(&mut sched, 0), [dispatch(2, 0)]);
    assert_eq!(sched.running(), 2);
    assert_eq!(sched.queued(), 7);
}

#[test]
fn without_time_slicing_a_tenant_waits_for_a_room() {
    let mut sched = flooded(false);
    assert_eq!(submit(&mut sched, 100, B), []);
    // B arrived last but is behind A in the fair share: it takes the
    // first room.
    assert_eq!(finish(&mut sched, 0), [dispatch(100, 0)]);
}

#[test]
fn a_lone_tenant_is_never_sliced() {
    let mut sched = cluster(2, true);
    let mut sent = Vec::new();
    for task in 0..50 {
        sent.extend(submit(&mut sched, task, A));
    }
    for task in 0..48 {
        sent.extend(finish(&mut sched, task));
    }
    assert!(
        sent.iter().all(|a| matches!(a, Action::Dispatch { .. })),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 50);
}

#[test]
fn the_sliced_in_tenant_yields_its_engine_to_the_owner_the_same_way() {
    // B owns engine 0 (its task came first), A engine 1: each slices in
    // beside the other.
    let mut sched = cluster(2, true);
    assert_eq!(submit(&mut sched, 100, B), [dispatch(100, 0)]);
    assert_eq!(submit(&mut sched, 0, A), [dispatch(0, 1)]);
    assert_eq!(submit(&mut sched, 1, A), [slice(1, 0)]);
    assert_eq!(submit(&mut sched, 101, B), [slice(101, 1)]);
    assert_eq!(submit(&mut sched, 2, A), []);
    assert_eq!(submit(&mut sched, 102, B), []);
}

#[test]
fn an_engine_that_leaves_loses_its_sliced_task_after_its_own() {
    let mut sched = flooded(true);
    assert_eq!(submit(&mut sched, 100, B), [slice(100, 0)]);
    sched
        .handle_engine_left(T0, EngineId(0))
        .expect("known engine");
    let lost: Vec<Action> = std::iter::from_fn(|| sched.poll_action()).collect();
    assert_eq!(
        lost,
        [
            Action::Lost {
                task: TaskId(0),
                engine: EngineId(0)
            },
            Action::Lost {
                task: TaskId(100),
                engine: EngineId(0)
            },
        ]
    );
    assert_eq!(sched.engine_of(TaskId(100)), None);
    // B's next task slices in beside engine 1's A task.
    assert_eq!(submit(&mut sched, 101, B), [slice(101, 1)]);
}

#[test]
fn a_sliced_task_is_cancelled_on_its_engine_like_any_running_one() {
    let mut sched = flooded(true);
    assert_eq!(submit(&mut sched, 100, B), [slice(100, 0)]);
    assert_eq!(
        sched.handle_cancel(T0, TaskId(100)),
        Ok(Cancelled::Running(EngineId(0)))
    );
    let stats = sched.tenant_stats(B).expect("B has a task");
    assert_eq!((stats.queued, stats.running), (0, 1));
}

#[test]
fn a_tenant_at_its_running_quota_is_not_sliced_in() {
    let mut sched = flooded(true);
    sched.handle_tenant_max_running(T0, B, Some(1));
    assert_eq!(submit(&mut sched, 100, B), [slice(100, 0)]);
    assert_eq!(submit(&mut sched, 101, B), []);
    assert_eq!(finish(&mut sched, 100), [slice(101, 0)]);
}
