//! `wasp new` + `wasp build` + `wasp run`, end to end, in every language
//! (issue 5): a scaffolded project builds with its language's real
//! toolchain, outside this repository, and its component runs; a missing
//! toolchain is an error that says what to install.
//!
//! The Python and JavaScript toolchains come from `./scripts/setup` (which
//! `scripts/test` runs first), found in this repository's `target/py-venv`
//! and `target/node`. The Rust project builds into
//! `target/scaffold-tests`, shared across runs, so only the first run
//! compiles wit-bindgen.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

/// This repository.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `wasp` with `args`, with a compile cache in `cache`, and prints the
/// command and its output (shown when the test fails).
fn wasp(args: &[&str], cache: &Path, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasp"));
    command.env("WASP_CACHE_DIR", cache);
    // The nested cargo build must not see flags meant for this test build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    command.env("CARGO_TARGET_DIR", repo().join("target/scaffold-tests"));
    for (name, value) in env {
        command.env(name, value);
    }
    common::output_shown(&mut command, args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `wasp new greeter --lang LANG`, `wasp build greeter`, then
/// `wasp run greeter/target/greeter.wasm greet wasp`.
fn new_build_run(lang: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let project = dir.path().join("greeter");
    let project_arg = project.to_str().expect("utf-8 temp path");
    let cache = dir.path().join("cache");

    let out = wasp(&["new", project_arg, "--lang", lang], &cache, &[]);
    assert!(out.status.success(), "wasp new --lang {lang} failed");
    assert!(stdout(&out).contains("wasp build"), "prints the next step");
    let task_wit =
        std::fs::read_to_string(project.join("wit/deps/task/task.wit")).expect("task.wit");
    let repo_wit = std::fs::read_to_string(repo().join("wit/task.wit")).expect("wit/task.wit");
    assert_eq!(task_wit, repo_wit, "the project carries wasp:task");

    let out = wasp(&["build", project_arg], &cache, &[]);
    assert!(
        out.status.success(),
        "wasp build of a {lang} project failed"
    );
    let exports = stdout(&out);
    assert!(
        exports
            .contains("  greet: func(name: string) -> string    (local:greeter/greeter#greet)\n"),
        "{exports}"
    );
    let component = project.join("target/greeter.wasm");
    assert!(
        component.is_file(),
        "{} was not written",
        component.display()
    );

    let component = component.to_str().expect("utf-8 temp path");
    let out = wasp(&["run", component, "greet", "wasp"], &cache, &[]);
    assert!(out.status.success(), "wasp run of the {lang} task failed");
    assert_eq!(stdout(&out), "\"Hello, wasp!\"\n");
    assert!(
        stderr(&out).contains("[Info] greeting wasp"),
        "the log line reaches stderr"
    );
}

#[test]
fn rust_project_builds_and_runs() {
    new_build_run("rust");
}

#[test]
fn c_project_builds_and_runs() {
    new_build_run("c");
}

#[test]
fn python_project_builds_and_runs() {
    new_build_run("python");
}

#[test]
fn js_project_builds_and_runs() {
    new_build_run("js");
}

/// With no tool on PATH and no repository installs, each language's build
/// fails before running anything, saying what to install.
#[test]
fn a_missing_toolchain_says_what_to_install() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let cases = [
        (
            "rust",
            "cargo was not found on PATH; install Rust with rustup",
        ),
        (
            "c",
            "clang was not found on PATH; install the C toolchain with \
             `sudo apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32`",
        ),
        ("python", "`pip install componentize-py==0.25.*`"),
        (
            "js",
            "`npm install -g @bytecodealliance/componentize-js@0.23`",
        ),
    ];
    for (lang, install) in cases {
        let project = dir.path().join(format!("task-{lang}"));
        let project = project.to_str().expect("utf-8 temp path");
        let out = wasp(&["new", project, "--lang", lang], &cache, &[]);
        assert!(out.status.success(), "wasp new --lang {lang}");
        let out = wasp(
            &["build", project],
            &cache,
            &[("PATH", &empty), ("WASP_REPO", &empty)],
        );
        assert!(!out.status.success(), "{lang}: built without a toolchain");
        let err = stderr(&out);
        assert!(err.starts_with("wasp: error: "), "{lang}: {err}");
        assert!(err.contains(install), "{lang}: {err}");
    }
    // The Python and JavaScript errors name where else they looked.
    let out = wasp(
        &[
            "build",
            dir.path().join("task-python").to_str().expect("utf-8"),
        ],
        &cache,
        &[("PATH", &empty), ("WASP_REPO", &empty)],
    );
    let want = format!(
        "componentize-py was not found on PATH or at {}",
        empty.join("target/py-venv/bin/componentize-py").display()
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
}

#[test]
fn new_refuses_bad_names_and_build_refuses_unknown_projects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let bad = dir.path().join("Hello_World");
    let out = wasp(
        &["new", bad.to_str().expect("utf-8"), "--lang", "c"],
        &cache,
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot name a task"),
        "{}",
        stderr(&out)
    );
    assert!(!bad.exists(), "nothing is written for a bad name");

    let out = wasp(&["build", dir.path().to_str().expect("utf-8")], &cache, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot tell the language of"),
        "{}",
        stderr(&out)
    );
}
