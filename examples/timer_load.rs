//! Timer load, all in process on a temp dir: `CONTACTS` × `PER_CONTACT` pending reminders in
//! sled (one turn per contact setting its timers, `CONCURRENCY` at a time, due over the next
//! 24 h), then `FIRE_RATE` timers a second coming due for `FIRE_SECONDS` seconds, fired by the
//! engine's own timer loop (`Engine::run_timers`, system clock) through a one-text `reminder`
//! flow while the others stay pending. Prints inserts per second, the data dir on disk, the
//! process RSS, and fire lateness (p50, p99, max) and fires per second.
//!
//! Lateness is the wall-clock time a timer left the store (its fire turn's transaction applied;
//! the turn's flush follows) minus its due time, which is in Unix seconds, so the start of its
//! due second. A watcher task reads the first due timer every millisecond: the engine fires in
//! the store's (due, id) order, so every timer before that one has fired.
//!
//! ```sh
//! cargo run --release --example timer_load                         # 100000 × 10, 1000/s for 20 s
//! # CONTACTS PER_CONTACT FIRE_RATE FIRE_SECONDS CONCURRENCY:
//! cargo run --release --example timer_load -- 10000 10 1000 5 32   # a quick run (about 15 s)
//! ```

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use chatflow::engine::{Engine, SystemClock};
use chatflow::flow::{ContactState, LoadOptions, TimerRequest};
use chatflow::store::{SledStore, Store, TurnCommit};

/// The channel every contact is on (no provider: replies only go to the transcript).
const CHANNEL: &str = "simulator";
/// The pending reminders are due from this long after the start, so none fires during the run
/// (the fire phase's slice comes before it).
const QUIET: i64 = 600;
const DAY: i64 = 24 * 3600;
/// Either phase gives up after this long.
const PHASE_DEADLINE: Duration = Duration::from_secs(240);

const REMINDER_FLOW: &str = "flow: reminder\nsteps:\n  remind:\n    send:\n      text: \"Your appointment is tomorrow at 10:00.\"\n";

#[derive(Debug, Clone, Copy)]
struct Settings {
    contacts: usize,
    per_contact: usize,
    fire_rate: usize,
    fire_seconds: usize,
    concurrency: usize,
}

