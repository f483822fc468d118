//! The runtime: one wasmtime `Engine` and `Linker` per process, a cache of
//! compiled modules (in memory and on disk), and a fresh sandboxed `Store`
//! per task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Instance, InstancePre, Linker, Val};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasp_proto::{ModuleHash, Value};

use crate::bulk::{BulkArgs, BulkFunc};
use crate::cache::DiskCache;
use crate::convert::{args_to_vals, check_arg_bytes, from_val_within};
use crate::error::{CallError, LoadError};
use crate::header;
use crate::limits::{Limit, Limits};
use crate::reflect::Exports;
use crate::sandbox::{CallContext, Captured, LogLine, TaskState, linker};

/// How often the epoch advances: the granularity of the wall-time limit
/// and of the turns tenants take at an engine (`turns`): a task sliced in
/// beside another waits at most this long to start. A tick costs the
/// running guest one yield to the executor (about a microsecond).
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How much of a trapping guest's stderr goes into the error (its panic
/// message is at the end).
const STDERR_TAIL: usize = 2048;

/// Settings of a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Per-task limits.
    pub limits: Limits,
    /// Where compiled modules are cached across processes; `None` keeps
    /// them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How many instances may exist at once (the size of the instance pool);
    /// further calls wait for one to finish.
    pub max_instances: u32,
    /// Whether calls whose parameters and result are numbers and lists of
    /// numbers move each list as one copy (the bulk path, `bulk`) rather
    /// than a `Val` per item. On unless comparing the two.
    pub bulk_calls: bool,
    /// Bytes of each linear memory kept resident between the instances
    /// that use its pool slot ([`KEEP_RESIDENT`] by default, see
    /// [`engine_config`]). A task whose memory grows past it takes a page
    /// fault per page past it on every run; more makes big-argument tasks
    /// faster at the cost of up to this much idle memory per slot (two
    /// slots per instance of [`RuntimeConfig::max_instances`]).
    pub keep_resident: usize,
}

/// The default of [`RuntimeConfig::keep_resident`]: 16 MiB, which covers
/// a task with a few million numbers in its arguments (an 8 MB `norm` of
/// the seed notebook) as well as a small one. A page past it costs a fault
/// on every run, which on the 2-core virtual machines we measure on is the
/// bulk of a big task's time: an 8 MB `norm` end to end took 17.7 ms with
/// 1 MiB and 12.7 ms with this (`norm` through a cluster, medians of 60).
/// The price is idle memory: what a task dirtied, up to this much, stays
/// resident (zeroed) in its slot, so an engine that has run big tasks in
/// all of its 16 slots holds up to 256 MiB more than a fresh one.
pub const KEEP_RESIDENT: usize = 16 << 20;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: None,
            max_instances: 64,
            bulk_calls: true,
            keep_resident: KEEP_RESIDENT,
        }
    }
}

/// Where a loaded module's compiled code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from its bytes by this process.
    Compiled,
    /// Loaded from the on-disk cache, without compiling.
    DiskCache,
}

