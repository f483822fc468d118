//! [`Value`]: a dynamic value of any WIT type, and its check against a
//! [`Type`].
//!
//! Values are what cross the wire as task arguments, results and namespace
//! entries. They mirror `wasmtime::component::Val` case for case, minus the
//! handle types (resources, futures, streams) that cannot leave a store.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wit::Type;

/// A value of some WIT type. It carries its own case (an `S64` is not a
/// `U64`), so it can be checked against a signature without guessing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// `bool`
    Bool(bool),
    /// `s8`
    S8(i8),
    /// `u8`
    U8(u8),
    /// `s16`
    S16(i16),
    /// `u16`
    U16(u16),
    /// `s32`
    S32(i32),
    /// `u32`
    U32(u32),
    /// `s64`
    S64(i64),
    /// `u64`
    U64(u64),
    /// `f32`
    F32(f32),
    /// `f64`
    F64(f64),
    /// `char`
    Char(char),
    /// `string`
    String(String),
    /// `list<T>`
    List(Vec<Value>),
    /// `record`: fields in declaration order, with their names.
    Record(Vec<(String, Value)>),
    /// `tuple<...>`
    Tuple(Vec<Value>),
    /// `variant`: the case name and its payload, if any.
    Variant(String, Option<Box<Value>>),
    /// `enum`: the case name.
    Enum(String),
    /// `option<T>`
    Option(Option<Box<Value>>),
    /// `result<T, E>`: the payload of the side taken, if that side has one.
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    /// `flags`: the names of the flags that are set.
    Flags(Vec<String>),
}

/// A value does not have the type it was checked against.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: expected {expected}, found {found}")]
pub struct TypeMismatch {
    /// Where in the value the mismatch is, e.g. `v[3]` or `r.strike`.
    pub path: String,
    /// The expected type, in WIT syntax.
    pub expected: String,
    /// What was found instead.
    pub found: String,
}

impl Value {
    /// A short description of this value's case, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::Bool(_) => "bool".into(),
            Value::S8(_) => "s8".into(),
            Value::U8(_) => "u8".into(),
            Value::S16(_) => "s16".into(),
            Value::U16(_) => "u16".into(),
            Value::S32(_) => "s32".into(),
            Value::U32(_) => "u32".into(),
            Value::S64(_) => "s64".into(),
            Value::U64(_) => "u64".into(),
            Value::F32(_) => "f32".into(),
            Value::F64(_) => "f64".into(),
            Value::Char(_) => "char".into(),
            Value::String(_) => "string".into(),
            Value::List(items) => format!("a list of {} items", items.len()),
            Value::Record(fields) => format!("a record with {} fields", fields.len()),
            Value::Tuple(items) => format!("a tuple of {} items", items.len()),
            Value::Variant(case, _) => format!("variant case {case:?}"),
            Value::Enum(case) => format!("enum case {case:?}"),
            Value::Option(_) => "an option".into(),
            Value::Result(_) => "a result".into(),
            Value::Flags(_) => "flags".into(),
        }
    }

    /// The payload size of this value in bytes: scalars at their width,
    /// strings and names at their UTF-8 length, containers as the sum of
    /// their parts. This is what argument, result and namespace limits count;
    /// it tracks the wire and guest-memory size closely without encoding.
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Bool(_) | Value::S8(_) | Value::U8(_) => 1,
            Value::S16(_) | Value::U16(_) => 2,
            Value::S32(_) | Value::U32(_) | Value::F32(_) | Value::Char(_) => 4,
            Value::S64(_) | Value::U64(_) | Value::F64(_) => 8,
            Value::String(s) | Value::Enum(s) => s.len(),
            Value::List(items) | Value::Tuple(items) => items.iter().map(Value::size_bytes).sum(),
            Value::Record(fields) => fields.iter().map(|(n, v)| n.len() + v.size_bytes()).sum(),
            Value::Variant(case, payload) => case.len() + boxed_size(payload),
            Value::Option(inner) => 1 + boxed_size(inner),
            Value::Result(Ok(inner) | Err(inner)) => 1 + boxed_size(inner),
            Value::Flags(names) => names.iter().map(String::len).sum(),
        }
    }

    /// Checks that this value has type `ty`; `path` names the value in the
    /// error (usually the parameter name).
    pub fn check(&self, ty: &Type, path: &str) -> Result<(), TypeMismatch> {
        self.check_at(ty, &Path::Root(path))
    }

    /// [`Value::check`] with the path kept as a chain of borrowed parts and
    /// printed only into an error: checking a long list allocates nothing.
    fn check_at(&self, ty: &Type, path: &Path<'_>) -> Result<(), TypeMismatch> {
        let mismatch = || TypeMismatch {
            path: path.to_string(),
            expected: ty.to_string(),
            found: self.kind(),
        };
        match (ty, self) {
            (Type::Bool, Value::Bool(_))
            | (Type::S8, Value::S8(_))
            | (Type::U8, Value::U8(_))
            | (Type::S16, Value::S16(_))
            | (Type::U16, Value::U16(_))
            | (Type::S32, Value::S32(_))
            | (Type::U32, Value::U32(_))
            | (Type::S64, Value::S64(_))
            | (Type::U64, Value::U64(_))
            | (Type::F32, Value::F32(_))
            | (Type::F64, Value::F64(_))
            | (Type::Char, Value::Char(_))
            | (Type::String, Value::String(_)) => Ok(()),
            (Type::List(elem), Value::List(items)) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| item.check_at(elem, &Path::Index(path, i))),
            (Type::Tuple(types), Value::Tuple(items)) if types.len() == items.len() => types
                .iter()
                .zip(items)
                .enumerate()
                .try_for_each(|(i, (ty, item))| item.check_at(ty, &Path::Position(path, i))),
            (Type::Record(fields), Value::Record(values)) if fields.len() == values.len() => fields
                .iter()
                .zip(values)
                .try_for_each(|(field, (name, value))| {
                    if field.name != *name {
                        return Err(TypeMismatch {
                            path: path.to_string(),
                            expected: ty.to_string(),
                            found: format!("field {name:?} where {:?} belongs", field.name),
                        });
                    }
                    value.check_at(&field.ty, &Path::Field(path, name))
                }),
            (Type::Variant(cases), Value::Variant(name, payload)) => {
                let case = cases
                    .iter()
                    .find(|c| c.name == *name)
                    .ok_or_else(mismatch)?;
                check_payload(
                    case.ty.as_ref(),
                    payload,
                    &Path::Field(path, name),
                    mismatch,
                )
            }
            (Type::Enum(names), Value::Enum(name)) if names.contains(name) => Ok(()),
            (Type::Flags(names), Value::Flags(set)) if set.iter().all(|n| names.contains(n)) => {
                Ok(())
            }
            (Type::Option(_), Value::Option(None)) => Ok(()),
            (Type::Option(inner), Value::Option(Some(value))) => value.check_at(inner, path),
            (Type::Result { ok, .. }, Value::Result(Ok(payload))) => {
                check_payload(ok.as_deref(), payload, &Path::Field(path, "ok"), mismatch)
            }
            (Type::Result { err, .. }, Value::Result(Err(payload))) => {
                check_payload(err.as_deref(), payload, &Path::Field(path, "err"), mismatch)
            }
            _ => Err(mismatch()),
        }
    }
}

