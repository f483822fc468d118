//! wasp's benchmarks.
//!
//! The `runtime` binary (`src/bin/runtime.rs`) times wasp's engine runtime
//! (`wasp_engine::Runtime`) on the seed tasks, each figure beside its limit:
//! plain wasmtime doing the least the same job needs. See `bench/README.md`
//! for what each figure means and the targets.
//!
//! # Layout
//! - [`timing`]: the timing helper (warm-up, sampling budget, median and
//!   p99), in place of a benchmark framework.
//! - [`bare`]: the bare wasmtime engine, linker and call loops that serve as
//!   limits.
//! - [`report`]: result rows, the markdown table and the JSON file.

pub mod bare;
pub mod report;
pub mod timing;
