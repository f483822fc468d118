//! A task component as the client holds it: its bytes, its content hash and
//! its exported functions with their signatures.
//!
//! The client checks a call's arguments against the function's WIT signature
//! before it dispatches anything, and it does so without wasmtime: nothing is
//! compiled here. The signatures come from the component's type information,
//! decoded by `wit-parser`. Functions are named and looked up by the same
//! rules as the engine's reflection (`wasp_engine::reflect`), and a test pins
//! the two readers to each other for every task component.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasp_proto::component::{HeaderError, check_header};
use wasp_proto::naming::{self, Exported, FindError};
use wasp_proto::{Case, Field, FuncSig, ModuleHash, Param, Type};
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Function, Handle, Resolve, TypeDefKind, WorldItem};

/// A task component as the client holds it: bytes, content hash, exported
/// functions with signatures.
#[derive(Clone)]
pub struct Module {
    /// The sha256 of its bytes.
    pub hash: ModuleHash,
    bytes: Arc<[u8]>,
    /// The functions wasp can call, in the component's export order, as the
    /// engine lists them: WIT declaration order within an interface (an
    /// encoder may put world-level functions before the interfaces).
    pub funcs: Vec<ModuleFunc>,
    /// The exported functions wasp cannot call, and why (e.g. they take a
    /// resource).
    pub unsupported: Vec<Unsupported>,
}

/// An exported function wasp can call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFunc {
    /// The fully qualified name: `iface#func`, or `func` at world level.
    pub qualified: String,
    /// The signature, named by [`ModuleFunc::qualified`]'s function part.
    pub sig: FuncSig,
}

impl Exported for ModuleFunc {
    fn qualified(&self) -> &str {
        &self.qualified
    }

    fn sig(&self) -> &FuncSig {
        &self.sig
    }
}

/// An exported function wasp cannot call, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The fully qualified name.
    pub qualified: String,
    /// Why it cannot be called, e.g. `parameter r: resources cannot cross the
    /// wire`.
    pub reason: String,
}

/// A module could not be read, or has no function by a given name.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The bytes are not a component (not WebAssembly, or a core module),
    /// in the engine's words.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The component is malformed (truncated, invalid), or is a WIT package
    /// with no implementation.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// No export, or more than one, answers to the name.
    #[error(transparent)]
    Find(#[from] FindError),
    /// The file could not be read.
    #[error("could not read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
}

impl Module {
    /// Reads a component from its bytes: checks the header, then decodes the
    /// WIT of its exports.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Module, ModuleError> {
        check_header(&bytes)?;
        let (resolve, world) = match wit_parser::decoding::decode(&bytes) {
            Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
            Ok(DecodedWasm::WitPackage(..)) => {
                return Err(ModuleError::Invalid(
                    "this is a WIT package (types only), not a component that implements it".into(),
                ));
            }
            // The root cause, as the engine reports it: the outer contexts
            // only say which section failed to decode.
            Err(err) => return Err(ModuleError::Invalid(err.root_cause().to_string())),
        };
        let mut funcs = Vec::new();
        let mut unsupported = Vec::new();
        let mut add = |qualified: String, func: &Function| match signature(&resolve, func) {
            Ok(sig) => funcs.push(ModuleFunc { qualified, sig }),
            Err(reason) => unsupported.push(Unsupported { qualified, reason }),
        };
        for (key, item) in &resolve.worlds[world].exports {
            match item {
                WorldItem::Function(func) => add(func.name.clone(), func),
                WorldItem::Interface { id, .. } => {
                    let instance = resolve.name_world_key(key);
                    for func in resolve.interfaces[*id].functions.values() {
                        add(format!("{instance}#{}", func.name), func);
                    }
                }
                WorldItem::Type { .. } => {}
            }
        }
        Ok(Module {
            hash: ModuleHash::of(&bytes),
            bytes: bytes.into(),
            funcs,
            unsupported,
        })
    }

    /// Reads a component from a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Module, ModuleError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ModuleError::Io {
            path: path.to_owned(),
            source,
        })?;
        Module::from_bytes(bytes)
    }

    /// The component's bytes, shared.
    pub fn bytes(&self) -> &Arc<[u8]> {
        &self.bytes
    }

    /// Finds a function by its qualified name, or by its bare name when
    /// only one interface exports a function of that name.
    pub fn find(&self, name: &str) -> Result<&ModuleFunc, ModuleError> {
        Ok(naming::find(&self.funcs, name)?)
    }

    /// The shortest name that finds `func`: its bare name when unique.
    pub fn call_name(&self, func: &ModuleFunc) -> String {
        naming::call_name(&self.funcs, func)
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("hash", &self.hash)
            .field("bytes", &self.bytes.len())
            .field("funcs", &self.funcs)
            .field("unsupported", &self.unsupported)
            .finish()
    }
}

