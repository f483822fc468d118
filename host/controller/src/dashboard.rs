//! The dashboard's HTTP server (`wasp controller --dashboard ADDR`, axum):
//!
//! - `/`, `/app.js`, `/app.css`: the page, served from the binary (no CDN:
//!   clusters run offline);
//! - `POST /api/login` with `{"token": ...}`: a session in an HttpOnly
//!   cookie ([`sessions`]); `POST /api/logout` ends it;
//! - `/api/events`: the view as server-sent events, every [`VIEW_EVERY`];
//! - `/api/view`: the view once, as JSON (`state::view`): every tenant's
//!   work for an admin, its own for a tenant;
//! - `/api/task/{id}`: a task's record with its arguments, result and
//!   output, if the viewer may see it;
//! - `/metrics`: the Prometheus text format of what the hub has counted and
//!   holds (`state::observe`), for an admin.
//!
//! Access takes a token, in the `Authorization: Bearer TOKEN` header
//! (scripts, Prometheus: `authorization: { credentials_file: ... }`) or
//! through a session's cookie (the page); never in a URL, which ends up in
//! logs and browser histories, and the token is never logged or echoed.

mod bounded;
mod live;
mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Semaphore, oneshot, watch};
use wasp_proto::{TaskId, Tenant};

use crate::hub::Event;
use crate::listener::Shared;
use bounded::Bounded;
use live::RecentViews;
use sessions::Sessions;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often a live page is sent the view.
pub(crate) const VIEW_EVERY: Duration = Duration::from_millis(500);

/// Most pages kept live at once (each costs the hub a view per
/// [`VIEW_EVERY`]).
pub(crate) const MAX_STREAMS: usize = 64;

/// Most requests for a task's record waiting for the records at once.
pub(crate) const MAX_TASK_REQUESTS: usize = 16;

/// Most HTTP connections open at once (a page holds two or three).
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// Most bytes of a sign-in request's body.
const LOGIN_BODY_BYTES: usize = 4096;

/// The page and its assets, built into the binary.
const INDEX_HTML: &str = include_str!("dashboard/assets/index.html");
const APP_JS: &str = include_str!("dashboard/assets/app.js");
const APP_CSS: &str = include_str!("dashboard/assets/app.css");

/// Scripts and styles from the controller only, nothing inline (the page
/// sets its bars' sizes from its script), and never in a frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// What the dashboard's handlers share.
struct Dashboard {
    shared: Arc<Shared>,
    sessions: Sessions,
    /// The session cookie's name: it holds the port, because browsers
    /// keep cookies per host, not per port, and two controllers on one
    /// host must not sign each other's pages out.
    cookie: String,
    streams: Arc<Semaphore>,
    task_requests: Arc<Semaphore>,
    recent_views: RecentViews,
    shutdown: watch::Receiver<bool>,
}

/// Binds the dashboard's listener; its address (port 0 picks one).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves the dashboard until shutdown.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let port = listener.local_addr().map_or(0, |a| a.port());
    let dashboard = Arc::new(Dashboard {
        shared,
        sessions: Sessions::default(),
        cookie: format!("wasp_session_{port}"),
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        task_requests: Arc::new(Semaphore::new(MAX_TASK_REQUESTS)),
        recent_views: RecentViews::default(),
        shutdown: shutdown.clone(),
    });
    let app = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/api/login",
            post(login).layer(DefaultBodyLimit::max(LOGIN_BODY_BYTES)),
        )
        .route("/api/logout", post(logout))
        .route("/api/events", get(live::events))
        .route("/api/view", get(view))
        .route("/api/task/{id}", get(task))
        .route("/metrics", get(metrics))
        .with_state(dashboard);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    let listener = Bounded::new(listener);
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(cause = %err, "the dashboard's server stopped");
    }
}

/// A static asset, revalidated on every load (it changes with the binary).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Who is asking.
enum Caller {
    /// No token and no session.
    Anonymous,
    /// A session cookie naming no open session.
    SessionEnded,
    /// A token that matches no tenant (a wrong one, or a removed tenant's).
    Unknown,
    /// A tenant, whether it is an admin, and the token it showed.
    Tenant {
        tenant: Tenant,
        admin: bool,
        token: String,
    },
}

