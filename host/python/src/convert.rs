//! Python objects to wasp values, typed by a WIT signature, and back.
//!
//! The forms follow the JSON form of values (`wasp_proto::json`), in
//! Python's own types: integers and floats as `int` and `float` (numpy
//! scalars too), `char` as a one-character `str`, lists as any iterable
//! (not a `str`), tuples as `tuple` or `list`, records as a `dict` keyed by
//! field name or an object with those attributes (a dataclass), a variant
//! as `{"case": payload}` or `"case"`, an enum as `"case"`, flags as a set
//! of names, an option as `None` or the value, a result as `{"ok": v}` or
//! `{"err": e}`. Names may be written in WIT's kebab-case or Python's
//! snake_case.
//!
//! A list of numbers (`list<f64>` and the other scalar lists) is built as
//! one typed vector (`wasp_proto::Array`), never a value per item: from
//! anything with the buffer protocol whose items are of that type (a numpy
//! array of the matching dtype, an `array.array`, `bytes` for `list<u8>`)
//! in one copy, or from an iterable item by item. Such a list comes back as
//! a numpy array when numpy is installed (`bytes` for `list<u8>`), else as
//! a `list`.

use std::sync::Arc;

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple,
};
use wasp_client::Arg;
use wasp_proto::value::MAX_DEPTH;
use wasp_proto::{Array, Type, Value};

/// An argument that each engine replaces with its own namespace value of
/// `name` (ipyparallel's `parallel.Reference`): `wasp.Reference("a")`.
#[pyclass(frozen, skip_from_py_object, module = "wasp")]
#[derive(Clone)]
pub struct Reference {
    /// The namespace name it stands for.
    #[pyo3(get)]
    pub name: String,
}

#[pymethods]
impl Reference {
    #[new]
    fn new(name: String) -> Self {
        Self { name }
    }

    fn __repr__(&self) -> String {
        format!("Reference({:?})", self.name)
    }
}

/// An argument of type `ty` from `obj`: a [`Reference`] as it is, anything
/// else converted by the type; `path` names it in errors.
pub(crate) fn to_arg(obj: &Bound<'_, PyAny>, ty: &Type, path: &str) -> PyResult<Arg> {
    if let Ok(reference) = obj.cast::<Reference>() {
        return Ok(Arg::Ref(reference.get().name.clone()));
    }
    to_value(obj, ty, path)
        .map(Arg::Value)
        .map_err(|err| err.into_py_err())
}

/// `convert(path)`, with the path made only when it is needed: the
/// conversion runs with an empty one, and only if it fails runs again with
/// `path()` for the error. An item of a million-item list then costs no
/// formatted string.
pub(crate) fn with_path<T>(
    mut convert: impl FnMut(&str) -> Result<T, Mismatch>,
    path: impl FnOnce() -> String,
) -> Result<T, Mismatch> {
    convert("").or_else(|_| convert(&path()))
}

/// A value of type `ty` from `obj`; `path` names it in errors.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>, ty: &Type, path: &str) -> Result<Value, Mismatch> {
    Typed { depth: 1 }.value(obj, ty, path)
}

/// A Python object does not fit the type it was converted to.
#[derive(Debug)]
pub(crate) struct Mismatch {
    /// Where in the argument, e.g. `argument v[3]`.
    path: String,
    /// What was expected and what was found.
    message: String,
}

impl Mismatch {
    fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// `expected TYPE, got KIND`.
    fn expected(path: &str, ty: &Type, obj: &Bound<'_, PyAny>) -> Self {
        Self::new(path, format!("expected {ty}, got {}", describe(obj)))
    }

    /// As a Python `TypeError`.
    pub(crate) fn into_py_err(self) -> PyErr {
        PyTypeError::new_err(format!("{}: {}", self.path, self.message))
    }
}

/// `obj`'s type name, and its value when short: `str 'x'`, `float 2.5`.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    let kind = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned());
    match obj.repr() {
        Ok(repr) if repr.len().is_ok_and(|n| n <= 40) => format!("{kind} {repr}"),
        _ => kind,
    }
}

/// Conversion by type, counting depth as `wasp_proto::json` does.
struct Typed {
    depth: usize,
}

