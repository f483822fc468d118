//! [`Value`]: a dynamic value of any WIT type, and its check against a
//! [`Type`].
//!
//! Values are what cross the wire as task arguments, results and namespace
//! entries. They mirror `wasmtime::component::Val` case for case, minus the
//! handle types (resources, futures, streams) that cannot leave a store.
//!
//! Two bounds make a value from a peer safe to hold:
//! - **Depth**: no value nests deeper than [`MAX_DEPTH`]. Decoding (bincode,
//!   see the crate's `bounded` module) and parsing JSON ([`crate::json`]) refuse a
//!   deeper one before they recurse into it, so every recursive walk of a
//!   value (drop, clone, [`Value::check`], `Display`, the engine's
//!   conversions) recurses at most [`MAX_DEPTH`] levels.
//! - **Memory**: [`Value::cost_bytes`] counts what a value costs in host
//!   memory, so a byte limit built on it (arguments, results, namespaces)
//!   bounds memory, and a [`Packed`](crate::msg::Packed) list can be
//!   decoded within a budget per item, failing as soon as an item passes it.

use std::fmt;
use std::mem::size_of;
use std::sync::Arc;

use serde::Serialize;

use crate::array::Array;
use crate::wit::Type;

/// The most levels a [`Value`] may nest: a scalar is one level, and a list,
/// record, tuple, variant, option or result is one more than its deepest
/// part. A value from a peer (bincode) or from JSON nested deeper is refused
/// before anything recurses into it.
///
/// 128 is well above any real WIT type (real signatures nest a handful of
/// levels) and above wasmparser's own bound on a component's type nesting
/// (`MAX_WASM_COMPONENT_TYPE_DEPTH` = 100, counted the same way: `list<u32>`
/// is 2), so every value of a type a valid component can declare fits;
/// and it is low enough that a recursive walk of a value this deep takes a
/// small part of a 2 MiB thread stack, even in a debug build.
pub const MAX_DEPTH: usize = 128;

/// What one node of a value tree costs in host memory: the [`Value`] itself,
/// wherever it sits (a list's buffer, a `Box`, a record field's slot, an
/// argument list). Every node costs at least this much, so an empty string
/// or a `bool` costs `NODE_BYTES`, not 0 or 1.
///
/// The model, which [`Value::cost_bytes`] implements and decoding charges as
/// it goes: `NODE_BYTES` per node; plus, on the heap, a string's or enum or
/// variant case's bytes at their length; a record field's [`FIELD_BYTES`]
/// and its name's length; a flag's [`NAME_BYTES`] and its length. A list's,
/// tuple's or record's buffer holds its parts' nodes, and an option's,
/// result's or variant's `Box` holds its payload's node, so those are
/// counted once, as the parts' own `NODE_BYTES`.
///
/// Not counted: spare capacity (decoding sizes buffers exactly, except a
/// list longer than its preallocation, which grows by doubling), and the
/// allocator's own overhead per allocation (on glibc, 8 to 16 bytes, and a
/// 32-byte minimum chunk), which for values of tiny strings is up to twice
/// the count.
pub const NODE_BYTES: usize = size_of::<Value>();

/// What a record field costs beyond its value's node and its name's bytes:
/// the name's `String` in the field's `(String, Value)` slot.
pub const FIELD_BYTES: usize = size_of::<(String, Value)>() - size_of::<Value>();

/// What a flag name costs beyond its bytes: its `String` in the flags' list.
pub const NAME_BYTES: usize = size_of::<String>();

/// A value of some WIT type. It carries its own case (an `S64` is not a
/// `U64`), so it can be checked against a signature without guessing.
///
/// The derived `Serialize` is the wire form; `Deserialize` is written by hand
/// (in the crate's `bounded` module) to the same form, refusing a value nested deeper
/// than [`MAX_DEPTH`]. Every untrusted way in (bincode, JSON) is bounded at
/// that depth, and a value lifted from a guest is bounded by its WIT type's
/// depth, which wasmparser bounds below it: so `Drop`, `Clone`, `Debug`,
/// `Display`, `PartialEq` and [`Value::check`], which recurse once per
/// level, cannot overflow a thread's stack on any value a wasp process
/// holds. (Code that builds a value deeper than that by hand gets no such
/// guarantee; nothing in wasp does.)
#[derive(Clone, Debug, Serialize)]
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
    /// `list<T>` of a numeric `T` (or bytes) as one typed vector: the same
    /// WIT value as a [`Value::List`] of those scalars (it compares equal
    /// to one), held and sent without a node per item. See [`Array`].
    /// Behind an `Arc`: inline, it would make every `Value` 40 bytes, not
    /// 32; shared, a clone of a big array (a namespace value resolved for
    /// a call, pulled, or kept for a retry) costs nothing, and an array is
    /// never changed in place.
    Array(Arc<Array>),
}

