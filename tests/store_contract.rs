//! The contract every store backend keeps, run against each of them (DESIGN §2), and what only a
//! store on disk can promise: surviving a restart, one process per directory, and reporting a
//! damaged record instead of panicking.
//!
//! Each check is a generic `async fn(S: Store)`; `contract!` turns it into one `#[tokio::test]`
//! per backend, so a new backend is one more `contract!` line and a failure names both.

use std::path::Path;
use std::sync::Arc;

use chatflow::flow::runtime::TimerRequest;
use chatflow::flow::state::{ContactState, Conversation};
use chatflow::message::{InboundEvent, Outbound};
use chatflow::store::{
    Audience, Broadcast, ContactKey, Delivery, DeliveryState, DeliveryUpdate, Direction, LogEntry,
    MemoryStore, NewInboxEntry, NewJob, NewLogEntry, OutboxJob, Payload, QueueDepths, SledStore,
    Store, StoreError, StoredTimer, TurnCommit,
};
use serde_json::json;
use tempfile::TempDir;

/// Runs every contract check against the store `$open()` returns, each as its own test.
macro_rules! contract {
    ($backend:ident, $open:path) => {
        mod $backend {
            checks!($open;
                unknown_contact_has_no_state_log_or_timers,
                committed_state_is_loaded_back,
                same_id_on_another_channel_is_another_contact,
                transcript_is_the_last_entries_oldest_first,
                due_timers_are_the_due_ones_earliest_first_across_contacts,
                fired_timer_goes_in_the_turn_that_adds_new_ones,
                dropped_timer_never_comes_back,
                negative_and_far_future_due_times_keep_their_order,
                parallel_contacts_keep_each_log_in_commit_order,
                a_committed_dedupe_key_is_seen,
                a_sweep_forgets_old_dedupe_keys_and_log_entries_only,
                inbox_entries_wait_in_arrival_order_until_handled,
                a_turns_jobs_are_pending_in_order_and_claims_count_attempts,
                an_acked_job_leaves_a_sent_record_and_statuses_only_advance,
                a_buried_job_is_dead_until_revived_behind_the_queue,
                a_turns_fallback_replaces_its_jobs_once,
                clearing_the_outbox_leaves_jobs_in_flight,
                contacts_are_paged_by_id_within_their_channel,
                timers_are_listed_earliest_first_and_by_contact,
                a_schedule_fires_once_per_due_time_with_its_broadcast,
                broadcasts_keep_their_progress_until_finished,
                queue_depths_follow_every_queue_change,
            );
        }
    };
}

/// One `#[tokio::test]` per check, on a fresh store (its directory, if any, lives as long).
macro_rules! checks {
    ($open:path; $($check:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $check() {
            let (store, _dir) = $open();
            super::$check(store).await;
        }
    )+};
}

contract!(memory, super::open_memory);
contract!(sled, super::open_sled);

fn open_memory() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

fn open_sled() -> (SledStore, TempDir) {
    let dir = TempDir::new().expect("a temporary directory");
    let store = SledStore::open(dir.path()).expect("a fresh directory opens");
    (store, dir)
}

// ---- the contract ----

async fn a_committed_dedupe_key_is_seen(store: impl Store) {
    assert!(!store.seen("message:main:wamid.1").await.expect("readable"));
    let mut turn = turn(&ann(), &["hi"]);
    turn.dedupe_keys = vec!["message:main:wamid.1".to_owned()];
    store.commit_turn(turn).await.expect("committed");
    assert!(store.seen("message:main:wamid.1").await.expect("readable"));
    assert!(!store.seen("message:main:wamid.2").await.expect("readable"));
}

async fn a_sweep_forgets_old_dedupe_keys_and_log_entries_only(store: impl Store) {
    let mut old = turn(&ann(), &["old"]);
    old.dedupe_keys = vec!["message:main:old".to_owned()];
    store.commit_turn(old).await.expect("committed");
    let mut new = turn(&ann(), &["new"]);
    new.log[0].at = 1_800_000_000;
    new.dedupe_keys = vec!["message:main:new".to_owned()];
    new.committed_at = 1_800_000_000;
    store.commit_turn(new).await.expect("committed");
    let swept = store
        .sweep(1_750_000_000, 1_750_000_000)
        .await
        .expect("swept");
    assert_eq!((swept.dedupe_keys, swept.log_entries), (1, 1));
    assert!(!store.seen("message:main:old").await.expect("readable"));
    assert!(store.seen("message:main:new").await.expect("readable"));
    let left = store.transcript(&ann(), 10).await.expect("readable");
    assert_eq!(texts(&left), ["new"]);
}