impl Typed {
    fn value(&mut self, obj: &Bound<'_, PyAny>, ty: &Type, path: &str) -> Result<Value, Mismatch> {
        if self.depth > MAX_DEPTH {
            return Err(Mismatch::new(
                path,
                format!(
                    "a value is nested deeper than the nesting limit (MAX_DEPTH = {MAX_DEPTH})"
                ),
            ));
        }
        self.depth += 1;
        let value = self.value_at_depth(obj, ty, path);
        self.depth -= 1;
        value
    }

    fn value_at_depth(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Type,
        path: &str,
    ) -> Result<Value, Mismatch> {
        let wrong = || Mismatch::expected(path, ty, obj);
        Ok(match ty {
            Type::Bool => match obj.cast::<PyBool>() {
                Ok(b) => Value::Bool(b.is_true()),
                Err(_) => return Err(wrong()),
            },
            Type::S8 => Value::S8(integer(obj, ty, path)?),
            Type::U8 => Value::U8(integer(obj, ty, path)?),
            Type::S16 => Value::S16(integer(obj, ty, path)?),
            Type::U16 => Value::U16(integer(obj, ty, path)?),
            Type::S32 => Value::S32(integer(obj, ty, path)?),
            Type::U32 => Value::U32(integer(obj, ty, path)?),
            Type::S64 => Value::S64(integer(obj, ty, path)?),
            Type::U64 => Value::U64(integer(obj, ty, path)?),
            Type::F32 => Value::F32(float(obj, ty, path)? as f32),
            Type::F64 => Value::F64(float(obj, ty, path)?),
            Type::Char => {
                let text = string(obj).ok_or_else(wrong)?;
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Value::Char(c),
                    _ => {
                        return Err(Mismatch::new(
                            path,
                            format!(
                                "expected char (one character), got a string of {} characters",
                                text.chars().count()
                            ),
                        ));
                    }
                }
            }
            Type::String => Value::String(string(obj).ok_or_else(wrong)?),
            Type::List(element) => self.list(obj, ty, element, path)?,
            Type::Tuple(types) => {
                let items = sequence(obj).ok_or_else(wrong)?;
                if items.len() != types.len() {
                    return Err(Mismatch::new(
                        path,
                        format!(
                            "expected {ty} ({} items), got {} items",
                            types.len(),
                            items.len()
                        ),
                    ));
                }
                let mut values = Vec::with_capacity(types.len());
                for (i, (item, ty)) in items.iter().zip(types).enumerate() {
                    values.push(self.value(item, ty, &format!("{path}[{i}]"))?);
                }
                Value::Tuple(values)
            }
            Type::Record(fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for field in fields {
                    let at = format!("{path}.{}", field.name);
                    let value = match member(obj, &field.name) {
                        Some(item) => self.value(&item, &field.ty, &at)?,
                        None if matches!(field.ty, Type::Option(_)) => Value::Option(None),
                        None => {
                            return Err(Mismatch::new(
                                path,
                                format!(
                                    "expected {ty}: no field `{}` in {}",
                                    field.name,
                                    describe(obj)
                                ),
                            ));
                        }
                    };
                    values.push((field.name.clone(), value));
                }
                Value::Record(values)
            }
            Type::Variant(cases) => {
                let (name, payload) = case_of(obj).ok_or_else(wrong)?;
                let case = cases
                    .iter()
                    .find(|c| same_name(&c.name, &name))
                    .ok_or_else(|| unknown_case(path, ty, &name))?;
                let payload = match (&case.ty, payload) {
                    (Some(ty), Some(payload)) => Some(Box::new(self.value(
                        &payload,
                        ty,
                        &format!("{path}.{}", case.name),
                    )?)),
                    (None, None) => None,
                    (Some(ty), None) => {
                        return Err(Mismatch::new(
                            path,
                            format!(
                                "case `{}` needs a payload of {ty}: {{\"{}\": ...}}",
                                case.name, case.name
                            ),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(Mismatch::new(
                            path,
                            format!(
                                "case `{}` takes no payload: write \"{}\"",
                                case.name, case.name
                            ),
                        ));
                    }
                };
                Value::Variant(case.name.clone(), payload)
            }
            Type::Enum(cases) => {
                let name = string(obj).ok_or_else(wrong)?;
                let case = cases
                    .iter()
                    .find(|c| same_name(c, &name))
                    .ok_or_else(|| unknown_case(path, ty, &name))?;
                Value::Enum(case.clone())
            }
            Type::Option(inner) => {
                if obj.is_none() {
                    Value::Option(None)
                } else {
                    Value::Option(Some(Box::new(self.value(obj, inner, path)?)))
                }
            }
            Type::Result { ok, err } => {
                let (name, payload) = case_of(obj).ok_or_else(wrong)?;
                let (side, is_ok) = match name.as_str() {
                    "ok" => (ok, true),
                    "err" => (err, false),
                    _ => {
                        return Err(Mismatch::new(
                            path,
                            format!(
                                "expected {ty} as {{\"ok\": ...}} or {{\"err\": ...}}, got case `{name}`"
                            ),
                        ));
                    }
                };
                let payload = match (side, payload) {
                    (Some(ty), Some(payload)) => Some(Box::new(self.value(
                        &payload,
                        ty,
                        &format!("{path}.{name}"),
                    )?)),
                    (None, None) => None,
                    (None, Some(p)) if p.is_none() => None,
                    _ => return Err(wrong()),
                };
                Value::Result(if is_ok { Ok(payload) } else { Err(payload) })
            }
            Type::Flags(names) => {
                if string(obj).is_some() {
                    return Err(wrong());
                }
                let mut set = Vec::new();
                let items = obj.try_iter().map_err(|_| wrong())?;
                for item in items {
                    let item = item.map_err(|_| wrong())?;
                    let name = string(&item).ok_or_else(wrong)?;
                    let flag = names
                        .iter()
                        .find(|n| same_name(n, &name))
                        .ok_or_else(|| unknown_case(path, ty, &name))?;
                    if !set.contains(flag) {
                        set.push(flag.clone());
                    }
                }
                Value::Flags(set)
            }
        })
    }

    /// A `list<element>`: a typed vector for numbers, a value per item
    /// otherwise.
    fn list(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Type,
        element: &Type,
        path: &str,
    ) -> Result<Value, Mismatch> {
        if string(obj).is_some() {
            return Err(Mismatch::expected(path, ty, obj));
        }
        if let Some(array) = typed_list(obj, ty, element, path)? {
            return Ok(Value::from(array));
        }
        let items = obj
            .try_iter()
            .map_err(|_| Mismatch::expected(path, ty, obj))?;
        let mut values = Vec::new();
        for (i, item) in items.enumerate() {
            let item = item.map_err(|err| Mismatch::new(path, err.to_string()))?;
            values.push(with_path(
                |at| self.value(&item, element, at),
                || format!("{path}[{i}]"),
            )?);
        }
        Ok(Value::List(values))
    }
}

/// A list of numbers as one typed vector, if `element` has an array form:
/// from a buffer of that item type in one copy, else item by item; `None`
/// for other element types.
fn typed_list(
    obj: &Bound<'_, PyAny>,
    ty: &Type,
    element: &Type,
    path: &str,
) -> Result<Option<Array>, Mismatch> {
    macro_rules! cases {
        ($($wit:ident => $t:ty),*) => {
            match element {
                $(Type::$wit => Some(Array::from(numbers::<$t>(obj, ty, element, path)?)),)*
                _ => None,
            }
        };
    }
    Ok(
        cases!(S8 => i8, U8 => u8, S16 => i16, U16 => u16, S32 => i32, U32 => u32,
        S64 => i64, U64 => u64, F32 => f32, F64 => f64),
    )
}

/// A number that can be read from Python, as an item of a typed list.
trait Number: Element + Copy {
    /// One item, checked as a parameter of `element` would be.
    fn read(obj: &Bound<'_, PyAny>, element: &Type, path: &str) -> Result<Self, Mismatch>;
    /// numpy's name for the dtype of such items.
    const DTYPE: &'static str;
}

macro_rules! integers {
    ($($t:ty => $dtype:literal),*) => {$(
        impl Number for $t {
            fn read(obj: &Bound<'_, PyAny>, element: &Type, path: &str) -> Result<Self, Mismatch> {
                integer(obj, element, path)
            }
            const DTYPE: &'static str = $dtype;
        }
    )*};
}
integers!(i8 => "int8", u8 => "uint8", i16 => "int16", u16 => "uint16", i32 => "int32",
    u32 => "uint32", i64 => "int64", u64 => "uint64");

impl Number for f32 {
    fn read(obj: &Bound<'_, PyAny>, element: &Type, path: &str) -> Result<Self, Mismatch> {
        float(obj, element, path).map(|x| x as f32)
    }
    const DTYPE: &'static str = "float32";
}

impl Number for f64 {
    fn read(obj: &Bound<'_, PyAny>, element: &Type, path: &str) -> Result<Self, Mismatch> {
        float(obj, element, path)
    }
    const DTYPE: &'static str = "float64";
}

/// The items of a list of `T`: a buffer of `T` copied once (numpy,
/// `array.array`, `bytes`), else an iterable read item by item. A numpy
/// array of another dtype is refused with the dtype to convert to, rather
/// than read a Python object per item.
fn numbers<T: Number>(
    obj: &Bound<'_, PyAny>,
    ty: &Type,
    element: &Type,
    path: &str,
) -> Result<Vec<T>, Mismatch> {
    let py = obj.py();
    if let Ok(buffer) = PyBuffer::<T>::get(obj) {
        return buffer
            .to_vec(py)
            .map_err(|err| Mismatch::new(path, format!("could not read the buffer: {err}")));
    }
    if let Ok(dtype) = obj.getattr("dtype")
        && obj.hasattr("__array_interface__").unwrap_or(false)
    {
        let dtype = dtype.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(Mismatch::new(
            path,
            format!(
                "expected {ty}: an array of dtype {dtype} where {ty} takes {}; convert it with .astype(\"{}\")",
                T::DTYPE,
                T::DTYPE
            ),
        ));
    }
    let items = obj
        .try_iter()
        .map_err(|_| Mismatch::expected(path, ty, obj))?;
    let mut values = Vec::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in items.enumerate() {
        let item = item.map_err(|err| Mismatch::new(path, err.to_string()))?;
        values.push(with_path(
            |at| T::read(&item, element, at),
            || format!("{path}[{i}]"),
        )?);
    }
    Ok(values)
}

/// An integer of type `ty`, in its range: an `int` or anything with
/// `__index__` (numpy integers), not a `bool` or a `float`.
fn integer<T: TryFrom<i128>>(obj: &Bound<'_, PyAny>, ty: &Type, path: &str) -> Result<T, Mismatch> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
        return Err(Mismatch::expected(path, ty, obj));
    }
    let wide: i128 = obj
        .extract()
        .map_err(|_| Mismatch::expected(path, ty, obj))?;
    T::try_from(wide).map_err(|_| Mismatch::new(path, format!("{wide} is out of range for {ty}")))
}

/// A float: a `float`, an `int`, or anything with `__float__` (numpy
/// floats), not a `bool` or a `str`.
fn float(obj: &Bound<'_, PyAny>, ty: &Type, path: &str) -> Result<f64, Mismatch> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyString>() {
        return Err(Mismatch::expected(path, ty, obj));
    }
    obj.extract().map_err(|_| Mismatch::expected(path, ty, obj))
}

