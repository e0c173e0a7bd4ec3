//! Flows the engine starts by itself for many contacts: cron `schedule:` triggers and
//! `POST /api/broadcast` (DESIGN §6).
//!
//! A schedule's fire is recorded together with the broadcast it starts, in one durable write
//! that only succeeds once per due time — so a due time fires once across restarts. A broadcast
//! walks its audience in pages, starting the flow per contact with a dedupe key and storing its
//! place after each page, so a restart resumes it without starting anyone twice. It is paced
//! below the channel's `rate_limit`, leaving room for replies to contacts who write meanwhile.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::engine::{Engine, EngineError};
use crate::flow::bot::Scheduled;
use crate::outbox::TokenBucket;
use crate::store::{Audience, Broadcast, ContactKey, Store};

/// Contacts read per page of an audience.
const PAGE: usize = 200;
/// Share of a channel's `rate_limit` a broadcast may use; the rest stays free for replies.
const BROADCAST_SHARE: f64 = 0.8;
/// Due times looked at per schedule per round, within its catch-up window (a per-second
/// schedule with a day's catch-up is 86,400; each costs well under a microsecond).
const MAX_MISSED: usize = 1_000_000;

/// Why a broadcast was refused.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The flow does not exist.
    #[error("there is no flow \"{0}\"")]
    UnknownFlow(String),
    /// The channel does not exist.
    #[error("there is no channel \"{0}\"")]
    UnknownChannel(String),
    /// No channel was given and it is ambiguous.
    #[error("several channels are configured ({0}); say which with \"channel\"")]
    AmbiguousChannel(String),
    /// The store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Fires every schedule due at the engine's `now`; due times missed while it was down (or
/// stalled) fire once, as the latest of them, if that is within `catch_up`. Returns how many
/// broadcasts started. A schedule seen for the first time starts counting from now.
///
/// # Errors
/// The store failed; what was not recorded is considered again next round.
pub async fn fire_due_schedules<S: Store>(engine: &Arc<Engine<S>>) -> Result<usize, EngineError> {
    let bot = engine.bot();
    let now = engine.now();
    let fires = engine.store().schedule_fires().await?;
    let mut started = 0;
    for schedule in &bot.schedules {
        let Some(&last) = fires.get(&schedule.key) else {
            engine.store().skip_schedule(&schedule.key, now).await?;
            continue;
        };
        let last = skip_too_late(engine, schedule, last, now).await?;
        // Several due times since the last round (a stall, a restart) fire once, as the latest:
        // a contact gets one "daily digest", not a burst of them.
        if let Some(&due) = schedule.cron.due_between(last, now, MAX_MISSED).last() {
            let broadcast = Broadcast {
                id: format!("schedule:{}:{due}", schedule.key),
                flow: bot.flows[schedule.flow].id.clone(),
                audience: schedule.audience.clone(),
                channel: schedule.channel.clone(),
                cursor: None,
                started: 0,
                created_at: now,
            };
            if engine
                .store()
                .fire_schedule(&schedule.key, due, broadcast.clone())
                .await?
            {
                tracing::info!(message = "Schedule fired.", schedule = %schedule.key, due);
                tokio::spawn(run_broadcast(Arc::clone(engine), broadcast));
                started += 1;
            }
        }
    }
    Ok(started)
}

/// Skips (once, with a log line) the due times of `schedule` between `last` and the start of
/// its catch-up window; returns where to look from.
async fn skip_too_late<S: Store>(
    engine: &Engine<S>,
    schedule: &Scheduled,
    last: i64,
    now: i64,
) -> Result<i64, EngineError> {
    let floor = now - schedule.catch_up.as_secs_i64();
    if last >= floor {
        return Ok(last);
    }
    if let Some(first) = schedule.cron.due_between(last, floor, 1).first() {
        tracing::warn!(message = "Missed schedule times skipped: later than catch_up.", schedule = %schedule.key, first_missed = first, catch_up = %schedule.catch_up);
    }
    engine.store().skip_schedule(&schedule.key, floor).await?;
    Ok(floor)
}