async fn unknown_contact_has_no_state_log_or_timers(store: impl Store) {
    let ann = ann();
    assert_eq!(store.load_contact(&ann).await.unwrap(), None);
    assert!(store.transcript(&ann, 10).await.unwrap().is_empty());
    assert!(store.due_timers(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), None);
    store.drop_timer(42).await.unwrap();
}

async fn committed_state_is_loaded_back(store: impl Store) {
    let ann = ann();
    let mut state = ContactState::new(&ann.channel, &ann.id);
    state.name = Some("Ann".to_owned());
    state.tags.insert("vip".to_owned());
    state.vars.insert("size".to_owned(), json!("large"));
    state.last_inbound_at = Some(1_700_000_000);
    state.conversation = Some(Conversation {
        flow: "pizza".to_owned(),
        step: "address".to_owned(),
        retries: 1,
        asked_at: 1_700_000_000,
        started_at: 1_699_999_990,
        options: Vec::new(),
    });
    store.commit_turn(commit(state.clone())).await.unwrap();
    assert_eq!(store.load_contact(&ann).await.unwrap(), Some(state.clone()));

    state.conversation = None;
    state.opted_out = true;
    store.commit_turn(commit(state.clone())).await.unwrap();
    assert_eq!(store.load_contact(&ann).await.unwrap(), Some(state));
}

async fn same_id_on_another_channel_is_another_contact(store: impl Store) {
    let on_main = ContactKey::new("main", "15550001111");
    let on_simulator = ContactKey::new("simulator", "15550001111");
    store
        .commit_turn(turn(&on_main, &["on main"]))
        .await
        .unwrap();
    assert_eq!(store.load_contact(&on_simulator).await.unwrap(), None);

    store
        .commit_turn(turn(&on_simulator, &["on simulator"]))
        .await
        .unwrap();
    let loaded = store.load_contact(&on_simulator).await.unwrap().unwrap();
    assert_eq!(
        (loaded.channel.as_str(), loaded.id.as_str()),
        ("simulator", "15550001111")
    );
    assert_eq!(
        texts(&store.transcript(&on_main, 10).await.unwrap()),
        ["on main"]
    );
    assert_eq!(
        texts(&store.transcript(&on_simulator, 10).await.unwrap()),
        ["on simulator"]
    );
}

