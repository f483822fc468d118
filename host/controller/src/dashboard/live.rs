//! Live pages: the view as server-sent events, and the views one viewer's
//! pages share.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, watch};
use wasp_proto::Tenant;

use super::{Caller, Dashboard, MAX_STREAMS, VIEW_EVERY, refused};

/// `GET /api/events`: the view as server-sent events, the first at once,
/// then every [`VIEW_EVERY`], until the page goes, the controller stops,
/// or the token stops matching a tenant (a `refused` event says so).
pub(super) async fn events(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let (tenant, admin, token) = match dash.tenant(&headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let Ok(permit) = dash.streams.clone().try_acquire_owned() else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the dashboard keeps at most {MAX_STREAMS} pages live at once\n"),
        );
    };
    let live = Live {
        dash: dash.clone(),
        tenant,
        admin,
        token,
        shutdown: dash.shutdown.clone(),
        first: true,
        ended: false,
        _permit: permit,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok::<_, Infallible>(event), live))
    });
    axum::response::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One live page's stream of views.
struct Live {
    dash: Arc<Dashboard>,
    tenant: Tenant,
    admin: bool,
    token: String,
    shutdown: watch::Receiver<bool>,
    first: bool,
    ended: bool,
    /// Counts this page against [`MAX_STREAMS`] while it lives.
    _permit: OwnedSemaphorePermit,
}

impl Live {
    /// The next event, or `None` to end the stream.
    async fn next(&mut self) -> Option<Sse> {
        if self.ended || *self.shutdown.borrow() {
            return None;
        }
        if !self.first {
            tokio::select! {
                () = tokio::time::sleep(VIEW_EVERY) => {}
                _ = self.shutdown.changed() => return None,
            }
        }
        self.first = false;
        // The tenant may have been removed, or made an admin or not.
        match self.dash.caller_of(self.token.clone()) {
            Caller::Tenant { tenant, admin, .. } => {
                self.tenant = tenant;
                self.admin = admin;
            }
            _ => {
                self.ended = true;
                return Some(Sse::default().event("refused").data(format!(
                    "tenant {} was removed: its token is revoked",
                    self.tenant
                )));
            }
        }
        let json = self.dash.view_json(self.tenant.clone(), self.admin).await?;
        Some(Sse::default().event("view").data(&*json))
    }
}

/// How long a view made for one page serves others of the same viewer.
const VIEW_SHARED_FOR: Duration = Duration::from_millis(250);

/// The views made in the last [`VIEW_SHARED_FOR`], by viewer (tenant, and
/// whether as an admin): at most one per tenant with a page open.
#[derive(Default)]
pub(super) struct RecentViews(std::sync::Mutex<HashMap<Viewer, MadeView>>);

/// A viewer: a tenant, and whether it views as an admin.
pub(super) type Viewer = (Tenant, bool);

/// A view as JSON, and when it was made.
type MadeView = (Instant, Arc<str>);

impl RecentViews {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Viewer, MadeView>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The view `key` was shown less than [`VIEW_SHARED_FOR`] ago.
    pub(super) fn fresh(&self, key: &Viewer) -> Option<Arc<str>> {
        let views = self.lock();
        let (made, json) = views.get(key)?;
        (made.elapsed() < VIEW_SHARED_FOR).then(|| json.clone())
    }

    /// Keeps the view `key` was just shown, dropping stale ones.
    pub(super) fn keep(&self, key: Viewer, json: Arc<str>) {
        let mut views = self.lock();
        views.retain(|_, (made, _)| made.elapsed() < VIEW_SHARED_FOR);
        views.insert(key, (Instant::now(), json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_shared_by_one_viewers_pages_for_a_moment_only() {
        let views = RecentViews::default();
        let admin = (Tenant("default".into()), true);
        let alice = (Tenant("alice".into()), false);
        views.keep(admin.clone(), Arc::from("{\"admin\":true}"));
        assert_eq!(views.fresh(&admin).as_deref(), Some("{\"admin\":true}"));
        assert_eq!(views.fresh(&alice), None, "never another viewer's");
        let as_tenant = (Tenant("default".into()), false);
        assert_eq!(views.fresh(&as_tenant), None, "nor the admin's as a tenant");
        std::thread::sleep(VIEW_SHARED_FOR);
        assert_eq!(views.fresh(&admin), None, "stale");
        views.keep(alice.clone(), Arc::from("{}"));
        assert_eq!(views.lock().len(), 1, "the stale view is dropped");
    }
}
