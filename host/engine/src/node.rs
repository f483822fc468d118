//! The engine node: an engine process's life on the network.
//!
//! It dials the controller named by a connection file, says which modules
//! it already has compiled and how many engines it serves (its slots,
//! `wasp engine --slots N`), and then runs what each is sent. Each slot is
//! an engine as ipyparallel's is: its own engine id, namespaces and queue,
//! one task at a time. The slots share the process's runtime (one wasmtime
//! engine), its compiled modules and one connection, so an engine more
//! costs its queue and its instances, not a process.
//!
//! Module bytes are compiled as they arrive, for every slot at once,
//! always before the tasks that need them; each task's chunk runs on one
//! fresh instance, item after item. Results, with their metadata, go back
//! as they finish; a heartbeat per slot tells the controller it is alive.
//!
//! A task the controller slices in beside a slot's running one (another
//! tenant's, with `--time-slice`) does not wait in that queue: a second
//! executor runs it at once, and the two take turns at the epoch ticks
//! (`turns`), so the slot still computes one task at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use wasp_net::{CONTROLLER_STOPPING, NetError, Session};
use wasp_proto::codec::{MAX_FRAME, SLICE_AT_LEAST};
use wasp_proto::msg::{
    Arg, ErrorKind, FromEngine, MAX_SLOTS, NamespaceOp, Pulled, RunTask, Slotted, TaskError,
    TaskLimits, TaskMeta, TaskResult, ToEngine, Values,
};
use wasp_proto::{EngineId, ModuleHash, Tenant, Value};

use crate::backoff::Reconnect;
use crate::convert::memory_size;
use crate::error::CallError;
use crate::limits::{Limit, Limits, bytes};
use crate::runtime::{CallReport, Module, Runtime, RuntimeConfig, SetupError, TaskInstance};
use crate::sandbox::CallContext;
use crate::turns::Turns;

mod join;
mod memory;
mod modules;
mod namespace;
mod queue;
pub use join::ConnectionSource;
use join::Joined;
use modules::Modules;
use namespace::{Namespace, NamespaceLimit, apply_namespace_op};
use queue::{Aborted, Work, WorkQueue};

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

/// A message for the controller from one slot, with an upper bound of its
/// encoded size, so that the writer can bound a frame by bytes, not only
/// by count.
struct Outgoing {
    msg: Slotted<FromEngine>,
    size: usize,
}

/// The size estimate of a message with no payload to speak of.
const SMALL_MESSAGE: usize = 256;

/// Splits messages into frames of at most [`MAX_BATCH`] messages and, unless
/// one message alone is larger, at most `budget` estimated bytes, in order;
/// each frame with its estimated bytes.
fn frames(messages: Vec<Outgoing>, budget: usize) -> Vec<(Vec<Slotted<FromEngine>>, usize)> {
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

/// One slot's way to the controller: its messages, marked with its slot,
/// into the connection's writer.
#[derive(Clone)]
struct SlotOut {
    slot: u32,
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl SlotOut {
    /// Queues `msg`, of at most `size` encoded bytes; `false` once nobody
    /// reads them (the connection ended).
    fn send(&self, msg: FromEngine, size: usize) -> bool {
        let msg = Slotted {
            slot: self.slot,
            msg,
        };
        self.tx.send(Outgoing { msg, size }).is_ok()
    }

    /// Queues a message with no payload to speak of.
    fn small(&self, msg: FromEngine) -> bool {
        self.send(msg, SMALL_MESSAGE)
    }
}

/// Settings of an engine node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the controller is and how to prove who we are.
    pub connection: ConnectionSource,
    /// The runtime's limits and compile cache.
    pub runtime: RuntimeConfig,
    /// A name for status displays (`host:pid`); a process of several slots
    /// shows as `host:pid#slot`.
    pub name: String,
    /// How many engines this process serves (1 to [`MAX_SLOTS`]).
    pub slots: u32,
    /// Most bytes (as `Value::cost_bytes` counts) one tenant's namespace may
    /// hold on each engine.
    pub namespace_bytes: usize,
    /// How long to wait at start for a controller: for the connection
    /// file to appear and a controller to answer, with backoff
    /// (ipyparallel's registration timeout). Zero makes one attempt.
    pub start_timeout: Duration,
    /// How long to keep trying to reach a controller after the connection
    /// is lost ([`crate::backoff::DEFAULT_RECONNECT_TIMEOUT`]); zero stops at
    /// the loss.
    pub reconnect_timeout: Duration,
}

/// The default of [`NodeConfig::namespace_bytes`].
pub const DEFAULT_NAMESPACE_BYTES: usize = 256 << 20;

/// How long one attempt to join may take. A dial to an address nobody
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
    /// The controller accepted us but assigned another number of engine
    /// ids than the slots asked for.
    #[error("asked the controller for {asked} engine ids and was given {given}")]
    WrongEngineIds {
        /// The slots asked for.
        asked: u32,
        /// The ids given.
        given: usize,
    },
    /// A setting cannot work, e.g. a result limit larger than a frame.
    #[error("{0}")]
    Config(String),
    /// No controller answered within the start timeout.
    #[error(
        "could not reach a controller within the start timeout of {timeout:?} ({attempts} \
         attempts; last: {last}); start the controller first, or wait longer with \
         --start-timeout"
    )]
    NeverJoined {
        /// How long the engine kept trying.
        timeout: Duration,
        /// How many attempts it made.
        attempts: u32,
        /// Why the last attempt failed.
        last: String,
    },
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

