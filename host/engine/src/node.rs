//! The engine node: an engine process's life on the network.
//!
//! It dials the controller named by a connection file, says which modules
//! it already has compiled, and then runs what it is sent, one task at a
//! time (an engine is one worker, as an ipyparallel engine is): module
//! bytes are loaded (compiled and cached) in the order they arrive, always
//! before the tasks that need them, and each task's chunk runs on one fresh
//! instance, item after item. Results, with their metadata, go back as they
//! finish; a heartbeat tells the controller the engine is alive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use wasp_net::{ConnectionFile, NetError, Session};
use wasp_proto::msg::{
    EngineHello, ErrorKind, FromEngine, Role, RunTask, TaskError, TaskMeta, TaskResult, ToEngine,
};
use wasp_proto::{EngineId, ModuleHash};

use crate::error::CallError;
use crate::runtime::{Module, Runtime, RuntimeConfig, SetupError};
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
}

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
}

/// Runs an engine until the controller closes the connection or says stop.
/// Returns the engine id it ran as.
pub async fn run_node(config: NodeConfig) -> Result<EngineId, NodeError> {
    let runtime = Runtime::new(config.runtime)?;
    let hello = EngineHello {
        name: config.name,
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
    let (work_tx, work_rx) = mpsc::unbounded_channel::<Work>();
    let executor = tokio::spawn(execute(runtime, engine, work_rx, out_tx));

    let ended = loop {
        match recv.recv::<Vec<ToEngine>>().await {
            Ok(Some(batch)) => {
                let mut stop = false;
                for msg in batch {
                    let work = match msg {
                        ToEngine::Module { hash, bytes } => Work::Load(hash, bytes),
                        ToEngine::Run(task) => Work::Run(task),
                        ToEngine::Shutdown => {
                            stop = true;
                            break;
                        }
                    };
                    // The executor only stops when this sender is dropped.
                    let _ = work_tx.send(work);
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
    drop(work_tx);
    heartbeat.abort();
    // Let running work finish and its results flush, then stop.
    let _ = executor.await;
    let _ = writer.await;
    ended?;
    Ok(engine)
}

/// Runs work items one at a time.
async fn execute(
    runtime: Runtime,
    engine: EngineId,
    mut work: mpsc::UnboundedReceiver<Work>,
    out: mpsc::UnboundedSender<FromEngine>,
) {
    let mut modules: HashMap<ModuleHash, Result<Arc<Module>, String>> = HashMap::new();
    while let Some(item) = work.recv().await {
        match item {
            Work::Load(hash, bytes) => {
                let loaded = runtime.load(bytes).await.map_err(|e| e.to_string());
                if let Err(err) = &loaded {
                    tracing::warn!(module = %hash.short(), cause = %err, "module failed to load");
                }
                modules.insert(hash, loaded);
            }
            Work::Run(task) => {
                let module = match modules.get(&task.module) {
                    Some(loaded) => loaded.clone(),
                    None => runtime.cached(&task.module).ok_or_else(|| {
                        format!("engine {engine} does not have module {}", task.module)
                    }),
                };
                let result = run_task(&runtime, engine, module, task).await;
                if out.send(FromEngine::Done(result)).is_err() {
                    break;
                }
            }
        }
    }
}

/// Runs one task's chunk on one instance, item after item; the first
/// failing item fails the task.
async fn run_task(
    runtime: &Runtime,
    engine: EngineId,
    module: Result<Arc<Module>, String>,
    task: RunTask,
) -> TaskResult {
    let mut meta = TaskMeta {
        engine: Some(engine),
        started_us: now_us(),
        ..TaskMeta::default()
    };
    let outcome = match module {
        Err(message) => Err(TaskError {
            kind: ErrorKind::Module,
            message,
            item: None,
        }),
        Ok(module) => run_items(runtime, engine, &module, &task, &mut meta).await,
    };
    meta.completed_us = now_us();
    TaskResult {
        id: task.id,
        outcome,
        meta,
    }
}

async fn run_items(
    runtime: &Runtime,
    engine: EngineId,
    module: &Arc<Module>,
    task: &RunTask,
    meta: &mut TaskMeta,
) -> Result<Vec<Option<wasp_proto::Value>>, TaskError> {
    let context = CallContext {
        engine_id: engine.0,
        tenant: task.tenant.0.clone(),
        task_id: task.id.to_string(),
    };
    let chunk = task.items.len() > 1;
    let mut instance = match runtime.instantiate(module, context).await {
        Ok(instance) => instance,
        Err(report) => {
            append_output(meta, &report);
            return Err(task_error(report.result.err(), None));
        }
    };
    let mut values = Vec::with_capacity(task.items.len());
    for (i, args) in task.items.iter().enumerate() {
        let report = instance.call(&task.func, args).await;
        append_output(meta, &report);
        match report.result {
            Ok(value) => values.push(value),
            Err(err) => {
                let item = chunk.then(|| u32::try_from(i).unwrap_or(u32::MAX));
                return Err(task_error(Some(err), item));
            }
        }
    }
    Ok(values)
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
        CallError::UnknownFunction { .. }
        | CallError::AmbiguousFunction { .. }
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
