//! The task database's requests (`get_result`, `result_status`, `abort`,
//! `resubmit`, `db_query`, `purge_results`), answered from the task table
//! for unfinished tasks and from a read of the records for finished ones.
//!
//! A read is ordered after every record emitted before it, so a task that
//! left the table (it finished) is in the records by the time they are
//! read. Every request is scoped to the client's tenant: another tenant's
//! task is "not found", as an id that never existed is.

use std::collections::HashMap;
use std::sync::Arc;

use wasp_proto::db::{DbAnswer, DbRequest, Lookup, MAX_IDS, Query, ResultLookup, Status};
use wasp_proto::msg::{Answer, RetryPolicy};
use wasp_proto::{TaskId, Tenant};
use wasp_sched::Cancelled;

use super::tasks::{Ending, TaskEntry};
use super::view::TaskView;
use super::{HubState, Output};
use crate::records::{Found, Read, ReadReply, Want};

/// What to do with a read's reply.
pub(crate) enum Then {
    /// Fill the `None` slots, in order, with the results read.
    Results {
        session: u32,
        id: u64,
        answers: Vec<Option<ResultLookup>>,
    },
    /// Fill the `None` slots, in order, with the statuses read.
    Statuses {
        session: u32,
        id: u64,
        answers: Vec<Option<Lookup>>,
    },
    /// Run the tasks read again; fill the `None` slots with the new ids.
    Resubmit {
        session: u32,
        id: u64,
        answers: Vec<Option<Option<TaskId>>>,
        retry: RetryPolicy,
    },
    /// Answer with the records read, their live statuses filled in.
    Query { session: u32, id: u64, query: Query },
    /// Answer with the count purged.
    Purge { session: u32, id: u64 },
    /// Answer with the tenants, their recorded usage filled in.
    TenantList { session: u32, id: u64 },
    /// Answer the dashboard's request `request` with the task read.
    DashboardTask { request: u64 },
}

/// Requests waiting for their reads, by ticket.
#[derive(Default)]
pub(crate) struct PendingReads {
    waiting: HashMap<u64, Then>,
    next_ticket: u64,
}

impl PendingReads {
    pub(crate) fn start(&mut self, then: Then) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.waiting.insert(ticket, then);
        ticket
    }
}

/// A live task's status, if `tenant` owns it.
fn live_status(state: &HubState, id: TaskId, tenant: &Tenant) -> Option<Status> {
    let task = state.tasks.get(id)?;
    (*task.tenant == *tenant).then(|| status_of(task))
}

/// An unfinished task's status: running once sent to an engine.
fn status_of(task: &TaskEntry) -> Status {
    if task.engine.is_some() {
        Status::Running
    } else {
        Status::Queued
    }
}

/// Whether `id` is a live task of another tenant (answered "not found"
/// without a read).
fn foreign(state: &HubState, id: TaskId, tenant: &Tenant) -> bool {
    state.tasks.get(id).is_some_and(|t| *t.tenant != *tenant)
}

pub(super) fn request(
    state: &mut HubState,
    session: u32,
    id: u64,
    tenant: Arc<Tenant>,
    request: DbRequest,
) {
    let too_many = match &request {
        DbRequest::GetResults(ids)
        | DbRequest::Status(ids)
        | DbRequest::Abort(ids)
        | DbRequest::Purge(ids)
        | DbRequest::Resubmit { ids, .. } => ids.len() > MAX_IDS,
        DbRequest::Query(_) => false,
    };
    if too_many {
        let refusal = format!("a task database request may name at most {MAX_IDS} task ids");
        state.answer(session, id, Answer::Error(refusal));
        return;
    }
    let tenant = Tenant::clone(&tenant);
    match request {
        DbRequest::GetResults(ids) => {
            let mut answers = Vec::with_capacity(ids.len());
            let mut missing = Vec::new();
            for &task in &ids {
                if let Some(status) = live_status(state, task, &tenant) {
                    if let Some(entry) = state.tasks.get_mut(task) {
                        entry.deliver_to.add(session);
                    }
                    answers.push(Some(ResultLookup::Pending(status)));
                } else if foreign(state, task, &tenant) {
                    answers.push(Some(ResultLookup::NotFound));
                } else {
                    answers.push(None);
                    missing.push(task);
                }
            }
            let then = Then::Results {
                session,
                id,
                answers,
            };
            read_or_answer(state, tenant, missing, Want::Result, then);
        }
        DbRequest::Status(ids) => answer_statuses(state, session, id, tenant, &ids),
        DbRequest::Abort(ids) => {
            for &task in &ids {
                if live_status(state, task, &tenant).is_some() {
                    abort(state, task);
                }
            }
            answer_statuses(state, session, id, tenant, &ids);
        }
        DbRequest::Resubmit { ids, retry } => {
            // An unfinished task cannot be resubmitted (ipyparallel refuses
            // it too): it would run twice at once.
            let answers: Vec<Option<Option<TaskId>>> = ids
                .iter()
                .map(|&task| state.tasks.contains(task).then_some(None))
                .collect();
            let missing = missing_of(&ids, &answers);
            let then = Then::Resubmit {
                session,
                id,
                answers,
                retry,
            };
            read_or_answer(state, tenant, missing, Want::Spec, then);
        }
        DbRequest::Query(query) => {
            let read = Read::Query {
                tenant,
                query: query.clone(),
            };
            state.read(read, Then::Query { session, id, query });
        }
        DbRequest::Purge(ids) => {
            // Unfinished tasks are never purged: their results are owed.
            let ids = ids
                .into_iter()
                .filter(|&task| !state.tasks.contains(task))
                .collect();
            let read = Read::Purge { tenant, ids };
            state.read(read, Then::Purge { session, id });
        }
    }
}

