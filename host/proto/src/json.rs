//! The JSON form of values, typed by a signature.
//!
//! JSON alone cannot say whether `3` is an `s64` or a `u8`, so parsing takes
//! the expected [`Type`]; printing needs none, because a [`Value`] knows its
//! case. The form (DESIGN.md): integers and floats as numbers (integers also
//! as decimal strings, for 64-bit values beyond 2^53; non-finite floats as
//! `"nan"`, `"inf"`, `"-inf"`); char as a one-character string; list and
//! tuple as arrays; record as an object keyed by field name (a missing
//! `option` field is `none`); variant as `{"case": payload}`, or `"case"`
//! without payload; enum as `"case"`; flags as an array of names; option as
//! `null` or the value; result as `{"ok": v}` / `{"err": e}` (`null` or a bare
//! `"ok"` / `"err"` when that side has no payload). Printing uses the same
//! form, so a result can be fed back as an argument.
//!
//! One ambiguity is inherent: in `option<option<T>>`, `null` reads as the
//! outer `none`, so `some(none)` prints as `null` and reads back as `none`.
//!
//! Parsing refuses to go deeper than [`MAX_DEPTH`] levels (of the value, and
//! so of the type it recurses on alongside) before it recurses, as decoding
//! does: a JSON value from any source, not only serde_json's parser with its
//! own recursion limit, yields a [`Value`] that is safe to walk.

use serde_json::{Map, Number, Value as Json};

use crate::array::Array;
use crate::value::{MAX_DEPTH, Value};
use crate::wit::Type;

/// A JSON text does not fit the type it was parsed against.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct JsonError {
    /// Where in the argument the problem is, e.g. `strikes[2]`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

/// Parses `json` as a value of type `ty`; `path` names it in errors
/// (usually the parameter name).
pub fn json_to_value(json: &Json, ty: &Type, path: &str) -> Result<Value, JsonError> {
    Parser { path, depth: 1 }.parse(json, ty)
}

/// The error for a value nested past [`MAX_DEPTH`] at `path`.
fn too_deep(path: &str) -> JsonError {
    JsonError {
        path: path.to_owned(),
        message: format!(
            "a value is nested deeper than the nesting limit (MAX_DEPTH = {MAX_DEPTH})"
        ),
    }
}

/// Prints a value in its JSON form.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::S8(n) => Json::from(*n),
        Value::U8(n) => Json::from(*n),
        Value::S16(n) => Json::from(*n),
        Value::U16(n) => Json::from(*n),
        Value::S32(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::S64(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        // Through the shortest decimal form, so 0.1f32 prints as 0.1.
        Value::F32(x) => float_to_json(x.to_string().parse().unwrap_or(f64::from(*x))),
        Value::F64(x) => float_to_json(*x),
        Value::Char(c) => Json::String(c.to_string()),
        Value::String(s) | Value::Enum(s) => Json::String(s.clone()),
        Value::List(items) | Value::Tuple(items) => {
            Json::Array(items.iter().map(value_to_json).collect())
        }
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), value_to_json(v)))
                .collect(),
        ),
        Value::Variant(case, None) => Json::String(case.clone()),
        Value::Variant(case, Some(payload)) => tagged(case, Some(payload)),
        Value::Option(None) => Json::Null,
        Value::Option(Some(inner)) => value_to_json(inner),
        Value::Result(Ok(payload)) => tagged("ok", payload.as_deref()),
        Value::Result(Err(payload)) => tagged("err", payload.as_deref()),
        Value::Flags(names) => Json::Array(names.iter().cloned().map(Json::String).collect()),
        Value::Array(array) => Json::Array(
            (0..array.len())
                .filter_map(|i| array.get(i))
                .map(|item| value_to_json(&item))
                .collect(),
        ),
    }
}

