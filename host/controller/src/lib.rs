//! wasp's controller: the hub (engine registry, task records, module store)
//! and the load-balancing scheduler, serving clients and engines over QUIC.
//!
//! At start it makes a self-signed certificate, listens, and writes two
//! connection files into the profile folder (as ipyparallel writes
//! `security/ipcontroller-client.json` and `ipcontroller-engine.json`):
//! the address, the certificate's sha256 fingerprint, and a token — the
//! default tenant's for clients, the engine token for engines.
//!
//! # Layout
//! - [`config`]: [`ControllerConfig`] and the tenants file.
//! - [`location`]: the address the connection files say (`--location`),
//!   which may differ from the one the controller listens on.
//! - `listener`: the connection cap, the handshake, a task per connection.
//! - `hub`: the one task that owns the state and carries out its decisions.
//! - `state`: the hub's state as a sans-IO core (task table, engine
//!   registry and liveness, module store, scheduler, retries).
//! - `outbox`: how the queues between connections and the hub are bounded.
//! - `records`: task records in SQLite, the source of truth on restart.
//! - `arg_files`: big task arguments, kept as files beside the records.
//! - `tenants`: the tenants file while the controller runs (the tokens
//!   handshakes are checked against), changed by `wasp tenant`.
//!
//! # Restarts
//! A controller started on a profile that has run before continues it: the
//! same certificate and key (`security/controller-{cert,key}.der`), tokens
//! and, if it is free, port, so connection files stay valid; every
//! unfinished task is queued again; finished results stay fetchable; and
//! session numbers continue, so task ids are never reused.

mod arg_files;
pub mod config;
mod dashboard;
mod hub;
mod listener;
pub mod location;
mod outbox;
mod records;
mod state;
mod tenants;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use wasp_net::{ConnectionFile, NetError, Profile, SelfSignedCert};
use wasp_proto::Tenant;

pub use config::{ControllerConfig, TenantsFile, human_bytes};
pub use location::Location;
pub use records::recorded_args;

