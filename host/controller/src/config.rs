//! The controller's settings and its tenants file.
//!
//! Tokens live in `controller.json` in the profile folder (mode 0600),
//! created with one default tenant on first start: every client token maps
//! to a tenant, so records, modules and namespaces are keyed by tenant from
//! the start; engines present a separate engine token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasp_proto::Tenant;
use wasp_proto::msg::Quotas;
use wasp_sched::Scheme;

/// The default of [`ControllerConfig::max_module_storage`]: 1 GiB, four
/// modules of the largest size a client may upload by default.
pub const DEFAULT_MAX_MODULE_STORAGE: u64 = 1 << 30;

/// `bytes` in the largest binary unit that divides it, e.g. `1 GiB`,
/// `300 MiB`, `1000 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// Settings of a controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// The profile folder: connection files, tenants file, task database.
    pub profile_dir: PathBuf,
    /// Where to listen (port 0: any free port).
    pub bind: SocketAddr,
    /// Where peers dial, written into the connection files in place of
    /// `bind` (ipyparallel's `location`): the address other hosts reach
    /// this one by, or a relay's. `None`: `bind`, or for a wildcard bind
    /// this host's own address (see [`crate::location`]).
    pub location: Option<crate::location::Location>,
    /// The load-balancing scheme.
    pub scheme: Scheme,
    /// Max outstanding tasks per engine (0 = unlimited).
    pub hwm: u32,
    /// Queued work, in expected run time, an engine may hold beyond `hwm`
    /// (zero: none); see [`wasp_sched::SchedulerConfig::prefetch`].
    pub prefetch: Duration,
    /// Time-slice engines between tenants; see
    /// [`wasp_sched::SchedulerConfig::time_slice`].
    pub time_slice: bool,
    /// Most connections at once (clients and engines).
    pub max_connections: usize,
    /// Where the dashboard's HTTP server listens (`/metrics` for now);
    /// `None`: no server (the default).
    pub dashboard: Option<SocketAddr>,
    /// Whether peers on this host (in its network namespace) may move big
    /// values as memory files (`wasp_net::same_host`); off, everything
    /// goes through QUIC.
    pub same_host: bool,
    /// Largest module a client may upload.
    pub max_module_bytes: usize,
    /// Most bytes of modules the controller stores for one tenant
    /// ([`DEFAULT_MAX_MODULE_STORAGE`] unless set). Modules are kept for
    /// the controller's life; an upload that would pass this is refused
    /// with an error naming the limit, and nothing is evicted (a client
    /// that was told a module is stored can rely on it).
    pub max_module_storage: u64,
    /// How long a peer has to present its token.
    pub handshake_deadline: Duration,
    /// An engine silent this long is declared dead.
    pub heartbeat_timeout: Duration,
    /// Seed of the scheduler's randomness (random schemes).
    pub seed: u64,
    /// A task whose engine died under it this many times fails (Dask's
    /// `allowed-failures`, then `KilledWorker`).
    pub max_engine_deaths: u32,
    /// Most task records kept; past it the oldest finished ones are
    /// deleted (ipyparallel's DictDB `record_limit`).
    pub max_records: u64,
    /// Most tasks one tenant may have queued, unless its own quota says
    /// otherwise ([`DEFAULT_MAX_QUEUED`] unless set).
    pub max_queued: u64,
}

/// The default of [`ControllerConfig::max_queued`]: a million queued tasks
/// hold about 500 MB of the controller's memory (the suite's figure).
pub const DEFAULT_MAX_QUEUED: u64 = 1_000_000;

/// The default of [`ControllerConfig::max_engine_deaths`], as Dask's and
/// Ray's 3.
pub const DEFAULT_MAX_ENGINE_DEATHS: u32 = 3;

/// The default of [`ControllerConfig::max_records`].
pub const DEFAULT_MAX_RECORDS: u64 = 1_000_000;

impl ControllerConfig {
    /// Defaults for a controller on `profile_dir`, listening on loopback.
    pub fn new(profile_dir: PathBuf) -> Self {
        Self {
            profile_dir,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            location: None,
            scheme: Scheme::default(),
            hwm: 1,
            prefetch: wasp_sched::DEFAULT_PREFETCH,
            time_slice: true,
            max_connections: 1024,
            dashboard: None,
            same_host: true,
            max_module_bytes: 256 << 20,
            max_module_storage: DEFAULT_MAX_MODULE_STORAGE,
            handshake_deadline: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            seed: 0x5eed,
            max_engine_deaths: DEFAULT_MAX_ENGINE_DEATHS,
            max_records: DEFAULT_MAX_RECORDS,
            max_queued: DEFAULT_MAX_QUEUED,
        }
    }