async fn transcript_is_the_last_entries_oldest_first(store: impl Store) {
    let ann = ContactKey::new("main", "123");
    let longer_id = ContactKey::new("main", "1234");
    let mut seqs = Vec::new();
    for texts in [&["1", "2"][..], &["3"], &["4", "5"]] {
        seqs.extend(store.commit_turn(turn(&ann, texts)).await.unwrap().log);
        store
            .commit_turn(turn(&longer_id, &["other"]))
            .await
            .unwrap();
    }
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");

    let all = store.transcript(&ann, 100).await.unwrap();
    assert_eq!(texts(&all), ["1", "2", "3", "4", "5"]);
    assert_eq!(all.iter().map(|entry| entry.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(all[0].direction, Direction::Inbound);
    assert_eq!(
        texts(&store.transcript(&ann, 3).await.unwrap()),
        ["3", "4", "5"]
    );
    assert!(store.transcript(&ann, 0).await.unwrap().is_empty());
    assert_eq!(
        texts(&store.transcript(&longer_id, 100).await.unwrap()),
        ["other"; 3]
    );
}

async fn due_timers_are_the_due_ones_earliest_first_across_contacts(store: impl Store) {
    let (ann, bob) = (ann(), bob());
    store
        .commit_turn(with_timers(&ann, &[300, 100]))
        .await
        .unwrap();
    store
        .commit_turn(with_timers(&bob, &[500, 200]))
        .await
        .unwrap();

    let due = store.due_timers(300, 10).await.unwrap();
    assert_eq!(dues(&due), [100, 200, 300]);
    let owners: Vec<&ContactKey> = due.iter().map(|timer| &timer.contact).collect();
    assert_eq!(owners, [&ann, &bob, &ann]);
    assert_eq!(dues(&store.due_timers(300, 2).await.unwrap()), [100, 200]);
    assert!(store.due_timers(99, 10).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(100));
}

async fn fired_timer_goes_in_the_turn_that_adds_new_ones(store: impl Store) {
    let ann = ann();
    store.commit_turn(with_timers(&ann, &[100])).await.unwrap();
    let [fired] = <[StoredTimer; 1]>::try_from(store.due_timers(100, 10).await.unwrap()).unwrap();
    assert_eq!(fired.timer, remind(100));

    let mut handled = with_timers(&ann, &[200]);
    handled.fired_timer = Some(fired.id);
    handled.log = vec![said("reminded")];
    store.commit_turn(handled).await.unwrap();

    assert!(store.due_timers(150, 10).await.unwrap().is_empty());
    let left = store.due_timers(i64::MAX, 10).await.unwrap();
    assert_eq!(dues(&left), [200]);
    assert_ne!(left[0].id, fired.id);
    assert_eq!(store.next_due().await.unwrap(), Some(200));
    assert_eq!(
        texts(&store.transcript(&ann, 10).await.unwrap()),
        ["reminded"]
    );
}

async fn dropped_timer_never_comes_back(store: impl Store) {
    store
        .commit_turn(with_timers(&ann(), &[100, 200]))
        .await
        .unwrap();
    let first = store.due_timers(100, 10).await.unwrap()[0].id;
    store.drop_timer(first).await.unwrap();
    store.drop_timer(first).await.unwrap();

    assert_eq!(dues(&store.due_timers(i64::MAX, 10).await.unwrap()), [200]);
    assert_eq!(store.next_due().await.unwrap(), Some(200));
}

async fn negative_and_far_future_due_times_keep_their_order(store: impl Store) {
    let times = [i64::MAX, 4_102_444_800, 0, -1, -86_400, i64::MIN];
    store
        .commit_turn(with_timers(&ann(), &times))
        .await
        .unwrap();

    let everything = store.due_timers(i64::MAX, 10).await.unwrap();
    assert_eq!(
        dues(&everything),
        [i64::MIN, -86_400, -1, 0, 4_102_444_800, i64::MAX]
    );
    assert_eq!(
        dues(&store.due_timers(-1, 10).await.unwrap()),
        [i64::MIN, -86_400, -1]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(i64::MIN));
}

async fn parallel_contacts_keep_each_log_in_commit_order<S: Store>(store: S) {
    const CONTACTS: usize = 50;
    const TURNS: usize = 20;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..CONTACTS)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let contact = ContactKey::new("main", format!("1555000{n:04}"));
                for turn_number in 0..TURNS {
                    let mut commit = turn(&contact, &[&turn_number.to_string()]);
                    commit
                        .state
                        .vars
                        .insert("turns".to_owned(), json!(turn_number + 1));
                    store.commit_turn(commit).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let expected: Vec<String> = (0..TURNS).map(|n| n.to_string()).collect();
    for n in 0..CONTACTS {
        let contact = ContactKey::new("main", format!("1555000{n:04}"));
        let log = store.transcript(&contact, 100).await.unwrap();
        assert_eq!(texts(&log), expected, "contact {n}");
        assert!(log.windows(2).all(|pair| pair[0].seq < pair[1].seq));
        let state = store.load_contact(&contact).await.unwrap().unwrap();
        assert_eq!(state.vars["turns"], json!(TURNS));
    }
}

// ---- only a store on disk ----

#[tokio::test]
async fn sled_keeps_everything_across_a_restart() {
    let dir = TempDir::new().unwrap();
    let ann = ann();
    let mut commit = with_timers(&ann, &[100]);
    commit.state.name = Some("Ann".to_owned());
    commit.log = vec![said("hi"), said("hello Ann")];
    let state = commit.state.clone();
    let before = {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit_turn(commit).await.unwrap().log
    };

    let store = reopen(dir.path());
    assert_eq!(store.load_contact(&ann).await.unwrap(), Some(state));
    assert_eq!(
        texts(&store.transcript(&ann, 10).await.unwrap()),
        ["hi", "hello Ann"]
    );
    assert_eq!(dues(&store.due_timers(100, 10).await.unwrap()), [100]);

    let after = store.commit_turn(turn(&ann, &["again"])).await.unwrap().log;
    assert!(
        after[0] > before[1],
        "sequence numbers restarted: {before:?} then {after:?}"
    );
}

#[tokio::test]
async fn sled_keeps_the_inbox_and_the_outbox_with_in_flight_marks_across_a_restart() {
    let dir = TempDir::new().unwrap();
    let (entry, job) = {
        let store = SledStore::open(dir.path()).unwrap();
        let entry = store
            .accept_inbound(vec![inbound("a")], Vec::new())
            .await
            .unwrap();
        store.flush().await.unwrap();
        let committed = store.commit_turn(with_jobs(&ann(), &["hi"])).await.unwrap();
        let job = store.claim_job(&ann(), committed.jobs[0].id).await.unwrap();
        (entry, job.expect("pending"))
    };
    let store = reopen(dir.path());
    assert_eq!(store.pending_inbound().await.unwrap(), entry);
    let pending: Vec<OutboxJob> = store.pending_jobs(10).await.unwrap();
    assert_eq!(pending, std::slice::from_ref(&job));
    assert!(pending[0].in_flight, "a crash mid-send is known after it");
}

#[tokio::test]
async fn sled_counts_its_queues_again_when_reopened() {
    let dir = TempDir::new().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .accept_inbound(vec![inbound("a")], Vec::new())
            .await
            .unwrap();
        store.flush().await.unwrap();
        let mut commit = with_jobs(&ann(), &["one", "two"]);
        commit.timers = vec![remind(100)];
        let jobs = store.commit_turn(commit).await.unwrap().jobs;
        store
            .bury_job(&jobs[0], "refused".to_owned(), 0)
            .await
            .unwrap();
    }
    let store = reopen(dir.path());
    let expected = QueueDepths {
        inbox: 1,
        outbox: 1,
        dead: 1,
        timers: 1,
    };
    assert_eq!(store.queue_depths().await.unwrap(), expected);
}

#[tokio::test]
async fn sled_directory_in_use_is_refused_with_what_to_do() {
    let dir = TempDir::new().unwrap();
    let first = SledStore::open(dir.path()).unwrap();

    let error = SledStore::open(dir.path()).unwrap_err().to_string();
    let expected = format!(
        "data directory {} is in use by another chatflow process; stop it or choose another directory",
        dir.path().display()
    );
    assert!(error.contains(&expected), "{error}");

    drop(first);
    reopen(dir.path());
}

#[tokio::test]
async fn sled_damaged_records_are_reported_not_panicked_on() {
    let dir = TempDir::new().unwrap();
    let ann = ContactKey::new("main", "123");
    let seqs = {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit_turn(with_timers(&ann, &[-5])).await.unwrap();
        store.commit_turn(turn(&ann, &["hi"])).await.unwrap().log
    };
    overwrite_every_record(dir.path(), b"\xff not json");

    let store = reopen(dir.path());
    assert_corrupt(store.load_contact(&ann).await, "contacts/main/123");
    let log_key = format!("log/main/123/{}", seqs[0]);
    assert_corrupt(store.transcript(&ann, 10).await, &log_key);
    assert_corrupt(store.due_timers(0, 10).await, "timers/-5/");
    assert_eq!(store.next_due().await.unwrap(), Some(-5));
}

async fn inbox_entries_wait_in_arrival_order_until_handled(store: impl Store) {
    let accepted = store
        .accept_inbound(vec![inbound("a"), inbound("b")], Vec::new())
        .await
        .expect("accepted");
    store.flush().await.expect("flushed");
    let more = store
        .accept_inbound(vec![inbound("c")], Vec::new())
        .await
        .expect("accepted");
    let seqs: Vec<u64> = accepted.iter().chain(&more).map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let pending = store.pending_inbound().await.expect("readable");
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);

    let mut handled = turn(&ann(), &["a"]);
    handled.inbox_done = Some(seqs[0]);
    store.commit_turn(handled).await.expect("committed");
    store.finish_inbound(seqs[2]).await.expect("finished");
    let pending = store.pending_inbound().await.expect("readable");
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [seqs[1]]);
}