/// Runs an engine process of [`NodeConfig::slots`] engines until the
/// controller says stop. Returns the engine ids it last ran as.
///
/// At start it waits up to [`NodeConfig::start_timeout`] for a controller
/// to answer (a controller that refuses it is an error at once). Once
/// joined, a connection that is lost (the controller crashed, was
/// restarted, or dropped this process) is made again with backoff for up
/// to [`NodeConfig::reconnect_timeout`], re-reading the connection file
/// each time; only [`ToEngine::Shutdown`] to every slot, or the controller
/// closing the connection as it stops on purpose, ends the engine without
/// error.
///
/// The runtime, and with it every compiled module in memory and on disk,
/// outlives the connections: a reconnected engine announces what it has
/// compiled and is not sent those modules again. Work under way at the
/// loss is abandoned (the controller requeues it), as are the namespaces,
/// which belonged to the engine ids the old connection had.
pub async fn run_node(config: NodeConfig) -> Result<Vec<EngineId>, NodeError> {
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
    if !(1..=MAX_SLOTS).contains(&config.slots) {
        return Err(NodeError::Config(format!(
            "--slots {} is out of range: an engine process serves 1 to {MAX_SLOTS} engines",
            config.slots
        )));
    }
    let runtime = Runtime::new(config.runtime.clone())?;
    let Joined {
        mut session,
        mut engines,
    } = join::start(&config, &runtime).await?;
    tracing::info!(engines = %ids(&engines), "engine joined the controller");
    let mut reconnect = Reconnect::new(config.reconnect_timeout, join::seed());
    loop {
        let cause = match serve(session, &engines, &runtime, config.namespace_bytes).await {
            Ended::Shutdown => {
                tracing::info!(engines = %ids(&engines), "the controller said stop; engine stopping");
                return Ok(engines);
            }
            Ended::Stopped => {
                tracing::info!(engines = %ids(&engines), "the controller stopped; engine stopping");
                return Ok(engines);
            }
            Ended::Broken(err) => return Err(err.into()),
            Ended::Lost(cause) => cause,
        };
        if !reconnect.timeout().is_zero() {
            tracing::warn!(
                engines = %ids(&engines),
                %cause,
                timeout = ?reconnect.timeout(),
                "lost the controller; reconnecting"
            );
        }
        reconnect.lost(Instant::now());
        let joined = join::rejoin(&config, &runtime, &mut reconnect, cause).await?;
        tracing::info!(
            engines = %ids(&joined.engines),
            previous = %ids(&engines),
            cached = runtime.cached_hashes().len(),
            "engine rejoined the controller"
        );
        reconnect.joined();
        engines = joined.engines;
        session = joined.session;
    }
}