/// Runs schedules until `shutdown`: fires what is due, then sleeps until the next due time of
/// any schedule (at most a minute, so reloaded flows are picked up).
pub async fn run_schedules<S: Store>(engine: Arc<Engine<S>>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = fire_due_schedules(&engine).await {
            tracing::error!(message = "Schedules could not fire; retrying.", %error);
        }
        let now = engine.now();
        let next = engine
            .bot()
            .schedules
            .iter()
            .filter_map(|schedule| schedule.cron.next_after(now))
            .min()
            .unwrap_or(now + 60)
            .min(now + 60);
        let wait = Duration::from_secs(u64::try_from(next - now).unwrap_or(0).max(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut shutdown => return,
        }
    }
}

/// Starts `flow` for `audience` on `channel` (the one non-simulator channel when `None`), in
/// the background; returns the broadcast as stored.
///
/// # Errors
/// The flow or channel does not exist, or the store failed.
pub async fn broadcast<S: Store>(
    engine: &Arc<Engine<S>>,
    flow: &str,
    audience: Audience,
    channel: Option<&str>,
) -> Result<Broadcast, BroadcastError> {
    if engine.bot().flow(flow).is_none() {
        return Err(BroadcastError::UnknownFlow(flow.to_owned()));
    }
    let channel = match channel {
        Some(channel) if engine.channels().channel(channel).is_some() => channel.to_owned(),
        Some(channel) => return Err(BroadcastError::UnknownChannel(channel.to_owned())),
        None => default_channel(engine)?,
    };
    let now = engine.now();
    let broadcast = Broadcast {
        id: format!("api:{now}:{}", fastrand::u32(..)),
        flow: flow.to_owned(),
        audience,
        channel,
        cursor: None,
        started: 0,
        created_at: now,
    };
    engine
        .store()
        .save_broadcast(&broadcast)
        .await
        .map_err(EngineError::from)?;
    tokio::spawn(run_broadcast(Arc::clone(engine), broadcast.clone()));
    Ok(broadcast)
}

/// The one non-simulator channel, else the simulator.
fn default_channel<S: Store>(engine: &Engine<S>) -> Result<String, BroadcastError> {
    let simulators = engine.channels().simulator_channels();
    let real: Vec<&str> = engine
        .channels()
        .all()
        .iter()
        .map(|channel| channel.id.as_str())
        .filter(|id| !simulators.iter().any(|s| s == id))
        .collect();
    match real.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Ok(simulators
            .first()
            .cloned()
            .unwrap_or_else(|| "simulator".to_owned())),
        several => Err(BroadcastError::AmbiguousChannel(several.join(", "))),
    }
}

/// Resumes the broadcasts a stop interrupted.
///
/// # Errors
/// The store could not be read.
pub async fn resume_broadcasts<S: Store>(engine: &Arc<Engine<S>>) -> Result<usize, EngineError> {
    let pending = engine.store().broadcasts().await?;
    let count = pending.len();
    for broadcast in pending {
        tracing::info!(message = "Resuming a broadcast.", id = %broadcast.id, started = broadcast.started);
        tokio::spawn(run_broadcast(Arc::clone(engine), broadcast));
    }
    Ok(count)
}

/// Works a broadcast through to the end, logging a store failure (it resumes on next start).
async fn run_broadcast<S: Store>(engine: Arc<Engine<S>>, broadcast: Broadcast) {
    let id = broadcast.id.clone();
    match work(&engine, broadcast).await {
        Ok(started) => tracing::info!(message = "Broadcast finished.", %id, started),
        Err(error) => {
            tracing::error!(message = "Broadcast interrupted; it resumes on the next start.", %id, %error);
        }
    }
}