/// A compiled, linked component, ready to instantiate.
pub struct Module {
    /// The sha256 of its bytes.
    pub hash: ModuleHash,
    /// Its exported functions and their signatures.
    pub exports: Exports,
    /// Where its compiled code came from when first loaded.
    pub origin: Origin,
    pre: InstancePre<TaskState>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("hash", &self.hash)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What one call produced: its result or error, and its captured output.
#[derive(Debug)]
pub struct CallReport {
    /// The function's result (`None` for a function without one), or why
    /// the call failed.
    pub result: Result<Option<Value>, CallError>,
    /// Captured stdout, up to the output limit.
    pub stdout: Vec<u8>,
    /// Captured stderr, up to the output limit.
    pub stderr: Vec<u8>,
    /// Lines logged through `wasp:task/log`.
    pub logs: Vec<LogLine>,
    /// How long the call ran (instantiation not included).
    pub duration: Duration,
    /// The most linear memory the instance has held so far, in bytes.
    pub peak_memory_bytes: usize,
}

/// The sandboxed task runtime. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<TaskState>,
    limits: Limits,
    disk: Option<DiskCache>,
    modules: Mutex<HashMap<ModuleHash, Arc<Module>>>,
    instances: Arc<Semaphore>,
    ticker: Arc<AtomicBool>,
    bulk_calls: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// The runtime could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the wasm runtime: {0}")]
pub struct SetupError(String);

impl Runtime {
    /// Creates a runtime with its engine, linker and epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, SetupError> {
        let limits = config.limits;
        let engine = Engine::new(&engine_config(
            &limits,
            config.max_instances,
            config.keep_resident,
        ))
        .map_err(|e| SetupError(e.to_string()))?;
        let linker = linker(&engine).map_err(|e| SetupError(e.to_string()))?;
        let disk = match &config.cache_dir {
            Some(dir) => Some(
                DiskCache::open(dir, &engine)
                    .map_err(|e| SetupError(format!("compile cache at {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                disk,
                modules: Mutex::new(HashMap::new()),
                instances: Arc::new(Semaphore::new(config.max_instances as usize)),
                ticker,
                bulk_calls: config.bulk_calls,
            }),
        })
    }

