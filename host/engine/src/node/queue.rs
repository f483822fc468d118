//! An engine's queue of work: what its connection's reader hands its
//! executor, in arrival order, and the task the executor runs, so that a
//! retract or an abort finds a task wherever it is without racing the
//! executor.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;
use wasp_proto::msg::{NamespaceOp, RunTask};
use wasp_proto::{TaskId, Tenant};

use crate::sandbox::AbortHandle;

/// Work for an engine's executor, in arrival order.
pub(super) enum Work {
    /// Run a task.
    Run(RunTask),
    /// Apply a namespace operation: the request's number, whose
    /// namespace, the tenant's quota, and the operation.
    Namespace(u64, Tenant, NamespaceOp, Option<u64>),
}

/// The work waiting for the executor, shared with the connection's reader
/// so that a task not yet started can be handed back to the controller
/// (work stealing) without racing the executor taking it.
#[derive(Default)]
pub(super) struct WorkQueue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Work>,
    closed: bool,
    /// The task the executor took last, until it ends: an abort finds it
    /// here (under the same lock as the queue, so no abort falls between
    /// the queue and the run).
    running: Option<RunningTask>,
}

/// The task being run, and how to stop it.
struct RunningTask {
    id: TaskId,
    /// Its instance's, once it has one.
    handle: Option<AbortHandle>,
    /// An abort came before the instance did.
    aborted: bool,
}

/// What an abort found.
pub(super) enum Aborted {
    /// The task was queued: here it is, never to run.
    Queued(Box<RunTask>),
    /// The task is running and will stop at the next epoch tick.
    Running,
    /// The task is not here (finished, or never came).
    Absent,
}

impl WorkQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // Nothing panics while holding it; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn push(&self, work: Work) {
        self.state().items.push_back(work);
        self.ready.notify_one();
    }

    /// No more work will come: `next` returns `None` once the queue is
    /// empty.
    pub(super) fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// Takes `task` out of the queue if the executor has not started it.
    pub(super) fn retract(&self, task: TaskId) -> Option<RunTask> {
        let mut state = self.state();
        let position = state
            .items
            .iter()
            .position(|work| matches!(work, Work::Run(run) if run.id == task))?;
        match state.items.remove(position) {
            Some(Work::Run(run)) => Some(run),
            _ => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.state().items.is_empty()
    }

    /// Stops `task`: takes it out of the queue, or interrupts it if it runs.
    pub(super) fn abort(&self, task: TaskId) -> Aborted {
        let mut state = self.state();
        if let Some(running) = state.running.as_mut().filter(|r| r.id == task) {
            running.aborted = true;
            if let Some(handle) = &running.handle {
                handle.abort();
            }
            return Aborted::Running;
        }
        let position = state
            .items
            .iter()
            .position(|work| matches!(work, Work::Run(run) if run.id == task));
        match position.and_then(|i| state.items.remove(i)) {
            Some(Work::Run(run)) => Aborted::Queued(Box::new(run)),
            _ => Aborted::Absent,
        }
    }

    /// The running task has an instance: an abort reaches it through
    /// `handle` (at once, if one came already).
    pub(super) fn attach(&self, handle: AbortHandle) {
        let mut state = self.state();
        if let Some(running) = state.running.as_mut() {
            if running.aborted {
                handle.abort();
            }
            running.handle = Some(handle);
        }
    }

    /// Whether the running task was asked to stop (before or after it got
    /// an instance).
    pub(super) fn running_aborted(&self) -> bool {
        self.state().running.as_ref().is_some_and(|r| r.aborted)
    }

    /// The running task ended.
    pub(super) fn finish_running(&self) {
        self.state().running = None;
    }

    /// The next work item, in arrival order.
    pub(super) async fn next(&self) -> Option<Work> {
        loop {
            // Registered before looking, so a push in between is not missed
            // (`notify_one` also leaves a permit when nobody waits).
            let notified = self.ready.notified();
            {
                let mut state = self.state();
                if let Some(work) = state.items.pop_front() {
                    state.running = match &work {
                        Work::Run(run) => Some(RunningTask {
                            id: run.id,
                            handle: None,
                            aborted: false,
                        }),
                        _ => None,
                    };
                    return Some(work);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}
