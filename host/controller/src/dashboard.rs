//! The dashboard's HTTP server (`wasp controller --dashboard ADDR`, axum):
//! `/metrics`, the Prometheus text format of what the hub has counted and
//! holds (`state::observe`), and `/api/view`, what the dashboard shows a
//! viewer as JSON (`state::view`): every tenant's work for an admin, its
//! own for a tenant.
//!
//! Access takes a token in the `Authorization: Bearer TOKEN` header, never
//! in a URL (URLs end up in logs and browser histories), and `/metrics`
//! shows every tenant's figures, so it takes an admin tenant's token.
//! Prometheus sends one with `authorization: { credentials_file: ... }` in
//! its scrape config.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{oneshot, watch};

use crate::hub::Event;
use crate::listener::Shared;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/view", get(view))
        .with_state(shared);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(cause = %err, "the dashboard's server stopped");
    }
}

/// Who presented which token, if any.
enum Caller {
    /// No `Authorization: Bearer` header.
    Anonymous,
    /// A token that matches no tenant.
    Unknown,
    /// A tenant, and whether it is an admin.
    Tenant(String, bool),
}

fn caller(shared: &Shared, headers: &HeaderMap) -> Caller {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return Caller::Anonymous;
    };
    match shared.tenants.tenant_of(token.trim()) {
        Some((tenant, admin)) => Caller::Tenant(tenant.0, admin),
        None => Caller::Unknown,
    }
}

/// A refusal: its status and why, in words (the token is never echoed).
fn refused(status: StatusCode, why: String) -> Response {
    let mut response = (status, why).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"wasp\""),
        );
    }
    response
}

/// `GET /api/view`: the dashboard's JSON for the token's tenant.
async fn view(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let (tenant, admin) = match caller(&shared, &headers) {
        Caller::Anonymous => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "the dashboard needs a tenant's token: send the header \
                 `Authorization: Bearer TOKEN` (the token of its connection file)\n"
                    .into(),
            );
        }
        Caller::Unknown => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "invalid token: it matches no tenant of this controller\n".into(),
            );
        }
        Caller::Tenant(tenant, admin) => (tenant, admin),
    };
    let (reply, json) = oneshot::channel();
    let tenant = wasp_proto::Tenant(tenant);
    shared
        .to_hub(
            Event::DashboardView {
                tenant,
                admin,
                reply,
            },
            0,
        )
        .await;
    match json.await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(_) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the controller is stopping\n".into(),
        ),
    }
}

/// `GET /metrics`.
async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&shared, &headers) {
        Caller::Anonymous => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "/metrics needs an admin tenant's token: send the header \
                 `Authorization: Bearer TOKEN` (the token of the profile's \
                 security/wasp-client.json)\n"
                    .into(),
            );
        }
        Caller::Unknown => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "invalid token: it matches no tenant of this controller\n".into(),
            );
        }
        Caller::Tenant(tenant, false) => {
            return refused(
                StatusCode::FORBIDDEN,
                format!("tenant {tenant} is not an admin: /metrics shows every tenant's figures\n"),
            );
        }
        Caller::Tenant(_, true) => {}
    }
    let (reply, text) = oneshot::channel();
    shared.to_hub(Event::Metrics { reply }, 0).await;
    match text.await {
        Ok(text) => ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response(),
        Err(_) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the controller is stopping\n".into(),
        ),
    }
}