/// Each id's live status, or `Some(None)` for another tenant's task, or
/// `None` where the records must say.
fn statuses(state: &HubState, ids: &[TaskId], tenant: &Tenant) -> Vec<Option<Lookup>> {
    ids.iter()
        .map(|&task| match live_status(state, task, tenant) {
            Some(status) => Some(Some(status)),
            None if foreign(state, task, tenant) => Some(None),
            None => None,
        })
        .collect()
}

/// Answers with each id's status: the live ones at once, the rest once
/// the records have been read.
fn answer_statuses(state: &mut HubState, session: u32, id: u64, tenant: Tenant, ids: &[TaskId]) {
    let answers = statuses(state, ids, &tenant);
    let missing = missing_of(ids, &answers);
    let then = Then::Statuses {
        session,
        id,
        answers,
    };
    read_or_answer(state, tenant, missing, Want::Status, then);
}

/// The ids whose answer slot is empty.
fn missing_of<T>(ids: &[TaskId], answers: &[Option<T>]) -> Vec<TaskId> {
    ids.iter()
        .zip(answers)
        .filter(|(_, a)| a.is_none())
        .map(|(id, _)| *id)
        .collect()
}

/// Reads the missing ids' records, or answers at once when none is
/// missing.
fn read_or_answer(state: &mut HubState, tenant: Tenant, ids: Vec<TaskId>, want: Want, then: Then) {
    if ids.is_empty() {
        finish(state, then, Vec::new());
    } else {
        state.read(Read::Lookup { tenant, ids, want }, then);
    }
}

/// Aborts a live task: a queued one ends now; a running one is asked to
/// stop and ends when its engine answers (or dies).
pub(super) fn abort(state: &mut HubState, task: TaskId) {
    let now = state.now;
    match state.sched.handle_cancel(now, task) {
        Ok(Cancelled::Dequeued) => state.end(task, Ending::aborted(None)),
        Ok(Cancelled::Running(engine)) => {
            if let Some(entry) = state.tasks.get_mut(task) {
                entry.aborting = true;
            }
            state.outputs.push_back(Output::Engine {
                engine,
                msg: wasp_proto::msg::ToEngine::Abort(task),
            });
        }
        Err(err) => {
            tracing::warn!(task = %task, cause = %err, "abort of a task the scheduler does not hold")
        }
    }
}

pub(super) fn read_done(state: &mut HubState, ticket: u64, reply: ReadReply) {
    let Some(then) = state.reads.waiting.remove(&ticket) else {
        return;
    };
    match reply {
        ReadReply::Lookup(found) => finish(state, then, found),
        ReadReply::Records(mut records) => {
            if let Then::Query { session, id, query } = then {
                // The records say "queued" for every unfinished task; the
                // table knows which run.
                for record in &mut records {
                    if record.status == Some(Status::Queued)
                        && state
                            .tasks
                            .get(record.id)
                            .is_some_and(|t| t.engine.is_some())
                    {
                        record.status = Some(Status::Running);
                    }
                }
                if !query.status.is_empty() {
                    records.retain(|r| r.status.is_some_and(|s| query.status.contains(&s)));
                }
                state.db_answer(session, id, DbAnswer::Records(records));
            }
        }
        ReadReply::Purged(count) => {
            if let Then::Purge { session, id } = then {
                state.db_answer(session, id, DbAnswer::Purged(count));
            }
        }
        ReadReply::Usage(usage) => {
            if let Then::TenantList { session, id } = then {
                let list = state.tenant_list(&usage);
                state.answer(session, id, Answer::Tenants(list));
            }
        }
        ReadReply::Task(task) => {
            if let Then::DashboardTask { request } = then {
                let shown = task.map(|task| {
                    // The records say "queued" for every unfinished task;
                    // the table knows which run.
                    let live = state.tasks.get(task.record.id).map(status_of);
                    let view = TaskView::of(*task, live);
                    serde_json::to_string(&view).unwrap_or_else(|err| format!("\"{err}\""))
                });
                state.outputs.push_back(Output::DashboardTask {
                    request,
                    task: Ok(shown),
                });
            }
        }
        ReadReply::Failed(reason) => {
            let message = format!("the task records could not be read: {reason}");
            match then.client() {
                Some((session, id)) => state.answer(session, id, Answer::Error(message)),
                None => {
                    if let Then::DashboardTask { request } = then {
                        state.outputs.push_back(Output::DashboardTask {
                            request,
                            task: Err(message),
                        });
                    }
                }
            }
        }
    }
}

