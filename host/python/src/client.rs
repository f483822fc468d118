//! `wasp.Client`: a connection to a controller, as ipyparallel's `Client`:
//! `Client(profile=..., url_file=...)`, `ids`, `rc[:]`, `rc[0]`,
//! `rc[[0, 2]]`, `load_balanced_view()`, `direct_view()`,
//! `wait_for_engines(n)`, `shutdown()`, and the task database
//! (`get_result`, `result_status`, `abort`, `resubmit`, `db_query`,
//! `purge_results`; see `db`).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySlice};
use wasp_proto::EngineId;

use crate::db;
use crate::errors::OrPy;
use crate::module::{Module, function_of};
use crate::result::AsyncResult;
use crate::result::seconds;
use crate::runtime;
use crate::views::{DirectView, LoadBalancedView};

/// A connection to a wasp controller.
#[pyclass(frozen, module = "wasp")]
pub struct Client {
    inner: wasp_client::Client,
}

impl Client {
    fn engine_ids(&self, py: Python<'_>) -> PyResult<Vec<EngineId>> {
        let client = self.inner.clone();
        runtime::wait(py, async move { client.ids().await })?.or_py()
    }

    fn direct(&self, targets: Vec<EngineId>) -> DirectView {
        DirectView::new(self.inner.view(targets))
    }
}

#[pymethods]
impl Client {
    /// Connects with the profile's client connection file
    /// (`$WASP_DIR/profile_NAME/security/wasp-client.json`, `default`
    /// unless named), or with `url_file` (a tenant's connection file).
    #[new]
    #[pyo3(signature = (url_file = None, profile = None))]
    fn new(py: Python<'_>, url_file: Option<PathBuf>, profile: Option<String>) -> PyResult<Self> {
        let inner = runtime::wait(py, async move {
            match url_file {
                Some(path) => wasp_client::Client::connect_file(&path).await,
                None => wasp_client::Client::connect(profile.as_deref().unwrap_or("default")).await,
            }
        })?
        .or_py()?;
        Ok(Self { inner })
    }

    /// The ids of the engines connected now.
    #[getter]
    fn ids(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        Ok(self.engine_ids(py)?.into_iter().map(|e| e.0).collect())
    }

    /// The tenant this client acts for.
    #[getter]
    fn tenant(&self) -> String {
        self.inner.tenant().0.clone()
    }

    /// Waits until at least `n` engines are connected, for at most
    /// `timeout` seconds (60 by default); returns their ids, or raises
    /// `WaspError` saying how many came.
    #[pyo3(signature = (n, timeout = None))]
    fn wait_for_engines(
        &self,
        py: Python<'_>,
        n: usize,
        timeout: Option<f64>,
    ) -> PyResult<Vec<u32>> {
        let timeout = seconds(timeout)?.unwrap_or(Duration::from_secs(60));
        let client = self.inner.clone();
        let ids =
            runtime::wait(py, async move { client.wait_for_engines(n, timeout).await })?.or_py()?;
        Ok(ids.into_iter().map(|e| e.0).collect())
    }

    /// A view whose tasks the scheduler places, on `targets` (engine ids)
    /// or on any engine.
    #[pyo3(signature = (targets = None))]
    fn load_balanced_view(&self, targets: Option<Vec<u32>>) -> LoadBalancedView {
        LoadBalancedView::new(self.inner.clone(), targets)
    }

    /// A view on `targets` (engine ids), or on every engine connected now.
    #[pyo3(signature = (targets = None))]
    fn direct_view(&self, py: Python<'_>, targets: Option<Vec<u32>>) -> PyResult<DirectView> {
        let targets = match targets {
            Some(ids) => ids.into_iter().map(EngineId).collect(),
            None => self.engine_ids(py)?,
        };
        Ok(self.direct(targets))
    }

    /// `rc[:]`, `rc[1:]`, `rc[0]`, `rc[[0, 2]]`: a direct view on engines
    /// picked from `ids` by position, as in ipyparallel.
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<DirectView> {
        let ids = self.engine_ids(py)?;
        let pick = |i: isize| -> PyResult<EngineId> {
            let at = if i < 0 { i + ids.len() as isize } else { i };
            usize::try_from(at)
                .ok()
                .and_then(|at| ids.get(at).copied())
                .ok_or_else(|| {
                    PyIndexError::new_err(format!("no engine at {i}: {} are connected", ids.len()))
                })
        };
        if let Ok(slice) = key.cast::<PySlice>() {
            let indices = slice.indices(ids.len() as isize)?;
            let mut targets = Vec::new();
            let mut i = indices.start;
            while (indices.step > 0 && i < indices.stop) || (indices.step < 0 && i > indices.stop) {
                targets.push(pick(i)?);
                i += indices.step;
            }
            return Ok(self.direct(targets));
        }
        if let Ok(i) = key.extract::<isize>() {
            return Ok(self.direct(vec![pick(i)?]));
        }
        if let Ok(list) = key.extract::<Vec<isize>>() {
            let targets = list.into_iter().map(pick).collect::<PyResult<Vec<_>>>()?;
            return Ok(self.direct(targets));
        }
        Err(PyTypeError::new_err(
            "a client is indexed by an int, a slice or a list of ints",
        ))
    }

