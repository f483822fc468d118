//! [`Value`] to `wasmtime::component::Val` and back.
//!
//! Arguments are checked against the export's signature (by
//! `Value::check`) before conversion, so this mapping is structural; wasmtime
//! type-checks the result once more when the call is made.

use wasmtime::component::Val;
use wasp_proto::{FuncSig, Type, Value};

use crate::error::CallError;
use crate::limits::Limit;

/// Converts a call's arguments, checking each against its parameter's type
/// and counting their size (as `Value::cost_bytes` does) in the same pass:
/// this is on every call's path. Only when something does not fit is the
/// slower check run, for an error that names where.
pub fn args_to_vals(
    sig: &FuncSig,
    args: &[Value],
    arg_limit: usize,
) -> Result<Vec<Val>, CallError> {
    let mut size = 0;
    let vals = if args.len() == sig.params.len() {
        sig.params
            .iter()
            .zip(args)
            .map(|(param, arg)| typed_val(arg, &param.ty, &mut size))
            .collect::<Option<Vec<Val>>>()
    } else {
        None
    };
    let Some(vals) = vals else {
        sig.check_args(args).map_err(CallError::Signature)?;
        // The fast path and `check_args` agree on what fits; reaching here
        // would be a bug in one of them.
        return Err(CallError::Unsupported(format!(
            "arguments that fit `{sig}` could not be converted"
        )));
    };
    if size > arg_limit {
        return Err(CallError::Limit {
            limit: Limit::ArgBytes(arg_limit),
            detail: Some(format!("the arguments are {size} bytes")),
        });
    }
    Ok(vals)
}

/// `value` as a `Val` if it has type `ty`, adding its size to `size`.
fn typed_val(value: &Value, ty: &Type, size: &mut usize) -> Option<Val> {
    // Each node's own cost; its parts add theirs as they are converted.
    *size += value.own_cost_bytes();
    let scalar = |_: &mut usize, _: usize, val: Val| Some(val);
    match (ty, value) {
        (Type::Bool, Value::Bool(b)) => scalar(size, 1, Val::Bool(*b)),
        (Type::S8, Value::S8(n)) => scalar(size, 1, Val::S8(*n)),
        (Type::U8, Value::U8(n)) => scalar(size, 1, Val::U8(*n)),
        (Type::S16, Value::S16(n)) => scalar(size, 2, Val::S16(*n)),
        (Type::U16, Value::U16(n)) => scalar(size, 2, Val::U16(*n)),
        (Type::S32, Value::S32(n)) => scalar(size, 4, Val::S32(*n)),
        (Type::U32, Value::U32(n)) => scalar(size, 4, Val::U32(*n)),
        (Type::S64, Value::S64(n)) => scalar(size, 8, Val::S64(*n)),
        (Type::U64, Value::U64(n)) => scalar(size, 8, Val::U64(*n)),
        (Type::F32, Value::F32(x)) => scalar(size, 4, Val::Float32(*x)),
        (Type::F64, Value::F64(x)) => scalar(size, 8, Val::Float64(*x)),
        (Type::Char, Value::Char(c)) => scalar(size, 4, Val::Char(*c)),
        (Type::String, Value::String(s)) => scalar(size, s.len(), Val::String(s.clone())),
        (Type::List(elem), Value::List(items)) => {
            if let Some((_width, convert)) = scalar_converter(elem) {
                // Lists of numbers are the bulk of scientific arguments: one
                // tight loop, no recursion per item.
                let mut vals = Vec::with_capacity(items.len());
                for item in items {
                    vals.push(convert(item)?);
                }
                // Each item is one node, as `own_cost_bytes` counts it.
                *size += wasp_proto::value::NODE_BYTES * vals.len();
                return Some(Val::List(vals));
            }
            // With the exact capacity: collecting into an `Option` cannot
            // know the length, and a long list would grow by doubling.
            let mut vals = Vec::with_capacity(items.len());
            for item in items {
                vals.push(typed_val(item, elem, size)?);
            }
            Some(Val::List(vals))
        }
        (Type::Tuple(types), Value::Tuple(items)) if types.len() == items.len() => types
            .iter()
            .zip(items)
            .map(|(ty, item)| typed_val(item, ty, size))
            .collect::<Option<_>>()
            .map(Val::Tuple),
        (Type::Record(fields), Value::Record(values)) if fields.len() == values.len() => fields
            .iter()
            .zip(values)
            .map(|(field, (name, value))| {
                if field.name != *name {
                    return None;
                }
                Some((name.clone(), typed_val(value, &field.ty, size)?))
            })
            .collect::<Option<_>>()
            .map(Val::Record),
        (Type::Variant(cases), Value::Variant(name, payload)) => {
            let case = cases.iter().find(|c| c.name == *name)?;
            typed_payload(case.ty.as_ref(), payload, size).map(|p| Val::Variant(name.clone(), p))
        }
        (Type::Enum(names), Value::Enum(name)) if names.contains(name) => {
            scalar(size, name.len(), Val::Enum(name.clone()))
        }
        (Type::Flags(names), Value::Flags(set)) if set.iter().all(|n| names.contains(n)) => scalar(
            size,
            set.iter().map(String::len).sum(),
            Val::Flags(set.clone()),
        ),
        (Type::Option(_), Value::Option(None)) => scalar(size, 1, Val::Option(None)),
        (Type::Option(inner), Value::Option(Some(value))) => {
            typed_val(value, inner, size).map(|v| Val::Option(Some(Box::new(v))))
        }
        (Type::Result { ok, .. }, Value::Result(Ok(payload))) => {
            typed_payload(ok.as_deref(), payload, size).map(|p| Val::Result(Ok(p)))
        }
        (Type::Result { err, .. }, Value::Result(Err(payload))) => {
            typed_payload(err.as_deref(), payload, size).map(|p| Val::Result(Err(p)))
        }
        _ => None,
    }
}

