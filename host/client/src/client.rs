//! [`Client`]: a connection to a controller (ipyparallel's `Client`).
//!
//! One reader task routes what the controller sends: task results to the
//! [`AsyncResult`](crate::AsyncResult) waiting for them, answers to the
//! request whose id they carry (the controller answers some requests at
//! once and others when engines have replied, so arrival order pairs
//! nothing). One writer task sends requests, many to a frame.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};
use wasp_net::{ConnectionFile, FramedRecv, FramedSend, Profile, Session};
use wasp_proto::msg::{
    Answer, ClientMsg, ClusterStatus, NamespaceOp, Request, Role, TaskResult, TaskSpec, ToClient,
};

/// What the reader hands an [`AsyncResult`](crate::AsyncResult) about one
/// of its tasks.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The controller committed these tasks: they will reach a final
    /// state whatever dies.
    Accepted(Vec<TaskId>),
    /// The task's result.
    Result(TaskResult),
}

/// Results of tasks nobody awaited yet, kept for a moment: a resubmitted
/// task's result may arrive before the answer that names its new id.
const ORPHANS: usize = 1024;
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant};

use crate::error::ClientError;
use crate::module::Module;
use crate::view::{DirectView, LoadBalancedView};

/// Most requests written in one frame.
const MAX_BATCH: usize = 256;

/// A connection to a wasp controller. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    session: u32,
    tenant: Tenant,
    out: mpsc::UnboundedSender<ClientMsg>,
    state: Mutex<State>,
    next_seq: AtomicU32,
    /// The id of the next request.
    next_request: AtomicU64,
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

#[derive(Default)]
struct State {
    /// Waiters for answers, by request id.
    replies: HashMap<u64, oneshot::Sender<Answer>>,
    /// Where each pending task's acceptance and result go.
    pending: HashMap<TaskId, mpsc::UnboundedSender<Delivery>>,
    /// Results of another session's tasks (resubmitted ones) that came
    /// before anyone awaited them, oldest first; at most [`ORPHANS`].
    orphans: std::collections::VecDeque<TaskResult>,
    /// Modules known to be on the controller.
    uploaded: HashSet<ModuleHash>,
    closed: bool,
    /// Why the controller closed the connection, if it said.
    closing: Option<String>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.connection.close(0u32.into(), b"client closed");
    }
}

impl Client {
    /// Connects with the client connection file of profile `name` (as
    /// `ipyparallel.Client(profile=name)`).
    pub async fn connect(profile: &str) -> Result<Self, ClientError> {
        Self::connect_file(&Profile::new(profile)?.client_file()).await
    }

    /// Connects with a connection file.
    pub async fn connect_file(path: &Path) -> Result<Self, ClientError> {
        let file = ConnectionFile::read(path)?;
        Self::connect_with(&file).await
    }

