//! The task table: every accepted task until its final state, with what
//! it takes to run it again (its argument bytes, shared with the engine
//! that holds them), how often its engines died under it, and its retries.

use std::collections::HashMap;
use std::sync::Arc;

use wasp_proto::msg::{
    ErrorKind, Items, RetryPolicy, TaskError, TaskLimits, TaskMeta, TaskResult, TaskSpec,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant};

use crate::records::StoredTask;

/// One unfinished task.
pub(crate) struct TaskEntry {
    pub(crate) tenant: Arc<Tenant>,
    pub(crate) module: ModuleHash,
    /// Shared by the tasks of one submission that call the same function.
    pub(crate) func: Arc<str>,
    /// Kept until the task ends: a task whose engine dies runs again.
    pub(crate) items: Items,
    /// The limits of its next run (a retry with escalation raises them).
    pub(crate) limits: TaskLimits,
    pub(crate) retry: RetryPolicy,
    /// The engines it may run on, as submitted.
    pub(crate) targets: Option<Vec<EngineId>>,
    pub(crate) submitted_us: u64,
    /// The engine it was sent to, while it is there.
    pub(crate) engine: Option<EngineId>,
    /// Sessions its result goes to: its submitter's, and those of clients
    /// that asked for it (`get_result`). Clients that left are skipped.
    pub(crate) deliver_to: Vec<u32>,
    /// How many engines died while holding it.
    pub(crate) deaths: u32,
    /// How many times it failed and was run again.
    pub(crate) retries_used: u32,
    /// A client aborted it while it ran: it ends aborted, not retried.
    pub(crate) aborting: bool,
}

impl TaskEntry {
    /// A task a client submitted.
    pub(crate) fn submitted(
        tenant: Arc<Tenant>,
        func: Arc<str>,
        spec: TaskSpec,
        submitted_us: u64,
        session: u32,
    ) -> Box<Self> {
        Box::new(Self {
            tenant,
            module: spec.module,
            func,
            items: spec.items,
            limits: spec.limits,
            retry: spec.retry,
            targets: spec.targets,
            submitted_us,
            engine: None,
            deliver_to: vec![session],
            deaths: 0,
            retries_used: 0,
            aborting: false,
        })
    }

    /// A task of an earlier run, read back from the records.
    pub(crate) fn restored(task: StoredTask) -> Box<Self> {
        Box::new(Self {
            tenant: Arc::new(task.tenant),
            module: task.module,
            func: Arc::from(task.func),
            items: task.items,
            limits: task.limits,
            retry: task.retry,
            targets: task.targets,
            submitted_us: task.submitted_us,
            engine: None,
            deliver_to: Vec::new(),
            deaths: 0,
            retries_used: 0,
            aborting: false,
        })
    }

    /// What the records keep of it: enough to run it again.
    pub(crate) fn stored(&self, id: TaskId) -> StoredTask {
        StoredTask {
            id,
            tenant: Tenant::clone(&self.tenant),
            module: self.module,
            func: self.func.to_string(),
            items: self.items.clone(),
            limits: self.limits,
            retry: self.retry,
            targets: self.targets.clone(),
            submitted_us: self.submitted_us,
        }
    }

    /// The limits to retry with after `err`, or `None` if the failure is
    /// final: no retries left, or a failure a retry cannot change (the
    /// task was aborted; its module, function or arguments are wrong).
    /// With escalation, the limit it exceeded doubles from what it ran
    /// under (`meta.limits`); the engine caps it at its ceiling.
    pub(crate) fn retry_after(&mut self, err: &TaskError, meta: &TaskMeta) -> Option<TaskLimits> {
        if self.aborting || self.retries_used >= self.retry.retries {
            return None;
        }
        if matches!(
            err.kind,
            ErrorKind::Aborted | ErrorKind::Module | ErrorKind::Call | ErrorKind::Unschedulable
        ) {
            return None;
        }
        self.retries_used += 1;
        let mut limits = self.limits;
        if self.retry.escalate {
            match err.kind {
                ErrorKind::Timeout => {
                    limits.timeout_us = meta
                        .limits
                        .timeout_us
                        .or(limits.timeout_us)
                        .map(|us| us.saturating_mul(2));
                }
                ErrorKind::Memory => {
                    limits.memory_bytes = meta
                        .limits
                        .memory_bytes
                        .or(limits.memory_bytes)
                        .map(|bytes| bytes.saturating_mul(2));
                }
                _ => {}
            }
        }
        Some(limits)
    }
}

/// How a task ended.
pub(crate) enum Ending {
    /// Its engine's result (success or failure).
    Result(TaskResult),
    /// The controller ended it.
    Failed {
        kind: ErrorKind,
        message: String,
        engine: Option<EngineId>,
    },
}

impl Ending {
    pub(crate) fn failed(kind: ErrorKind, message: String, engine: Option<EngineId>) -> Self {
        Ending::Failed {
            kind,
            message,
            engine,
        }
    }

    pub(crate) fn aborted(engine: Option<EngineId>) -> Self {
        Ending::failed(
            ErrorKind::Aborted,
            "the task was aborted by a client".into(),
            engine,
        )
    }

    /// The result a client receives, with the controller's part of the
    /// metadata filled in.
    pub(crate) fn into_result(self, id: TaskId, task: &TaskEntry) -> TaskResult {
        let mut result = match self {
            Ending::Result(result) => result,
            Ending::Failed {
                kind,
                message,
                engine,
            } => TaskResult {
                id,
                outcome: Err(TaskError {
                    kind,
                    message,
                    item: None,
                }),
                meta: TaskMeta {
                    engine,
                    limits: task.limits,
                    ..TaskMeta::default()
                },
            },
        };
        result.meta.submitted_us = task.submitted_us;
        result.meta.attempts = task.deaths + task.retries_used;
        result
    }
}

/// Every unfinished task by id.
#[derive(Default)]
pub(crate) struct Tasks {
    /// Boxed: the table's slots are then 16 bytes, and a table grown for a
    /// million queued tasks does not hold twice their size in empty slots.
    by_id: HashMap<TaskId, Box<TaskEntry>>,
}

impl Tasks {
    pub(crate) fn contains(&self, id: TaskId) -> bool {
        self.by_id.contains_key(&id)
    }

    pub(crate) fn insert(&mut self, id: TaskId, entry: Box<TaskEntry>) {
        self.by_id.insert(id, entry);
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<&TaskEntry> {
        self.by_id.get(&id).map(|b| &**b)
    }

    pub(crate) fn get_mut(&mut self, id: TaskId) -> Option<&mut TaskEntry> {
        self.by_id.get_mut(&id).map(|b| &mut **b)
    }

    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Box<TaskEntry>> {
        self.by_id.remove(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The ids of `tenant`'s unfinished tasks (a scan: for the rare
    /// removal of a tenant).
    pub(crate) fn of_tenant(&self, tenant: &Tenant) -> Vec<TaskId> {
        self.by_id
            .iter()
            .filter(|(_, t)| *t.tenant == *tenant)
            .map(|(id, _)| *id)
            .collect()
    }
}
