//! The runtime's errors: why a module was refused, why a call failed.
//!
//! Messages are lowercase fragments that say what was wrong and what was
//! expected (the signature, the limit and its value), so that they read
//! well after a caller's context.

use wasp_proto::component::HeaderError;
use wasp_proto::naming::FindError;
use wasp_proto::{FuncSig, JsonError, SignatureError};

use crate::limits::Limit;

/// A module could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are over the module size limit.
    #[error("module is {size} bytes, over the {limit}")]
    TooLarge {
        /// The module's size.
        size: usize,
        /// The limit it exceeds.
        limit: Limit,
    },
    /// The bytes are not a component (not WebAssembly, or a core module).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The component is malformed (truncated, invalid) and did not compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component imports something this engine does not provide.
    #[error("the component needs an import this engine does not provide: {0}")]
    MissingImport(String),
    /// Compiling took longer than a limit allowed.
    #[error("the module did not compile within the {limit}")]
    Limit {
        /// The limit it exceeded.
        limit: Limit,
    },
    /// The on-disk compile cache failed in a way that is not a cache miss.
    #[error("compile cache: {0}")]
    Cache(#[from] std::io::Error),
}

/// A call failed. The engine that ran it keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No export, or more than one, answers to the name.
    #[error(transparent)]
    Find(#[from] FindError),
    /// The arguments do not fit the signature (arity or types).
    #[error(transparent)]
    Signature(SignatureError),
    /// An argument given as JSON does not fit its parameter's type.
    #[error("argument {error}; the signature is `{sig}`")]
    ArgumentJson {
        /// The function's signature.
        sig: Box<FuncSig>,
        /// Which argument and what went wrong.
        error: JsonError,
    },
    /// A host-enforced limit was exceeded.
    #[error("task exceeded the {limit}{}", suffix(.detail))]
    Limit {
        /// The limit and its configured value.
        limit: Limit,
        /// What the guest was doing, e.g. its stderr or the size it reached.
        detail: Option<String>,
    },
    /// The guest trapped (a Rust panic, an `unreachable`, a bad memory access).
    #[error("task trapped: {trap}{}", suffix(.detail))]
    Trap {
        /// wasmtime's description of the trap.
        trap: String,
        /// The tail of the guest's stderr (e.g. a panic message), if any.
        detail: Option<String>,
    },
    /// A value crossing the boundary had a type wasp cannot carry (resources,
    /// streams, futures).
    #[error("unsupported value: {0}")]
    Unsupported(String),
    /// Instantiation failed for a reason other than a limit (e.g. the
    /// instance pool is exhausted).
    #[error("could not instantiate the component: {0}")]
    Instantiate(String),
    /// The controller asked for the task to stop (a client aborted it).
    #[error("the task was aborted by a client while it ran")]
    Aborted,
}

fn suffix(detail: &Option<String>) -> String {
    match detail {
        Some(text) => format!(": {text}"),
        None => String::new(),
    }
}