/// `obj` as a Rust string, if it is a `str`.
fn string(obj: &Bound<'_, PyAny>) -> Option<String> {
    obj.cast::<PyString>()
        .ok()?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// The items of a `tuple` or `list`.
fn sequence<'py>(obj: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return Some(tuple.iter().collect());
    }
    obj.cast::<PyList>().ok().map(|list| list.iter().collect())
}

/// A record field: a dict's item (by kebab or snake name) or an
/// attribute (by snake name).
fn member<'py>(obj: &Bound<'py, PyAny>, name: &str) -> Option<Bound<'py, PyAny>> {
    let snake = name.replace('-', "_");
    if let Ok(dict) = obj.cast::<PyDict>() {
        return dict
            .get_item(name)
            .ok()
            .flatten()
            .or_else(|| dict.get_item(&snake).ok().flatten());
    }
    obj.getattr(snake.as_str()).ok()
}

/// A case and its payload: `"case"`, or a one-item dict `{"case": payload}`.
fn case_of<'py>(obj: &Bound<'py, PyAny>) -> Option<(String, Option<Bound<'py, PyAny>>)> {
    if let Some(name) = string(obj) {
        return Some((name, None));
    }
    let dict = obj.cast::<PyDict>().ok()?;
    if dict.len() != 1 {
        return None;
    }
    let (key, value) = dict.iter().next()?;
    Some((string(&key)?, Some(value)))
}

