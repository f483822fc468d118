//! WIT types and function signatures as plain data.
//!
//! The engine reads these from a component by reflection; the client and the
//! CLI use them to check and parse arguments before anything is dispatched.
//! `Display` prints WIT syntax, so an error can show the signature the user
//! must match.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A WIT value type. Named types (records, variants, enums, flags) appear
/// structurally, because a component's type information carries their shape,
/// not their names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Type {
    /// `bool`
    Bool,
    /// `s8`
    S8,
    /// `u8`
    U8,
    /// `s16`
    S16,
    /// `u16`
    U16,
    /// `s32`
    S32,
    /// `u32`
    U32,
    /// `s64`
    S64,
    /// `u64`
    U64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`: a Unicode scalar value.
    Char,
    /// `string`
    String,
    /// `list<T>`
    List(Box<Type>),
    /// `record { name: T, ... }`
    Record(Vec<Field>),
    /// `tuple<T, ...>`
    Tuple(Vec<Type>),
    /// `variant { case(T), case, ... }`
    Variant(Vec<Case>),
    /// `enum { case, ... }`
    Enum(Vec<String>),
    /// `option<T>`
    Option(Box<Type>),
    /// `result<T, E>`, either side possibly absent.
    Result {
        /// The payload type of `ok`, if any.
        ok: Option<Box<Type>>,
        /// The payload type of `err`, if any.
        err: Option<Box<Type>>,
    },
    /// `flags { name, ... }`
    Flags(Vec<String>),
}

/// A named field of a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The field name, in WIT's kebab-case.
    pub name: String,
    /// The field type.
    pub ty: Type,
}

/// A case of a variant, with an optional payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Case {
    /// The case name, in WIT's kebab-case.
    pub name: String,
    /// The payload type, if the case carries one.
    pub ty: Option<Type>,
}

/// A named parameter of a function.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Param {
    /// The parameter name.
    pub name: String,
    /// The parameter type.
    pub ty: Type,
}

/// The signature of an exported function: `name: func(a: T, ...) -> R`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FuncSig {
    /// The name the function is called by (see the engine's export naming).
    pub name: String,
    /// The parameters, in order.
    pub params: Vec<Param>,
    /// The result type, if the function returns one.
    pub result: Option<Type>,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::S8 => f.write_str("s8"),
            Type::U8 => f.write_str("u8"),
            Type::S16 => f.write_str("s16"),
            Type::U16 => f.write_str("u16"),
            Type::S32 => f.write_str("s32"),
            Type::U32 => f.write_str("u32"),
            Type::S64 => f.write_str("s64"),
            Type::U64 => f.write_str("u64"),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::Char => f.write_str("char"),
            Type::String => f.write_str("string"),
            Type::List(elem) => write!(f, "list<{elem}>"),
            Type::Record(fields) => {
                f.write_str("record { ")?;
                for (i, field) in fields.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}: {}", field.name, field.ty)?;
                }
                f.write_str(" }")
            }
            Type::Tuple(types) => {
                f.write_str("tuple<")?;
                write_list(f, types)?;
                f.write_str(">")
            }
            Type::Variant(cases) => {
                f.write_str("variant { ")?;
                for (i, case) in cases.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    match &case.ty {
                        Some(ty) => write!(f, "{sep}{}({ty})", case.name)?,
                        None => write!(f, "{sep}{}", case.name)?,
                    }
                }
                f.write_str(" }")
            }
            Type::Enum(names) => write!(f, "enum {{ {} }}", names.join(", ")),
            Type::Flags(names) => write!(f, "flags {{ {} }}", names.join(", ")),
            Type::Option(inner) => write!(f, "option<{inner}>"),
            Type::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{ok}>"),
                (None, Some(err)) => write!(f, "result<_, {err}>"),
                (Some(ok), Some(err)) => write!(f, "result<{ok}, {err}>"),
            },
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, types: &[Type]) -> fmt::Result {
    for (i, ty) in types.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{ty}")?;
    }
    Ok(())
}

impl fmt::Display for FuncSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: func(", self.name)?;
        for (i, param) in self.params.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{}: {}", param.name, param.ty)?;
        }
        f.write_str(")")?;
        if let Some(result) = &self.result {
            write!(f, " -> {result}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_print_as_wit() {
        let sig = FuncSig {
            name: "price".into(),
            params: vec![
                Param {
                    name: "strikes".into(),
                    ty: Type::List(Box::new(Type::F64)),
                },
                Param {
                    name: "mode".into(),
                    ty: Type::Variant(vec![
                        Case {
                            name: "fixed".into(),
                            ty: Some(Type::U32),
                        },
                        Case {
                            name: "auto".into(),
                            ty: None,
                        },
                    ]),
                },
            ],
            result: Some(Type::Result {
                ok: Some(Box::new(Type::Record(vec![Field {
                    name: "call".into(),
                    ty: Type::F64,
                }]))),
                err: Some(Box::new(Type::String)),
            }),
        };
        assert_eq!(
            sig.to_string(),
            "price: func(strikes: list<f64>, mode: variant { fixed(u32), auto }) \
             -> result<record { call: f64 }, string>"
        );
        let unit = FuncSig {
            name: "sleep".into(),
            params: vec![],
            result: None,
        };
        assert_eq!(unit.to_string(), "sleep: func()");
        let err_only = Type::Result {
            ok: None,
            err: Some(Box::new(Type::Tuple(vec![Type::U8, Type::Char]))),
        };
        assert_eq!(err_only.to_string(), "result<_, tuple<u8, char>>");
    }
}

/// Arguments that do not fit a signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Wrong number of arguments.
    #[error("expected {expected} argument(s), got {given}; the signature is `{sig}`")]
    Arity {
        /// The signature.
        sig: Box<FuncSig>,
        /// Parameters it has.
        expected: usize,
        /// Arguments given.
        given: usize,
    },
    /// An argument of the wrong type.
    #[error("argument {mismatch}; the signature is `{sig}`")]
    Type {
        /// The signature.
        sig: Box<FuncSig>,
        /// Which argument, what was expected and found.
        mismatch: crate::value::TypeMismatch,
    },
}

impl FuncSig {
    /// Checks the number and types of `args` against this signature.
    pub fn check_args(&self, args: &[crate::value::Value]) -> Result<(), SignatureError> {
        if args.len() != self.params.len() {
            return Err(SignatureError::Arity {
                sig: Box::new(self.clone()),
                expected: self.params.len(),
                given: args.len(),
            });
        }
        for (param, arg) in self.params.iter().zip(args) {
            arg.check(&param.ty, &param.name)
                .map_err(|mismatch| SignatureError::Type {
                    sig: Box::new(self.clone()),
                    mismatch,
                })?;
        }
        Ok(())
    }
}
