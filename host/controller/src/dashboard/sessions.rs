//! Signed-in dashboard pages: the page sends its token once (`POST
//! /api/login`) and gets a random session id in an HttpOnly cookie, which
//! the browser then sends with every request, the event stream's included
//! (an `EventSource` cannot send an `Authorization` header, and a token in
//! its URL would end up in logs and histories).
//!
//! A session keeps the token it was opened with, not the tenant: every
//! request checks the token again, so removing a tenant (revoking its
//! token) ends its sessions at once. The table is bounded: the least
//! recently used session goes when it is full, and a session unused for
//! [`IDLE`] expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most sessions kept.
pub(crate) const MAX_SESSIONS: usize = 1024;

/// A session unused this long has expired.
pub(crate) const IDLE: Duration = Duration::from_secs(12 * 3600);

/// Random bytes in a session id (hex in the cookie).
const ID_BYTES: usize = 32;

struct Session {
    token: String,
    last_used: Instant,
}

/// The sessions of one dashboard.
#[derive(Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session for `token` (already checked); its id, or why no
    /// id could be made.
    pub(crate) fn open(&self, token: &str) -> Result<String, String> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a session: {e}"))?;
        let id = hex::encode(bytes);
        let mut by_id = self.lock();
        let now = Instant::now();
        by_id.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = by_id
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| id.clone())
        {
            by_id.remove(&oldest);
        }
        by_id.insert(
            id.clone(),
            Session {
                token: token.to_owned(),
                last_used: now,
            },
        );
        Ok(id)
    }

    /// The token of session `id`, if it is open (and marks it used).
    pub(crate) fn token(&self, id: &str) -> Option<String> {
        let mut by_id = self.lock();
        let now = Instant::now();
        let session = by_id.get_mut(id)?;
        if now.duration_since(session.last_used) >= IDLE {
            by_id.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.token.clone())
    }

    /// Ends session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_its_token_until_closed() {
        let sessions = Sessions::default();
        let id = sessions.open("t0k3n").expect("a session");
        assert_eq!(id.len(), 2 * ID_BYTES);
        assert_eq!(sessions.token(&id).as_deref(), Some("t0k3n"));
        assert_eq!(sessions.token("not-a-session"), None);
        sessions.close(&id);
        assert_eq!(sessions.token(&id), None);
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_least_recently_used() {
        let sessions = Sessions::default();
        let first = sessions.open("a").expect("a session");
        let second = sessions.open("b").expect("a session");
        for _ in 0..MAX_SESSIONS - 2 {
            sessions.open("c").expect("a session");
        }
        // The first is used again: the second is now the oldest.
        assert!(sessions.token(&first).is_some());
        sessions.open("d").expect("a session");
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
        assert!(sessions.token(&first).is_some());
        assert_eq!(sessions.token(&second), None);
    }
}
