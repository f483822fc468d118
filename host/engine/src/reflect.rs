//! Reads a component's exported functions and their signatures by
//! reflection, and names them.
//!
//! Functions are found both at world level (`name`) and inside exported
//! interfaces (`wasp:area/area#area`, wasmtime's own notation). A caller may
//! use the bare function name when it is unique in the component.

use wasmtime::Engine;
use wasmtime::component::types::{self, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex};
use wasp_proto::naming::{self, Exported};
use wasp_proto::{Case, Field, FuncSig, Param, Type};

use crate::bulk::BulkResult;
use crate::error::CallError;

/// An exported function, ready to be looked up in an instance.
#[derive(Clone, Debug)]
pub struct Export {
    /// The fully qualified name: `iface#func`, or `func` at world level.
    pub qualified: String,
    /// The signature, named by [`Export::qualified`]'s function part.
    pub sig: FuncSig,
    pub(crate) index: ComponentExportIndex,
    /// Whether its calls take the bulk path, and its result's form there.
    pub(crate) bulk: Option<BulkResult>,
}

impl Exported for Export {
    fn qualified(&self) -> &str {
        &self.qualified
    }

    fn sig(&self) -> &FuncSig {
        &self.sig
    }
}

/// An export wasp cannot call, and why (e.g. it takes a resource).
#[derive(Clone, Debug)]
pub struct Unsupported {
    /// The fully qualified name.
    pub qualified: String,
    /// Why it cannot be called.
    pub reason: String,
}

/// Every exported function of a component, callable or not.
#[derive(Clone, Debug, Default)]
pub struct Exports {
    /// The functions wasp can call, in export order.
    pub funcs: Vec<Export>,
    /// The functions it cannot.
    pub unsupported: Vec<Unsupported>,
}

impl Exports {
    /// Reads the exports of `component`.
    pub fn of(engine: &Engine, component: &Component) -> Self {
        let mut exports = Exports::default();
        for (name, item) in component.component_type().exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(func) => {
                    exports.add(component, None, name, name, &func);
                }
                ComponentItem::ComponentInstance(instance) => {
                    for (func_name, item) in instance.exports(engine) {
                        if let ComponentItem::ComponentFunc(func) = item.ty {
                            let qualified = format!("{name}#{func_name}");
                            exports.add(component, Some(name), func_name, &qualified, &func);
                        }
                    }
                }
                _ => {}
            }
        }
        exports
    }

    fn add(
        &mut self,
        component: &Component,
        instance: Option<&str>,
        name: &str,
        qualified: &str,
        func: &types::ComponentFunc,
    ) {
        let index = match instance {
            Some(instance) => component
                .get_export_index(None, instance)
                .and_then(|inst| component.get_export_index(Some(&inst), name)),
            None => component.get_export_index(None, name),
        };
        let Some(index) = index else {
            return;
        };
        match signature(name, func) {
            Ok(sig) => self.funcs.push(Export {
                qualified: qualified.to_owned(),
                bulk: crate::bulk::shape(&sig),
                sig,
                index,
            }),
            Err(reason) => self.unsupported.push(Unsupported {
                qualified: qualified.to_owned(),
                reason,
            }),
        }
    }

    /// Finds a function by its qualified name, or by its bare name when
    /// only one interface exports a function of that name.
    pub fn find(&self, name: &str) -> Result<&Export, CallError> {
        Ok(naming::find(&self.funcs, name)?)
    }

    /// The shortest name that finds `func`: its bare name when unique.
    pub fn call_name(&self, func: &Export) -> String {
        naming::call_name(&self.funcs, func)
    }
}

fn signature(name: &str, func: &types::ComponentFunc) -> Result<FuncSig, String> {
    let params = func
        .params()
        .map(|(name, ty)| {
            Ok(Param {
                name: name.to_owned(),
                ty: wit_type(&ty).map_err(|e| format!("parameter {name}: {e}"))?,
            })
        })
        .collect::<Result<_, String>>()?;
    let mut results = func.results();
    let result = match results.next() {
        Some(ty) => Some(wit_type(&ty).map_err(|e| format!("result: {e}"))?),
        None => None,
    };
    Ok(FuncSig {
        name: name.to_owned(),
        params,
        result,
    })
}

/// Converts a wasmtime component type to wasp's [`Type`].
pub fn wit_type(ty: &types::Type) -> Result<Type, String> {
    use types::Type as T;
    Ok(match ty {
        T::Bool => Type::Bool,
        T::S8 => Type::S8,
        T::U8 => Type::U8,
        T::S16 => Type::S16,
        T::U16 => Type::U16,
        T::S32 => Type::S32,
        T::U32 => Type::U32,
        T::S64 => Type::S64,
        T::U64 => Type::U64,
        T::Float32 => Type::F32,
        T::Float64 => Type::F64,
        T::Char => Type::Char,
        T::String => Type::String,
        T::List(list) => Type::List(Box::new(wit_type(&list.ty())?)),
        T::Record(record) => Type::Record(
            record
                .fields()
                .map(|field| {
                    Ok(Field {
                        name: field.name.to_owned(),
                        ty: wit_type(&field.ty)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        T::Tuple(tuple) => Type::Tuple(
            tuple
                .types()
                .map(|t| wit_type(&t))
                .collect::<Result<_, _>>()?,
        ),
        T::Variant(variant) => Type::Variant(
            variant
                .cases()
                .map(|case| {
                    Ok(Case {
                        name: case.name.to_owned(),
                        ty: case.ty.as_ref().map(wit_type).transpose()?,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        T::Enum(e) => Type::Enum(e.names().map(str::to_owned).collect()),
        T::Option(option) => Type::Option(Box::new(wit_type(&option.ty())?)),
        T::Result(result) => Type::Result {
            ok: result
                .ok()
                .as_ref()
                .map(wit_type)
                .transpose()?
                .map(Box::new),
            err: result
                .err()
                .as_ref()
                .map(wit_type)
                .transpose()?
                .map(Box::new),
        },
        T::Flags(flags) => Type::Flags(flags.names().map(str::to_owned).collect()),
        T::Own(_) | T::Borrow(_) => return Err("resources cannot cross the wire".into()),
        T::Future(_) | T::Stream(_) | T::ErrorContext => {
            return Err("async types (future, stream, error-context) are not supported".into());
        }
        T::Map(_) | T::FixedLengthList(_) => {
            return Err("map and fixed-length-list types are not supported yet".into());
        }
    })
}
