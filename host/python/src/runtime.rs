//! The extension's tokio runtime, and how Python waits on it.
//!
//! Every blocking call releases the GIL while it waits, so that other
//! Python threads run (ipyparallel's calls do the same), and waits in
//! slices, checking for signals between them, so that Ctrl-C interrupts a
//! wait with `KeyboardInterrupt` rather than hanging until the cluster
//! answers.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How long a wait runs with the GIL released before it checks for
/// signals: short enough that Ctrl-C feels immediate.
const SIGNAL_CHECK_EVERY: Duration = Duration::from_millis(50);

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime the client's connections live on: two worker threads,
/// started at the first use and kept for the life of the process (a
/// client's reader and writer tasks outlive any one call).
fn runtime() -> PyResult<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("wasp-client")
        .enable_all()
        .build()
        .map_err(|err| PyRuntimeError::new_err(format!("could not start wasp's runtime: {err}")))?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Runs `future` to completion on the runtime with the GIL released;
/// `KeyboardInterrupt` (or any signal handler's exception) if a signal
/// arrives first, in which case the future is dropped.
pub(crate) fn wait<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    let mut future = std::pin::pin!(future);
    loop {
        // The timer is made inside `block_on`: it needs the runtime.
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_CHECK_EVERY, &mut future).await })
        });
        match step {
            Ok(output) => return Ok(output),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}