async fn a_turns_jobs_are_pending_in_order_and_claims_count_attempts(store: impl Store) {
    let committed = store
        .commit_turn(with_jobs(&ann(), &["one", "two"]))
        .await
        .expect("committed");
    let jobs = &committed.jobs;
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0].id < jobs[1].id && jobs[0].turn == jobs[1].turn);
    assert_eq!(jobs[0].log_seq, Some(committed.log[0]));
    store
        .commit_turn(with_jobs(&bob(), &["bob"]))
        .await
        .expect("committed");
    let pending = store.pending_jobs(10).await.expect("readable");
    let ann_jobs: Vec<u64> = pending
        .iter()
        .filter(|job| job.contact == ann())
        .map(|job| job.id)
        .collect();
    assert_eq!(ann_jobs, [jobs[0].id, jobs[1].id]);
    assert_eq!(pending.len(), 3);

    let claimed = store.claim_job(&ann(), jobs[0].id).await.expect("claimed");
    let claimed = claimed.expect("pending");
    assert_eq!((claimed.attempts, claimed.in_flight), (1, true));
    store
        .retry_job(&claimed, 1_700_000_100, "http 500".to_owned())
        .await
        .expect("rescheduled");
    let again = store.claim_job(&ann(), jobs[0].id).await.expect("claimed");
    assert_eq!(
        again.map(|job| (job.attempts, job.last_error)),
        Some((2, Some("http 500".to_owned())))
    );
    assert_eq!(
        store.claim_job(&bob(), jobs[0].id).await.expect("readable"),
        None
    );
}

