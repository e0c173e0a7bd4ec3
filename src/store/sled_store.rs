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
//! - `seen`: dedupe key → Unix seconds it was committed
//! - `inbox`: `seq` → [`InboxEntry`], in arrival order
//! - `outbox`: `channel 0x00 id 0x00 job id` → [`OutboxJob`], so a contact's jobs are one prefix
//!   in sending order
//! - `dead`: `id` → [`DeadJob`]
//! - `sent`: `channel 0x00 provider message id` → [`SentRecord`]
//! - `schedule_fires`: schedule key → the last due time considered (8 bytes)
//! - `schedule_last_fired`: schedule key → the last due time that really fired (8 bytes)
//! - `broadcasts`: id → [`Broadcast`], engine-started flows still being worked through
//!
//! Numbers in keys are 8 big-endian bytes, so byte order is numeric order. A turn is one sled
//! transaction over every tree it touches followed by a flush, so it is atomic and on disk
//! before [`Store::commit_turn`] returns. Flushes are group commits: callers that ask while one
//! runs share the next, so concurrent webhooks and turns cost one fsync, not one each.
//!
//! sled counts a tree only by scanning it, so the queue depths metrics read are counters: counted
//! once at open, then moved by what each committed write added or removed.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};

use crate::flow::runtime::TimerRequest;
use crate::flow::state::ContactState;

use super::depths::{Delta, DepthCounters, added, count, removed};
use super::{
    Broadcast, Committed, ContactKey, DeadJob, Delivery, DeliveryState, InboxEntry, LogEntry,
    NewInboxEntry, NewJob, NewLogEntry, OutboxJob, Payload, QueueDepths, SentRecord, Store,
    StoreError, StoredTimer, Swept, TurnCommit, Unrecognized, fallback_key,
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
    inbox: Tree,
    outbox: Tree,
    dead: Tree,
    sent: Tree,
    schedule_fires: Tree,
    schedule_last_fired: Tree,
    broadcasts: Tree,
    flushes: GroupFlush,
    /// Records in `inbox`, `outbox`, `dead` and `timers`, moved by every committed write.
    depths: DepthCounters,
}