    /// The per-task limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The wasmtime engine (for benchmarks that compare against it).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Loads a module from its bytes: checks them, then takes the compiled
    /// code from memory, from the disk cache, or from the compiler (on a
    /// blocking thread), in that order.
    ///
    /// Waits at most the compile-time limit. Cranelift cannot be
    /// cancelled, so at the deadline the load fails and the compilation
    /// runs on to its end on the blocking thread, where its result is kept
    /// (in memory and on disk) for a later load of the same bytes.
    pub async fn load(&self, bytes: Vec<u8>) -> Result<Arc<Module>, LoadError> {
        let this = self.clone();
        let compile_time = self.inner.limits.compile_time;
        let compiling = tokio::task::spawn_blocking(move || this.load_blocking(&bytes));
        match tokio::time::timeout(compile_time, compiling).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(join)) => Err(LoadError::Invalid(format!(
                "the compiler thread failed: {join}"
            ))),
            Err(_elapsed) => Err(LoadError::Limit {
                limit: Limit::CompileTime(compile_time),
            }),
        }
    }

    /// [`Runtime::load`] on the calling thread.
    pub fn load_blocking(&self, bytes: &[u8]) -> Result<Arc<Module>, LoadError> {
        header::check(bytes, self.inner.limits.module_bytes)?;
        let hash = ModuleHash::of(bytes);
        if let Some(module) = self.in_memory(&hash) {
            return Ok(module);
        }
        let disk = self.inner.disk.as_ref();
        if let Some(component) = disk.and_then(|d| d.load(&self.inner.engine, &hash)) {
            return self.prepare(hash, component, Origin::DiskCache);
        }
        let component = Component::new(&self.inner.engine, bytes)
            .map_err(|e| LoadError::Invalid(root_message(&e)))?;
        let module = self.prepare(hash, component.clone(), Origin::Compiled)?;
        // Only a module this engine can run goes to disk: an engine
        // announces its cached modules and is never sent their bytes again,
        // so a cached one it refuses (a missing import) could not even
        // report why (issue 5).
        if let Some(disk) = disk
            && let Err(err) = disk.store(&hash, &component)
        {
            tracing::warn!(module = %hash.short(), cause = %err, "could not cache compiled module");
        }
        Ok(module)
    }

    /// [`Runtime::cached`] for async callers: a module in memory is
    /// answered at once; reading and deserializing an artifact from disk
    /// (milliseconds for a large component) runs on a blocking thread, so
    /// an engine's async thread keeps serving its connection meanwhile.
    pub async fn cached_async(&self, hash: &ModuleHash) -> Option<Arc<Module>> {
        if let Some(module) = self.in_memory(hash) {
            return Some(module);
        }
        let this = self.clone();
        let hash = *hash;
        tokio::task::spawn_blocking(move || this.cached(&hash))
            .await
            .ok()
            .flatten()
    }

    /// A module already known by its hash (in memory or in the disk
    /// cache), without its bytes: how an engine avoids a transfer. Blocks
    /// while it deserializes an artifact; async code calls
    /// [`Runtime::cached_async`].
    pub fn cached(&self, hash: &ModuleHash) -> Option<Arc<Module>> {
        if let Some(module) = self.in_memory(hash) {
            return Some(module);
        }
        let component = self.inner.disk.as_ref()?.load(&self.inner.engine, hash)?;
        self.prepare(*hash, component, Origin::DiskCache).ok()
    }

    /// The modules the disk cache holds, which an engine announces so
    /// that their bytes are never sent to it.
    pub fn disk_cached_hashes(&self) -> Vec<ModuleHash> {
        self.inner
            .disk
            .as_ref()
            .map(DiskCache::hashes)
            .unwrap_or_default()
    }

    /// Every module this runtime can run without its bytes: those
    /// compiled or loaded in memory and those in the disk cache. An
    /// engine announces them when it joins a controller, so a reconnected
    /// engine is not sent (nor recompiles) what it already has, even
    /// without a disk cache.
    pub fn cached_hashes(&self) -> Vec<ModuleHash> {
        let mut hashes: Vec<ModuleHash> = self.modules().keys().copied().collect();
        let known: std::collections::HashSet<ModuleHash> = hashes.iter().copied().collect();
        hashes.extend(
            self.disk_cached_hashes()
                .into_iter()
                .filter(|hash| !known.contains(hash)),
        );
        hashes
    }

    fn in_memory(&self, hash: &ModuleHash) -> Option<Arc<Module>> {
        self.modules().get(hash).cloned()
    }

    fn modules(&self) -> std::sync::MutexGuard<'_, HashMap<ModuleHash, Arc<Module>>> {
        // The map is only inserted into; a panic elsewhere cannot leave it
        // half-updated.
        self.inner.modules.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prepare(
        &self,
        hash: ModuleHash,
        component: Component,
        origin: Origin,
    ) -> Result<Arc<Module>, LoadError> {
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            // The whole chain: the root cause alone ("resource implementation
            // is missing") does not name the import.
            .map_err(|e| LoadError::MissingImport(format!("{e:#}")))?;
        let module = Arc::new(Module {
            hash,
            exports: Exports::of(&self.inner.engine, &component),
            origin,
            pre,
        });
        // If another thread loaded the same module meanwhile, keep one.
        Ok(self.modules().entry(hash).or_insert(module).clone())
    }

    /// Runs one call in a fresh sandbox.
    pub async fn call(
        &self,
        module: &Arc<Module>,
        func: &str,
        args: &[Value],
        context: CallContext,
    ) -> CallReport {
        let started = Instant::now();
        match self.instantiate(module, context).await {
            Ok(mut instance) => instance.call(func, args).await,
            Err(failed) => CallReport {
                duration: started.elapsed(),
                ..*failed
            },
        }
    }

    /// Instantiates a module in a fresh sandbox, for one or more calls (the
    /// items of one chunk), under the runtime's limits. Waits while the
    /// instance pool is full.
    pub async fn instantiate(
        &self,
        module: &Arc<Module>,
        context: CallContext,
    ) -> Result<TaskInstance, Box<CallReport>> {
        let limits = self.inner.limits.clone();
        let deadline = Instant::now() + limits.wall_time;
        let mut instance = self
            .instantiate_with(module, context, limits, deadline)
            .await?;
        // Not one task's: each call has its own wall time.
        instance.deadline = None;
        Ok(instance)
    }

    /// [`Runtime::instantiate`] under a task's own limits (at most the
    /// runtime's: see [`Limits::for_task`]), with instantiation stopped at
    /// `deadline`, which every call on the instance then ends by too (the
    /// items of a chunk share the task's budget). Start functions run
    /// during instantiation: without a deadline one that loops would hold
    /// the engine for good.
    pub async fn instantiate_with(
        &self,
        module: &Arc<Module>,
        context: CallContext,
        limits: Limits,
        deadline: Instant,
    ) -> Result<TaskInstance, Box<CallReport>> {
        let permit = self
            .inner
            .instances
            .clone()
            .acquire_owned()
            .await
            .expect("the instance semaphore is never closed");
        let (state, captured) = TaskState::new(context, &limits);
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        // How results are bounded (issue 10): lifting a value out of the
        // guest (an export's result, or a WASI call's arguments) charges
        // this fuel as it allocates: `size_of::<Val>()` per list item,
        // field and payload, and the bytes of each string, checked before
        // each list is allocated. So the lifted `Val` tree never costs the
        // host more than `result_bytes`, however long a list the guest
        // claims, and its exhaustion is mapped to the result limit
        // (`classify`). The conversion to `Value` then counts the same way
        // and stops at the same limit (`from_val_within`), so a call's
        // result holds at most twice `result_bytes` of host memory while it
        // is converted, and then at most `result_bytes`.
        store.set_hostcall_fuel(limits.result_bytes);
        // One callback for the store's life, installed here rather than per
        // call (a boxed closure each time): it reads the running call's
        // deadline from the store. Code running in wasm is stopped by it;
        // time spent blocked in the host (a long sleep) by the timer around
        // the call (`TaskInstance::try_call`). Between calls no wasm runs,
        // so there is no deadline to keep.
        store.epoch_deadline_callback(|store| {
            let state = store.data();
            Ok(match state.deadline {
                Some(deadline) if Instant::now() >= deadline || state.abort.is_aborted() => {
                    UpdateDeadline::Interrupt
                }
                _ => {
                    // The tick counts toward the lane's turn, if the task
                    // takes turns with another (`turns`).
                    crate::turns::tick();
                    UpdateDeadline::Yield(1)
                }
            })
        });
        store.set_epoch_deadline(1);
        // Instantiation runs the component's start functions (a reactor's
        // `_initialize`): guest code, under the same deadline as a call.
        store.data_mut().deadline = Some(deadline);
        let instantiated = {
            let instantiating = module.pre.instantiate_async(&mut store);
            tokio::time::timeout_at(deadline.into(), instantiating)
                .await
                .ok()
        };
        store.data_mut().deadline = None;
        let failed = |error: CallError, store: &mut Store<TaskState>| {
            Err(Box::new(report(
                Err(error),
                store,
                &captured,
                Duration::ZERO,
            )))
        };
        match instantiated {
            Some(Ok(instance)) => Ok(TaskInstance {
                store,
                instance,
                module: module.clone(),
                captured: captured.clone(),
                limits,
                deadline: Some(deadline),
                bulk_calls: self.inner.bulk_calls,
                _permit: permit,
            }),
            None => failed(
                CallError::Limit {
                    limit: Limit::WallTime(limits.wall_time),
                    detail: Some("while instantiating (the start functions)".into()),
                },
                &mut store,
            ),
            Some(Err(err)) => {
                let error = match classify(&err, &mut store, &captured, &limits) {
                    CallError::Trap { trap, .. } => CallError::Instantiate(trap),
                    CallError::Limit {
                        limit: limit @ Limit::WallTime(_),
                        ..
                    } => CallError::Limit {
                        limit,
                        detail: Some("while instantiating (the start functions)".into()),
                    },
                    other => other,
                };
                failed(error, &mut store)
            }
        }
    }
}

