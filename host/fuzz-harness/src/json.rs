//! Harness: JSON to [`Value`] against an arbitrary WIT [`Type`]
//! (`wasp_proto::json_to_value`), the path every CLI argument and every
//! namespace value typed in by a user takes.
//!
//! The input builds a type (bounded depth, see [`crate::gen`]), then JSON
//! in one of three ways: the printed form of a value of that type (which
//! must read back), that form with one node replaced by arbitrary JSON, or
//! arbitrary JSON text. Properties:
//! - a value read from JSON has the type it was read against;
//! - its printed form reads back, and prints the same (a fixed point);
//! - a refusal names where (a path from the argument's name) and what.

use arbitrary::Unstructured;
use serde_json::{Map, Number, Value as Json};
use wasp_proto::{Type, json_to_value, value_to_json};

use crate::shapes::{self, MAX_DEPTH};

/// The argument's name in errors.
const PATH: &str = "arg";

/// Harness: see the module docs.
pub fn json_value(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ty) = shapes::wit_type(&mut u, MAX_DEPTH) else {
        return;
    };
    match u.choose_index(4).unwrap_or(0) {
        0 => {
            let Ok(value) = shapes::value_of(&mut u, &ty) else {
                return;
            };
            let json = value_to_json(&value);
            let read = json_to_value(&json, &ty, PATH).unwrap_or_else(|err| {
                panic!("the printed form {json} of a {ty} does not read back: {err}")
            });
            check_read(&json, &ty, Ok(read));
        }
        1 => {
            let Ok(value) = shapes::value_of(&mut u, &ty) else {
                return;
            };
            let mut json = value_to_json(&value);
            if let Ok(replacement) = any_json(&mut u, 3) {
                replace_a_node(&mut u, &mut json, replacement);
            }
            check(&json, &ty);
        }
        2 => {
            if let Ok(json) = any_json(&mut u, 4) {
                check(&json, &ty);
            }
        }
        _ => {
            // Text: serde_json bounds its own recursion (128 levels).
            if let Ok(json) = serde_json::from_slice::<Json>(u.take_rest()) {
                check(&json, &ty);
            }
        }
    }
}

fn check(json: &Json, ty: &Type) {
    check_read(json, ty, json_to_value(json, ty, PATH));
}

fn check_read(json: &Json, ty: &Type, read: Result<wasp_proto::Value, wasp_proto::JsonError>) {
    match read {
        Ok(value) => {
            value
                .check(ty, PATH)
                .unwrap_or_else(|err| panic!("{json} read as a {ty} but does not check: {err}"));
            let printed = value_to_json(&value);
            let back = json_to_value(&printed, ty, PATH).unwrap_or_else(|err| {
                panic!(
                    "{json} read as a {ty}, printed as {printed}, which does not read back: {err}"
                )
            });
            assert_eq!(
                value_to_json(&back),
                printed,
                "printing is not a fixed point for {json} as a {ty}"
            );
        }
        Err(err) => {
            assert!(
                err.path.starts_with(PATH),
                "an error that does not say where: {err:?}"
            );
            assert!(
                !err.message.is_empty(),
                "an error that does not say what: {err:?}"
            );
            assert!(err.to_string().starts_with(PATH), "{err}");
        }
    }
}

/// Arbitrary JSON, nested at most `depth` levels, with keys and strings
/// that are often the names types use.
fn any_json(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Json> {
    const KEYS: [&str; 8] = ["a", "b", "c", "ok", "err", "x-y", "", "nan"];
    let kinds = if depth == 0 { 5 } else { 7 };
    Ok(match u.choose_index(kinds)? {
        0 => Json::Null,
        1 => Json::Bool(u.arbitrary()?),
        2 => match u.choose_index(4)? {
            0 => Json::from(u.arbitrary::<i64>()?),
            1 => Json::from(u.arbitrary::<u64>()?),
            2 => Number::from_f64(u.arbitrary()?).map_or(Json::Null, Json::Number),
            _ => Json::from(u.int_in_range(-2i64..=300)?),
        },
        3 => Json::String((*u.choose(&KEYS)?).to_owned()),
        4 => Json::String(match u.choose_index(3)? {
            0 => u.arbitrary::<char>()?.to_string(),
            1 => u.arbitrary::<u64>()?.to_string(),
            _ => (*u.choose(&["inf", "-inf", "-1", "18446744073709551616", "λ"])?).to_owned(),
        }),
        5 => {
            let n = u.int_in_range(0..=4)?;
            Json::Array(
                (0..n)
                    .map(|_| any_json(u, depth - 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => {
            let n = u.int_in_range(0..=3)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert((*u.choose(&KEYS)?).to_owned(), any_json(u, depth - 1)?);
            }
            Json::Object(map)
        }
    })
}

/// Replaces the root or a node below it, walking down by the input.
fn replace_a_node(u: &mut Unstructured<'_>, json: &mut Json, replacement: Json) {
    let descend = u.ratio(2, 3).unwrap_or(false);
    let child = match json {
        Json::Array(items) if descend && !items.is_empty() => {
            let i = u.choose_index(items.len()).unwrap_or(0);
            items.get_mut(i)
        }
        Json::Object(map) if descend && !map.is_empty() => {
            let i = u.choose_index(map.len()).unwrap_or(0);
            map.values_mut().nth(i)
        }
        _ => None,
    };
    match child {
        Some(child) => replace_a_node(u, child, replacement),
        None => *json = replacement,
    }
}
