//! The crate Rust wasp tasks depend on.
//!
//! A wasp task is a WASI 0.2 component that exports one WIT interface and may
//! import `wasp:task/imports` (the package in the repository's `wit/` folder):
//! who is running this call ([`engine_id`], [`tenant`], [`task_id`]) and a
//! per-call log ([`log`]). This crate holds the bindings for those imports,
//! generated once here, plus helpers over them, and re-exports
//! [`wit_bindgen`] so that a task crate needs no direct dependency on it: the
//! task's own `generate!` call points `runtime_path` at this crate's copy and
//! maps the `wasp:task` interfaces onto [`bindings`] with `with`.
//!
//! # Layout
//!
//! - [`bindings`]: the wit-bindgen output for `wasp:task/imports`, which task
//!   crates name in their `with` map.
//! - [`engine_id`], [`tenant`], [`task_id`]: the `identity` interface.
//! - [`log`]: the `log` interface, one function per level.
//!
//! # Writing a task
//!
//! A task is a `cdylib` crate in `tasks/rust/<name>/` with its own `wit/`
//! folder. That folder defines a package, the interface the task exports
//! (always an interface, never bare world functions: componentize-py trips
//! over those), and a world that includes `wasp:task/imports`. The
//! `generate!` call reads the repository's `wit/` and the task's own, binds
//! the exports with this crate's copy of wit-bindgen (`runtime_path`), and
//! reuses this crate's bindings for the imports (`with`). Here is the `area`
//! task, written exactly as every task in `tasks/rust/` is.
//!
//! `wit/world.wit`:
//!
//! ```wit
//! package wasp:area;
//!
//! /// The area of a rectangle.
//! interface area {
//!   /// `w * h`; traps when it does not fit in an s64.
//!   area: func(w: s64, h: s64) -> s64;
//! }
//!
//! /// The `area` task.
//! world task {
//!   include wasp:task/imports@0.1.0;
//!   export area;
//! }
//! ```
//!
//! `Cargo.toml` (the tasks workspace sets the version, edition, lints and the
//! release profile; `wasp-guest` is `{ path = "../guest-sdk" }` there):
//!
//! ```toml
//! [package]
//! name = "area"
//! description = "The area of a rectangle."
//! version.workspace = true
//! edition.workspace = true
//! rust-version.workspace = true
//! license.workspace = true
//! publish.workspace = true
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wasp-guest.workspace = true
//!
//! [lints]
//! workspace = true
//! ```
//!
//! `src/lib.rs`:
//!
//! ```ignore
//! //! The `area` task: the area of a rectangle.
//!
//! wasp_guest::wit_bindgen::generate!({
//!     // The repository's wit/ first (it defines wasp:task), then our own.
//!     path: ["../../../wit", "wit"],
//!     world: "wasp:area/task",
//!     runtime_path: "wasp_guest::wit_bindgen::rt",
//!     with: {
//!         "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
//!         "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
//!     },
//! });
//!
//! use exports::wasp::area::area::Guest;
//!
//! struct Area;
//!
//! impl Guest for Area {
//!     fn area(w: i64, h: i64) -> i64 {
//!         wasp_guest::log::debug(&format!("area of {w} x {h}"));
//!         w.checked_mul(h)
//!             .unwrap_or_else(|| panic!("area overflow: {w} * {h} does not fit in s64"))
//!     }
//! }
//!
//! export!(Area);
//! ```
//!
//! `cargo build --release --target wasm32-wasip2` in `tasks/` makes
//! `target/wasm32-wasip2/release/area.wasm` (with `--target-dir`, under that
//! directory instead); the export is named `wasp:area/area#area`, and a
//! crate named `mc-options` gives `mc_options.wasm`.
//!
//! A panic traps the call after printing its message to stderr, so a task
//! reports bad input by panicking with a clear message.

#![warn(missing_docs)]

pub use wit_bindgen;

/// The wit-bindgen output for the world `wasp:task/imports`.
///
/// Task crates do not call these directly (the helpers at the crate root
/// do); they name `bindings::wasp::task::identity` and
/// `bindings::wasp::task::log` in the `with` map of their own `generate!`
/// so the imports are bound once, here.
#[expect(
    missing_docs,
    reason = "generated code: the package and enum cases carry no WIT docs"
)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "wasp:task/imports",
    });
}

use bindings::wasp::task::identity;

/// The id of the engine running this call: 0, 1, 2, ... as in
/// ipyparallel's `rc.ids`, and 0 under `wasp run`. wasp's answer to
/// `os.getpid()`.
pub fn engine_id() -> u32 {
    identity::engine_id()
}

/// The tenant that submitted this call.
pub fn tenant() -> String {
    identity::tenant()
}

/// The id of this call (the task's message id).
pub fn task_id() -> String {
    identity::task_id()
}

/// Log lines kept, bounded, in the call's metadata beside its captured
/// stdout and stderr.
pub mod log {
    pub use crate::bindings::wasp::task::log::Level;

    /// Records `message` at `level`.
    pub fn log(level: Level, message: &str) {
        crate::bindings::wasp::task::log::log(level, message);
    }

    /// Records `message` at trace level.
    pub fn trace(message: &str) {
        log(Level::Trace, message);
    }

    /// Records `message` at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }

    /// Records `message` at info level.
    pub fn info(message: &str) {
        log(Level::Info, message);
    }

    /// Records `message` at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }

    /// Records `message` at error level.
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}
