//! [`AsyncResult`]: the results of submitted tasks, as they arrive.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wasp_proto::msg::{ErrorKind, TaskError, TaskMeta, TaskResult};
use wasp_proto::{TaskId, Value};

use crate::client::{Client, Delivery};
use crate::error::{ClientError, RemoteError};

/// How long a wait for results polls for them, yielding the core between
/// polls, before it parks its task for the runtime to wake. A round trip
/// on one host takes about 0.1 ms, and waking a parked thread costs tens
/// of microseconds on these VMs (the sender's wakeup of an idle core, then
/// the sleeper's return from `epoll_wait`). Polling first, as the Python
/// client's wait does (`host/python/src/runtime.rs`), took the suite's
/// `apply_sync` round trip (1,000 calls after its warm-up) from
/// 0.127-0.143 ms to 0.101-0.107 ms in six runs each. A longer wait costs
/// this much CPU once.
const POLL_BEFORE_PARKING: Duration = Duration::from_micros(300);

/// The results of an `apply` (one task) or a `map` (one task per chunk),
/// available as they arrive (ipyparallel's `AsyncResult`).
pub struct AsyncResult {
    client: Client,
    msg_ids: Vec<TaskId>,
    /// Items per task (a map chunk's size).
    sizes: Vec<usize>,
    index: HashMap<TaskId, usize>,
    rx: mpsc::UnboundedReceiver<Delivery>,
    /// Which tasks the controller has committed (or finished).
    accepted: Vec<bool>,
    accepted_count: usize,
    results: Vec<Option<Finished>>,
    /// Task indexes in arrival order.
    arrival: Vec<usize>,
    ordered: bool,
    single: bool,
    created: Instant,
    /// The next item `next` yields: a task index and an item within it.
    cursor: (usize, usize),
    disconnected: bool,
}

impl AsyncResult {
    pub(crate) fn new(
        client: Client,
        msg_ids: Vec<TaskId>,
        sizes: Vec<usize>,
        rx: mpsc::UnboundedReceiver<Delivery>,
        ordered: bool,
        single: bool,
    ) -> Self {
        let index = msg_ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let results = msg_ids.iter().map(|_| None).collect();
        let accepted = vec![false; msg_ids.len()];
        Self {
            client,
            msg_ids,
            sizes,
            index,
            rx,
            accepted,
            accepted_count: 0,
            results,
            arrival: Vec::new(),
            ordered,
            single,
            created: Instant::now(),
            cursor: (0, 0),
            disconnected: false,
        }
    }

    /// The tasks' ids: one per `apply`, one per chunk of a `map`.
    pub fn msg_ids(&self) -> &[TaskId] {
        &self.msg_ids
    }

    /// How many tasks have finished.
    pub fn progress(&mut self) -> usize {
        self.drain();
        self.arrival.len()
    }

    /// Whether every task has finished.
    pub fn ready(&mut self) -> bool {
        self.progress() == self.msg_ids.len()
    }

    /// Tasks the controller has committed, or that finished: they reach
    /// a final state whatever dies, and `Client::get_result` finds them.
    pub fn accepted(&mut self) -> usize {
        self.drain();
        self.accepted_count
    }

    /// Waits until every task is accepted (or finished), or `timeout`
    /// passes; returns whether all are. What `wasp apply --no-wait`
    /// waits for before it prints the ids and returns.
    pub async fn wait_accepted(&mut self, timeout: Option<Duration>) -> bool {
        self.wait_until(timeout, |r| r.accepted() == r.msg_ids.len())
            .await
    }

    /// Receives until `done` holds, the connection ends, or `timeout`
    /// passes; returns whether `done` holds.
    async fn wait_until(
        &mut self,
        timeout: Option<Duration>,
        done: impl Fn(&mut Self) -> bool,
    ) -> bool {
        let all = async {
            let until = Instant::now() + POLL_BEFORE_PARKING;
            while !done(self) && !self.disconnected && Instant::now() < until {
                // The thread's yield lets the controller and engines run
                // if they share this core; the task's lets this runtime
                // poll its sockets without blocking (no park) and run the
                // connection's tasks that deliver the results.
                std::thread::yield_now();
                tokio::task::yield_now().await;
            }
            while !done(self) {
                if !self.receive().await {
                    break;
                }
            }
        };
        match timeout {
            Some(limit) => {
                let _ = tokio::time::timeout(limit, all).await;
            }
            None => all.await,
        }
        done(self)
    }