/// Group commit: a flush covers every write made before it started, so callers queue behind
/// the running flush and all of them are served by the next one.
#[derive(Debug, Default)]
struct GroupFlush {
    /// Held while flushing.
    running: tokio::sync::Mutex<()>,
    /// Flush requests so far; each caller's ticket.
    requested: AtomicU64,
    /// The highest ticket a finished flush covered.
    covered: AtomicU64,
    /// Flushes actually run (for the benchmark's "fsyncs per request").
    runs: AtomicU64,
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
        let (inbox, outbox, dead, timers) = (
            tree("inbox")?,
            tree("outbox")?,
            tree("dead")?,
            tree("timers")?,
        );
        // The one full count, at start; from here on writes move the counters.
        let depth = |tree: &Tree| u64::try_from(tree.len()).unwrap_or(u64::MAX);
        let depths = DepthCounters::new(QueueDepths {
            inbox: depth(&inbox),
            outbox: depth(&outbox),
            dead: depth(&dead),
            timers: depth(&timers),
        });
        Ok(Self {
            contacts: tree("contacts")?,
            log: tree("log")?,
            timers,
            timer_ids: tree("timer_ids")?,
            unrecognized: tree("unrecognized")?,
            seen: tree("seen")?,
            inbox,
            outbox,
            dead,
            sent: tree("sent")?,
            schedule_fires: tree("schedule_fires")?,
            schedule_last_fired: tree("schedule_last_fired")?,
            broadcasts: tree("broadcasts")?,
            flushes: GroupFlush::default(),
            depths,
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
        let log = self.prepare_log(&contact, commit.log)?;
        let seqs: Vec<u64> = log.iter().map(|&(seq, ..)| seq).collect();
        let jobs = self.prepare_jobs(&contact, commit.jobs, &seqs, commit.committed_at)?;
        Ok(PreparedTurn {
            contact_key: contact_key(&contact),
            state: encode(&commit.state)?,
            log,
            timers: self.prepare_timers(&contact, commit.timers)?,
            fired_timer: commit.fired_timer,
            dedupe_keys: commit.dedupe_keys,
            seen_at: commit.committed_at,
            inbox_done: commit.inbox_done,
            delivery: commit
                .delivery
                .map(|update| (log_key(&contact, update.log_seq), update.delivery)),
            jobs,
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
                delivery: entry.delivery,
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

    fn prepare_jobs(
        &self,
        contact: &ContactKey,
        jobs: Vec<NewJob>,
        seqs: &[u64],
        at: i64,
    ) -> Result<Vec<OutboxJob>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let turn = self.generate_id()?;
        let job = |new: NewJob| {
            Ok(OutboxJob {
                id: self.generate_id()?,
                contact: contact.clone(),
                payload: new.payload,
                fallback: new.fallback,
                turn,
                log_seq: new.log_index.and_then(|i| seqs.get(i).copied()),
                created_at: at,
                attempts: 0,
                next_attempt_at: at,
                in_flight: false,
                last_error: None,
            })
        };
        jobs.into_iter().map(job).collect()
    }

    /// Writes a prepared turn to every tree it touches at once.
    fn apply(&self, turn: &PreparedTurn) -> Result<(), StoreError> {
        let jobs: Vec<(Vec<u8>, Vec<u8>)> = turn
            .jobs
            .iter()
            .map(|job| Ok((job_key(&job.contact, job.id), encode(job)?)))
            .collect::<Result<_, StoreError>>()?;
        let trees = (
            &self.contacts,
            &self.log,
            &self.timers,
            &self.timer_ids,
            &self.seen,
            &self.inbox,
            &self.outbox,
        );
        let result =
            trees.transaction(|(contacts, log, timers, timer_ids, seen, inbox, outbox)| {
                let mut delta = Delta::default();
                for key in &turn.dedupe_keys {
                    seen.insert(key.as_bytes(), &turn.seen_at.to_be_bytes())?;
                }
                if let Some(id) = turn.fired_timer {
                    delta.timers -= i64::from(remove_timer(timers, timer_ids, id)?);
                }
                if let Some(seq) = turn.inbox_done {
                    delta.inbox -= removed(inbox.remove(&seq.to_be_bytes())?);
                }
                for (id, key, value) in &turn.timers {
                    delta.timers += added(timers.insert(key.as_slice(), value.as_slice())?);
                    timer_ids.insert(&id.to_be_bytes(), key.as_slice())?;
                }
                if let Some((key, delivery)) = &turn.delivery {
                    update_delivery(log, key, delivery.clone())?;
                }
                for (_, key, value) in &turn.log {
                    log.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &jobs {
                    delta.outbox += added(outbox.insert(key.as_slice(), value.as_slice())?);
                }
                contacts.insert(turn.contact_key.as_slice(), turn.state.as_slice())?;
                Ok::<_, ConflictableTransactionError>(delta)
            });
        let delta = result.map_err(|error| transaction_error("cannot commit the turn", error))?;
        self.depths.apply(delta);
        Ok(())
    }

    /// Waits until everything written before the call is on disk, sharing the flush with
    /// everyone who asks meanwhile.
    ///
    /// Not `flush_async`: in sled 0.34 it runs on sled's own I/O pool, and concurrent calls can
    /// occupy every thread that pool needs to write the log, deadlocking (spacejam/sled#1308).
    /// A blocking flush on tokio's blocking pool leaves sled's pool free.
    async fn flush_shared(&self) -> Result<(), StoreError> {
        let ticket = self.flushes.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = self.flushes.running.lock().await;
        if self.flushes.covered.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let covers = self.flushes.requested.load(Ordering::SeqCst);
        let db = self.db.clone();
        let flushed = tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|error| StoreError::Backend(format!("disk flush did not finish: {error}")))?;
        flushed.map_err(|error| backend("cannot write to disk", &error))?;
        self.flushes.runs.fetch_add(1, Ordering::Relaxed);
        self.flushes.covered.store(covers, Ordering::SeqCst);
        Ok(())
    }

    /// How many disk flushes ran since the store opened (group commit makes this far fewer
    /// than the flushes asked for).
    #[must_use]
    pub fn flush_count(&self) -> u64 {
        self.flushes.runs.load(Ordering::Relaxed)
    }

    /// A pending job as stored, by its contact and id.
    fn stored_job(&self, contact: &ContactKey, id: u64) -> Result<Option<OutboxJob>, StoreError> {
        let key = job_key(contact, id);
        let value = self
            .outbox
            .get(&key)
            .map_err(|error| backend("cannot read the outbox", &error))?;
        value
            .map(|value| decode(&value, || job_name(contact, id)))
            .transpose()
    }

    /// Moves jobs to the dead letters and marks their log entries, in one transaction; the
    /// `replacement`, if any, is queued under the first job's key and `once` remembered.
    fn bury_all(
        &self,
        jobs: &[OutboxJob],
        reason: &str,
        at: i64,
        replacement: Option<(&OutboxJob, &str)>,
    ) -> Result<Vec<DeadJob>, StoreError> {
        let dead: Vec<DeadJob> = jobs
            .iter()
            .map(|job| {
                Ok(DeadJob {
                    id: self.generate_id()?,
                    died_at: at,
                    reason: reason.to_owned(),
                    job: OutboxJob {
                        in_flight: false,
                        ..job.clone()
                    },
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = dead
            .iter()
            .map(|dead| Ok((dead.id.to_be_bytes().to_vec(), encode(dead)?)))
            .collect::<Result<_, StoreError>>()?;
        let replacement = replacement
            .map(|(job, once)| {
                Ok::<_, StoreError>((job_key(&job.contact, job.id), encode(job)?, once))
            })
            .transpose()?;
        let trees = (&self.outbox, &self.dead, &self.log, &self.seen);
        let result = trees.transaction(|(outbox, dead_tree, log, seen)| {
            let mut delta = Delta::default();
            for (job, (key, value)) in jobs.iter().zip(&encoded) {
                delta.outbox -= removed(outbox.remove(job_key(&job.contact, job.id))?);
                delta.dead += added(dead_tree.insert(key.as_slice(), value.as_slice())?);
                if let Some(seq) = job.log_seq {
                    let delivery = Delivery {
                        state: DeliveryState::Dead,
                        at,
                        provider_id: None,
                        error: Some(reason.to_owned()),
                    };
                    update_delivery(log, &log_key(&job.contact, seq), delivery)?;
                }
            }
            if let Some((key, value, once)) = &replacement {
                delta.outbox += added(outbox.insert(key.as_slice(), value.as_slice())?);
                seen.insert(once.as_bytes(), &at.to_be_bytes())?;
            }
            Ok::<_, ConflictableTransactionError>(delta)
        });
        let delta = result.map_err(|error| transaction_error("cannot dead-letter a job", error))?;
        self.depths.apply(delta);
        Ok(dead)
    }

    /// Removes every record of `tree` whose time, read by `at`, is before `before`.
    fn sweep_tree<T: DeserializeOwned>(
        &self,
        tree: &Tree,
        name: &str,
        before: i64,
        at: impl Fn(&T) -> i64,
    ) -> Result<usize, StoreError> {
        let mut swept = 0;
        for item in tree {
            let (key, value) =
                item.map_err(|error| backend(&format!("cannot read {name}"), &error))?;
            let record: T = decode(&value, || format!("{name}/{}", hex::encode(&key)))?;
            if at(&record) < before {
                let old = tree
                    .remove(key)
                    .map_err(|error| backend(&format!("cannot sweep {name}"), &error))?;
                swept += usize::from(old.is_some());
            }
        }
        Ok(swept)
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

    async fn commit_turn(&self, commit: TurnCommit) -> Result<Committed, StoreError> {
        let turn = self.prepare(commit)?;
        self.apply(&turn)?;
        self.flush_shared().await?;
        Ok(Committed {
            log: turn.log.iter().map(|&(seq, ..)| seq).collect(),
            jobs: turn.jobs,
        })
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
        swept.log_entries =
            self.sweep_tree(&self.log, "log", log_before, |entry: &LogEntry| entry.at)?;
        let dead = self.sweep_tree(&self.dead, "dead", log_before, |dead: &DeadJob| {
            dead.died_at
        })?;
        self.depths.apply(Delta {
            dead: -count(dead),
            ..Delta::default()
        });
        swept.sent_and_dead =
            self.sweep_tree(&self.sent, "sent", log_before, |sent: &SentRecord| sent.at)? + dead;
        self.flush_shared().await?;
        Ok(swept)
    }

    async fn drop_timer(&self, id: u64) -> Result<(), StoreError> {
        let trees = (&self.timers, &self.timer_ids);
        let result = trees.transaction(|(timers, timer_ids)| {
            Ok::<_, ConflictableTransactionError>(remove_timer(timers, timer_ids, id)?)
        });
        let dropped = result.map_err(|error| transaction_error("cannot drop a timer", error))?;
        self.depths.apply(Delta {
            timers: -i64::from(dropped),
            ..Delta::default()
        });
        self.flush_shared().await
    }

    async fn record_unrecognized(&self, record: Unrecognized) -> Result<(), StoreError> {
        let key = self.generate_id()?.to_be_bytes();
        self.unrecognized
            .insert(key, encode(&record)?)
            .map_err(|error| backend("cannot record an unrecognized payload", &error))?;
        self.flush_shared().await
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

    async fn accept_inbound(
        &self,
        entries: Vec<NewInboxEntry>,
        unrecognized: Vec<Unrecognized>,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let mut batch = sled::Batch::default();
        let mut accepted = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = InboxEntry {
                seq: self.generate_id()?,
                channel: entry.channel,
                received_at: entry.received_at,
                event: entry.event,
            };
            batch.insert(&entry.seq.to_be_bytes(), encode(&entry)?);
            accepted.push(entry);
        }
        let mut odd = sled::Batch::default();
        for record in &unrecognized {
            odd.insert(&self.generate_id()?.to_be_bytes(), encode(record)?);
        }
        let trees = (&self.inbox, &self.unrecognized);
        let result = trees.transaction(|(inbox, unrecognized)| {
            inbox.apply_batch(&batch)?;
            unrecognized.apply_batch(&odd)?;
            Ok::<_, ConflictableTransactionError>(())
        });
        result.map_err(|error| transaction_error("cannot accept the webhook", error))?;
        self.depths.apply(Delta {
            inbox: count(accepted.len()),
            ..Delta::default()
        });
        Ok(accepted)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_shared().await
    }

    async fn pending_inbound(&self) -> Result<Vec<InboxEntry>, StoreError> {
        self.inbox
            .iter()
            .map(|item| {
                let (key, value) =
                    item.map_err(|error| backend("cannot read the inbox", &error))?;
                decode(&value, || format!("inbox/{}", hex::encode(&key)))
            })
            .collect()
    }

    async fn finish_inbound(&self, seq: u64) -> Result<(), StoreError> {
        let old = self
            .inbox
            .remove(seq.to_be_bytes())
            .map_err(|error| backend("cannot update the inbox", &error))?;
        self.depths.apply(Delta {
            inbox: -removed(old),
            ..Delta::default()
        });
        Ok(())
    }

    async fn pending_jobs(&self, limit: usize) -> Result<Vec<OutboxJob>, StoreError> {
        self.outbox
            .iter()
            .take(limit)
            .map(|item| {
                let (key, value) =
                    item.map_err(|error| backend("cannot read the outbox", &error))?;
                decode(&value, || format!("outbox/{}", hex::encode(&key)))
            })
            .collect()
    }

    async fn claim_job(
        &self,
        contact: &ContactKey,
        id: u64,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let key = job_key(contact, id);
        let result = self.outbox.transaction(|outbox| {
            let Some(value) = outbox.get(&key)? else {
                return Ok(None);
            };
            let Ok(mut job) = serde_json::from_slice::<OutboxJob>(&value) else {
                return Ok(None);
            };
            job.attempts += 1;
            job.in_flight = true;
            let Ok(encoded) = serde_json::to_vec(&job) else {
                return Ok(None);
            };
            outbox.insert(key.as_slice(), encoded)?;
            Ok::<_, ConflictableTransactionError>(Some(job))
        });
        let Some(job) = result.map_err(|error| transaction_error("cannot claim a job", error))?
        else {
            return Ok(None);
        };
        self.flush_shared().await?;
        Ok(Some(job))
    }

    async fn ack_job(
        &self,
        job: &OutboxJob,
        provider_id: Option<String>,
        at: i64,
    ) -> Result<(), StoreError> {
        let sent = match (&provider_id, &job.payload) {
            (Some(id), Payload::Message { .. }) => Some((
                sent_key(&job.contact.channel, id),
                encode(&super::sent_record(job, id.clone(), at))?,
            )),
            _ => None,
        };
        let delivery = job.log_seq.map(|seq| {
            let delivery = Delivery {
                state: DeliveryState::Accepted,
                at,
                provider_id,
                error: None,
            };
            (log_key(&job.contact, seq), delivery)
        });
        let trees = (&self.outbox, &self.sent, &self.log);
        let result = trees.transaction(|(outbox, sent_tree, log)| {
            let acked = removed(outbox.remove(job_key(&job.contact, job.id))?);
            if let Some((key, value)) = &sent {
                sent_tree.insert(key.as_slice(), value.as_slice())?;
            }
            if let Some((key, delivery)) = &delivery {
                update_delivery(log, key, delivery.clone())?;
            }
            Ok::<_, ConflictableTransactionError>(acked)
        });
        let acked = result.map_err(|error| transaction_error("cannot record a send", error))?;
        self.depths.apply(Delta {
            outbox: -acked,
            ..Delta::default()
        });
        Ok(())
    }

    async fn retry_job(
        &self,
        job: &OutboxJob,
        next_attempt_at: i64,
        error: String,
    ) -> Result<(), StoreError> {
        let Some(mut stored) = self.stored_job(&job.contact, job.id)? else {
            return Ok(());
        };
        stored.reschedule(next_attempt_at, error);
        let old = self
            .outbox
            .insert(job_key(&job.contact, job.id), encode(&stored)?)
            .map_err(|error| backend("cannot reschedule a job", &error))?;
        self.depths.apply(Delta {
            outbox: added(old),
            ..Delta::default()
        });
        Ok(())
    }

    async fn bury_job(
        &self,
        job: &OutboxJob,
        reason: String,
        at: i64,
    ) -> Result<DeadJob, StoreError> {
        let mut dead = self.bury_all(std::slice::from_ref(job), &reason, at, None)?;
        dead.pop()
            .ok_or_else(|| StoreError::Backend("a buried job vanished".to_owned()))
    }

    async fn replace_with_fallback(
        &self,
        job: &OutboxJob,
        reason: String,
        at: i64,
    ) -> Result<Option<OutboxJob>, StoreError> {
        let mut siblings = Vec::new();
        for item in self.outbox.scan_prefix(log_prefix(&job.contact)) {
            let (key, value) = item.map_err(|error| backend("cannot read the outbox", &error))?;
            let sibling: OutboxJob = decode(&value, || format!("outbox/{}", hex::encode(&key)))?;
            if sibling.turn == job.turn {
                siblings.push(sibling);
            }
        }
        let once = fallback_key(&job.contact, job.turn);
        let already = self
            .seen
            .contains_key(once.as_bytes())
            .map_err(|error| backend("cannot read the dedupe list", &error))?;
        let replacement = super::fallback_job(job, at).filter(|_| !already);
        self.bury_all(
            &siblings,
            &reason,
            at,
            replacement.as_ref().map(|job| (job, once.as_str())),
        )?;
        Ok(replacement)
    }

    async fn dead_jobs(&self, limit: usize) -> Result<Vec<DeadJob>, StoreError> {
        let mut dead = self
            .dead
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (key, value) =
                    item.map_err(|error| backend("cannot read dead letters", &error))?;
                decode(&value, || format!("dead/{}", hex::encode(&key)))
            })
            .collect::<Result<Vec<DeadJob>, StoreError>>()?;
        dead.reverse();
        Ok(dead)
    }

    async fn revive_job(&self, dead_id: u64, at: i64) -> Result<Option<OutboxJob>, StoreError> {
        let key = dead_id.to_be_bytes();
        let value = self
            .dead
            .get(key)
            .map_err(|error| backend("cannot read dead letters", &error))?;
        let Some(value) = value else {
            return Ok(None);
        };
        let dead: DeadJob = decode(&value, || format!("dead/{dead_id}"))?;
        let job = super::revived(dead.job, self.generate_id()?, at);
        let encoded = encode(&job)?;
        let trees = (&self.dead, &self.outbox);
        let result = trees.transaction(|(dead_tree, outbox)| {
            Ok::<_, ConflictableTransactionError>(Delta {
                dead: -removed(dead_tree.remove(&key)?),
                outbox: added(outbox.insert(job_key(&job.contact, job.id), encoded.as_slice())?),
                ..Delta::default()
            })
        });
        let delta =
            result.map_err(|error| transaction_error("cannot retry a dead letter", error))?;
        self.depths.apply(delta);
        self.flush_shared().await?;
        Ok(Some(job))
    }

    async fn clear_jobs(&self) -> Result<usize, StoreError> {
        let mut cleared = 0;
        for item in &self.outbox {
            let (key, value) = item.map_err(|error| backend("cannot read the outbox", &error))?;
            let job: OutboxJob = decode(&value, || format!("outbox/{}", hex::encode(&key)))?;
            if !job.in_flight {
                let old = self
                    .outbox
                    .remove(key)
                    .map_err(|error| backend("cannot clear the outbox", &error))?;
                cleared += usize::from(old.is_some());
            }
        }
        self.depths.apply(Delta {
            outbox: -count(cleared),
            ..Delta::default()
        });
        self.flush_shared().await?;
        Ok(cleared)
    }

    async fn sent_record(
        &self,
        channel: &str,
        provider_id: &str,
    ) -> Result<Option<SentRecord>, StoreError> {
        let value = self
            .sent
            .get(sent_key(channel, provider_id))
            .map_err(|error| backend("cannot read sent messages", &error))?;
        value
            .map(|value| decode(&value, || format!("sent/{channel}/{provider_id}")))
            .transpose()
    }

    async fn contacts_page(
        &self,
        channel: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactState>, StoreError> {
        let prefix = contact_key(&ContactKey::new(channel, ""));
        let start = match after {
            Some(after) => {
                let mut key = contact_key(&ContactKey::new(channel, after));
                key.push(0);
                key
            }
            None => prefix.clone(),
        };
        self.contacts
            .range(start..)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(key, _)| key.starts_with(&prefix))
            })
            .take(limit)
            .map(|item| {
                let (key, value) = item.map_err(|error| backend("cannot read contacts", &error))?;
                decode(&value, || {
                    format!("contacts/{}", String::from_utf8_lossy(&key))
                })
            })
            .collect()
    }

    async fn timers(
        &self,
        contact: Option<&ContactKey>,
        limit: usize,
    ) -> Result<Vec<StoredTimer>, StoreError> {
        let mut found = Vec::new();
        for item in &self.timers {
            let (key, value) = item.map_err(|error| backend("cannot read timers", &error))?;
            let timer: StoredTimer = decode(&value, || timer_name(&key))?;
            if contact.is_none_or(|contact| &timer.contact == contact) {
                found.push(timer);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    async fn schedule_fires(&self) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        times_by_key(&self.schedule_fires)
    }

    async fn schedule_last_fired(
        &self,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        times_by_key(&self.schedule_last_fired)
    }

    async fn fire_schedule(
        &self,
        key: &str,
        due: i64,
        broadcast: Broadcast,
    ) -> Result<bool, StoreError> {
        let encoded = encode(&broadcast)?;
        let trees = (
            &self.schedule_fires,
            &self.broadcasts,
            &self.schedule_last_fired,
        );
        let result = trees.transaction(|(fires, broadcasts, last_fired)| {
            let last = fires
                .get(key.as_bytes())?
                .and_then(|value| value.as_ref().try_into().ok().map(i64::from_be_bytes));
            if last.is_some_and(|last| last >= due) {
                return Ok(false);
            }
            fires.insert(key.as_bytes(), &due.to_be_bytes())?;
            last_fired.insert(key.as_bytes(), &due.to_be_bytes())?;
            broadcasts.insert(broadcast.id.as_bytes(), encoded.as_slice())?;
            Ok::<_, ConflictableTransactionError>(true)
        });
        let fired =
            result.map_err(|error| transaction_error("cannot record a schedule fire", error))?;
        self.flush_shared().await?;
        Ok(fired)
    }

    async fn skip_schedule(&self, key: &str, until: i64) -> Result<(), StoreError> {
        self.schedule_fires
            .fetch_and_update(key.as_bytes(), |old| {
                let last = old
                    .and_then(|value| value.try_into().ok().map(i64::from_be_bytes))
                    .unwrap_or(until);
                Some(last.max(until).to_be_bytes().to_vec())
            })
            .map_err(|error| backend("cannot record a schedule", &error))?;
        self.flush_shared().await
    }

    async fn save_broadcast(&self, broadcast: &Broadcast) -> Result<(), StoreError> {
        self.broadcasts
            .insert(broadcast.id.as_bytes(), encode(broadcast)?)
            .map_err(|error| backend("cannot save a broadcast", &error))?;
        self.flush_shared().await
    }

    async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        Ok(self.depths.read())
    }

    async fn broadcasts(&self) -> Result<Vec<Broadcast>, StoreError> {
        let mut all = self
            .broadcasts
            .iter()
            .map(|item| {
                let (key, value) =
                    item.map_err(|error| backend("cannot read broadcasts", &error))?;
                decode(&value, || {
                    format!("broadcasts/{}", String::from_utf8_lossy(&key))
                })
            })
            .collect::<Result<Vec<Broadcast>, StoreError>>()?;
        all.sort_by_key(|broadcast| broadcast.created_at);
        Ok(all)
    }

    async fn finish_broadcast(&self, id: &str) -> Result<(), StoreError> {
        self.broadcasts
            .remove(id.as_bytes())
            .map_err(|error| backend("cannot finish a broadcast", &error))?;
        self.flush_shared().await
    }
}

/// A tree of schedule key → Unix seconds (8 big-endian bytes), read whole (one entry per
/// schedule trigger).
fn times_by_key(tree: &Tree) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    tree.iter()
        .map(|item| {
            let (key, value) =
                item.map_err(|error| backend("cannot read schedule fires", &error))?;
            let at = value.as_ref().try_into().map_or(0, i64::from_be_bytes);
            Ok((String::from_utf8_lossy(&key).into_owned(), at))
        })
        .collect()
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
    /// Remembered in `seen` with the time they were committed (for the expiry sweep).
    dedupe_keys: Vec<String>,
    seen_at: i64,
    inbox_done: Option<u64>,
    /// A log entry's key and its new delivery.
    delivery: Option<(Vec<u8>, Delivery)>,
    jobs: Vec<OutboxJob>,
}

/// A record's number (log sequence or timer id), key and JSON value.
type Record = (u64, Vec<u8>, Vec<u8>);

/// Sets a log entry's delivery inside a transaction, if it is progress; an entry swept away or
/// unreadable is left alone (a delivery status must never fail a turn).
fn update_delivery(
    log: &TransactionalTree,
    key: &[u8],
    delivery: Delivery,
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    let Some(value) = log.get(key)? else {
        return Ok(());
    };
    let Ok(mut entry) = serde_json::from_slice::<LogEntry>(&value) else {
        return Ok(());
    };
    entry.delivery = super::advance(entry.delivery.take(), delivery);
    if let Ok(value) = serde_json::to_vec(&entry) {
        log.insert(key, value)?;
    }
    Ok(())
}

/// Removes a timer and its index entry; whether there was one (a timer already gone is not an
/// error).
fn remove_timer(
    timers: &TransactionalTree,
    timer_ids: &TransactionalTree,
    id: u64,
) -> Result<bool, sled::transaction::UnabortableTransactionError> {
    let Some(key) = timer_ids.remove(&id.to_be_bytes())? else {
        return Ok(false);
    };
    Ok(timers.remove(key)?.is_some())
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

/// A job's key: its contact's prefix, then its id, so a contact's jobs sort in sending order.
fn job_key(contact: &ContactKey, id: u64) -> Vec<u8> {
    log_key(contact, id)
}

/// A job key as people read it: `outbox/<channel>/<id>/<job id>`.
fn job_name(contact: &ContactKey, id: u64) -> String {
    format!("outbox/{}/{}/{id}", contact.channel, contact.id)
}

fn sent_key(channel: &str, provider_id: &str) -> Vec<u8> {
    contact_key(&ContactKey::new(channel, provider_id))
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