/// A live instance in its own sandbox. Calls on it share the guest's memory
/// (as the items of one chunk may); a call that fails leaves it unusable.
pub struct TaskInstance {
    store: Store<TaskState>,
    instance: Instance,
    module: Arc<Module>,
    captured: Captured,
    limits: Limits,
    /// When set, the task's deadline: every call ends by it (the items of
    /// a chunk share the task's budget). Unset, each call has its own
    /// `wall_time` from its start.
    deadline: Option<Instant>,
    /// [`RuntimeConfig::bulk_calls`].
    bulk_calls: bool,
    _permit: OwnedSemaphorePermit,
}

impl TaskInstance {
    /// The module it is an instance of.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// Says whose task the next calls belong to (what `wasp:task/identity`
    /// answers). For an instance made ahead of its task; an instance that
    /// has run anything must not be handed to another task.
    pub fn set_context(&mut self, context: CallContext) {
        self.store.data_mut().context = context;
    }

    /// Puts the calls that follow under a task's limits, for an instance
    /// made ahead of its task: its memory limit and wall time (see
    /// [`Limits::for_task`]) and the task's deadline, which every call
    /// ends by. Refuses (returning the limit that it would break) when
    /// the instance already holds more memory than the task's limit.
    pub fn set_task_limits(&mut self, limits: Limits, deadline: Instant) -> Result<(), Limit> {
        if self.store.data().limiter.in_use() > limits.memory_bytes {
            return Err(Limit::MemoryBytes(limits.memory_bytes));
        }
        self.store.data_mut().limiter.set_limit(limits.memory_bytes);
        self.store.set_hostcall_fuel(limits.result_bytes);
        self.store.data().abort.reset();
        self.limits = limits;
        self.deadline = Some(deadline);
        Ok(())
    }