/// Reads JSON without a type to parse it against, for values that have
/// none yet (a namespace entry from the command line): integers become
/// `s64` (or `u64` above its range), other numbers `f64`, strings
/// `string`, arrays `list` when their items share a kind (else `tuple`),
/// objects `record`, `null` an empty `option`.
pub fn infer_value(json: &Json) -> Result<Value, JsonError> {
    infer_at(json, 1)
}

/// [`infer_value`] of a value at `depth` (1 for the root).
fn infer_at(json: &Json, depth: usize) -> Result<Value, JsonError> {
    if depth > MAX_DEPTH {
        return Err(too_deep(""));
    }
    Ok(match json {
        Json::Null => Value::Option(None),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::S64(i),
            (None, Some(u), _) => Value::U64(u),
            (_, _, Some(x)) => Value::F64(x),
            _ => {
                return Err(JsonError {
                    path: String::new(),
                    message: format!("unreadable number {n}"),
                });
            }
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            let values = items
                .iter()
                .map(|item| infer_at(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            let same = values
                .windows(2)
                .all(|w| std::mem::discriminant(&w[0]) == std::mem::discriminant(&w[1]));
            if same {
                Value::List(values)
            } else {
                Value::Tuple(values)
            }
        }
        Json::Object(map) => Value::Record(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), infer_at(v, depth + 1)?)))
                .collect::<Result<_, JsonError>>()?,
        ),
    })
}

fn tagged(tag: &str, payload: Option<&Value>) -> Json {
    let mut map = Map::new();
    map.insert(tag.to_owned(), payload.map_or(Json::Null, value_to_json));
    Json::Object(map)
}

fn float_to_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("nan".into()),
        None if x > 0.0 => Json::String("inf".into()),
        None => Json::String("-inf".into()),
    }
}

/// Shortens a JSON text for an error message.
fn snippet(json: &Json) -> String {
    const MAX: usize = 60;
    let text = json.to_string();
    if text.len() <= MAX {
        return text;
    }
    let cut = (0..=MAX)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}...", &text[..cut])
}

