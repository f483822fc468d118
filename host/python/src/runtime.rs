//! The extension's tokio runtime, and how Python waits on it.
//!
//! Every blocking call releases the GIL while it waits, so that other
//! Python threads run (ipyparallel's calls do the same), polls briefly
//! before it parks (a quick answer then costs no thread wake-up), and waits
//! in slices, checking for signals between them, so that Ctrl-C interrupts
//! a wait with `KeyboardInterrupt` rather than hanging until the cluster
//! answers.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How long a wait runs with the GIL released before it checks for
/// signals: short enough that Ctrl-C feels immediate.
const SIGNAL_CHECK_EVERY: Duration = Duration::from_millis(50);

/// How long a wait polls its future on Python's thread before it parks
/// the thread for the runtime to wake. A round trip on one host takes
/// about 0.13 ms, and waking a parked thread costs tens of microseconds
/// on these VMs, each way: polling (and yielding the core between polls,
/// so that the controller and engines still run on a 2-core machine) took
/// `apply_sync` from Python from 0.18-0.30 ms to 0.14-0.15 ms, level with
/// the Rust client's. A longer wait costs this much CPU once.
const POLL_BEFORE_PARKING: Duration = Duration::from_micros(300);

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
    // First poll it here for a moment, yielding the core between polls:
    // most answers come back before a parked thread would have woken.
    let ready = py.detach(|| {
        let _inside = runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let until = Instant::now() + POLL_BEFORE_PARKING;
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Some(output);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::yield_now();
        }
    });
    if let Some(output) = ready {
        return Ok(output);
    }
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
