//! `wasp-componentize`: the two steps of building a C task that need the
//! component-model tooling, as a library rather than installed binaries
//! (`wit-bindgen-cli` and `wasm-tools` take minutes to `cargo install`).
//!
//! ```text
//! wasp-componentize bindgen-c WIT_DIR WORLD OUT_DIR
//!     writes <world>.c, <world>.h and <world>_component_type.o
//!     (as `wit-bindgen c WIT_DIR --world WORLD --out-dir OUT_DIR`)
//! wasp-componentize new CORE.wasm OUT.wasm
//!     wraps a wasm32-wasi reactor module into a component with the
//!     preview1 reactor adapter of wasmtime 48
//!     (as `wasm-tools component new --adapt wasi_snapshot_preview1=...`)
//! ```
//!
//! `scripts/build-polyglot` runs it.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
use wit_component::ComponentEncoder;
use wit_parser::Resolve;

const USAGE: &str = "usage: wasp-componentize bindgen-c WIT_DIR WORLD OUT_DIR\n       \
                     wasp-componentize new CORE.wasm OUT.wasm";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wasp-componentize: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["bindgen-c", wit, world, out] => bindgen_c(Path::new(wit), world, Path::new(out)),
        ["new", core, out] => new(Path::new(core), Path::new(out)),
        _ => bail!("{USAGE}"),
    }
}

/// Generates the C bindings of `world` from the WIT package in `wit`
/// (with its `deps/`).
fn bindgen_c(wit: &Path, world: &str, out: &Path) -> anyhow::Result<()> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading WIT from {}", wit.display()))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("no world {world} in {}", wit.display()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("generating C bindings")?;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Makes a component of a core module whose component type is embedded
/// (the bindings' `_component_type.o` was linked in).
fn new(core: &Path, out: &Path) -> anyhow::Result<()> {
    let module = fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .context("reading the core module's component type")?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("adding the preview1 reactor adapter")?
        .encode()
        .context("encoding the component")?;
    fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}
