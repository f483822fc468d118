//! The limits the host enforces on every task, never trusting the guest.
//!
//! Each limit has a default and a setting, and every violation fails only
//! the call that committed it, with an error that names the limit and its
//! value. What a limit does not cover is said beside it, as wasmtime does
//! in its `runtime/limits.rs`.

use std::fmt;
use std::time::Duration;

use wasp_proto::msg::TaskLimits;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Per-task resource limits of an engine's runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest module accepted, checked on the raw bytes before compiling:
    /// wasmtime leaves compile-time denial of service to the embedder.
    /// Python and JavaScript components are tens of MB.
    pub module_bytes: usize,
    /// Linear memory per task, summed over every memory of the instance (a
    /// component may have several). Host-side allocations made on the
    /// guest's behalf (WASI tables, pipes) are bounded separately.
    pub memory_bytes: usize,
    /// Wall-clock time per task, including time the guest spends blocked in
    /// host calls such as `sleep`. Instantiation (the component's start
    /// functions) runs under it, and then each call; the items of one chunk
    /// share one budget, counted from the task's start. Enforced by epoch
    /// interruption (for code running in wasm) and a timer (for time spent
    /// in the host).
    pub wall_time: Duration,
    /// Wall-clock time to compile a module. Cranelift cannot be cancelled:
    /// at the deadline the load fails with this limit's error and the
    /// engine moves on, while the compilation runs to its end on a blocking
    /// thread and is then dropped. The deadline bounds how long work waits
    /// behind a module, not the CPU the compiler spends on it (the module
    /// size limit bounds that). A local `wasp run` compiles without it.
    pub compile_time: Duration,
    /// Native stack for wasm frames: deep recursion traps with a stack
    /// overflow instead of crashing the engine.
    pub stack_bytes: usize,
    /// Arguments of one call, as counted by `Value::cost_bytes`.
    pub arg_bytes: usize,
    /// Result of one call, and everything a chunk sends back (its results
    /// and captured output together), counted as host memory: per value
    /// `size_of::<Value>()` plus its string and name bytes. Bounded while
    /// the result is lifted out of the guest, never after: it is also
    /// wasmtime's hostcall fuel, so the lift itself stops at this many
    /// bytes, and the conversion to `Value` counts the same way (see
    /// `runtime::TaskInstance`). The same fuel bounds the data a guest
    /// passes to one WASI call.
    pub result_bytes: usize,
    /// Captured output per stream (stdout, stderr, and log lines) per call.
    pub output_bytes: usize,
    /// Entries in a task's WASI resource table (open streams, pollables,
    /// and other handles the host holds for the guest): wasmtime-wasi's
    /// `ResourceTable::set_max_capacity`. A guest that opens more gets an
    /// error from the call that would add one.
    pub wasi_handles: usize,
    /// Bytes one `wasi:random` call may ask for: wasmtime-wasi's
    /// `WasiCtxBuilder::max_random_size`. A larger request traps.
    pub random_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            module_bytes: 256 * MIB,
            memory_bytes: 512 * MIB,
            wall_time: Duration::from_secs(300),
            compile_time: Duration::from_secs(300),
            stack_bytes: MIB,
            arg_bytes: 64 * MIB,
            result_bytes: 64 * MIB,
            output_bytes: MIB,
            wasi_handles: 10_000,
            random_bytes: MIB,
        }
    }
}

impl Limits {
    /// These limits with a task's own requests applied: a request below a
    /// limit lowers it, one above is capped to it (the engine's settings
    /// are its ceilings).
    pub fn for_task(&self, requested: &TaskLimits) -> Limits {
        let mut limits = self.clone();
        if let Some(us) = requested.timeout_us {
            limits.wall_time = limits.wall_time.min(Duration::from_micros(us));
        }
        if let Some(bytes) = requested.memory_bytes {
            let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
            limits.memory_bytes = limits.memory_bytes.min(bytes);
        }
        limits
    }
}

/// Which limit a call or a module exceeded, with its configured value, for
/// error messages: `memory limit (memory_bytes = 64 MiB)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::module_bytes`]
    ModuleBytes(usize),
    /// [`Limits::memory_bytes`]
    MemoryBytes(usize),
    /// [`Limits::wall_time`]
    WallTime(Duration),
    /// [`Limits::compile_time`]
    CompileTime(Duration),
    /// [`Limits::stack_bytes`]
    StackBytes(usize),
    /// [`Limits::arg_bytes`]
    ArgBytes(usize),
    /// [`Limits::result_bytes`]
    ResultBytes(usize),
    /// [`Limits::output_bytes`], for the named stream.
    OutputBytes(&'static str, usize),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::ModuleBytes(n) => write!(f, "module size limit (module_bytes = {})", bytes(n)),
            Limit::MemoryBytes(n) => write!(f, "memory limit (memory_bytes = {})", bytes(n)),
            Limit::WallTime(d) => write!(f, "wall-time limit (wall_time = {d:?})"),
            Limit::CompileTime(d) => write!(f, "compile-time limit (compile_time = {d:?})"),
            Limit::StackBytes(n) => write!(f, "wasm stack limit (stack_bytes = {})", bytes(n)),
            Limit::ArgBytes(n) => write!(f, "argument size limit (arg_bytes = {})", bytes(n)),
            Limit::ResultBytes(n) => write!(f, "result size limit (result_bytes = {})", bytes(n)),
            Limit::OutputBytes(stream, n) => {
                write!(f, "captured {stream} limit (output_bytes = {})", bytes(n))
            }
        }
    }
}

/// Prints a byte count in the largest whole binary unit: `64 MiB`, `1500 B`.
pub fn bytes(n: usize) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_print_their_setting_and_value() {
        assert_eq!(
            Limit::MemoryBytes(64 * MIB).to_string(),
            "memory limit (memory_bytes = 64 MiB)"
        );
        assert_eq!(
            Limit::OutputBytes("stdout", 1000).to_string(),
            "captured stdout limit (output_bytes = 1000 B)"
        );
        assert_eq!(bytes(3 * KIB), "3 KiB");
    }

    #[test]
    fn a_task_may_lower_its_limits_but_not_raise_them() {
        let ceilings = Limits::default();
        let lower = ceilings.for_task(&TaskLimits {
            timeout_us: Some(2_000_000),
            memory_bytes: Some(16 * MIB as u64),
        });
        assert_eq!(lower.wall_time, Duration::from_secs(2));
        assert_eq!(lower.memory_bytes, 16 * MIB);
        let higher = ceilings.for_task(&TaskLimits {
            timeout_us: Some(u64::MAX),
            memory_bytes: Some(u64::MAX),
        });
        assert_eq!(higher, ceilings);
        assert_eq!(ceilings.for_task(&TaskLimits::default()), ceilings);
    }
}