    /// Aborts the tasks not finished yet (ipyparallel's
    /// `AsyncResult.abort`): queued ones never run, running ones are
    /// interrupted. Each ends failed ([`ErrorKind::Aborted`]) unless it
    /// finished first.
    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.drain();
        let unfinished: Vec<TaskId> = self
            .msg_ids
            .iter()
            .zip(&self.results)
            .filter(|(_, r)| r.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !unfinished.is_empty() {
            self.client.abort(&unfinished).await?;
        }
        Ok(())
    }

    /// Marks every task accepted: they came from the task database.
    pub(crate) fn all_accepted(mut self) -> Self {
        self.accepted.iter_mut().for_each(|a| *a = true);
        self.accepted_count = self.msg_ids.len();
        self
    }

    fn mark_accepted(&mut self, i: usize) {
        if !self.accepted[i] {
            self.accepted[i] = true;
            self.accepted_count += 1;
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Accepted(ids) => {
                for id in ids {
                    if let Some(&i) = self.index.get(&id) {
                        self.mark_accepted(i);
                    }
                }
            }
            Delivery::Result(result) => self.accept(result),
        }
    }

    fn accept(&mut self, result: TaskResult) {
        if let Some(&i) = self.index.get(&result.id)
            && self.results[i].is_none()
        {
            let finished = Finished::decode(result);
            // A task fetched by id says how many items it held only now.
            if let Ok(values) = &finished.outcome {
                self.sizes[i] = values.len();
            }
            self.results[i] = Some(finished);
            self.arrival.push(i);
            self.mark_accepted(i);
        }
    }

