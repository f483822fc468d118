//! `wasp.AsyncResult`: the results of an `apply` or a `map`, as they
//! arrive, with ipyparallel's names: `get(timeout)`, `ready()`,
//! `wait(timeout)`, `successful()`, `msg_ids`, iteration in submission
//! order (or completion order for an unordered map), `wall_time`,
//! `serial_time`, `elapsed`, `metadata`, `stdout`, `wait_interactive()`,
//! `abort()`.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tokio::sync::Mutex;
use wasp_client::AsyncResult as ClientResult;
use wasp_proto::Value;

use crate::convert;
use crate::errors::OrPy;
use crate::runtime;

/// The results of a submission (`view.apply_async(...)`,
/// `view.map_async(...)`).
#[pyclass(frozen, module = "wasp")]
pub struct AsyncResult {
    inner: Arc<Mutex<ClientResult>>,
    msg_ids: Vec<String>,
    /// An `apply` on one engine: `get` gives the value, not a list.
    single: bool,
}

impl AsyncResult {
    /// Wraps a client's result; `single` when `get` gives one value.
    pub(crate) fn new(result: ClientResult, single: bool) -> Self {
        Self {
            msg_ids: result.msg_ids().iter().map(ToString::to_string).collect(),
            inner: Arc::new(Mutex::new(result)),
            single,
        }
    }

    /// Runs `f` on the result with the GIL released while it waits for
    /// the lock (another thread may hold it across a wait, and would need
    /// the GIL to finish).
    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut ClientResult) -> T + Send) -> T {
        let inner = self.inner.clone();
        py.detach(move || f(&mut inner.blocking_lock()))
    }

    /// Every result, waiting up to `timeout`; the values as Python objects.
    pub(crate) fn get_values(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let timeout = seconds(timeout)?;
        let inner = self.inner.clone();
        let values =
            runtime::wait(py, async move { inner.lock().await.get(timeout).await })?.or_py()?;
        values_to_py(py, values, self.single)
    }
}

/// Results as Python: the one value of an `apply` on one engine
/// (`single`), else the list.
pub(crate) fn values_to_py(
    py: Python<'_>,
    values: Vec<Option<Value>>,
    single: bool,
) -> PyResult<Py<PyAny>> {
    if single {
        let value = values.into_iter().next().flatten();
        return option_to_py(py, value.as_ref());
    }
    let items = values
        .iter()
        .map(|v| option_to_py(py, v.as_ref()))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any().unbind())
}

/// A function's result: `None` when it returns nothing.
fn option_to_py(py: Python<'_>, value: Option<&Value>) -> PyResult<Py<PyAny>> {
    match value {
        Some(value) => convert::to_py(py, value),
        None => Ok(py.None()),
    }
}

/// A timeout in seconds as a duration; `None` waits for ever.
pub(crate) fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    timeout
        .map(|s| {
            Duration::try_from_secs_f64(s.max(0.0)).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "timeout must be a number of seconds, got {s}"
                ))
            })
        })
        .transpose()
}