    /// The quotas of a tenant that sets none of its own: a queued-task
    /// quota and a module storage quota, nothing else beyond the engines'
    /// limits.
    pub fn default_quotas(&self) -> Quotas {
        Quotas {
            queued: Some(self.max_queued),
            module_bytes: Some(self.max_module_storage),
            ..Quotas::default()
        }
    }

    /// Where task records are kept.
    pub fn database(&self) -> PathBuf {
        self.profile_dir.join("tasks.sqlite")
    }
}

/// One tenant and its token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantEntry {
    /// The tenant's name.
    pub name: String,
    /// The secret its clients present.
    pub token: String,
    /// Whether its clients may stop the cluster.
    #[serde(default)]
    pub admin: bool,
    /// Its share of engine time against the other tenants with work
    /// queued (weighted fair share): a tenant of weight 2 gets twice the
    /// engine time of one of weight 1. At least 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Its own quotas; a field not set takes the controller's default
    /// ([`ControllerConfig::default_quotas`]).
    #[serde(default, skip_serializing_if = "Quotas::is_empty")]
    pub quotas: Quotas,
}

fn default_weight() -> u32 {
    wasp_sched::DEFAULT_WEIGHT
}

/// The tenants file, `controller.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantsFile {
    /// Client tokens and their tenants.
    pub tenants: Vec<TenantEntry>,
    /// The token engines present.
    pub engine_token: String,
}

/// The name of a quota of `quotas` set to 0, if any.
pub(crate) fn zero_quota(quotas: &Quotas) -> Option<&'static str> {
    [
        ("running-task", quotas.running),
        ("queued-task", quotas.queued),
        ("module storage", quotas.module_bytes),
        ("namespace", quotas.namespace_bytes),
        ("task time", quotas.task_time_us),
        ("task memory", quotas.task_memory_bytes),
    ]
    .into_iter()
    .find(|(_, value)| *value == Some(0))
    .map(|(name, _)| name)
}

/// The tenants file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("tenants file {path}: {message}")]
pub struct TenantsError {
    path: PathBuf,
    message: String,
}

impl TenantsFile {
    /// Reads `path`, or creates it (mode 0600) with one admin tenant
    /// `default` and fresh tokens. A file that its group or others may
    /// access is refused, as ssh refuses such a private key: it holds every
    /// tenant's token.
    pub fn load_or_create(path: &Path) -> Result<Self, TenantsError> {
        let error = |message: String| TenantsError {
            path: path.to_owned(),
            message,
        };
        if path.exists() {
            check_private(path).map_err(error)?;
            let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
            let file: Self = serde_json::from_str(&text)
                .map_err(|e| error(format!("not a valid tenants file: {e}")))?;
            file.validate().map_err(error)?;
            return Ok(file);
        }
        let file = Self {
            tenants: vec![TenantEntry {
                name: "default".into(),
                token: new_token().map_err(error)?,
                admin: true,
                weight: wasp_sched::DEFAULT_WEIGHT,
                quotas: Quotas::default(),
            }],
            engine_token: new_token().map_err(error)?,
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| error(e.to_string()))?;
        wasp_net::connfile::write_private(path, text.as_bytes())
            .map_err(|e| error(e.to_string()))?;
        Ok(file)
    }

