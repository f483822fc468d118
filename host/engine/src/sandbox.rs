//! The per-call sandbox: what a task's `Store` holds and what its linker
//! grants.
//!
//! Policy: WASI p2 is linked with nothing granted. No preopened directories,
//! no environment variables, no arguments, no sockets, no name lookup, no
//! inherited stdio (stdout and stderr are captured, bounded, into the call's
//! metadata; stdin is empty). Wall and monotonic clocks and random numbers
//! are granted, because `sleep` and Monte Carlo need them. Beyond WASI, a
//! task may import `wasp:task` (identity and logging), nothing else.
//!
//! What the host allocates on a guest's behalf is bounded too (see
//! [`Limits`]): the WASI resource table (`wasi_handles`), one
//! `wasi:random` request (`random_bytes`), and the data one call passes
//! from guest to host (wasmtime's hostcall fuel, set to `result_bytes`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capture::CapturePipe;
use crate::limits::Limits;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wasp:task/imports",
    });
}

use bindings::wasp::task::{identity, log};

/// Who a call runs as: what `wasp:task/identity` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The engine's id (0 when run locally).
    pub engine_id: u32,
    /// The tenant that submitted the task.
    pub tenant: String,
    /// The task's id.
    pub task_id: String,
}

pub use wasp_proto::msg::{LogLevel, LogLine};

/// The data of one task's `Store`.
pub(crate) struct TaskState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) context: CallContext,
    pub(crate) logs: Vec<LogLine>,
    log_bytes: usize,
    log_limit: usize,
    logs_overflowed: bool,
    /// When the running call's (or instantiation's) wall time is up (`None`
    /// between calls), read by the store's epoch callback.
    pub(crate) deadline: Option<Instant>,
    /// Set when the task is aborted: the epoch callback interrupts the
    /// guest at its next tick.
    pub(crate) abort: AbortHandle,
}

/// Stops a running task, from any thread (the engine's connection reader,
/// when the controller forwards an abort): guest code at the next epoch
/// tick, and a call blocked in the host (a WASI sleep, a poll) at once
/// ([`AbortHandle::aborted`], which the call's timer waits on too).
#[derive(Clone, Debug, Default)]
pub struct AbortHandle(Arc<AbortState>);

#[derive(Debug, Default)]
struct AbortState {
    asked: AtomicBool,
    /// Wakes a call waiting in the host.
    wake: tokio::sync::Notify,
}

impl AbortHandle {
    /// Asks the task to stop.
    pub fn abort(&self) {
        self.0.asked.store(true, Ordering::Relaxed);
        self.0.wake.notify_waiters();
    }

    /// Whether it was asked to.
    pub fn is_aborted(&self) -> bool {
        self.0.asked.load(Ordering::Relaxed)
    }

    /// Completes once the task is asked to stop.
    pub async fn aborted(&self) {
        loop {
            // Registered before looking, so an abort in between is seen.
            let woken = self.0.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.is_aborted() {
                return;
            }
            woken.await;
        }
    }

    /// Clears the request, for an instance handed to its next task.
    pub(crate) fn reset(&self) {
        self.0.asked.store(false, Ordering::Relaxed);
    }
}

/// The captured streams of a task, kept outside its store so they can be
/// read after a trap.
#[derive(Clone)]
pub(crate) struct Captured {
    pub(crate) stdout: CapturePipe,
    pub(crate) stderr: CapturePipe,
}

impl TaskState {
    /// A sandbox with nothing granted but clocks and random, and stdout and
    /// stderr captured up to the output limit each.
    pub(crate) fn new(context: CallContext, limits: &Limits) -> (Self, Captured) {
        let output_limit = limits.output_bytes;
        let captured = Captured {
            stdout: CapturePipe::new(output_limit),
            stderr: CapturePipe::new(output_limit),
        };
        let wasi = WasiCtx::builder()
            .stdout(captured.stdout.clone())
            .stderr(captured.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(u64::try_from(limits.random_bytes).unwrap_or(u64::MAX))
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.wasi_handles);
        let state = Self {
            wasi,
            table,
            limiter: MemoryLimiter::new(limits.memory_bytes),
            context,
            logs: Vec::new(),
            log_bytes: 0,
            log_limit: output_limit,
            logs_overflowed: false,
            deadline: None,
            abort: AbortHandle::default(),
        };
        (state, captured)
    }
}

impl TaskState {
    /// Takes this call's log lines, starting the log limit afresh for the
    /// next call on the same instance. Lines dropped at the limit are
    /// reported by a last line saying so.
    pub(crate) fn take_logs(&mut self) -> Vec<LogLine> {
        let mut logs = std::mem::take(&mut self.logs);
        if std::mem::take(&mut self.logs_overflowed) {
            logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "wasp: later log lines were dropped at the captured log limit (output_bytes = {})",
                    crate::limits::bytes(self.log_limit)
                ),
            });
        }
        self.log_bytes = 0;
        logs
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl identity::Host for TaskState {
    fn engine_id(&mut self) -> u32 {
        self.context.engine_id
    }

    fn tenant(&mut self) -> String {
        self.context.tenant.clone()
    }

    fn task_id(&mut self) -> String {
        self.context.task_id.clone()
    }
}

impl log::Host for TaskState {
    fn log(&mut self, level: log::Level, message: String) {
        // Lines past the limit are dropped, not fatal: logging must never be
        // the reason a task fails. The drop is reported in the metadata.
        if self.log_bytes + message.len() > self.log_limit {
            self.logs_overflowed = true;
            return;
        }
        self.log_bytes += message.len();
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        tracing::debug!(task = %self.context.task_id, ?level, %message, "guest log");
        self.logs.push(LogLine { level, message });
    }
}

/// Builds the linker every task is instantiated against: WASI p2 and
/// `wasp:task`, nothing else.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<TaskState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::Imports::add_to_linker::<TaskState, HasSelf<TaskState>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// Bounds a task's linear memory and remembers a refusal, so that the trap
/// that usually follows (an allocation failure) is reported as the memory
/// limit rather than as a bare `unreachable`.
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// Bytes currently held by the instance's memories.
    in_use: usize,
    /// The most bytes they held at once: what a task reports as its peak
    /// memory, so a user can size the limit.
    pub(crate) peak: usize,
    /// The size a refused grow asked for.
    pub(crate) refused: Option<usize>,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            in_use: 0,
            peak: 0,
            refused: None,
        }
    }

    /// Lowers (or restores) the limit for the next task of an instance
    /// made ahead of it. Memory the instance already holds stays; the
    /// caller checks [`in_use`](Self::in_use) against the new limit.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Bytes the instance's memories hold now.
    pub(crate) fn in_use(&self) -> usize {
        self.in_use
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.in_use - current.min(self.in_use) + desired;
        if total > self.limit {
            self.refused = Some(total);
            return Ok(false);
        }
        self.in_use = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; the pooling allocator bounds
        // their size, this keeps a guest from asking for absurd ones.
        Ok(desired <= 1_000_000)
    }
}
