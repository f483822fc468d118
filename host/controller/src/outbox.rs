//! How the controller's queues are bounded.
//!
//! The hub is one task that must never wait on a peer, so it cannot block
//! on a full queue to a connection. Instead every queue from the hub to a
//! connection's writer is an [`Outbox`]: it counts the bytes it holds
//! (what [`Weigh`] says each message costs), the writer subtracts what it
//! has written, and the *reader* of that connection waits at its [`Gate`]
//! while the bytes are over their budget: a client that does not read its
//! results stops being read, so it slows only its own submissions, and the
//! controller holds at most the budget plus the results of the tasks it had
//! already accepted.
//!
//! The way in (connections to the hub) is bounded by bytes too: each event
//! holds permits of the hub's [`Inbox`] budget for the bytes it carries,
//! released when the hub has handled it, so connections wait (and stop
//! reading their peers) while the hub is behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use wasp_proto::db::{DbAnswer, DbRequest, ResultLookup};
use wasp_proto::msg::{
    Answer, ClientMsg, FromEngine, NamespaceOp, NamespaceReply, Request, Slotted, TaskResult,
    TenantRequest, ToClient, ToEngine,
};

/// Bytes of results and answers a client's outgoing queue may hold before
/// the controller stops reading that client's requests and submissions.
pub(crate) const CLIENT_QUEUE_BYTES: usize = 16 << 20;

/// Requests of one client the controller holds unanswered before it stops
/// reading that client (a frame may carry a batch more).
pub(crate) const CLIENT_REQUESTS_IN_FLIGHT: usize = 32;

/// Bytes of events (submissions, uploads, engine messages) waiting for the
/// hub. An event larger than this (a module upload near the size limit)
/// takes the whole budget, so it waits until the hub has caught up.
pub(crate) const HUB_INBOX_BYTES: usize = 256 << 20;

/// Events waiting for the hub, in count (the byte budget is the bound
/// that matters; this one keeps a flood of tiny events short too).
pub(crate) const HUB_INBOX_EVENTS: usize = 4096;

/// Roughly what a message costs in memory while queued, in bytes: its
/// payloads plus a fixed overhead per message.
pub(crate) trait Weigh {
    /// The estimate.
    fn weight(&self) -> usize;
}

const OVERHEAD: usize = 64;

fn result_weight(result: &TaskResult) -> usize {
    let meta = &result.meta;
    let outcome = match &result.outcome {
        Ok(values) => values.byte_len(),
        Err(err) => err.message.len(),
    };
    OVERHEAD
        + outcome
        + meta.stdout.len()
        + meta.stderr.len()
        + meta
            .logs
            .iter()
            .map(|l| OVERHEAD + l.message.len())
            .sum::<usize>()
}

fn reply_weight(reply: &NamespaceReply) -> usize {
    match reply {
        Ok(values) => values.byte_len(),
        Err(err) => err.len(),
    }
}

fn op_weight(op: &NamespaceOp) -> usize {
    match op {
        NamespaceOp::Push(entries) => entries.byte_len(),
        NamespaceOp::Pull(names) => names.iter().map(|n| OVERHEAD + n.len()).sum(),
        NamespaceOp::Clear | NamespaceOp::Load(_) => 0,
    }
}

fn db_answer_weight(answer: &DbAnswer) -> usize {
    match answer {
        DbAnswer::Results(found) => found
            .iter()
            .map(|f| match f {
                ResultLookup::Finished(result) => result_weight(result),
                ResultLookup::Pending(_) | ResultLookup::NotFound => OVERHEAD,
            })
            .sum(),
        DbAnswer::Statuses(statuses) => statuses.len() * 2,
        DbAnswer::Resubmitted(ids) => ids.len() * 16,
        DbAnswer::Records(records) => records
            .iter()
            .map(|r| {
                let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
                4 * OVERHEAD
                    + text(&r.func)
                    + text(&r.error)
                    + text(&r.result)
                    + text(&r.stdout)
                    + text(&r.stderr)
            })
            .sum(),
        DbAnswer::Purged(_) => 0,
    }
}

