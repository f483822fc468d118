//! proptest strategies for arbitrary WIT types and values of them, shared by
//! this crate's tests and the engine's (feature `testing`).

use proptest::prelude::*;

use crate::value::Value;
use crate::wit::{Case, Field, Type};

fn names(max: usize) -> impl Strategy<Value = Vec<String>> {
    // Distinct kebab-case names: a, b, ... keep generated types valid WIT.
    (1..=max).prop_map(|n| (0..n).map(|i| format!("n{i}")).collect())
}

/// Any WIT value type, nested a few levels deep. Directly nested options are
/// left out: their JSON form is ambiguous by design (see [`crate::json`]).
pub fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::S8),
        Just(Type::U8),
        Just(Type::S16),
        Just(Type::U16),
        Just(Type::S32),
        Just(Type::U32),
        Just(Type::S64),
        Just(Type::U64),
        Just(Type::F32),
        Just(Type::F64),
        Just(Type::Char),
        Just(Type::String),
        names(4).prop_map(Type::Enum),
        names(4).prop_map(Type::Flags),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Type::List(Box::new(t))),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Type::Tuple),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|types| {
                Type::Record(
                    types
                        .into_iter()
                        .enumerate()
                        .map(|(i, ty)| Field {
                            name: format!("f{i}"),
                            ty,
                        })
                        .collect(),
                )
            }),
            prop::collection::vec(prop::option::of(inner.clone()), 1..4).prop_map(|types| {
                Type::Variant(
                    types
                        .into_iter()
                        .enumerate()
                        .map(|(i, ty)| Case {
                            name: format!("c{i}"),
                            ty,
                        })
                        .collect(),
                )
            }),
            inner
                .clone()
                .prop_filter("nested option", |t| !matches!(t, Type::Option(_)))
                .prop_map(|t| Type::Option(Box::new(t))),
            (prop::option::of(inner.clone()), prop::option::of(inner)).prop_map(|(ok, err)| {
                Type::Result {
                    ok: ok.map(Box::new),
                    err: err.map(Box::new),
                }
            }),
        ]
    })
}

/// Any value of type `ty`.
pub fn arb_value_of(ty: &Type) -> BoxedStrategy<Value> {
    match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::S8 => any::<i8>().prop_map(Value::S8).boxed(),
        Type::U8 => any::<u8>().prop_map(Value::U8).boxed(),
        Type::S16 => any::<i16>().prop_map(Value::S16).boxed(),
        Type::U16 => any::<u16>().prop_map(Value::U16).boxed(),
        Type::S32 => any::<i32>().prop_map(Value::S32).boxed(),
        Type::U32 => any::<u32>().prop_map(Value::U32).boxed(),
        Type::S64 => any::<i64>().prop_map(Value::S64).boxed(),
        Type::U64 => any::<u64>().prop_map(Value::U64).boxed(),
        Type::F32 => any::<f32>().prop_map(Value::F32).boxed(),
        Type::F64 => any::<f64>().prop_map(Value::F64).boxed(),
        Type::Char => any::<char>().prop_map(Value::Char).boxed(),
        Type::String => any::<String>().prop_map(Value::String).boxed(),
        Type::List(elem) if crate::Array::holds(elem) => {
            // A list of numbers in either form, per item or typed: the same
            // WIT value, which every path must treat alike.
            let elem_ty = (**elem).clone();
            (
                prop::collection::vec(arb_value_of(elem), 0..6),
                any::<bool>(),
            )
                .prop_map(
                    move |(items, typed)| match crate::Array::from_values(&elem_ty, &items) {
                        Some(array) if typed => Value::from(array),
                        _ => Value::List(items),
                    },
                )
                .boxed()
        }
        Type::List(elem) => prop::collection::vec(arb_value_of(elem), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Tuple(types) => types
            .iter()
            .map(arb_value_of)
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Record(fields) => {
            let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
            fields
                .iter()
                .map(|f| arb_value_of(&f.ty))
                .collect::<Vec<_>>()
                .prop_map(move |values| Value::Record(names.iter().cloned().zip(values).collect()))
                .boxed()
        }
        Type::Variant(cases) => {
            let options: Vec<BoxedStrategy<Value>> = cases
                .iter()
                .map(|case| {
                    let name = case.name.clone();
                    match &case.ty {
                        Some(ty) => arb_value_of(ty)
                            .prop_map(move |v| Value::Variant(name.clone(), Some(Box::new(v))))
                            .boxed(),
                        None => Just(Value::Variant(name, None)).boxed(),
                    }
                })
                .collect();
            proptest::strategy::Union::new(options).boxed()
        }
        Type::Enum(names) => proptest::sample::select(names.clone())
            .prop_map(Value::Enum)
            .boxed(),
        Type::Flags(names) => proptest::sample::subsequence(names.clone(), 0..=names.len())
            .prop_map(Value::Flags)
            .boxed(),
        Type::Option(inner) => prop::option::of(arb_value_of(inner))
            .prop_map(|v| Value::Option(v.map(Box::new)))
            .boxed(),
        Type::Result { ok, err } => {
            let ok = side(ok.as_deref()).prop_map(|v| Value::Result(Ok(v)));
            let err = side(err.as_deref()).prop_map(|v| Value::Result(Err(v)));
            prop_oneof![ok, err].boxed()
        }
    }
}

