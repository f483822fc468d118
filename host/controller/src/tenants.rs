//! The tenants while the controller runs: the tokens the listener checks
//! each connection against, changed by an admin's `wasp tenant` requests
//! and written back to `controller.json` and to each tenant's connection
//! file (`security/client-NAME.json`), so that a change holds across
//! restarts and needs none.
//!
//! The hub's state decides who may change what and what a change does to
//! running work; this module only keeps the file and the tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::RwLock;

use wasp_net::ConnectionFile;
use wasp_proto::Tenant;
use wasp_proto::msg::{Quotas, TenantRequest};

use crate::config::{TenantEntry, TenantsFile, new_token};

/// Longest tenant name: it names a file and shows in every status line.
const MAX_NAME: usize = 64;

/// A change the file now holds, for the hub's state to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TenantChange {
    /// A tenant was added; its connection file is at `file`.
    Added {
        name: Tenant,
        weight: u32,
        quotas: Quotas,
        file: PathBuf,
    },
    /// A tenant's weight or quotas changed: these are its own now.
    Changed {
        name: Tenant,
        weight: u32,
        quotas: Quotas,
    },
    /// A tenant was removed: its token no longer opens a connection.
    Removed { name: Tenant },
}

/// The tenants file, shared by the listener (reads, at each handshake) and
/// the hub (writes, at each change).
pub(crate) struct Registry {
    file: RwLock<TenantsFile>,
    /// `controller.json`.
    path: PathBuf,
    /// Where tenants' connection files go (`security/`).
    security_dir: PathBuf,
    /// What a tenant's connection file says besides its token.
    address: SocketAddr,
    fingerprint: String,
    same_host: Option<String>,
}

impl Registry {
    pub(crate) fn new(
        file: TenantsFile,
        path: PathBuf,
        security_dir: PathBuf,
        address: SocketAddr,
        fingerprint: String,
        same_host: Option<String>,
    ) -> Self {
        Self {
            file: RwLock::new(file),
            path,
            security_dir,
            address,
            fingerprint,
            same_host,
        }
    }

    /// Writes the connection file of every tenant but the first (whose
    /// file is the profile's own client file), with this run's address:
    /// a controller that restarts on another port leaves no tenant's file
    /// stale, and a tenant written into `controller.json` by hand gets one.
    pub(crate) fn write_connection_files(&self) -> Result<(), String> {
        let file = self.read();
        for tenant in file.tenants.iter().skip(1) {
            let path = self.connection_file(&tenant.name);
            self.connection(&tenant.token).write(&path).map_err(|e| {
                format!(
                    "could not write tenant {}'s connection file: {e}",
                    tenant.name
                )
            })?;
        }
        Ok(())
    }

