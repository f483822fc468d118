//! The task database on `wasp.Client`, by ipyparallel's names:
//! `get_result`, `result_status`, `abort`, `resubmit`, `db_query`,
//! `purge_results`. Every call sees only the client's tenant's tasks; an id
//! of another tenant's task is "not found", as one never submitted.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use wasp_client::{Query, Status, TaskRecord};
use wasp_proto::{EngineId, ModuleHash, TaskId};

/// Task ids from a msg_id (`"s3-17"`) or a list of them; `single` when one
/// was given alone.
pub(crate) fn task_ids(ids: &Bound<'_, PyAny>) -> PyResult<(Vec<TaskId>, bool)> {
    let parse = |text: &str| -> PyResult<TaskId> {
        text.parse()
            .map_err(|err| PyValueError::new_err(format!("{text:?} is not a msg_id: {err}")))
    };
    if let Ok(one) = ids.cast::<PyString>() {
        return Ok((vec![parse(one.to_str()?)?], true));
    }
    let many: Vec<String> = ids
        .extract()
        .map_err(|_| PyTypeError::new_err("msg_ids must be a msg_id or a list of them"))?;
    Ok((
        many.iter().map(|t| parse(t)).collect::<PyResult<_>>()?,
        false,
    ))
}

/// `{msg_id: status}`, the status `None` for a task the tenant does not
/// have.
pub(crate) fn statuses(
    py: Python<'_>,
    ids: &[TaskId],
    found: &[Option<Status>],
) -> PyResult<Py<PyDict>> {
    let dict = PyDict::new(py);
    for (id, status) in ids.iter().zip(found) {
        dict.set_item(id.to_string(), status.map(Status::name))?;
    }
    Ok(dict.unbind())
}

/// A `db_query` filter from ipyparallel-style keywords: `status` (a name
/// or list of names: queued, running, succeeded, failed), `func`,
/// `module` (its hash), `engine_id`, `submitted_after`,
/// `submitted_before`, `completed_after`, `completed_before` (Unix
/// seconds), `limit`.
pub(crate) fn query(
    filter: Option<&Bound<'_, PyDict>>,
    keys: Option<Vec<String>>,
) -> PyResult<Query> {
    let mut query = Query {
        keys: keys.unwrap_or_default(),
        ..Query::default()
    };
    for key in &query.keys {
        if !TaskRecord::KEYS.contains(&key.as_str()) {
            return Err(PyValueError::new_err(format!(
                "db_query: no key {key:?}; the keys are {}",
                TaskRecord::KEYS.join(", ")
            )));
        }
    }
    let Some(filter) = filter else {
        return Ok(query);
    };
    let micros = |value: &Bound<'_, PyAny>| -> PyResult<Option<u64>> {
        let seconds: Option<f64> = value.extract()?;
        Ok(seconds.map(|s| (s.max(0.0) * 1e6) as u64))
    };
    for (key, value) in filter.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "status" => {
                let names: Vec<String> = match value.cast::<PyString>() {
                    Ok(one) => vec![one.to_str()?.to_owned()],
                    Err(_) => value.extract()?,
                };
                query.status = names
                    .iter()
                    .map(|n| {
                        Status::from_name(n).ok_or_else(|| {
                            PyValueError::new_err(format!(
                                "db_query: no status {n:?}; the statuses are queued, running, succeeded, failed"
                            ))
                        })
                    })
                    .collect::<PyResult<_>>()?;
            }
            "func" => query.func = value.extract()?,
            "module" => {
                let hash: Option<String> = value.extract()?;
                query.module = hash
                    .map(|h| {
                        h.parse::<ModuleHash>().map_err(|err| {
                            PyValueError::new_err(format!("db_query: module {h:?}: {err}"))
                        })
                    })
                    .transpose()?;
            }
            "engine_id" => query.engine = value.extract::<Option<u32>>()?.map(EngineId),
            "submitted_after" => query.submitted_after_us = micros(&value)?,
            "submitted_before" => query.submitted_before_us = micros(&value)?,
            "completed_after" => query.completed_after_us = micros(&value)?,
            "completed_before" => query.completed_before_us = micros(&value)?,
            "limit" => query.limit = value.extract()?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "db_query: no filter {other:?}; the filters are status, func, module, engine_id, \
                     submitted_after, submitted_before, completed_after, completed_before, limit"
                )));
            }
        }
    }
    Ok(query)
}

/// Sets `key` to `value` in `dict` when there is a value.
fn put<'py, T: IntoPyObject<'py>>(
    dict: &Bound<'py, PyDict>,
    key: &str,
    value: Option<T>,
) -> PyResult<()> {
    match value {
        Some(value) => dict.set_item(key, value),
        None => Ok(()),
    }
}

/// Records as dicts: `msg_id` and the keys filled (times in Unix seconds,
/// `result` decoded from its JSON form).
pub(crate) fn records(py: Python<'_>, records: &[TaskRecord]) -> PyResult<Py<PyList>> {
    let json = py.import("json")?;
    let seconds = |us: Option<u64>| us.map(|us| us as f64 / 1e6);
    let items = records
        .iter()
        .map(|r| -> PyResult<Bound<'_, PyDict>> {
            let dict = PyDict::new(py);
            dict.set_item("msg_id", r.id.to_string())?;
            put(&dict, "status", r.status.map(Status::name))?;
            put(&dict, "module", r.module.map(|m| m.to_string()))?;
            put(&dict, "func", r.func.as_deref())?;
            put(&dict, "items", r.items)?;
            put(&dict, "engine_id", r.engine.map(|e| e.0))?;
            put(&dict, "submitted", seconds(r.submitted_us))?;
            put(&dict, "started", seconds(r.started_us))?;
            put(&dict, "completed", seconds(r.completed_us))?;
            put(&dict, "error", r.error.as_deref())?;
            if let Some(result) = &r.result {
                dict.set_item("result", json.call_method1("loads", (result,))?)?;
            }
            put(&dict, "stdout", r.stdout.as_deref())?;
            put(&dict, "stderr", r.stderr.as_deref())?;
            Ok(dict)
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, items)?.unbind())
}