/// A function's signature, or why wasp cannot call it (in the engine's
/// words, so that both readers report the same reason).
fn signature(resolve: &Resolve, func: &Function) -> Result<FuncSig, String> {
    let params = func
        .params
        .iter()
        .map(|param| {
            Ok(Param {
                name: param.name.clone(),
                ty: wit_type(resolve, &param.ty)
                    .map_err(|e| format!("parameter {}: {e}", param.name))?,
            })
        })
        .collect::<Result<_, String>>()?;
    let result = func
        .result
        .as_ref()
        .map(|ty| wit_type(resolve, ty).map_err(|e| format!("result: {e}")))
        .transpose()?;
    Ok(FuncSig {
        name: func.name.clone(),
        params,
        result,
    })
}

/// Converts a `wit-parser` type to wasp's [`Type`], following aliases.
fn wit_type(resolve: &Resolve, ty: &wit_parser::Type) -> Result<Type, String> {
    use wit_parser::Type as T;
    let id = match ty {
        T::Bool => return Ok(Type::Bool),
        T::S8 => return Ok(Type::S8),
        T::U8 => return Ok(Type::U8),
        T::S16 => return Ok(Type::S16),
        T::U16 => return Ok(Type::U16),
        T::S32 => return Ok(Type::S32),
        T::U32 => return Ok(Type::U32),
        T::S64 => return Ok(Type::S64),
        T::U64 => return Ok(Type::U64),
        T::F32 => return Ok(Type::F32),
        T::F64 => return Ok(Type::F64),
        T::Char => return Ok(Type::Char),
        T::String => return Ok(Type::String),
        T::ErrorContext => return Err(ASYNC.into()),
        T::Id(id) => *id,
    };
    let boxed = |ty: &wit_parser::Type| wit_type(resolve, ty).map(Box::new);
    Ok(match &resolve.types[id].kind {
        TypeDefKind::Type(alias) => wit_type(resolve, alias)?,
        TypeDefKind::List(elem) => Type::List(boxed(elem)?),
        TypeDefKind::Option(inner) => Type::Option(boxed(inner)?),
        TypeDefKind::Record(record) => Type::Record(
            record
                .fields
                .iter()
                .map(|field| {
                    Ok(Field {
                        name: field.name.clone(),
                        ty: wit_type(resolve, &field.ty)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        TypeDefKind::Tuple(tuple) => Type::Tuple(
            tuple
                .types
                .iter()
                .map(|ty| wit_type(resolve, ty))
                .collect::<Result<_, _>>()?,
        ),
        TypeDefKind::Variant(variant) => Type::Variant(
            variant
                .cases
                .iter()
                .map(|case| {
                    Ok(Case {
                        name: case.name.clone(),
                        ty: case
                            .ty
                            .as_ref()
                            .map(|ty| wit_type(resolve, ty))
                            .transpose()?,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
        TypeDefKind::Enum(e) => Type::Enum(e.cases.iter().map(|c| c.name.clone()).collect()),
        TypeDefKind::Flags(flags) => {
            Type::Flags(flags.flags.iter().map(|f| f.name.clone()).collect())
        }
        TypeDefKind::Result(result) => Type::Result {
            ok: result.ok.as_ref().map(boxed).transpose()?,
            err: result.err.as_ref().map(boxed).transpose()?,
        },
        TypeDefKind::Handle(Handle::Own(_) | Handle::Borrow(_)) | TypeDefKind::Resource => {
            return Err("resources cannot cross the wire".into());
        }
        TypeDefKind::Future(_) | TypeDefKind::Stream(_) => return Err(ASYNC.into()),
        TypeDefKind::Map(..) | TypeDefKind::FixedLengthList(..) => {
            return Err("map and fixed-length-list types are not supported yet".into());
        }
        // Only unresolved packages hold these; a decoded component never does.
        TypeDefKind::Unknown => return Err("a type of unknown structure".into()),
    })
}

const ASYNC: &str = "async types (future, stream, error-context) are not supported";

#[cfg(test)]
mod tests {
    use super::*;

    use wasp_engine::{Runtime, RuntimeConfig};
    use wit_component::{ComponentEncoder, StringEncoding};
    use wit_parser::ManglingAndAbi;

    fn read(path: &str) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    /// Builds a component exporting `wit`'s world, with bodies that trap: it
    /// loads and reflects like a real one.
    fn component(wit: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("test.wit", wit).expect("test WIT parses");
        let world = resolve.select_world(&[pkg], None).expect("one world");
        let mut module = wit_component::dummy_module(&resolve, world, ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .expect("metadata embeds");
        ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .expect("component encodes")
    }

    /// Every type kind wasp carries, aliases, a resource, world-level
    /// exports, an inline interface and a bare name two interfaces share.
    const KINDS: &str = r#"
        package test:kinds@1.2.3;

        interface shapes {
          record point { x: f64, y-coord: f64 }
          variant shape { circle(f64), rect(tuple<point, point>), empty }
          enum color { red, dark-green }
          flags perms { read, write-all }
          type points = list<point>;
          type also-points = points;
          resource counter {
            constructor(start: u32);
            get: func() -> u32;
            make: static func() -> u32;
          }

          area: func(s: shape) -> f64;
          paint: func(c: color, p: perms, pts: also-points) -> result<option<u8>, string>;
          nothing: func() -> result;
          err-only: func() -> result<_, char>;
          ok-only: func(x: list<list<s8>>) -> result<u16>;
          read-counter: func(c: borrow<counter>) -> u32;
        }

        interface other {
          use shapes.{point};
          area: func(a: s16, b: s32, c: u64, d: f32, e: bool, f: point) -> s64;
        }

        world kinds {
          export shapes;
          export other;
          export ping: func(n: u32) -> u32;
          export inline: interface {
            hello: func() -> string;
          }
        }
    "#;

    fn engine() -> Runtime {
        let config = RuntimeConfig {
            max_instances: 4,
            ..Default::default()
        };
        Runtime::new(config).expect("a runtime")
    }

    /// The client's reading must be the engine's, or the client would accept
    /// arguments the engine refuses (or the reverse).
    fn assert_reads_like_engine(engine: &Runtime, name: &str, bytes: Vec<u8>) -> Module {
        let loaded = engine
            .load_blocking(&bytes)
            .unwrap_or_else(|err| panic!("{name}: engine: {err}"));
        let module = Module::from_bytes(bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(module.hash, loaded.hash, "{name}");
        let engine_funcs: Vec<ModuleFunc> = (loaded.exports.funcs.iter())
            .map(|e| ModuleFunc {
                qualified: e.qualified.clone(),
                sig: e.sig.clone(),
            })
            .collect();
        assert_eq!(module.funcs, engine_funcs, "{name}");
        let engine_unsupported: Vec<Unsupported> = (loaded.exports.unsupported.iter())
            .map(|u| Unsupported {
                qualified: u.qualified.clone(),
                reason: u.reason.clone(),
            })
            .collect();
        assert_eq!(module.unsupported, engine_unsupported, "{name}");
        module
    }

    #[test]
    fn every_task_component_reads_as_the_engine_reflects_it() {
        let engine = engine();
        for (name, path) in wasp_task_artifacts::all() {
            let module = assert_reads_like_engine(&engine, name, read(path));
            assert!(!module.funcs.is_empty(), "{name} exports no function");
        }
    }

    #[test]
    fn every_type_kind_reads_as_the_engine_reflects_it() {
        let module = assert_reads_like_engine(&engine(), "kinds", component(KINDS));
        // Export order is the binary's: `wit-component` encodes world-level
        // functions before interfaces, whatever the WIT's order.
        let listed: Vec<String> = module
            .funcs
            .iter()
            .map(|f| format!("{} = {}", f.qualified, f.sig))
            .collect();
        let point = "record { x: f64, y-coord: f64 }";
        assert_eq!(
            listed,
            [
                "ping = ping: func(n: u32) -> u32".to_owned(),
                "test:kinds/shapes@1.2.3#[static]counter.make = \
                 [static]counter.make: func() -> u32"
                    .to_owned(),
                format!(
                    "test:kinds/shapes@1.2.3#area = area: func(s: variant {{ circle(f64), \
                     rect(tuple<{point}, {point}>), empty }}) -> f64"
                ),
                format!(
                    "test:kinds/shapes@1.2.3#paint = paint: func(c: enum {{ red, dark-green }}, \
                     p: flags {{ read, write-all }}, pts: list<{point}>) \
                     -> result<option<u8>, string>"
                ),
                "test:kinds/shapes@1.2.3#nothing = nothing: func() -> result".to_owned(),
                "test:kinds/shapes@1.2.3#err-only = err-only: func() -> result<_, char>".to_owned(),
                "test:kinds/shapes@1.2.3#ok-only = ok-only: func(x: list<list<s8>>) \
                 -> result<u16>"
                    .to_owned(),
                format!(
                    "test:kinds/other@1.2.3#area = area: func(a: s16, b: s32, c: u64, d: f32, \
                     e: bool, f: {point}) -> s64"
                ),
                "inline#hello = hello: func() -> string".to_owned(),
            ]
        );
        let unsupported: Vec<(&str, &str)> = (module.unsupported.iter())
            .map(|u| (u.qualified.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(
            unsupported,
            [
                (
                    "test:kinds/shapes@1.2.3#[constructor]counter",
                    "result: resources cannot cross the wire"
                ),
                (
                    "test:kinds/shapes@1.2.3#[method]counter.get",
                    "parameter self: resources cannot cross the wire"
                ),
                (
                    "test:kinds/shapes@1.2.3#read-counter",
                    "parameter c: resources cannot cross the wire"
                ),
            ]
        );
    }

    #[test]
    fn finds_functions_by_qualified_or_unique_bare_name() {
        let module = Module::from_bytes(component(KINDS)).expect("kinds reads");
        let paint = module.find("paint").expect("bare name");
        assert_eq!(paint.qualified, "test:kinds/shapes@1.2.3#paint");
        assert_eq!(
            module.find("test:kinds/shapes@1.2.3#paint").ok(),
            Some(paint)
        );
        assert_eq!(
            module.find("ping").ok().map(|f| f.qualified.as_str()),
            Some("ping")
        );
        assert_eq!(module.call_name(paint), "paint");

        let area = module
            .find("test:kinds/other@1.2.3#area")
            .expect("qualified");
        assert_eq!(area.sig.params.len(), 6);
        assert_eq!(module.call_name(area), "test:kinds/other@1.2.3#area");
        assert_eq!(
            module.find("area").unwrap_err().to_string(),
            "\"area\" is ambiguous: use one of test:kinds/shapes@1.2.3#area, \
             test:kinds/other@1.2.3#area"
        );
        assert_eq!(
            module.find("paynt").unwrap_err().to_string(),
            "no function named \"paynt\" in this module; it exports: ping, \
             [static]counter.make, test:kinds/shapes@1.2.3#area, paint, nothing, err-only, \
             ok-only, test:kinds/other@1.2.3#area, hello"
        );
        // An unsupported function is not callable by either name.
        assert!(matches!(
            module.find("read-counter"),
            Err(ModuleError::Find(FindError::Unknown { .. }))
        ));
    }

    #[test]
    fn prints_task_signatures_as_wit() {
        let words = Module::from_file(wasp_task_artifacts::WORDCOUNT).expect("wordcount reads");
        let count = words.find("count-words").expect("count-words");
        assert_eq!(count.qualified, "wasp:wordcount/wordcount#count-words");
        assert_eq!(
            count.sig.to_string(),
            "count-words: func(text: string) -> list<record { word: string, count: u32 }>"
        );

        let mc = Module::from_file(wasp_task_artifacts::MC_OPTIONS).expect("mc-options reads");
        let price = mc.find("price-options").expect("price-options");
        assert_eq!(
            price.sig.to_string(),
            "price-options: func(spot: f64, strikes: list<f64>, volatility: f64, rate: f64, \
             days: u32, paths: u32, seed: u64) -> list<record { strike: f64, european-call: f64, \
             european-put: f64, asian-call: f64, asian-put: f64 }>"
        );

        let sleep = Module::from_file(wasp_task_artifacts::SLEEP).expect("sleep reads");
        let names: Vec<&str> = sleep.funcs.iter().map(|f| f.qualified.as_str()).collect();
        assert_eq!(
            names,
            ["wasp:sleep/sleep#sleep", "wasp:sleep/sleep#sleep-here"]
        );
        assert_eq!(sleep.funcs[0].sig.to_string(), "sleep: func(t: f64)");
        assert_eq!(sleep.call_name(&sleep.funcs[1]), "sleep-here");

        let bytes = read(wasp_task_artifacts::AREA);
        let area = Module::from_bytes(bytes.clone()).expect("area reads");
        assert_eq!(**area.bytes(), bytes[..]);
        assert_eq!(area.hash, ModuleHash::of(&bytes));
        assert!(area.unsupported.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_component() {
        let err = |bytes: &[u8]| {
            Module::from_bytes(bytes.to_vec())
                .expect_err("not a component")
                .to_string()
        };
        assert!(err(b"#!/bin/sh\necho hi").starts_with("not a WebAssembly component"));
        assert!(err(b"\0as").starts_with("not a WebAssembly component"));
        assert!(err(b"\0asm\x01\0\0\0").starts_with("this is a core WebAssembly module"));
        assert_eq!(
            err(b"\0asm\x0e\0\x01\0"),
            "unsupported WebAssembly binary version 0xe (layer 1): \
             expected a component (version 0xd, layer 1)"
        );

        let area = read(wasp_task_artifacts::AREA);
        let truncated = err(&area[..area.len() / 2]);
        assert!(truncated.starts_with("invalid component: "), "{truncated}");
        assert!(truncated.contains("end-of-file"), "{truncated}");
        let mut flipped = area.clone();
        flipped[9] ^= 0xff;
        assert!(err(&flipped).starts_with("invalid component: "));

        let missing = Module::from_file("/nonexistent/task.wasm").expect_err("no such file");
        assert!(
            missing
                .to_string()
                .starts_with("could not read /nonexistent/task.wasm: "),
            "{missing}"
        );
    }
}
