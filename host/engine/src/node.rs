//! The engine node: an engine process's life on the network.
//!
//! It dials the controller named by a connection file, says which modules
//! it already has compiled, and then runs what it is sent, one task at a
//! time (an engine is one worker, as an ipyparallel engine is): module
//! bytes are loaded (compiled and cached) in the order they arrive, always
//! before the tasks that need them, and each task's chunk runs on one fresh
//! instance, item after item. Results, with their metadata, go back as they
//! finish; a heartbeat tells the controller the engine is alive.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc};
use wasp_net::{ConnectionFile, NetError, Session};
use wasp_proto::msg::{
    Arg, EngineHello, ErrorKind, FromEngine, NamespaceOp, NamespaceReply, Role, RunTask, TaskError,
    TaskMeta, TaskResult, ToEngine, Values,
};
use wasp_proto::{EngineId, ModuleHash, TaskId, Tenant, Value};

use crate::error::CallError;
use crate::runtime::{Module, Runtime, RuntimeConfig, SetupError, TaskInstance};
use crate::sandbox::CallContext;

/// How often the engine tells the controller it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Most messages sent in one frame.
const MAX_BATCH: usize = 256;

/// Settings of an engine node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the controller is and how to prove who we are.
    pub connection: ConnectionFile,
    /// The runtime's limits and compile cache.
    pub runtime: RuntimeConfig,
    /// A name for status displays (`host:pid`).
    pub name: String,
    /// Most bytes (as `Value::cost_bytes` counts) one tenant's namespace may
    /// hold on this engine.
    pub namespace_bytes: usize,
}

/// The default of [`NodeConfig::namespace_bytes`].
pub const DEFAULT_NAMESPACE_BYTES: usize = 256 << 20;

/// Why an engine node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The runtime could not start.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The controller could not be reached, refused us, or broke the
    /// connection.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The controller accepted us but assigned no engine id.
    #[error("the controller did not assign an engine id")]
    NoEngineId,
}

/// Work for the executor, in arrival order.
enum Work {
    Load(ModuleHash, Vec<u8>),
    Run(RunTask),
    Namespace(u64, Tenant, NamespaceOp),
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

    /// The next work item, in arrival order.
    async fn next(&self) -> Option<Work> {
        loop {
            // Registered before looking, so a push in between is not missed
            // (`notify_one` also leaves a permit when nobody waits).
            let notified = self.ready.notified();
            {
                let mut state = self.state();
                if let Some(work) = state.items.pop_front() {
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

/// Runs an engine until the controller closes the connection or says stop.
/// Returns the engine id it ran as.
pub async fn run_node(config: NodeConfig) -> Result<EngineId, NodeError> {
    let runtime = Runtime::new(config.runtime)?;
    let hello = EngineHello {
        name: config.name.clone(),
        cached: runtime.disk_cached_hashes(),
    };
    let Session {
        mut send,
        mut recv,
        engine,
        ..
    } = wasp_net::dial(&config.connection, Role::Engine(hello)).await?;
    let engine = engine.ok_or(NodeError::NoEngineId)?;
    tracing::info!(%engine, "engine joined the controller");

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<FromEngine>();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        while out_rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            send.send(&batch).await?;
            batch.clear();
        }
        Ok::<_, NetError>(())
    });
    let heartbeat = {
        let out_tx = out_tx.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(HEARTBEAT);
            loop {
                interval.tick().await;
                if out_tx.send(FromEngine::Heartbeat).is_err() {
                    break;
                }
            }
        })
    };
    let queue = Arc::new(WorkQueue::default());
    let executor = tokio::spawn(execute(
        runtime,
        engine,
        config.namespace_bytes,
        queue.clone(),
        out_tx.clone(),
    ));