    /// Stops the instance's running call at the next epoch tick (and every
    /// later call at its start), from any thread.
    pub fn abort_handle(&self) -> crate::sandbox::AbortHandle {
        self.store.data().abort.clone()
    }

    /// The limits the instance's calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The most linear memory the instance has held at once, in bytes.
    pub fn peak_memory_bytes(&self) -> usize {
        self.store.data().limiter.peak
    }

    /// Calls `func` (qualified or bare name) with `args`, within the limits.
    pub async fn call(&mut self, func: &str, args: &[Value]) -> CallReport {
        self.call_from(Instant::now(), func, args).await.0
    }

    /// As [`call`](Self::call), timed from `started`, and returns when the
    /// call ended too. Calls run back to back (a chunk's items) pass each
    /// the previous one's end, so each reads the clock once: on a VM a
    /// clock read costs a tenth of a short call.
    pub async fn call_from(
        &mut self,
        started: Instant,
        func: &str,
        args: &[Value],
    ) -> (CallReport, Instant) {
        let result = self.try_call(func, args, started).await;
        let ended = Instant::now();
        let duration = ended.saturating_duration_since(started);
        (
            report(result, &mut self.store, &self.captured, duration),
            ended,
        )
    }

    /// The call; its wall-time limit counts from `started`.
    async fn try_call(
        &mut self,
        func: &str,
        args: &[Value],
        started: Instant,
    ) -> Result<Option<Value>, CallError> {
        let export = self.module.exports.find(func)?;
        let func = self
            .instance
            .get_func(&mut self.store, export.index)
            .ok_or_else(|| {
                CallError::Instantiate(format!("export {} is not a function", export.qualified))
            })?;
        // Numbers and lists of numbers go into the guest and back as one
        // copy each (`bulk`); anything else, or arguments that do not fit
        // their types, as `Val`s, which also name what does not fit.
        let bulk = match export.bulk.filter(|_| self.bulk_calls) {
            Some(result) => match BulkArgs::of(&export.sig, args) {
                Some((args, size)) => {
                    check_arg_bytes(size, self.limits.arg_bytes)?;
                    BulkFunc::new(func, &self.store, result)
                        .map_err(|e| tracing::warn!(func = %export.qualified, "bulk path refused: {e:#}"))
                        .ok()
                        .map(|func| (func, args))
                }
                None => None,
            },
            None => None,
        };
        let params = match bulk {
            Some(_) => Vec::new(),
            None => args_to_vals(&export.sig, args, self.limits.arg_bytes)?,
        };
        // On the stack: a function has at most one result.
        let mut result = [Val::Bool(false)];
        let results = &mut result[..usize::from(export.sig.result.is_some())];

        let wall_time = self.limits.wall_time;
        let deadline = self.deadline.unwrap_or(started + wall_time);
        // The epoch callback (see `Runtime::instantiate`) stops code running
        // in wasm at the deadline; the timer, time blocked in the host. The
        // timer takes the same deadline rather than reading the clock again.
        self.store.data_mut().deadline = Some(deadline);
        let abort = self.store.data().abort.clone();
        let outcome = match bulk {
            Some((func, args)) => {
                within(func.call_async(&mut self.store, args), deadline, &abort).await
            }
            None => within(
                func.call_async(&mut self.store, &params, results),
                deadline,
                &abort,
            )
            .await
            .map(|called| called.map(|()| None)),
        };
        self.store.data_mut().deadline = None;
        match outcome {
            Err(Stopped::Elapsed) => Err(CallError::Limit {
                limit: Limit::WallTime(wall_time),
                detail: None,
            }),
            Err(Stopped::Aborted) => Err(CallError::Aborted),
            Ok(Err(err)) => Err(classify(
                &err,
                &mut self.store,
                &self.captured,
                &self.limits,
            )),
            // Lifted and counted against the result limit as it was read
            // out of the guest (`bulk::BulkList`).
            Ok(Ok(Some(value))) => Ok(Some(value)),
            Ok(Ok(None)) => {
                // Counted and bounded as it is converted (see
                // `Runtime::instantiate_with` for how the lift is bounded).
                let value = results
                    .first_mut()
                    .map(|val| {
                        let val = std::mem::replace(val, Val::Bool(false));
                        from_val_within(val, self.limits.result_bytes).map(|(value, _)| value)
                    })
                    .transpose()?;
                Ok(value)
            }
        }
    }
}

