//! Call arguments given as JSON, parsed against an export's signature.

use serde_json::Value as Json;
use wasp_proto::{FuncSig, SignatureError, Value, json_to_value};

use crate::error::CallError;

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
