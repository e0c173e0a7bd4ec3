//! The HTTP surface (DESIGN §5): webhooks, the simulator, contact views, the outbox, health and
//! metrics, `/api` behind the admin auth rule of DESIGN §4. `app()` builds the router so tests call it without a socket.

mod contacts;
mod error;
mod handoff;
mod media;
mod metrics;
mod outbox;
mod reload;
mod schedules;
mod simulator;
pub mod tls;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};

pub use error::{AnyJson, AppError};

use crate::engine::Engine;
use crate::provider::http::HttpClient;

/// Meta sends up to 3 MB; DESIGN §4's default.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;
use crate::store::Store;

/// What the handlers share.
pub struct AppState<S> {
    /// The engine.
    pub engine: Arc<Engine<S>>,
    /// Channels served by the built-in simulator provider.
    pub simulator_channels: Vec<String>,
    /// Numbers simulated message ids, which must be unique like a provider's.
    pub message_ids: crate::simulator::MessageIds,
    /// The client media is fetched with.
    pub http: HttpClient,
    /// Largest webhook body accepted.
    pub body_limit: usize,
    /// Reloads the flows on `POST /api/flows/reload`; `None` when the app was built without the
    /// files behind the bot (tests), and the route says so.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
}

impl<S> AppState<S> {
    /// State for `engine`, with the simulator serving `simulator_channels`.
    pub fn new(engine: Arc<Engine<S>>, simulator_channels: Vec<String>, http: HttpClient) -> Self {
        Self {
            engine,
            simulator_channels,
            message_ids: crate::simulator::MessageIds::new("sim"),
            http,
            body_limit: DEFAULT_BODY_LIMIT,
            reloader: None,
        }
    }

    /// The state with `POST /api/flows/reload` served by `reloader`.
    #[must_use]
    pub fn with_reloader(mut self, reloader: Arc<crate::reload::Reloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }
}

/// Who may call `/api/*`.
#[derive(Debug, Clone, Default)]
pub struct AdminAuth {
    /// `None`: open (only allowed when listening on loopback, checked at startup).
    pub token: Option<crate::provider::Secret>,
}

/// The router with every route.
pub fn app<S: Store>(state: Arc<AppState<S>>, auth: AdminAuth) -> Router {
    let api = Router::new()
        .route(
            "/api/simulator/messages",
            post(simulator::post_message::<S>),
        )
        .route(
            "/api/contacts/{channel}/{contact}",
            get(contacts::get_contact::<S>),
        )
        .route(
            "/api/contacts/{channel}/{contact}/messages",
            post(outbox::send::<S>),
        )
        .route(
            "/api/contacts/{channel}/{contact}/handoff",
            post(handoff::set::<S>),
        )
        .route(
            "/api/outbox",
            get(outbox::pending::<S>).delete(outbox::clear::<S>),
        )
        .route("/api/outbox/dead", get(outbox::dead::<S>))
        .route("/api/schedules", get(schedules::list::<S>))
        .route("/api/timers", get(schedules::timers::<S>))
        .route("/api/timers/{id}", delete(schedules::delete_timer::<S>))
        .route("/api/broadcast", post(schedules::start::<S>))
        .route("/api/outbox/dead/{id}/retry", post(outbox::retry::<S>))
        .route("/api/flows/reload", post(reload::reload::<S>))
        .route("/api/stats/flows", get(metrics::flows::<S>))
        .route(
            "/api/media/{channel}/{media_id}",
            get(media::get_media::<S>),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::new(auth),
            require_admin,
        ));
    let webhooks = Router::new()
        .route(
            "/webhooks/{channel}",
            post(webhooks::receive::<S>).get(webhooks::handshake::<S>),
        )
        .layer(DefaultBodyLimit::max(state.body_limit));
    Router::new()
        .route("/healthz", get(health::<S>))
        .route("/metrics", get(metrics::scrape::<S>))
        .merge(api)
        .merge(webhooks)
        .fallback(|| async { AppError::not_found("no such route; see DESIGN §5 for the routes") })
        .with_state(state)
}

/// Serves `router` on `listener` — over HTTPS when given a TLS `acceptor` — until `shutdown`
/// completes; then stops accepting and returns once the requests in flight are answered.
///
/// # Errors
/// The server failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match acceptor {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// `GET /healthz`: liveness; with `?detail=true` also asks each provider that has a health
/// check (e.g. Digiworld's status) whether the account works.
async fn health<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::Json<serde_json::Value> {
    if query.get("detail").is_none_or(|detail| detail != "true") {
        return axum::Json(serde_json::json!({"status": "ok"}));
    }
    let mut channels = serde_json::Map::new();
    for channel in state.engine.channels().all() {
        let Some(request) = channel.provider.health_request() else {
            continue;
        };
        let verdict = match state.http.execute(&request).await {
            Ok(response) => channel.provider.read_health(&response),
            Err(error) => Err(error.to_string()),
        };
        let shown = verdict.map_or_else(
            |error| serde_json::json!({"status": "failing", "error": error}),
            |()| serde_json::json!({"status": "ok"}),
        );
        channels.insert(channel.id.clone(), shown);
    }
    let healthy = channels.values().all(|c| c["status"] == "ok");
    axum::Json(
        serde_json::json!({"status": if healthy { "ok" } else { "degraded" }, "channels": channels}),
    )
}

/// The configured channel `id`, or 404.
fn channel<S: Store>(
    state: &AppState<S>,
    id: &str,
) -> Result<Arc<crate::provider::Channel>, AppError> {
    state.engine.channels().channel(id).cloned().ok_or_else(|| {
        AppError::not_found(format!(
            "no channel \"{id}\"; channels are configured in chatflow.yaml"
        ))
    })
}

async fn require_admin(
    State(auth): State<Arc<AdminAuth>>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    if let Some(token) = &auth.token {
        let given = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !token.matches(given.as_bytes()) {
            return Err(AppError::unauthorized());
        }
    }
    Ok(next.run(request).await)
}
