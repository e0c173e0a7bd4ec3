//! The embedded default store: one sled database in the data directory.
//!
//! Records are JSON under byte keys chosen so that sled's ordered scans answer every query
//! without loading more than they return:
//!
//! - `contacts`: `channel 0x00 id` → [`ContactState`]
//! - `log`: `channel 0x00 id 0x00 seq` → [`LogEntry`], so a contact's transcript is one prefix
//! - `timers`: `due id` → [`StoredTimer`], due with its sign bit flipped so that negative times
//!   sort first and the earliest timer is the first key
//! - `timer_ids`: `id` → its `timers` key, so a timer can be removed knowing only its id
//!
//! Numbers in keys are 8 big-endian bytes, so byte order is numeric order. A turn is one sled
//! transaction over all four trees followed by a flush, so it is atomic and on disk before
//! [`Store::commit_turn`] returns; concurrent turns share a flush.

use std::io;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};

use crate::flow::runtime::TimerRequest;
use crate::flow::state::ContactState;

use super::{
    ContactKey, LogEntry, NewLogEntry, Store, StoreError, StoredTimer, Swept, TurnCommit,
    Unrecognized,
};

/// Flipping the sign bit maps `i64` order onto unsigned byte order.
const SIGN_BIT: u64 = 1 << 63;

