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
//! `scripts/build-polyglot` runs it; `wasp build` calls the library
//! (`src/lib.rs`) directly.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

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

/// `bindgen-c`: the C bindings of `world`.
fn bindgen_c(wit: &Path, world: &str, out: &Path) -> anyhow::Result<()> {
    wasp_componentize::bindgen_c(wit, world, out)?;
    Ok(())
}

/// `new`: a component of a core module.
fn new(core: &Path, out: &Path) -> anyhow::Result<()> {
    let module = fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let component = wasp_componentize::component_from_core(&module)?;
    fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}