async fn an_acked_job_leaves_a_sent_record_and_statuses_only_advance(store: impl Store) {
    let committed = store
        .commit_turn(with_jobs(&ann(), &["hello"]))
        .await
        .expect("committed");
    let job = store
        .claim_job(&ann(), committed.jobs[0].id)
        .await
        .expect("claimed")
        .expect("pending");
    store
        .ack_job(&job, Some("wamid.X".to_owned()), 1_700_000_010)
        .await
        .expect("acked");
    assert!(store.pending_jobs(10).await.expect("readable").is_empty());
    let sent = store
        .sent_record("main", "wamid.X")
        .await
        .expect("readable");
    let sent = sent.expect("remembered by provider id");
    assert_eq!(
        (sent.contact, sent.log_seq),
        (ann(), Some(committed.log[0]))
    );
    assert_eq!(
        delivery_of(&store, &ann()).await,
        Some(DeliveryState::Accepted)
    );

    for (state, expected) in [
        (DeliveryState::Read, DeliveryState::Read),
        (DeliveryState::Delivered, DeliveryState::Read),
    ] {
        let mut status = turn(&ann(), &[]);
        status.delivery = Some(DeliveryUpdate {
            log_seq: committed.log[0],
            delivery: Delivery {
                state,
                at: 1_700_000_020,
                provider_id: None,
                error: None,
            },
        });
        store.commit_turn(status).await.expect("committed");
        assert_eq!(
            delivery_of(&store, &ann()).await,
            Some(expected),
            "a late {state:?}"
        );
    }
}

async fn a_buried_job_is_dead_until_revived_behind_the_queue(store: impl Store) {
    let first = store
        .commit_turn(with_jobs(&ann(), &["one"]))
        .await
        .expect("committed");
    let second = store
        .commit_turn(with_jobs(&ann(), &["two"]))
        .await
        .expect("committed");
    let dead = store
        .bury_job(
            &first.jobs[0],
            "refused: (#131009)".to_owned(),
            1_700_000_050,
        )
        .await
        .expect("buried");
    assert_eq!(
        delivery_of(&store, &ann()).await,
        Some(DeliveryState::Queued),
        "the newest entry"
    );
    let listed = store.dead_jobs(10).await.expect("readable");
    assert_eq!(listed, std::slice::from_ref(&dead));
    assert_eq!(listed[0].reason, "refused: (#131009)");

    let revived = store
        .revive_job(dead.id, 1_700_000_060)
        .await
        .expect("revived")
        .expect("a dead letter");
    assert!(revived.id > second.jobs[0].id, "behind the queue");
    assert_eq!(revived.attempts, 0);
    assert!(store.dead_jobs(10).await.expect("readable").is_empty());
    assert_eq!(store.revive_job(dead.id, 0).await.expect("readable"), None);
    let ids: Vec<u64> = store
        .pending_jobs(10)
        .await
        .expect("readable")
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, [second.jobs[0].id, revived.id]);
}

