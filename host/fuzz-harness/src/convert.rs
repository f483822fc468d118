//! Harness: [`Value`] to wasmtime `Val`, the engine's conversion of every
//! call's arguments (`wasp_engine::convert::args_to_vals`, public), with an
//! arbitrary signature, arguments (well typed or not) and argument limit.
//!
//! Properties:
//! - the conversion succeeds exactly when the arguments fit the signature
//!   (`FuncSig::check_args`) and their size is within the limit;
//! - what it makes converts back (`from_val`) to the arguments given;
//! - a refusal is the signature's own error, or the argument limit's
//!   naming `arg_bytes`, its value and the arguments' size.

use arbitrary::Unstructured;
use wasp_engine::convert::{args_to_vals, from_val, to_val};
use wasp_engine::{CallError, Limit};
use wasp_proto::codec;
use wasp_proto::{Array, Value};

use crate::shapes::{self, MAX_DEPTH};

/// Harness: see the module docs.
pub fn value_to_val(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(sig) = shapes::signature(&mut u) else {
        return;
    };
    let args: arbitrary::Result<Vec<Value>> = match u.choose_index(4).unwrap_or(0) {
        // Mostly well typed, so that conversion itself is reached.
        0 | 1 => sig
            .params
            .iter()
            .map(|p| shapes::value_of(&mut u, &p.ty))
            .collect(),
        // Well typed but for one argument.
        2 => sig
            .params
            .iter()
            .map(|p| {
                if u.ratio(1, 3)? {
                    shapes::any_value(&mut u, MAX_DEPTH)
                } else {
                    shapes::value_of(&mut u, &p.ty)
                }
            })
            .collect(),
        // Any number of anything.
        _ => {
            let n = u.int_in_range(0..=shapes::MAX_WIDTH).unwrap_or(0);
            (0..n)
                .map(|_| shapes::any_value(&mut u, MAX_DEPTH))
                .collect()
        }
    };
    let Ok(args) = args else {
        return;
    };
    let limit = match u.choose_index(3).unwrap_or(0) {
        0 => 64 << 20,
        1 => u.int_in_range(0..=256).unwrap_or(0),
        _ => usize::MAX,
    };
    check(&sig, &args, limit);
}

fn check(sig: &wasp_proto::FuncSig, args: &[Value], limit: usize) {
    let fits = sig.check_args(args);
    let size: usize = args.iter().map(Value::cost_bytes).sum();

    // The plain conversion, used for namespace values, round-trips any value.
    for arg in args {
        let back = from_val(to_val(arg)).expect("a Value's own Val converts back");
        assert_eq!(
            encoded(&back),
            encoded(arg),
            "to_val then from_val changed {arg:?}"
        );
    }

    match args_to_vals(sig, args, limit) {
        Ok(vals) => {
            assert!(
                fits.is_ok(),
                "converted arguments that do not fit `{sig}`: {args:?}"
            );
            assert!(
                size <= limit,
                "{size} bytes of arguments passed a {limit}-byte limit"
            );
            assert_eq!(vals.len(), args.len());
            for (val, arg) in vals.into_iter().zip(args) {
                let back = from_val(val).expect("a converted argument converts back");
                assert_eq!(encoded(&back), encoded(arg), "conversion changed {arg:?}");
            }
        }
        Err(CallError::Signature(err)) => {
            let expected = fits.expect_err("refused arguments that fit the signature");
            assert_eq!(err, expected, "another error than check_args gives");
            assert!(err.to_string().contains(&sig.to_string()), "{err}");
        }
        Err(CallError::Limit {
            limit: Limit::ArgBytes(named),
            detail,
        }) => {
            assert!(
                fits.is_ok(),
                "a limit error for arguments that do not fit `{sig}`"
            );
            assert_eq!(named, limit);
            assert!(
                size > limit,
                "{size} bytes refused under a {limit}-byte limit"
            );
            let text = CallError::Limit {
                limit: Limit::ArgBytes(named),
                detail,
            }
            .to_string();
            assert!(text.contains("arg_bytes"), "{text}");
            assert!(text.contains(&size.to_string()), "{text}");
        }
        Err(other) => panic!("unexpected error converting {args:?} for `{sig}`: {other}"),
    }
}

/// Values compared by their encoding: bit-exact, NaN included.
/// The value's wire bytes, once in its canonical form: a lifted list of
/// numbers comes back typed ([`Array`]) whatever form it went in, so both
/// sides are compared with their lists of numbers typed. Bytes, not
/// `PartialEq`, so that NaNs compare by their bits.
fn encoded(value: &Value) -> Vec<u8> {
    codec::encode(&canonical(value)).expect("values encode")
}

/// `value` with every non-empty list of numbers of one type as an
/// [`Array`], and every empty one as an empty list, at any depth.
fn canonical(value: &Value) -> Value {
    let all = |items: &[Value]| items.iter().map(canonical).collect::<Vec<_>>();
    let boxed = |payload: &Option<Box<Value>>| payload.as_deref().map(|v| Box::new(canonical(v)));
    match value {
        Value::List(items) => {
            let typed = items
                .first()
                .and_then(Array::of_scalar)
                .and_then(|first| Array::from_values(&first.element_type(), items));
            match typed {
                Some(array) => Value::from(array),
                None => Value::List(all(items)),
            }
        }
        // An empty list has no element type to lift it by: it comes back
        // as a plain empty list (the same value).
        Value::Array(array) if array.is_empty() => Value::List(Vec::new()),
        Value::Tuple(items) => Value::Tuple(all(items)),
        Value::Record(fields) => Value::Record(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), canonical(v)))
                .collect(),
        ),
        Value::Variant(case, payload) => Value::Variant(case.clone(), boxed(payload)),
        Value::Option(payload) => Value::Option(boxed(payload)),
        Value::Result(Ok(payload)) => Value::Result(Ok(boxed(payload))),
        Value::Result(Err(payload)) => Value::Result(Err(boxed(payload))),
        other => other.clone(),
    }
}
