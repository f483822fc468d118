//! The engine registry: who is connected, what modules each holds, and
//! when each was last heard from (liveness).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use wasp_proto::{EngineId, ModuleHash};

/// One connected engine.
pub(crate) struct EngineEntry {
    /// For status displays (`host:pid`).
    pub(crate) name: String,
    /// Modules the engine has (announced or sent): never sent twice.
    modules: HashSet<ModuleHash>,
    /// When it was last heard from.
    last_seen: Duration,
    /// Tasks it finished.
    pub(crate) done: u64,
    /// Module bytes sent to it.
    pub(crate) module_bytes_sent: u64,
}

/// Every connected engine by id.
#[derive(Default)]
pub(crate) struct Engines {
    by_id: BTreeMap<EngineId, EngineEntry>,
}

impl Engines {
    pub(crate) fn join(
        &mut self,
        id: EngineId,
        name: String,
        cached: Vec<ModuleHash>,
        now: Duration,
    ) {
        self.by_id.insert(
            id,
            EngineEntry {
                name,
                modules: cached.into_iter().collect(),
                last_seen: now,
                done: 0,
                module_bytes_sent: 0,
            },
        );
    }

    /// Forgets an engine; false if it was not connected.
    pub(crate) fn leave(&mut self, id: EngineId) -> bool {
        self.by_id.remove(&id).is_some()
    }

    pub(crate) fn contains(&self, id: EngineId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The engine spoke at `now`; false if it is not connected (declared
    /// dead, or never joined).
    pub(crate) fn seen(&mut self, id: EngineId, now: Duration) -> bool {
        match self.by_id.get_mut(&id) {
            Some(entry) => {
                entry.last_seen = entry.last_seen.max(now);
                true
            }
            None => false,
        }
    }

    /// Engines not heard from for longer than `timeout`.
    pub(crate) fn silent(&self, now: Duration, timeout: Duration) -> Vec<EngineId> {
        self.by_id
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Notes that `hash` (of `len` bytes) goes to `id`; false if it has it
    /// already (or is not connected), so nothing need be sent.
    pub(crate) fn note_module_sent(&mut self, id: EngineId, hash: ModuleHash, len: u64) -> bool {
        let Some(entry) = self.by_id.get_mut(&id) else {
            return false;
        };
        if !entry.modules.insert(hash) {
            return false;
        }
        entry.module_bytes_sent += len;
        true
    }

    pub(crate) fn count_done(&mut self, id: EngineId) {
        if let Some(entry) = self.by_id.get_mut(&id) {
            entry.done += 1;
        }
    }

    pub(crate) fn ids(&self) -> Vec<EngineId> {
        self.by_id.keys().copied().collect()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (EngineId, &EngineEntry)> {
        self.by_id.iter().map(|(id, e)| (*id, e))
    }
}