/// Engine ids for the log: `3`, or `3-102` for an ascending run of
/// consecutive ids (what the controller assigns), else each.
fn ids(engines: &[EngineId]) -> String {
    let consecutive = engines
        .windows(2)
        .all(|pair| pair[0].0.checked_add(1) == Some(pair[1].0));
    match engines {
        [] => "none".to_owned(),
        [one] => one.to_string(),
        [first, .., last] if consecutive => format!("{first}-{last}"),
        many => many
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// How one connection to the controller ended.
enum Ended {
    /// The controller said stop to every slot.
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

/// One engine of the process while a connection lasts: its queue, the
/// task sliced in beside it, and their two executors.
struct Slot {
    engine: EngineId,
    out: SlotOut,
    queue: Arc<WorkQueue>,
    sliced: Arc<WorkQueue>,
    /// Said stop: takes no more work, finishes what it has.
    stopping: bool,
    executor: JoinHandle<()>,
    slicer: JoinHandle<()>,
}

impl Slot {
    fn start(
        engine: EngineId,
        out: SlotOut,
        runtime: &Runtime,
        modules: &Arc<Modules>,
        namespace_bytes: usize,
    ) -> Self {
        let queue = Arc::new(WorkQueue::default());
        let sliced = Arc::new(WorkQueue::default());
        let lanes = Lanes {
            runtime: runtime.clone(),
            engine,
            modules: modules.clone(),
            turns: Turns::default(),
            own: queue.clone(),
            out: out.clone(),
        };
        let executor = tokio::spawn(execute(lanes.clone(), namespace_bytes));
        let slicer = tokio::spawn(execute_sliced(lanes, sliced.clone()));
        Self {
            engine,
            out,
            queue,
            sliced,
            stopping: false,
            executor,
            slicer,
        }
    }

    /// Takes one message from the controller.
    fn take(&mut self, msg: ToEngine, runtime: &Runtime, modules: &Arc<Modules>) {
        let work = match msg {
            ToEngine::Module { hash, bytes } => {
                // Compiled at once, off this thread, for every slot: a
                // task of another slot may need it before this one's
                // queue would reach it.
                modules.expect(hash);
                let (runtime, modules) = (runtime.clone(), modules.clone());
                tokio::spawn(async move {
                    modules
                        .load(&runtime, hash, Arc::unwrap_or_clone(bytes))
                        .await;
                });
                return;
            }
            ToEngine::Run(task) if task.share.sliced => {
                self.sliced.push(Work::Run(task));
                return;
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
                let run = self
                    .queue
                    .retract(task)
                    .or_else(|| self.sliced.retract(task));
                // A handed-back task came in a frame of its own size: it
                // goes back in one of its own.
                let size = if run.is_some() {
                    FRAME_BUDGET
                } else {
                    SMALL_MESSAGE
                };
                self.out.send(FromEngine::Retracted { task, run }, size);
                return;
            }
            ToEngine::Abort(task) => {
                // A queued task ends here; a running one is interrupted
                // and its `Done` says so.
                let found = match self.queue.abort(task) {
                    Aborted::Absent => self.sliced.abort(task),
                    found => found,
                };
                if let Aborted::Queued(run) = found {
                    self.out.small(FromEngine::Done(aborted(&run, self.engine)));
                }
                return;
            }
            ToEngine::Shutdown => {
                // Let queued work finish and its results flush, then stop.
                self.stopping = true;
                self.queue.close();
                self.sliced.close();
                return;
            }
        };
        self.queue.push(work);
    }

    /// Waits for the slot's executors to finish their queues.
    async fn finish(self) {
        let _ = self.executor.await;
        let _ = self.slicer.await;
    }

    /// Abandons the slot's work: nobody will read its results.
    async fn abandon(self) {
        self.executor.abort();
        self.slicer.abort();
        let _ = self.executor.await;
        let _ = self.slicer.await;
    }
}

/// Serves one connection: runs what the controller sends each slot until
/// it says stop to every slot or the connection ends.
async fn serve(
    session: Session,
    engines: &[EngineId],
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
    let outs: Vec<SlotOut> = (0u32..)
        .zip(engines)
        .map(|(slot, _)| SlotOut {
            slot,
            tx: out_tx.clone(),
        })
        .collect();
    let heartbeat = {
        let outs = outs.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT);
            loop {
                interval.tick().await;
                let resident_bytes = memory::resident_bytes();
                // One frame carries them all.
                if !outs
                    .iter()
                    .all(|out| out.small(FromEngine::Heartbeat { resident_bytes }))
                {
                    break;
                }
            }
        })
    };
    drop(out_tx);
    let modules = Arc::new(Modules::default());
    let mut slots: Vec<Slot> = engines
        .iter()
        .zip(outs)
        .map(|(&engine, out)| Slot::start(engine, out, runtime, &modules, namespace_bytes))
        .collect();

    let ended = loop {
        match recv.recv::<Vec<Slotted<ToEngine>>>().await {
            Ok(Some(batch)) => {
                let mut broken = None;
                for Slotted { slot, msg } in batch {
                    match usize::try_from(slot).ok().and_then(|i| slots.get_mut(i)) {
                        Some(slot) => slot.take(msg, runtime, &modules),
                        None => {
                            broken = Some(NetError::Protocol(format!(
                                "a message for engine slot {slot}, but this process serves {} \
                                 (slots 0 to {})",
                                slots.len(),
                                slots.len() - 1
                            )));
                            break;
                        }
                    }
                }
                if let Some(err) = broken {
                    break Ended::Broken(err);
                }
                if slots.iter().all(|slot| slot.stopping) {
                    break Ended::Shutdown;
                }
            }
            Ok(None) => break Ended::Lost("the controller ended the stream".to_owned()),
            // The close may overtake the `Shutdown` queued just before it,
            // so it means the same: stop, do not reconnect. A controller
            // that crashed or was killed closes nothing; its engines see
            // the connection time out, and reconnect.
            Err(NetError::Closed { code: 0, reason }) if reason == CONTROLLER_STOPPING => {
                break Ended::Stopped;
            }
            Err(err) if is_lost(&err) => break Ended::Lost(err.to_string()),
            Err(err) => break Ended::Broken(err),
        }
    };
    heartbeat.abort();
    let _ = heartbeat.await;
    if matches!(ended, Ended::Shutdown) {
        // Every slot finishes its queue and its results flush; the
        // writer ends when the last slot's sender is gone.
        for slot in slots {
            slot.finish().await;
        }
        let _ = writer.await;
    } else {
        // Nobody will read the results: abandon the work (the controller
        // requeues what these engines held) rather than finish it first,
        // which could take a task's whole time limit. A guest call yields
        // at every epoch tick, so the executors stop promptly.
        for slot in slots {
            slot.abandon().await;
        }
        writer.abort();
        connection.close(0u32.into(), b"engine leaving");
    }
    ended
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
    out: SlotOut,
}

