//! Joining a controller: at start, waiting for one that is not up yet
//! (ipyparallel's registration timeout), and again after a loss; each
//! attempt with the connection file as it is then.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasp_net::{ConnectionFile, NetError, Session};
use wasp_proto::EngineId;
use wasp_proto::msg::{EngineHello, Role};

use super::{NodeConfig, NodeError, REDIAL_TIMEOUT};
use crate::backoff::{Attempt, Reconnect};
use crate::runtime::Runtime;

/// Where an engine finds its controller.
#[derive(Clone, Debug)]
pub enum ConnectionSource {
    /// A connection file, read before every attempt: a controller writes
    /// it when it starts (so it may not be there yet) and rewrites it when
    /// restarted (maybe with another port or certificate).
    File(PathBuf),
    /// A connection given once, used as it is.
    Given(ConnectionFile),
}

impl ConnectionSource {
    fn read(&self) -> Result<ConnectionFile, NetError> {
        match self {
            Self::File(path) => ConnectionFile::read(path),
            Self::Given(file) => Ok(file.clone()),
        }
    }
}

/// A connection the controller accepted, and the engine ids it assigned,
/// one per slot.
pub(super) struct Joined {
    pub(super) session: Session,
    pub(super) engines: Vec<EngineId>,
}

/// Why an attempt to join failed, and whether another may succeed.
enum Failed {
    /// No controller answered, or the file is not there yet: try again.
    Retry(String),
    /// A controller answered and refused, or broke the protocol: trying
    /// again would meet the same controller.
    Final(NodeError),
}

/// Joins at start: one attempt with a zero start timeout; otherwise
/// attempts with backoff until a controller answers or the start timeout
/// passes. A controller that refuses the engine ends it at once.
pub(super) async fn start(config: &NodeConfig, runtime: &Runtime) -> Result<Joined, NodeError> {
    if config.start_timeout.is_zero() {
        let file = config.connection.read()?;
        return dial(config, runtime, &file).await;
    }
    let mut policy = Reconnect::new(config.start_timeout, seed());
    policy.lost(Instant::now());
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match attempt(config, runtime).await {
            Ok(joined) => return Ok(joined),
            Err(Failed::Final(err)) => return Err(err),
            Err(Failed::Retry(why)) => why,
        };
        if attempts == 1 {
            tracing::info!(cause = %last, timeout = ?config.start_timeout, "waiting for the controller");
        }
        match policy.next(Instant::now()) {
            Attempt::GiveUp => {
                return Err(NodeError::NeverJoined {
                    timeout: config.start_timeout,
                    attempts,
                    last,
                });
            }
            Attempt::After(delay) => tokio::time::sleep(delay).await,
        }
    }
}

/// Dials until a controller welcomes the engine again or the reconnect
/// policy gives up.
pub(super) async fn rejoin(
    config: &NodeConfig,
    runtime: &Runtime,
    reconnect: &mut Reconnect,
    cause: String,
) -> Result<Joined, NodeError> {
    if reconnect.timeout().is_zero() {
        return Err(NodeError::Lost { cause });
    }
    let mut attempts = 0u32;
    let mut last = "none made".to_owned();
    loop {
        match reconnect.next(Instant::now()) {
            Attempt::GiveUp => {
                return Err(NodeError::GaveUp {
                    cause,
                    timeout: reconnect.timeout(),
                    attempts,
                    last,
                });
            }
            Attempt::After(delay) => tokio::time::sleep(delay).await,
        }
        attempts += 1;
        // A restarted controller may have a new token or certificate:
        // a refusal is worth another try here.
        match attempt(config, runtime).await {
            Ok(joined) => return Ok(joined),
            Err(Failed::Retry(err)) => last = err,
            Err(Failed::Final(err)) => last = err.to_string(),
        }
        tracing::debug!(attempt = attempts, cause = %last, "reconnect attempt failed");
    }
}

/// One attempt, with the connection file as it is now, bounded by
/// [`REDIAL_TIMEOUT`].
async fn attempt(config: &NodeConfig, runtime: &Runtime) -> Result<Joined, Failed> {
    let file = config
        .connection
        .read()
        .map_err(|err| Failed::Retry(err.to_string()))?;
    match tokio::time::timeout(REDIAL_TIMEOUT, dial(config, runtime, &file)).await {
        Err(_) => Err(Failed::Retry(format!(
            "no answer from {} within {REDIAL_TIMEOUT:?}",
            file.address
        ))),
        Ok(Ok(joined)) => Ok(joined),
        Ok(Err(NodeError::Net(err))) if !refused(&err) => Err(Failed::Retry(err.to_string())),
        Ok(Err(err)) => Err(Failed::Final(err)),
    }
}

/// Whether a controller answered and said no (or is not one), as opposed
/// to not answering.
fn refused(err: &NetError) -> bool {
    matches!(
        err,
        NetError::Rejected { .. }
            | NetError::FingerprintMismatch { .. }
            | NetError::Protocol(_)
            | NetError::Codec(_)
    )
}

/// Dials `file` and joins as the process's engines.
async fn dial(
    config: &NodeConfig,
    runtime: &Runtime,
    file: &ConnectionFile,
) -> Result<Joined, NodeError> {
    let session = wasp_net::dial(file, Role::Engine(hello(config, runtime))).await?;
    if session.engines.len() != config.slots as usize {
        return Err(NodeError::WrongEngineIds {
            asked: config.slots,
            given: session.engines.len(),
        });
    }
    let engines = session.engines.clone();
    Ok(Joined { session, engines })
}

/// What an engine process tells the controller it is: its name, its
/// slots, and every module it has compiled, in memory or on disk, which
/// it will not be sent again.
fn hello(config: &NodeConfig, runtime: &Runtime) -> EngineHello {
    EngineHello {
        name: config.name.clone(),
        cached: runtime.cached_hashes(),
        slots: config.slots,
    }
}

/// A seed for the reconnect jitter that differs between engines started
/// together, so that they spread out their attempts.
pub(super) fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32) ^ u64::from(nanos)
}