    /// Refuses a file the controller could not keep its promises with: no
    /// tenant, a name or token used twice (a token would map to two
    /// tenants), an empty token (anyone could present it), a client token
    /// equal to the engine token (a client could serve as an engine and
    /// see every tenant's tasks), a weight of 0 (a tenant that never runs).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.tenants.is_empty() {
            return Err("no tenants: expected at least one".into());
        }
        if self.engine_token.is_empty() {
            return Err("the engine token is empty".into());
        }
        let mut names = std::collections::HashSet::new();
        let mut tokens = std::collections::HashSet::new();
        for tenant in &self.tenants {
            let name = &tenant.name;
            if name.is_empty() {
                return Err("a tenant has an empty name".into());
            }
            if !names.insert(name.as_str()) {
                return Err(format!("tenant {name:?} is listed twice"));
            }
            if tenant.token.is_empty() {
                return Err(format!("tenant {name:?} has an empty token"));
            }
            if !tokens.insert(tenant.token.as_str()) {
                return Err(format!(
                    "tenant {name:?} has the token of another tenant: tokens must be unique"
                ));
            }
            if constant_time_eq(tenant.token.as_bytes(), self.engine_token.as_bytes()) {
                return Err(format!(
                    "tenant {name:?} has the engine token: client and engine tokens must differ"
                ));
            }
            if tenant.weight == 0 {
                return Err(format!(
                    "tenant {name:?} has weight 0: expected a weight of at least 1"
                ));
            }
            if let Some(quota) = zero_quota(&tenant.quotas) {
                return Err(format!(
                    "tenant {name:?} has a {quota} quota of 0: expected at least 1 \
                     (a tenant that may do nothing is removed instead)"
                ));
            }
        }
        Ok(())
    }

    /// The tenant a client token belongs to, and whether it is an admin.
    pub fn tenant_of(&self, token: &str) -> Option<(Tenant, bool)> {
        self.tenants
            .iter()
            .find(|t| constant_time_eq(t.token.as_bytes(), token.as_bytes()))
            .map(|t| (Tenant(t.name.clone()), t.admin))
    }

    /// Whether `token` is the engine token.
    pub fn is_engine_token(&self, token: &str) -> bool {
        constant_time_eq(self.engine_token.as_bytes(), token.as_bytes())
    }
}

/// Refuses a file whose group or others have any permission (unix).
fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "permissions {mode:04o} are too open: it holds every tenant's token, so only \
                 its owner may read it; fix with `chmod 600 {}`",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// 32 random bytes as hex.
pub(crate) fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_file_is_created_once_and_maps_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.json");
        let first = TenantsFile::load_or_create(&path).unwrap();
        let again = TenantsFile::load_or_create(&path).unwrap();
        assert_eq!(first.engine_token, again.engine_token);
        let token = &first.tenants[0].token;
        assert_eq!(token.len(), 64);
        assert_eq!(
            first.tenant_of(token),
            Some((Tenant("default".into()), true))
        );
        assert_eq!(first.tenant_of("wrong"), None);
        assert!(first.is_engine_token(&first.engine_token));
        assert!(!first.is_engine_token(token));
    }

    /// Issue 12: a tenants file that would map a token to two tenants, let
    /// anyone in, let a client pose as an engine, or starve a tenant is
    /// refused at load, naming the tenant and what is wrong.
    #[test]
    fn a_tenants_file_is_validated_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.json");
        let entry = |name: &str, token: &str, weight: u32| serde_json::json!({"name": name, "token": token, "weight": weight});
        let cases = [
            (
                vec![entry("a", "t1", 1), entry("a", "t2", 1)],
                "tenant \"a\" is listed twice",
            ),
            (
                vec![entry("a", "t1", 1), entry("b", "t1", 1)],
                "tenant \"b\" has the token of another tenant",
            ),
            (vec![entry("a", "", 1)], "tenant \"a\" has an empty token"),
            (
                vec![entry("a", "engine", 1)],
                "tenant \"a\" has the engine token",
            ),
            (
                vec![entry("a", "t1", 0)],
                "tenant \"a\" has weight 0: expected a weight of at least 1",
            ),
            (vec![], "no tenants"),
        ];
        for (tenants, expected) in cases {
            let file = serde_json::json!({"tenants": tenants, "engine_token": "engine"});
            wasp_net::connfile::write_private(&path, file.to_string().as_bytes()).unwrap();
            let err = TenantsFile::load_or_create(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} (expected {expected:?})");
        }
        // Weights are kept; a tenant without one weighs 1.
        let file = serde_json::json!({
            "tenants": [entry("a", "t1", 3), {"name": "b", "token": "t2"}],
            "engine_token": "engine",
        });
        wasp_net::connfile::write_private(&path, file.to_string().as_bytes()).unwrap();
        let loaded = TenantsFile::load_or_create(&path).unwrap();
        let weights: Vec<u32> = loaded.tenants.iter().map(|t| t.weight).collect();
        assert_eq!(weights, [3, 1]);
    }

    /// Issue 10: a tenants file others may read is refused, with the fix.
    #[cfg(unix)]
    #[test]
    fn a_tenants_file_others_may_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.json");
        TenantsFile::load_or_create(&path).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "created private");
        for open in [0o640, 0o604, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
            let err = TenantsFile::load_or_create(&path).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "tenants file {p}: permissions {open:04o} are too open: it holds every \
                     tenant's token, so only its owner may read it; fix with `chmod 600 {p}`",
                    p = path.display()
                )
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        TenantsFile::load_or_create(&path).expect("owner-only is accepted");
    }
}