    /// Loads `module` (a `Module`, one of its functions, or a
    /// `@wasp.task`) on every engine now, so that no task waits for the upload and compile.
    fn load(&self, py: Python<'_>, module: &Bound<'_, PyAny>) -> PyResult<()> {
        let module = match module.cast::<Module>() {
            Ok(m) => m.get().inner.clone(),
            Err(_) => function_of(module)?.module,
        };
        let ids = self.engine_ids(py)?;
        let view = self.inner.view(ids);
        runtime::wait(py, async move { view.load(&module).await })?.or_py()
    }

    /// The results of earlier tasks by msg_id (one, or a list), as an
    /// `AsyncResult`: a finished task's at once, an unfinished one's when
    /// it finishes; any client of the tenant may ask, after a restart too.
    fn get_result(&self, py: Python<'_>, msg_ids: &Bound<'_, PyAny>) -> PyResult<AsyncResult> {
        let (ids, single) = db::task_ids(msg_ids)?;
        let client = self.inner.clone();
        let result = runtime::wait(py, async move { client.get_result(&ids).await })?.or_py()?;
        Ok(AsyncResult::new(result, single))
    }

    /// `{msg_id: status}` for these tasks: queued, running, succeeded,
    /// failed, or None for a task the tenant does not have.
    fn result_status(&self, py: Python<'_>, msg_ids: &Bound<'_, PyAny>) -> PyResult<Py<PyDict>> {
        let (ids, _) = db::task_ids(msg_ids)?;
        let client = self.inner.clone();
        let asked = ids.clone();
        let found =
            runtime::wait(py, async move { client.result_status(&asked).await })?.or_py()?;
        db::statuses(py, &ids, &found)
    }

    /// Stops these tasks: queued ones never run, running ones are
    /// interrupted, finished ones are left alone; `{msg_id: status}` after.
    fn abort(&self, py: Python<'_>, msg_ids: &Bound<'_, PyAny>) -> PyResult<Py<PyDict>> {
        let (ids, _) = db::task_ids(msg_ids)?;
        let client = self.inner.clone();
        let asked = ids.clone();
        let found = runtime::wait(py, async move { client.abort(&asked).await })?.or_py()?;
        db::statuses(py, &ids, &found)
    }

    /// Runs finished tasks again, as new tasks: their `AsyncResult`.
    fn resubmit(&self, py: Python<'_>, msg_ids: &Bound<'_, PyAny>) -> PyResult<AsyncResult> {
        let (ids, single) = db::task_ids(msg_ids)?;
        let client = self.inner.clone();
        let result = runtime::wait(py, async move { client.resubmit(&ids).await })?.or_py()?;
        Ok(AsyncResult::new(result, single))
    }

    /// The tenant's task records matching `query` (a dict: `status`,
    /// `func`, `module`, `engine_id`, `submitted_after`, `submitted_before`,
    /// `completed_after`, `completed_before`, `limit`), oldest first, as
    /// dicts with `keys` (default: all but `result`, `stdout`, `stderr`).
    #[pyo3(signature = (query = None, keys = None))]
    fn db_query(
        &self,
        py: Python<'_>,
        query: Option<&Bound<'_, PyDict>>,
        keys: Option<Vec<String>>,
    ) -> PyResult<Py<PyList>> {
        let query = db::query(query, keys)?;
        let client = self.inner.clone();
        let found = runtime::wait(py, async move { client.db_query(query).await })?.or_py()?;
        db::records(py, &found)
    }

    /// Forgets finished tasks: these msg_ids, or every finished task of
    /// the tenant with `"all"`; how many went.
    fn purge_results(&self, py: Python<'_>, msg_ids: &Bound<'_, PyAny>) -> PyResult<u64> {
        let ids = match msg_ids.extract::<String>() {
            Ok(all) if all == "all" => Vec::new(),
            _ => db::task_ids(msg_ids)?.0,
        };
        let client = self.inner.clone();
        runtime::wait(py, async move { client.purge_results(&ids).await })?.or_py()
    }

    /// Stops the controller and its engines (an admin's client only).
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let client = self.inner.clone();
        runtime::wait(py, async move { client.shutdown().await })?.or_py()
    }

    fn __repr__(&self) -> String {
        format!("<wasp.Client tenant={:?}>", self.inner.tenant().0)
    }
}
