//! The engine node: an engine process's life on the network.
//!
//! It dials the controller named by a connection file, says which modules
//! it already has compiled, and then runs what it is sent, one task at a
//! time (an engine is one worker, as an ipyparallel engine is): module
//! bytes are loaded (compiled and cached) in the order they arrive, always
//! before the tasks that need them, and each task's chunk runs on one fresh
//! instance, item after item. Results, with their metadata, go back as they
//! finish; a heartbeat tells the controller the engine is alive.
//!
//! A task the controller slices in beside the running one (another
//! tenant's, with `--time-slice`) does not wait in that queue: a second
//! executor runs it at once, and the two take turns at the epoch ticks
//! (`turns`), so the engine still computes one task at a time.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc};
use wasp_net::{ConnectionFile, NetError, Session};
use wasp_proto::codec::{MAX_FRAME, SLICE_AT_LEAST};
use wasp_proto::msg::{
    Arg, EngineHello, ErrorKind, FromEngine, NamespaceOp, NamespaceReply, Pulled, Role, RunTask,
    TaskError, TaskLimits, TaskMeta, TaskResult, ToEngine, Values,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant, Value};

use crate::backoff::{Attempt, Reconnect};
use crate::convert::memory_size;
use crate::error::CallError;
use crate::limits::{Limit, Limits, bytes};
use crate::runtime::{CallReport, Module, Runtime, RuntimeConfig, SetupError, TaskInstance};
use crate::sandbox::{AbortHandle, CallContext};
use crate::turns::Turns;

mod modules;
use modules::Modules;

/// The turns' lane of the engine's own queue.
const OWN_LANE: usize = 0;
/// The turns' lane of the task sliced in beside ([`Share::sliced`](wasp_proto::msg::Share::sliced)).
const SLICED_LANE: usize = 1;

/// How often the engine tells the controller it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Most messages sent in one frame.
const MAX_BATCH: usize = 256;

/// Most bytes (as [`Outgoing::size`] estimates them) sent in one frame:
/// half the frame cap, so that the estimate's slack and the batch's own
/// framing never reach the cap that the controller enforces. One message
/// larger than this goes in a frame of its own; none is, since a task's
/// results and output are capped by `result_bytes`, which
/// [`run_node`] requires to fit in this budget.
const FRAME_BUDGET: usize = MAX_FRAME / 2;

/// A message for the controller with an upper bound of its encoded size,
/// so that the writer can bound a frame by bytes, not only by count.
struct Outgoing {
    msg: FromEngine,
    size: usize,
}

/// The size estimate of a message with no payload to speak of.
const SMALL_MESSAGE: usize = 256;

impl Outgoing {
    fn small(msg: FromEngine) -> Self {
        Self {
            msg,
            size: SMALL_MESSAGE,
        }
    }
}

/// Splits messages into frames of at most [`MAX_BATCH`] messages and, unless
/// one message alone is larger, at most `budget` estimated bytes, in order;
/// each frame with its estimated bytes.
fn frames(messages: Vec<Outgoing>, budget: usize) -> Vec<(Vec<FromEngine>, usize)> {
    let mut frames = Vec::new();
    let mut frame = Vec::new();
    let mut bytes = 0usize;
    for Outgoing { msg, size } in messages {
        if !frame.is_empty() && (bytes.saturating_add(size) > budget || frame.len() >= MAX_BATCH) {
            frames.push((std::mem::take(&mut frame), bytes));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        frame.push(msg);
    }
    if !frame.is_empty() {
        frames.push((frame, bytes));
    }
    frames
}

/// Settings of an engine node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the controller is and how to prove who we are.
    pub connection: ConnectionFile,
    /// The file `connection` was read from. It is read again before every
    /// reconnect attempt, since a restarted controller rewrites it (maybe
    /// with another port or certificate); `None` reuses `connection`.
    pub connection_path: Option<PathBuf>,
    /// The runtime's limits and compile cache.
    pub runtime: RuntimeConfig,
    /// A name for status displays (`host:pid`).
    pub name: String,
    /// Most bytes (as `Value::cost_bytes` counts) one tenant's namespace may
    /// hold on this engine.
    pub namespace_bytes: usize,
    /// How long to keep trying to reach a controller after the connection
    /// is lost ([`crate::backoff::DEFAULT_RECONNECT_TIMEOUT`]); zero stops at
    /// the loss.
    pub reconnect_timeout: Duration,
}

/// The default of [`NodeConfig::namespace_bytes`].
pub const DEFAULT_NAMESPACE_BYTES: usize = 256 << 20;

/// How long one reconnect attempt may take. A dial to an address nobody
/// answers would otherwise wait for the QUIC idle timeout (30 s), during
/// which a restarted controller's new connection file goes unread; a live
/// controller answers within milliseconds on a LAN.
pub const REDIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an engine node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The runtime could not start.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The controller could not be reached at start, refused us, or sent
    /// what is not wasp's protocol.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The controller accepted us but assigned no engine id.
    #[error("the controller did not assign an engine id")]
    NoEngineId,
    /// A setting cannot work, e.g. a result limit larger than a frame.
    #[error("{0}")]
    Config(String),
    /// The connection was lost, and reconnecting is off (a zero
    /// reconnect timeout).
    #[error("lost the controller ({cause}); reconnecting is off (the reconnect timeout is 0)")]
    Lost {
        /// Why the connection ended.
        cause: String,
    },
    /// The connection was lost and no controller could be reached again
    /// within the reconnect timeout.
    #[error(
        "lost the controller ({cause}) and could not reach it again within the reconnect \
         timeout of {timeout:?} ({attempts} attempts; last: {last})"
    )]
    GaveUp {
        /// Why the connection ended.
        cause: String,
        /// How long the engine kept trying.
        timeout: Duration,
        /// How many attempts it made.
        attempts: u32,
        /// Why the last attempt failed.
        last: String,
    },
}

