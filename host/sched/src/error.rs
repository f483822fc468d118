//! Inputs the scheduler refused.
//!
//! Every one of them leaves the scheduler as it was. The controller sees
//! them in ordinary races (a result arriving from an engine that was just
//! declared dead, a reconnect announced twice) as well as from a confused
//! peer, so it logs them and carries on; the scheduler never panics on them.

use std::fmt;

use wasp_proto::{EngineId, TaskId};

use crate::fair::TenantKey;

/// An input that named a task or engine in the wrong state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// A submission reused the id of a task that is still queued or running.
    DuplicateTask(TaskId),
    /// A finish named a task that is not running: never submitted, still
    /// queued, already finished, or failed when its engine left.
    UnknownTask(TaskId),
    /// An engine joined twice without leaving in between.
    DuplicateEngine(EngineId),
    /// A leave named an engine that is not connected.
    UnknownEngine(EngineId),
    /// A tenant's weight was set to 0, which would never be chosen.
    ZeroWeight(TenantKey),
    /// A submission found `u32::MAX - 1` tasks already queued or running,
    /// the most the scheduler's slots can number.
    TooManyTasks(TaskId),
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedError::DuplicateTask(task) => {
                write!(f, "task {task} is already queued or running")
            }
            SchedError::UnknownTask(task) => write!(f, "task {task} is not running"),
            SchedError::DuplicateEngine(engine) => write!(f, "engine {engine} has already joined"),
            SchedError::UnknownEngine(engine) => write!(f, "engine {engine} is not connected"),
            SchedError::ZeroWeight(tenant) => {
                write!(f, "tenant {tenant} cannot weigh 0: it would never run")
            }
            SchedError::TooManyTasks(task) => {
                write!(
                    f,
                    "task {task} refused: the scheduler holds the most tasks it can"
                )
            }
        }
    }
}

impl std::error::Error for SchedError {}