fn side(ty: Option<&Type>) -> BoxedStrategy<Option<Box<Value>>> {
    match ty {
        Some(ty) => arb_value_of(ty).prop_map(|v| Some(Box::new(v))).boxed(),
        None => Just(None).boxed(),
    }
}

/// Equality that treats NaN as equal to NaN (of the same width), which
/// round-trip tests need and `PartialEq` cannot give; an [`Array`](crate::Array)
/// and a list of the same scalars are the same value.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => same_items(&x.to_values(), &y.to_values()),
        (Value::Array(x), Value::List(ys)) | (Value::List(ys), Value::Array(x)) => {
            same_items(&x.to_values(), ys)
        }
        (Value::F32(x), Value::F32(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::F64(x), Value::F64(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::List(xs), Value::List(ys)) | (Value::Tuple(xs), Value::Tuple(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
        }
        (Value::Record(xs), Value::Record(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|((n, x), (m, y))| n == m && same_value(x, y))
        }
        (Value::Variant(n, x), Value::Variant(m, y)) => n == m && same_payload(x, y),
        (Value::Option(x), Value::Option(y)) => same_payload(x, y),
        (Value::Result(Ok(x)), Value::Result(Ok(y)))
        | (Value::Result(Err(x)), Value::Result(Err(y))) => same_payload(x, y),
        _ => a == b,
    }
}

fn same_items(xs: &[Value], ys: &[Value]) -> bool {
    xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_value(x, y))
}

fn same_payload(a: &Option<Box<Value>>, b: &Option<Box<Value>>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => same_value(x, y),
        (None, None) => true,
        _ => false,
    }
}

/// Any typed list ([`Array`](crate::Array)) of fewer than `max_len`
/// items, of any element type.
pub fn arb_array(max_len: usize) -> impl Strategy<Value = crate::Array> {
    use crate::Array;
    let n = 0..max_len;
    prop_oneof![
        prop::collection::vec(any::<i8>(), n.clone()).prop_map(Array::S8),
        prop::collection::vec(any::<u8>(), n.clone()).prop_map(Array::U8),
        prop::collection::vec(any::<i16>(), n.clone()).prop_map(Array::S16),
        prop::collection::vec(any::<u16>(), n.clone()).prop_map(Array::U16),
        prop::collection::vec(any::<i32>(), n.clone()).prop_map(Array::S32),
        prop::collection::vec(any::<u32>(), n.clone()).prop_map(Array::U32),
        prop::collection::vec(any::<i64>(), n.clone()).prop_map(Array::S64),
        prop::collection::vec(any::<u64>(), n.clone()).prop_map(Array::U64),
        prop::collection::vec(any::<f32>(), n.clone()).prop_map(Array::F32),
        prop::collection::vec(any::<f64>(), n).prop_map(Array::F64),
    ]
}
