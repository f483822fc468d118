//! The module store: each module's bytes once, the tenants that uploaded
//! it (only they may run it), and each tenant's storage against its limit.
//! The bytes are also on disk (the records thread writes them); this is
//! the copy engines are sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasp_proto::{ModuleHash, Tenant};

struct StoredModule {
    bytes: Arc<Vec<u8>>,
    tenants: HashSet<Tenant>,
}

/// A tenant's module storage quota and how a refusal names it.
pub(crate) struct Quota {
    pub(crate) bytes: u64,
    /// E.g. "tenant bob's module storage quota (module_bytes = 1 GiB ...)".
    pub(crate) name: String,
}

/// Modules by hash.
#[derive(Default)]
pub(crate) struct ModuleStore {
    by_hash: HashMap<ModuleHash, StoredModule>,
    /// Bytes of modules stored for each tenant (a module two tenants
    /// uploaded counts for both).
    per_tenant: HashMap<Tenant, u64>,
}

impl ModuleStore {
    /// Whether `tenant` may run `hash`.
    pub(crate) fn has(&self, hash: &ModuleHash, tenant: &Tenant) -> bool {
        self.by_hash
            .get(hash)
            .is_some_and(|m| m.tenants.contains(tenant))
    }

    /// Whether `tenant` may store a module of `size` bytes under `quota`:
    /// `Ok(false)` if it has it already, `Ok(true)` if it fits, or the
    /// refusal, naming the quota.
    pub(crate) fn admit(
        &self,
        hash: ModuleHash,
        tenant: &Tenant,
        size: u64,
        quota: &Quota,
    ) -> Result<bool, String> {
        if self.has(&hash, tenant) {
            return Ok(false);
        }
        let stored = self.per_tenant.get(tenant).copied().unwrap_or(0);
        if stored.saturating_add(size) > quota.bytes {
            return Err(format!(
                "module storage limit reached: tenant {tenant} stores {stored} bytes of modules, \
                 and this module's {size} bytes would pass {}",
                quota.name
            ));
        }
        Ok(true)
    }

    /// Stores a module for `tenant` (the bytes once, whoever else has it).
    pub(crate) fn insert(&mut self, hash: ModuleHash, tenant: Tenant, bytes: Arc<Vec<u8>>) {
        let size = bytes.len() as u64;
        let entry = self.by_hash.entry(hash).or_insert_with(|| StoredModule {
            bytes,
            tenants: HashSet::new(),
        });
        if entry.tenants.insert(tenant.clone()) {
            *self.per_tenant.entry(tenant).or_insert(0) += size;
        }
    }

    /// The module's bytes, shared.
    pub(crate) fn bytes(&self, hash: &ModuleHash) -> Option<Arc<Vec<u8>>> {
        self.by_hash.get(hash).map(|m| m.bytes.clone())
    }
}