fn db_request_weight(request: &DbRequest) -> usize {
    match request {
        DbRequest::GetResults(ids)
        | DbRequest::Status(ids)
        | DbRequest::Abort(ids)
        | DbRequest::Purge(ids)
        | DbRequest::Resubmit { ids, .. } => ids.len() * 8,
        DbRequest::Query(query) => {
            query.func.as_ref().map_or(0, String::len)
                + query.keys.iter().map(|k| OVERHEAD + k.len()).sum::<usize>()
        }
    }
}

impl Weigh for ToClient {
    fn weight(&self) -> usize {
        OVERHEAD
            + match self {
                ToClient::Answer { answer, .. } => match answer {
                    Answer::ModulesKnown(known) => known.len(),
                    Answer::Status(status) => status.engines.len() * 2 * OVERHEAD,
                    Answer::Namespace(replies) => replies.iter().map(reply_weight).sum(),
                    Answer::Error(message) => message.len(),
                    Answer::Uploaded(_) | Answer::ShuttingDown => 0,
                    Answer::Db(answer) => db_answer_weight(answer),
                    Answer::Tenants(tenants) => {
                        tenants.iter().map(|t| 8 * OVERHEAD + t.name.len()).sum()
                    }
                    Answer::TenantAdded { name, file } => name.len() + file.len(),
                },
                ToClient::Results(results) => results.iter().map(result_weight).sum(),
                ToClient::Accepted(ids) => ids.len() * 8,
                ToClient::Closing(reason) => reason.len(),
            }
    }
}

impl Weigh for ToEngine {
    fn weight(&self) -> usize {
        OVERHEAD
            + match self {
                ToEngine::Module { bytes, .. } => bytes.len(),
                ToEngine::Run(run) => run.func.len() + run.items.byte_len(),
                ToEngine::Namespace { op, .. } => op_weight(op),
                ToEngine::Retract(_) | ToEngine::Abort(_) | ToEngine::Shutdown => 0,
            }
    }
}

impl<T: Weigh> Weigh for Slotted<T> {
    fn weight(&self) -> usize {
        self.msg.weight()
    }
}

impl Weigh for ClientMsg {
    fn weight(&self) -> usize {
        OVERHEAD
            + match self {
                ClientMsg::Request { request, .. } => match request {
                    Request::HasModules(hashes) => hashes.len() * 32,
                    Request::Upload(bytes) => bytes.len(),
                    Request::Namespace { targets, op } => targets.len() * 4 + op_weight(op),
                    Request::Status | Request::Shutdown => 0,
                    Request::Db(request) => db_request_weight(request),
                    Request::Tenants(request) => match request {
                        TenantRequest::List => 0,
                        TenantRequest::Add { name, .. }
                        | TenantRequest::Set { name, .. }
                        | TenantRequest::Remove { name } => name.len(),
                    },
                },
                ClientMsg::Submit { specs, .. } => specs
                    .iter()
                    .map(|s| OVERHEAD + s.func.len() + s.items.byte_len())
                    .sum(),
            }
    }
}

impl Weigh for FromEngine {
    fn weight(&self) -> usize {
        OVERHEAD
            + match self {
                FromEngine::Heartbeat { .. } => 0,
                FromEngine::Done(result) => result_weight(result),
                FromEngine::Namespace { reply, .. } => reply_weight(reply),
                FromEngine::Retracted { run, .. } => run
                    .as_ref()
                    .map_or(0, |r| r.func.len() + r.items.byte_len()),
            }
    }
}

impl<T: Weigh> Weigh for [T] {
    fn weight(&self) -> usize {
        self.iter().map(Weigh::weight).sum()
    }
}

/// What an [`Outbox`]'s writer and its connection's reader share.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Bytes queued and not yet written.
    queued: AtomicUsize,
    /// Requests read and not yet answered (written).
    requests: AtomicUsize,
    /// Woken when either count falls.
    fell: Notify,
}

impl Gate {
    fn new() -> Self {
        Self {
            queued: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            fell: Notify::new(),
        }
    }

    /// Bytes queued now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Counts `n` requests read from the peer, each to be answered.
    pub(crate) fn requests_read(&self, n: usize) {
        self.requests.fetch_add(n, Ordering::AcqRel);
    }

    /// Waits while more than `bytes` are queued or `requests` or more are
    /// unanswered.
    pub(crate) async fn wait_open(&self, bytes: usize, requests: usize) {
        loop {
            let fell = self.fell.notified();
            tokio::pin!(fell);
            // Registered before the check, so a fall in between wakes it.
            fell.as_mut().enable();
            if self.queued() <= bytes && self.requests.load(Ordering::Acquire) < requests {
                return;
            }
            fell.await;
        }
    }

