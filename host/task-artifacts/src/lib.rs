//! Paths to the Rust task components, built on demand.
//!
//! The tasks in `tasks/rust/` are their own cargo workspace for
//! `wasm32-wasip2`, so the host workspace cannot build them as ordinary
//! dependencies. This crate's `build.rs` runs a nested
//! `cargo build --release --target wasm32-wasip2` on `tasks/Cargo.toml`
//! into `target/tasks` (as wasmtime's `test-programs-artifacts` does),
//! then names each component here. Tests depend on this crate and load the
//! files:
//!
//! ```text
//! let bytes = std::fs::read(wasp_task_artifacts::AREA)?;
//! ```
//!
//! The build reruns when `tasks/Cargo.toml`, `tasks/Cargo.lock`,
//! `tasks/rust/`, `guest-sdk/` or `wit/` change. It needs the
//! `wasm32-wasip2` target installed, and it strips the outer build's
//! `RUSTFLAGS`, wrappers, profile and target settings so that host-only
//! flags (coverage, sanitizers) never reach the guests.
//!
//! # Layout
//!
//! One `pub const` per crate in `tasks/rust/`: the crate name upper-cased
//! with `_` for `-` (`AREA`, `MC_OPTIONS`, ...), holding the absolute path of
//! its `.wasm`; and [`all`], every `(crate name, path)` pair.
//!
//! [`polyglot`] names the tasks in other languages, which
//! `scripts/build-polyglot` builds.

#![warn(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// `target/tasks/polyglot`: where `scripts/build-polyglot` writes the
/// tasks in C, Python and JavaScript (`<lang>/<task>.wasm`), beside
/// `compiled/`, a disk cache the tests share.
pub fn polyglot_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tasks/polyglot")
}

/// The component of `task` (`area`, `boom`, ...) in `lang` (`c`, `python`,
/// `js`), built by `scripts/build-polyglot` rather than by this crate:
/// those toolchains take a minute and come from `scripts/setup`.
///
/// # Panics
/// When the file is missing, with the commands that build it.
pub fn polyglot(lang: &str, task: &str) -> std::path::PathBuf {
    let path = polyglot_dir().join(lang).join(format!("{task}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: the C, Python and JavaScript tasks are built by \
         `./scripts/setup && ./scripts/build-polyglot` (scripts/test runs both)",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every artifact exists and is a component, not a core module.
    #[test]
    fn artifacts_are_components() {
        // The eight tasks the host tests rely on, and any added since.
        assert!(all().len() >= 8, "{:?}", all());
        for (name, path) in all() {
            let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{name}: {path}: {err}"));
            assert_eq!(
                bytes.get(..8),
                Some(&b"\0asm\x0d\0\x01\0"[..]),
                "{name}: {path} is not a component"
            );
        }
    }

    #[test]
    fn names_match_constants() {
        assert!(all().contains(&("mc-options", MC_OPTIONS)));
        assert!(all().contains(&("area", AREA)));
    }
}
