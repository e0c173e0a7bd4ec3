//! Hot reload (DESIGN §10): flows and scripts are loaded again while the engine runs — when an
//! operator calls `POST /api/flows/reload`, or when a watcher sees the files change — and the new
//! bot is swapped in only when everything loads cleanly, so a broken edit keeps the last good
//! flows answering and the log says why.
//!
//! The watcher polls (path, modified time, length) of every file instead of subscribing to
//! inotify or another OS notification API: notifications do not cross Docker bind mounts from
//! macOS or Windows hosts, nor network filesystems (NFS, SMB), which is where bots are often
//! edited, and polling needs no extra crate. A bot has a few dozen files, so a stat of each per
//! poll costs nothing worth measuring.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::diagnostic::Diagnostics;
use crate::engine::Engine;
use crate::flow::{self, LoadOptions};
use crate::store::Store;

/// How long the files must stay unchanged before the watcher reloads, unless set otherwise:
/// long enough for an editor saving several files, short enough to feel immediate.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(250);

/// Settle rounds after which the watcher reloads anyway, so a file that never stops changing
/// cannot hold back every other edit.
const MAX_SETTLE_ROUNDS: u32 = 40;

/// How deep the watcher looks into subdirectories; a bound, because a symlink pointing at its
/// own parent would otherwise be followed forever.
const MAX_DEPTH: usize = 8;

/// Loads the bot again from the files it was first loaded from, and swaps it into the engine.
#[derive(Debug)]
pub struct Reloader {
    options: LoadOptions,
    /// `flows_dir` and `scripts_dir`, what the watcher looks at.
    watched: [PathBuf; 2],
    settle: Duration,
    /// Held for a whole reload, so two (the watcher's and an operator's) never interleave and an
    /// older load can never replace a newer one.
    reloading: Mutex<()>,
    /// The files as the last reload (or the start) saw them; the watcher compares against it.
    last: Mutex<Snapshot>,
}

/// What a reload that applied brought in.
#[derive(Debug)]
pub struct Reloaded {
    /// Flows now running.
    pub flows: usize,
    /// Problems that did not stop the load, for the operator to look at.
    pub warnings: Diagnostics,
}

