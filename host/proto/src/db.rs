//! The task database's requests and answers, by ipyparallel's names
//! (`get_result`, `result_status`, `abort`, `resubmit`, `db_query`,
//! `purge_results`). Every request is scoped to the asking client's
//! tenant: another tenant's task ids are "not found", never "forbidden",
//! so ids reveal nothing across tenants.

use serde::{Deserialize, Serialize};

use crate::hash::ModuleHash;
use crate::ids::{EngineId, TaskId};
use crate::msg::{RetryPolicy, TaskResult};

/// Most task ids one database request may name, and most records one query
/// returns: a request and its answer each fit in a frame.
pub const MAX_IDS: usize = 100_000;

/// A request to the task database ([`crate::msg::Request::Db`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DbRequest {
    /// The results of these tasks (`Client.get_result`). Answered by
    /// [`DbAnswer::Results`]: finished tasks' results at once; an unfinished
    /// task's result comes later, unasked, in a
    /// [`crate::msg::ToClient::Results`] batch, as a submitted task's does.
    GetResults(Vec<TaskId>),
    /// Where these tasks are (`Client.result_status`). Answered by
    /// [`DbAnswer::Statuses`].
    Status(Vec<TaskId>),
    /// Stop these tasks (`Client.abort`): a queued task is removed, a
    /// running one interrupted. Each ends failed with
    /// [`crate::msg::ErrorKind::Aborted`] (its result goes to whoever
    /// waits for it); a finished task is left as it is. Answered by
    /// [`DbAnswer::Statuses`], each task's status after the abort.
    Abort(Vec<TaskId>),
    /// Run these finished tasks again, as new tasks with new ids
    /// (`Client.resubmit`), whose results go to the asking client. Answered
    /// by [`DbAnswer::Resubmitted`].
    Resubmit {
        /// The tasks to run again.
        ids: Vec<TaskId>,
        /// The new tasks' retry policy.
        retry: RetryPolicy,
    },
    /// Records matching a filter (`Client.db_query`). Answered by
    /// [`DbAnswer::Records`].
    Query(Query),
    /// Forget finished tasks (`Client.purge_results`): these, or with an
    /// empty list every finished task of the tenant. Unfinished tasks are
    /// never purged. Answered by [`DbAnswer::Purged`].
    Purge(Vec<TaskId>),
}

/// A task's place in its life, as the database knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Accepted, waiting for an engine.
    Queued,
    /// Sent to an engine.
    Running,
    /// Finished with results.
    Succeeded,
    /// Finished with an error (aborted included).
    Failed,
}

impl Status {
    /// Every status, in life order.
    pub const ALL: [Status; 4] = [
        Status::Queued,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
    ];

    /// The status's name, as the CLI and the records table write it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }

    /// The status of a name; `None` names every valid one.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the task has reached its final state.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed)
    }
}

/// One task's status, or that the tenant has no such task.
pub type Lookup = Option<Status>;

/// A `db_query` filter; every field left empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Tasks in one of these statuses (empty: any).
    pub status: Vec<Status>,
    /// Tasks of this module.
    pub module: Option<ModuleHash>,
    /// Tasks calling this function (as submitted).
    pub func: Option<String>,
    /// Tasks that ran on this engine.
    pub engine: Option<EngineId>,
    /// Submitted at or after (microseconds since the Unix epoch).
    pub submitted_after_us: Option<u64>,
    /// Submitted before.
    pub submitted_before_us: Option<u64>,
    /// Completed at or after.
    pub completed_after_us: Option<u64>,
    /// Completed before.
    pub completed_before_us: Option<u64>,
    /// Which fields of each record to fill (empty: all but the result and
    /// the output, which can be large); see [`TaskRecord::KEYS`].
    pub keys: Vec<String>,
    /// Most records to return, oldest first (capped at [`MAX_IDS`]).
    pub limit: Option<u32>,
}

/// One task's record, as `db_query` returns it: the fields not asked for
/// are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's id (always filled).
    pub id: TaskId,
    /// Its status.
    pub status: Option<Status>,
    /// Its module.
    pub module: Option<ModuleHash>,
    /// Its function.
    pub func: Option<String>,
    /// How many items it holds.
    pub items: Option<u32>,
    /// The engine that ran it (last, if it ran more than once).
    pub engine: Option<EngineId>,
    /// When the controller accepted it.
    pub submitted_us: Option<u64>,
    /// When it started on its engine.
    pub started_us: Option<u64>,
    /// When it finished.
    pub completed_us: Option<u64>,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// Its results, as JSON text (one value per item).
    pub result: Option<String>,
    /// Its captured stdout.
    pub stdout: Option<String>,
    /// Its captured stderr.
    pub stderr: Option<String>,
}

impl TaskRecord {
    /// The keys a [`Query`] may ask for.
    pub const KEYS: [&'static str; 12] = [
        "status",
        "module",
        "func",
        "items",
        "engine",
        "submitted",
        "started",
        "completed",
        "error",
        "result",
        "stdout",
        "stderr",
    ];

    /// The keys filled when a query names none: all but the task's
    /// output (result, stdout, stderr), which can be large.
    pub const DEFAULT_KEYS: &'static [&'static str] = Self::KEYS.split_at(9).0;
}

/// The task database's answer ([`crate::msg::Answer::Db`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DbAnswer {
    /// One entry per id asked for, in order: the result of a finished task,
    /// or its status while it is unfinished (the result follows when it
    /// finishes), or `None` when the tenant has no such task.
    Results(Vec<ResultLookup>),
    /// One status per id asked for, in order (`None`: not found).
    Statuses(Vec<Lookup>),
    /// The new ids, one per id asked for, in order (`None`: not found, or
    /// not finished yet).
    Resubmitted(Vec<Option<TaskId>>),
    /// The records a query matched, oldest first.
    Records(Vec<TaskRecord>),
    /// How many records were purged.
    Purged(u64),
}

/// What `get_result` found for one id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ResultLookup {
    /// The task finished: its result.
    Finished(Box<TaskResult>),
    /// The task is queued or running; its result is on its way.
    Pending(Status),
    /// The tenant has no such task (or it was purged or culled).
    NotFound,
}
