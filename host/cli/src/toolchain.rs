//! Finding the toolchains `wasp build` runs, and saying exactly what to
//! install when one is missing.
//!
//! Each tool is looked for on `PATH`, then where this repository's
//! `scripts/setup` installs it (`target/py-venv`, `target/node`) under the
//! wasp repository: `--repo`, `$WASP_REPO`, or the checkout this binary was
//! built from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The checkout this binary was built from, where `scripts/setup` installs
/// the Python and JavaScript toolchains and where the guest SDK lives.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The apt packages of the C toolchain.
pub const C_PACKAGES: &str = "clang lld wasi-libc libclang-rt-14-dev-wasm32";

/// The wasp repository: `explicit` (from `--repo` or `$WASP_REPO`), or the
/// checkout this binary was built from when it still exists.
pub fn repo(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(dir) => Some(dir.to_owned()),
        None => Path::new(BUILT_FROM).canonicalize().ok(),
    }
}

/// The first executable `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` on `PATH`, else at `installed` (a path inside the repository).
fn on_path_or(name: &str, installed: Option<PathBuf>) -> Option<PathBuf> {
    on_path(name).or_else(|| installed.filter(|path| is_executable(path)))
}

/// Where we looked, for the error: `on PATH` and the repository path.
fn looked(installed: Option<&Path>) -> String {
    match installed {
        Some(path) => format!("on PATH or at {}", path.display()),
        None => "on PATH".to_owned(),
    }
}

/// `cargo` and `rustc` with the `wasm32-wasip2` target installed.
pub fn rust() -> anyhow::Result<PathBuf> {
    let Some(cargo) = on_path("cargo") else {
        bail!(
            "cargo was not found on PATH; install Rust with rustup \
             (`curl --proto '=https' -sSf https://sh.rustup.rs | sh`), \
             then `rustup target add wasm32-wasip2`"
        );
    };
    // rustup installs a target's standard library under the target libdir;
    // without it, cargo fails with "can't find crate for `core`".
    let rustc = on_path("rustc").unwrap_or_else(|| PathBuf::from("rustc"));
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .with_context(|| format!("running {}", rustc.display()))?;
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || libdir.is_empty() || !Path::new(&libdir).is_dir() {
        bail!(
            "the Rust target wasm32-wasip2 is not installed: \
             install it with `rustup target add wasm32-wasip2`"
        );
    }
    Ok(cargo)
}

/// `clang`. (Its wasi-libc and lld are checked by what it says when it
/// fails: [`c_hint`].)
pub fn clang() -> anyhow::Result<PathBuf> {
    on_path("clang").with_context(|| {
        format!("clang was not found on PATH; install the C toolchain with `sudo apt-get install {C_PACKAGES}`")
    })
}

/// What to install when clang failed with `stderr`, if that was a missing
/// part of the toolchain rather than an error in the code.
pub fn c_hint(stderr: &str) -> Option<String> {
    let missing = if stderr.contains("wasm-ld") {
        "lld"
    } else if stderr.contains("libclang_rt.builtins-wasm32") {
        "libclang-rt-14-dev-wasm32"
    } else if ["stdio.h", "stdlib.h", "string.h", "-lc"]
        .iter()
        .any(|file| {
            stderr.contains(&format!("'{file}' file not found"))
                || stderr.contains(&format!("unable to find library {file}"))
        })
    {
        "wasi-libc"
    } else {
        return None;
    };
    Some(format!(
        "{missing} (part of the C toolchain) seems to be missing; install it with \
         `sudo apt-get install {C_PACKAGES}`"
    ))
}

/// `componentize-py`: on `PATH`, else in the repository's `target/py-venv`.
pub fn componentize_py(repo: Option<&Path>) -> anyhow::Result<PathBuf> {
    let installed = repo.map(|r| r.join("target/py-venv/bin/componentize-py"));
    on_path_or("componentize-py", installed.clone()).with_context(|| {
        format!(
            "componentize-py was not found {}; install it with \
             `pip install componentize-py==0.25.*` (in a virtualenv on PATH), \
             or run ./scripts/setup in the wasp repository",
            looked(installed.as_deref())
        )
    })
}

/// `componentize-js`: on `PATH`, else in the repository's `target/node`;
/// and `node`, which runs it.
pub fn componentize_js(repo: Option<&Path>) -> anyhow::Result<PathBuf> {
    let installed = repo.map(|r| r.join("target/node/node_modules/.bin/componentize-js"));
    let tool = on_path_or("componentize-js", installed.clone()).with_context(|| {
        format!(
            "componentize-js was not found {}; install it with \
             `npm install -g @bytecodealliance/componentize-js@0.23`, \
             or run ./scripts/setup in the wasp repository",
            looked(installed.as_deref())
        )
    })?;
    if on_path("node").is_none() {
        bail!(
            "node was not found on PATH, and componentize-js runs on it; \
             install Node.js with `sudo apt-get install nodejs npm`"
        );
    }
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clang_failures_name_the_missing_package() {
        let hint = c_hint("app.c:3:10: fatal error: 'stdio.h' file not found").expect("a hint");
        assert!(hint.starts_with("wasi-libc "), "{hint}");
        assert!(hint.contains(C_PACKAGES), "{hint}");
        let hint = c_hint(
            "clang: error: unable to execute command: Executable \"wasm-ld\" doesn't exist!",
        );
        assert!(hint.expect("a hint").starts_with("lld "));
        assert_eq!(
            c_hint("app.c:9: error: use of undeclared identifier 'x'"),
            None
        );
    }
}
