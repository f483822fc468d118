//! The exceptions of the `wasp` package, and how a client error becomes
//! one.
//!
//! - `wasp.WaspError`: anything wasp-specific (a refused connection, a
//!   controller's answer, a namespace operation that failed).
//! - `wasp.RemoteError` (a `WaspError`): a task failed remotely; its
//!   message names the task, the engine and the cause, and it carries them
//!   as attributes (`task`, `engine`, `kind`, `item`), as ipyparallel's
//!   `RemoteError` carries `ename`, `evalue` and `engine_info`.
//! - Python's own `TypeError` for arguments that do not fit a signature
//!   (nothing is sent), `TimeoutError` for a wait that ran out, and
//!   `ConnectionError` for a connection that is gone.

use pyo3::create_exception;
use pyo3::exceptions::{PyConnectionError, PyException, PyTimeoutError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use wasp_client::{ClientError, RemoteError as Remote};

create_exception!(
    wasp,
    WaspError,
    PyException,
    "Something wasp-specific went wrong."
);
create_exception!(
    wasp,
    RemoteError,
    WaspError,
    "A task failed remotely: which task, which engine, and why."
);

/// Adds the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("WaspError", m.py().get_type::<WaspError>())?;
    m.add("RemoteError", m.py().get_type::<RemoteError>())?;
    Ok(())
}

/// The Python exception for a client error.
pub(crate) fn to_py(err: ClientError) -> PyErr {
    match err {
        ClientError::Arguments(message) => PyTypeError::new_err(message),
        ClientError::Module(err) => PyValueError::new_err(err.to_string()),
        ClientError::Remote(remote) => remote_error(&remote),
        ClientError::Timeout(_) => PyTimeoutError::new_err(err.to_string()),
        ClientError::Disconnected => PyConnectionError::new_err(err.to_string()),
        other => WaspError::new_err(other.to_string()),
    }
}

/// A `RemoteError` carrying the failure's parts as attributes.
fn remote_error(remote: &Remote) -> PyErr {
    let err = RemoteError::new_err(remote.to_string());
    Python::attach(|py| {
        let value = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail
        // short of memory exhaustion; the message holds them all anyway.
        let _ = value.setattr("task", remote.task.to_string());
        let _ = value.setattr("engine", remote.engine.map(|e| e.0));
        let _ = value.setattr("kind", format!("{:?}", remote.kind));
        let _ = value.setattr("item", remote.item);
        let _ = value.setattr("cause", remote.message.clone());
    });
    err
}

/// `Result<T, ClientError>` as a Python result.
pub(crate) trait OrPy<T> {
    /// The value, or the client error as a Python exception.
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for Result<T, ClientError> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