/// The controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Network setup failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The tenants file is unusable.
    #[error(transparent)]
    Tenants(#[from] config::TenantsError),
    /// The task database could not be opened.
    #[error("task records at {path}: {source}")]
    Records {
        /// The database file.
        path: std::path::PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The dashboard's address could not be bound.
    #[error("the dashboard cannot listen on {addr}: {source}")]
    Dashboard {
        /// The address asked for (`--dashboard`).
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running controller.
pub struct Controller {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its connection files say it is: [`Controller::addr`] unless
    /// a location was given or it listens on a wildcard address.
    pub location: SocketAddr,
    /// The client connection file it wrote.
    pub client_file: std::path::PathBuf,
    /// The engine connection file it wrote.
    pub engine_file: std::path::PathBuf,
    /// Where the dashboard's HTTP server listens, if it was asked for.
    pub dashboard: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
}

impl Controller {
    /// Starts listening and writes the connection files.
    pub async fn start(config: ControllerConfig) -> Result<Self, StartError> {
        let profile = Profile::at(config.profile_dir.clone());
        // Private whatever the umask (issue 10): the folder 0700, the task
        // database 0600 before SQLite opens it (its -wal and -shm files
        // take the database's mode).
        profile.create()?;
        let tenants = TenantsFile::load_or_create(&config.profile_dir.join("controller.json"))?;
        wasp_net::connfile::create_private_file(&config.database())?;
        let modules_dir = config.profile_dir.join("modules");
        let (records, loaded) = records::Records::open(
            &config.database(),
            &modules_dir,
            &arg_files::ArgFiles::dir_in(&config.profile_dir),
            config.max_records,
        )
        .map_err(|source| StartError::Records {
            path: config.database(),
            source,
        })?;
        let cert = load_or_make_cert(&profile, &config)?;
        let endpoint = bind_endpoint(&profile, &config, &cert)?;
        let addr = endpoint.local_addr().map_err(|source| NetError::Bind {
            addr: config.bind,
            source,
        })?;
        let reachable = advertise(addr, config.location);
        // Peers on this host move big values as memory files; one that
        // cannot reach the channel (another host or network namespace)
        // moves them through QUIC.
        let same_host = if config.same_host {
            raise_open_files_limit();
            let name = wasp_net::same_host::channel_name(&cert.fingerprint());
            match wasp_net::SameHostListener::bind(name) {
                Ok(listener) => Some(listener),
                Err(err) => {
                    tracing::warn!(cause = %err, "no same-host channel: every value goes through QUIC");
                    None
                }
            }
        } else {
            None
        };
        let same_host_name = same_host.as_ref().map(|l| l.name().to_owned());
        let client_file = profile.client_file();
        let engine_file = profile.engine_file();
        ConnectionFile {
            address: reachable,
            fingerprint: cert.fingerprint(),
            token: tenants.tenants[0].token.clone(),
            same_host: same_host_name.clone(),
        }
        .write(&client_file)?;
        ConnectionFile {
            address: reachable,
            fingerprint: cert.fingerprint(),
            token: tenants.engine_token.clone(),
            same_host: same_host_name.clone(),
        }
        .write(&engine_file)?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        // Bounded in events and, by the listener's inbox budget, in bytes.
        let (hub_tx, hub_rx) = mpsc::channel(outbox::HUB_INBOX_EVENTS);
        // The controller numbers resubmitted tasks in a session of its own,
        // the first one this run; clients get the ones after it.
        let own_session = loaded.next_session;
        let mut state = state::HubState::new(
            state::HubConfig {
                sched: wasp_sched::SchedulerConfig {
                    scheme: config.scheme,
                    hwm: config.hwm,
                    seed: config.seed,
                    prefetch: config.prefetch,
                    time_slice: config.time_slice,
                },
                heartbeat_timeout: config.heartbeat_timeout,
                max_engine_deaths: config.max_engine_deaths,
                default_quotas: config.default_quotas(),
                scheme_name: config.scheme.to_string(),
                tenants: tenants
                    .tenants
                    .iter()
                    .map(|t| {
                        let settings = state::TenantSettings {
                            weight: t.weight,
                            admin: t.admin,
                            quotas: t.quotas,
                        };
                        (Tenant(t.name.clone()), settings)
                    })
                    .collect(),
            },
            hub::now_us(),
            own_session,
        );
        for (hash, tenant, bytes) in loaded.modules {
            state.restore_module(hash, tenant, bytes);
        }
        let reloaded = loaded.unfinished.len();
        for task in loaded.unfinished {
            state.restore_task(std::time::Duration::ZERO, task);
        }
        if reloaded > 0 {
            tracing::info!(
                tasks = reloaded,
                "queued the unfinished tasks of the previous run again"
            );
        }
        let registry = Arc::new(tenants::Registry::new(
            tenants,
            config.profile_dir.join("controller.json"),
            profile.security_dir(),
            reachable,
            cert.fingerprint(),
            same_host_name,
        ));
        if let Err(err) = registry.write_connection_files() {
            tracing::warn!(cause = %err, "a tenant's connection file is not up to date");
        }
        let hub = hub::Hub::new(state, records, Arc::clone(&registry), shutdown.clone());
        let stopped = shutdown.clone();
        tokio::spawn(async move {
            hub.run(hub_rx).await;
            let _ = stopped.send(true);
        });
        if let Some(listener) = &same_host {
            let listener = listener.clone();
            let mut stop = shutdown_rx.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = listener.serve() => {}
                    _ = stop.changed() => {}
                }
            });
        }
        let shared = Arc::new(listener::Shared::new(
            config,
            registry,
            hub_tx,
            own_session.saturating_add(1),
            loaded.next_engine,
            same_host,
        ));
        let dashboard = match shared.config.dashboard {
            Some(addr) => {
                let http = dashboard::bind(addr)
                    .await
                    .map_err(|source| StartError::Dashboard { addr, source })?;
                let bound = http
                    .local_addr()
                    .map_err(|source| StartError::Dashboard { addr, source })?;
                tokio::spawn(dashboard::serve(http, shared.clone(), shutdown_rx.clone()));
                Some(bound)
            }
            None => None,
        };
        tokio::spawn(listener::serve(endpoint, shared, shutdown_rx));
        tracing::info!(%addr, client_file = %client_file.display(), "controller listening");
        Ok(Self {
            addr,
            location: reachable,
            client_file,
            engine_file,
            dashboard,
            shutdown,
        })
    }

    /// Waits until the controller stops: an admin client asked it to, or
    /// [`Controller::stop`] was called.
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Stops accepting and serving.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// The address to write into the connection files, logged with how it
/// was chosen: a wildcard listener with no location is the case that
/// silently strands engines on other hosts, so it says what it picked.
fn advertise(bound: SocketAddr, given: Option<location::Location>) -> SocketAddr {
    let advertised = location::advertised(bound, given, location::this_host_ip);
    let addr = advertised.addr;
    match advertised.source {
        location::Source::Given | location::Source::Bound => {}
        location::Source::ThisHost => tracing::info!(
            %bound,
            location = %addr,
            "listening on every interface: connection files name this host's address; \
             pass --location to name another"
        ),
        location::Source::Loopback => tracing::warn!(
            %bound,
            location = %addr,
            "listening on every interface but found no address of this host: connection \
             files name loopback, which peers on other hosts cannot dial; pass --location ADDR"
        ),
    }
    addr
}

/// The controller's certificate and key from the profile, or new ones
/// (saved there, 0600) on its first start: connection files written by an
/// earlier run stay valid.
fn load_or_make_cert(
    profile: &Profile,
    config: &ControllerConfig,
) -> Result<SelfSignedCert, NetError> {
    let cert_path = profile.security_dir().join("controller-cert.der");
    let key_path = profile.security_dir().join("controller-key.der");
    if let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
        return Ok(SelfSignedCert::from_der(cert, key));
    }
    let cert =
        SelfSignedCert::generate(vec!["localhost".to_owned(), config.bind.ip().to_string()])?;
    wasp_net::connfile::write_private(&key_path, cert.key_der())?;
    wasp_net::connfile::write_private(&cert_path, cert.cert_der())?;
    Ok(cert)
}

