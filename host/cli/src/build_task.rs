//! `wasp build`: a task project (made by `wasp new`, or laid out the same
//! way) into a component, with its language's own toolchain, then its
//! exports with their WIT signatures (as `wasp inspect` prints them).
//!
//! The language comes from the project's files (`Cargo.toml`, `app.c`,
//! `app.py`, `app.js`), the world from `wit/` (its one world), and the
//! component goes to `target/<name>.wasm` (`--out` to choose):
//!
//! - Rust: `cargo build --target wasm32-wasip2 --release`;
//! - C: C bindings (wit-bindgen-c), clang for wasm32-wasi, and the preview1
//!   reactor adapter (wit-component), the last two through
//!   `wasp-componentize`'s library;
//! - Python: `componentize-py componentize app`;
//! - JavaScript: `componentize-js app.js -d http fetch-event` (its default
//!   features import wasi:http, which engines do not provide).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::cli::{BuildArgs, Lang};
use crate::inspect::describe_text;
use crate::run::load_module;
use crate::scaffold::source_file;
use crate::toolchain;

/// `wasp build [DIR]`: builds, writes the component, loads it and prints
/// its exports.
pub fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let lang = detect(&args.dir)?;
    // Absolute, since the toolchains run in the project folder.
    let dir = &args
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let (world, name) = world(&dir.join("wit"))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dir.join("target").join(format!("{name}.wasm")));
    let repo = toolchain::repo(args.repo.as_deref());
    let started = Instant::now();
    let scratch = dir.join("target/wasp-build");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let component = match lang {
        Lang::Rust => build_rust(dir)?,
        Lang::C => build_c(dir, &world, &scratch)?,
        Lang::Python => {
            let tool = toolchain::componentize_py(repo.as_deref())?;
            let built = scratch.join("component.wasm");
            let mut command = Command::new(tool);
            command
                .args(["-d", "wit", "-w", &world, "componentize", "app", "-o"])
                .arg(&built);
            run_tool(command.current_dir(dir), "componentize-py")?;
            built
        }
        Lang::Js => {
            let tool = toolchain::componentize_js(repo.as_deref())?;
            let built = scratch.join("component.wasm");
            let mut command = Command::new(tool);
            command
                .args(["app.js", "--wit", "wit", "--world-name", &world])
                .args(["-d", "http", "fetch-event", "-o"])
                .arg(&built);
            run_tool(command.current_dir(dir), "componentize-js")?;
            built
        }
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::copy(&component, &out)
        .with_context(|| format!("copying {} to {}", component.display(), out.display()))?;
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    eprintln!(
        "built {} ({}, {} KiB, {:.1} s)",
        out.display(),
        lang.label(),
        size.div_ceil(1024),
        started.elapsed().as_secs_f64()
    );
    // Loading compiles the component (into the cache `wasp run` reads) and
    // refuses one that imports what engines do not provide.
    let runtime = args.runtime.runtime()?;
    let (module, size) = load_module(&runtime, &out)?;
    print!(
        "{}",
        describe_text(&module, size, &out.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// The project's language, from the file that holds its code.
fn detect(dir: &Path) -> anyhow::Result<Lang> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let found: Vec<Lang> = [Lang::Rust, Lang::C, Lang::Python, Lang::Js]
        .into_iter()
        .filter(|&lang| dir.join(source_file(lang)).is_file())
        .collect();
    match found[..] {
        [lang] => Ok(lang),
        [] => bail!(
            "cannot tell the language of {}: expected Cargo.toml (Rust), app.c (C), \
             app.py (Python) or app.js (JavaScript); `wasp new` makes such a project",
            dir.display()
        ),
        _ => bail!(
            "{} holds more than one of Cargo.toml, app.c, app.py and app.js; \
             keep one language per project",
            dir.display()
        ),
    }
}

/// The one world of the WIT package in `wit` (`local:hello/task`) and the
/// package's name (`hello`), which names the component.
fn world(wit: &Path) -> anyhow::Result<(String, String)> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading the task's WIT in {}", wit.display()))?;
    let package = &resolve.packages[package];
    let worlds: Vec<&String> = package.worlds.keys().collect();
    let [world] = worlds[..] else {
        bail!(
            "{} defines {} worlds in package {}; a task project has exactly one",
            wit.display(),
            worlds.len(),
            package.name
        );
    };
    let name = &package.name;
    Ok((
        format!("{}:{}/{world}", name.namespace, name.name),
        name.name.clone(),
    ))
}

/// Runs a toolchain command; its output goes to our stderr, so stdout
/// holds only the exports.
fn run_tool(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}); its messages are above");
    }
    Ok(())
}

/// `cargo build --target wasm32-wasip2 --release`, returning the `.wasm`
/// cargo reports (wherever `CARGO_TARGET_DIR` puts it).
fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = toolchain::rust()?;
    let out = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!(
            "cargo build failed ({}); its messages are above",
            out.status
        );
    }
    // One JSON message a line; the cdylib's artifact names the .wasm.
    let wasm = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| {
            msg["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .filter_map(|msg| {
            msg["filenames"].as_array()?.iter().find_map(|f| {
                let f = f.as_str()?;
                f.ends_with(".wasm").then(|| PathBuf::from(f))
            })
        })
        .next_back();
    wasm.context("cargo built no .wasm: is the crate a `cdylib` (crate-type = [\"cdylib\"])?")
}

/// Bindings, clang, then the component with the preview1 adapter.
fn build_c(dir: &Path, world: &str, scratch: &Path) -> anyhow::Result<PathBuf> {
    let clang = toolchain::clang()?;
    let bindings = scratch.join("bindings");
    wasp_componentize::bindgen_c(&dir.join("wit"), world, &bindings)?;
    let world_name = world.rsplit('/').next().unwrap_or(world).replace('-', "_");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    let core = scratch.join("core.wasm");
    let out = Command::new(clang)
        .args([
            "--target=wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-Wall",
        ])
        .arg("-Wl,--strip-debug")
        .arg(format!("-I{}", bindings.display()))
        .arg("-o")
        .arg(&core)
        .arg(bindings.join(format!("{world_name}.c")))
        .args(&sources)
        .arg(bindings.join(format!("{world_name}_component_type.o")))
        .output()
        .context("running clang")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if !out.status.success() {
        match toolchain::c_hint(&stderr) {
            Some(hint) => bail!("clang failed: {hint}"),
            None => bail!("clang failed ({}); its messages are above", out.status),
        }
    }
    let module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    let component = wasp_componentize::component_from_core(&module)?;
    let built = scratch.join("component.wasm");
    std::fs::write(&built, component).with_context(|| format!("writing {}", built.display()))?;
    Ok(built)
}