    fn drain(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(delivery) => self.deliver(delivery),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.disconnected = true;
                    return;
                }
            }
        }
    }

    /// Waits for one more result; false when none can come.
    async fn receive(&mut self) -> bool {
        match self.rx.recv().await {
            Some(delivery) => {
                self.deliver(delivery);
                true
            }
            None => {
                self.disconnected = true;
                false
            }
        }
    }

    /// Waits until every task has finished or `timeout` passes; returns
    /// whether all finished.
    pub async fn wait(&mut self, timeout: Option<Duration>) -> bool {
        self.wait_until(timeout, Self::ready).await
    }

    /// Waits, showing a progress bar of finished tasks on stderr
    /// (ipyparallel's `wait_interactive`).
    pub async fn wait_interactive(&mut self) {
        let bar = indicatif::ProgressBar::new(self.msg_ids.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} tasks  {elapsed_precise}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        while !self.ready() {
            bar.set_position(self.arrival.len() as u64);
            if !self.receive().await {
                break;
            }
        }
        bar.set_position(self.arrival.len() as u64);
        bar.finish();
    }

    /// Every item's result in submission order, waiting up to `timeout`;
    /// the first failed task's error otherwise.
    pub async fn get(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Vec<Option<Value>>, ClientError> {
        if !self.wait(timeout).await {
            return Err(self.incomplete(timeout));
        }
        let mut values = Vec::with_capacity(self.sizes.iter().sum());
        for result in self.results.iter().flatten() {
            values.extend(outcome(result)?.iter().cloned());
        }
        Ok(values)
    }

    /// The single result of an `apply`.
    pub async fn get_one(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Value>, ClientError> {
        Ok(self.get(timeout).await?.into_iter().next().flatten())
    }

    fn incomplete(&self, timeout: Option<Duration>) -> ClientError {
        if self.disconnected {
            ClientError::Disconnected
        } else {
            ClientError::Timeout(timeout.unwrap_or_default())
        }
    }

    /// The next item's result as results arrive: in submission order when
    /// `ordered`, else in completion order. `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Option<Value>, ClientError>> {
        loop {
            self.drain();
            let (task, item) = self.cursor;
            if task >= self.msg_ids.len() {
                return None;
            }
            let slot = if self.ordered {
                Some(task)
            } else {
                self.arrival.get(task).copied()
            };
            if let Some(result) = slot.and_then(|i| self.results[i].as_ref()) {
                let len = self.sizes[slot.unwrap_or(0)];
                self.cursor = if item + 1 >= len {
                    (task + 1, 0)
                } else {
                    (task, item + 1)
                };
                return Some(match outcome(result) {
                    Ok(values) => Ok(values.get(item).cloned().flatten()),
                    Err(err) => {
                        // A failed chunk yields its error once, not per item.
                        self.cursor = (task + 1, 0);
                        Err(err)
                    }
                });
            }
            if !self.receive().await {
                return Some(Err(ClientError::Disconnected));
            }
        }
    }

    /// Each finished task's metadata, in submission order (`None` for tasks
    /// still running).
    pub fn metadata(&self) -> Vec<Option<&TaskMeta>> {
        self.results
            .iter()
            .map(|r| r.as_ref().map(|r| &r.meta))
            .collect()
    }

    fn metas(&self) -> impl Iterator<Item = &TaskMeta> {
        self.results.iter().flatten().map(|r| &r.meta)
    }

    /// Seconds from the first submission to the last completion
    /// (ipyparallel's `wall_time`).
    pub fn wall_time(&self) -> f64 {
        let first = self
            .metas()
            .map(|m| m.submitted_us)
            .filter(|&t| t > 0)
            .min();
        let last = self.metas().map(|m| m.completed_us).max();
        match (first, last) {
            (Some(first), Some(last)) if last > first => (last - first) as f64 / 1e6,
            _ => 0.0,
        }
    }

    /// Sum of the tasks' own run times (ipyparallel's `serial_time`).
    pub fn serial_time(&self) -> f64 {
        self.metas()
            .map(|m| m.completed_us.saturating_sub(m.started_us) as f64 / 1e6)
            .sum()
    }

    /// Seconds since submission; once everything finished, the wall time
    /// (ipyparallel's `elapsed`).
    pub fn elapsed(&mut self) -> f64 {
        if self.ready() {
            return self.wall_time();
        }
        self.created.elapsed().as_secs_f64()
    }

    /// Whether every task succeeded (ipyparallel's `successful`); `None`
    /// while some have not finished.
    pub fn successful(&mut self) -> Option<bool> {
        if !self.ready() {
            return None;
        }
        Some(self.results.iter().flatten().all(|r| r.outcome.is_ok()))
    }

    /// Whether this is the result of an `apply` (one value) rather than a
    /// `map`.
    pub fn is_single(&self) -> bool {
        self.single
    }
}

/// A finished task as an [`AsyncResult`] keeps it: its values decoded once,
/// when it arrives.
struct Finished {
    id: TaskId,
    outcome: Result<Vec<Option<Value>>, TaskError>,
    meta: TaskMeta,
}

impl Finished {
    fn decode(result: TaskResult) -> Self {
        let outcome = result.outcome.and_then(|values| {
            values.decode().map_err(|err| TaskError {
                kind: ErrorKind::Trap,
                message: format!("the task's results do not decode: {err}"),
                item: None,
            })
        });
        Finished {
            id: result.id,
            outcome,
            meta: result.meta,
        }
    }
}

fn outcome(result: &Finished) -> Result<&[Option<Value>], ClientError> {
    result.outcome.as_deref().map_err(|err| {
        ClientError::Remote(RemoteError {
            task: result.id,
            engine: result.meta.engine,
            kind: err.kind,
            item: err.item,
            message: err.message.clone(),
        })
    })
}

impl std::fmt::Debug for AsyncResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("msg_ids", &self.msg_ids)
            .field("finished", &self.arrival.len())
            .field("accepted", &self.accepted_count)
            .finish_non_exhaustive()
    }
}

impl Drop for AsyncResult {
    fn drop(&mut self) {
        if self.arrival.len() != self.msg_ids.len() {
            self.client.forget(&self.msg_ids);
        }
    }
}
