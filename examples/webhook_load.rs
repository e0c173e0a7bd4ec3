//! Webhook throughput on the durable path, all on 127.0.0.1: chatflow (sled on a temp dir, an
//! echo bot, a `generic` channel) takes `WEBHOOKS` webhooks from `CONCURRENCY` concurrent
//! clients and replies through the outbox to a local mock provider. Prints webhooks acknowledged
//! per second, replies delivered per second, and disk flushes per webhook — group commit is what
//! keeps that last figure well under the 2–3 flushes a webhook asks for (inbox, turn, send claim).
//!
//! ```sh
//! cargo run --release --example webhook_load            # 2000 webhooks, 32 clients
//! cargo run --release --example webhook_load -- 5000 64
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use chatflow::config::Config;
use chatflow::engine::{Engine, SystemClock};
use chatflow::outbox::OutboxSettings;
use chatflow::provider::Registry;
use chatflow::provider::http::HttpClient;
use chatflow::server::{AdminAuth, AppState, app};
use chatflow::store::SledStore;

/// The whole run gives up after this long.
const DEADLINE: Duration = Duration::from_secs(120);
/// Distinct contacts the webhooks come from.
const CONTACTS: usize = 200;

const ECHO_FLOW: &str = "flow: echo\ntriggers:\n  - event: text\nsteps:\n  reply:\n    send:\n      text: \"echo {{message.text}}\"\n";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let webhooks: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let concurrency: usize = args.next().map_or(Ok(32), |n| n.parse())?;
    let (provider, delivered) = mock_provider().await?;
    let dir = tempfile::tempdir()?;
    let (base, engine) = start_chatflow(dir.path(), &provider).await?;

    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(post_until_done(
                client.clone(),
                base.clone(),
                Arc::clone(&next),
                webhooks,
            ))
        })
        .collect();
    for client in clients {
        client.await??;
    }
    let acknowledged = started.elapsed();
    while delivered.load(Ordering::SeqCst) < webhooks {
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "replies did not all arrive within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let replied = started.elapsed();
    let flushes = engine.store().flush_count();
    println!("webhooks: {webhooks}, concurrent clients: {concurrency}, contacts: {CONTACTS}");
    println!(
        "acknowledged (durable in the inbox): {:.0}/s ({acknowledged:.2?})",
        per_second(webhooks, acknowledged)
    );
    println!(
        "replied (turn committed, reply accepted by the provider): {:.0}/s ({replied:.2?})",
        per_second(webhooks, replied)
    );
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let per_webhook = flushes as f64 / webhooks as f64;
    println!("disk flushes: {flushes} ({per_webhook:.2} per webhook)");
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// A provider that accepts every send and counts them.
async fn mock_provider() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let delivered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&delivered);
    let router = axum::Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({ "id": format!("out-{n}") }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((format!("http://{address}"), delivered))
}

/// chatflow serving the echo bot on a `generic` channel that sends to `provider`.
async fn start_chatflow(
    dir: &std::path::Path,
    provider: &str,
) -> anyhow::Result<(String, Arc<Engine<SledStore>>)> {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows)?;
    std::fs::write(flows.join("echo.yaml"), ECHO_FLOW)?;
    let config = format!(
        "data_dir: {data}\nflows_dir: {flows}\nsimulator: false\nchannels:\n  - id: load\n    provider: generic\n    rate_limit: 0\n    inbound: {{ from: /from, id: /id, text: /text }}\n    outbound:\n      url: \"{provider}/send\"\n      body: {{ to: \"{{{{to}}}}\", text: \"{{{{text}}}}\" }}\n      id_pointer: /id\n",
        data = dir.join("data").display(),
        flows = flows.display(),
    );
    let path = dir.join("chatflow.yaml");
    std::fs::write(&path, config)?;
    let config = Config::load(&path, &|_| None).map_err(|d| anyhow::anyhow!("{d}"))?;
    let bot = chatflow::flow::load(&config.load_options())
        .map_err(|d| anyhow::anyhow!("{d}"))?
        .bot;
    let registry = Arc::new(Registry::from_config(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let http = HttpClient::new().context("an HTTP client")?;
    let store = SledStore::open(&config.data_dir)?;
    let engine = Engine::new(bot, store, Arc::new(SystemClock)).with_channels(
        Arc::clone(&registry),
        http.clone(),
        OutboxSettings::default(),
    );
    let engine = Arc::new(engine);
    let state = AppState::new(Arc::clone(&engine), registry.simulator_channels(), http);
    let router = app(Arc::new(state), AdminAuth::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((format!("http://{address}"), engine))
}

/// Posts webhooks, taking the next number each time, until `total` were taken.
async fn post_until_done(
    client: reqwest::Client,
    base: String,
    next: Arc<AtomicUsize>,
    total: usize,
) -> anyhow::Result<()> {
    loop {
        let n = next.fetch_add(1, Ordering::SeqCst);
        if n >= total {
            return Ok(());
        }
        let body = json!({ "from": format!("1555{:06}", n % CONTACTS), "id": format!("in-{n}"), "text": format!("m{n}") });
        let response = client
            .post(format!("{base}/webhooks/load"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "webhook {n}: {}",
            response.status()
        );
    }
}
