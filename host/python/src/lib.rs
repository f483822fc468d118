//! The compiled half of the `wasp` Python package (`wasp._wasp`): a PyO3
//! extension over `wasp-client`, so that Python speaks to a wasp cluster
//! with ipyparallel's names and nothing in Python speaks the protocol
//! again. The Python half (`python/wasp/__init__.py`) re-exports these
//! classes and adds what is plain Python (`Cluster`).
//!
//! # Layout
//! - `runtime`: the one tokio runtime, and waiting on it with the GIL
//!   released and Ctrl-C honoured.
//! - `convert`: Python objects to wasp values by a WIT signature, and back.
//! - `module`: `Module` (a component read from a file) and `Function` (one
//!   of its exports, with its signature).
//! - `client`: `Client`.
//! - `db`: the task database's calls on `Client`, their arguments and
//!   answers in Python's forms.
//! - `views`: `LoadBalancedView`, `DirectView`.
//! - `result`: `AsyncResult`.
//! - `errors`: the exceptions, and how client errors become them.

use pyo3::prelude::*;

mod client;
mod convert;
mod db;
mod errors;
mod module;
mod result;
mod runtime;
mod views;

/// The `wasp._wasp` extension module.
#[pymodule]
fn _wasp(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<views::LoadBalancedView>()?;
    m.add_class::<views::DirectView>()?;
    m.add_class::<result::AsyncResult>()?;
    m.add_class::<module::Module>()?;
    m.add_class::<module::Function>()?;
    m.add_class::<convert::Reference>()?;
    errors::register(m)?;
    Ok(())
}
