//! Builds the tasks workspace (`tasks/`) for `wasm32-wasip2` with a nested
//! cargo, as wasmtime's `crates/test-programs/artifacts/build.rs` does, and
//! writes `$OUT_DIR/artifacts.rs`: one constant per component plus `all()`.
//!
//! Every crate under `tasks/rust/` is a task; its directory name is its
//! crate name, and its component is `<name with _ for ->.wasm`.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let repo = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("host/task-artifacts lives two levels below the repository root");

    // Not target/: the nested build writes there, so watching it would
    // rebuild the tasks every time.
    for input in [
        "tasks/Cargo.toml",
        "tasks/Cargo.lock",
        "tasks/rust",
        "guest-sdk",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", repo.join(input).display());
    }

    let target_dir = repo.join("target").join("tasks");
    build_tasks(&repo, &target_dir);

    let release = target_dir.join("wasm32-wasip2").join("release");
    let mut constants = Vec::new();
    let mut pairs = Vec::new();
    for name in task_names(&repo.join("tasks").join("rust")) {
        let file = release.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(
            file.is_file(),
            "the tasks build did not produce {} (is the crate in tasks/rust/{name} named {name}?)",
            file.display()
        );
        let path = file.to_str().expect("the repository path is UTF-8");
        let constant = name.to_uppercase().replace('-', "_");
        constants.push(format!(
            "/// The `{name}` component (`tasks/rust/{name}`).\n\
             pub const {constant}: &str = {path:?};\n"
        ));
        pairs.push(format!("        ({name:?}, {constant}),\n"));
    }
    let generated = format!(
        "{}\n\
         /// Every component as `(crate name, path)`, sorted by name.\n\
         pub fn all() -> &'static [(&'static str, &'static str)] {{\n    &[\n{}    ]\n}}\n",
        constants.concat(),
        pairs.concat()
    );

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it")).join("artifacts.rs");
    fs::write(&out, generated).unwrap_or_else(|err| panic!("writing {}: {err}", out.display()));
}

/// Runs `cargo build --release --target wasm32-wasip2` on the tasks
/// workspace, panicking with its stderr if it fails.
fn build_tasks(repo: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2"]);
    // Under an outer cargo the nested one shares its jobserver (and ignores
    // `-j`, with a warning); run by hand, keep to the machine's 2 cores.
    if env::var_os("CARGO_MAKEFLAGS").is_none() {
        cmd.arg("-j2");
    }
    cmd.arg("--manifest-path")
        .arg(repo.join("tasks").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's configuration is for the host crates (a coverage
    // or sanitizer RUSTFLAGS, a wrapper, a profile override, its target
    // dir): none of it may leak into the guests' build.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let leaks = matches!(
            key,
            "CARGO_ENCODED_RUSTFLAGS"
                | "RUSTFLAGS"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "CARGO_TARGET_DIR"
        ) || key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_TARGET_");
        if leaks {
            cmd.env_remove(key);
        }
    }
    let output = cmd
        .output()
        .unwrap_or_else(|err| panic!("running {cmd:?}: {err}"));
    if !output.status.success() {
        panic!(
            "building the tasks failed ({}): {cmd:?}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The crates under `tasks/rust/`, sorted.
fn task_names(dir: &Path) -> Vec<String> {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()));
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap_or_else(|err| panic!("reading {}: {err}", dir.display())))
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| {
            entry
                .file_name()
                .into_string()
                .unwrap_or_else(|name| panic!("task directory {name:?} is not UTF-8"))
        })
        .collect();
    names.sort();
    names
}
