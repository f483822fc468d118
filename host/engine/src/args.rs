//! Checking call arguments against an export's signature.

use serde_json::Value as Json;
use wasp_proto::{FuncSig, SignatureError, Value, json_to_value};

use crate::error::CallError;
use crate::limits::Limit;

/// Checks arity, types and total size of `args` for `sig`.
pub fn check_args(sig: &FuncSig, args: &[Value], arg_limit: usize) -> Result<(), CallError> {
    sig.check_args(args).map_err(CallError::Signature)?;
    let size: usize = args.iter().map(Value::size_bytes).sum();
    if size > arg_limit {
        return Err(CallError::Limit {
            limit: Limit::ArgBytes(arg_limit),
            detail: Some(format!("the arguments are {size} bytes")),
        });
    }
    Ok(())
}

/// Parses JSON arguments against `sig`'s parameter types.
pub fn args_from_json(sig: &FuncSig, args: &[Json]) -> Result<Vec<Value>, CallError> {
    if args.len() != sig.params.len() {
        return Err(CallError::Signature(SignatureError::Arity {
            sig: Box::new(sig.clone()),
            expected: sig.params.len(),
            given: args.len(),
        }));
    }
    sig.params
        .iter()
        .zip(args)
        .map(|(param, json)| {
            json_to_value(json, &param.ty, &param.name).map_err(|error| CallError::ArgumentJson {
                sig: Box::new(sig.clone()),
                error,
            })
        })
        .collect()
}