impl Lanes {
    /// Sends a finished task's result; `false` once nobody reads them.
    fn done(&self, result: TaskResult, results_size: usize) -> bool {
        let size = done_size(&result, results_size);
        self.out.send(FromEngine::Done(result), size)
    }
}

/// Runs the engine's own queue, one work item at a time: namespace
/// operations and tasks, in arrival order.
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
            Work::Namespace(request, tenant, op, quota) => {
                let limit = NamespaceLimit::new(namespace_bytes, quota, &tenant);
                let namespace = namespaces.entry(tenant).or_default();
                let reply = match op {
                    NamespaceOp::Load(hash) => match modules.get(&runtime, engine, hash).await {
                        Ok(_) => Ok(Pulled::none()),
                        Err(err) => Err(format!(
                            "engine {engine} could not load module {hash}: {err}"
                        )),
                    },
                    op => apply_namespace_op(engine, namespace, &limit, op),
                };
                let size = match &reply {
                    Ok(values) => values.byte_len(),
                    Err(message) => message.len(),
                } + SMALL_MESSAGE;
                if !out.send(FromEngine::Namespace { request, reply }, size) {
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
                let module = modules.get(&runtime, engine, task.module).await;
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
        let module = lanes.modules.get(runtime, engine, task.module).await;
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
    // Aborted while it waited for its module: it never starts.
    if queue.running_aborted() {
        return (Err(task_error(Some(CallError::Aborted), None)), 0, None);
    }
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
    let abort = instance.abort_handle();
    for (i, args) in task.items.iter().enumerate() {
        let item = chunk.then(|| u32::try_from(i).unwrap_or(u32::MAX));
        // An abort stops guest code at the next epoch tick; one that came
        // before the call (or between a chunk's items) stops it here,
        // before the guest can block in a host call the tick cannot reach.
        if abort.is_aborted() {
            return (
                Err(task_error(Some(CallError::Aborted), item)),
                0,
                Some(instance),
            );
        }
        let (report, ended) = instance.call_from(clock, &task.func, args).await;
        clock = ended;
        meta.peak_memory_bytes = report.peak_memory_bytes as u64;
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
    use wasp_proto::TaskId;
    use wasp_proto::msg::{Items, Share};

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

    fn heartbeat(size: usize) -> Outgoing {
        Outgoing {
            msg: Slotted {
                slot: 0,
                msg: FromEngine::Heartbeat { resident_bytes: 0 },
            },
            size,
        }
    }

    #[test]
    fn frames_are_bounded_by_bytes_and_count() {
        let large = |n| (0..n).map(|_| heartbeat(60)).collect();
        let sizes: Vec<usize> = frames(large(5), 150).iter().map(|f| f.0.len()).collect();
        // 60 + 60 fit in 150; a third would not.
        assert_eq!(sizes, vec![2, 2, 1]);
        // One message over the budget goes alone.
        let alone = frames(
            vec![
                heartbeat(SMALL_MESSAGE),
                heartbeat(1000),
                heartbeat(SMALL_MESSAGE),
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
    fn engine_ids_are_logged_as_a_range_when_contiguous() {
        let ids_of = |raw: &[u32]| ids(&raw.iter().map(|&i| EngineId(i)).collect::<Vec<_>>());
        assert_eq!(ids_of(&[4]), "4");
        assert_eq!(ids_of(&[3, 4, 5]), "3-5");
        assert_eq!(ids_of(&[3, 5]), "3,5");
        // Whatever a controller sends: no underflow, no false range.
        assert_eq!(ids_of(&[5, 3]), "5,3");
        assert_eq!(ids_of(&[3, 9, 5]), "3,9,5");
    }
}
