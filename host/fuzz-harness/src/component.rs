//! Harness: component loading, the engine's path for every module a
//! client uploads (`Runtime::load_blocking`: the size and header checks,
//! then wasmtime's parser, validator and compiler, then linking and
//! reflection of the exports), fed real components from `tasks/`
//! (`wasp_task_artifacts`) and mutations of them.
//!
//! Properties:
//! - input over the module size limit is refused as
//!   [`LoadError::TooLarge`] naming `module_bytes`, before anything else;
//! - input whose header is not a component's is refused with the header
//!   check's own error;
//! - a component that loads is named by its hash, loads again from memory
//!   as the same module, and its exports can be found by their names;
//! - any other refusal says what was wrong (a non-empty message).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use wasp_engine::{Limits, LoadError, Runtime, RuntimeConfig};
use wasp_proto::ModuleHash;
use wasp_proto::component::check_header;

/// The module size limit the harness runs with: above every real task
/// component (the largest is about 110 KB), so mutants of them are
/// compiled, and small enough that the refusal is reached cheaply.
pub const MODULE_LIMIT: usize = 1 << 20;

/// A runtime with small limits and no disk cache. Each loaded module stays
/// in its memory cache, so [`Loader::load`] starts a new one now and then.
pub struct Loader {
    runtime: Runtime,
    loaded: usize,
}

/// Loaded modules after which the runtime (and its module cache) is
/// replaced.
const RENEW_AFTER: usize = 64;

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        limits: Limits {
            module_bytes: MODULE_LIMIT,
            memory_bytes: 16 << 20,
            wall_time: Duration::from_secs(5),
            ..Limits::default()
        },
        cache_dir: None,
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .expect("a runtime with small limits starts")
}

impl Default for Loader {
    fn default() -> Self {
        Loader {
            runtime: runtime(),
            loaded: 0,
        }
    }
}

impl Loader {
    /// Loads `bytes` and checks the properties (see the module docs); true
    /// if the bytes loaded as a module.
    pub fn load(&mut self, bytes: &[u8]) -> bool {
        let result = self.runtime.load_blocking(bytes);
        let header = check_header(bytes);
        match result {
            Ok(module) => {
                assert!(bytes.len() <= MODULE_LIMIT);
                assert_eq!(header, Ok(()));
                assert_eq!(module.hash, ModuleHash::of(bytes));
                for export in &module.exports.funcs {
                    let found = module
                        .exports
                        .find(&export.qualified)
                        .unwrap_or_else(|err| {
                            panic!("export {} not found: {err}", export.qualified)
                        });
                    assert_eq!(found.sig, export.sig);
                    // Signatures print (as errors and `wasp inspect` show them).
                    assert!(!export.sig.to_string().is_empty());
                }
                let again = self
                    .runtime
                    .load_blocking(bytes)
                    .expect("a loaded module loads again");
                assert!(Arc::ptr_eq(&module, &again), "the same bytes loaded twice");
                self.loaded += 1;
                if self.loaded.is_multiple_of(RENEW_AFTER) {
                    self.runtime = runtime();
                }
                true
            }
            Err(LoadError::TooLarge { size, limit }) => {
                assert!(
                    bytes.len() > MODULE_LIMIT,
                    "{size} bytes refused as too large"
                );
                assert_eq!(size, bytes.len());
                let text = LoadError::TooLarge { size, limit }.to_string();
                assert!(text.contains("module_bytes = 1 MiB"), "{text}");
                false
            }
            Err(LoadError::Header(err)) => {
                assert!(bytes.len() <= MODULE_LIMIT, "the size is checked first");
                assert_eq!(header, Err(err), "another header error than check_header's");
                false
            }
            Err(err @ (LoadError::Invalid(_) | LoadError::MissingImport(_))) => {
                assert!(bytes.len() <= MODULE_LIMIT, "the size is checked first");
                assert_eq!(header, Ok(()), "a bad header reached the compiler: {err}");
                let (LoadError::Invalid(text) | LoadError::MissingImport(text)) = &err else {
                    unreachable!("matched above")
                };
                assert!(
                    !text.trim().is_empty(),
                    "a refusal that says nothing: {err:?}"
                );
                false
            }
            Err(err) => panic!("unexpected load error without a disk cache: {err}"),
        }
    }
}

thread_local! {
    static LOADER: RefCell<Option<Loader>> = const { RefCell::new(None) };
}

/// Harness: loads `data` as a component with the thread's [`Loader`].
pub fn component_load(data: &[u8]) {
    LOADER.with(|loader| {
        loader
            .borrow_mut()
            .get_or_insert_with(Loader::default)
            .load(data);
    });
}

/// The real components: every task `wasp_task_artifacts` builds.
#[cfg(feature = "seeds")]
pub fn seeds() -> Vec<Vec<u8>> {
    wasp_task_artifacts::all()
        .iter()
        .map(|(name, path)| {
            std::fs::read(path).unwrap_or_else(|err| panic!("task {name} at {path}: {err}"))
        })
        .collect()
}