/// The dashboard asks for task `id`'s record (its request `request`): the
/// viewer's own task, or any for an admin; answered with
/// [`Output::DashboardTask`].
pub(super) fn dashboard_task(
    state: &mut HubState,
    request: u64,
    tenant: &Tenant,
    admin: bool,
    id: TaskId,
) {
    let tenant = (!admin).then(|| tenant.clone());
    state.read(Read::Task { tenant, id }, Then::DashboardTask { request });
}

impl Then {
    /// The client request this answers, if a client asked.
    fn client(&self) -> Option<(u32, u64)> {
        match self {
            Then::Results { session, id, .. }
            | Then::Statuses { session, id, .. }
            | Then::Resubmit { session, id, .. }
            | Then::Query { session, id, .. }
            | Then::Purge { session, id }
            | Then::TenantList { session, id } => Some((*session, *id)),
            Then::DashboardTask { .. } => None,
        }
    }
}

/// Fills the answer's empty slots with `found`, in order, and sends it.
fn finish(state: &mut HubState, then: Then, found: Vec<Option<Found>>) {
    let mut found = found.into_iter();
    match then {
        Then::Results {
            session,
            id,
            answers,
        } => {
            let answers = answers
                .into_iter()
                .map(|slot| {
                    slot.unwrap_or_else(|| match found.next().flatten() {
                        Some(Found {
                            result: Some(result),
                            ..
                        }) => ResultLookup::Finished(Box::new(result)),
                        // Unfinished in the records but not in the table:
                        // only a bug would lead here; say not found rather
                        // than promise a result that will not come.
                        _ => ResultLookup::NotFound,
                    })
                })
                .collect();
            state.db_answer(session, id, DbAnswer::Results(answers));
        }
        Then::Statuses {
            session,
            id,
            answers,
        } => {
            let answers = answers
                .into_iter()
                .map(|slot| slot.unwrap_or_else(|| found.next().flatten().map(|f| f.status)))
                .collect();
            state.db_answer(session, id, DbAnswer::Statuses(answers));
        }
        Then::Resubmit {
            session,
            id,
            answers,
            retry,
        } => {
            // Admitted whole, as a submission: every task asked for counts.
            let tenant = state.clients.get(&session).map(|c| c.tenant.clone());
            if let Some(refusal) =
                tenant.and_then(|t| state.queued_refusal(&t, answers.len() as u64))
            {
                state.answer(session, id, Answer::Error(refusal));
                return;
            }
            let mut resubmitted = Vec::with_capacity(answers.len());
            for slot in answers {
                let new = match slot {
                    Some(answer) => answer,
                    None => match found.next().flatten() {
                        Some(Found {
                            status,
                            spec: Some(spec),
                            ..
                        }) if status.is_final() => resubmit(state, session, spec, retry),
                        _ => None,
                    },
                };
                resubmitted.push(new);
            }
            state.drain_scheduler();
            state.after_commit(Output::Client {
                session,
                msg: wasp_proto::msg::ToClient::Answer {
                    id,
                    answer: Answer::Db(DbAnswer::Resubmitted(resubmitted)),
                },
            });
        }
        Then::Query { session, id, .. }
        | Then::Purge { session, id }
        | Then::TenantList { session, id } => {
            // A lookup reply to a query: cannot happen; answer rather than
            // leave the client waiting.
            state.answer(
                session,
                id,
                Answer::Error("the task records answered another question".into()),
            );
        }
        Then::DashboardTask { request } => {
            state.outputs.push_back(Output::DashboardTask {
                request,
                task: Err("the task records answered another question".into()),
            });
        }
    }
}

/// Queues a finished task again under a new id in the controller's own
/// session, its result going to `session`; the new id, or `None` if its
/// module is gone or the ids ran out.
fn resubmit(
    state: &mut HubState,
    session: u32,
    mut spec: crate::records::StoredTask,
    retry: RetryPolicy,
) -> Option<TaskId> {
    if !state.modules.has(&spec.module, &spec.tenant) {
        return None;
    }
    let id = state.own_task_id()?;
    spec.id = id;
    spec.retry = retry;
    spec.submitted_us = state.wall_us();
    let targets = spec.targets.clone();
    let mut entry = TaskEntry::restored(spec);
    entry.deliver_to.add(session);
    state.record(crate::records::Record::Submitted(Box::new(
        entry.stored(id),
    )));
    state.tasks.insert(id, entry);
    state.submit_to_scheduler(id, targets);
    Some(id)
}
