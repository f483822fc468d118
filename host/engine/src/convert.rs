//! [`Value`] to `wasmtime::component::Val` and back.
//!
//! Arguments are checked against the export's signature (by
//! `Value::check`) before conversion, so this mapping is structural; wasmtime
//! type-checks the result once more when the call is made.
//!
//! Sizes are counted as host memory, the way `Value::cost_bytes` counts
//! them: [`NODE_BYTES`] per value (every list item, field and payload is
//! one) plus the bytes of its strings and names. An empty string or a
//! `false` then costs what it really costs the host, so a byte limit bounds
//! memory, which a count of payload bytes (0 for an empty string) does not.

use wasmtime::component::Val;
use wasp_proto::{Array, FuncSig, Type, Value};

use crate::error::CallError;
use crate::limits::Limit;

use wasp_proto::value::{FIELD_BYTES, NAME_BYTES, NODE_BYTES};

/// What `value` costs in host memory, as the argument, result and
/// namespace limits count it (`Value::cost_bytes`: `NODE_BYTES` per node
/// plus string and name bytes), walking the tree with its own stack, so
/// that no nesting overflows it.
pub fn memory_size(value: &Value) -> usize {
    let mut size = 0usize;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        size = size.saturating_add(value.own_cost_bytes());
        match value {
            Value::List(items) | Value::Tuple(items) => pending.extend(items),
            Value::Record(fields) => pending.extend(fields.iter().map(|(_, value)| value)),
            Value::Variant(_, payload)
            | Value::Option(payload)
            | Value::Result(Ok(payload) | Err(payload)) => pending.extend(payload.as_deref()),
            _ => {}
        }
    }
    size
}

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
    check_arg_bytes(size, arg_limit)?;
    Ok(vals)
}

/// Refuses arguments of `size` bytes (as [`memory_size`] counts them) over
/// `arg_limit`.
pub fn check_arg_bytes(size: usize, arg_limit: usize) -> Result<(), CallError> {
    if size > arg_limit {
        return Err(CallError::Limit {
            limit: Limit::ArgBytes(arg_limit),
            detail: Some(format!("the arguments are {size} bytes")),
        });
    }
    Ok(())
}

