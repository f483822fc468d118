//! The modules an engine process has loaded, shared by all its slots and
//! by both lanes of each (its own queue and the task sliced in beside it,
//! see `turns`).
//!
//! Module bytes arrive before the tasks that need them and are compiled at
//! once, off the async thread; a task whose module is still compiling
//! waits for it, whichever slot it runs on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, Semaphore};
use wasp_proto::{EngineId, ModuleHash};

use crate::runtime::{Module, Runtime};

/// A module's state at this engine.
enum Entry {
    /// Its bytes came and are queued or being compiled.
    Expected,
    /// Compiled, or refused with the reason.
    Loaded(Result<Arc<Module>, String>),
}

/// The engine's modules by hash. Entries are kept for the connection's
/// life, as the compiled modules are kept by the runtime: the controller
/// sends each module once.
pub(super) struct Modules {
    entries: Mutex<HashMap<ModuleHash, Entry>>,
    loaded: Notify,
    /// Compiles at once: one per core, so that a burst of modules (each
    /// slot's first task of another) does not hold every module's
    /// compiler state in memory together.
    compiling: Semaphore,
}

impl Default for Modules {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            entries: Mutex::default(),
            loaded: Notify::new(),
            compiling: Semaphore::new(cores),
        }
    }
}

impl Modules {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ModuleHash, Entry>> {
        // Nothing panics while holding it; a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `hash`'s bytes arrived and are being compiled.
    pub(super) fn expect(&self, hash: ModuleHash) {
        self.entries().entry(hash).or_insert(Entry::Expected);
    }

    /// Compiles `bytes` and keeps the outcome under `hash`.
    pub(super) async fn load(&self, runtime: &Runtime, hash: ModuleHash, bytes: Vec<u8>) {
        // Never closed, so a permit always comes.
        let permit = self.compiling.acquire().await.ok();
        let loaded = runtime.load(bytes).await.map_err(|e| e.to_string());
        drop(permit);
        if let Err(err) = &loaded {
            tracing::warn!(module = %hash.short(), cause = %err, "module failed to load");
        }
        self.entries().insert(hash, Entry::Loaded(loaded));
        self.loaded.notify_waiters();
    }

    /// The module `hash`: loaded here, awaited while it compiles, or
    /// found in the runtime's caches (memory, then disk).
    pub(super) async fn get(
        &self,
        runtime: &Runtime,
        engine: EngineId,
        hash: ModuleHash,
    ) -> Result<Arc<Module>, String> {
        loop {
            // Registered before looking, so a load finishing in between is
            // not missed.
            let notified = self.loaded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.entries().get(&hash) {
                Some(Entry::Loaded(loaded)) => return loaded.clone(),
                Some(Entry::Expected) => {}
                None => break,
            }
            notified.await;
        }
        runtime
            .cached_async(&hash)
            .await
            .ok_or_else(|| format!("engine {engine} does not have module {hash}"))
    }
}