/// Where a value sits inside an argument: `v`, `v[3]`, `v.1`, `v.name`.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Index(&'a Path<'a>, usize),
    Position(&'a Path<'a>, usize),
    Field(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Position(parent, i) => write!(f, "{parent}.{i}"),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
        }
    }
}

fn boxed_size(value: &Option<Box<Value>>) -> usize {
    value.as_deref().map_or(0, Value::size_bytes)
}

fn check_payload(
    ty: Option<&Type>,
    payload: &Option<Box<Value>>,
    path: &Path<'_>,
    mismatch: impl Fn() -> TypeMismatch,
) -> Result<(), TypeMismatch> {
    match (ty, payload) {
        (None, None) => Ok(()),
        (Some(ty), Some(value)) => value.check_at(ty, path),
        _ => Err(mismatch()),
    }
}

impl fmt::Display for Value {
    /// Prints the value's JSON form (see [`crate::json`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::json::value_to_json(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::{Case, Field};

    #[test]
    fn check_names_the_path_of_a_mismatch() {
        let ty = Type::List(Box::new(Type::Record(vec![
            Field {
                name: "strike".into(),
                ty: Type::F64,
            },
            Field {
                name: "kind".into(),
                ty: Type::Enum(vec!["call".into(), "put".into()]),
            },
        ])));
        let good = Value::List(vec![Value::Record(vec![
            ("strike".into(), Value::F64(90.0)),
            ("kind".into(), Value::Enum("put".into())),
        ])]);
        assert_eq!(good.check(&ty, "legs"), Ok(()));

        let bad = Value::List(vec![
            good_item(),
            Value::Record(vec![
                ("strike".into(), Value::S64(90)),
                ("kind".into(), Value::Enum("put".into())),
            ]),
        ]);
        let err = bad.check(&ty, "legs").unwrap_err();
        assert_eq!(err.to_string(), "legs[1].strike: expected f64, found s64");

        let bad_case = Value::List(vec![Value::Record(vec![
            ("strike".into(), Value::F64(1.0)),
            ("kind".into(), Value::Enum("straddle".into())),
        ])]);
        let err = bad_case.check(&ty, "legs").unwrap_err();
        assert_eq!(
            err.to_string(),
            "legs[0].kind: expected enum { call, put }, found enum case \"straddle\""
        );
    }

    fn good_item() -> Value {
        Value::Record(vec![
            ("strike".into(), Value::F64(1.0)),
            ("kind".into(), Value::Enum("call".into())),
        ])
    }

    #[test]
    fn check_variant_payloads_and_results() {
        let ty = Type::Variant(vec![
            Case {
                name: "some".into(),
                ty: Some(Type::U8),
            },
            Case {
                name: "none".into(),
                ty: None,
            },
        ]);
        let ok = Value::Variant("some".into(), Some(Box::new(Value::U8(3))));
        assert!(ok.check(&ty, "x").is_ok());
        let missing_payload = Value::Variant("some".into(), None);
        assert!(missing_payload.check(&ty, "x").is_err());
        let extra_payload = Value::Variant("none".into(), Some(Box::new(Value::U8(3))));
        assert!(extra_payload.check(&ty, "x").is_err());

        let result = Type::Result {
            ok: None,
            err: Some(Box::new(Type::String)),
        };
        assert!(Value::Result(Ok(None)).check(&result, "r").is_ok());
        let err = Value::Result(Err(Some(Box::new(Value::U8(1)))))
            .check(&result, "r")
            .unwrap_err();
        assert_eq!(err.path, "r.err");
    }

    #[test]
    fn size_counts_payload_bytes() {
        let v = Value::List(vec![Value::F64(1.0); 10]);
        assert_eq!(v.size_bytes(), 80);
        assert_eq!(Value::String("hello".into()).size_bytes(), 5);
    }
}