/// Why a call blocked in the host was stopped there.
enum Stopped {
    /// Its wall-time deadline passed.
    Elapsed,
    /// It was aborted.
    Aborted,
}

/// Runs a call to its end, or stops it at `deadline` or when `abort` is
/// asked, even while it waits in the host (the epoch tick stops only guest
/// code). Most calls finish in their first poll (they never block in the
/// host); only one that does not needs the timer, whose setup costs as
/// much as a short call. A call stopped here leaves its instance unfit for
/// another: the caller drops it.
async fn within<R>(
    call: impl Future<Output = R>,
    deadline: Instant,
    abort: &crate::sandbox::AbortHandle,
) -> Result<R, Stopped> {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => Ok(result),
        Poll::Pending => tokio::select! {
            timed = tokio::time::timeout_at(deadline.into(), call) => {
                timed.map_err(|_| Stopped::Elapsed)
            }
            () = abort.aborted() => Err(Stopped::Aborted),
        },
    }
}

/// Assembles a call's report, draining the captured output.
fn report(
    result: Result<Option<Value>, CallError>,
    store: &mut Store<TaskState>,
    captured: &Captured,
    duration: Duration,
) -> CallReport {
    let (stdout, _) = captured.stdout.take();
    let (stderr, _) = captured.stderr.take();
    CallReport {
        result,
        stdout,
        stderr,
        logs: store.data_mut().take_logs(),
        duration,
        peak_memory_bytes: store.data().limiter.peak,
    }
}