    let ended = loop {
        match recv.recv::<Vec<ToEngine>>().await {
            Ok(Some(batch)) => {
                let mut stop = false;
                for msg in batch {
                    let work = match msg {
                        ToEngine::Module { hash, bytes } => {
                            Work::Load(hash, Arc::unwrap_or_clone(bytes))
                        }
                        ToEngine::Run(task) => Work::Run(task),
                        ToEngine::Namespace {
                            request,
                            tenant,
                            op,
                        } => Work::Namespace(request, tenant, Arc::unwrap_or_clone(op)),
                        ToEngine::Retract(task) => {
                            let run = queue.retract(task);
                            let _ = out_tx.send(FromEngine::Retracted { task, run });
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
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(err) => break Err(err),
        }
    };
    tracing::info!(%engine, "the controller closed the connection; engine stopping");
    queue.close();
    drop(out_tx);
    heartbeat.abort();
    // Let running work finish and its results flush, then stop.
    let _ = executor.await;
    let _ = writer.await;
    ended?;
    Ok(engine)
}

/// One tenant's namespace on this engine (ipyparallel's engine namespace).
#[derive(Default)]
struct Namespace {
    values: HashMap<String, Value>,
    bytes: usize,
}

/// Runs work items one at a time.
async fn execute(
    runtime: Runtime,
    engine: EngineId,
    namespace_bytes: usize,
    work: Arc<WorkQueue>,
    out: mpsc::UnboundedSender<FromEngine>,
) {
    let mut modules: HashMap<ModuleHash, Result<Arc<Module>, String>> = HashMap::new();
    let mut namespaces: HashMap<Tenant, Namespace> = HashMap::new();
    // A fresh instance of the last module run, made while the engine had
    // nothing to do, so that the next task of that module starts without
    // instantiating (most of a short task's time on the engine). Never
    // called before its task; the pool holds it whatever the tenant.
    let mut spare: Option<TaskInstance> = None;
    while let Some(item) = work.next().await {
        match item {
            Work::Load(hash, bytes) => {
                let loaded = runtime.load(bytes).await.map_err(|e| e.to_string());
                if let Err(err) = &loaded {
                    tracing::warn!(module = %hash.short(), cause = %err, "module failed to load");
                }
                modules.insert(hash, loaded);
            }
            Work::Namespace(request, tenant, op) => {
                let namespace = namespaces.entry(tenant).or_default();
                let reply = match op {
                    NamespaceOp::Load(hash) => load_now(&runtime, engine, &mut modules, hash),
                    op => apply_namespace_op(engine, namespace, namespace_bytes, op),
                };
                if out.send(FromEngine::Namespace { request, reply }).is_err() {
                    break;
                }
            }
            Work::Run(task) => {
                let namespace = namespaces.entry(task.tenant.clone()).or_default();
                let task = match resolve_refs(engine, namespace, task) {
                    Ok(task) => task,
                    Err(failed) => {
                        if out.send(FromEngine::Done(*failed)).is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let module = match modules.get(&task.module) {
                    Some(loaded) => loaded.clone(),
                    None => runtime.cached(&task.module).ok_or_else(|| {
                        format!("engine {engine} does not have module {}", task.module)
                    }),
                };
                let ran = module.as_ref().ok().cloned();
                let (result, used) = run_task(&runtime, engine, module, task, &mut spare).await;
                if out.send(FromEngine::Done(result)).is_err() {
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
                if let Some(module) = ran
                    && work.is_empty()
                {
                    spare = runtime
                        .instantiate(&module, spare_context(engine))
                        .await
                        .ok();
                }
            }
        }
    }
}

/// Answers `load`: the module was compiled when its bytes arrived (they are
/// always sent first when missing), or is in the disk cache.
fn load_now(
    runtime: &Runtime,
    engine: EngineId,
    modules: &mut HashMap<ModuleHash, Result<Arc<Module>, String>>,
    hash: ModuleHash,
) -> NamespaceReply {
    let loaded = modules.entry(hash).or_insert_with(|| {
        runtime
            .cached(&hash)
            .ok_or_else(|| format!("engine {engine} does not have module {hash}"))
    });
    match loaded {
        Ok(_) => Ok(Vec::new()),
        Err(err) => Err(format!(
            "engine {engine} could not load module {hash}: {err}"
        )),
    }
}

/// Push, pull or clear in a tenant's namespace.
fn apply_namespace_op(
    engine: EngineId,
    namespace: &mut Namespace,
    limit: usize,
    op: NamespaceOp,
) -> NamespaceReply {
    match op {
        NamespaceOp::Push(entries) => {
            let freed: usize = entries
                .iter()
                .filter_map(|(name, _)| {
                    namespace
                        .values
                        .get(name)
                        .map(|v| name.len() + v.cost_bytes())
                })
                .sum();
            let added: usize = entries
                .iter()
                .map(|(name, v)| name.len() + v.cost_bytes())
                .sum();
            let total = namespace.bytes - freed.min(namespace.bytes) + added;
            if total > limit {
                return Err(format!(
                    "engine {engine}: the namespace would hold {total} bytes, over its limit \
                     (namespace_bytes = {})",
                    crate::limits::bytes(limit)
                ));
            }
            namespace.bytes = total;
            namespace.values.extend(entries);
            Ok(Vec::new())
        }
        NamespaceOp::Pull(names) => names
            .iter()
            .map(|name| {
                namespace.values.get(name).cloned().ok_or_else(|| {
                    format!("engine {engine} has no value named {name:?} in its namespace")
                })
            })
            .collect(),
        NamespaceOp::Clear => {
            *namespace = Namespace::default();
            Ok(Vec::new())
        }
        NamespaceOp::Load(_) => Ok(Vec::new()),
    }
}

/// Decodes the task's argument lists and replaces every `Arg::Ref` with
/// this engine's value of that name.
fn resolve_refs(
    engine: EngineId,
    namespace: &Namespace,
    task: RunTask,
) -> Result<ResolvedTask, Box<TaskResult>> {
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
    let lists = task
        .items
        .decode()
        .map_err(|err| refused(format!("the task's arguments do not decode: {err}")))?;
    let resolve = |arg| match arg {
        Arg::Value(value) => Ok(value),
        Arg::Ref(name) => namespace.values.get(&name).cloned().ok_or_else(|| {
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
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ResolvedTask {
        id: task.id,
        tenant: task.tenant,
        module: task.module,
        func: task.func,
        items,
    })
}

/// A task whose references are replaced by values.
struct ResolvedTask {
    id: wasp_proto::TaskId,
    tenant: Tenant,
    module: ModuleHash,
    func: String,
    items: Vec<Vec<Value>>,
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
/// failing item fails the task. Returns the instance it used too, so that
/// the caller can tear it down once the result is on its way.
async fn run_task(
    runtime: &Runtime,
    engine: EngineId,
    module: Result<Arc<Module>, String>,
    task: ResolvedTask,
    spare: &mut Option<TaskInstance>,
) -> (TaskResult, Option<TaskInstance>) {
    let mut meta = TaskMeta {
        engine: Some(engine),
        started_us: now_us(),
        ..TaskMeta::default()
    };
    let (outcome, used) = match module {
        Err(message) => (
            Err(TaskError {
                kind: ErrorKind::Module,
                message,
                item: None,
            }),
            None,
        ),
        Ok(module) => run_items(runtime, engine, &module, &task, &mut meta, spare).await,
    };
    meta.completed_us = now_us();
    let result = TaskResult {
        id: task.id,
        outcome,
        meta,
    };
    (result, used)
}

async fn run_items(
    runtime: &Runtime,
    engine: EngineId,
    module: &Arc<Module>,
    task: &ResolvedTask,
    meta: &mut TaskMeta,
    spare: &mut Option<TaskInstance>,
) -> (Result<Values, TaskError>, Option<TaskInstance>) {
    let context = CallContext {
        engine_id: engine.0,
        tenant: task.tenant.0.clone(),
        task_id: task.id.to_string(),
    };
    let chunk = task.items.len() > 1;
    let ready = spare
        .take()
        .filter(|instance| instance.module().hash == module.hash);
    let mut instance = match ready {
        Some(mut instance) => {
            instance.set_context(context);
            instance
        }
        None => match runtime.instantiate(module, context).await {
            Ok(instance) => instance,
            Err(report) => {
                append_output(meta, &report);
                return (Err(task_error(report.result.err(), None)), None);
            }
        },
    };
    let mut values = Vec::with_capacity(task.items.len());
    let mut clock = std::time::Instant::now();
    for (i, args) in task.items.iter().enumerate() {
        let (report, ended) = instance.call_from(clock, &task.func, args).await;
        clock = ended;
        append_output(meta, &report);
        match report.result {
            Ok(value) => values.push(value),
            Err(err) => {
                let item = chunk.then(|| u32::try_from(i).unwrap_or(u32::MAX));
                return (Err(task_error(Some(err), item)), Some(instance));
            }
        }
    }
    let packed = Values::encode(&values).map_err(|err| TaskError {
        kind: ErrorKind::Limit,
        message: format!("the results could not be sent: {err}"),
        item: None,
    });
    (packed, Some(instance))
}

fn append_output(meta: &mut TaskMeta, report: &crate::runtime::CallReport) {
    meta.stdout
        .push_str(&String::from_utf8_lossy(&report.stdout));
    meta.stderr
        .push_str(&String::from_utf8_lossy(&report.stderr));
    meta.logs.extend(report.logs.iter().cloned());
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
        CallError::Limit { .. } => ErrorKind::Limit,
        CallError::Trap { .. } | CallError::Instantiate(_) => ErrorKind::Trap,
    };
    TaskError {
        kind,
        message: err.to_string(),
        item,
    }
}

/// Microseconds since the Unix epoch: the clock all task metadata uses.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
