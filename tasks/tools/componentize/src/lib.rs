//! The two steps of building a C task that need the component-model
//! tooling, as a library rather than installed binaries (`wit-bindgen-cli`
//! and `wasm-tools` take minutes to `cargo install`):
//!
//! - [`bindgen_c`]: C bindings of a WIT world (as `wit-bindgen c`);
//! - [`component_from_core`]: a component from a wasm32-wasi reactor
//!   module, with the preview1 reactor adapter of wasmtime 48 (as
//!   `wasm-tools component new --adapt wasi_snapshot_preview1=...`).
//!
//! `wasp build` calls both for C task projects; the `wasp-componentize`
//! binary (`src/main.rs`) exposes them to `scripts/build-polyglot`.
//!
//! # Layout
//!
//! One module: the two functions and their [`Error`].

#![warn(missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
use wit_component::ComponentEncoder;
use wit_parser::Resolve;

/// What can go wrong building a C task.
///
/// The WIT and component tooling report errors as `anyhow` chains; they are
/// kept as the source, so `{:#}` prints the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The WIT package (with its `deps/`) could not be read or parsed.
    #[error("reading WIT from {}", path.display())]
    Wit {
        /// The WIT folder.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: anyhow::Error,
    },
    /// The WIT package has no such world.
    #[error("no world {world} in {}", path.display())]
    World {
        /// The world asked for.
        world: String,
        /// The WIT folder.
        path: PathBuf,
        /// What the resolver said.
        #[source]
        source: anyhow::Error,
    },
    /// wit-bindgen-c failed.
    #[error("generating C bindings")]
    Bindgen(#[source] anyhow::Error),
    /// The core module could not be made a component.
    #[error("{step}")]
    Component {
        /// Which step failed.
        step: &'static str,
        /// What wit-component said.
        #[source]
        source: anyhow::Error,
    },
    /// A file could not be read or written.
    #[error("{action} {}", path.display())]
    Io {
        /// `reading` or `writing`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Generates the C bindings of `world` (e.g. `wasp:area/task`) from the WIT
/// package in `wit` (with its `deps/`) into `out`: `<world>.c`,
/// `<world>.h` and `<world>_component_type.o`. Returns the files written.
pub fn bindgen_c(wit: &Path, world: &str, out: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(wit).map_err(|source| Error::Wit {
        path: wit.to_owned(),
        source,
    })?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .map_err(|source| Error::World {
            world: world.to_owned(),
            path: wit.to_owned(),
            source,
        })?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world_id, &mut files)
        .map_err(Error::Bindgen)?;
    fs::create_dir_all(out).map_err(|source| Error::Io {
        action: "creating",
        path: out.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, contents) in files.iter() {
        let path = out.join(name);
        fs::write(&path, contents).map_err(|source| Error::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Makes a component of a wasm32-wasi reactor module whose component type
/// is embedded (the bindings' `_component_type.o` was linked in), adapting
/// its WASI preview1 imports to WASI 0.2.
pub fn component_from_core(module: &[u8]) -> Result<Vec<u8>, Error> {
    let step = |step| move |source| Error::Component { step, source };
    ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(step("reading the core module's component type"))?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(step("adding the preview1 reactor adapter"))?
        .encode()
        .map_err(step("encoding the component"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindgen_c_writes_the_world_s_header_source_and_type_object() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wit = dir.path().join("wit");
        fs::create_dir(&wit).expect("mkdir");
        fs::write(
            wit.join("world.wit"),
            "package local:demo;\ninterface demo { twice: func(x: s32) -> s32; }\n\
             world task { export demo; }\n",
        )
        .expect("write WIT");
        let out = dir.path().join("bindings");
        let mut written = bindgen_c(&wit, "local:demo/task", &out).expect("bindings");
        written.sort();
        let names: Vec<_> = written
            .iter()
            .map(|p| {
                p.file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["task.c", "task.h", "task_component_type.o"]);
        let header = fs::read_to_string(out.join("task.h")).expect("header");
        assert!(
            header.contains("int32_t exports_local_demo_demo_twice(int32_t x);"),
            "{header}"
        );

        let err = bindgen_c(&wit, "local:demo/nope", &out).expect_err("no such world");
        assert_eq!(
            err.to_string(),
            format!("no world local:demo/nope in {}", wit.display())
        );
    }

    #[test]
    fn a_file_that_is_not_a_core_module_is_refused() {
        let err = component_from_core(b"not wasm").expect_err("not a module");
        assert_eq!(err.to_string(), "reading the core module's component type");
    }
}
