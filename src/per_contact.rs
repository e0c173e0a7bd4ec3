//! One contact at a time: the turn lock that serializes a contact's handling, and the ordered
//! work queues that feed a contact's inbound events and outbound sends to one worker each.
//!
//! Both are sharded or per-key, never one global lock, so contacts proceed in parallel while
//! each contact's work stays in order.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, mpsc};

use crate::store::ContactKey;

/// Contacts' turn locks, held weakly so unused ones can be dropped.
type LockShard = HashMap<ContactKey, Weak<tokio::sync::Mutex<()>>>;

/// One async mutex per contact, created on demand and dropped when unused; sharded so taking
/// one never contends on a global lock.
pub struct ContactLocks {
    shards: Box<[Mutex<LockShard>]>,
    hasher: RandomState,
}

impl Default for ContactLocks {
    fn default() -> Self {
        Self {
            shards: (0..64).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl ContactLocks {
    /// Waits for the contact's turn; waiters are served first come, first served.
    pub async fn lock(&self, contact: &ContactKey) -> OwnedMutexGuard<()> {
        let mutex = self.mutex(contact);
        mutex.lock_owned().await
    }

    fn mutex(&self, contact: &ContactKey) -> Arc<tokio::sync::Mutex<()>> {
        let index =
            usize::try_from(self.hasher.hash_one(contact) % self.shards.len() as u64).unwrap_or(0);
        let mut shard = unpoisoned(self.shards[index].lock());
        if let Some(mutex) = shard.get(contact).and_then(Weak::upgrade) {
            return mutex;
        }
        if shard.len() >= 1024 {
            shard.retain(|_, weak| weak.strong_count() > 0);
        }
        let mutex = Arc::new(tokio::sync::Mutex::new(()));
        shard.insert(contact.clone(), Arc::downgrade(&mutex));
        mutex
    }
}

/// A contact's worker leaves after this long without work (and comes back on the next push).
const IDLE: Duration = Duration::from_secs(30);

/// Per-contact FIFO queues, each drained by one worker task started on demand: items pushed
/// for one contact are worked on in push order, one at a time; contacts run in parallel.
pub struct ContactQueues<T> {
    queues: Mutex<HashMap<ContactKey, mpsc::UnboundedSender<T>>>,
}

impl<T> Default for ContactQueues<T> {
    fn default() -> Self {
        Self {
            queues: Mutex::default(),
        }
    }
}

impl<T: Send + 'static> ContactQueues<T> {
    /// Queues `items` behind the contact's earlier ones; when the contact has no worker, spawns
    /// `start(drain)` to become it.
    pub fn push<F, Fut>(
        self: &Arc<Self>,
        contact: &ContactKey,
        items: impl IntoIterator<Item = T>,
        start: F,
    ) where
        F: FnOnce(Drain<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut queues = unpoisoned(self.queues.lock());
        let sender = match queues.get(contact) {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::unbounded_channel();
                queues.insert(contact.clone(), sender.clone());
                tokio::spawn(start(Drain {
                    contact: contact.clone(),
                    receiver,
                    queues: Arc::clone(self),
                }));
                sender
            }
        };
        for item in items {
            // A worker only leaves under this lock after finding its queue empty, so the
            // receiver is alive here unless the worker panicked (then the item waits in the
            // store for the next start).
            let _ = sender.send(item);
        }
    }

    /// Contacts with a worker right now.
    #[must_use]
    pub fn active(&self) -> usize {
        unpoisoned(self.queues.lock()).len()
    }
}

/// A worker's end of one contact's queue.
pub struct Drain<T> {
    contact: ContactKey,
    receiver: mpsc::UnboundedReceiver<T>,
    queues: Arc<ContactQueues<T>>,
}

impl<T> Drain<T> {
    /// The contact this queue is for.
    #[must_use]
    pub fn contact(&self) -> &ContactKey {
        &self.contact
    }

    /// The next item; `None` once the queue stayed empty for a while (the worker should end).
    pub async fn next(&mut self) -> Option<T> {
        loop {
            match tokio::time::timeout(IDLE, self.receiver.recv()).await {
                Ok(item) => return item,
                Err(_) => {
                    let mut queues = unpoisoned(self.queues.queues.lock());
                    if self.receiver.is_empty() {
                        queues.remove(&self.contact);
                        return None;
                    }
                }
            }
        }
    }
}

/// The guard of a lock whose holder panicked: the data behind these locks is a plain map that
/// a panic cannot leave half-updated.
fn unpoisoned<G>(result: Result<G, std::sync::PoisonError<G>>) -> G {
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}
