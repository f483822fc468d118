//! [`Client`]: a connection to a controller (ipyparallel's `Client`).
//!
//! One reader task routes what the controller sends: task results to the
//! [`AsyncResult`](crate::AsyncResult) waiting for them, answers to the
//! request whose id they carry (the controller answers some requests at
//! once and others when engines have replied, so arrival order pairs
//! nothing). One writer task sends requests, many to a frame.
//!
//! A client whose controller goes away (killed, restarted by its
//! supervisor, cut off) dials it again with backoff, for up to its
//! reconnect timeout, under a new session: what it waits for goes on.
//! Every task it still awaits is asked for again (`get_result`, which
//! subscribes the new session to the unfinished ones), so an accepted
//! task's result arrives whatever restarted; a task the controller had not
//! committed before it was lost fails with [`ErrorKind::NotAccepted`]
//! (nothing ran: submit it again), and so does a submission made while the
//! client was reconnecting under its old session's ids. Requests in flight
//! at the loss fail with [`ClientError::Disconnected`]. A controller that
//! closes the connection itself (its shutdown, a refusal) is not dialled
//! again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use wasp_net::backoff::{Attempt, DEFAULT_RECONNECT_TIMEOUT, Reconnect};
use wasp_net::{ConnectionFile, FramedRecv, FramedSend, NetError, Profile, Session};
use wasp_proto::db::{DbAnswer, DbRequest, MAX_IDS, ResultLookup};
use wasp_proto::msg::{
    Answer, ClientMsg, ClusterStatus, ErrorKind, NamespaceOp, Request, Role, Submission, TaskError,
    TaskMeta, TaskResult, TaskSpec, ToClient,
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
use wasp_proto::codec::SLICE_AT_LEAST;
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant};

use crate::error::ClientError;
use crate::module::Module;
use crate::view::{DirectView, LoadBalancedView};

/// Most requests written in one frame.
const MAX_BATCH: usize = 256;

/// How long the reader may go on after the writer failed: a closed
/// connection ends it at once; this only bounds a stream that lingers.
const DRAIN: Duration = Duration::from_secs(2);

/// A connection to a wasp controller. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    tenant: Tenant,
    /// Where the controller is, to dial it again after losing it.
    file: ConnectionFile,
    out: mpsc::UnboundedSender<ClientMsg>,
    state: Mutex<State>,
    /// The id of the next task: this connection's session number in the
    /// high half, a sequence number in the low half. One atomic, so that
    /// a reconnect (a new session, its numbers from 0) and a submission
    /// at the same moment never make an id twice.
    next_task: AtomicU64,
    /// The id of the next request.
    next_request: AtomicU64,
    /// How long to keep dialling a lost controller, in milliseconds (0:
    /// never reconnect).
    reconnect_timeout_ms: AtomicU64,
}