struct Parser<'a> {
    path: &'a str,
    /// The depth of the value this parser reads: 1 for the root.
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, message: String) -> JsonError {
        JsonError {
            path: self.path.to_owned(),
            message,
        }
    }

    fn expected(&self, ty: &Type, json: &Json) -> JsonError {
        self.error(format!("expected {ty}, found {}", snippet(json)))
    }

    /// Runs `f` with a parser for a part of this value, one level deeper,
    /// at this path plus `suffix`.
    fn at<T>(&self, suffix: &str, f: impl FnOnce(&Parser<'_>) -> T) -> T {
        let path = format!("{}{suffix}", self.path);
        f(&Parser {
            path: &path,
            depth: self.depth + 1,
        })
    }

    fn parse(&self, json: &Json, ty: &Type) -> Result<Value, JsonError> {
        // Before looking into the value or its type: the recursion stops here.
        if self.depth > MAX_DEPTH {
            return Err(too_deep(self.path));
        }
        match ty {
            Type::Bool => json
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| self.expected(ty, json)),
            Type::S8 => self.int(json, ty).map(Value::S8),
            Type::U8 => self.int(json, ty).map(Value::U8),
            Type::S16 => self.int(json, ty).map(Value::S16),
            Type::U16 => self.int(json, ty).map(Value::U16),
            Type::S32 => self.int(json, ty).map(Value::S32),
            Type::U32 => self.int(json, ty).map(Value::U32),
            Type::S64 => self.int(json, ty).map(Value::S64),
            Type::U64 => self.int(json, ty).map(Value::U64),
            Type::F32 => self.float(json, ty).map(|x| Value::F32(x as f32)),
            Type::F64 => self.float(json, ty).map(Value::F64),
            Type::Char => {
                let s = json.as_str().ok_or_else(|| self.expected(ty, json))?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(Value::Char(c)),
                    _ => Err(self.error(format!(
                        "expected char (a one-character string), found {}",
                        snippet(json)
                    ))),
                }
            }
            Type::String => json
                .as_str()
                .map(|s| Value::String(s.to_owned()))
                .ok_or_else(|| self.expected(ty, json)),
            Type::List(elem) => {
                let items = json.as_array().ok_or_else(|| self.expected(ty, json))?;
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.at(&format!("[{i}]"), |p| p.parse(item, elem)))
                    .collect::<Result<Vec<_>, _>>()?;
                // A list of numbers becomes a typed array: compact from
                // here to the guest (each item was parsed, and its error
                // named, above).
                Ok(match Array::from_values(elem, &values) {
                    Some(array) => Value::from(array),
                    None => Value::List(values),
                })
            }
            Type::Tuple(types) => {
                let items = json.as_array().ok_or_else(|| self.expected(ty, json))?;
                if items.len() != types.len() {
                    return Err(self.error(format!(
                        "expected {ty} ({} items), found {} items",
                        types.len(),
                        items.len()
                    )));
                }
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (ty, item))| self.at(&format!("[{i}]"), |p| p.parse(item, ty)))
                    .collect::<Result<_, _>>()
                    .map(Value::Tuple)
            }
            Type::Record(fields) => {
                let object = json.as_object().ok_or_else(|| self.expected(ty, json))?;
                if let Some(unknown) = object
                    .keys()
                    .find(|k| !fields.iter().any(|f| f.name == **k))
                {
                    return Err(self.error(format!("unknown field {unknown:?} for {ty}")));
                }
                fields
                    .iter()
                    .map(|field| {
                        let value = match (object.get(&field.name), &field.ty) {
                            (Some(json), fty) => {
                                self.at(&format!(".{}", field.name), |p| p.parse(json, fty))?
                            }
                            (None, Type::Option(_)) => Value::Option(None),
                            (None, _) => {
                                return Err(
                                    self.error(format!("missing field {:?} of {ty}", field.name))
                                );
                            }
                        };
                        Ok((field.name.clone(), value))
                    })
                    .collect::<Result<_, _>>()
                    .map(Value::Record)
            }
            Type::Variant(cases) => {
                let (name, payload) = self.tag(json, ty)?;
                let case = cases
                    .iter()
                    .find(|c| c.name == name)
                    .ok_or_else(|| self.error(format!("unknown case {name:?} for {ty}")))?;
                let payload = self.payload(&name, case.ty.as_ref(), payload)?;
                Ok(Value::Variant(name, payload))
            }
            Type::Enum(names) => match json.as_str() {
                Some(name) if names.iter().any(|n| n == name) => Ok(Value::Enum(name.to_owned())),
                _ => Err(self.expected(ty, json)),
            },
            Type::Flags(names) => {
                let items = json.as_array().ok_or_else(|| self.expected(ty, json))?;
                let mut set: Vec<String> = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str() {
                        Some(name) if names.iter().any(|n| n == name) => {
                            if !set.iter().any(|s| s == name) {
                                set.push(name.to_owned());
                            }
                        }
                        _ => {
                            return Err(self.error(format!(
                                "expected a flag of {ty}, found {}",
                                snippet(item)
                            )));
                        }
                    }
                }
                Ok(Value::Flags(set))
            }
            Type::Option(inner) => match json {
                Json::Null => Ok(Value::Option(None)),
                // At the same path (an option adds none), one level deeper.
                json => {
                    let inner = Parser {
                        path: self.path,
                        depth: self.depth + 1,
                    }
                    .parse(json, inner)?;
                    Ok(Value::Option(Some(Box::new(inner))))
                }
            },
            Type::Result { ok, err } => {
                let (side, payload) = self.tag(json, ty)?;
                match side.as_str() {
                    "ok" => Ok(Value::Result(Ok(self.payload(
                        "ok",
                        ok.as_deref(),
                        payload,
                    )?))),
                    "err" => Ok(Value::Result(Err(self.payload(
                        "err",
                        err.as_deref(),
                        payload,
                    )?))),
                    _ => Err(self.error(format!(
                        "expected {ty} as {{\"ok\": ...}} or {{\"err\": ...}}, found {}",
                        snippet(json)
                    ))),
                }
            }
        }
    }

    /// Reads `"case"` or `{"case": payload}`.
    fn tag<'j>(&self, json: &'j Json, ty: &Type) -> Result<(String, Option<&'j Json>), JsonError> {
        match json {
            Json::String(name) => Ok((name.clone(), None)),
            Json::Object(map) if map.len() == 1 => {
                let (name, payload) = map.iter().next().ok_or_else(|| self.expected(ty, json))?;
                Ok((name.clone(), Some(payload)))
            }
            _ => Err(self.expected(ty, json)),
        }
    }

    fn payload(
        &self,
        case: &str,
        ty: Option<&Type>,
        json: Option<&Json>,
    ) -> Result<Option<Box<Value>>, JsonError> {
        match (ty, json) {
            (None, None | Some(Json::Null)) => Ok(None),
            (None, Some(json)) => Err(self.error(format!(
                "case {case:?} has no payload, found {}",
                snippet(json)
            ))),
            (Some(ty), None) => {
                Err(self.error(format!("case {case:?} needs a payload of type {ty}")))
            }
            (Some(ty), Some(json)) => self
                .at(&format!(".{case}"), |p| p.parse(json, ty))
                .map(|v| Some(Box::new(v))),
        }
    }

    fn int<T: TryFrom<i128>>(&self, json: &Json, ty: &Type) -> Result<T, JsonError> {
        let wide: Option<i128> = match json {
            Json::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                // 3.0 is an integer; 3.5 is not.
                .or_else(|| {
                    n.as_f64()
                        .filter(|x| x.fract() == 0.0 && x.abs() < 1e38)
                        .map(|x| x as i128)
                }),
            Json::String(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        match wide {
            Some(n) => T::try_from(n).map_err(|_| {
                self.error(format!("{n} is out of range for {ty} ({})", int_range(ty)))
            }),
            None => Err(self.expected(ty, json)),
        }
    }

    fn float(&self, json: &Json, ty: &Type) -> Result<f64, JsonError> {
        match json {
            Json::Number(n) => n.as_f64().ok_or_else(|| self.expected(ty, json)),
            Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "nan" => Ok(f64::NAN),
                "inf" | "+inf" | "infinity" => Ok(f64::INFINITY),
                "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
                other => other.parse().map_err(|_| self.expected(ty, json)),
            },
            _ => Err(self.expected(ty, json)),
        }
    }
}