/// Starts the flow for each contact of the audience after the broadcast's cursor, page by page.
async fn work<S: Store>(engine: &Engine<S>, mut broadcast: Broadcast) -> Result<u64, EngineError> {
    let pace = engine
        .channels()
        .channel(&broadcast.channel)
        .and_then(|channel| engine.broadcast_pace(&channel.id, || paced(channel.rate_limit)));
    loop {
        let page = page(engine, &broadcast).await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        let bot = engine.bot();
        let when = when_of(&bot.schedules, &broadcast.id);
        for id in page {
            if let Some(pace) = &pace {
                pace.acquire().await;
            }
            let contact = ContactKey::new(&broadcast.channel, &id);
            let key = format!("broadcast:{}:{id}", broadcast.id);
            if let Some(messages) = engine
                .start_flow(&contact, &broadcast.flow, when, key)
                .await?
            {
                broadcast.started += 1;
                // Every message after the first takes its own share of the rate.
                if let Some(pace) = &pace {
                    for _ in 1..messages {
                        pace.acquire().await;
                    }
                }
            }
        }
        broadcast.cursor = Some(last);
        engine.store().save_broadcast(&broadcast).await?;
    }
    engine.store().finish_broadcast(&broadcast.id).await?;
    Ok(broadcast.started)
}

/// The next contact ids of the audience after the cursor, in id order.
async fn page<S: Store>(
    engine: &Engine<S>,
    broadcast: &Broadcast,
) -> Result<Vec<String>, EngineError> {
    let after = broadcast.cursor.as_deref();
    match &broadcast.audience {
        Audience::Contacts(ids) => {
            let mut ids: Vec<&String> = ids
                .iter()
                .filter(|id| after.is_none_or(|after| id.as_str() > after))
                .collect();
            ids.sort();
            ids.dedup();
            Ok(ids.into_iter().take(PAGE).cloned().collect())
        }
        audience => {
            let mut after = after.map(str::to_owned);
            loop {
                let contacts = engine
                    .store()
                    .contacts_page(&broadcast.channel, after.as_deref(), PAGE)
                    .await?;
                let Some(last) = contacts.last().map(|c| c.id.clone()) else {
                    return Ok(Vec::new());
                };
                let chosen: Vec<String> = contacts
                    .into_iter()
                    .filter(|contact| match audience {
                        Audience::Tags(tags) => tags.iter().any(|tag| contact.tags.contains(tag)),
                        _ => true,
                    })
                    .map(|contact| contact.id)
                    .collect();
                if !chosen.is_empty() {
                    return Ok(chosen);
                }
                // A page with nobody in the audience: read on rather than end early.
                after = Some(last);
            }
        }
    }
}

/// The `when` of the schedule that fired this broadcast, if any.
fn when_of<'a>(schedules: &'a [Scheduled], broadcast_id: &str) -> Option<&'a crate::script::Expr> {
    let key = broadcast_id.strip_prefix("schedule:")?.rsplit_once(':')?.0;
    schedules
        .iter()
        .find(|schedule| schedule.key == key)?
        .when
        .as_ref()
}

/// A bucket at the broadcast's share of `rate_limit`; `None` when unlimited.
fn paced(rate_limit: u32) -> Option<TokenBucket> {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a share of a u32 rate"
    )]
    let share = (f64::from(rate_limit) * BROADCAST_SHARE).floor() as u32;
    TokenBucket::new(share.max(u32::from(rate_limit > 0)))
}

/// Each schedule with its next fire time, for `GET /api/schedules`.
pub async fn schedules_view<S: Store>(engine: &Engine<S>) -> Result<Value, EngineError> {
    let bot = engine.bot();
    let now = engine.now();
    let fires = engine.store().schedule_last_fired().await?;
    let list: Vec<Value> = bot
        .schedules
        .iter()
        .map(|schedule| {
            json!({
                "key": schedule.key,
                "flow": bot.flows[schedule.flow].id,
                "cron": schedule.expression,
                "timezone": schedule.timezone,
                "audience": schedule.audience,
                "channel": schedule.channel,
                "catch_up": schedule.catch_up.to_string(),
                "last_fire": fires.get(&schedule.key),
                "next_fire": schedule.cron.next_after(now),
            })
        })
        .collect();
    Ok(json!({ "schedules": list }))
}