/// Turns a failed call into the error that names its cause: a limit when
/// one was hit, the trap otherwise.
fn classify(
    err: &wasmtime::Error,
    store: &mut Store<TaskState>,
    captured: &Captured,
    limits: &Limits,
) -> CallError {
    let stderr_tail = || tail(&captured.stderr.peek());
    if let Some(requested) = store.data_mut().limiter.refused.take() {
        return CallError::Limit {
            limit: Limit::MemoryBytes(limits.memory_bytes),
            detail: Some(format!("a memory grow to {requested} bytes was refused")),
        };
    }
    for (name, pipe) in [("stdout", &captured.stdout), ("stderr", &captured.stderr)] {
        if pipe.overflowed() {
            return CallError::Limit {
                limit: Limit::OutputBytes(name, limits.output_bytes),
                detail: None,
            };
        }
    }
    if is_hostcall_fuel_exhausted(err) {
        return CallError::Limit {
            limit: Limit::ResultBytes(limits.result_bytes),
            detail: Some(
                "the guest passed the host more than that in one go (a result, or a WASI call's \
                 arguments), counted as host memory"
                    .into(),
            ),
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) if store.data().abort.is_aborted() => CallError::Aborted,
        Some(Trap::Interrupt) => CallError::Limit {
            limit: Limit::WallTime(limits.wall_time),
            detail: None,
        },
        Some(Trap::StackOverflow) => CallError::Limit {
            limit: Limit::StackBytes(limits.stack_bytes),
            detail: None,
        },
        Some(trap) => CallError::Trap {
            trap: trap.to_string(),
            detail: stderr_tail(),
        },
        None => CallError::Trap {
            trap: root_message(err),
            detail: stderr_tail(),
        },
    }
}

/// How wasmtime 48 says that lifting a value out of the guest ran out of
/// hostcall fuel. Its error type is private, so the message is matched; the
/// result-bomb tests (`tests/sandbox.rs`) fail if it ever changes.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

fn is_hostcall_fuel_exhausted(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|cause| cause.to_string().contains(HOSTCALL_FUEL_EXHAUSTED))
}

/// The end of a guest's stderr, where a panic message is, as text.
fn tail(stderr: &[u8]) -> Option<String> {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(&stderr[start..]);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn root_message(err: &wasmtime::Error) -> String {
    err.root_cause().to_string()
}

/// The wasmtime configuration of a runtime with these limits, instance
/// pool size and resident memory per slot ([`RuntimeConfig`]; public so
/// that benchmarks compare against the same engine).
pub fn engine_config(limits: &Limits, max_instances: u32, keep_resident: usize) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * 16)
        .total_memories(max_instances * 2)
        .total_tables(max_instances * 8)
        .total_stacks(max_instances)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(32)
        .max_memory_size(limits.memory_bytes)
        // Python and JavaScript components need large tables (TOOLCHAIN.md).
        .table_elements(100_000)
        // A slot's memory and table are reset in place when its instance
        // goes (zeroed or restored to the module's image), not returned to
        // the kernel: the next instance then takes no page faults. With
        // PAGEMAP_SCAN (Linux 6.7+) only the pages the task dirtied are
        // reset, so a small task pays for what it touched. Fresh-store call
        // of `area`: 22.7 -> 7.2 us (bench runtime). What stays resident is
        // bounded: `keep_resident` (16 MiB by default) per memory slot and
        // 64 KiB per table slot, and only what tasks dirtied: an engine has
        // 8 instances (16 memories, 64 tables), so 260 MiB at most.
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(1 << 16)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes)
        // Host calls (WASI) run on the same fiber stack as the guest.
        .async_stack_size(limits.stack_bytes + (2 << 20));
    config
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("wasp-epoch".into())
        .spawn(move || {
            // A tick late is a turn late (`turns`): the ticker runs
            // briefly, and should run as soon as it wakes, even while
            // every core computes.
            wasp_net::wakeups::prefer_prompt_wakeups();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
    if let Err(err) = spawned {
        tracing::error!(cause = %err, "could not start the epoch ticker; wall-time limits rest on the timer alone");
    }
}
