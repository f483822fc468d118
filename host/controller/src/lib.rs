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
//! - `listener`: the connection cap, the handshake, a task per connection.
//! - `hub`: the one task that owns the state and the scheduler.
//! - `outbox`: how the queues between connections and the hub are bounded.
//! - `records`: task records in SQLite.

pub mod config;
mod hub;
mod listener;
mod outbox;
mod records;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use wasp_net::{ConnectionFile, NetError, Profile, SelfSignedCert};

pub use config::{ControllerConfig, TenantsFile};

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
}

/// A running controller.
pub struct Controller {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The client connection file it wrote.
    pub client_file: std::path::PathBuf,
    /// The engine connection file it wrote.
    pub engine_file: std::path::PathBuf,
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
        let records =
            records::Records::open(&config.database()).map_err(|source| StartError::Records {
                path: config.database(),
                source,
            })?;
        let cert =
            SelfSignedCert::generate(vec!["localhost".to_owned(), config.bind.ip().to_string()])?;
        let endpoint = wasp_net::server_endpoint(config.bind, &cert)?;
        let addr = endpoint.local_addr().map_err(|source| NetError::Bind {
            addr: config.bind,
            source,
        })?;
        // Clients reach a wildcard listener on loopback.
        let reachable = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        let client_file = profile.client_file();
        let engine_file = profile.engine_file();
        ConnectionFile {
            address: reachable,
            fingerprint: cert.fingerprint(),
            token: tenants.tenants[0].token.clone(),
        }
        .write(&client_file)?;
        ConnectionFile {
            address: reachable,
            fingerprint: cert.fingerprint(),
            token: tenants.engine_token.clone(),
        }
        .write(&engine_file)?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        // Bounded in events and, by the listener's inbox budget, in bytes.
        let (hub_tx, hub_rx) = mpsc::channel(outbox::HUB_INBOX_EVENTS);
        let hub = hub::Hub::new(config.clone(), records, shutdown.clone());
        let stopped = shutdown.clone();
        tokio::spawn(async move {
            hub.run(hub_rx).await;
            let _ = stopped.send(true);
        });
        let shared = Arc::new(listener::Shared::new(config, tenants, hub_tx));
        tokio::spawn(listener::serve(endpoint, shared, shutdown_rx));
        tracing::info!(%addr, client_file = %client_file.display(), "controller listening");
        Ok(Self {
            addr,
            client_file,
            engine_file,
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
