//! The task database, by ipyparallel's names: [`Client::get_result`],
//! [`Client::result_status`], [`Client::abort`], [`Client::resubmit`],
//! [`Client::db_query`], [`Client::purge_results`], and
//! [`Client::wait_for_engines`]. Every call sees the tasks of this client's
//! tenant, whichever client (or controller run) submitted them.

use std::time::{Duration, Instant};

use wasp_proto::db::{DbAnswer, DbRequest, Query, ResultLookup, Status, TaskRecord};
use wasp_proto::msg::{Answer, RetryPolicy};
use wasp_proto::{EngineId, TaskId};

use crate::async_result::AsyncResult;
use crate::client::Client;
use crate::error::ClientError;

impl Client {
    async fn db(&self, request: DbRequest) -> Result<DbAnswer, ClientError> {
        match self.ask(wasp_proto::msg::Request::Db(request)).await? {
            Answer::Db(answer) => Ok(answer),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// The results of these tasks, as an [`AsyncResult`] that has the
    /// finished ones and waits for the others (ipyparallel's
    /// `Client.get_result`): from any client of the tenant, after the
    /// submitting client left or the controller restarted. An id the
    /// tenant has no task of is an error naming it.
    pub async fn get_result(&self, ids: &[TaskId]) -> Result<AsyncResult, ClientError> {
        // Registered first: an unfinished task's result may come right
        // after the answer.
        let rx = self.expect(ids)?;
        let answer = self.db(DbRequest::GetResults(ids.to_vec())).await;
        let found = match answer {
            Ok(DbAnswer::Results(found)) if found.len() == ids.len() => found,
            Ok(other) => {
                self.forget(ids);
                return Err(ClientError::Controller(format!(
                    "unexpected answer: {other:?}"
                )));
            }
            Err(err) => {
                self.forget(ids);
                return Err(err);
            }
        };
        let missing: Vec<TaskId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, f)| matches!(f, ResultLookup::NotFound))
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            self.forget(ids);
            return Err(ClientError::UnknownTasks(missing));
        }
        // The finished ones go the way the others will come.
        for lookup in found {
            if let ResultLookup::Finished(result) = lookup {
                self.deliver_now(*result);
            }
        }
        // Single when one id is asked for; its item count is learnt from
        // its result.
        let single = ids.len() == 1;
        let sizes = vec![1; ids.len()];
        Ok(AsyncResult::new(self.clone(), ids.to_vec(), sizes, rx, true, single).all_accepted())
    }

    /// Where each task is (ipyparallel's `result_status`): `None` for an
    /// id the tenant has no task of.
    pub async fn result_status(&self, ids: &[TaskId]) -> Result<Vec<Option<Status>>, ClientError> {
        match self.db(DbRequest::Status(ids.to_vec())).await? {
            DbAnswer::Statuses(statuses) => Ok(statuses),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// Stops these tasks (ipyparallel's `abort`, which wasp extends to
    /// running tasks): queued ones never run, running ones are interrupted
    /// at the engine's next epoch tick. Each ends failed
    /// ([`wasp_proto::msg::ErrorKind::Aborted`]) unless it finished first.
    /// Returns each task's status after the abort (`None`: not found).
    pub async fn abort(&self, ids: &[TaskId]) -> Result<Vec<Option<Status>>, ClientError> {
        match self.db(DbRequest::Abort(ids.to_vec())).await? {
            DbAnswer::Statuses(statuses) => Ok(statuses),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// Runs finished tasks again under new ids (ipyparallel's `resubmit`),
    /// with no retries; see [`Client::resubmit_with`].
    pub async fn resubmit(&self, ids: &[TaskId]) -> Result<AsyncResult, ClientError> {
        self.resubmit_with(ids, RetryPolicy::default()).await
    }

    /// Runs finished tasks again under new ids, with `retry`; the
    /// [`AsyncResult`] holds the new tasks, in the order of `ids`. An id
    /// that is unknown, or not finished yet, is an error naming it.
    pub async fn resubmit_with(
        &self,
        ids: &[TaskId],
        retry: RetryPolicy,
    ) -> Result<AsyncResult, ClientError> {
        let answer = self
            .db(DbRequest::Resubmit {
                ids: ids.to_vec(),
                retry,
            })
            .await?;
        let DbAnswer::Resubmitted(new) = answer else {
            return Err(ClientError::Controller(format!(
                "unexpected answer: {answer:?}"
            )));
        };
        let unknown: Vec<TaskId> = ids
            .iter()
            .zip(&new)
            .filter(|(_, n)| n.is_none())
            .map(|(id, _)| *id)
            .collect();
        let new: Vec<TaskId> = new.into_iter().flatten().collect();
        // Those that were resubmitted run whatever; wait for them too.
        let rx = self.expect(&new)?;
        let sizes = vec![1; new.len()];
        let single = new.len() == 1;
        let result = AsyncResult::new(self.clone(), new, sizes, rx, true, single).all_accepted();
        if !unknown.is_empty() {
            return Err(ClientError::UnknownTasks(unknown));
        }
        Ok(result)
    }

    /// The tenant's task records matching `query`, oldest first
    /// (ipyparallel's `db_query`).
    pub async fn db_query(&self, query: Query) -> Result<Vec<TaskRecord>, ClientError> {
        match self.db(DbRequest::Query(query)).await? {
            DbAnswer::Records(records) => Ok(records),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// Forgets finished tasks' records (ipyparallel's `purge_results`):
    /// these, or with an empty list every finished task of the tenant.
    /// Unfinished tasks are never purged. Returns how many were.
    pub async fn purge_results(&self, ids: &[TaskId]) -> Result<u64, ClientError> {
        match self.db(DbRequest::Purge(ids.to_vec())).await? {
            DbAnswer::Purged(count) => Ok(count),
            other => Err(ClientError::Controller(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }

    /// Waits until at least `n` engines are connected, for at most
    /// `timeout` (ipyparallel's `wait_for_engines`); returns their ids, or
    /// a timeout error that says how many came.
    pub async fn wait_for_engines(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<EngineId>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let ids = self.ids().await?;
            if ids.len() >= n {
                return Ok(ids);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Controller(format!(
                    "{} of {n} engines connected within {timeout:?}",
                    ids.len()
                )));
            }
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tasks_are_named() {
        let ids: Vec<TaskId> = (0..12).map(|i| TaskId::new(3, i)).collect();
        let text = ClientError::UnknownTasks(ids).to_string();
        assert!(text.contains("s3-0, s3-1"), "{text}");
        assert!(text.contains("and 2 more"), "{text}");
    }
}