async fn a_turns_fallback_replaces_its_jobs_once(store: impl Store) {
    let mut commit = with_jobs(&ann(), &["one", "two"]);
    for job in &mut commit.jobs {
        job.fallback = Some(Box::new(text("template")));
    }
    let committed = store.commit_turn(commit).await.expect("committed");
    let first = &committed.jobs[0];
    let replacement = store
        .replace_with_fallback(first, "outside".to_owned(), 1_700_000_070)
        .await
        .expect("replaced")
        .expect("a fallback");
    assert_eq!(replacement.id, first.id, "in the first job's place");
    assert_eq!(
        replacement.payload,
        Payload::Message {
            message: Box::new(text("template"))
        }
    );
    let pending = store.pending_jobs(10).await.expect("readable");
    assert_eq!(
        pending,
        std::slice::from_ref(&replacement),
        "the turn's other job is gone"
    );
    assert_eq!(store.dead_jobs(10).await.expect("readable").len(), 2);
    let again = store
        .replace_with_fallback(&replacement, "outside".to_owned(), 1_700_000_080)
        .await
        .expect("buried");
    assert_eq!(again, None, "the fallback goes once");
}

async fn clearing_the_outbox_leaves_jobs_in_flight(store: impl Store) {
    let committed = store
        .commit_turn(with_jobs(&ann(), &["one", "two"]))
        .await
        .expect("committed");
    store
        .claim_job(&ann(), committed.jobs[0].id)
        .await
        .expect("claimed");
    assert_eq!(store.clear_jobs().await.expect("cleared"), 1);
    let left: Vec<u64> = store
        .pending_jobs(10)
        .await
        .expect("readable")
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left, [committed.jobs[0].id]);
}

async fn queue_depths_follow_every_queue_change(store: impl Store) {
    let depths = |inbox, outbox, dead, timers| QueueDepths {
        inbox,
        outbox,
        dead,
        timers,
    };
    assert_depths(&store, depths(0, 0, 0, 0)).await;
    let accepted = store
        .accept_inbound(vec![inbound("a"), inbound("b")], Vec::new())
        .await
        .expect("accepted");
    let mut handled = with_jobs(&ann(), &["one", "two", "three"]);
    handled.inbox_done = Some(accepted[0].seq);
    handled.timers = vec![remind(100), remind(200)];
    let jobs = store.commit_turn(handled).await.expect("committed").jobs;
    assert_depths(&store, depths(1, 3, 0, 2)).await;
    for _ in 0..2 {
        store
            .finish_inbound(accepted[1].seq)
            .await
            .expect("finished");
    }
    let claimed = store.claim_job(&ann(), jobs[0].id).await.expect("claimed");
    let claimed = claimed.expect("pending");
    store
        .retry_job(&claimed, 1_700_000_100, "503".to_owned())
        .await
        .expect("rescheduled");
    store
        .ack_job(&claimed, None, 1_700_000_100)
        .await
        .expect("acked");
    assert_depths(&store, depths(0, 2, 0, 2)).await;
    let dead = store
        .bury_job(&jobs[1], "refused".to_owned(), 1_700_000_100)
        .await
        .expect("buried");
    assert_depths(&store, depths(0, 1, 1, 2)).await;
    store
        .revive_job(dead.id, 1_700_000_110)
        .await
        .expect("revived");
    assert_depths(&store, depths(0, 2, 0, 2)).await;

    let timers = store.timers(None, 10).await.expect("readable");
    let mut fired = turn(&ann(), &[]);
    fired.fired_timer = Some(timers[0].id);
    store.commit_turn(fired).await.expect("committed");
    for _ in 0..2 {
        store.drop_timer(timers[1].id).await.expect("dropped");
    }
    assert_depths(&store, depths(0, 2, 0, 0)).await;

    let mut outside = with_jobs(&bob(), &["four", "five"]);
    for job in &mut outside.jobs {
        job.fallback = Some(Box::new(text("template")));
    }
    let outside = store.commit_turn(outside).await.expect("committed").jobs;
    store
        .replace_with_fallback(&outside[0], "outside".to_owned(), 1_700_000_120)
        .await
        .expect("replaced");
    assert_depths(&store, depths(0, 3, 2, 0)).await;
    assert_eq!(store.clear_jobs().await.expect("cleared"), 3);
    store.sweep(0, i64::MAX).await.expect("swept");
    assert_depths(&store, depths(0, 0, 0, 0)).await;
}