/// Converts one value of a known scalar type, or refuses any other.
type ScalarConverter = fn(&Value) -> Option<Val>;

/// For a scalar type, its width and a converter that accepts only values of
/// it.
fn scalar_converter(ty: &Type) -> Option<(usize, ScalarConverter)> {
    Some(match ty {
        Type::F64 => (8, |v| match v {
            Value::F64(x) => Some(Val::Float64(*x)),
            _ => None,
        }),
        Type::F32 => (4, |v| match v {
            Value::F32(x) => Some(Val::Float32(*x)),
            _ => None,
        }),
        Type::S64 => (8, |v| match v {
            Value::S64(n) => Some(Val::S64(*n)),
            _ => None,
        }),
        Type::U64 => (8, |v| match v {
            Value::U64(n) => Some(Val::U64(*n)),
            _ => None,
        }),
        Type::S32 => (4, |v| match v {
            Value::S32(n) => Some(Val::S32(*n)),
            _ => None,
        }),
        Type::U32 => (4, |v| match v {
            Value::U32(n) => Some(Val::U32(*n)),
            _ => None,
        }),
        Type::U8 => (1, |v| match v {
            Value::U8(n) => Some(Val::U8(*n)),
            _ => None,
        }),
        _ => return None,
    })
}

fn typed_payload(
    ty: Option<&Type>,
    payload: &Option<Box<Value>>,
    size: &mut usize,
) -> Option<Option<Box<Val>>> {
    match (ty, payload) {
        (None, None) => Some(None),
        (Some(ty), Some(value)) => typed_val(value, ty, size).map(|v| Some(Box::new(v))),
        _ => None,
    }
}

/// Converts an argument for a call.
pub fn to_val(value: &Value) -> Val {
    match value {
        Value::Bool(b) => Val::Bool(*b),
        Value::S8(n) => Val::S8(*n),
        Value::U8(n) => Val::U8(*n),
        Value::S16(n) => Val::S16(*n),
        Value::U16(n) => Val::U16(*n),
        Value::S32(n) => Val::S32(*n),
        Value::U32(n) => Val::U32(*n),
        Value::S64(n) => Val::S64(*n),
        Value::U64(n) => Val::U64(*n),
        Value::F32(x) => Val::Float32(*x),
        Value::F64(x) => Val::Float64(*x),
        Value::Char(c) => Val::Char(*c),
        Value::String(s) => Val::String(s.clone()),
        Value::List(items) => Val::List(items.iter().map(to_val).collect()),
        Value::Record(fields) => Val::Record(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), to_val(v)))
                .collect(),
        ),
        Value::Tuple(items) => Val::Tuple(items.iter().map(to_val).collect()),
        Value::Variant(case, payload) => Val::Variant(case.clone(), boxed_val(payload)),
        Value::Enum(case) => Val::Enum(case.clone()),
        Value::Option(inner) => Val::Option(boxed_val(inner)),
        Value::Result(Ok(payload)) => Val::Result(Ok(boxed_val(payload))),
        Value::Result(Err(payload)) => Val::Result(Err(boxed_val(payload))),
        Value::Flags(names) => Val::Flags(names.clone()),
    }
}