impl Settings {
    fn from_args() -> anyhow::Result<Self> {
        let mut args = std::env::args().skip(1);
        let mut next = |default: usize| -> anyhow::Result<usize> {
            args.next().map_or(Ok(default), |n| {
                n.parse().context("counts are whole numbers")
            })
        };
        Ok(Self {
            contacts: next(100_000)?,
            per_contact: next(10)?,
            fire_rate: next(1_000)?,
            fire_seconds: next(20)?,
            concurrency: next(32)?,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_args()?;
    let dir = tempfile::tempdir()?;
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows)?;
    std::fs::write(flows.join("reminder.yaml"), REMINDER_FLOW)?;
    let options = LoadOptions {
        flows_dir: flows,
        scripts_dir: dir.path().join("scripts"),
        ..LoadOptions::default()
    };
    let bot = chatflow::flow::load(&options)
        .map_err(|d| anyhow::anyhow!("{d}"))?
        .bot;
    let data = dir.path().join("data");
    let store = SledStore::open(&data)?;
    let engine = Arc::new(Engine::new(bot, store, Arc::new(SystemClock)));

    let rss_before = rss_kib()?;
    let start = engine.now();
    let total = settings.contacts * settings.per_contact;
    println!(
        "insert: {total} timers for {} contacts ({} each), {} concurrent turns",
        settings.contacts, settings.per_contact, settings.concurrency
    );
    let per_contact = settings.per_contact;
    let took = insert(&engine, settings.contacts, settings.concurrency, move |n| {
        let mut rng = fastrand::Rng::with_seed(n as u64);
        let dues = (0..per_contact)
            .map(|_| start + QUIET + rng.i64(0..DAY - QUIET))
            .collect();
        (format!("62811{n:07}"), dues)
    })
    .await?;
    let insert_rate = per_second(total, took);
    println!(
        "  {insert_rate:.0} timers/s, {:.0} turns/s ({took:.2?}); {} disk flushes",
        per_second(settings.contacts, took),
        engine.store().flush_count()
    );
    let (allocated, apparent) = disk_usage(&data)?;
    println!(
        "  data dir: {:.0} MiB on disk ({:.0} MiB apparent)",
        mib(allocated),
        mib(apparent)
    );
    let rss_after = rss_kib()?;
    println!(
        "  RSS: {:.0} MiB before, {:.0} MiB after",
        kib_to_mib(rss_before),
        kib_to_mib(rss_after)
    );

    fire(&engine, settings, insert_rate).await?;
    println!(
        "  RSS after firing: {:.0} MiB (peak {:.0} MiB)",
        kib_to_mib(rss_kib()?),
        kib_to_mib(status_kib("VmHWM:")?)
    );
    Ok(())
}

/// Inserts the fire phase's timers (due `fire_rate` a second from a little ahead), runs the
/// engine's timer loop until they all fired, and prints their lateness.
async fn fire(
    engine: &Arc<Engine<SledStore>>,
    settings: Settings,
    insert_rate: f64,
) -> anyhow::Result<()> {
    let Settings {
        fire_rate,
        fire_seconds,
        ..
    } = settings;
    let total = fire_rate * fire_seconds;
    // Each due second's timers belong to distinct contacts; each contact has a timer every
    // other second.
    let contacts = (2 * fire_rate).min(total).max(1);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a few seconds"
    )]
    let lead = (total as f64 / insert_rate * 2.0).ceil() as i64 + 3;
    let first_due = engine.now() + lead;
    let rate = fire_rate.max(1);
    insert(engine, contacts, settings.concurrency, move |c| {
        #[allow(clippy::cast_possible_wrap, reason = "seconds of the run")]
        let dues = (c..total)
            .step_by(contacts)
            .map(|k| first_due + (k / rate) as i64)
            .collect();
        (format!("62899{c:07}"), dues)
    })
    .await?;
    println!(
        "fire: {total} timers due {fire_rate}/s for {fire_seconds} s ({contacts} contacts), \
         {} others pending; Engine::run_timers on the system clock",
        settings.contacts * settings.per_contact
    );

    let keys = fire_keys(engine, first_due + i64::try_from(fire_seconds)?, total).await?;
    anyhow::ensure!(
        wall_ms() < ms(first_due),
        "the fire phase's timers were not all inserted before the first was due"
    );
    let flushes_before = engine.store().flush_count();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timers = tokio::spawn(Arc::clone(engine).run_timers(async {
        let _ = stopped.await;
    }));
    let fired = watch(engine, &keys).await;
    let _ = stop.send(());
    timers.await?;
    let fired = fired?;
    let flushes = engine.store().flush_count() - flushes_before;
    report(&keys, &fired, first_due);
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let per_fire = flushes as f64 / total as f64;
    println!("  disk flushes: {flushes} ({per_fire:.2} per fire)");
    let started = Instant::now();
    let due = engine.store().due_timers(engine.now(), 256).await?;
    let scan = started.elapsed();
    let started = Instant::now();
    let next = engine.store().next_due().await?;
    println!(
        "  with the {} pending: due_timers(now, 256) {scan:.2?} ({} due), next_due {:.2?} ({})",
        settings.contacts * settings.per_contact,
        due.len(),
        started.elapsed(),
        next.map_or_else(
            || "none".to_owned(),
            |due| format!("in {} s", due - engine.now())
        )
    );
    Ok(())
}

/// The keys (due, id) of the fire phase's timers, which are all timers due by `last_due`, in
/// the store's order (the order the engine fires them in).
async fn fire_keys(
    engine: &Engine<SledStore>,
    last_due: i64,
    total: usize,
) -> anyhow::Result<Vec<(i64, u64)>> {
    let timers = engine.store().due_timers(last_due, total + 1).await?;
    anyhow::ensure!(
        timers.len() == total,
        "{} timers due by the end of the fire phase, not {total}",
        timers.len()
    );
    let keys: Vec<(i64, u64)> = timers.iter().map(|t| (t.timer.due(), t.id)).collect();
    anyhow::ensure!(keys.is_sorted(), "due_timers is not in (due, id) order");
    Ok(keys)
}

