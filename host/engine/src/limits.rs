//! The limits the host enforces on every task, never trusting the guest.
//!
//! Each limit has a default and a setting, and every violation fails only
//! the call that committed it, with an error that names the limit and its
//! value. What a limit does not cover is said beside it, as wasmtime does
//! in its `runtime/limits.rs`.

use std::fmt;
use std::time::Duration;

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
    /// Wall-clock time per call, including time the guest spends blocked in
    /// host calls such as `sleep`. Enforced by epoch interruption (for code
    /// running in wasm) and a timer (for time spent in the host).
    pub wall_time: Duration,
    /// Native stack for wasm frames: deep recursion traps with a stack
    /// overflow instead of crashing the engine.
    pub stack_bytes: usize,
    /// Arguments of one call, as counted by `Value::cost_bytes`.
    pub arg_bytes: usize,
    /// Result of one call, as counted by `Value::cost_bytes`. Checked after
    /// the guest returns, so the guest's memory limit bounds what it can
    /// build first.
    pub result_bytes: usize,
    /// Captured output per stream (stdout, stderr, and log lines) per call.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            module_bytes: 256 * MIB,
            memory_bytes: 512 * MIB,
            wall_time: Duration::from_secs(300),
            stack_bytes: MIB,
            arg_bytes: 64 * MIB,
            result_bytes: 64 * MIB,
            output_bytes: MIB,
        }
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
}