fn boxed_val(value: &Option<Box<Value>>) -> Option<Box<Val>> {
    value.as_deref().map(|v| Box::new(to_val(v)))
}

/// Converts a call's result. Handles (resources, futures, streams) cannot
/// leave the store and are refused.
pub fn from_val(val: Val) -> Result<Value, CallError> {
    Ok(match val {
        Val::Bool(b) => Value::Bool(b),
        Val::S8(n) => Value::S8(n),
        Val::U8(n) => Value::U8(n),
        Val::S16(n) => Value::S16(n),
        Val::U16(n) => Value::U16(n),
        Val::S32(n) => Value::S32(n),
        Val::U32(n) => Value::U32(n),
        Val::S64(n) => Value::S64(n),
        Val::U64(n) => Value::U64(n),
        Val::Float32(x) => Value::F32(x),
        Val::Float64(x) => Value::F64(x),
        Val::Char(c) => Value::Char(c),
        Val::String(s) => Value::String(s),
        Val::List(items) => Value::List(items.into_iter().map(from_val).collect::<Result<_, _>>()?),
        Val::Record(fields) => Value::Record(
            fields
                .into_iter()
                .map(|(name, v)| Ok((name, from_val(v)?)))
                .collect::<Result<_, CallError>>()?,
        ),
        Val::Tuple(items) => {
            Value::Tuple(items.into_iter().map(from_val).collect::<Result<_, _>>()?)
        }
        Val::Variant(case, payload) => Value::Variant(case, boxed_value(payload)?),
        Val::Enum(case) => Value::Enum(case),
        Val::Option(inner) => Value::Option(boxed_value(inner)?),
        Val::Result(Ok(payload)) => Value::Result(Ok(boxed_value(payload)?)),
        Val::Result(Err(payload)) => Value::Result(Err(boxed_value(payload)?)),
        Val::Flags(names) => Value::Flags(names),
        Val::Resource(_) => return Err(CallError::Unsupported("a resource handle".into())),
        Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(CallError::Unsupported("an async handle".into()));
        }
        Val::Map(_) | Val::FixedLengthList(_) => {
            return Err(CallError::Unsupported("a map or fixed-length list".into()));
        }
    })
}

fn boxed_value(val: Option<Box<Val>>) -> Result<Option<Box<Value>>, CallError> {
    val.map(|v| from_val(*v).map(Box::new)).transpose()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use wasp_proto::testing::{arb_type, arb_value_of, same_value};
    use wasp_proto::{json_to_value, value_to_json};

    use super::*;

    proptest! {
        /// The one-pass conversion agrees with the plain one and with
        /// `Value::cost_bytes`, for every WIT type.
        #[test]
        fn typed_conversion_matches_check_and_size((ty, value) in arb_type().prop_flat_map(|ty| {
            let values = arb_value_of(&ty);
            (Just(ty), values)
        })) {
            let mut size = 0;
            let typed = typed_val(&value, &ty, &mut size).expect("a value of its own type converts");
            let back = from_val(typed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(same_value(&back, &value));
            prop_assert_eq!(size, value.cost_bytes());
        }

        /// JSON -> Value -> Val -> Value gives back the value, for every
        /// WIT type.
        #[test]
        fn json_value_val_value_round_trip((ty, value) in arb_type().prop_flat_map(|ty| {
            let values = arb_value_of(&ty);
            (Just(ty), values)
        })) {
            let json = value_to_json(&value);
            let parsed = json_to_value(&json, &ty, "v").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = from_val(to_val(&parsed)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(same_value(&back, &value), "{back:?} != {value:?}");
        }
    }
}
