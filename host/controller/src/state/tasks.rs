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
    /// Shared by the tasks of one submission that call the same module
    /// (8 bytes a task, not 32).
    pub(crate) module: Arc<ModuleHash>,
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
    pub(crate) deliver_to: Sessions,
    /// How many engines died while holding it.
    pub(crate) deaths: u32,
    /// How many times it failed and was run again.
    pub(crate) retries_used: u32,
    /// A client aborted it while it ran: it ends aborted, not retried.
    pub(crate) aborting: bool,
}

impl TaskEntry {
    /// A task a client submitted.
    /// `module` and `func` are `spec.module` and `spec.func`, shared.
    pub(crate) fn submitted(
        tenant: Arc<Tenant>,
        (module, func): (Arc<ModuleHash>, Arc<str>),
        spec: TaskSpec,
        submitted_us: u64,
        session: u32,
    ) -> Box<Self> {
        Box::new(Self {
            tenant,
            module,
            func,
            items: spec.items,
            limits: spec.limits,
            retry: spec.retry,
            targets: spec.targets,
            submitted_us,
            engine: None,
            deliver_to: Sessions::of(session),
            deaths: 0,
            retries_used: 0,
            aborting: false,
        })
    }

    /// A task of an earlier run, read back from the records.
    pub(crate) fn restored(task: StoredTask) -> Box<Self> {
        Box::new(Self {
            tenant: Arc::new(task.tenant),
            module: Arc::new(task.module),
            func: Arc::from(task.func),
            items: task.items,
            limits: task.limits,
            retry: task.retry,
            targets: task.targets,
            submitted_us: task.submitted_us,
            engine: None,
            deliver_to: Sessions::default(),
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
            module: *self.module,
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

/// The client sessions a task's result goes to, without duplicates. Almost
/// always one, its submitter's, held inline: a `Vec` of one would be an
/// allocation per queued task (4 bytes, 32 in glibc's smallest chunk, so
/// 32 MB of a million queued tasks). The rare others are a boxed slice
/// (no allocation while empty), so that this takes 24 bytes of every
/// `TaskEntry`, not 32.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    first: Option<u32>,
    /// Clients that asked for the result too (`get_result`): at most one
    /// per connected client.
    more: Box<[u32]>,
}

impl Sessions {
    /// The submitter's session alone.
    pub(crate) fn of(session: u32) -> Self {
        Self {
            first: Some(session),
            more: Box::default(),
        }
    }

    /// Adds `session`, unless it is there already.
    pub(crate) fn add(&mut self, session: u32) {
        match self.first {
            None => self.first = Some(session),
            Some(first) if first == session => {}
            Some(_) if self.more.contains(&session) => {}
            Some(_) => {
                let mut more = std::mem::take(&mut self.more).into_vec();
                more.push(session);
                self.more = more.into_boxed_slice();
            }
        }
    }

    /// Every session, first the submitter's.
    pub(crate) fn into_vec(self) -> Vec<u32> {
        self.first.into_iter().chain(self.more).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_keep_the_submitter_first_and_no_duplicates() {
        let mut sessions = Sessions::of(7);
        sessions.add(7);
        sessions.add(3);
        sessions.add(3);
        sessions.add(9);
        assert_eq!(sessions.into_vec(), vec![7, 3, 9]);
        let mut restored = Sessions::default();
        restored.add(4);
        assert_eq!(restored.into_vec(), vec![4]);
        assert!(Sessions::default().into_vec().is_empty());
    }

    #[test]
    fn a_queued_task_is_one_allocation_of_at_most_200_bytes() {
        // The controller holds a million queued tasks in under 500 MB
        // (bench/, `queued`): each byte here is a megabyte there.
        assert!(
            std::mem::size_of::<TaskEntry>() <= 200,
            "TaskEntry is {} bytes",
            std::mem::size_of::<TaskEntry>()
        );
    }
}