/// Work for the executor, in arrival order.
enum Work {
    Load(ModuleHash, Vec<u8>),
    Run(RunTask),
    Namespace(u64, Tenant, NamespaceOp, Option<u64>),
}

/// The work waiting for the executor, shared with the connection's reader
/// so that a task not yet started can be handed back to the controller
/// (work stealing) without racing the executor taking it.
#[derive(Default)]
struct WorkQueue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Work>,
    closed: bool,
    /// The task the executor took last, until it ends: an abort finds it
    /// here (under the same lock as the queue, so no abort falls between
    /// the queue and the run).
    running: Option<RunningTask>,
}

/// The task being run, and how to stop it.
struct RunningTask {
    id: TaskId,
    /// Its instance's, once it has one.
    handle: Option<AbortHandle>,
    /// An abort came before the instance did.
    aborted: bool,
}

/// What an abort found.
enum Aborted {
    /// The task was queued: here it is, never to run.
    Queued(Box<RunTask>),
    /// The task is running and will stop at the next epoch tick.
    Running,
    /// The task is not here (finished, or never came).
    Absent,
}

impl WorkQueue {
    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // Nothing panics while holding it; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, work: Work) {
        self.state().items.push_back(work);
        self.ready.notify_one();
    }

    /// No more work will come: `next` returns `None` once the queue is
    /// empty.
    fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// Takes `task` out of the queue if the executor has not started it.
    fn retract(&self, task: TaskId) -> Option<RunTask> {
        let mut state = self.state();
        let position = state
            .items
            .iter()
            .position(|work| matches!(work, Work::Run(run) if run.id == task))?;
        match state.items.remove(position) {
            Some(Work::Run(run)) => Some(run),
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.state().items.is_empty()
    }

    /// Takes the bytes of module `hash` out of the queue, if they wait
    /// there (for a lane that needs them now: see `modules`).
    fn take_load(&self, hash: ModuleHash) -> Option<Vec<u8>> {
        let mut state = self.state();
        let position = state
            .items
            .iter()
            .position(|work| matches!(work, Work::Load(h, _) if *h == hash))?;
        match state.items.remove(position) {
            Some(Work::Load(_, bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// Stops `task`: takes it out of the queue, or interrupts it if it runs.
    fn abort(&self, task: TaskId) -> Aborted {
        let mut state = self.state();
        if let Some(running) = state.running.as_mut().filter(|r| r.id == task) {
            running.aborted = true;
            if let Some(handle) = &running.handle {
                handle.abort();
            }
            return Aborted::Running;
        }
        let position = state
            .items
            .iter()
            .position(|work| matches!(work, Work::Run(run) if run.id == task));
        match position.and_then(|i| state.items.remove(i)) {
            Some(Work::Run(run)) => Aborted::Queued(Box::new(run)),
            _ => Aborted::Absent,
        }
    }

    /// The running task has an instance: an abort reaches it through
    /// `handle` (at once, if one came already).
    fn attach(&self, handle: AbortHandle) {
        let mut state = self.state();
        if let Some(running) = state.running.as_mut() {
            if running.aborted {
                handle.abort();
            }
            running.handle = Some(handle);
        }
    }

    /// The running task ended.
    fn finish_running(&self) {
        self.state().running = None;
    }

    /// The next work item, in arrival order.
    async fn next(&self) -> Option<Work> {
        loop {
            // Registered before looking, so a push in between is not missed
            // (`notify_one` also leaves a permit when nobody waits).
            let notified = self.ready.notified();
            {
                let mut state = self.state();
                if let Some(work) = state.items.pop_front() {
                    state.running = match &work {
                        Work::Run(run) => Some(RunningTask {
                            id: run.id,
                            handle: None,
                            aborted: false,
                        }),
                        _ => None,
                    };
                    return Some(work);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

/// Runs an engine until the controller says stop. Returns the engine id it
/// last ran as.
///
/// The first connection is made once: a controller that cannot be reached
/// at start is an error at once. Once joined, a connection that is lost
/// (the controller crashed, was restarted, or dropped this engine) is made
/// again with backoff for up to [`NodeConfig::reconnect_timeout`],
/// re-reading the connection file each time; only [`ToEngine::Shutdown`],
/// or the controller closing the connection as it stops on purpose, ends
/// the engine without error.
///
/// The runtime, and with it every compiled module in memory and on disk,
/// outlives the connections: a reconnected engine announces what it has
/// compiled and is not sent those modules again. Work under way at the
/// loss is abandoned (the controller requeues it), as are the namespaces,
/// which belonged to the engine id the old connection had.
pub async fn run_node(config: NodeConfig) -> Result<EngineId, NodeError> {
    // A task's results and captured output travel in one message, capped
    // by `result_bytes` (see `run_items`); a failing item adds its own
    // error and output (each stream capped by `output_bytes`).
    let limits = &config.runtime.limits;
    let largest_done = limits
        .result_bytes
        .saturating_add(limits.output_bytes.saturating_mul(3))
        .saturating_add(SMALL_MESSAGE);
    if largest_done > FRAME_BUDGET {
        return Err(NodeError::Config(format!(
            "the result size limit (result_bytes = {}) plus three times the captured output \
             limit (output_bytes = {}) must fit in {} (half the frame cap): lower them",
            bytes(limits.result_bytes),
            bytes(limits.output_bytes),
            bytes(FRAME_BUDGET)
        )));
    }
    let runtime = Runtime::new(config.runtime.clone())?;
    let mut session =
        wasp_net::dial(&config.connection, Role::Engine(hello(&config, &runtime))).await?;
    let mut engine = session.engine.ok_or(NodeError::NoEngineId)?;
    tracing::info!(%engine, "engine joined the controller");
    let mut reconnect = Reconnect::new(config.reconnect_timeout, seed());
    loop {
        let cause = match serve(session, engine, &runtime, config.namespace_bytes).await {
            Ended::Shutdown => {
                tracing::info!(%engine, "the controller said stop; engine stopping");
                return Ok(engine);
            }
            Ended::Stopped => {
                tracing::info!(%engine, "the controller stopped; engine stopping");
                return Ok(engine);
            }
            Ended::Broken(err) => return Err(err.into()),
            Ended::Lost(cause) => cause,
        };
        if !reconnect.timeout().is_zero() {
            tracing::warn!(
                %engine,
                %cause,
                timeout = ?reconnect.timeout(),
                "lost the controller; reconnecting"
            );
        }
        reconnect.lost(Instant::now());
        let (joined, id) = rejoin(&config, &runtime, &mut reconnect, cause).await?;
        tracing::info!(
            engine = %id,
            previous = %engine,
            cached = runtime.cached_hashes().len(),
            "engine rejoined the controller"
        );
        reconnect.joined();
        engine = id;
        session = joined;
    }
}

/// What an engine tells the controller it is: its name and every module
/// it has compiled, in memory or on disk, which it will not be sent again.
fn hello(config: &NodeConfig, runtime: &Runtime) -> EngineHello {
    EngineHello {
        name: config.name.clone(),
        cached: runtime.cached_hashes(),
    }
}

/// A seed for the reconnect jitter that differs between engines started
/// together, so that they spread out their attempts.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32) ^ u64::from(nanos)
}

/// Dials until a controller welcomes the engine or the reconnect policy
/// gives up.
async fn rejoin(
    config: &NodeConfig,
    runtime: &Runtime,
    reconnect: &mut Reconnect,
    cause: String,
) -> Result<(Session, EngineId), NodeError> {
    if reconnect.timeout().is_zero() {
        return Err(NodeError::Lost { cause });
    }
    let mut attempts = 0u32;
    let mut last = "none made".to_owned();
    loop {
        match reconnect.next(Instant::now()) {
            Attempt::GiveUp => {
                return Err(NodeError::GaveUp {
                    cause,
                    timeout: reconnect.timeout(),
                    attempts,
                    last,
                });
            }
            Attempt::After(delay) => tokio::time::sleep(delay).await,
        }
        attempts += 1;
        match redial(config, runtime).await {
            Ok(joined) => return Ok(joined),
            Err(err) => {
                tracing::debug!(attempt = attempts, cause = %err, "reconnect attempt failed");
                last = err;
            }
        }
    }
}

/// One reconnect attempt, with the connection file as it is now.
async fn redial(config: &NodeConfig, runtime: &Runtime) -> Result<(Session, EngineId), String> {
    let file = match &config.connection_path {
        Some(path) => ConnectionFile::read(path).map_err(|err| err.to_string())?,
        None => config.connection.clone(),
    };
    let dial = wasp_net::dial(&file, Role::Engine(hello(config, runtime)));
    let session = tokio::time::timeout(REDIAL_TIMEOUT, dial)
        .await
        .map_err(|_| format!("no answer from {} within {REDIAL_TIMEOUT:?}", file.address))?
        .map_err(|err| err.to_string())?;
    let engine = session
        .engine
        .ok_or_else(|| NodeError::NoEngineId.to_string())?;
    Ok((session, engine))
}

/// The reason wasp's controller gives when it closes its endpoint on
/// purpose, as it stops (its listener). The close may overtake the
/// [`ToEngine::Shutdown`] queued just before it, so it means the same:
/// stop, do not reconnect. A controller that crashed or was killed closes
/// nothing; its engines see the connection time out, and reconnect.
const CONTROLLER_STOPPING: &str = "controller shutting down";

/// How one connection to the controller ended.
enum Ended {
    /// The controller said stop.
    Shutdown,
    /// The controller closed the connection as it stopped on purpose.
    Stopped,
    /// The connection was lost, closed or reset, or the controller ended
    /// its stream: a controller may be back (the reason, for the log).
    Lost(String),
    /// The controller sent what is not wasp's protocol; trying again
    /// would meet the same controller.
    Broken(NetError),
}

/// Whether a failed read means the controller is gone (crashed,
/// restarted, unreachable, or dropped this engine), which a reconnect may
/// mend, rather than a peer that does not speak wasp's protocol.
fn is_lost(err: &NetError) -> bool {
    matches!(
        err,
        NetError::ConnectionLost { .. }
            | NetError::Closed { .. }
            | NetError::LocallyClosed
            | NetError::StreamReset { .. }
            | NetError::StreamStopped { .. }
            | NetError::StreamClosed
            | NetError::Timeout { .. }
    )
}

/// Serves one connection: runs what the controller sends until it says
/// stop or the connection ends.
async fn serve(
    session: Session,
    engine: EngineId,
    runtime: &Runtime,
    namespace_bytes: usize,
) -> Ended {
    let Session {
        mut send,
        mut recv,
        connection,
        ..
    } = session;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let writer = tokio::spawn(async move {
        let mut pending = Vec::new();
        while out_rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
            // Several large results queued together would otherwise make
            // one frame over the controller's cap, and the controller
            // would drop the connection with every task on it.
            for (frame, bytes) in frames(std::mem::take(&mut pending), FRAME_BUDGET) {
                // A big result goes as the bytes it is held in.
                if bytes >= SLICE_AT_LEAST {
                    send.send_in_parts(&frame).await?;
                } else {
                    send.send(&frame).await?;
                }
            }
        }
        Ok::<_, NetError>(())
    });
    let heartbeat = {
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT);
            loop {
                interval.tick().await;
                if out_tx.send(Outgoing::small(FromEngine::Heartbeat)).is_err() {
                    break;
                }
            }
        })
    };
    // The engine's own queue, and the tasks sliced in beside it
    // (`Share::sliced`), run by two executors taking turns (`turns`).
    let queue = Arc::new(WorkQueue::default());
    let sliced = Arc::new(WorkQueue::default());
    let modules = Arc::new(Modules::default());
    let lanes = Lanes {
        runtime: runtime.clone(),
        engine,
        modules: modules.clone(),
        turns: Turns::default(),
        own: queue.clone(),
        out: out_tx.clone(),
    };
    let executor = tokio::spawn(execute(lanes.clone(), namespace_bytes));
    let slicer = tokio::spawn(execute_sliced(lanes, sliced.clone()));

    let ended = loop {
        match recv.recv::<Vec<ToEngine>>().await {
            Ok(Some(batch)) => {
                let mut stop = false;
                for msg in batch {
                    let work = match msg {
                        ToEngine::Module { hash, bytes } => {
                            modules.expect(hash);
                            Work::Load(hash, Arc::unwrap_or_clone(bytes))
                        }
                        ToEngine::Run(task) if task.share.sliced => {
                            sliced.push(Work::Run(task));
                            continue;
                        }
                        ToEngine::Run(task) => Work::Run(task),
                        ToEngine::Namespace {
                            request,
                            tenant,
                            quota_bytes,
                            op,
                        } => Work::Namespace(
                            request,
                            tenant,
                            Arc::unwrap_or_clone(op).into_inner(),
                            quota_bytes,
                        ),
                        ToEngine::Retract(task) => {
                            let run = queue.retract(task).or_else(|| sliced.retract(task));
                            // A handed-back task came in a frame of its
                            // own size: it goes back in one of its own.
                            let size = if run.is_some() {
                                FRAME_BUDGET
                            } else {
                                SMALL_MESSAGE
                            };
                            let msg = FromEngine::Retracted { task, run };
                            let _ = out_tx.send(Outgoing { msg, size });
                            continue;
                        }
                        ToEngine::Abort(task) => {
                            // A queued task ends here; a running one is
                            // interrupted and its `Done` says so.
                            let found = match queue.abort(task) {
                                Aborted::Absent => sliced.abort(task),
                                found => found,
                            };
                            if let Aborted::Queued(run) = found {
                                let done = aborted(&run, engine);
                                let _ = out_tx.send(Outgoing::small(FromEngine::Done(done)));
                            }
                            continue;
                        }
                        ToEngine::Shutdown => {
                            stop = true;
                            break;
                        }
                    };
                    queue.push(work);
                }
                if stop {
                    break Ended::Shutdown;
                }
            }
            Ok(None) => break Ended::Lost("the controller ended the stream".to_owned()),
            Err(NetError::Closed { code: 0, reason }) if reason == CONTROLLER_STOPPING => {
                break Ended::Stopped;
            }
            Err(err) if is_lost(&err) => break Ended::Lost(err.to_string()),
            Err(err) => break Ended::Broken(err),
        }
    };
    heartbeat.abort();
    if matches!(ended, Ended::Shutdown) {
        // Let queued work finish and its results flush, then stop.
        queue.close();
        sliced.close();
        drop(out_tx);
        let _ = executor.await;
        let _ = slicer.await;
        let _ = writer.await;
    } else {
        // Nobody will read the results: abandon the work (the controller
        // requeues what this engine held) rather than finish it first,
        // which could take a task's whole time limit. A guest call yields
        // at every epoch tick, so the executor stops promptly.
        executor.abort();
        slicer.abort();
        writer.abort();
        let _ = executor.await;
        let _ = slicer.await;
        connection.close(0u32.into(), b"engine leaving");
    }
    ended
}

/// One tenant's namespace on this engine (ipyparallel's engine namespace).
#[derive(Default)]
struct Namespace {
    values: HashMap<String, Value>,
    bytes: usize,
}

/// What both lanes of an engine share: the runtime, the modules, the
/// turns they take, the engine's own queue and the way to the controller.
#[derive(Clone)]
struct Lanes {
    runtime: Runtime,
    engine: EngineId,
    modules: Arc<Modules>,
    turns: Turns,
    /// The engine's own queue (its lane is [`OWN_LANE`]).
    own: Arc<WorkQueue>,
    out: mpsc::UnboundedSender<Outgoing>,
}

impl Lanes {
    /// Sends a finished task's result; `false` once nobody reads them.
    fn done(&self, result: TaskResult, results_size: usize) -> bool {
        let size = done_size(&result, results_size);
        self.out
            .send(Outgoing {
                msg: FromEngine::Done(result),
                size,
            })
            .is_ok()
    }
}

/// Runs the engine's own queue, one work item at a time: modules,
/// namespace operations and tasks, in arrival order.
async fn execute(lanes: Lanes, namespace_bytes: usize) {
    let Lanes {
        runtime,
        engine,
        modules,
        turns,
        own: work,
        out,
    } = lanes.clone();
    let mut namespaces: HashMap<Tenant, Namespace> = HashMap::new();
    // A fresh instance of the last module run, made while the engine had
    // nothing to do, so that the next task of that module starts without
    // instantiating (most of a short task's time on the engine). Never
    // called before its task; the pool holds it whatever the tenant.
    let mut spare: Option<TaskInstance> = None;
    while let Some(item) = work.next().await {
        match item {
            Work::Load(hash, bytes) => modules.load(&runtime, hash, bytes).await,
            Work::Namespace(request, tenant, op, quota) => {
                let limit = NamespaceLimit::new(namespace_bytes, quota, &tenant);
                let namespace = namespaces.entry(tenant).or_default();
                let reply = match op {
                    NamespaceOp::Load(hash) => {
                        match modules.get(&runtime, engine, hash, &work).await {
                            Ok(_) => Ok(Pulled::none()),
                            Err(err) => Err(format!(
                                "engine {engine} could not load module {hash}: {err}"
                            )),
                        }
                    }
                    op => apply_namespace_op(engine, namespace, &limit, op),
                };
                let size = match &reply {
                    Ok(values) => values.byte_len(),
                    Err(message) => message.len(),
                } + SMALL_MESSAGE;
                let msg = FromEngine::Namespace { request, reply };
                if out.send(Outgoing { msg, size }).is_err() {
                    break;
                }
            }
            Work::Run(task) => {
                let namespace = namespaces.entry(task.tenant.clone()).or_default();
                let share = task.share;
                let task = match resolve_refs(engine, Some(namespace), task) {
                    Ok(task) => task,
                    Err(Unresolved::NeedsNamespace(_)) => {
                        debug_assert!(false, "a task given its namespace was handed back");
                        continue;
                    }
                    Err(Unresolved::Refused(failed)) => {
                        if !lanes.done(*failed, 0) {
                            break;
                        }
                        continue;
                    }
                };
                let module = modules.get(&runtime, engine, task.module, &work).await;
                let ran = module.as_ref().ok().cloned();
                let running = run_task(&runtime, engine, module, &task, &mut spare, &work);
                let (result, results_size, used) = turns.run(OWN_LANE, share.weight, running).await;
                work.finish_running();
                if !lanes.done(result, results_size) {
                    break;
                }
                if work.is_empty() {
                    // Let the writer send the result before the cleanup
                    // below: tearing down the used instance and making the
                    // next one complete without yielding, so they would
                    // otherwise delay the result by their whole cost.
                    tokio::task::yield_now().await;
                }
                drop(used);
                // Its arguments too: a big one is a memory file's mapping,
                // and unmapping it costs a fault's worth per page read.
                drop(task);
                if let Some(module) = ran
                    && work.is_empty()
                {
                    // Start functions are guest code: they take turns too.
                    let making = runtime.instantiate(&module, spare_context(engine));
                    spare = turns.run(OWN_LANE, share.weight, making).await.ok();
                }
            }
        }
    }
}

/// Runs the tasks sliced in beside the engine's own ([`Share::sliced`](wasp_proto::msg::Share::sliced)),
/// one at a time, taking turns with the engine's own queue. A sliced task
/// that takes references goes to the engine's own queue instead: the
/// namespace operations before it are there, and it must follow them.
async fn execute_sliced(lanes: Lanes, work: Arc<WorkQueue>) {
    while let Some(item) = work.next().await {
        let Work::Run(task) = item else {
            debug_assert!(false, "only tasks are sliced in");
            continue;
        };
        let share = task.share;
        tracing::debug!(task = %task.id, "running a task sliced in");
        let task = match resolve_refs(lanes.engine, None, task) {
            Ok(task) => task,
            Err(Unresolved::NeedsNamespace(task)) => {
                work.finish_running();
                lanes.own.push(Work::Run(*task));
                continue;
            }
            Err(Unresolved::Refused(failed)) => {
                work.finish_running();
                if !lanes.done(*failed, 0) {
                    break;
                }
                continue;
            }
        };
        let (runtime, engine) = (&lanes.runtime, lanes.engine);
        let module = lanes
            .modules
            .get(runtime, engine, task.module, &lanes.own)
            .await;
        // No spare instance: a sliced task is the exception.
        let mut no_spare = None;
        let running = run_task(runtime, engine, module, &task, &mut no_spare, &work);
        let (result, results_size, used) =
            lanes.turns.run(SLICED_LANE, share.weight, running).await;
        work.finish_running();
        if !lanes.done(result, results_size) {
            break;
        }
        // Torn down once the result is on its way, as on the own lane.
        drop((used, task));
    }
}

/// An upper bound of a finished task's encoded size: its results' memory
/// size (which no encoding exceeds: a `Value` node is larger than its
/// bincode tag and scalar), its captured output and its error text.
fn done_size(result: &TaskResult, results_size: usize) -> usize {
    let meta = &result.meta;
    let output = meta.stdout.len()
        + meta.stderr.len()
        + meta
            .logs
            .iter()
            .map(|line| line.message.len() + 16)
            .sum::<usize>();
    let error = result.outcome.as_ref().err().map_or(0, |e| e.message.len());
    SMALL_MESSAGE + results_size + output + error
}

/// Push, pull or clear in a tenant's namespace.
/// How many bytes a tenant's namespace may hold on this engine, and what
/// a refusal names: the engine's limit, or the tenant's quota below it.
struct NamespaceLimit {
    bytes: usize,
    /// The tenant whose quota `bytes` is, if it is one.
    quota_of: Option<String>,
}

impl NamespaceLimit {
    fn new(engine_limit: usize, quota: Option<u64>, tenant: &Tenant) -> Self {
        match quota.map(|q| usize::try_from(q).unwrap_or(usize::MAX)) {
            Some(quota) if quota < engine_limit => Self {
                bytes: quota,
                quota_of: Some(tenant.0.clone()),
            },
            _ => Self {
                bytes: engine_limit,
                quota_of: None,
            },
        }
    }

    /// `engine_limit` alone.
    #[cfg(test)]
    fn engine(engine_limit: usize) -> Self {
        Self {
            bytes: engine_limit,
            quota_of: None,
        }
    }

    fn describe(&self) -> String {
        match &self.quota_of {
            Some(tenant) => format!(
                "tenant {tenant}'s namespace quota (namespace_bytes = {} per engine; wasp tenant \
                 set {tenant} --max-namespace-bytes SIZE)",
                crate::limits::bytes(self.bytes)
            ),
            None => format!(
                "its limit (namespace_bytes = {})",
                crate::limits::bytes(self.bytes)
            ),
        }
    }
}

fn apply_namespace_op(
    engine: EngineId,
    namespace: &mut Namespace,
    limit: &NamespaceLimit,
    op: NamespaceOp,
) -> NamespaceReply {
    match op {
        NamespaceOp::Push(entries) => {
            // Decoded here, not by the controller, which forwards the
            // bytes; every value is checked for depth as it is decoded,
            // and the whole against the namespace limit below.
            let entries = entries.decode_sharing().map_err(|err| {
                format!("engine {engine}: the pushed values do not decode: {err}")
            })?;
            // A name given twice keeps its last value, so each name counts
            // once: what it frees now and what its last value adds.
            let mut last: HashMap<&str, &Value> = HashMap::with_capacity(entries.len());
            for (name, value) in &entries {
                last.insert(name, value);
            }
            let freed: usize = last
                .keys()
                .filter_map(|name| {
                    namespace
                        .values
                        .get(*name)
                        .map(|v| name.len() + v.cost_bytes())
                })
                .sum();
            let added: usize = last
                .iter()
                .map(|(name, v)| name.len() + v.cost_bytes())
                .sum();
            let total = namespace.bytes - freed.min(namespace.bytes) + added;
            if total > limit.bytes {
                return Err(format!(
                    "engine {engine}: the namespace would hold {total} bytes, over {}",
                    limit.describe()
                ));
            }
            namespace.bytes = total;
            namespace.values.extend(entries);
            Ok(Pulled::none())
        }
        NamespaceOp::Pull(names) => {
            // The answer travels in one frame: refuse one that could not.
            let mut size = 0usize;
            let mut values = Vec::with_capacity(names.len().min(namespace.values.len()));
            for name in &names {
                let value = namespace.values.get(name).ok_or_else(|| {
                    format!("engine {engine} has no value named {name:?} in its namespace")
                })?;
                size = size.saturating_add(memory_size(value));
                if size > FRAME_BUDGET {
                    return Err(format!(
                        "engine {engine}: the values pulled are over {} as host memory, more \
                         than one message may carry; pull fewer names at a time",
                        bytes(FRAME_BUDGET)
                    ));
                }
                values.push(value.clone());
            }
            // A big pull straight into a memory file, as a client's push.
            let typed = values.iter().map(Value::typed_bytes).sum();
            Pulled::encode_spilling(&values, wasp_net::same_host::spill_for(typed))
                .map_err(|err| format!("engine {engine}: the values pulled do not encode: {err}"))
        }
        NamespaceOp::Clear => {
            *namespace = Namespace::default();
            Ok(Pulled::none())
        }
        NamespaceOp::Load(_) => Ok(Pulled::none()),
    }
}

/// Decodes the task's argument lists and replaces every `Arg::Ref` with
/// this engine's value of that name.
fn resolve_refs(
    engine: EngineId,
    namespace: Option<&Namespace>,
    task: RunTask,
) -> Result<ResolvedTask, Unresolved> {
    let refused = |message: String| {
        let now = now_us();
        Box::new(TaskResult {
            id: task.id,
            outcome: Err(TaskError {
                kind: ErrorKind::Call,
                message,
                item: None,
            }),
            meta: TaskMeta {
                engine: Some(engine),
                started_us: now,
                completed_us: now,
                ..TaskMeta::default()
            },
        })
    };
    let lists = task.items.decode_sharing().map_err(|err| {
        Unresolved::Refused(refused(format!(
            "the task's arguments do not decode: {err}"
        )))
    })?;
    if namespace.is_none() && lists.iter().flatten().any(|arg| matches!(arg, Arg::Ref(_))) {
        return Err(Unresolved::NeedsNamespace(Box::new(task)));
    }
    let resolve = |arg| match arg {
        Arg::Value(value) => Ok(value),
        Arg::Ref(name) => namespace
            .and_then(|ns| ns.values.get(&name).cloned())
            .ok_or_else(|| {
                refused(format!(
                    "engine {engine} has no value named {name:?} in its namespace \
                 (a Reference argument)"
                ))
            }),
    };
    // Collected from the lists' own iterators, so that each list's buffer
    // is reused for its values where the types allow it.
    let items = lists
        .into_iter()
        .map(|args| {
            args.into_iter()
                .map(resolve)
                .collect::<Result<Vec<Value>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Unresolved::Refused)?;
    Ok(ResolvedTask {
        id: task.id,
        tenant: task.tenant,
        module: task.module,
        func: task.func,
        items,
        limits: task.limits,
    })
}

/// Why a task's arguments could not be made values.
enum Unresolved {
    /// They do not decode, or name a value the namespace lacks: the task
    /// fails with this result.
    Refused(Box<TaskResult>),
    /// They take references and no namespace was given (a task sliced in):
    /// here is the task, to run where its namespace is.
    NeedsNamespace(Box<RunTask>),
}

/// A task whose references are replaced by values.
struct ResolvedTask {
    id: wasp_proto::TaskId,
    tenant: Tenant,
    module: ModuleHash,
    func: String,
    items: Vec<Vec<Value>>,
    /// What the client asked for, capped by the runtime's limits.
    limits: TaskLimits,
}

/// The context of an instance made ahead of its task; its task's replaces
/// it before any call.
fn spare_context(engine: EngineId) -> CallContext {
    CallContext {
        engine_id: engine.0,
        tenant: String::new(),
        task_id: String::new(),
    }
}

/// Runs one task's chunk on one instance, item after item; the first
/// failing item fails the task. Returns the results' size (as host memory)
/// and the instance it used too; the caller tears it down, and drops the
/// task's arguments, once the result is on its way.
async fn run_task(
    runtime: &Runtime,
    engine: EngineId,
    module: Result<Arc<Module>, String>,
    task: &ResolvedTask,
    spare: &mut Option<TaskInstance>,
    queue: &WorkQueue,
) -> (TaskResult, usize, Option<TaskInstance>) {
    let mut meta = TaskMeta {
        engine: Some(engine),
        started_us: now_us(),
        ..TaskMeta::default()
    };
    let (outcome, size, used) = match module {
        Err(message) => (
            Err(TaskError {
                kind: ErrorKind::Module,
                message,
                item: None,
            }),
            0,
            None,
        ),
        Ok(module) => run_items(runtime, engine, &module, task, &mut meta, spare, queue).await,
    };
    meta.completed_us = now_us();
    let result = TaskResult {
        id: task.id,
        outcome,
        meta,
    };
    (result, size, used)
}

/// The instance a task runs on: the spare one if it is of the task's
/// module and within the task's limits, a fresh one otherwise.
async fn task_instance(
    runtime: &Runtime,
    module: &Arc<Module>,
    context: CallContext,
    limits: &Limits,
    deadline: Instant,
    spare: &mut Option<TaskInstance>,
) -> Result<TaskInstance, Box<CallReport>> {
    if let Some(mut instance) = spare.take()
        && instance.module().hash == module.hash
        && instance.set_task_limits(limits.clone(), deadline).is_ok()
    {
        instance.set_context(context);
        return Ok(instance);
    }
    runtime
        .instantiate_with(module, context, limits.clone(), deadline)
        .await
}

async fn run_items(
    runtime: &Runtime,
    engine: EngineId,
    module: &Arc<Module>,
    task: &ResolvedTask,
    meta: &mut TaskMeta,
    spare: &mut Option<TaskInstance>,
    queue: &WorkQueue,
) -> (Result<Values, TaskError>, usize, Option<TaskInstance>) {
    // The task's budget starts now and covers instantiation and every
    // item of its chunk: the deadline is the task's, not each item's.
    let started = Instant::now();
    let limits = runtime.limits().for_task(&task.limits);
    let deadline = started + limits.wall_time;
    // What it runs under, so that a retry with escalation can double it.
    meta.limits = TaskLimits {
        timeout_us: Some(u64::try_from(limits.wall_time.as_micros()).unwrap_or(u64::MAX)),
        memory_bytes: Some(limits.memory_bytes as u64),
    };
    let context = CallContext {
        engine_id: engine.0,
        tenant: task.tenant.0.clone(),
        task_id: task.id.to_string(),
    };
    let chunk = task.items.len() > 1;
    let mut instance = match task_instance(runtime, module, context, &limits, deadline, spare).await
    {
        Ok(instance) => instance,
        Err(report) => {
            meta.peak_memory_bytes = report.peak_memory_bytes as u64;
            let mut sent = 0;
            append_output(meta, &report, &mut sent, limits.result_bytes);
            return (Err(task_error(report.result.err(), None)), 0, None);
        }
    };
    queue.attach(instance.abort_handle());
    // Everything the task sends back, counted as host memory: its results
    // and its captured output together stay within the result limit, so
    // one task's message always fits in a frame (`run_node` checks the
    // limit against the frame cap) and an oversize chunk fails on its own.
    let cap = limits.result_bytes;
    let mut sent = 0usize;
    let mut results_size = 0usize;
    let mut values = Vec::with_capacity(task.items.len());
    let mut clock = started;
    for (i, args) in task.items.iter().enumerate() {
        let (report, ended) = instance.call_from(clock, &task.func, args).await;
        clock = ended;
        meta.peak_memory_bytes = report.peak_memory_bytes as u64;
        let item = chunk.then(|| u32::try_from(i).unwrap_or(u32::MAX));
        let fits = append_output(meta, &report, &mut sent, cap);
        match report.result {
            Ok(value) => {
                let size = value.as_ref().map_or(0, memory_size);
                sent = sent.saturating_add(size);
                if !fits || sent > cap {
                    let error = TaskError {
                        kind: ErrorKind::Limit,
                        message: format!(
                            "task exceeded the {}: the results and captured output of its \
                             first {} items pass it, counted as host memory",
                            Limit::ResultBytes(cap),
                            i + 1
                        ),
                        item,
                    };
                    return (Err(error), 0, Some(instance));
                }
                results_size += size;
                values.push(value);
            }
            Err(err) => return (Err(task_error(Some(err), item)), 0, Some(instance)),
        }
    }
    // Big results straight into a memory file, as a client's arguments.
    let typed = values.iter().flatten().map(Value::typed_bytes).sum();
    let spill = wasp_net::same_host::spill_for(typed);
    let packed = Values::encode_spilling(&values, spill).map_err(|err| TaskError {
        kind: ErrorKind::Limit,
        message: format!("the results could not be sent: {err}"),
        item: None,
    });
    (packed, results_size, Some(instance))
}

/// Adds a call's captured output to the task's metadata if it keeps what
/// the task sends within `cap` (counting in `sent`); returns whether it
/// did. Output that does not fit is dropped and said so in `stderr`.
fn append_output(meta: &mut TaskMeta, report: &CallReport, sent: &mut usize, cap: usize) -> bool {
    let size = report.stdout.len()
        + report.stderr.len()
        + report
            .logs
            .iter()
            .map(|line| line.message.len())
            .sum::<usize>();
    if sent.saturating_add(size) > cap {
        meta.stderr.push_str(&format!(
            "\nwasp: output dropped at the {}\n",
            Limit::ResultBytes(cap)
        ));
        return false;
    }
    *sent += size;
    meta.stdout
        .push_str(&String::from_utf8_lossy(&report.stdout));
    meta.stderr
        .push_str(&String::from_utf8_lossy(&report.stderr));
    meta.logs.extend(report.logs.iter().cloned());
    true
}

fn task_error(err: Option<CallError>, item: Option<u32>) -> TaskError {
    let Some(err) = err else {
        return TaskError {
            kind: ErrorKind::Trap,
            message: "the call failed without an error".into(),
            item,
        };
    };
    let kind = match &err {
        CallError::Find(_)
        | CallError::Signature(_)
        | CallError::ArgumentJson { .. }
        | CallError::Unsupported(_) => ErrorKind::Call,
        CallError::Limit {
            limit: Limit::WallTime(_),
            ..
        } => ErrorKind::Timeout,
        CallError::Limit {
            limit: Limit::MemoryBytes(_),
            ..
        } => ErrorKind::Memory,
        CallError::Limit { .. } => ErrorKind::Limit,
        CallError::Trap { .. } | CallError::Instantiate(_) => ErrorKind::Trap,
        CallError::Aborted => ErrorKind::Aborted,
    };
    TaskError {
        kind,
        message: err.to_string(),
        item,
    }
}

/// The `Done` of a task aborted before it started.
fn aborted(run: &RunTask, engine: EngineId) -> TaskResult {
    TaskResult {
        id: run.id,
        outcome: Err(TaskError {
            kind: ErrorKind::Aborted,
            message: "the task was aborted by a client before it started".into(),
            item: None,
        }),
        meta: TaskMeta {
            engine: Some(engine),
            ..TaskMeta::default()
        },
    }
}

/// Microseconds since the Unix epoch: the clock all task metadata uses.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasp_proto::msg::{Entries, Items, Share};

    fn sliced_task(args: Vec<Arg>) -> RunTask {
        RunTask {
            id: TaskId::new(1, 1),
            tenant: Tenant("t".into()),
            module: ModuleHash::of(b"m"),
            func: "f".into(),
            items: Items::encode(&[args]).expect("encodes"),
            limits: TaskLimits::default(),
            share: Share {
                sliced: true,
                weight: 1,
            },
        }
    }

    #[test]
    fn a_sliced_task_with_references_is_handed_back_for_its_namespace() {
        let engine = EngineId(0);
        let task = sliced_task(vec![Arg::Value(Value::S64(2)), Arg::Ref("x".into())]);
        let Err(Unresolved::NeedsNamespace(back)) = resolve_refs(engine, None, task) else {
            panic!("a reference resolved without a namespace");
        };
        // Where its namespace is, it resolves.
        let mut namespace = Namespace::default();
        namespace.values.insert("x".into(), Value::S64(7));
        let Ok(resolved) = resolve_refs(engine, Some(&namespace), *back) else {
            panic!("the handed-back task did not resolve");
        };
        assert_eq!(resolved.items, vec![vec![Value::S64(2), Value::S64(7)]]);
        // Without references, no namespace is needed.
        let plain = sliced_task(vec![Arg::Value(Value::S64(3))]);
        let Ok(resolved) = resolve_refs(engine, None, plain) else {
            panic!("a task of values needs no namespace");
        };
        assert_eq!(resolved.items, vec![vec![Value::S64(3)]]);
    }

    fn push(namespace: &mut Namespace, limit: usize, entries: &[(&str, Value)]) -> NamespaceReply {
        let entries: Vec<_> = entries
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let limit = NamespaceLimit::engine(limit);
        let entries = Entries::encode(&entries).expect("encodes");
        apply_namespace_op(EngineId(0), namespace, &limit, NamespaceOp::Push(entries))
    }

    fn held(namespace: &Namespace) -> usize {
        namespace
            .values
            .iter()
            .map(|(name, value)| name.len() + value.cost_bytes())
            .sum()
    }

    #[test]
    fn a_name_repeated_in_one_push_counts_once() {
        // Issue 10: a name given k times freed its old value k times, so
        // the cap could be bypassed without limit. Fails on main: the
        // second push is accepted and the count drifts below what is held.
        let big = Value::String("x".repeat(600));
        let limit = 1000;
        let mut namespace = Namespace::default();
        push(&mut namespace, limit, &[("a", big.clone())]).expect("fits");
        let tiny = Value::Bool(true);
        let repeated: Vec<(&str, Value)> = std::iter::repeat_n(("a", tiny), 5)
            .chain([("c", big.clone())])
            .collect();
        let reply = push(&mut namespace, limit, &repeated);
        assert_eq!(namespace.bytes, held(&namespace));
        assert!(reply.is_ok(), "a then c fit: {reply:?}");
        let reply = push(&mut namespace, limit, &[("b", big.clone()), ("b", big)]);
        assert!(reply.is_err(), "b does not fit beside c");
        assert_eq!(namespace.bytes, held(&namespace));
        assert!(namespace.bytes <= limit);
    }

    #[test]
    fn frames_are_bounded_by_bytes_and_count() {
        let large = |n| {
            (0..n)
                .map(|_| Outgoing {
                    msg: FromEngine::Heartbeat,
                    size: 60,
                })
                .collect()
        };
        let sizes: Vec<usize> = frames(large(5), 150).iter().map(|f| f.0.len()).collect();
        // 60 + 60 fit in 150; a third would not.
        assert_eq!(sizes, vec![2, 2, 1]);
        // One message over the budget goes alone.
        let alone = frames(
            vec![
                Outgoing::small(FromEngine::Heartbeat),
                Outgoing {
                    msg: FromEngine::Heartbeat,
                    size: 1000,
                },
                Outgoing::small(FromEngine::Heartbeat),
            ],
            300,
        );
        assert_eq!(
            alone.iter().map(|f| f.0.len()).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
        let many = frames(large(600), usize::MAX);
        assert_eq!(
            many.iter().map(|f| f.0.len()).collect::<Vec<_>>(),
            vec![256, 256, 88]
        );
    }

    #[test]
    fn a_tenants_namespace_quota_below_the_engines_limit_is_named() {
        let bob = Tenant("bob".into());
        let mut namespace = Namespace::default();
        let limit = NamespaceLimit::new(1 << 20, Some(100), &bob);
        let big = Value::String("x".repeat(200));
        let entries = vec![("a".to_owned(), big)];
        let refused = apply_namespace_op(
            EngineId(3),
            &mut namespace,
            &limit,
            NamespaceOp::Push(Entries::encode(&entries).expect("encodes")),
        );
        let message = refused.expect_err("over the quota");
        assert!(
            message.contains("tenant bob's namespace quota (namespace_bytes = 100 B per engine"),
            "{message}"
        );
        assert!(
            namespace.values.is_empty(),
            "nothing of a refused push is kept"
        );
        // A quota above the engine's own limit changes nothing.
        let loose = NamespaceLimit::new(1 << 20, Some(1 << 30), &bob);
        assert_eq!(loose.bytes, 1 << 20);
        assert!(loose.quota_of.is_none());
    }
}