/// Listens on `config.bind`; when that asks for any port, on the port of
/// the profile's existing client connection file first (unless a location
/// with its own port stands in front of the controller), if it is free,
/// so that clients and engines of the earlier run find the controller
/// where they left it.
fn bind_endpoint(
    profile: &Profile,
    config: &ControllerConfig,
    cert: &SelfSignedCert,
) -> Result<quinn::Endpoint, NetError> {
    // A location with a port of its own (a relay, a NAT) hides the port
    // the earlier run listened on.
    let file_names_our_port = config.location.is_none_or(|l| l.port.is_none());
    if config.bind.port() == 0
        && file_names_our_port
        && let Ok(previous) = ConnectionFile::read(&profile.client_file())
    {
        let again = SocketAddr::new(config.bind.ip(), previous.address.port());
        match wasp_net::server_endpoint(again, cert) {
            Ok(endpoint) => return Ok(endpoint),
            Err(err) => {
                tracing::info!(addr = %again, cause = %err, "the previous run's port is taken; listening on another");
            }
        }
    }
    wasp_net::server_endpoint(config.bind, cert)
}

/// Raises this process's soft limit of open files to its hard limit: each
/// same-host peer holds a socket, and each big value in flight a memory
/// file, where QUIC alone needed one socket for every peer. Most hosts
/// start processes at 1,024 (the soft limit) with a far higher hard limit,
/// which a process may take without privileges.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum
        && let Err(err) = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )
    {
        tracing::warn!(cause = %err, "could not raise the open files limit");
    }
}