fn int_range(ty: &Type) -> &'static str {
    match ty {
        Type::S8 => "-128 to 127",
        Type::U8 => "0 to 255",
        Type::S16 => "-32768 to 32767",
        Type::U16 => "0 to 65535",
        Type::S32 => "-2147483648 to 2147483647",
        Type::U32 => "0 to 4294967295",
        Type::S64 => "-9223372036854775808 to 9223372036854775807",
        _ => "0 to 18446744073709551615",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{arb_type, arb_value_of};
    use crate::wit::{Case, Field};

    fn parse(json: Json, ty: &Type) -> Result<Value, JsonError> {
        json_to_value(&json, ty, "arg")
    }

    #[test]
    fn integers_are_range_checked_and_accept_strings() {
        assert_eq!(parse(json!(255), &Type::U8), Ok(Value::U8(255)));
        let err = parse(json!(256), &Type::U8).unwrap_err();
        assert_eq!(
            err.to_string(),
            "arg: 256 is out of range for u8 (0 to 255)"
        );
        assert_eq!(
            parse(json!("18446744073709551615"), &Type::U64),
            Ok(Value::U64(u64::MAX))
        );
        assert_eq!(parse(json!(-3.0), &Type::S32), Ok(Value::S32(-3)));
        let err = parse(json!(3.5), &Type::S64).unwrap_err();
        assert_eq!(err.to_string(), "arg: expected s64, found 3.5");
        let err = parse(json!("seven"), &Type::S64).unwrap_err();
        assert_eq!(err.to_string(), "arg: expected s64, found \"seven\"");
    }

    #[test]
    fn floats_accept_non_finite_names_and_print_them_back() {
        assert_eq!(parse(json!(2), &Type::F64), Ok(Value::F64(2.0)));
        let inf = parse(json!("inf"), &Type::F64).unwrap();
        assert_eq!(value_to_json(&inf), json!("inf"));
        let Value::F64(nan) = parse(json!("NaN"), &Type::F64).unwrap() else {
            panic!("not a float")
        };
        assert!(nan.is_nan());
        assert_eq!(value_to_json(&Value::F32(0.1)), json!(0.1));
    }

    #[test]
    fn records_variants_and_results_use_the_design_form() {
        let record = Type::Record(vec![
            Field {
                name: "word".into(),
                ty: Type::String,
            },
            Field {
                name: "count".into(),
                ty: Type::U32,
            },
            Field {
                name: "note".into(),
                ty: Type::Option(Box::new(Type::String)),
            },
        ]);
        let value = parse(json!({"word": "wasp", "count": 3}), &record).unwrap();
        assert_eq!(
            value,
            Value::Record(vec![
                ("word".into(), Value::String("wasp".into())),
                ("count".into(), Value::U32(3)),
                ("note".into(), Value::Option(None)),
            ])
        );
        let err = parse(json!({"word": "wasp"}), &record).unwrap_err();
        assert!(err.message.starts_with("missing field \"count\""), "{err}");
        let err = parse(json!({"word": "a", "count": 1, "extra": 0}), &record).unwrap_err();
        assert!(err.message.starts_with("unknown field \"extra\""), "{err}");

        let variant = Type::Variant(vec![
            Case {
                name: "circle".into(),
                ty: Some(Type::F64),
            },
            Case {
                name: "empty".into(),
                ty: None,
            },
        ]);
        assert_eq!(
            parse(json!({"circle": 1.5}), &variant),
            Ok(Value::Variant(
                "circle".into(),
                Some(Box::new(Value::F64(1.5)))
            ))
        );
        assert_eq!(
            parse(json!("empty"), &variant),
            Ok(Value::Variant("empty".into(), None))
        );
        let err = parse(json!("square"), &variant).unwrap_err();
        assert!(err.message.starts_with("unknown case \"square\""), "{err}");

        let result = Type::Result {
            ok: Some(Box::new(Type::U8)),
            err: None,
        };
        assert_eq!(
            parse(json!({"ok": 7}), &result),
            Ok(Value::Result(Ok(Some(Box::new(Value::U8(7))))))
        );
        assert_eq!(parse(json!("err"), &result), Ok(Value::Result(Err(None))));
        assert_eq!(
            value_to_json(&Value::Result(Err(None))),
            json!({"err": null})
        );
    }

    #[test]
    fn errors_name_the_nested_path() {
        let ty = Type::List(Box::new(Type::Tuple(vec![Type::String, Type::Char])));
        let err = parse(json!([["a", "b"], ["c", "dd"]]), &ty).unwrap_err();
        assert_eq!(err.path, "arg[1][1]");
        assert!(err.message.contains("one-character string"), "{err}");
    }

    proptest! {
        /// JSON -> Value -> JSON -> Value is the identity for every type.
        #[test]
        fn json_round_trips_every_type((ty, value) in arb_type().prop_flat_map(|ty| {
            let values = arb_value_of(&ty);
            (Just(ty), values)
        })) {
            prop_assert!(value.check(&ty, "v").is_ok());
            let json = value_to_json(&value);
            let back = json_to_value(&json, &ty, "v").map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(crate::testing::same_value(&back, &value), "{back:?} != {value:?}");
        }
    }
}