    fn connection(&self, token: &str) -> ConnectionFile {
        ConnectionFile {
            address: self.address,
            fingerprint: self.fingerprint.clone(),
            token: token.to_owned(),
            same_host: self.same_host.clone(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TenantsFile> {
        self.file.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant a client token belongs to, and whether it is an admin.
    pub(crate) fn tenant_of(&self, token: &str) -> Option<(Tenant, bool)> {
        self.read().tenant_of(token)
    }

    /// Whether `token` is the engine token.
    pub(crate) fn is_engine_token(&self, token: &str) -> bool {
        self.read().is_engine_token(token)
    }

    /// Where a tenant's connection file is written.
    pub(crate) fn connection_file(&self, name: &str) -> PathBuf {
        self.security_dir.join(format!("client-{name}.json"))
    }

    /// Applies an admin's change to the file: validated, written
    /// (`controller.json` replaced whole, mode 0600), and in force for the
    /// next handshake. A change that would break the file's rules, or that
    /// cannot be written, changes nothing and says why.
    ///
    /// The writes are small and rare (an operator's command), so they are
    /// done here, on the hub's thread, rather than handed to another: the
    /// change is in force once the hub goes on.
    pub(crate) fn apply(&self, request: &TenantRequest) -> Result<Option<TenantChange>, String> {
        let mut next = self.read().clone();
        let change = match request {
            TenantRequest::List => return Ok(None),
            TenantRequest::Add {
                name,
                weight,
                quotas,
            } => {
                check_name(name)?;
                if next.tenants.iter().any(|t| t.name == *name) {
                    return Err(format!("tenant {name:?} exists already"));
                }
                next.tenants.push(TenantEntry {
                    name: name.clone(),
                    token: new_token()?,
                    admin: false,
                    weight: *weight,
                    quotas: *quotas,
                });
                TenantChange::Added {
                    name: Tenant(name.clone()),
                    weight: *weight,
                    quotas: *quotas,
                    file: self.connection_file(name),
                }
            }
            TenantRequest::Set {
                name,
                weight,
                quotas,
            } => {
                let tenant = next
                    .tenants
                    .iter_mut()
                    .find(|t| t.name == *name)
                    .ok_or_else(|| format!("no tenant {name:?}"))?;
                tenant.weight = weight.unwrap_or(tenant.weight);
                tenant.quotas = quotas.or(tenant.quotas);
                TenantChange::Changed {
                    name: Tenant(name.clone()),
                    weight: tenant.weight,
                    quotas: tenant.quotas,
                }
            }
            TenantRequest::Remove { name } => {
                let i = next
                    .tenants
                    .iter()
                    .position(|t| t.name == *name)
                    .ok_or_else(|| format!("no tenant {name:?}"))?;
                if next.tenants[i].admin {
                    return Err(format!(
                        "tenant {name:?} is an admin: an admin tenant cannot be removed with \
                         `wasp tenant remove` (edit controller.json while the controller is stopped)"
                    ));
                }
                next.tenants.remove(i);
                TenantChange::Removed {
                    name: Tenant(name.clone()),
                }
            }
        };
        next.validate()?;
        let text = serde_json::to_string_pretty(&next).map_err(|e| e.to_string())?;
        wasp_net::connfile::write_private(&self.path, text.as_bytes())
            .map_err(|e| format!("could not write the tenants file: {e}"))?;
        match &change {
            TenantChange::Added { name, file, .. } => {
                let token = next
                    .tenants
                    .iter()
                    .find(|t| t.name == name.0)
                    .map(|t| t.token.clone())
                    .unwrap_or_default();
                self.connection(&token)
                    .write(file)
                    .map_err(|e| format!("could not write the tenant's connection file: {e}"))?;
            }
            TenantChange::Removed { name } => {
                // Its token is revoked whether or not the file goes.
                let _ = std::fs::remove_file(self.connection_file(&name.0));
            }
            TenantChange::Changed { .. } => {}
        }
        *self.file.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(Some(change))
    }
}

/// A tenant name that is safe as a file name and readable in a status.
fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        return Err(format!(
            "tenant name {name:?} is not allowed: expected 1 to {MAX_NAME} letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(dir: &std::path::Path) -> Registry {
        let path = dir.join("controller.json");
        let file = TenantsFile::load_or_create(&path).expect("tenants");
        Registry::new(
            file,
            path,
            dir.join("security"),
            "127.0.0.1:4000".parse().expect("address"),
            "ab".repeat(32),
            Some("wasp-first".into()),
        )
    }

    /// A controller that comes back on another port rewrites every
    /// tenant's connection file: none goes stale at a restart.
    #[test]
    fn a_restart_rewrites_the_tenants_connection_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = registry(dir.path());
        first
            .apply(&TenantRequest::Add {
                name: "bob".into(),
                weight: 1,
                quotas: Quotas::default(),
            })
            .expect("added");
        let path = dir.path().join("controller.json");
        let again = Registry::new(
            TenantsFile::load_or_create(&path).expect("reloads"),
            path,
            dir.path().join("security"),
            "127.0.0.1:5000".parse().expect("address"),
            "ab".repeat(32),
            Some("wasp-again".into()),
        );
        again.write_connection_files().expect("written");
        let conn = ConnectionFile::read(&again.connection_file("bob")).expect("bob's file");
        assert_eq!(conn.address.port(), 5000, "the new run's address");
        assert_eq!(
            conn.same_host.as_deref(),
            Some("wasp-again"),
            "the new run's same-host channel"
        );
        assert_eq!(
            again.tenant_of(&conn.token),
            Some((Tenant("bob".into()), false))
        );
        assert!(
            !again.connection_file("default").exists(),
            "the first tenant's file is the profile's own"
        );
    }

    #[test]
    fn added_tenants_get_a_token_a_file_and_survive_a_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = registry(dir.path());
        let change = registry
            .apply(&TenantRequest::Add {
                name: "bob".into(),
                weight: 2,
                quotas: Quotas {
                    running: Some(4),
                    ..Quotas::default()
                },
            })
            .expect("added");
        let Some(TenantChange::Added { file, weight, .. }) = change else {
            panic!("{change:?}")
        };
        assert_eq!(weight, 2);
        let conn = ConnectionFile::read(&file).expect("bob's file");
        assert_eq!(
            registry.tenant_of(&conn.token),
            Some((Tenant("bob".into()), false)),
            "bob's token opens a connection as bob, not an admin"
        );
        let reloaded =
            TenantsFile::load_or_create(&dir.path().join("controller.json")).expect("reloads");
        assert!(
            reloaded
                .tenants
                .iter()
                .any(|t| t.name == "bob" && t.weight == 2 && t.quotas.running == Some(4))
        );
        // A change keeps what it does not name.
        let set = registry.apply(&TenantRequest::Set {
            name: "bob".into(),
            weight: None,
            quotas: Quotas {
                queued: Some(10),
                ..Quotas::default()
            },
        });
        let Ok(Some(TenantChange::Changed { weight, quotas, .. })) = set else {
            panic!("{set:?}")
        };
        assert_eq!(
            (weight, quotas.running, quotas.queued),
            (2, Some(4), Some(10))
        );

        // Refusals change nothing.
        let again = registry.apply(&TenantRequest::Add {
            name: "bob".into(),
            weight: 1,
            quotas: Quotas::default(),
        });
        assert_eq!(again, Err("tenant \"bob\" exists already".into()));
        let bad = registry.apply(&TenantRequest::Add {
            name: "../x".into(),
            weight: 1,
            quotas: Quotas::default(),
        });
        assert!(bad.is_err_and(|e| e.contains("is not allowed")));
        let zero = registry.apply(&TenantRequest::Set {
            name: "bob".into(),
            weight: Some(0),
            quotas: Quotas::default(),
        });
        assert!(zero.is_err_and(|e| e.contains("weight 0")));
        let zero = registry.apply(&TenantRequest::Set {
            name: "bob".into(),
            weight: None,
            quotas: Quotas {
                running: Some(0),
                ..Quotas::default()
            },
        });
        assert!(zero.is_err_and(|e| e.contains("running-task quota of 0")));
        let admin = registry.apply(&TenantRequest::Remove {
            name: "default".into(),
        });
        assert!(admin.is_err_and(|e| e.contains("is an admin")));

        registry
            .apply(&TenantRequest::Remove { name: "bob".into() })
            .expect("removed");
        assert_eq!(registry.tenant_of(&conn.token), None, "revoked at once");
        assert!(!file.exists(), "its connection file is gone");
    }
}
