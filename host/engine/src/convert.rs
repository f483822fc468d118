//! [`Value`] to `wasmtime::component::Val` and back.
//!
//! Arguments are checked against the export's signature (by
//! `Value::check`) before conversion, so this mapping is structural; wasmtime
//! type-checks the result once more when the call is made.

use wasmtime::component::Val;
use wasp_proto::Value;

use crate::error::CallError;

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