/// The connection of the moment, replaced by a reconnect.
struct Link {
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
    /// The connection in use (`None` only once closed for good).
    link: Option<Link>,
    /// Times the client reconnected to its controller.
    reconnects: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = &state.link {
            link.connection.close(0u32.into(), b"client closed");
        }
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
    ///
    /// The client reconnects to a controller it loses for up to
    /// [`DEFAULT_RECONNECT_TIMEOUT`] (see the module's documentation and
    /// [`Client::set_reconnect_timeout`]).
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
            tenant,
            file: file.clone(),
            out,
            state: Mutex::new(State {
                link: Some(Link {
                    connection,
                    _endpoint: endpoint,
                }),
                ..State::default()
            }),
            next_task: AtomicU64::new(TaskId::new(session, 0).0),
            next_request: AtomicU64::new(0),
            reconnect_timeout_ms: AtomicU64::new(millis(DEFAULT_RECONNECT_TIMEOUT)),
        });
        tokio::spawn(serve(Arc::downgrade(&inner), out_rx, send, recv));
        Ok(Self { inner })
    }

    /// How long the client keeps dialling a controller it lost before it
    /// gives up and fails what it waits for ([`ClientError::Disconnected`]);
    /// zero never reconnects.
    pub fn set_reconnect_timeout(&self, timeout: Duration) {
        self.inner
            .reconnect_timeout_ms
            .store(millis(timeout), Ordering::Relaxed);
    }

    /// How many times the client has reconnected to its controller.
    pub fn reconnects(&self) -> u64 {
        self.lock().reconnects
    }

    /// The session number of the connection in use (a reconnect gets a
    /// new one); the high half of the ids of tasks submitted now.
    pub fn session(&self) -> u32 {
        TaskId(self.inner.next_task.load(Ordering::Relaxed)).session()
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
            // The controller closing as it stops may overtake its answer.
            Err(ClientError::Controller(reason)) if reason == wasp_net::CONTROLLER_STOPPING => {
                Ok(())
            }
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
            .map(|reply| {
                reply
                    .map_err(ClientError::Namespace)?
                    .decode()
                    .map_err(|err| {
                        ClientError::Namespace(format!("the values pulled do not decode: {err}"))
                    })
            })
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
        TaskId(self.inner.next_task.fetch_add(1, Ordering::Relaxed))
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

    /// Submits tasks registered with [`Client::expect`], in one frame: a
    /// slice of `submission`.
    pub(crate) fn send_tasks(
        &self,
        submission: Submission,
        specs: Vec<TaskSpec>,
    ) -> Result<(), ClientError> {
        self.send(ClientMsg::Submit { submission, specs })
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

/// `timeout` in whole milliseconds, saturating.
fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

/// Carries the client's messages over its connection, and over the next
/// one each time the controller is lost and reached again, until every
/// handle on the client is gone or it gives up on the controller.
async fn serve(
    inner: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<ClientMsg>,
    mut send: FramedSend,
    mut recv: FramedRecv,
) {
    loop {
        tokio::select! {
            () = read_replies(&mut recv, &inner) => {}
            open = write_requests(&mut send, &mut rx, &inner) => {
                if !open {
                    // Every handle on the client is gone.
                    return;
                }
                // The writer failed first (the controller closed the
                // connection under a frame it refused): what the
                // controller sent before the end, a reason among it, is
                // still read, for as long as the connection lasts.
                let _ = tokio::time::timeout(DRAIN, read_replies(&mut recv, &inner)).await;
            }
        }
        let Some(timeout) = reconnect_timeout(&inner) else {
            keep_close_reason(&inner);
            close(&inner);
            return;
        };
        match redial(&inner, timeout).await {
            Some((new_send, new_recv)) => {
                send = new_send;
                recv = new_recv;
            }
            None => {
                close(&inner);
                return;
            }
        }
    }
}

/// How long to try to reach the controller again, or `None` if the client
/// should not: it is gone, reconnecting is off, or the controller closed
/// the connection itself (its shutdown, a refusal, a reason it gave).
fn reconnect_timeout(inner: &Weak<Inner>) -> Option<Duration> {
    let inner = inner.upgrade()?;
    let timeout = Duration::from_millis(inner.reconnect_timeout_ms.load(Ordering::Relaxed));
    let state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    if timeout.is_zero() || state.closing.is_some() {
        return None;
    }
    match state.link.as_ref()?.connection.close_reason() {
        // The controller went away without a word (killed: its successor
        // resets the connection, or nobody answers): dial again.
        Some(quinn::ConnectionError::Reset | quinn::ConnectionError::TimedOut) => Some(timeout),
        // It closed the connection on purpose, or the stream broke on a
        // live connection (a protocol error): nothing to come back to.
        _ => None,
    }
}

/// Keeps the reason a controller gave when it closed the connection (its
/// tenant removed, a refusal), for the errors of what still waits.
fn keep_close_reason(inner: &Weak<Inner>) {
    let Some(inner) = inner.upgrade() else { return };
    let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    if state.closing.is_some() {
        return;
    }
    if let Some(quinn::ConnectionError::ApplicationClosed(close)) = state
        .link
        .as_ref()
        .and_then(|link| link.connection.close_reason())
        && !close.reason.is_empty()
    {
        state.closing = Some(String::from_utf8_lossy(&close.reason).into_owned());
    }
}

/// Dials the controller with backoff for up to `timeout`; on success the
/// new connection is in use and every task still awaited is asked for
/// again. `None` if it gave up, was refused, or the client is gone.
async fn redial(inner: &Weak<Inner>, timeout: Duration) -> Option<(FramedSend, FramedRecv)> {
    let file = {
        let inner = inner.upgrade()?;
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        // Requests in flight may be lost with the connection: their
        // callers hear so now rather than wait for ever. Requests made
        // from now on wait in the channel for the next connection.
        state.replies.clear();
        inner.file.clone()
    };
    tracing::warn!(
        timeout_s = timeout.as_secs_f64(),
        "lost the controller; reconnecting"
    );
    let seed = u64::from(std::process::id()) ^ millis(timeout);
    let mut policy = Reconnect::new(timeout, seed);
    policy.lost(Instant::now());
    let session = loop {
        match policy.next(Instant::now()) {
            Attempt::GiveUp => {
                tracing::warn!(
                    timeout_s = timeout.as_secs_f64(),
                    "gave up reconnecting to the controller"
                );
                return None;
            }
            Attempt::After(delay) => tokio::time::sleep(delay).await,
        }
        // Nobody holds the client any more: stop dialling.
        inner.upgrade()?;
        match wasp_net::dial(&file, Role::Client).await {
            Ok(session) => break session,
            Err(NetError::Rejected { reason }) => {
                tracing::warn!(%reason, "the controller refused the reconnection");
                if let Some(inner) = inner.upgrade() {
                    inner
                        .state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .closing = Some(reason);
                }
                return None;
            }
            Err(err) => tracing::debug!(cause = %err, "the controller is not back yet"),
        }
    };
    let inner = inner.upgrade()?;
    let Session {
        endpoint,
        connection,
        send,
        recv,
        session,
        ..
    } = session;
    inner
        .next_task
        .store(TaskId::new(session, 0).0, Ordering::Relaxed);
    let awaited: Vec<TaskId> = {
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.link = Some(Link {
            connection,
            _endpoint: endpoint,
        });
        state.reconnects += 1;
        // Tasks of the new session were never sent on the lost connection
        // (and one may be between its registration and its submission).
        state
            .pending
            .keys()
            .copied()
            .filter(|id| id.session() != session)
            .collect()
    };
    tracing::info!(
        session,
        awaited = awaited.len(),
        "reconnected to the controller"
    );
    tokio::spawn(ask_again(Client { inner }, awaited));
    Some((send, recv))
}

/// Asks a reconnected controller for tasks still awaited: finished ones
/// are delivered, unfinished ones will be (the new session is subscribed
/// to them), and those it has no record of were never accepted.
async fn ask_again(client: Client, awaited: Vec<TaskId>) {
    for ids in awaited.chunks(MAX_IDS) {
        let found = match client
            .ask(Request::Db(DbRequest::GetResults(ids.to_vec())))
            .await
        {
            Ok(Answer::Db(DbAnswer::Results(found))) if found.len() == ids.len() => found,
            // Lost again (the next reconnect asks again), or an answer
            // that makes no sense: the tasks stay awaited.
            other => {
                tracing::warn!(answer = ?other.map(|_| ()), "could not ask the controller for awaited tasks again");
                return;
            }
        };
        for (id, lookup) in ids.iter().zip(found) {
            match lookup {
                ResultLookup::Finished(result) => client.deliver_now(*result),
                ResultLookup::NotFound => client.deliver_now(not_accepted(*id)),
                ResultLookup::Pending(_) => {}
            }
        }
    }
}

/// The failure of a task whose submission the controller never committed.
fn not_accepted(id: TaskId) -> TaskResult {
    TaskResult {
        id,
        outcome: Err(TaskError {
            kind: ErrorKind::NotAccepted,
            message: "the connection to the controller was lost before the controller accepted \
                      this task (its submission was not committed), so it did not run; \
                      submit it again"
                .into(),
            item: None,
        }),
        meta: TaskMeta::default(),
    }
}

/// Fails everything still waiting: the client is closed for good.
fn close(inner: &Weak<Inner>) {
    if let Some(inner) = inner.upgrade() {
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        state.replies.clear();
        state.pending.clear();
    }
}

/// Writes requests until the connection fails (returns `true`) or every
/// handle on the client is gone (`false`). A submission of tasks numbered
/// in an earlier session (made while the client was reconnecting) is not
/// sent, since the controller would refuse ids of another session: its
/// tasks fail as not accepted.
async fn write_requests(
    send: &mut FramedSend,
    rx: &mut mpsc::UnboundedReceiver<ClientMsg>,
    inner: &Weak<Inner>,
) -> bool {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        stale_submissions_fail(&mut batch, inner);
        if batch.is_empty() {
            continue;
        }
        // Small messages share a frame; a submit ends one, so that a frame
        // carries one slice of tasks at most.
        let last = batch.len() - 1;
        let mut frame = Vec::with_capacity(batch.len());
        let mut big = false;
        for (i, msg) in batch.drain(..).enumerate() {
            let ends_frame = i == last
                || matches!(
                    msg,
                    ClientMsg::Submit { .. }
                        | ClientMsg::Request {
                            request: Request::Upload(_),
                            ..
                        }
                );
            big |= may_carry_big_lists(&msg);
            frame.push(msg);
            if ends_frame {
                let sent = if big {
                    send.send_in_parts(&frame).await
                } else {
                    send.send(&frame).await
                };
                if let Err(err) = sent {
                    tracing::debug!(cause = %err, "could not send to the controller");
                    return true;
                }
                frame.clear();
                big = false;
            }
        }
    }
    false
}

/// Whether `msg` may hold a list big enough to travel as its own part of
/// the frame ([`FramedSend::send_in_parts`]): a task's arguments of
/// [`SLICE_AT_LEAST`] or more, or a namespace request (a push).
fn may_carry_big_lists(msg: &ClientMsg) -> bool {
    match msg {
        ClientMsg::Submit { specs, .. } => specs
            .iter()
            .any(|spec| spec.items.byte_len() >= SLICE_AT_LEAST),
        ClientMsg::Request { request, .. } => matches!(request, Request::Namespace { .. }),
    }
}

/// Drops from `batch` the submissions numbered in an earlier session and
/// fails their tasks as not accepted.
fn stale_submissions_fail(batch: &mut Vec<ClientMsg>, inner: &Weak<Inner>) {
    let Some(inner) = inner.upgrade() else { return };
    let session = TaskId(inner.next_task.load(Ordering::Relaxed)).session();
    let stale = |msg: &ClientMsg| {
        matches!(msg, ClientMsg::Submit { specs, .. }
            if specs.first().is_some_and(|spec| spec.id.session() != session))
    };
    if !batch.iter().any(stale) {
        return;
    }
    let client = Client { inner };
    batch.retain(|msg| {
        if let ClientMsg::Submit { specs, .. } = msg
            && stale(msg)
        {
            for spec in specs {
                client.deliver_now(not_accepted(spec.id));
            }
            return false;
        }
        true
    });
}

/// Routes what the controller sends until the connection ends.
async fn read_replies(recv: &mut FramedRecv, inner: &Weak<Inner>) {
    loop {
        let batch = match recv.recv::<Vec<ToClient>>().await {
            Ok(Some(batch)) => batch,
            Ok(None) => return,
            Err(err) => {
                tracing::debug!(cause = %err, "connection to the controller ended");
                return;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let session = TaskId(inner.next_task.load(Ordering::Relaxed)).session();
        let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
        for msg in batch {
            match msg {
                ToClient::Results(results) => {
                    for result in results {
                        if let Some(tx) = state.pending.remove(&result.id) {
                            let _ = tx.send(Delivery::Result(result));
                        } else if result.id.session() != session {
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
}