    /// Connects with the contents of a connection file.
    pub async fn connect_with(file: &ConnectionFile) -> Result<Self, ClientError> {
        let session = wasp_net::dial(file, Role::Client).await?;
        let Session {
            endpoint,
            connection,
            send,
            recv,
            tenant,
            session,
            ..
        } = session;
        let (out, out_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            session,
            tenant,
            out,
            state: Mutex::new(State::default()),
            next_seq: AtomicU32::new(0),
            next_request: AtomicU64::new(0),
            connection,
            _endpoint: endpoint,
        });
        tokio::spawn(write_requests(send, out_rx));
        tokio::spawn(read_replies(recv, Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// The tenant this client authenticated as.
    pub fn tenant(&self) -> &Tenant {
        &self.inner.tenant
    }

    /// The ids of the engines connected now (ipyparallel's `rc.ids`).
    pub async fn ids(&self) -> Result<Vec<EngineId>, ClientError> {
        Ok(self.status().await?.engines.iter().map(|e| e.id).collect())
    }

    /// Engines, queue and task counts.
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        match self.request(Request::Status).await? {
            Answer::Status(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    /// A view that lets the scheduler choose engines.
    pub fn load_balanced_view(&self) -> LoadBalancedView {
        LoadBalancedView::new(self.clone(), None)
    }

    /// A view on explicit engines (ipyparallel's `rc[0]`, `rc[[0, 2]]`).
    pub fn view(&self, targets: impl Into<Vec<EngineId>>) -> DirectView {
        DirectView::new(self.clone(), targets.into())
    }

    /// Asks the controller to stop with its engines (admin tokens only).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        match self.request(Request::Shutdown).await {
            Ok(Answer::ShuttingDown) | Err(ClientError::Disconnected) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            Err(err) => Err(err),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, msg: ClientMsg) -> Result<(), ClientError> {
        self.inner
            .out
            .send(msg)
            .map_err(|_| ClientError::Disconnected)
    }

    /// Sends a request under a fresh id and returns where its answer will
    /// arrive: the reader hands it the answer that names that id.
    fn start_request(
        &self,
        request: Request,
    ) -> Result<(u64, oneshot::Receiver<Answer>), ClientError> {
        let id = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            if state.closed {
                return Err(self.closed_error(&state));
            }
            state.replies.insert(id, tx);
        }
        if let Err(err) = self.send(ClientMsg::Request { id, request }) {
            self.lock().replies.remove(&id);
            return Err(err);
        }
        Ok((id, rx))
    }

    async fn request(&self, request: Request) -> Result<Answer, ClientError> {
        let (id, rx) = self.start_request(request)?;
        // Dropped before its answer came (the caller gave up): forget the
        // waiter, so that the table holds only requests someone awaits.
        let forget = ForgetRequest { client: self, id };
        let answer = rx.await;
        drop(forget);
        match answer {
            Ok(Answer::Error(message)) => Err(ClientError::Controller(message)),
            Ok(answer) => Ok(answer),
            Err(_) => Err(self.closed_error(&self.lock())),
        }
    }

    /// Why requests fail now that the connection is closed.
    fn closed_error(&self, state: &State) -> ClientError {
        match &state.closing {
            Some(reason) => ClientError::Controller(reason.clone()),
            None => ClientError::Disconnected,
        }
    }

    /// Applies a namespace operation on `targets`: one reply per target, in
    /// target order; the first engine's error fails the whole operation.
    /// A target listed twice is sent once (the controller applies an
    /// operation once per engine) and its reply repeated here.
    pub(crate) async fn namespace(
        &self,
        targets: Vec<EngineId>,
        op: NamespaceOp,
    ) -> Result<Vec<Vec<wasp_proto::Value>>, ClientError> {
        let mut distinct: Vec<EngineId> = Vec::with_capacity(targets.len());
        for target in &targets {
            if !distinct.contains(target) {
                distinct.push(*target);
            }
        }
        let request = Request::Namespace {
            targets: distinct.clone(),
            op,
        };
        let replies = match self.request(request).await? {
            Answer::Namespace(replies) if replies.len() == distinct.len() => replies,
            other => return Err(unexpected(other)),
        };
        let replies = replies
            .into_iter()
            .map(|reply| reply.map_err(ClientError::Namespace))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(targets
            .iter()
            .map(|target| {
                let i = distinct
                    .iter()
                    .position(|d| d == target)
                    .expect("every target is among the distinct ones");
                replies[i].clone()
            })
            .collect())
    }

    /// Makes sure the controller holds `module` for our tenant, uploading
    /// its bytes only if it does not.
    pub async fn ensure_module(&self, module: &Module) -> Result<(), ClientError> {
        if self.lock().uploaded.contains(&module.hash) {
            return Ok(());
        }
        let known = match self.request(Request::HasModules(vec![module.hash])).await? {
            Answer::ModulesKnown(known) => known.first().copied().unwrap_or(false),
            other => return Err(unexpected(other)),
        };
        if !known {
            match self
                .request(Request::Upload(module.bytes().to_vec()))
                .await?
            {
                Answer::Uploaded(hash) if hash == module.hash => {}
                other => return Err(unexpected(other)),
            }
        }
        self.lock().uploaded.insert(module.hash);
        Ok(())
    }

    /// A fresh task id of this session.
    pub(crate) fn next_task_id(&self) -> TaskId {
        TaskId::new(
            self.inner.session,
            self.inner.next_seq.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// Registers tasks about to be submitted and returns the channel their
    /// results will arrive on.
    pub(crate) fn expect(
        &self,
        ids: &[TaskId],
    ) -> Result<mpsc::UnboundedReceiver<Delivery>, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.lock();
        if state.closed {
            return Err(ClientError::Disconnected);
        }
        for id in ids {
            state.pending.insert(*id, tx.clone());
        }
        // Results that came first (a resubmitted task's).
        if !state.orphans.is_empty() {
            let wanted: HashSet<TaskId> = ids.iter().copied().collect();
            let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut state.orphans)
                .into_iter()
                .partition(|r| wanted.contains(&r.id));
            state.orphans = others.into();
            for result in mine {
                state.pending.remove(&result.id);
                let _ = tx.send(Delivery::Result(result));
            }
        }
        Ok(rx)
    }

    /// Hands a result to whoever awaits it, as if it had just arrived.
    pub(crate) fn deliver_now(&self, result: TaskResult) {
        if let Some(tx) = self.lock().pending.remove(&result.id) {
            let _ = tx.send(Delivery::Result(result));
        }
    }

    /// Sends a request and returns its answer (an `Answer::Error` as
    /// [`ClientError::Controller`]).
    pub(crate) async fn ask(&self, request: Request) -> Result<Answer, ClientError> {
        self.request(request).await
    }

    /// Submits tasks registered with [`Client::expect`], in one frame.
    pub(crate) fn send_tasks(&self, specs: Vec<TaskSpec>) -> Result<(), ClientError> {
        self.send(ClientMsg::Submit(specs))
    }

    /// Forgets tasks whose results are no longer awaited.
    pub(crate) fn forget(&self, ids: &[TaskId]) {
        let mut state = self.lock();
        for id in ids {
            state.pending.remove(id);
        }
    }
}

/// Removes a request's waiter when its caller stops waiting.
struct ForgetRequest<'a> {
    client: &'a Client,
    id: u64,
}

impl Drop for ForgetRequest<'_> {
    fn drop(&mut self) {
        self.client.lock().replies.remove(&self.id);
    }
}