/// Conversation state, message log and timers in a sled database on disk.
///
/// Its methods must run inside a tokio runtime: flushes wait on tokio's blocking pool.
#[derive(Debug)]
pub struct SledStore {
    db: Db,
    contacts: Tree,
    log: Tree,
    timers: Tree,
    timer_ids: Tree,
    unrecognized: Tree,
    seen: Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`; fails with a message naming the directory when
    /// another process holds it, since sled allows one process per directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::open(dir).map_err(|error| open_error(dir, error))?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|error| {
                backend(
                    &format!("cannot open tree {name} in {}", dir.display()),
                    &error,
                )
            })
        };
        Ok(Self {
            contacts: tree("contacts")?,
            log: tree("log")?,
            timers: tree("timers")?,
            timer_ids: tree("timer_ids")?,
            unrecognized: tree("unrecognized")?,
            seen: tree("seen")?,
            db,
        })
    }

    /// A new id, monotonic across restarts (sled persists the counter ahead of use).
    fn generate_id(&self) -> Result<u64, StoreError> {
        self.db
            .generate_id()
            .map_err(|error| backend("cannot allocate an id", &error))
    }

    /// Serializes the turn and allocates its ids outside the transaction, which sled may retry.
    fn prepare(&self, commit: TurnCommit) -> Result<PreparedTurn, StoreError> {
        let contact = commit.contact();
        Ok(PreparedTurn {
            contact_key: contact_key(&contact),
            state: encode(&commit.state)?,
            log: self.prepare_log(&contact, commit.log)?,
            timers: self.prepare_timers(&contact, commit.timers)?,
            fired_timer: commit.fired_timer,
            dedupe_key: commit.dedupe_key,
            seen_at: commit.committed_at,
        })
    }

    fn prepare_log(
        &self,
        contact: &ContactKey,
        entries: Vec<NewLogEntry>,
    ) -> Result<Vec<Record>, StoreError> {
        let record = |entry: NewLogEntry| {
            let seq = self.generate_id()?;
            let entry = LogEntry {
                seq,
                at: entry.at,
                direction: entry.direction,
                message: entry.message,
            };
            Ok((seq, log_key(contact, seq), encode(&entry)?))
        };
        entries.into_iter().map(record).collect()
    }

    fn prepare_timers(
        &self,
        contact: &ContactKey,
        timers: Vec<TimerRequest>,
    ) -> Result<Vec<Record>, StoreError> {
        let record = |timer: TimerRequest| {
            let id = self.generate_id()?;
            let key = timer_key(timer.due(), id);
            let stored = StoredTimer {
                id,
                contact: contact.clone(),
                timer,
            };
            Ok((id, key, encode(&stored)?))
        };
        timers.into_iter().map(record).collect()
    }

    /// Writes a prepared turn to all four trees at once.
    fn apply(&self, turn: &PreparedTurn) -> Result<(), StoreError> {
        let trees = (
            &self.contacts,
            &self.log,
            &self.timers,
            &self.timer_ids,
            &self.seen,
        );
        let result = trees.transaction(|(contacts, log, timers, timer_ids, seen)| {
            if let Some(key) = &turn.dedupe_key {
                seen.insert(key.as_bytes(), &turn.seen_at.to_be_bytes())?;
            }
            if let Some(id) = turn.fired_timer {
                remove_timer(timers, timer_ids, id)?;
            }
            for (id, key, value) in &turn.timers {
                timers.insert(key.as_slice(), value.as_slice())?;
                timer_ids.insert(&id.to_be_bytes(), key.as_slice())?;
            }
            for (_, key, value) in &turn.log {
                log.insert(key.as_slice(), value.as_slice())?;
            }
            contacts.insert(turn.contact_key.as_slice(), turn.state.as_slice())?;
            Ok::<_, ConflictableTransactionError>(())
        });
        result.map_err(|error| transaction_error("cannot commit the turn", error))
    }

    /// Waits until everything written so far is on disk.
    ///
    /// Not `flush_async`: in sled 0.34 it runs on sled's own I/O pool, and concurrent calls can
    /// occupy every thread that pool needs to write the log, deadlocking (spacejam/sled#1308).
    /// A blocking flush on tokio's blocking pool leaves sled's pool free; concurrent flushes
    /// still share one fsync.
    async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        let flushed = tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|error| StoreError::Backend(format!("disk flush did not finish: {error}")))?;
        flushed
            .map(drop)
            .map_err(|error| backend("cannot write to disk", &error))
    }
}

impl Store for SledStore {
    async fn load_contact(&self, contact: &ContactKey) -> Result<Option<ContactState>, StoreError> {
        let value = self
            .contacts
            .get(contact_key(contact))
            .map_err(|error| backend("cannot read a contact", &error))?;
        value
            .map(|value| {
                decode(&value, || {
                    format!("contacts/{}/{}", contact.channel, contact.id)
                })
            })
            .transpose()
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Vec<u64>, StoreError> {
        let turn = self.prepare(commit)?;
        self.apply(&turn)?;
        self.flush().await?;
        Ok(turn.log.iter().map(|&(seq, ..)| seq).collect())
    }

    async fn transcript(
        &self,
        contact: &ContactKey,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let newest_first = self.log.scan_prefix(log_prefix(contact)).rev().take(limit);
        let mut entries = newest_first
            .map(|item| {
                let (key, value) =
                    item.map_err(|error| backend("cannot read the message log", &error))?;
                decode(&value, || log_name(contact, &key))
            })
            .collect::<Result<Vec<LogEntry>, _>>()?;
        entries.reverse();
        Ok(entries)
    }

    async fn due_timers(&self, now: i64, limit: usize) -> Result<Vec<StoredTimer>, StoreError> {
        let due = self.timers.range(..=timer_key(now, u64::MAX)).take(limit);
        due.map(|item| {
            let (key, value) = item.map_err(|error| backend("cannot read timers", &error))?;
            decode(&value, || timer_name(&key))
        })
        .collect()
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let first = self
            .timers
            .first()
            .map_err(|error| backend("cannot read timers", &error))?;
        let Some((key, _)) = first else {
            return Ok(None);
        };
        let (due, _) = decode_timer_key(&key).ok_or_else(|| StoreError::Corrupt {
            key: timer_name(&key),
            reason: "a timer key is 16 bytes".to_owned(),
        })?;
        Ok(Some(due))
    }

    async fn seen(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        self.seen
            .contains_key(dedupe_key.as_bytes())
            .map_err(|error| backend("cannot read the dedupe list", &error))
    }

    async fn sweep(&self, seen_before: i64, log_before: i64) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        for item in &self.seen {
            let (key, at) = item.map_err(|error| backend("cannot read the dedupe list", &error))?;
            let at = at.as_ref().try_into().map_or(i64::MAX, i64::from_be_bytes);
            if at < seen_before {
                self.seen
                    .remove(key)
                    .map_err(|error| backend("cannot sweep the dedupe list", &error))?;
                swept.dedupe_keys += 1;
            }
        }
        for item in &self.log {
            let (key, value) =
                item.map_err(|error| backend("cannot read the message log", &error))?;
            let entry: LogEntry = decode(&value, || format!("log/{}", hex::encode(&key)))?;
            if entry.at < log_before {
                self.log
                    .remove(key)
                    .map_err(|error| backend("cannot sweep the message log", &error))?;
                swept.log_entries += 1;
            }
        }
        self.flush().await?;
        Ok(swept)
    }

    async fn drop_timer(&self, id: u64) -> Result<(), StoreError> {
        let trees = (&self.timers, &self.timer_ids);
        let result = trees.transaction(|(timers, timer_ids)| {
            remove_timer(timers, timer_ids, id)?;
            Ok::<_, ConflictableTransactionError>(())
        });
        result.map_err(|error| transaction_error("cannot drop a timer", error))?;
        self.flush().await
    }

    async fn record_unrecognized(&self, record: Unrecognized) -> Result<(), StoreError> {
        let key = self.generate_id()?.to_be_bytes();
        self.unrecognized
            .insert(key, encode(&record)?)
            .map_err(|error| backend("cannot record an unrecognized payload", &error))?;
        self.flush().await
    }

    async fn unrecognized(&self, limit: usize) -> Result<Vec<Unrecognized>, StoreError> {
        let mut records = self
            .unrecognized
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (key, value) =
                    item.map_err(|error| backend("cannot read unrecognized payloads", &error))?;
                decode(&value, || format!("unrecognized/{}", hex::encode(&key)))
            })
            .collect::<Result<Vec<Unrecognized>, StoreError>>()?;
        records.reverse();
        Ok(records)
    }
}

/// A turn turned into bytes, ready to be written (possibly more than once, if sled retries).
#[derive(Debug)]
struct PreparedTurn {
    contact_key: Vec<u8>,
    state: Vec<u8>,
    /// Log entries in order, by sequence number.
    log: Vec<Record>,
    /// New timers, by id.
    timers: Vec<Record>,
    fired_timer: Option<u64>,
    /// Remembered in `seen` with the time it was committed (for the expiry sweep).
    dedupe_key: Option<String>,
    seen_at: i64,
}

/// A record's number (log sequence or timer id), key and JSON value.
type Record = (u64, Vec<u8>, Vec<u8>);

/// Removes a timer and its index entry; a timer already gone is not an error.
fn remove_timer(
    timers: &TransactionalTree,
    timer_ids: &TransactionalTree,
    id: u64,
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    if let Some(key) = timer_ids.remove(&id.to_be_bytes())? {
        timers.remove(key)?;
    }
    Ok(())
}

/// Turns sled's open failures into what the user should do about them.
fn open_error(dir: &Path, error: sled::Error) -> StoreError {
    let dir = dir.display();
    let message = match error {
        sled::Error::Io(io) if is_lock_conflict(&io) => format!(
            "data directory {dir} is in use by another chatflow process; stop it or choose another directory (--data or data_dir)"
        ),
        sled::Error::Io(io) => {
            format!("cannot open data directory {dir}: {io}; check that it exists and is writable")
        }
        sled::Error::Corruption { .. } => {
            format!(
                "data directory {dir} is damaged; restore it from a backup or choose another directory"
            )
        }
        other => format!("cannot open data directory {dir}: {other}"),
    };
    StoreError::Backend(message)
}

/// Whether sled failed because another process holds the directory's lock. Sled 0.34 reports
/// this only as an `Other` I/O error with this message, so the message is all there is to test.
fn is_lock_conflict(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Other && error.to_string().starts_with("could not acquire lock")
}

fn backend(context: &str, error: &sled::Error) -> StoreError {
    StoreError::Backend(format!("{context}: {error}"))
}

/// A failed transaction; ours never abort, so every failure is the backend's.
fn transaction_error(context: &str, error: TransactionError) -> StoreError {
    match error {
        TransactionError::Abort(error) | TransactionError::Storage(error) => {
            backend(context, &error)
        }
    }
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value)
        .map_err(|error| StoreError::Backend(format!("cannot encode a record: {error}")))
}

/// Reads a record back; `name` says which one, for the error, and is only built on failure.
fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    name: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        key: name(),
        reason: error.to_string(),
    })
}

fn contact_key(contact: &ContactKey) -> Vec<u8> {
    let mut key = Vec::with_capacity(contact.channel.len() + 1 + contact.id.len());
    key.extend_from_slice(contact.channel.as_bytes());
    key.push(0);
    key.extend_from_slice(contact.id.as_bytes());
    key
}

fn log_prefix(contact: &ContactKey) -> Vec<u8> {
    let mut key = contact_key(contact);
    key.push(0);
    key
}

fn log_key(contact: &ContactKey, seq: u64) -> Vec<u8> {
    let mut key = log_prefix(contact);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// A log key as people read it: `log/<channel>/<id>/<seq>`.
fn log_name(contact: &ContactKey, key: &[u8]) -> String {
    let seq = key
        .last_chunk::<8>()
        .map_or(0, |seq| u64::from_be_bytes(*seq));
    format!("log/{}/{}/{seq}", contact.channel, contact.id)
}

fn timer_key(due: i64, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&((due as u64) ^ SIGN_BIT).to_be_bytes());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The due time and id in a `timers` key, or `None` if it is not one.
fn decode_timer_key(key: &[u8]) -> Option<(i64, u64)> {
    let (due, id) = key.split_first_chunk::<8>()?;
    let id: [u8; 8] = id.try_into().ok()?;
    Some((
        (u64::from_be_bytes(*due) ^ SIGN_BIT) as i64,
        u64::from_be_bytes(id),
    ))
}

/// A timer key as people read it: `timers/<due>/<id>`, or its bytes if it is malformed.
fn timer_name(key: &[u8]) -> String {
    match decode_timer_key(key) {
        Some((due, id)) => format!("timers/{due}/{id}"),
        None => format!("timers/{key:02x?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_sort_by_due_time_including_negative_ones() {
        let dues = [i64::MIN, -86_400, -1, 0, 1, 1_700_000_000, i64::MAX];
        let keys: Vec<Vec<u8>> = dues.iter().map(|&due| timer_key(due, 7)).collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        let decoded: Vec<i64> = keys
            .iter()
            .filter_map(|key| decode_timer_key(key))
            .map(|(due, _)| due)
            .collect();
        assert_eq!(decoded, dues);
    }

    #[test]
    fn log_keys_of_a_contact_share_a_prefix_no_other_contact_has() {
        let contact = ContactKey::new("main", "123");
        let longer = ContactKey::new("main", "1234");
        assert!(log_key(&contact, 5).starts_with(&log_prefix(&contact)));
        assert!(!log_key(&longer, 5).starts_with(&log_prefix(&contact)));
        assert_eq!(log_name(&contact, &log_key(&contact, 5)), "log/main/123/5");
    }
}
