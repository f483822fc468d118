//! wasp's benchmarks: the engine runtime against bare wasmtime, and real
//! clusters against ipyparallel, Dask and Ray.
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
//!
//! The `cluster` and `suite` binaries run real clusters (`suite` also runs
//! the peers); see `bench/README.md`:
//!
//! - [`cluster`]: a local cluster (`wasp cluster start --daemon`) in a
//!   temporary profile, stopped on drop.
//! - [`workloads`]: the scenarios on wasp (round trip, map, sleep, CPU
//!   speedup, module push, cold start, memory with a million tasks queued).
//! - [`processes`]: a controller and engine processes started one by one
//!   (`engines`, `dashboard`).
//! - [`schedsim`]: scheduler decisions per second in a simulation.
//! - [`peers`]: ipyparallel, Dask and Ray through their scripts in
//!   `bench/peers/`.
//! - [`compare`]: the suite's rows, wasp against the best peer, and targets.

pub mod bare;
pub mod cluster;
pub mod compare;
pub mod options;
pub mod peers;
pub mod processes;
pub mod report;
pub mod schedsim;
pub mod timing;
pub mod workloads;