/// The store's queue depths are `expected`, and are what listing each queue counts.
async fn assert_depths(store: &impl Store, expected: QueueDepths) {
    let all = usize::MAX;
    let count = |n: usize| u64::try_from(n).expect("small");
    let listed = QueueDepths {
        inbox: count(store.pending_inbound().await.expect("readable").len()),
        outbox: count(store.pending_jobs(all).await.expect("readable").len()),
        dead: count(store.dead_jobs(all).await.expect("readable").len()),
        timers: count(store.timers(None, all).await.expect("readable").len()),
    };
    assert_eq!(listed, expected, "the queues as listed");
    assert_eq!(store.queue_depths().await.expect("readable"), expected);
}

async fn contacts_are_paged_by_id_within_their_channel(store: impl Store) {
    for id in ["30", "10", "20"] {
        store
            .commit_turn(commit(ContactState::new("main", id)))
            .await
            .expect("committed");
    }
    store
        .commit_turn(commit(ContactState::new("other", "15")))
        .await
        .expect("committed");
    let ids = |page: Vec<ContactState>| page.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let first = store
        .contacts_page("main", None, 2)
        .await
        .expect("readable");
    assert_eq!(ids(first), ["10", "20"]);
    let rest = store
        .contacts_page("main", Some("20"), 2)
        .await
        .expect("readable");
    assert_eq!(ids(rest), ["30"]);
    let none = store
        .contacts_page("main", Some("30"), 2)
        .await
        .expect("readable");
    assert!(none.is_empty());
}

async fn timers_are_listed_earliest_first_and_by_contact(store: impl Store) {
    store
        .commit_turn(with_timers(&ann(), &[300, 100]))
        .await
        .expect("committed");
    store
        .commit_turn(with_timers(&bob(), &[200]))
        .await
        .expect("committed");
    let all = store.timers(None, 10).await.expect("readable");
    assert_eq!(dues(&all), [100, 200, 300]);
    let ann_only = store.timers(Some(&ann()), 10).await.expect("readable");
    assert_eq!(dues(&ann_only), [100, 300]);
    assert_eq!(dues(&store.timers(None, 1).await.expect("readable")), [100]);
}

fn broadcast(id: &str) -> Broadcast {
    Broadcast {
        id: id.to_owned(),
        flow: "promo".to_owned(),
        audience: Audience::Tags(vec!["vip".to_owned()]),
        channel: "main".to_owned(),
        cursor: None,
        started: 0,
        created_at: 1_700_000_000,
    }
}

async fn a_schedule_fires_once_per_due_time_with_its_broadcast(store: impl Store) {
    assert!(store.schedule_fires().await.expect("readable").is_empty());
    store.skip_schedule("promo#0", 1_000).await.expect("noted");
    assert!(
        !store
            .fire_schedule("promo#0", 900, broadcast("schedule:promo#0:900"))
            .await
            .expect("readable"),
        "a due time before the last one considered does not fire"
    );
    assert!(
        store
            .fire_schedule("promo#0", 1_060, broadcast("schedule:promo#0:1060"))
            .await
            .expect("fired")
    );
    assert!(
        !store
            .fire_schedule("promo#0", 1_060, broadcast("schedule:promo#0:1060"))
            .await
            .expect("readable"),
        "the same due time fires once"
    );
    assert_eq!(
        store.schedule_fires().await.expect("readable")["promo#0"],
        1_060
    );
    let pending = store.broadcasts().await.expect("readable");
    assert_eq!(pending, [broadcast("schedule:promo#0:1060")]);
}

async fn broadcasts_keep_their_progress_until_finished(store: impl Store) {
    let mut first = broadcast("api:1");
    store.save_broadcast(&first).await.expect("saved");
    let mut second = broadcast("api:2");
    second.created_at += 10;
    store.save_broadcast(&second).await.expect("saved");
    first.cursor = Some("15550001111".to_owned());
    first.started = 1;
    store.save_broadcast(&first).await.expect("saved");
    assert_eq!(
        store.broadcasts().await.expect("readable"),
        [first, second.clone()]
    );
    store.finish_broadcast("api:1").await.expect("finished");
    assert_eq!(store.broadcasts().await.expect("readable"), [second]);
}

// ---- helpers ----

fn ann() -> ContactKey {
    ContactKey::new("main", "15550001111")
}

fn bob() -> ContactKey {
    ContactKey::new("main", "15550002222")
}

/// A turn that only saves `state`.
fn commit(state: ContactState) -> TurnCommit {
    TurnCommit {
        state,
        log: Vec::new(),
        timers: Vec::new(),
        fired_timer: None,
        dedupe_keys: Vec::new(),
        committed_at: 1_700_000_000,
        jobs: Vec::new(),
        inbox_done: None,
        delivery: None,
    }
}