fn unexpected(answer: Answer) -> ClientError {
    ClientError::Controller(format!("unexpected answer: {answer:?}"))
}

async fn write_requests(mut send: FramedSend, mut rx: mpsc::UnboundedReceiver<ClientMsg>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Small messages share a frame; a submit ends one, so that a frame
        // carries one slice of tasks at most.
        let last = batch.len() - 1;
        let mut frame = Vec::with_capacity(batch.len());
        for (i, msg) in batch.drain(..).enumerate() {
            let ends_frame = i == last
                || matches!(
                    msg,
                    ClientMsg::Submit(_)
                        | ClientMsg::Request {
                            request: Request::Upload(_),
                            ..
                        }
                );
            frame.push(msg);
            if ends_frame {
                if let Err(err) = send.send(&frame).await {
                    tracing::warn!(cause = %err, "could not send to the controller");
                    return;
                }
                frame.clear();
            }
        }
    }
}

async fn read_replies(mut recv: FramedRecv, inner: std::sync::Weak<Inner>) {
    loop {
        let batch = match recv.recv::<Vec<ToClient>>().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(cause = %err, "connection to the controller ended");
                break;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        for msg in batch {
            match msg {
                ToClient::Results(results) => {
                    for result in results {
                        if let Some(tx) = state.pending.remove(&result.id) {
                            let _ = tx.send(Delivery::Result(result));
                        } else if result.id.session() != inner.session {
                            if state.orphans.len() >= ORPHANS {
                                state.orphans.pop_front();
                            }
                            state.orphans.push_back(result);
                        }
                    }
                }
                ToClient::Accepted(ids) => {
                    // A map's tasks share one waiter: one delivery for a
                    // run of them, not one per task.
                    let mut run: Option<(&mpsc::UnboundedSender<Delivery>, Vec<TaskId>)> = None;
                    for id in ids {
                        let Some(tx) = state.pending.get(&id) else {
                            continue;
                        };
                        match &mut run {
                            Some((current, run_ids)) if current.same_channel(tx) => {
                                run_ids.push(id);
                            }
                            _ => {
                                if let Some((current, run_ids)) = run.replace((tx, vec![id])) {
                                    let _ = current.send(Delivery::Accepted(run_ids));
                                }
                            }
                        }
                    }
                    if let Some((current, run_ids)) = run {
                        let _ = current.send(Delivery::Accepted(run_ids));
                    }
                }
                ToClient::Answer { id, answer } => {
                    // No waiter: its caller gave up on it.
                    if let Some(waiter) = state.replies.remove(&id) {
                        let _ = waiter.send(answer);
                    }
                }
                ToClient::Closing(reason) => {
                    tracing::warn!(%reason, "the controller is closing the connection");
                    state.closing = Some(reason);
                }
            }
        }
    }
    // Wake everyone still waiting: their results will not come.
    if let Some(inner) = inner.upgrade() {
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        state.replies.clear();
        state.pending.clear();
    }
}
