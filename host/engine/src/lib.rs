//! wasp's engine side: the sandboxed WebAssembly runtime that loads task
//! components, caches their compiled code by content hash, and runs each
//! call in a fresh, limited sandbox.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use wasp_engine::{CallContext, Runtime, RuntimeConfig};
//! use wasp_proto::Value;
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let module = runtime.load(std::fs::read("area.wasm")?).await?;
//! let report = runtime
//!     .call(&module, "area", &[Value::S64(3), Value::S64(7)], CallContext::default())
//!     .await;
//! assert_eq!(report.result?, Some(Value::S64(21)));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`node`]: the engine process: joins a controller, runs what it is sent,
//!   and reconnects when the controller goes away.
//! - [`backoff`]: `wasp_net::backoff`, re-exported: when to try again and
//!   when to give up, for the engine's reconnects and the cluster
//!   supervisor's restarts.
//! - [`runtime`]: [`Runtime`] (engine, linker, module caches, calls),
//!   [`Module`], [`TaskInstance`], [`CallReport`].
//! - [`sandbox`]: what each task's store holds and what it is granted (the
//!   sandbox policy), and the `wasp:task` host interfaces.
//! - [`limits`]: [`Limits`], the per-task limits and their defaults.
//! - [`reflect`]: exports and their signatures, read from a component.
//! - [`convert`]: `Value` to `wasmtime::component::Val` and back.
//! - [`args`]: argument checks against a signature.
//! - [`error`]: [`LoadError`] and [`CallError`].
//! - `header`, `cache`, `capture`: the raw-bytes checks, the on-disk compile
//!   cache, and bounded stdout/stderr capture.
//! - `turns`: how an engine runs a task sliced in beside its running one
//!   (another tenant's): the two take turns at epoch ticks, by weight.

pub mod args;
pub mod bulk;
pub use wasp_net::backoff;
mod cache;
mod capture;
pub mod convert;
pub mod error;
mod header;
pub mod limits;
pub mod node;
pub mod reflect;
pub mod runtime;
pub mod sandbox;
mod turns;

pub use error::{CallError, LoadError};
pub use limits::{Limit, Limits};
pub use reflect::{Export, Exports};
pub use runtime::{CallReport, Module, Origin, Runtime, RuntimeConfig, SetupError, TaskInstance};
pub use sandbox::{CallContext, LogLevel, LogLine};