/// `value` as a `Val` if it has type `ty`, adding its size to `size`.
fn typed_val(value: &Value, ty: &Type, size: &mut usize) -> Option<Val> {
    // Each node's own cost (its strings and names included); its parts add
    // theirs as they are converted.
    *size += value.own_cost_bytes();
    let scalar = |_: &mut usize, _: usize, val: Val| Some(val);
    match (ty, value) {
        (Type::Bool, Value::Bool(b)) => scalar(size, 0, Val::Bool(*b)),
        (Type::S8, Value::S8(n)) => scalar(size, 0, Val::S8(*n)),
        (Type::U8, Value::U8(n)) => scalar(size, 0, Val::U8(*n)),
        (Type::S16, Value::S16(n)) => scalar(size, 0, Val::S16(*n)),
        (Type::U16, Value::U16(n)) => scalar(size, 0, Val::U16(*n)),
        (Type::S32, Value::S32(n)) => scalar(size, 0, Val::S32(*n)),
        (Type::U32, Value::U32(n)) => scalar(size, 0, Val::U32(*n)),
        (Type::S64, Value::S64(n)) => scalar(size, 0, Val::S64(*n)),
        (Type::U64, Value::U64(n)) => scalar(size, 0, Val::U64(*n)),
        (Type::F32, Value::F32(x)) => scalar(size, 0, Val::Float32(*x)),
        (Type::F64, Value::F64(x)) => scalar(size, 0, Val::Float64(*x)),
        (Type::Char, Value::Char(c)) => scalar(size, 0, Val::Char(*c)),
        (Type::String, Value::String(s)) => scalar(size, s.len(), Val::String(s.clone())),
        (Type::List(elem), Value::List(items)) => {
            if let Some(convert) = scalar_converter(elem) {
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
        // Its size (the items' bytes) was counted as its own cost above.
        (Type::List(elem), Value::Array(array))
            if array.is_empty() || array.element_type() == **elem =>
        {
            Some(Val::List(array_vals(array)))
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
        (Type::Option(_), Value::Option(None)) => Some(Val::Option(None)),
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

/// For a scalar type, a converter that accepts only values of it.
fn scalar_converter(ty: &Type) -> Option<ScalarConverter> {
    Some(match ty {
        Type::F64 => |v| match v {
            Value::F64(x) => Some(Val::Float64(*x)),
            _ => None,
        },
        Type::F32 => |v| match v {
            Value::F32(x) => Some(Val::Float32(*x)),
            _ => None,
        },
        Type::S64 => |v| match v {
            Value::S64(n) => Some(Val::S64(*n)),
            _ => None,
        },
        Type::U64 => |v| match v {
            Value::U64(n) => Some(Val::U64(*n)),
            _ => None,
        },
        Type::S32 => |v| match v {
            Value::S32(n) => Some(Val::S32(*n)),
            _ => None,
        },
        Type::U32 => |v| match v {
            Value::U32(n) => Some(Val::U32(*n)),
            _ => None,
        },
        Type::U8 => |v| match v {
            Value::U8(n) => Some(Val::U8(*n)),
            _ => None,
        },
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
        Value::Array(array) => Val::List(array_vals(array)),
    }
}

/// A typed list's items as `Val`s, one per item: wasmtime's dynamic API
/// lowers a list from nothing else.
fn array_vals(array: &Array) -> Vec<Val> {
    match array {
        Array::Shared(shared) => array_vals(&shared.to_owned_array()),
        Array::S8(v) => v.iter().map(|&x| Val::S8(x)).collect(),
        Array::U8(v) => v.iter().map(|&x| Val::U8(x)).collect(),
        Array::S16(v) => v.iter().map(|&x| Val::S16(x)).collect(),
        Array::U16(v) => v.iter().map(|&x| Val::U16(x)).collect(),
        Array::S32(v) => v.iter().map(|&x| Val::S32(x)).collect(),
        Array::U32(v) => v.iter().map(|&x| Val::U32(x)).collect(),
        Array::S64(v) => v.iter().map(|&x| Val::S64(x)).collect(),
        Array::U64(v) => v.iter().map(|&x| Val::U64(x)).collect(),
        Array::F32(v) => v.iter().map(|&x| Val::Float32(x)).collect(),
        Array::F64(v) => v.iter().map(|&x| Val::Float64(x)).collect(),
    }
}

/// A lifted list of numbers as a typed list, its items' bytes charged
/// before the vector is built; `None` (nothing charged) if the list is
/// empty or its items are not all numbers of one type. A guest's list
/// always is (a WIT list's items share one type); a `Val` built from an
/// untyped value (a namespace entry) may not be.
fn lift_array(items: &[Val], budget: &mut Budget) -> Result<Option<Array>, Lift> {
    macro_rules! typed {
        ($case:ident, $val:ident, $t:ty) => {{
            if !items.iter().all(|item| matches!(item, Val::$val(_))) {
                return Ok(None);
            }
            // Its box and its items, as `Value::cost_bytes` counts them.
            budget.take(
                std::mem::size_of::<Array>()
                    .saturating_add(items.len().saturating_mul(std::mem::size_of::<$t>())),
            )?;
            Array::$case(
                items
                    .iter()
                    .filter_map(|item| match item {
                        Val::$val(x) => Some(*x),
                        _ => None,
                    })
                    .collect(),
            )
        }};
    }
    Ok(Some(match items.first() {
        Some(Val::S8(_)) => typed!(S8, S8, i8),
        Some(Val::U8(_)) => typed!(U8, U8, u8),
        Some(Val::S16(_)) => typed!(S16, S16, i16),
        Some(Val::U16(_)) => typed!(U16, U16, u16),
        Some(Val::S32(_)) => typed!(S32, S32, i32),
        Some(Val::U32(_)) => typed!(U32, U32, u32),
        Some(Val::S64(_)) => typed!(S64, S64, i64),
        Some(Val::U64(_)) => typed!(U64, U64, u64),
        Some(Val::Float32(_)) => typed!(F32, Float32, f32),
        Some(Val::Float64(_)) => typed!(F64, Float64, f64),
        _ => return Ok(None),
    }))
}

fn boxed_val(value: &Option<Box<Value>>) -> Option<Box<Val>> {
    value.as_deref().map(|v| Box::new(to_val(v)))
}

/// Converts a call's result. Handles (resources, futures, streams) cannot
/// leave the store and are refused.
pub fn from_val(val: Val) -> Result<Value, CallError> {
    from_val_within(val, usize::MAX).map(|(value, _)| value)
}

/// Converts a call's result, counting its memory as it goes (as
/// [`memory_size`] does) and stopping as soon as the count passes `limit`:
/// the `Value` tree never costs more than `limit` plus one node. Returns
/// the value and its size.
pub fn from_val_within(val: Val, limit: usize) -> Result<(Value, usize), CallError> {
    let mut budget = Budget { used: 0, limit };
    match lift(val, &mut budget) {
        Ok(value) => Ok((value, budget.used)),
        Err(Lift::Error(err)) => Err(err),
        Err(Lift::OverLimit) => Err(CallError::Limit {
            limit: Limit::ResultBytes(limit),
            detail: Some(format!(
                "the result is over {} as host memory",
                crate::limits::bytes(limit)
            )),
        }),
    }
}

/// The memory a result conversion has used, and may use.
struct Budget {
    used: usize,
    limit: usize,
}

impl Budget {
    fn take(&mut self, bytes: usize) -> Result<(), Lift> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(Lift::OverLimit);
        }
        Ok(())
    }
}

/// Why a result conversion stopped.
enum Lift {
    Error(CallError),
    OverLimit,
}

impl From<CallError> for Lift {
    fn from(err: CallError) -> Self {
        Lift::Error(err)
    }
}

/// One node of a result, charged to the budget before its children are
/// converted. Recursion follows the WIT type, whose depth the component's
/// validation bounds.
fn lift(val: Val, budget: &mut Budget) -> Result<Value, Lift> {
    budget.take(NODE_BYTES)?;
    let unsupported = |what: &str| Lift::Error(CallError::Unsupported(what.into()));
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
        Val::String(s) => {
            budget.take(s.len())?;
            Value::String(s)
        }
        Val::List(items) => match lift_array(&items, budget)? {
            Some(array) => Value::from(array),
            None => Value::List(lift_all(items, budget)?),
        },
        Val::Tuple(items) => Value::Tuple(lift_all(items, budget)?),
        Val::Record(fields) => {
            let mut values = Vec::with_capacity(fields.len());
            for (name, v) in fields {
                budget.take(FIELD_BYTES + name.len())?;
                values.push((name, lift(v, budget)?));
            }
            Value::Record(values)
        }
        Val::Variant(case, payload) => {
            budget.take(case.len())?;
            Value::Variant(case, boxed_value(payload, budget)?)
        }
        Val::Enum(case) => {
            budget.take(case.len())?;
            Value::Enum(case)
        }
        Val::Option(inner) => Value::Option(boxed_value(inner, budget)?),
        Val::Result(Ok(payload)) => Value::Result(Ok(boxed_value(payload, budget)?)),
        Val::Result(Err(payload)) => Value::Result(Err(boxed_value(payload, budget)?)),
        Val::Flags(names) => {
            budget.take(names.iter().map(|name| NAME_BYTES + name.len()).sum())?;
            Value::Flags(names)
        }
        Val::Resource(_) => return Err(unsupported("a resource handle")),
        Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(unsupported("an async handle"));
        }
        Val::Map(_) | Val::FixedLengthList(_) => {
            return Err(unsupported("a map or fixed-length list"));
        }
    })
}

/// A list's items, each charged before it is converted; the list's own
/// buffer is taken only for items that fit.
fn lift_all(items: Vec<Val>, budget: &mut Budget) -> Result<Vec<Value>, Lift> {
    let mut values = Vec::new();
    for item in items {
        // Grown as the budget allows rather than sized up front: a list of
        // a billion items must fail at the limit, not allocate first.
        values.push(lift(item, budget)?);
    }
    Ok(values)
}

fn boxed_value(val: Option<Box<Val>>, budget: &mut Budget) -> Result<Option<Box<Value>>, Lift> {
    val.map(|v| lift(*v, budget).map(Box::new)).transpose()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use wasp_proto::testing::{arb_type, arb_value_of, same_value};
    use wasp_proto::{json_to_value, value_to_json};

    use super::*;

    #[test]
    fn a_result_over_the_limit_stops_converting_at_it() {
        let items = Val::List(vec![Val::String(String::new()); 1000]);
        let limit = 100 * NODE_BYTES;
        let err = from_val_within(items, limit).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "task exceeded the result size limit (result_bytes = {} B): the result is over {} B as host memory",
                limit, limit
            )
        );
        let (value, size) = from_val_within(Val::List(vec![Val::Bool(true); 99]), limit).unwrap();
        assert_eq!(size, 100 * NODE_BYTES);
        assert_eq!(size, memory_size(&value));
    }

    #[test]
    fn a_lifted_list_of_numbers_is_typed_and_a_mixed_one_is_not() {
        let typed = from_val(Val::List(vec![Val::Float64(1.0), Val::Float64(2.5)])).unwrap();
        assert!(matches!(&typed, Value::Array(a) if **a == Array::F64(vec![1.0, 2.5])));
        // An untyped value (a namespace entry) may mix kinds: kept item by
        // item, not refused.
        let mixed = Value::List(vec![Value::S64(1), Value::F64(2.0)]);
        let back = from_val(to_val(&mixed)).unwrap();
        assert!(
            matches!(&back, Value::List(items) if items.len() == 2),
            "{back:?}"
        );
        assert_eq!(back, mixed);
    }

    proptest! {
        /// The one-pass conversion agrees with the plain one, and its size
        /// with `memory_size` and the result conversion's, for every WIT
        /// type.
        #[test]
        fn typed_conversion_matches_check_and_size((ty, value) in arb_type().prop_flat_map(|ty| {
            let values = arb_value_of(&ty);
            (Just(ty), values)
        })) {
            let mut size = 0;
            let typed = typed_val(&value, &ty, &mut size).expect("a value of its own type converts");
            let back = from_val(typed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(same_value(&back, &value));
            prop_assert_eq!(size, memory_size(&value));
            let (lifted_value, lifted) = from_val_within(to_val(&value), usize::MAX)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Lifted, a list of numbers is a typed list, whatever form it
            // was sent in: its size is that form's.
            prop_assert_eq!(lifted, memory_size(&lifted_value));
            prop_assert!(same_value(&lifted_value, &value));
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
