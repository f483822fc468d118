//! Turning command-line settings into the runtime's configuration: sizes
//! (`64MiB`), durations (`30s`), the cache directory.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use wasp_engine::{Limits, Runtime, RuntimeConfig};

use crate::cli::RuntimeArgs;

/// A byte count written as `1000`, `64KiB`, `64MiB`, `1GiB` (or KB/MB/GB,
/// also binary, as most tools mean them).
#[derive(Clone, Copy, Debug)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: usize = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a size: expected e.g. 1000, 64KiB, 512MiB, 1GiB"))?;
        let scale = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit {other:?}: expected B, KiB, MiB or GiB"
                ));
            }
        };
        n.checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// A duration written as `30s`, `500ms`, `2m` or a bare number of seconds.
#[derive(Clone, Copy, Debug)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
            (n, 1e-3)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = s.strip_suffix('m') {
            (n, 60.0)
        } else {
            (s, 1.0)
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a duration: expected e.g. 30s, 500ms, 2m"))?;
        Duration::try_from_secs_f64(value * scale)
            .map(Seconds)
            .map_err(|_| format!("{s:?} is not a valid duration"))
    }
}

impl RuntimeArgs {
    /// The limits: defaults, overridden by the flags given.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        let sizes = [
            (self.max_module_size, &mut limits.module_bytes),
            (self.max_memory, &mut limits.memory_bytes),
            (self.max_stack, &mut limits.stack_bytes),
            (self.max_args, &mut limits.arg_bytes),
            (self.max_result, &mut limits.result_bytes),
            (self.max_output, &mut limits.output_bytes),
            (self.max_random, &mut limits.random_bytes),
        ];
        for (flag, slot) in sizes {
            if let Some(ByteSize(n)) = flag {
                *slot = n;
            }
        }
        if let Some(Seconds(timeout)) = self.timeout {
            limits.wall_time = timeout;
        }
        if let Some(Seconds(timeout)) = self.compile_timeout {
            limits.compile_time = timeout;
        }
        if let Some(handles) = self.max_wasi_handles {
            limits.wasi_handles = handles;
        }
        limits
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(dir) = &self.cache_dir {
            return Some(dir.clone());
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("wasp").join("modules"))
    }

    /// The runtime configuration these settings give.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            limits: self.limits(),
            cache_dir: self.cache_dir(),
            // One call at a time locally; keep the instance pool small.
            max_instances: 4,
        }
    }

    /// A runtime with these settings.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Runtime::new(self.runtime_config()).context("starting the local runtime")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!("64MiB".parse::<ByteSize>().unwrap().0, 64 << 20);
        assert_eq!("1000".parse::<ByteSize>().unwrap().0, 1000);
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert!("64 parsecs".parse::<ByteSize>().is_err());
        assert_eq!(
            "500ms".parse::<Seconds>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("2m".parse::<Seconds>().unwrap().0, Duration::from_secs(120));
        assert_eq!(
            "1.5".parse::<Seconds>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert!("soon".parse::<Seconds>().is_err());
    }
}
