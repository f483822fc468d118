//! The engine registry: who is connected, what modules each holds, and
//! when each was last heard from (liveness).
//!
//! The engines of one process (`wasp engine --slots N`) share its compiled
//! modules: they form a group, and a module sent to any of them is one the
//! others have.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use wasp_proto::{EngineId, ModuleHash};

/// One connected engine.
pub(crate) struct EngineEntry {
    /// For status displays (`host:pid`).
    pub(crate) name: String,
    /// The group whose modules it shares: its process's first engine.
    group: EngineId,
    /// When it was last heard from.
    last_seen: Duration,
    /// Tasks it finished.
    pub(crate) done: u64,
    /// Module bytes sent to it.
    pub(crate) module_bytes_sent: u64,
}

/// The modules of a group of engines (one process), how many of its
/// engines are connected, and the process's memory.
struct Group {
    /// Modules the process has (announced or sent): never sent twice.
    modules: HashSet<ModuleHash>,
    members: usize,
    /// The process's resident memory, as its last heartbeat said.
    resident_bytes: u64,
}

/// Every connected engine by id.
#[derive(Default)]
pub(crate) struct Engines {
    by_id: BTreeMap<EngineId, EngineEntry>,
    groups: HashMap<EngineId, Group>,
}

impl EngineEntry {
    /// When it was last heard from, on the state's clock.
    pub(crate) fn last_seen(&self) -> Duration {
        self.last_seen
    }
}

impl Engines {
    /// Adds an engine of `group` (the first engine id of its process),
    /// which has `cached` compiled; the group's modules are the union of
    /// what its engines announced.
    pub(crate) fn join(
        &mut self,
        id: EngineId,
        group: EngineId,
        name: String,
        cached: Vec<ModuleHash>,
        now: Duration,
    ) {
        let entry = EngineEntry {
            name,
            group,
            last_seen: now,
            done: 0,
            module_bytes_sent: 0,
        };
        if let Some(old) = self.by_id.insert(id, entry) {
            // Never happens (ids are never reused); keep the counts right.
            self.left_group(old.group);
        }
        let group = self.groups.entry(group).or_insert_with(|| Group {
            modules: HashSet::new(),
            members: 0,
            resident_bytes: 0,
        });
        group.members += 1;
        group.modules.extend(cached);
    }

    /// Forgets an engine; false if it was not connected.
    pub(crate) fn leave(&mut self, id: EngineId) -> bool {
        match self.by_id.remove(&id) {
            Some(entry) => {
                self.left_group(entry.group);
                true
            }
            None => false,
        }
    }

    fn left_group(&mut self, group: EngineId) {
        if let Some(g) = self.groups.get_mut(&group) {
            g.members -= 1;
            if g.members == 0 {
                self.groups.remove(&group);
            }
        }
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
    /// already, or another engine of its process does (or it is not
    /// connected), so nothing need be sent.
    pub(crate) fn note_module_sent(&mut self, id: EngineId, hash: ModuleHash, len: u64) -> bool {
        let Some(entry) = self.by_id.get_mut(&id) else {
            return false;
        };
        let Some(group) = self.groups.get_mut(&entry.group) else {
            return false;
        };
        if !group.modules.insert(hash) {
            return false;
        }
        entry.module_bytes_sent += len;
        true
    }

    /// `id`'s process said its resident memory is `bytes`.
    pub(crate) fn reported_memory(&mut self, id: EngineId, bytes: u64) {
        let group = self.by_id.get(&id).map(|e| e.group);
        if let Some(group) = group.and_then(|g| self.groups.get_mut(&g)) {
            group.resident_bytes = bytes;
        }
    }

    /// The resident memory of `id`'s process, as last reported (0 before
    /// its first heartbeat).
    pub(crate) fn resident_bytes(&self, id: EngineId) -> u64 {
        self.by_id
            .get(&id)
            .and_then(|e| self.groups.get(&e.group))
            .map_or(0, |g| g.resident_bytes)
    }

    /// The resident memory of each engine process, as last reported.
    pub(crate) fn processes_resident_bytes(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.values().map(|g| g.resident_bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_goes_once_to_the_engines_of_one_process() {
        let mut engines = Engines::default();
        let (first, second, alone) = (EngineId(4), EngineId(5), EngineId(6));
        let cached = ModuleHash::of(b"cached");
        let fresh = ModuleHash::of(b"fresh");
        engines.join(first, first, "h:1#0".into(), vec![cached], Duration::ZERO);
        engines.join(second, first, "h:1#1".into(), vec![cached], Duration::ZERO);
        engines.join(alone, alone, "h:2".into(), vec![], Duration::ZERO);
        assert!(!engines.note_module_sent(second, cached, 10), "announced");
        assert!(engines.note_module_sent(second, fresh, 10));
        assert!(
            !engines.note_module_sent(first, fresh, 10),
            "its process has it"
        );
        assert!(
            engines.note_module_sent(alone, fresh, 10),
            "another process"
        );
        // The group outlives any one engine, not all of them.
        assert!(engines.leave(second));
        assert!(!engines.note_module_sent(first, fresh, 10));
        assert!(engines.leave(first));
        assert!(!engines.groups.contains_key(&first));
        engines.join(
            EngineId(7),
            EngineId(7),
            "h:1".into(),
            vec![],
            Duration::ZERO,
        );
        assert!(
            engines.note_module_sent(EngineId(7), fresh, 10),
            "a new process"
        );
    }

    #[test]
    fn memory_is_the_process_s_shared_by_its_engines() {
        let mut engines = Engines::default();
        let (first, second, alone) = (EngineId(1), EngineId(2), EngineId(3));
        engines.join(first, first, "h:1#0".into(), vec![], Duration::ZERO);
        engines.join(second, first, "h:1#1".into(), vec![], Duration::ZERO);
        engines.join(alone, alone, "h:2".into(), vec![], Duration::ZERO);
        assert_eq!(engines.resident_bytes(first), 0, "before a heartbeat");
        engines.reported_memory(second, 300);
        engines.reported_memory(alone, 50);
        assert_eq!(engines.resident_bytes(first), 300);
        assert_eq!(engines.resident_bytes(second), 300);
        let mut processes: Vec<u64> = engines.processes_resident_bytes().collect();
        processes.sort_unstable();
        assert_eq!(processes, vec![50, 300], "one figure per process");
        engines.reported_memory(EngineId(9), 7);
        assert_eq!(engines.resident_bytes(EngineId(9)), 0, "not connected");
    }
}
