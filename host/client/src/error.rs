//! The client's errors. A task's remote failure arrives as a
//! [`RemoteError`] that says which task, which engine, and what went wrong.

use std::fmt;

use wasp_proto::msg::ErrorKind;
use wasp_proto::{EngineId, TaskId};

use crate::module::ModuleError;

/// A task failed remotely.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RemoteError {
    /// The task (its msg_id).
    pub task: TaskId,
    /// The engine that ran it, if one did.
    pub engine: Option<EngineId>,
    /// The kind of failure.
    pub kind: ErrorKind,
    /// For a chunk, which item failed.
    pub item: Option<u32>,
    /// What went wrong, as the engine or controller said.
    pub message: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}", self.task)?;
        if let Some(item) = self.item {
            write!(f, " (item {item} of its chunk)")?;
        }
        match self.engine {
            Some(engine) => write!(f, " failed on engine {engine}: {}", self.message),
            None => write!(f, " failed before reaching an engine: {}", self.message),
        }
    }
}

/// Anything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or talking to the controller failed.
    #[error(transparent)]
    Net(#[from] wasp_net::NetError),
    /// The controller refused the connection (bad token, version).
    #[error("the controller refused the connection: {0}")]
    Refused(String),
    /// The module is unusable or has no such function.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// Arguments do not fit the function's signature; nothing was sent.
    #[error("{0}")]
    Arguments(String),
    /// A task failed remotely.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The controller answered a request with an error.
    #[error("the controller says: {0}")]
    Controller(String),
    /// A namespace operation failed on an engine (a missing name, a value
    /// over the namespace limit); the message names the engine.
    #[error("{0}")]
    Namespace(String),
    /// Results did not arrive in time.
    #[error("timed out after {0:?} waiting for results")]
    Timeout(std::time::Duration),
    /// The connection to the controller is gone.
    #[error("the connection to the controller is closed")]
    Disconnected,
    /// The task database has no such task for this tenant: never
    /// submitted, another tenant's, or purged (or culled past
    /// `max_records`).
    #[error("no such task for this tenant: {}", list_ids(.0))]
    UnknownTasks(Vec<TaskId>),
}

/// At most ten ids, then how many more.
fn list_ids(ids: &[TaskId]) -> String {
    let mut text: Vec<String> = ids.iter().take(10).map(ToString::to_string).collect();
    if ids.len() > 10 {
        text.push(format!("and {} more", ids.len() - 10));
    }
    text.join(", ")
}