    fn written(&self, bytes: usize, answers: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        if answers > 0 {
            self.requests.fetch_sub(answers, Ordering::AcqRel);
        }
        self.fell.notify_waiters();
    }
}

/// The hub's sending side of a connection's outgoing queue. Never blocks
/// (the hub must not wait on a peer); the queue's bytes are bounded by the
/// connection's reader waiting at the [`Gate`].
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    tx: mpsc::UnboundedSender<(T, usize)>,
    gate: Arc<Gate>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            gate: self.gate.clone(),
        }
    }
}

impl<T: Weigh> Outbox<T> {
    /// Queues a message; false if the writer is gone.
    pub(crate) fn send(&self, msg: T) -> bool {
        let weight = msg.weight();
        self.gate.queued.fetch_add(weight, Ordering::AcqRel);
        if self.tx.send((msg, weight)).is_err() {
            self.gate.queued.fetch_sub(weight, Ordering::AcqRel);
            return false;
        }
        true
    }
}

/// The writer's side of an [`Outbox`].
pub(crate) struct OutboxRx<T> {
    rx: mpsc::UnboundedReceiver<(T, usize)>,
    gate: Arc<Gate>,
}

impl<T> OutboxRx<T> {
    /// Waits for up to `max` messages; returns their total weight (0 when
    /// the queue is closed and empty).
    pub(crate) async fn recv_many(&mut self, batch: &mut Vec<T>, max: usize) -> Option<usize> {
        let mut weighed = Vec::with_capacity(max.min(64));
        if self.rx.recv_many(&mut weighed, max).await == 0 {
            return None;
        }
        let mut total = 0;
        for (msg, weight) in weighed {
            total += weight;
            batch.push(msg);
        }
        Some(total)
    }

    /// Reports `bytes` and `answers` written to the peer (or dropped),
    /// opening the gate for the reader.
    pub(crate) fn written(&self, bytes: usize, answers: usize) {
        self.gate.written(bytes, answers);
    }
}

/// A new outgoing queue and the gate its connection's reader waits at.
pub(crate) fn outbox<T>() -> (Outbox<T>, OutboxRx<T>, Arc<Gate>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Gate::new());
    (
        Outbox {
            tx,
            gate: gate.clone(),
        },
        OutboxRx {
            rx,
            gate: gate.clone(),
        },
        gate,
    )
}

/// The byte budget of events waiting for the hub.
#[derive(Clone, Debug)]
pub(crate) struct Inbox {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl Inbox {
    /// A budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(bytes)),
            total: bytes,
        }
    }

    /// Waits until `weight` bytes (at most the whole budget) are free and
    /// takes them; they return when the permit is dropped.
    pub(crate) async fn admit(&self, weight: usize) -> Option<OwnedSemaphorePermit> {
        let n = weight.clamp(1, self.total.max(1));
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.bytes.clone().acquire_many_owned(n).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_closes_over_the_budget_and_opens_when_written() {
        let (out, mut rx, gate) = outbox::<ToClient>();
        assert!(out.send(ToClient::Closing("x".repeat(1000))));
        let queued = gate.queued();
        assert!(queued >= 1000, "{queued}");
        // Over a 100-byte budget: the reader waits.
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open(100, 10).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let mut batch = Vec::new();
        let weight = rx.recv_many(&mut batch, 8).await.unwrap();
        assert_eq!(weight, queued);
        rx.written(weight, 0);
        waiting.await.unwrap();
        assert_eq!(gate.queued(), 0);

        // Too many unanswered requests close it too.
        gate.requests_read(3);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open(100, 3).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        rx.written(0, 1);
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn the_inbox_admits_an_event_larger_than_itself_alone() {
        let inbox = Inbox::new(HUB_INBOX_BYTES);
        let small = inbox.admit(10).await.unwrap();
        let huge = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.admit(HUB_INBOX_BYTES * 2).await.is_some() }
        });
        tokio::task::yield_now().await;
        assert!(!huge.is_finished(), "waits for the small one");
        drop(small);
        assert!(huge.await.unwrap());
    }
}
