//! `wasp.LoadBalancedView` and `wasp.DirectView`, with ipyparallel's
//! methods and flags: `apply`, `apply_async`, `apply_sync`, `map`,
//! `map_async`, `map_sync`, `block`, `chunksize`, `ordered`, `targets`,
//! `set_flags`; and on a direct view the namespace: `push`, `pull`,
//! `scatter`, `gather`, `view["x"]`, `view["x"] = v`, `clear`.
//!
//! As in ipyparallel, `apply` and `map` wait for their results when the
//! view's `block` is true (and return them), else return an
//! [`AsyncResult`]; `*_async` never wait, `*_sync` always do.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use wasp_client::{
    Arg, AsyncResult as ClientResult, ClientError, DirectView as ClientDirect,
    LoadBalancedView as ClientBalanced, Module as ClientModule, TaskFlags,
};
use wasp_proto::{EngineId, Value};

use crate::convert;
use crate::errors::OrPy;
use crate::module::function_of;
use crate::result::{AsyncResult, seconds, values_to_py};
use crate::runtime;

/// Applies `set_flags`' keyword arguments to a view's flags.
fn set_task_flags(
    flags: &mut TaskFlags,
    block: &mut bool,
    kwargs: Option<&Bound<'_, PyDict>>,
    mut extra: impl FnMut(&str, &Bound<'_, PyAny>) -> PyResult<bool>,
) -> PyResult<()> {
    let Some(kwargs) = kwargs else { return Ok(()) };
    for (key, value) in kwargs.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "block" => *block = value.extract()?,
            "timeout" => {
                flags.timeout = seconds(value.extract()?)?;
            }
            "retries" => flags.retries = value.extract()?,
            "memory" => flags.memory = value.extract()?,
            "escalate" => flags.escalate = value.extract()?,
            other => {
                if !extra(other, &value)? {
                    return Err(PyTypeError::new_err(format!(
                        "set_flags: no flag `{other}`; the flags are block, timeout, retries, memory, escalate{}",
                        ", and on a load-balanced view chunksize, ordered, targets"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The calls both views have, by ipyparallel's names, over each view's
/// `submit_apply`, `submit_map` and `block`: written once, as one
/// `#[pymethods]` block per view (PyO3's `multiple-pymethods`).
macro_rules! view_calls {
    ($view:ty) => {
        #[pymethods]
        impl $view {
            /// `f(*args)`: on the engine the scheduler picks (a
            /// load-balanced view) or on each engine (a direct view; one
            /// result for one engine, else a list). The result when
            /// `block`, else an `AsyncResult`.
            #[pyo3(signature = (f, *args))]
            fn apply(
                &self,
                py: Python<'_>,
                f: &Bound<'_, PyAny>,
                args: &Bound<'_, PyTuple>,
            ) -> PyResult<Py<PyAny>> {
                self.submit_apply(f, args)?.waited_if(py, self.block)
            }

            /// `f(*args)`, not waiting.
            #[pyo3(signature = (f, *args))]
            fn apply_async(
                &self,
                py: Python<'_>,
                f: &Bound<'_, PyAny>,
                args: &Bound<'_, PyTuple>,
            ) -> PyResult<AsyncResult> {
                self.submit_apply(f, args)?.start(py)
            }

            /// `f(*args)`, waiting for its result.
            #[pyo3(signature = (f, *args))]
            fn apply_sync(
                &self,
                py: Python<'_>,
                f: &Bound<'_, PyAny>,
                args: &Bound<'_, PyTuple>,
            ) -> PyResult<Py<PyAny>> {
                self.submit_apply(f, args)?.finish(py)
            }

            /// `map(f, *sequences)`: one task per `chunksize` items on a
            /// load-balanced view (`chunksize` and `ordered` given here
            /// apply to this call only), the items split evenly over the
            /// engines on a direct view. The list of results when
            /// `block`, else an `AsyncResult`.
            #[pyo3(signature = (f, *sequences, chunksize = None, ordered = None))]
            fn map(
                &self,
                py: Python<'_>,
                f: &Bound<'_, PyAny>,
                sequences: &Bound<'_, PyTuple>,
                chunksize: Option<usize>,
                ordered: Option<bool>,
            ) -> PyResult<Py<PyAny>> {
                self.submit_map(f, sequences, chunksize, ordered)?
                    .waited_if(py, self.block)
            }

            /// `map(f, *sequences)`, not waiting.
            #[pyo3(signature = (f, *sequences, chunksize = None, ordered = None))]
            fn map_async(
                &self,
                py: Python<'_>,
                f: &Bound<'_, PyAny>,
                sequences: &Bound<'_, PyTuple>,
                chunksize: Option<usize>,
                ordered: Option<bool>,
            ) -> PyResult<AsyncResult> {
                self.submit_map(f, sequences, chunksize, ordered)?.start(py)
            }

            /// `map(f, *sequences)`, waiting for every result.
            #[pyo3(signature = (f, *sequences, chunksize = None, ordered = None))]
            fn map_sync(
                &self,
                py: Python<'_>,
                f: &Bound<'_, PyAny>,
                sequences: &Bound<'_, PyTuple>,
                chunksize: Option<usize>,
                ordered: Option<bool>,
            ) -> PyResult<Py<PyAny>> {
                self.submit_map(f, sequences, chunksize, ordered)?
                    .finish(py)
            }
        }
    };
}

view_calls!(LoadBalancedView);
view_calls!(DirectView);

/// What a Python view submits through: the Rust client's two views, which
/// have the same two calls by the same names.
trait ClientView: Send + 'static {
    fn apply_args(
        &self,
        module: &ClientModule,
        func: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<ClientResult, ClientError>> + Send;

    fn map_async(
        &self,
        module: &ClientModule,
        func: &str,
        sequences: Vec<Vec<Value>>,
    ) -> impl Future<Output = Result<ClientResult, ClientError>> + Send;
}

macro_rules! client_view {
    ($($view:ty),*) => {$(
        impl ClientView for $view {
            fn apply_args(
                &self,
                module: &ClientModule,
                func: &str,
                args: Vec<Arg>,
            ) -> impl Future<Output = Result<ClientResult, ClientError>> + Send {
                <$view>::apply_args(self, module, func, args)
            }

            fn map_async(
                &self,
                module: &ClientModule,
                func: &str,
                sequences: Vec<Vec<Value>>,
            ) -> impl Future<Output = Result<ClientResult, ClientError>> + Send {
                <$view>::map_async(self, module, func, sequences)
            }
        }
    )*};
}

client_view!(ClientBalanced, ClientDirect);

/// A call's submission, its arguments converted, not yet sent: started,
/// it gives an `AsyncResult`; finished, the results themselves, in one wait
/// on the runtime (a blocking `apply_sync` then costs one hand-over
/// between Python's thread and the runtime's, not two).
struct Submission {
    /// Whether `get` gives one value rather than a list.
    single: bool,
    future: std::pin::Pin<Box<dyn Future<Output = Result<ClientResult, ClientError>> + Send>>,
}

impl Submission {
    fn new(
        single: bool,
        future: impl Future<Output = Result<ClientResult, ClientError>> + Send + 'static,
    ) -> Self {
        Self {
            single,
            future: Box::pin(future),
        }
    }

    /// `f(*args)` on `view`, its arguments converted by `f`'s signature.
    fn apply<V: ClientView>(
        view: V,
        single: bool,
        f: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Self> {
        let f = function_of(f)?;
        let args = f.args(args)?;
        Ok(Self::new(single, async move {
            view.apply_args(&f.module, &f.call_name, args).await
        }))
    }

    /// `map(f, *sequences)` on `view`, each item converted by `f`'s
    /// signature.
    fn map<V: ClientView>(
        view: V,
        f: &Bound<'_, PyAny>,
        sequences: &Bound<'_, PyTuple>,
    ) -> PyResult<Self> {
        let f = function_of(f)?;
        let columns = f.map_columns(sequences)?;
        Ok(Self::new(false, async move {
            view.map_async(&f.module, &f.call_name, columns).await
        }))
    }

    /// Sends it: its `AsyncResult`.
    fn start(self, py: Python<'_>) -> PyResult<AsyncResult> {
        let result = runtime::wait(py, self.future)?.or_py()?;
        Ok(AsyncResult::new(result, self.single))
    }

    /// Sends it and waits for every result.
    fn finish(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let future = self.future;
        let values = runtime::wait(py, async move { future.await?.get(None).await })?.or_py()?;
        values_to_py(py, values, self.single)
    }

    /// The results when `block`, else the `AsyncResult`.
    fn waited_if(self, py: Python<'_>, block: bool) -> PyResult<Py<PyAny>> {
        if block {
            return self.finish(py);
        }
        Ok(Py::new(py, self.start(py)?)?.into_any())
    }
}

/// A view whose tasks the scheduler places (`rc.load_balanced_view()`).
#[pyclass(module = "wasp")]
pub struct LoadBalancedView {
    client: wasp_client::Client,
    inner: ClientBalanced,
    targets: Option<Vec<u32>>,
    /// Whether `apply` and `map` wait for their results (default False).
    #[pyo3(get, set)]
    block: bool,
    /// Items per task in `map` (default 1).
    #[pyo3(get, set)]
    chunksize: usize,
    /// Whether `map` results iterate in submission order (default True).
    #[pyo3(get, set)]
    ordered: bool,
}

impl LoadBalancedView {
    pub(crate) fn new(client: wasp_client::Client, targets: Option<Vec<u32>>) -> Self {
        let mut inner = client.load_balanced_view();
        if let Some(ids) = &targets {
            inner = inner.with_targets(ids.iter().map(|&i| EngineId(i)).collect::<Vec<_>>());
        }
        Self {
            client,
            inner,
            targets,
            block: false,
            chunksize: 1,
            ordered: true,
        }
    }

    /// The client view with this view's flags, and a call's own
    /// `chunksize` and `ordered` if it gives them (ipyparallel's
    /// `lview.map(f, seq, chunksize=4)`).
    fn configured(&self, chunksize: Option<usize>, ordered: Option<bool>) -> ClientBalanced {
        let mut view = self.inner.clone();
        view.chunksize = chunksize.unwrap_or(self.chunksize).max(1);
        view.ordered = ordered.unwrap_or(self.ordered);
        view.block = false;
        view
    }

    fn submit_apply(
        &self,
        f: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Submission> {
        Submission::apply(self.configured(None, None), true, f, args)
    }

    fn submit_map(
        &self,
        f: &Bound<'_, PyAny>,
        sequences: &Bound<'_, PyTuple>,
        chunksize: Option<usize>,
        ordered: Option<bool>,
    ) -> PyResult<Submission> {
        Submission::map(self.configured(chunksize, ordered), f, sequences)
    }
}

#[pymethods]
impl LoadBalancedView {
    /// The engines the scheduler may use (`None`: any).
    #[getter]
    fn targets(&self) -> Option<Vec<u32>> {
        self.targets.clone()
    }

    /// Sets flags by keyword: `block`, `chunksize`, `ordered`, `targets`,
    /// `timeout` (seconds per task), `retries`, `memory` (bytes per task),
    /// `escalate`.
    #[pyo3(signature = (**kwargs))]
    fn set_flags(&mut self, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let mut flags = self.inner.flags;
        let mut block = self.block;
        let (mut chunksize, mut ordered, mut targets) = (self.chunksize, self.ordered, None);
        set_task_flags(&mut flags, &mut block, kwargs, |key, value| {
            match key {
                "chunksize" => chunksize = value.extract()?,
                "ordered" => ordered = value.extract()?,
                "targets" => targets = Some(value.extract::<Option<Vec<u32>>>()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if chunksize == 0 {
            return Err(PyValueError::new_err("chunksize must be at least 1"));
        }
        self.inner.flags = flags;
        (self.block, self.chunksize, self.ordered) = (block, chunksize, ordered);
        if let Some(targets) = targets {
            let mut view = self.client.load_balanced_view();
            if let Some(ids) = &targets {
                view = view.with_targets(ids.iter().map(|&i| EngineId(i)).collect::<Vec<_>>());
            }
            view.flags = self.inner.flags;
            self.inner = view;
            self.targets = targets;
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("<LoadBalancedView targets={:?}>", self.targets)
    }
}

/// A view on named engines (`rc[:]`, `rc[0]`, `rc[[0, 2]]`).
#[pyclass(module = "wasp")]
pub struct DirectView {
    inner: ClientDirect,
    /// Whether `apply` and `map` wait for their results (default False).
    #[pyo3(get, set)]
    block: bool,
}

impl DirectView {
    pub(crate) fn new(inner: ClientDirect) -> Self {
        Self {
            inner,
            block: false,
        }
    }

    /// Whether the view names one engine: its `apply` and `pull` give one
    /// value, not a list.
    fn single(&self) -> bool {
        self.inner.targets().len() == 1
    }

    fn submit_apply(
        &self,
        f: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Submission> {
        Submission::apply(self.inner.clone(), self.single(), f, args)
    }

    fn submit_map(
        &self,
        f: &Bound<'_, PyAny>,
        sequences: &Bound<'_, PyTuple>,
        chunksize: Option<usize>,
        ordered: Option<bool>,
    ) -> PyResult<Submission> {
        if chunksize.is_some() || ordered.is_some() {
            return Err(PyTypeError::new_err(
                "a DirectView's map splits the items evenly over its engines, in order: \
                 chunksize and ordered are a load-balanced view's",
            ));
        }
        Submission::map(self.inner.clone(), f, sequences)
    }

    fn pull_one(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let view = self.inner.clone();
        let key = name.to_owned();
        let values = runtime::wait(py, async move { view.pull(&key).await })?.or_py()?;
        if self.single() {
            return match values.first() {
                Some(value) => convert::to_py(py, value),
                None => Ok(py.None()),
            };
        }
        list_to_py(py, &values)
    }

    fn push_pairs(&self, py: Python<'_>, pairs: Vec<(String, Value)>) -> PyResult<()> {
        let view = self.inner.clone();
        runtime::wait(py, async move { view.push(pairs).await })?.or_py()
    }
}

/// A list of values as a Python list.
fn list_to_py(py: Python<'_>, values: &[Value]) -> PyResult<Py<PyAny>> {
    let items = values
        .iter()
        .map(|v| convert::to_py(py, v))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.into_any().unbind())
}

#[pymethods]
impl DirectView {
    /// The view's engine ids.
    #[getter]
    fn targets(&self) -> Vec<u32> {
        self.inner.targets().iter().map(|e| e.0).collect()
    }

    /// Sets flags by keyword: `block`, `timeout` (seconds per task),
    /// `retries`, `memory` (bytes per task), `escalate`.
    #[pyo3(signature = (**kwargs))]
    fn set_flags(&mut self, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let mut flags = self.inner.flags;
        let mut block = self.block;
        set_task_flags(&mut flags, &mut block, kwargs, |_, _| Ok(false))?;
        self.inner.flags = flags;
        self.block = block;
        Ok(())
    }

    /// Sets names in each engine's namespace: `dv.push({"a": A})`. Values
    /// need no signature here (see `wasp` for the forms); a `Reference`
    /// to one is checked against the parameter it meets. Waits for every
    /// engine (`block` is accepted for ipyparallel's sake).
    #[pyo3(signature = (ns, block = None))]
    fn push(&self, py: Python<'_>, ns: &Bound<'_, PyDict>, block: Option<bool>) -> PyResult<()> {
        let _ = block;
        let mut pairs = Vec::with_capacity(ns.len());
        for (key, value) in ns.iter() {
            let name: String = key.extract()?;
            let value = convert::infer_value(&value, &format!("push {name:?}"))?;
            pairs.push((name, value));
        }
        self.push_pairs(py, pairs)
    }

    /// A name's value from each engine (one engine: the value itself); a
    /// list or tuple of names gives a list of such, one per name.
    #[pyo3(signature = (names, block = None))]
    fn pull(
        &self,
        py: Python<'_>,
        names: &Bound<'_, PyAny>,
        block: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let _ = block;
        if let Ok(name) = names.cast::<PyString>() {
            return self.pull_one(py, name.to_str()?);
        }
        let names: Vec<String> = names
            .extract()
            .map_err(|_| PyTypeError::new_err("pull takes a name or a list of names"))?;
        let items = names
            .iter()
            .map(|n| self.pull_one(py, n))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any().unbind())
    }

    /// Splits `seq` over the engines, each part under `name`; with
    /// `flatten`, a part of one item is that item. A numpy array is split
    /// as one typed list, without a Python object per item.
    #[pyo3(signature = (name, seq, flatten = false, block = None))]
    fn scatter(
        &self,
        py: Python<'_>,
        name: &str,
        seq: &Bound<'_, PyAny>,
        flatten: bool,
        block: Option<bool>,
    ) -> PyResult<()> {
        let _ = block;
        let view = self.inner.clone();
        let key = name.to_owned();
        match convert::infer_value(seq, &format!("scatter {name:?}"))? {
            Value::Array(array) => runtime::wait(py, async move {
                view.scatter_array(&key, &array, flatten).await
            })?
            .or_py(),
            Value::List(items) => {
                runtime::wait(py, async move { view.scatter(&key, items, flatten).await })?.or_py()
            }
            other => Err(PyTypeError::new_err(format!(
                "scatter {name:?}: expected a sequence, got {}",
                other.kind()
            ))),
        }
    }

    /// The parts of `name` on the engines, joined: a numpy array when the
    /// parts are typed lists, else a list.
    #[pyo3(signature = (name, block = None))]
    fn gather(&self, py: Python<'_>, name: &str, block: Option<bool>) -> PyResult<Py<PyAny>> {
        let _ = block;
        let view = self.inner.clone();
        let key = name.to_owned();
        let parts = runtime::wait(py, async move { view.pull(&key).await })?.or_py()?;
        if !parts.is_empty() && parts.iter().all(|p| matches!(p, Value::Array(_))) {
            let arrays: Vec<wasp_proto::Array> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::Array(a) => Some(a.owned().into_owned()),
                    _ => None,
                })
                .collect();
            if let Some(joined) = wasp_proto::Array::concat(&arrays) {
                return convert::to_py(py, &Value::from(joined));
            }
        }
        let mut all = Vec::new();
        for part in parts {
            match part {
                Value::List(items) => all.extend(items),
                Value::Array(array) => all.extend(array.to_values()),
                item => all.push(item),
            }
        }
        list_to_py(py, &all)
    }

    /// Empties each engine's namespace.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let view = self.inner.clone();
        runtime::wait(py, async move { view.clear().await })?.or_py()
    }

    /// `dv["x"]`: `pull("x")`.
    fn __getitem__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        self.pull_one(py, name)
    }

    /// `dv["x"] = v`: `push({"x": v})`.
    fn __setitem__(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = convert::infer_value(value, &format!("push {name:?}"))?;
        self.push_pairs(py, vec![(name.to_owned(), value)])
    }

    fn __len__(&self) -> usize {
        self.inner.targets().len()
    }

    fn __repr__(&self) -> String {
        format!("<DirectView {:?}>", self.targets())
    }
}
