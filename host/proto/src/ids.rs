//! Identifiers shared by every role.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An engine's id, assigned by the controller in join order: 0, 1, 2, ...
/// (ipyparallel's `rc.ids`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EngineId(pub u32);

impl fmt::Display for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A task's id (ipyparallel's `msg_id`), unique across a profile's
/// controller runs: session numbers continue where the records end.
///
/// The high 32 bits are the submitting client's session, assigned by the
/// controller at the handshake; the low 32 bits count that session's tasks.
/// A client can thus name its tasks without a round trip per submission.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct TaskId(pub u64);

impl TaskId {
    /// The id of a session's `seq`-th task.
    pub fn new(session: u32, seq: u32) -> Self {
        Self((u64::from(session) << 32) | u64::from(seq))
    }

    /// The session that submitted the task.
    pub fn session(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

impl fmt::Display for TaskId {
    /// `s3-17`: session 3's task 17.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}-{}", self.session(), self.0 as u32)
    }
}

impl std::str::FromStr for TaskId {
    type Err = String;

    /// Reads `s3-17` (as printed), or the raw number.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a task id: expected one like s3-17");
        if let Some(rest) = text.strip_prefix('s') {
            let (session, seq) = rest.split_once('-').ok_or_else(bad)?;
            let session = session.parse().map_err(|_| bad())?;
            let seq = seq.parse().map_err(|_| bad())?;
            return Ok(TaskId::new(session, seq));
        }
        text.parse().map(TaskId).map_err(|_| bad())
    }
}

/// The tenant a connection authenticated as; every record, module and
/// namespace is keyed by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tenant(pub String);

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_carry_their_session() {
        let id = TaskId::new(3, 17);
        assert_eq!(id.session(), 3);
        assert_eq!(id.to_string(), "s3-17");
        assert_eq!("s3-17".parse(), Ok(id));
        assert_eq!(id.0.to_string().parse(), Ok(id));
        let err = "s3".parse::<TaskId>().unwrap_err();
        assert!(err.contains("expected one like s3-17"), "{err}");
        assert!("s3-x".parse::<TaskId>().is_err());
    }
}