/// Whether a WIT name and a Python one name the same thing.
fn same_name(wit: &str, python: &str) -> bool {
    wit == python || wit.replace('-', "_") == python
}

fn unknown_case(path: &str, ty: &Type, name: &str) -> Mismatch {
    Mismatch::new(path, format!("expected {ty}: no case `{name}`"))
}

/// A value for a namespace (`push`, `scatter`), where no signature says
/// its type: `bool`, `int` (s64), `float` (f64), `str`, `None` (an empty
/// option), `bytes` (list<u8>), a numpy array of numbers (a typed list),
/// `list` (a typed list when every item is a float, or every item an int),
/// `tuple`, and `dict` with string keys (a record). The engine checks it
/// against the parameter a `Reference` to it meets.
pub(crate) fn infer_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    infer(obj, path, 1).map_err(Mismatch::into_py_err)
}

fn infer(obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> Result<Value, Mismatch> {
    if depth > MAX_DEPTH {
        return Err(Mismatch::new(
            path,
            format!("a value is nested deeper than the nesting limit (MAX_DEPTH = {MAX_DEPTH})"),
        ));
    }
    if obj.is_none() {
        return Ok(Value::Option(None));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return integer(obj, &Type::S64, path).map(Value::S64);
    }
    if obj.is_instance_of::<PyFloat>() {
        return float(obj, &Type::F64, path).map(Value::F64);
    }
    if let Some(text) = string(obj) {
        return Ok(Value::String(text));
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        return numbers::<u8>(obj, &Type::List(Box::new(Type::U8)), &Type::U8, path)
            .map(Value::from);
    }
    if let Some(array) = numpy_array(obj, path)? {
        return Ok(Value::from(array));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let mut values = Vec::with_capacity(tuple.len());
        for (i, item) in tuple.iter().enumerate() {
            values.push(infer(&item, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Tuple(values));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut fields = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let name = string(&key).ok_or_else(|| {
                Mismatch::new(
                    path,
                    format!("a record's keys must be strings, got {}", describe(&key)),
                )
            })?;
            let value = infer(&value, &format!("{path}.{name}"), depth + 1)?;
            fields.push((name.replace('_', "-"), value));
        }
        return Ok(Value::Record(fields));
    }
    if obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>()
    {
        let items: Vec<Bound<'_, PyAny>> = obj
            .try_iter()
            .map_err(|err| Mismatch::new(path, err.to_string()))?
            .collect::<PyResult<_>>()
            .map_err(|err| Mismatch::new(path, err.to_string()))?;
        if !items.is_empty() && items.iter().all(|i| i.is_exact_instance_of::<PyFloat>()) {
            let floats = items
                .iter()
                .map(|i| float(i, &Type::F64, path))
                .collect::<Result<Vec<f64>, _>>()?;
            return Ok(Value::from(floats));
        }
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            values.push(with_path(
                |at| infer(item, at, depth + 1),
                || format!("{path}[{i}]"),
            )?);
        }
        return Ok(Value::List(values));
    }
    Err(Mismatch::new(
        path,
        format!(
            "{} has no wasp form: use bool, int, float, str, bytes, None, a numpy array of numbers, or a list, tuple or dict of those",
            describe(obj)
        ),
    ))
}

/// A numpy array (anything with `__array_interface__` and a buffer) of a
/// number dtype as a typed list, one copy.
fn numpy_array(obj: &Bound<'_, PyAny>, path: &str) -> Result<Option<Array>, Mismatch> {
    if !obj.hasattr("__array_interface__").unwrap_or(false) {
        return Ok(None);
    }
    macro_rules! try_each {
        ($($t:ty),*) => {$(
            if let Ok(buffer) = PyBuffer::<$t>::get(obj) {
                return buffer
                    .to_vec(obj.py())
                    .map(|v| Some(Array::from(v)))
                    .map_err(|err| Mismatch::new(path, format!("could not read the buffer: {err}")));
            }
        )*};
    }
    try_each!(f64, f32, i64, i32, u64, u32, i16, u16, i8, u8);
    Ok(None)
}

/// numpy, if it can be imported (looked up once).
fn numpy(py: Python<'_>) -> Option<&Bound<'_, PyAny>> {
    static NUMPY: PyOnceLock<Option<Py<PyAny>>> = PyOnceLock::new();
    NUMPY
        .get_or_init(py, || {
            py.import("numpy").ok().map(|m| m.into_any().unbind())
        })
        .as_ref()
        .map(|m| m.bind(py))
}

/// A wasp value as a Python object (the forms in the module
/// documentation).
pub(crate) fn to_py(py: Python<'_>, value: &Value) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Value::S8(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::U8(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::S16(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::U16(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::S32(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::U32(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::S64(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::U64(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::F32(x) => f64::from(*x).into_pyobject(py)?.into_any().unbind(),
        Value::F64(x) => x.into_pyobject(py)?.into_any().unbind(),
        Value::Char(c) => c.to_string().into_pyobject(py)?.into_any().unbind(),
        Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::List(items) => {
            let items = items
                .iter()
                .map(|v| to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Value::Tuple(items) => {
            let items = items
                .iter()
                .map(|v| to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any().unbind()
        }
        Value::Record(fields) => {
            let dict = PyDict::new(py);
            for (name, value) in fields {
                dict.set_item(name.replace('-', "_"), to_py(py, value)?)?;
            }
            dict.into_any().unbind()
        }
        Value::Variant(name, payload) => case_to_py(py, name, payload.as_deref())?,
        Value::Result(Ok(payload)) => case_to_py(py, "ok", payload.as_deref())?,
        Value::Result(Err(payload)) => case_to_py(py, "err", payload.as_deref())?,
        Value::Enum(name) => name.into_pyobject(py)?.into_any().unbind(),
        Value::Option(None) => py.None(),
        Value::Option(Some(inner)) => to_py(py, inner)?,
        Value::Flags(names) => PySet::new(py, names)?.into_any().unbind(),
        Value::Array(array) => array_to_py(py, array)?,
    })
}

/// `{"case": payload}`, or `"case"` without one.
fn case_to_py(py: Python<'_>, name: &str, payload: Option<&Value>) -> PyResult<Py<PyAny>> {
    Ok(match payload {
        None => name.into_pyobject(py)?.into_any().unbind(),
        Some(payload) => {
            let dict = PyDict::new(py);
            dict.set_item(name, to_py(py, payload)?)?;
            dict.into_any().unbind()
        }
    })
}

/// A typed list: `bytes` for `list<u8>`; a numpy array over one copy of
/// its bytes when numpy is installed; else a `list`.
fn array_to_py(py: Python<'_>, array: &Arc<Array>) -> PyResult<Py<PyAny>> {
    let element = array.element_type();
    let bytes = array.to_le_bytes();
    if element == Type::U8 {
        return Ok(PyBytes::new(py, &bytes).into_any().unbind());
    }
    let Some(numpy) = numpy(py) else {
        let items = array.to_values();
        let items = items
            .iter()
            .map(|v| to_py(py, v))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(PyList::new(py, items)?.into_any().unbind());
    };
    let dtype = match element {
        Type::S8 => "<i1",
        Type::S16 => "<i2",
        Type::U16 => "<u2",
        Type::S32 => "<i4",
        Type::U32 => "<u4",
        Type::S64 => "<i8",
        Type::U64 => "<u8",
        Type::F32 => "<f4",
        _ => "<f8",
    };
    // A bytearray, so that the array is writable, as a numpy result
    // would be; numpy reads it in place.
    let buffer = PyByteArray::new(py, &bytes);
    Ok(numpy.call_method1("frombuffer", (buffer, dtype))?.unbind())
}