/// When each of `keys` left the store (wall-clock ms), watched by reading the first due timer
/// every millisecond: the engine fires in key order, so every key before the first one still
/// due is fired, and when none is due every key due by now is.
async fn watch(engine: &Engine<SledStore>, keys: &[(i64, u64)]) -> anyhow::Result<Vec<f64>> {
    let mut fired = Vec::with_capacity(keys.len());
    let deadline = Instant::now() + PHASE_DEADLINE;
    while fired.len() < keys.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {} timers fired within {PHASE_DEADLINE:?}",
            fired.len(),
            keys.len()
        );
        let now = engine.now();
        let first = engine.store().due_timers(now, 1).await?;
        let at = wall_ms();
        let gone = match first.first() {
            Some(timer) => keys.partition_point(|&key| key < (timer.timer.due(), timer.id)),
            None => keys.partition_point(|&(due, _)| due <= now),
        };
        fired.resize(gone.max(fired.len()), at);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(fired)
}

/// Prints lateness (fired − due) over all timers and over the first of each due second (when
/// the loop woke up for it), and the fire rate.
fn report(keys: &[(i64, u64)], fired: &[f64], first_due: i64) {
    let mut lateness: Vec<f64> = keys
        .iter()
        .zip(fired)
        .map(|(&(due, _), &at)| at - ms(due))
        .collect();
    let mut wake: Vec<f64> = keys
        .iter()
        .zip(&lateness)
        .enumerate()
        .filter(|&(i, _)| i == 0 || keys[i - 1].0 != keys[i].0)
        .map(|(_, (_, &late))| late)
        .collect();
    let last = fired.iter().copied().fold(f64::MIN, f64::max);
    let window = (last - ms(first_due)) / 1000.0;
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = fired.len() as f64 / window;
    lateness.sort_by(f64::total_cmp);
    wake.sort_by(f64::total_cmp);
    println!(
        "  lateness (left the store − due second): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&lateness, 0.50),
        percentile(&lateness, 0.99),
        percentile(&lateness, 1.0)
    );
    println!(
        "  first timer of each due second (the loop waking): p50 {:.0} ms, max {:.0} ms",
        percentile(&wake, 0.50),
        percentile(&wake, 1.0)
    );
    println!("  {rate:.0} fires/s (first due → last fired: {window:.2} s)");
}

/// Commits one turn per contact `0..contacts`, `concurrency` at a time, each setting the timers
/// `plan` gives it (contact id, due times); returns how long it took.
async fn insert<F>(
    engine: &Arc<Engine<SledStore>>,
    contacts: usize,
    concurrency: usize,
    plan: F,
) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> (String, Vec<i64>) + Send + Sync + 'static,
{
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (engine, plan, next) = (Arc::clone(engine), Arc::clone(&plan), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= contacts {
                        return Ok::<_, anyhow::Error>(());
                    }
                    anyhow::ensure!(
                        started.elapsed() < PHASE_DEADLINE,
                        "inserting took over {PHASE_DEADLINE:?}"
                    );
                    let (id, dues) = plan(n);
                    let mut commit =
                        TurnCommit::state_only(ContactState::new(CHANNEL, &id), engine.now());
                    commit.timers = dues
                        .into_iter()
                        .map(|due| TimerRequest::StartFlow {
                            flow: "reminder".to_owned(),
                            due,
                        })
                        .collect();
                    engine.store().commit_turn(commit).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into the slice"
    )]
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// Wall-clock Unix milliseconds, the clock `SystemClock` reads.
fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0)
}

/// Unix seconds as milliseconds.
#[allow(clippy::cast_precision_loss, reason = "Unix seconds fit in 2^52")]
fn ms(seconds: i64) -> f64 {
    seconds as f64 * 1000.0
}

/// The process's resident set, in KiB.
fn rss_kib() -> anyhow::Result<u64> {
    status_kib("VmRSS:")
}

/// A `kB` line of /proc/self/status.
fn status_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no such field in /proc/self/status")?
        .parse()
        .context("a number of kB")
}

/// Bytes allocated on disk and apparent size of every file under `dir`.
fn disk_usage(dir: &Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut totals = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            let (allocated, apparent) = disk_usage(&entry.path())?;
            totals.0 += allocated;
            totals.1 += apparent;
        } else {
            totals.0 += metadata.blocks() * 512;
            totals.1 += metadata.len();
        }
    }
    Ok(totals)
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}