/// A turn of `contact` that logs `texts`.
fn turn(contact: &ContactKey, texts: &[&str]) -> TurnCommit {
    let mut turn = commit(ContactState::new(&contact.channel, &contact.id));
    turn.log = texts.iter().map(|text| said(text)).collect();
    turn
}

/// A turn of `contact` that sets reminders due at `times`.
fn with_timers(contact: &ContactKey, times: &[i64]) -> TurnCommit {
    let mut turn = turn(contact, &[]);
    turn.timers = times.iter().map(|&due| remind(due)).collect();
    turn
}

fn remind(due: i64) -> TimerRequest {
    TimerRequest::StartFlow {
        flow: "reminder".to_owned(),
        due,
    }
}

fn said(text: &str) -> NewLogEntry {
    NewLogEntry {
        at: 1_700_000_000,
        direction: Direction::Inbound,
        message: json!({"type": "text", "text": {"body": text}}),
        delivery: None,
    }
}

fn texts(entries: &[LogEntry]) -> Vec<String> {
    let body = |entry: &LogEntry| entry.message["text"]["body"].as_str().unwrap().to_owned();
    entries.iter().map(body).collect()
}

fn dues(timers: &[StoredTimer]) -> Vec<i64> {
    timers.iter().map(|timer| timer.timer.due()).collect()
}

/// Replaces the value of every record of every tree, as a damaged disk or a foreign writer might.
fn overwrite_every_record(dir: &Path, garbage: &[u8]) {
    let db = retry_while_locked(|| ::sled::open(dir));
    for name in ["contacts", "log", "timers"] {
        let tree = db.open_tree(name).unwrap();
        for key in tree.iter().keys() {
            tree.insert(key.unwrap(), garbage).unwrap();
        }
    }
    db.flush().unwrap();
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, key_start: &str) {
    match result {
        Err(StoreError::Corrupt { key, .. }) => assert!(key.starts_with(key_start), "{key}"),
        other => panic!("expected a corrupt {key_start} record, got {other:?}"),
    }
}

fn text(body: &str) -> Outbound {
    serde_json::from_value(json!({"type": "text", "text": {"body": body}})).expect("a text message")
}

/// A turn of `contact` that logs and queues one text reply per item of `texts`.
fn with_jobs(contact: &ContactKey, texts: &[&str]) -> TurnCommit {
    let mut turn = turn(contact, &[]);
    for (index, body) in texts.iter().enumerate() {
        turn.log.push(NewLogEntry {
            at: 1_700_000_000,
            direction: Direction::Outbound,
            message: json!({"message": text(body)}),
            delivery: Some(Delivery {
                state: DeliveryState::Queued,
                at: 1_700_000_000,
                provider_id: None,
                error: None,
            }),
        });
        turn.jobs.push(NewJob {
            payload: Payload::Message {
                message: Box::new(text(body)),
            },
            fallback: None,
            log_index: Some(index),
        });
    }
    turn
}

/// An inbox entry: a text `id` from Ann.
fn inbound(id: &str) -> NewInboxEntry {
    let event: InboundEvent = serde_json::from_value(json!({
        "event": "message", "id": id, "from": "15550001111", "timestamp": 1_700_000_000,
        "content": {"type": "text", "body": id}
    }))
    .expect("a message event");
    NewInboxEntry {
        channel: "main".to_owned(),
        received_at: 1_700_000_000,
        event,
    }
}

/// The delivery state of the contact's newest log entry.
async fn delivery_of(store: &impl Store, contact: &ContactKey) -> Option<DeliveryState> {
    let log = store.transcript(contact, 1).await.expect("readable");
    log.last()?.delivery.as_ref().map(|d| d.state)
}

/// Opens the store again after the previous handle was dropped.
fn reopen(dir: &Path) -> SledStore {
    retry_while_locked(|| SledStore::open(dir))
}

/// Runs `open` until it succeeds: sled's background flusher thread releases the directory lock
/// a moment after the last handle is dropped (a new process after a crash never waits).
fn retry_while_locked<T, E: std::fmt::Debug>(open: impl Fn() -> Result<T, E>) -> T {
    for _ in 0..100 {
        if let Ok(opened) = open() {
            return opened;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    open().expect("the directory opens once the old handle is gone")
}