impl Dashboard {
    /// The session id the request's cookie names, if any.
    fn session_id<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, id)| id)
    }

    /// The caller: a bearer token first, else the session's.
    fn caller(&self, headers: &HeaderMap) -> Caller {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| token.trim().to_owned());
        let token = match (bearer, self.session_id(headers)) {
            (Some(token), _) => token,
            (None, Some(id)) => match self.sessions.token(id) {
                Some(token) => token,
                None => return Caller::SessionEnded,
            },
            (None, None) => return Caller::Anonymous,
        };
        self.caller_of(token)
    }

    /// The tenant `token` is, if any (checked again on every request and
    /// every update of a live page: a removed tenant's pages stop).
    fn caller_of(&self, token: String) -> Caller {
        match self.shared.tenants.tenant_of(&token) {
            Some((tenant, admin)) => Caller::Tenant {
                tenant,
                admin,
                token,
            },
            None => Caller::Unknown,
        }
    }

    /// The tenant asking, or the refusal that says what is missing.
    fn tenant(&self, headers: &HeaderMap) -> Result<(Tenant, bool, String), Response> {
        match self.caller(headers) {
            Caller::Tenant {
                tenant,
                admin,
                token,
            } => Ok((tenant, admin, token)),
            Caller::Anonymous => Err(refused(
                StatusCode::UNAUTHORIZED,
                "the dashboard needs a tenant's token: sign in on the page, or send the \
                 header `Authorization: Bearer TOKEN` (the token of its connection file)\n",
            )),
            Caller::SessionEnded => Err(refused(
                StatusCode::UNAUTHORIZED,
                "the session has ended (signed out, expired, or the controller restarted): \
                 sign in again\n",
            )),
            Caller::Unknown => Err(refused(
                StatusCode::UNAUTHORIZED,
                "invalid token: it matches no tenant of this controller\n",
            )),
        }
    }

    /// The view a viewer of `tenant` sees now, as JSON; `None` when the
    /// controller is stopping. Pages of one viewer share a view made less
    /// than [`VIEW_SHARED_FOR`] ago: ten admins' pages cost the hub what
    /// one does.
    async fn view_json(&self, tenant: Tenant, admin: bool) -> Option<Arc<str>> {
        let key = (tenant, admin);
        if let Some(json) = self.recent_views.fresh(&key) {
            return Some(json);
        }
        let (reply, json) = oneshot::channel();
        let event = Event::DashboardView {
            tenant: key.0.clone(),
            admin,
            reply,
        };
        self.shared.to_hub(event, 0).await;
        let json: Arc<str> = json.await.ok()?.into();
        self.recent_views.keep(key, json.clone());
        Some(json)
    }
}

/// A refusal: its status and why, in words (the token is never echoed).
fn refused(status: StatusCode, why: impl Into<String>) -> Response {
    let mut response = (status, why.into()).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"wasp\""),
        );
    }
    response
}

fn stopping() -> Response {
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "the controller is stopping\n",
    )
}

fn json(body: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}

/// The body `POST /api/login` takes.
#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

/// `POST /api/login`: a session for a tenant's token, in a cookie the
/// page's scripts cannot read (HttpOnly) and other sites cannot make the
/// browser send (SameSite=Strict).
async fn login(State(dash): State<Arc<Dashboard>>, body: Bytes) -> Response {
    let Ok(Login { token }) = serde_json::from_slice::<Login>(&body) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"token\": \"...\"}\n",
        );
    };
    let token = token.trim().to_owned();
    let Caller::Tenant { tenant, admin, .. } = dash.caller_of(token.clone()) else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "invalid token: it matches no tenant of this controller\n",
        );
    };
    let id = match dash.sessions.open(&token) {
        Ok(id) => id,
        Err(why) => return refused(StatusCode::INTERNAL_SERVER_ERROR, why),
    };
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        dash.cookie,
        sessions::IDLE.as_secs()
    );
    let body = serde_json::json!({ "tenant": tenant.0, "admin": admin }).to_string();
    let mut response = json(body);
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /api/logout`: ends the session and clears its cookie.
async fn logout(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if let Some(id) = dash.session_id(&headers) {
        dash.sessions.close(id);
    }
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        dash.cookie
    );
    let mut response = StatusCode::OK.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /api/view`: the dashboard's JSON for the caller's tenant.
async fn view(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let (tenant, admin, _) = match dash.tenant(&headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    match dash.view_json(tenant, admin).await {
        Some(body) => json(body.to_string()),
        None => stopping(),
    }
}

/// `GET /api/task/{id}`: a task's record (arguments, result, output) if
/// the caller may see it: its own, or any for an admin.
async fn task(
    State(dash): State<Arc<Dashboard>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (tenant, admin, _) = match dash.tenant(&headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal,
    };
    let task: TaskId = match id.parse() {
        Ok(task) => task,
        Err(why) => return refused(StatusCode::BAD_REQUEST, format!("{why}\n")),
    };
    let Ok(_permit) = dash.task_requests.clone().try_acquire_owned() else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the dashboard reads at most {MAX_TASK_REQUESTS} task records at once: \
                 try again\n"
            ),
        );
    };
    let (reply, record) = oneshot::channel();
    let event = Event::DashboardTask {
        tenant: tenant.clone(),
        admin,
        task,
        reply,
    };
    dash.shared.to_hub(event, 0).await;
    match record.await {
        Ok(Ok(Some(body))) => json(body),
        // Another tenant's task reads as one that does not exist: ids
        // reveal nothing across tenants.
        Ok(Ok(None)) => refused(
            StatusCode::NOT_FOUND,
            format!("tenant {tenant} has no task {task} in the records\n"),
        ),
        Ok(Err(why)) => refused(StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n")),
        Err(_) => stopping(),
    }
}

/// `GET /metrics`, for an admin: it shows every tenant's figures.
async fn metrics(State(dash): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let tenant = match dash.tenant(&headers) {
        Ok((tenant, true, _)) => tenant,
        Ok((tenant, false, _)) => {
            return refused(
                StatusCode::FORBIDDEN,
                format!("tenant {tenant} is not an admin: /metrics shows every tenant's figures\n"),
            );
        }
        Err(refusal) => return refusal,
    };
    let (reply, text) = oneshot::channel();
    dash.shared.to_hub(Event::Metrics { reply }, 0).await;
    tracing::trace!(%tenant, "metrics scraped");
    match text.await {
        Ok(text) => ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response(),
        Err(_) => stopping(),
    }
}