impl PartialEq for Value {
    /// As WIT values: derived equality, except that an [`Array`] equals a
    /// [`Value::List`] of the same scalars.
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a == b,
            (S8(a), S8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (S16(a), S16(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (S32(a), S32(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (S64(a), S64(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (F32(a), F32(b)) => a == b,
            (F64(a), F64(b)) => a == b,
            (Char(a), Char(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Record(a), Record(b)) => a == b,
            (Tuple(a), Tuple(b)) => a == b,
            (Variant(a, x), Variant(b, y)) => a == b && x == y,
            (Enum(a), Enum(b)) => a == b,
            (Option(a), Option(b)) => a == b,
            (Result(a), Result(b)) => a == b,
            (Flags(a), Flags(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Array(a), List(items)) | (List(items), Array(a)) => a.same_as_values(items),
            _ => false,
        }
    }
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
            Value::Array(array) => {
                format!("a list of {} {}", array.len(), array.element_type())
            }
        }
    }

    /// The bytes of a value that is a typed list ([`Value::Array`]), which
    /// its encoding writes in one piece; 0 for any other value. What
    /// decides whether an encoding is big enough to go straight into a
    /// memory file (`wasp_net::same_host::spill_for`).
    pub fn typed_bytes(&self) -> usize {
        match self {
            Value::Array(array) => array.byte_len(),
            _ => 0,
        }
    }

    /// What this value costs in host memory, in bytes, by the model of
    /// [`NODE_BYTES`]: `NODE_BYTES` per node plus what each node holds on
    /// the heap. Argument, result and namespace limits count this, so each
    /// bounds memory; decoding within a budget
    /// ([`Items::decode_within`](crate::msg::Items::decode_within)) charges
    /// the same amounts as it goes.
    pub fn cost_bytes(&self) -> usize {
        self.own_cost_bytes()
            + match self {
                Value::List(items) | Value::Tuple(items) => {
                    items.iter().map(Value::cost_bytes).sum()
                }
                Value::Record(fields) => fields.iter().map(|(_, v)| v.cost_bytes()).sum(),
                Value::Variant(_, payload)
                | Value::Option(payload)
                | Value::Result(Ok(payload) | Err(payload)) => {
                    payload.as_deref().map_or(0, Value::cost_bytes)
                }
                _ => 0,
            }
    }

    /// What this node costs without its parts (list items, field values,
    /// payloads): [`NODE_BYTES`] plus its own strings. The sum of this over
    /// every node of a value is its [`Value::cost_bytes`], so a walk that
    /// visits each node anyway (as the engine's conversion does) can count
    /// the cost in the same pass.
    pub fn own_cost_bytes(&self) -> usize {
        NODE_BYTES
            + match self {
                Value::String(s) | Value::Enum(s) | Value::Variant(s, _) => s.len(),
                Value::Record(fields) => fields.iter().map(|(n, _)| FIELD_BYTES + n.len()).sum(),
                Value::Flags(names) => names.iter().map(|n| NAME_BYTES + n.len()).sum(),
                // Its box and the items themselves, not a node each.
                Value::Array(array) => size_of::<Array>() + array.byte_len(),
                _ => 0,
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
            // One look at the element type, whatever the length.
            (Type::List(elem), Value::Array(array))
                if array.is_empty() || array.element_type() == **elem =>
            {
                Ok(())
            }
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
    fn cost_counts_host_memory() {
        // A node is at least a Value: nothing costs 0 or 1 byte.
        assert_eq!(NODE_BYTES, size_of::<Value>());
        const { assert!(NODE_BYTES >= 24) };
        // Every node of every value: a variant that grew it would cost a
        // quarter more memory for every list of non-numbers.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(NODE_BYTES, 32);
        assert_eq!(Value::Bool(true).cost_bytes(), NODE_BYTES);
        assert_eq!(Value::String(String::new()).cost_bytes(), NODE_BYTES);
        assert_eq!(Value::String("hello".into()).cost_bytes(), NODE_BYTES + 5);
        // A list's items are slots in its buffer: one node each.
        let bools = Value::List(vec![Value::Bool(false); 1000]);
        assert_eq!(bools.cost_bytes(), NODE_BYTES * 1001);
        // Record fields: the name's String beside the value, and its bytes.
        let record = Value::Record(vec![("ab".into(), Value::U8(1))]);
        assert_eq!(FIELD_BYTES, size_of::<String>());
        assert_eq!(record.cost_bytes(), 2 * NODE_BYTES + FIELD_BYTES + 2);
        // Boxed payloads are nodes; case names count their bytes.
        let variant = Value::Variant("c".into(), Some(Box::new(Value::S64(1))));
        assert_eq!(variant.cost_bytes(), 2 * NODE_BYTES + 1);
        let result = Value::Result(Err(Some(Box::new(Value::Option(None)))));
        assert_eq!(result.cost_bytes(), 2 * NODE_BYTES);
        let flags = Value::Flags(vec!["x".into(), "yz".into()]);
        assert_eq!(flags.cost_bytes(), NODE_BYTES + 2 * NAME_BYTES + 3);
        // own_cost_bytes summed over the nodes is the cost.
        let nested = Value::Tuple(vec![record.clone(), variant.clone(), flags.clone()]);
        assert_eq!(
            nested.cost_bytes(),
            nested.own_cost_bytes()
                + record.cost_bytes()
                + variant.cost_bytes()
                + flags.cost_bytes()
        );
    }
}