/// Why a reload did not apply; the previous bot keeps running in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The files have errors; every problem found, as `path:line:col: message` lines.
    #[error("the flows have problems; the previous flows keep running")]
    Invalid(#[source] Diagnostics),
    /// Loading crashed (a bug in chatflow, not in the files); the panic is in the log.
    #[error("loading the flows failed unexpectedly; the previous flows keep running")]
    Crashed(#[source] tokio::task::JoinError),
}

impl Reloader {
    /// A reloader for the files `options` name. Call it before the first load: the files are
    /// noted now, so an edit made while that load runs is still seen by the watcher.
    #[must_use]
    pub fn new(options: LoadOptions) -> Self {
        let watched = [options.flows_dir.clone(), options.scripts_dir.clone()];
        Self {
            last: Mutex::new(Snapshot::take(&watched)),
            watched,
            options,
            settle: DEFAULT_SETTLE,
            reloading: Mutex::new(()),
        }
    }

    /// How long the watcher waits for the files to stop changing before it reloads.
    #[must_use]
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Loads every flow and script now; on success `engine` runs the new bot from its next turn,
    /// on failure it keeps the one it has. Either way the outcome is logged, since a reload the
    /// watcher started has nobody else to tell.
    ///
    /// This reads files and compiles: from async code use [`Self::reload_async`].
    ///
    /// # Errors
    /// Every problem found, when at least one is an error.
    pub fn reload<S: Store>(&self, engine: &Engine<S>) -> Result<Reloaded, Diagnostics> {
        let _one_at_a_time = lock(&self.reloading);
        let seen = Snapshot::take(&self.watched);
        let result = flow::load(&self.options);
        *lock(&self.last) = seen;
        let loaded = result.inspect_err(log_rejected)?;
        let reloaded = Reloaded {
            flows: loaded.bot.flows.len(),
            warnings: loaded.warnings,
        };
        engine.replace_bot(loaded.bot);
        log_applied(&reloaded);
        Ok(reloaded)
    }

    /// [`Self::reload`] on the blocking pool, so slow disks or network filesystems and a long
    /// compile never stall the tasks answering messages.
    ///
    /// # Errors
    /// The files have errors, or loading crashed.
    pub async fn reload_async<S: Store>(
        self: Arc<Self>,
        engine: Arc<Engine<S>>,
    ) -> Result<Reloaded, ReloadError> {
        tokio::task::spawn_blocking(move || self.reload(&engine))
            .await
            .map_err(ReloadError::Crashed)?
            .map_err(ReloadError::Invalid)
    }

    /// Reloads whenever the files under `flows_dir` and `scripts_dir` change, until `shutdown`
    /// resolves: looks every `poll`, and once a change is seen waits until the files stay the
    /// same for the settle time (an editor saving several files, a file written in pieces), then
    /// reloads once. A reload that failed is not tried again until the files change again.
    pub async fn watch<S: Store>(
        self: Arc<Self>,
        engine: Arc<Engine<S>>,
        poll: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::select! {
            () = shutdown => {}
            () = self.follow(engine, poll) => {}
        }
    }

    /// The watcher's loop; never ends by itself.
    async fn follow<S: Store>(self: Arc<Self>, engine: Arc<Engine<S>>, poll: Duration) {
        loop {
            tokio::time::sleep(poll).await;
            let Some(current) = self.snapshot().await else {
                continue;
            };
            if current == *lock(&self.last) {
                continue;
            }
            self.settled(current).await;
            // The outcome is logged by `reload`; a crash is logged here.
            if let Err(ReloadError::Crashed(error)) =
                Arc::clone(&self).reload_async(Arc::clone(&engine)).await
            {
                tracing::error!(message = "Reloading the flows crashed; the previous flows keep running.", %error);
            }
        }
    }

    /// Returns once two snapshots a settle time apart are equal (or after the last round).
    async fn settled(&self, mut seen: Snapshot) {
        for _ in 0..MAX_SETTLE_ROUNDS {
            tokio::time::sleep(self.settle).await;
            match self.snapshot().await {
                Some(now) if now == seen => return,
                Some(now) => seen = now,
                None => {}
            }
        }
    }

    /// The files now, read on the blocking pool (a stat over NFS can hang); `None` if that
    /// crashed.
    async fn snapshot(&self) -> Option<Snapshot> {
        let watched = self.watched.clone();
        tokio::task::spawn_blocking(move || Snapshot::take(&watched))
            .await
            .ok()
    }
}

/// Every file's modification time and length, by path: what tells the watcher a file changed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Snapshot(BTreeMap<PathBuf, (Option<SystemTime>, u64)>);

impl Snapshot {
    /// The files under `dirs`, recursively; a missing or unreadable directory adds nothing.
    fn take(dirs: &[PathBuf]) -> Self {
        let mut files = BTreeMap::new();
        for dir in dirs {
            walk(dir, MAX_DEPTH, &mut files);
        }
        Self(files)
    }
}

/// Adds the files under `dir` to `files`, following symlinks (Kubernetes mounts ConfigMaps as
/// symlinks into a directory it swaps) down to `depth` more levels.
fn walk(dir: &Path, depth: usize, files: &mut BTreeMap<PathBuf, (Option<SystemTime>, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        // A dangling symlink (or a file deleted meanwhile) is skipped, as the loader skips it.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if depth > 0 {
                walk(&path, depth - 1, files);
            }
        } else {
            files.insert(path, (metadata.modified().ok(), metadata.len()));
        }
    }
}

/// The lock even if a reload panicked while holding it: what it guards stays consistent (a
/// snapshot is replaced whole), and hot reload must keep working after one bad load.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn log_applied(reloaded: &Reloaded) {
    tracing::info!(
        message = "Flows reloaded.",
        flows = reloaded.flows,
        warnings = reloaded.warnings.0.len()
    );
    for warning in reloaded.warnings.iter() {
        tracing::warn!(message = "Flow warning.", %warning);
    }
}

fn log_rejected(diagnostics: &Diagnostics) {
    tracing::warn!(
        message = "Reload rejected; the previous flows keep running.",
        problems = diagnostics.0.len()
    );
    for problem in diagnostics.iter() {
        tracing::warn!(message = "Flow problem.", %problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_an_empty_snapshot() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let snapshot = Snapshot::take(&[dir.path().join("not_there")]);
        assert_eq!(snapshot, Snapshot::default());
    }

    #[test]
    fn a_file_in_a_subdirectory_counts() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let nested = dir.path().join("lib").join("tax.rhai");
        std::fs::create_dir_all(dir.path().join("lib")).expect("a subdirectory");
        std::fs::write(&nested, "1").expect("written");
        let before = Snapshot::take(&[dir.path().to_path_buf()]);
        std::fs::write(&nested, "1 + 1").expect("written");
        let after = Snapshot::take(&[dir.path().to_path_buf()]);
        assert!(before.0.contains_key(&nested));
        assert_ne!(before, after, "an edit deep in scripts_dir is a change");
    }
}