#[pymethods]
impl AsyncResult {
    /// The results, waiting up to `timeout` seconds (for ever by
    /// default): the value of an `apply`, the list of a `map`. A task that
    /// failed raises its `RemoteError`; running out of time raises
    /// `TimeoutError`.
    #[pyo3(signature = (timeout = None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        self.get_values(py, timeout)
    }

    /// Whether every task has finished.
    fn ready(&self, py: Python<'_>) -> bool {
        self.with(py, |r| r.ready())
    }

    /// Waits up to `timeout` seconds (for ever by default) for every task;
    /// returns whether all finished.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        let inner = self.inner.clone();
        runtime::wait(py, async move { inner.lock().await.wait(timeout).await })
    }

    /// Whether every task succeeded; raises if they have not all finished
    /// (as ipyparallel's does).
    fn successful(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |r| r.successful())
            .ok_or_else(|| PyRuntimeError::new_err("the tasks have not all finished yet"))
    }

    /// The tasks' ids: one for an `apply` on one engine, one per engine or
    /// per chunk otherwise.
    #[getter]
    fn msg_ids(&self) -> Vec<String> {
        self.msg_ids.clone()
    }

    /// How many tasks have finished.
    #[getter]
    fn progress(&self, py: Python<'_>) -> usize {
        self.with(py, |r| r.progress())
    }

    /// Seconds from the first submission to the last completion.
    #[getter]
    fn wall_time(&self, py: Python<'_>) -> f64 {
        self.with(py, |r| r.wall_time())
    }

    /// The sum of the tasks' own run times.
    #[getter]
    fn serial_time(&self, py: Python<'_>) -> f64 {
        self.with(py, |r| r.serial_time())
    }

    /// Seconds since submission; once everything finished, the wall time.
    #[getter]
    fn elapsed(&self, py: Python<'_>) -> f64 {
        self.with(py, |r| r.elapsed())
    }

    /// Each task's metadata, in submission order (`None` for a task not
    /// finished): `engine_id`, `submitted`, `started`, `completed` (Unix
    /// seconds), `stdout`, `stderr`, `peak_memory_bytes`, `attempts`.
    #[getter]
    fn metadata(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let metas: Vec<Option<wasp_proto::msg::TaskMeta>> = self.with(py, |r| {
            r.metadata().into_iter().map(|m| m.cloned()).collect()
        });
        let items = metas
            .iter()
            .map(|meta| -> PyResult<Py<PyAny>> {
                let Some(meta) = meta else {
                    return Ok(py.None());
                };
                let dict = PyDict::new(py);
                dict.set_item("engine_id", meta.engine.map(|e| e.0))?;
                dict.set_item("submitted", meta.submitted_us as f64 / 1e6)?;
                dict.set_item("started", meta.started_us as f64 / 1e6)?;
                dict.set_item("completed", meta.completed_us as f64 / 1e6)?;
                dict.set_item("stdout", &meta.stdout)?;
                dict.set_item("stderr", &meta.stderr)?;
                dict.set_item("peak_memory_bytes", meta.peak_memory_bytes)?;
                dict.set_item("attempts", meta.attempts)?;
                Ok(dict.into_any().unbind())
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.unbind())
    }

    /// Each task's captured stdout, in submission order (`""` for a task
    /// not finished).
    #[getter]
    fn stdout(&self, py: Python<'_>) -> Vec<String> {
        self.with(py, |r| {
            r.metadata()
                .into_iter()
                .map(|m| m.map(|m| m.stdout.clone()).unwrap_or_default())
                .collect()
        })
    }

    /// Aborts the tasks not finished yet: queued ones never run, running
    /// ones are interrupted; each then fails as aborted.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        runtime::wait(py, async move { inner.lock().await.abort().await })?.or_py()
    }

    /// Waits for every task, showing progress: a tqdm bar (a widget in
    /// Jupyter, through `tqdm.auto`) when tqdm is installed, else a bar on
    /// stderr.
    #[pyo3(signature = (interval = 0.1))]
    fn wait_interactive(&self, py: Python<'_>, interval: f64) -> PyResult<()> {
        let Ok(tqdm) = py.import("tqdm.auto") else {
            let inner = self.inner.clone();
            return runtime::wait(
                py,
                async move { inner.lock().await.wait_interactive().await },
            );
        };
        let total = self.msg_ids.len();
        let kwargs = PyDict::new(py);
        kwargs.set_item("total", total)?;
        kwargs.set_item("unit", "tasks")?;
        let bar = tqdm.getattr("tqdm")?.call((), Some(&kwargs))?;
        let mut shown = 0;
        loop {
            let done = self.wait(py, Some(interval))?;
            let progress = self.progress(py);
            if progress > shown {
                bar.call_method1("update", (progress - shown,))?;
                shown = progress;
            }
            if done {
                break;
            }
        }
        bar.call_method0("close")?;
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.msg_ids.len()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next result as results arrive: each item of a map (in
    /// submission order, or completion order when unordered), or the one
    /// value of an apply.
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let inner = self.inner.clone();
        match runtime::wait(py, async move { inner.lock().await.next().await })? {
            None => Err(PyStopIteration::new_err(())),
            Some(item) => option_to_py(py, item.or_py()?.as_ref()),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let (done, total) = self.with(py, |r| (r.progress(), r.msg_ids().len()));
        format!("<AsyncResult: {done}/{total} tasks finished>")
    }
}
