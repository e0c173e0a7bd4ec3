//! `chatflow serve`: config and flows loaded (refusing to start on any error), the store opened,
//! what the last stop left (inbox entries, queued sends) picked up, the HTTP server, timers,
//! outbox and flow watcher (hot reload) run until SIGTERM or Ctrl-C, then shut down gracefully.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use chatflow::engine::{Engine, SystemClock};
use chatflow::flow;
use chatflow::handoff::HandoffWebhook;
use chatflow::outbox::OutboxSettings;
use chatflow::provider::Registry;
use chatflow::provider::http::HttpClient;
use chatflow::reload::Reloader;
use chatflow::server::{AdminAuth, AppState, app, tls};
use chatflow::store::SledStore;
use chatflow::store::Store;
use chatflow::telemetry::{self, LogFormat};

/// How often the watcher looks at the flow and script files; a change applies within about this
/// plus the settle time.
const WATCH_POLL: Duration = Duration::from_secs(1);

/// Runs the engine until a shutdown signal.
pub async fn serve(config: Option<&Path>, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let config = match crate::load_config(config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    telemetry::init(log_format, "info", config.secrets())?;
    if config.admin_token.is_none() && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "listening on {} without admin_token would open /api to the network; set admin_token in chatflow.yaml or listen on 127.0.0.1",
            config.listen
        );
    }
    let tls = config
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .context("cannot serve HTTPS")?;
    // Before the first load, so an edit made while it runs is still picked up.
    let reloader = Arc::new(Reloader::new(config.load_options()));
    let bot = match flow::load(&config.load_options()) {
        Ok(loaded) => {
            for warning in loaded.warnings.iter() {
                tracing::warn!(message = "Flow warning.", %warning);
            }
            loaded.bot
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            eprintln!(
                "chatflow did not start: fix the problems above (chatflow validate lists them)"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let registry = Arc::new(Registry::from_config(&config).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|(_, error)| error.to_string()).collect();
        anyhow::anyhow!("channels are misconfigured: {}", list.join("; "))
    })?);
    let http = HttpClient::new().context("cannot start the HTTP client")?;
    let store = SledStore::open(&config.data_dir)?;
    let settings = OutboxSettings {
        max_attempts: config.max_attempts,
        ..OutboxSettings::default()
    };
    let mut engine = Engine::new(bot, store, Arc::new(SystemClock)).with_channels(
        Arc::clone(&registry),
        http.clone(),
        settings,
    );
    if let Some(url) = &config.handoff_webhook {
        engine = engine.with_handoff_webhook(HandoffWebhook {
            url: url.clone(),
            http: http.clone(),
        });
    }
    let engine = Arc::new(engine);
    engine.recover().await?;
    chatflow::scheduler::resume_broadcasts(&engine).await?;
    engine.pull_pending(&http).await;
    let mut state = AppState::new(Arc::clone(&engine), registry.simulator_channels(), http)
        .with_reloader(Arc::clone(&reloader));
    state.body_limit = config.body_limit_bytes();
    let router = app(
        Arc::new(state),
        AdminAuth {
            token: config.admin_token.clone(),
        },
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using it?",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "chatflow listening on {scheme}://{address} (flows from {})",
        config.flows_dir.display()
    );

    let (stop, stopped) = watch::channel(false);
    let timers = tokio::spawn(Arc::clone(&engine).run_timers(wait_for(stopped.clone())));
    let sweeper = Arc::clone(&engine).run_sweeper(
        config.dedupe_window,
        config.log_retention,
        wait_for(stopped.clone()),
    );
    let sweeper = tokio::spawn(sweeper);
    let schedules = tokio::spawn(chatflow::scheduler::run_schedules(
        Arc::clone(&engine),
        wait_for(stopped.clone()),
    ));
    let watcher =
        tokio::spawn(reloader.watch(Arc::clone(&engine), WATCH_POLL, wait_for(stopped.clone())));
    let server = chatflow::server::serve(listener, tls, router, async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    server.await.context("the HTTP server failed")?;
    let _ = timers.await;
    let _ = sweeper.await;
    let _ = watcher.await;
    let _ = schedules.await;
    finish(&engine).await;
    tracing::info!("chatflow stopped");
    Ok(ExitCode::SUCCESS)
}

/// Graceful stop, after the server stopped accepting: the events accepted so far are handled,
/// the sends under way finish, and everything is flushed; whatever is left is picked up by the
/// next start.
async fn finish(engine: &Engine<SledStore>) {
    const GRACE: Duration = Duration::from_secs(10);
    if !engine.drain_inbox(GRACE).await {
        tracing::warn!("events still unhandled at shutdown; they are handled on the next start");
    }
    if let Some(outbox) = engine.outbox() {
        outbox.stop(GRACE).await;
    }
    if let Err(error) = engine.store().flush().await {
        tracing::error!(message = "Final flush failed.", %error);
    }
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
