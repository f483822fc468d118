//! WIT types, signatures and values built from fuzz input
//! ([`arbitrary::Unstructured`]), with bounded depth and width so that one
//! input cannot ask for an unbounded tree.
//!
//! Types are valid WIT (distinct names in records, variants, enums and
//! flags), because that is what a component's reflection can produce; values
//! come in two kinds: [`value_of`], well typed, to reach the success paths,
//! and [`any_value`], of any shape, to reach the refusals.

use arbitrary::{Result, Unstructured};
use wasp_proto::{Array, Case, Field, FuncSig, Param, Type, Value};

/// The deepest type (and value) built: deep enough for every shape of
/// nesting, shallow enough that one input stays small. Deep nesting on
/// purpose is the wire harnesses' business ([`crate::wire`]).
pub const MAX_DEPTH: u32 = 5;

/// The most elements of a list, fields of a record, cases of a variant, or
/// parameters of a signature.
pub const MAX_WIDTH: usize = 5;

/// Names that repeat across types on purpose, so that a value of one type
/// sometimes fits another's names.
const NAMES: [&str; 6] = ["a", "b", "c", "ok", "err", "x-y"];

/// `count` distinct names: from [`NAMES`], or arbitrary text (not always
/// valid WIT, which the parsers must survive too).
fn names(u: &mut Unstructured<'_>, count: usize) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(count);
    for i in 0..count {
        let name = if u.ratio(1, 8)? {
            String::arbitrary_take(u)?
        } else {
            (*u.choose(&NAMES)?).to_owned()
        };
        // Distinct, as WIT requires: a repeat gets its position appended.
        if out.contains(&name) {
            out.push(format!("{name}{i}"));
        } else {
            out.push(name);
        }
    }
    Ok(out)
}

