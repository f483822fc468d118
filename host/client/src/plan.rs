//! What a submission sends: a [`Plan`] of tasks, each item checked
//! against the function's signature before anything leaves, each task's
//! argument lists encoded only when it is sent.

use wasp_proto::codec::CodecError;
use wasp_proto::msg::{Arg, Items};
use wasp_proto::{EngineId, FuncSig, SignatureError, Value};

use crate::error::ClientError;

/// One task to submit: its items and the engines allowed to run it.
pub(crate) type Chunk = (Vec<Vec<Arg>>, Option<Vec<EngineId>>);

/// Checks one item's arguments against a signature: `given` arguments, of
/// which `values` are the (parameter index, value) pairs sent as values;
/// references are checked by the engine that resolves them.
fn check_args<'a>(
    sig: &FuncSig,
    given: usize,
    values: impl Iterator<Item = (usize, &'a Value)>,
) -> Result<(), SignatureError> {
    if given != sig.params.len() {
        return Err(SignatureError::Arity {
            sig: Box::new(sig.clone()),
            expected: sig.params.len(),
            given,
        });
    }
    for (param, value) in values.filter_map(|(i, value)| Some((sig.params.get(i)?, value))) {
        value
            .check(&param.ty, &param.name)
            .map_err(|mismatch| SignatureError::Type {
                sig: Box::new(sig.clone()),
                mismatch,
            })?;
    }
    Ok(())
}

/// The values among an argument list, with their parameter index.
fn arg_values(args: &[Arg]) -> impl Iterator<Item = (usize, &Value)> {
    args.iter().enumerate().filter_map(|(i, arg)| match arg {
        Arg::Value(value) => Some((i, value)),
        Arg::Ref(_) => None,
    })
}

/// Where a submission's tasks take their argument lists from.
pub(crate) enum Plan {
    /// Lists already made, one chunk per task.
    Chunks(Vec<Chunk>),
    /// A load-balanced `map` over sequences: task `t` takes items
    /// `t * chunksize ..`, encoded straight from the sequences when it is
    /// sent (no list per item is ever built).
    Columns {
        sequences: Vec<Vec<Value>>,
        items: usize,
        chunksize: usize,
        targets: Option<Vec<EngineId>>,
    },
}

impl Plan {
    /// A `map` over `sequences` (zipped, stopping at the shortest), in
    /// chunks of `chunksize`.
    pub(crate) fn columns(
        sequences: Vec<Vec<Value>>,
        chunksize: usize,
        targets: Option<Vec<EngineId>>,
    ) -> Self {
        let items = sequences.iter().map(Vec::len).min().unwrap_or(0);
        Plan::Columns {
            sequences,
            items,
            chunksize: chunksize.max(1),
            targets,
        }
    }

    /// How many items each task holds.
    pub(crate) fn sizes(&self) -> Vec<usize> {
        match self {
            Plan::Chunks(chunks) => chunks.iter().map(|(items, _)| items.len()).collect(),
            Plan::Columns {
                items, chunksize, ..
            } => (0..items.div_ceil(*chunksize))
                .map(|t| (items - t * chunksize).min(*chunksize))
                .collect(),
        }
    }

    /// Checks every item against the signature, before anything is sent.
    pub(crate) fn check(&self, sig: &FuncSig, single: bool) -> Result<(), ClientError> {
        let which = |i: usize| {
            if single {
                String::new()
            } else {
                format!("item {i}: ")
            }
        };
        let refuse = |i, err| ClientError::Arguments(format!("{}{err}", which(i)));
        match self {
            Plan::Chunks(chunks) => {
                for (i, args) in chunks.iter().flat_map(|(items, _)| items).enumerate() {
                    check_args(sig, args.len(), arg_values(args)).map_err(|err| refuse(i, err))?;
                }
            }
            Plan::Columns {
                sequences, items, ..
            } => {
                for i in 0..*items {
                    let values = sequences.iter().map(|s| &s[i]).enumerate();
                    check_args(sig, sequences.len(), values).map_err(|err| refuse(i, err))?;
                }
            }
        }
        Ok(())
    }

    /// Task `t`'s encoded argument lists and the engines allowed to run it.
    pub(crate) fn task(&self, t: usize) -> Result<(Items, Option<Vec<EngineId>>), ClientError> {
        let arguments = |err: CodecError| ClientError::Arguments(err.to_string());
        match self {
            Plan::Chunks(chunks) => {
                let (items, targets) = &chunks[t];
                let typed = items.iter().flatten().map(arg_typed_bytes).sum();
                let encoded = Items::encode_spilling(items, wasp_net::same_host::spill_for(typed))
                    .map_err(arguments)?;
                Ok((encoded, targets.clone()))
            }
            Plan::Columns {
                sequences,
                items,
                chunksize,
                targets,
            } => {
                let start = t * chunksize;
                let range = start..(start + chunksize).min(*items);
                let typed = sequences
                    .iter()
                    .flat_map(|s| s.get(range.clone()).unwrap_or_default())
                    .map(Value::typed_bytes)
                    .sum();
                let encoded = Items::encode_columns_spilling(
                    sequences,
                    range,
                    wasp_net::same_host::spill_for(typed),
                )
                .map_err(arguments)?;
                Ok((encoded, targets.clone()))
            }
        }
    }
}

/// The bytes of an argument that is a typed list ([`Value::Array`]).
fn arg_typed_bytes(arg: &Arg) -> usize {
    match arg {
        Arg::Value(value) => value.typed_bytes(),
        Arg::Ref(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_split_into_chunks_that_decode_to_the_zipped_items() {
        let xs: Vec<Value> = (0..10).map(Value::S64).collect();
        let ys: Vec<Value> = (0..12).map(|i| Value::F64(f64::from(i) / 2.0)).collect();
        let plan = Plan::columns(vec![xs.clone(), ys.clone()], 4, None);
        // Zipped to the shorter sequence: 10 items in chunks of 4.
        assert_eq!(plan.sizes(), vec![4, 4, 2]);
        let (items, targets) = plan.task(2).unwrap();
        assert_eq!(targets, None);
        let expected: Vec<Vec<Arg>> = (8..10)
            .map(|i| vec![Arg::Value(xs[i].clone()), Arg::Value(ys[i].clone())])
            .collect();
        assert_eq!(items.decode().unwrap(), expected);
    }
}
