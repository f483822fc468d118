//! How a caller names an exported function, shared by the engine (which
//! reads exports with wasmtime) and the client (which reads them without
//! compiling), so both accept the same names and refuse with the same
//! words.
//!
//! A function is found by its qualified name (`iface#func`, or `func` at
//! world level), or by its bare name when only one export has it.

use crate::wit::FuncSig;

/// An exported function as a list of exports holds it.
pub trait Exported {
    /// The qualified name: `iface#func`, or `func` at world level.
    fn qualified(&self) -> &str;
    /// The signature, named by the function's bare name.
    fn sig(&self) -> &FuncSig;
}

/// No export, or more than one, answers to a name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// No export has this name.
    #[error("no function named {name:?} in this module; it exports: {}", .available.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that would work.
        available: Vec<String>,
    },
    /// A bare name matches functions in several interfaces.
    #[error("{name:?} is ambiguous: use one of {}", .candidates.join(", "))]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// The qualified names it matches.
        candidates: Vec<String>,
    },
}

/// Finds the export `name` calls.
pub fn find<'a, T: Exported>(exports: &'a [T], name: &str) -> Result<&'a T, FindError> {
    if let Some(export) = exports.iter().find(|e| e.qualified() == name) {
        return Ok(export);
    }
    let matches: Vec<&T> = exports.iter().filter(|e| e.sig().name == name).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(FindError::Unknown {
            name: name.to_owned(),
            available: exports.iter().map(|e| call_name(exports, e)).collect(),
        }),
        many => Err(FindError::Ambiguous {
            name: name.to_owned(),
            candidates: many.iter().map(|e| e.qualified().to_owned()).collect(),
        }),
    }
}

/// The shortest name that finds `export`: its bare name when unique.
pub fn call_name<T: Exported>(exports: &[T], export: &T) -> String {
    let bare = &export.sig().name;
    if exports.iter().filter(|e| e.sig().name == *bare).count() == 1 {
        bare.clone()
    } else {
        export.qualified().to_owned()
    }
}