/// A bounded string from the input.
trait ArbitraryTake: Sized {
    fn arbitrary_take(u: &mut Unstructured<'_>) -> Result<Self>;
}

impl ArbitraryTake for String {
    fn arbitrary_take(u: &mut Unstructured<'_>) -> Result<Self> {
        let len = u.int_in_range(0..=12)?;
        let mut s = String::new();
        for _ in 0..len {
            s.push(u.arbitrary::<char>()?);
        }
        Ok(s)
    }
}

fn width(u: &mut Unstructured<'_>, min: usize) -> Result<usize> {
    u.int_in_range(min..=MAX_WIDTH)
}

/// A WIT type nested at most `depth` levels.
pub fn wit_type(u: &mut Unstructured<'_>, depth: u32) -> Result<Type> {
    let leaves = 15;
    let kinds = if depth == 0 { leaves } else { leaves + 7 };
    Ok(match u.choose_index(kinds)? {
        0 => Type::Bool,
        1 => Type::S8,
        2 => Type::U8,
        3 => Type::S16,
        4 => Type::U16,
        5 => Type::S32,
        6 => Type::U32,
        7 => Type::S64,
        8 => Type::U64,
        9 => Type::F32,
        10 => Type::F64,
        11 => Type::Char,
        12 => Type::String,
        13 => {
            let n = width(u, 1)?;
            Type::Enum(names(u, n)?)
        }
        14 => {
            let n = width(u, 0)?;
            Type::Flags(names(u, n)?)
        }
        15 => Type::List(Box::new(wit_type(u, depth - 1)?)),
        16 => {
            let n = width(u, 1)?;
            Type::Tuple(
                (0..n)
                    .map(|_| wit_type(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        17 => {
            let n = width(u, 1)?;
            let names = names(u, n)?;
            Type::Record(
                names
                    .into_iter()
                    .map(|name| {
                        Ok(Field {
                            name,
                            ty: wit_type(u, depth - 1)?,
                        })
                    })
                    .collect::<Result<_>>()?,
            )
        }
        18 => {
            let n = width(u, 1)?;
            let names = names(u, n)?;
            Type::Variant(
                names
                    .into_iter()
                    .map(|name| {
                        let ty = if u.arbitrary()? {
                            Some(wit_type(u, depth - 1)?)
                        } else {
                            None
                        };
                        Ok(Case { name, ty })
                    })
                    .collect::<Result<_>>()?,
            )
        }
        19 => Type::Option(Box::new(wit_type(u, depth - 1)?)),
        20 => Type::Result {
            ok: side_type(u, depth)?,
            err: side_type(u, depth)?,
        },
        // Lists are the commonest argument: weigh them twice.
        _ => Type::List(Box::new(wit_type(u, depth - 1)?)),
    })
}

fn side_type(u: &mut Unstructured<'_>, depth: u32) -> Result<Option<Box<Type>>> {
    Ok(if u.arbitrary()? {
        Some(Box::new(wit_type(u, depth - 1)?))
    } else {
        None
    })
}

/// A function signature of up to [`MAX_WIDTH`] parameters.
pub fn signature(u: &mut Unstructured<'_>) -> Result<FuncSig> {
    let n = u.int_in_range(0..=MAX_WIDTH)?;
    let params = names(u, n)?
        .into_iter()
        .map(|name| {
            Ok(Param {
                name,
                ty: wit_type(u, MAX_DEPTH)?,
            })
        })
        .collect::<Result<_>>()?;
    let result = if u.arbitrary()? {
        Some(wit_type(u, MAX_DEPTH)?)
    } else {
        None
    };
    Ok(FuncSig {
        name: "f".into(),
        params,
        result,
    })
}

/// A value of type `ty`.
pub fn value_of(u: &mut Unstructured<'_>, ty: &Type) -> Result<Value> {
    Ok(match ty {
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::S8 => Value::S8(u.arbitrary()?),
        Type::U8 => Value::U8(u.arbitrary()?),
        Type::S16 => Value::S16(u.arbitrary()?),
        Type::U16 => Value::U16(u.arbitrary()?),
        Type::S32 => Value::S32(u.arbitrary()?),
        Type::U32 => Value::U32(u.arbitrary()?),
        Type::S64 => Value::S64(u.arbitrary()?),
        Type::U64 => Value::U64(u.arbitrary()?),
        Type::F32 => Value::F32(u.arbitrary()?),
        Type::F64 => Value::F64(u.arbitrary()?),
        Type::Char => Value::Char(u.arbitrary()?),
        Type::String => Value::String(String::arbitrary_take(u)?),
        Type::List(elem) => {
            let n = width(u, 0)?;
            let items: Vec<Value> = (0..n).map(|_| value_of(u, elem)).collect::<Result<_>>()?;
            // A list of numbers in either form: typed or item by item.
            match Array::from_values(elem, &items) {
                Some(array) if u.arbitrary()? => Value::from(array),
                _ => Value::List(items),
            }
        }
        Type::Tuple(types) => Value::Tuple(
            types
                .iter()
                .map(|t| value_of(u, t))
                .collect::<Result<_>>()?,
        ),
        Type::Record(fields) => Value::Record(
            fields
                .iter()
                .map(|f| Ok((f.name.clone(), value_of(u, &f.ty)?)))
                .collect::<Result<_>>()?,
        ),
        Type::Variant(cases) => {
            let case = &cases[u.choose_index(cases.len())?];
            let payload = match &case.ty {
                Some(ty) => Some(Box::new(value_of(u, ty)?)),
                None => None,
            };
            Value::Variant(case.name.clone(), payload)
        }
        Type::Enum(names) => Value::Enum(names[u.choose_index(names.len())?].clone()),
        Type::Flags(names) => {
            let mut set = Vec::new();
            for name in names {
                if u.arbitrary()? {
                    set.push(name.clone());
                }
            }
            Value::Flags(set)
        }
        Type::Option(inner) => Value::Option(if u.arbitrary()? {
            Some(Box::new(value_of(u, inner)?))
        } else {
            None
        }),
        Type::Result { ok, err } => {
            let is_ok: bool = u.arbitrary()?;
            let side = if is_ok { ok } else { err };
            let payload = match side {
                Some(ty) => Some(Box::new(value_of(u, ty)?)),
                None => None,
            };
            Value::Result(if is_ok { Ok(payload) } else { Err(payload) })
        }
    })
}

/// A value of any shape, nested at most `depth` levels: usually not of the
/// type it will be checked against.
pub fn any_value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    if depth == 0 || u.ratio(1, 2)? {
        let ty = wit_type(u, 0)?;
        return value_of(u, &ty);
    }
    let boxed = |u: &mut Unstructured<'_>| -> Result<Option<Box<Value>>> {
        Ok(if u.arbitrary()? {
            Some(Box::new(any_value(u, depth - 1)?))
        } else {
            None
        })
    };
    Ok(match u.choose_index(7)? {
        0 => {
            let n = width(u, 0)?;
            Value::List(
                (0..n)
                    .map(|_| any_value(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        1 => {
            let n = width(u, 0)?;
            Value::Tuple(
                (0..n)
                    .map(|_| any_value(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        2 => {
            let n = width(u, 0)?;
            Value::Record(
                names(u, n)?
                    .into_iter()
                    .map(|name| Ok((name, any_value(u, depth - 1)?)))
                    .collect::<Result<_>>()?,
            )
        }
        3 => {
            let name = names(u, 1)?.remove(0);
            Value::Variant(name, boxed(u)?)
        }
        4 => Value::Option(boxed(u)?),
        5 => {
            // A typed list of any element type, wherever it lands.
            const NUMBERS: [Type; 10] = [
                Type::S8,
                Type::U8,
                Type::S16,
                Type::U16,
                Type::S32,
                Type::U32,
                Type::S64,
                Type::U64,
                Type::F32,
                Type::F64,
            ];
            let elem = &NUMBERS[u.choose_index(NUMBERS.len())?];
            let n = width(u, 0)?;
            let items: Vec<Value> = (0..n).map(|_| value_of(u, elem)).collect::<Result<_>>()?;
            Array::from_values(elem, &items).map_or(Value::List(items), Value::from)
        }
        _ => {
            if u.arbitrary()? {
                Value::Result(Ok(boxed(u)?))
            } else {
                Value::Result(Err(boxed(u)?))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every generated value has its type, for any input bytes.
    #[test]
    fn values_of_a_type_check_against_it() {
        let mut rng = crate::corpus::Rng::new(7);
        for _ in 0..2000 {
            let bytes = rng.bytes(256);
            let mut u = Unstructured::new(&bytes);
            let Ok(ty) = wit_type(&mut u, MAX_DEPTH) else {
                continue;
            };
            let value = value_of(&mut u, &ty).expect("values never run out of input");
            value
                .check(&ty, "v")
                .unwrap_or_else(|err| panic!("{value:?} is not a {ty}: {err}"));
        }
    }
}
