//! wasp's shared vocabulary, used alike by the client, the controller and the
//! engines: what a task's signature looks like, the values that cross the
//! wire, and how both are written as JSON.
//!
//! This crate does no I/O and knows nothing of wasmtime, tokio or quinn, so
//! every role (and the sans-IO scheduler) can depend on it.
//!
//! # Layout
//! - [`wit`]: [`Type`] and [`FuncSig`], WIT types and function signatures as
//!   plain data, printed in WIT syntax.
//! - [`value`]: [`Value`], a dynamic value of any WIT type, and the check of a
//!   value against a type.
//! - [`array`]: [`Array`], a list of numbers or bytes as one typed vector
//!   (the data plane's form of big values).
//! - `bounded` (private): `Value`'s decoder, which refuses values nested
//!   past [`value::MAX_DEPTH`] and can decode a list's items within a
//!   memory budget each.
//! - [`json`]: the JSON form of values, parsed against a [`Type`].
//! - [`naming`]: how a caller names an exported function.
//! - [`msg`]: the wire protocol's messages.
//! - [`db`]: the task database's requests and answers.
//! - [`codec`]: the wire encoding, length-prefixed bincode frames with
//!   size caps on every frame and every decode.
//! - [`component`]: the header check every component passes first.
//! - [`hash`]: [`ModuleHash`], the sha256 content address of a module.
//! - [`ids`]: [`EngineId`], [`TaskId`], [`Tenant`].
//! - `testing` (feature `testing`): proptest strategies for types and values.

pub mod array;
mod bounded;
pub mod codec;
pub mod component;
pub mod db;
pub mod hash;
pub mod ids;
pub mod json;
pub mod msg;
pub mod naming;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod value;
pub mod wit;

pub use array::Array;
pub use hash::ModuleHash;
pub use ids::{EngineId, TaskId, Tenant};
pub use json::{JsonError, json_to_value, value_to_json};
pub use value::{TypeMismatch, Value};
pub use wit::{Case, Field, FuncSig, Param, SignatureError, Type};
