//! `wasp.Module` and `wasp.Function`: a task component read from a file,
//! and one of its exports as a Python value carrying its WIT signature.
//!
//! `m = wasp.Module("norm.wasm")` reads the component's exports without
//! compiling it (`wasp_client::Module`); `m.norm` is the export `norm`
//! (WIT's hyphens become underscores: `m.sleep_here` is `sleep-here`), and
//! a view called with it converts the Python arguments by its signature
//! before anything is sent.

use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use wasp_client::{Arg, Module as ClientModule};
use wasp_proto::{FuncSig, Value};

use crate::convert;

/// A task component (`wasp.Module(path)`); its exports are attributes.
#[pyclass(frozen, module = "wasp")]
pub struct Module {
    pub(crate) inner: Arc<ClientModule>,
    path: String,
}

#[pymethods]
impl Module {
    /// Reads the component at `path`.
    #[new]
    fn new(path: std::path::PathBuf) -> PyResult<Self> {
        let inner =
            ClientModule::from_file(&path).map_err(|err| PyValueError::new_err(err.to_string()))?;
        Ok(Self {
            inner: Arc::new(inner),
            path: path.display().to_string(),
        })
    }

    /// The export `name` (hyphens written as underscores).
    fn __getattr__(&self, name: &str) -> PyResult<Function> {
        self.function(name)
    }

    /// The exports' Python names, for `dir()` and completion.
    fn __dir__(&self) -> Vec<String> {
        self.inner
            .funcs
            .iter()
            .map(|f| python_name(&self.inner.call_name(f)))
            .collect()
    }

    /// The sha256 of the component's bytes, as hex: what engines know it
    /// by.
    #[getter]
    fn hash(&self) -> String {
        self.inner.hash.to_string()
    }

    /// The callable exports, as `{python name: WIT signature}`.
    #[getter]
    fn functions(&self) -> Vec<(String, String)> {
        self.inner
            .funcs
            .iter()
            .map(|f| (python_name(&self.inner.call_name(f)), f.sig.to_string()))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Module({:?}, exports: {})",
            self.path,
            self.__dir__().join(", ")
        )
    }
}

impl Module {
    /// The export a Python name stands for; an `AttributeError` listing the
    /// exports if there is none.
    pub(crate) fn function(&self, name: &str) -> PyResult<Function> {
        let found = self.inner.funcs.iter().find(|f| {
            let call = self.inner.call_name(f);
            call == name || python_name(&call) == name || f.qualified == name
        });
        match found {
            Some(func) => Ok(Function {
                module: self.inner.clone(),
                call_name: self.inner.call_name(func),
                sig: func.sig.clone(),
            }),
            None => Err(PyAttributeError::new_err(format!(
                "{} has no export `{name}`; its exports: {}",
                self.path,
                self.__dir__().join(", ")
            ))),
        }
    }
}

/// A name as Python writes it: hyphens as underscores, an interface's
/// `#` as a dot.
fn python_name(wit: &str) -> String {
    wit.replace('-', "_")
}

/// One export of a [`Module`], with its signature: what a view's `apply`
/// and `map` take as the function.
#[pyclass(frozen, skip_from_py_object, module = "wasp")]
#[derive(Clone)]
pub struct Function {
    pub(crate) module: Arc<ClientModule>,
    /// The name the client calls it by.
    pub(crate) call_name: String,
    pub(crate) sig: FuncSig,
}

#[pymethods]
impl Function {
    /// The export's name as WIT spells it.
    #[getter]
    fn name(&self) -> String {
        self.sig.name.clone()
    }

    /// The WIT signature, e.g. `norm: func(v: list<f64>, p: f64) -> f64`.
    #[getter]
    fn signature(&self) -> String {
        self.sig.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<wasp function {}>", self.sig)
    }

    /// A task function runs on a cluster, not here.
    #[pyo3(signature = (*_args))]
    fn __call__(&self, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        Err(PyTypeError::new_err(format!(
            "{} runs on a cluster: pass it to a view, e.g. view.apply_sync(f, ...)",
            self.sig
        )))
    }
}

/// The task function `obj` stands for: a [`Function`], or anything with
/// a `__wasp_function__` attribute that gives one (a `@wasp.task`, which
/// builds its component the first time it is asked).
pub(crate) fn function_of(obj: &Bound<'_, PyAny>) -> PyResult<Function> {
    if let Ok(f) = obj.cast::<Function>() {
        return Ok(f.get().clone());
    }
    match obj.getattr("__wasp_function__") {
        Ok(f) => f
            .cast::<Function>()
            .map(|f| f.get().clone())
            .map_err(|_| PyTypeError::new_err("__wasp_function__ must give a wasp.Function")),
        Err(err) if err.is_instance_of::<PyAttributeError>(obj.py()) => {
            Err(PyTypeError::new_err(format!(
                "{} is not a task function: pass a wasp.Module's export (wasp.Module(\"f.wasm\").f) or a @wasp.task",
                obj.repr().map(|r| r.to_string()).unwrap_or_default()
            )))
        }
        // Building the task failed: its own error says why.
        Err(err) => Err(err),
    }
}

impl Function {
    /// The call's arguments from Python's, converted by the signature; a
    /// `TypeError` naming the argument and its WIT type if one does not
    /// fit, or if there are too few or too many.
    pub(crate) fn args(&self, args: &Bound<'_, PyTuple>) -> PyResult<Vec<Arg>> {
        self.check_count(args.len())?;
        args.iter()
            .zip(&self.sig.params)
            .map(|(arg, param)| {
                convert::to_arg(&arg, &param.ty, &format!("argument {}", param.name))
            })
            .collect()
    }

    /// The sequences of `map(f, *sequences)`, one per parameter, each
    /// item converted by its parameter's type (the client zips them, as
    /// Python's `map` does, stopping at the shortest). A numpy array is
    /// read item by item here: each item is an argument of its own.
    pub(crate) fn map_columns(&self, sequences: &Bound<'_, PyTuple>) -> PyResult<Vec<Vec<Value>>> {
        self.check_count(sequences.len())?;
        let mut columns = Vec::with_capacity(sequences.len());
        for (sequence, param) in sequences.iter().zip(&self.sig.params) {
            let mut column = Vec::with_capacity(sequence.len().unwrap_or(0));
            for (i, item) in sequence.try_iter()?.enumerate() {
                let item = item?;
                let value = convert::with_path(
                    |at| convert::to_value(&item, &param.ty, at),
                    || format!("argument {} (item {i})", param.name),
                );
                column.push(value.map_err(convert::Mismatch::into_py_err)?);
            }
            columns.push(column);
        }
        Ok(columns)
    }

    fn check_count(&self, given: usize) -> PyResult<()> {
        let wanted = self.sig.params.len();
        if given == wanted {
            return Ok(());
        }
        Err(PyTypeError::new_err(format!(
            "{} takes {wanted} argument{}, got {given}",
            self.sig,
            if wanted == 1 { "" } else { "s" }
        )))
    }
}
