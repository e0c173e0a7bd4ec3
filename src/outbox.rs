//! Sending replies through providers: one queue per contact, so a contact's messages are
//! accepted by the provider in order while different contacts send in parallel.
//!
//! Turns are committed before their sends are queued, so a reply is never sent for state that
//! was not saved. This queue lives in memory: retries are bounded and a crash drops what was
//! queued — the durable outbox (retries with backoff, dead letters) replaces it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::message::Outbound;
use crate::provider::http::HttpClient;
use crate::provider::registry::Channel;
use crate::provider::{HttpRequest, SendFailure};
use crate::store::ContactKey;

/// Attempts per message before it is given up (and logged).
const MAX_ATTEMPTS: u32 = 3;
/// A contact's queue closes after this long idle.
const IDLE: Duration = Duration::from_secs(30);

/// Something to send for one contact.
#[derive(Debug)]
pub enum Job {
    /// A reply.
    Message(Box<Outbound>),
    /// A mark-as-read (or other provider request) that needs no reply handling.
    Request(HttpRequest),
}

/// One contact's pending sends, each with the channel to send it on.
type Queue = mpsc::UnboundedSender<(Arc<Channel>, Job)>;

/// The per-contact send queues.
#[derive(Debug, Clone)]
pub struct Outbox {
    http: HttpClient,
    queues: Arc<Mutex<HashMap<ContactKey, Queue>>>,
}

impl Outbox {
    /// An outbox sending through `http`.
    #[must_use]
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            queues: Arc::default(),
        }
    }

    /// Queues `jobs` for `contact` behind what is already queued for them.
    pub fn enqueue(&self, channel: &Arc<Channel>, contact: &ContactKey, jobs: Vec<Job>) {
        let mut queues = match self.queues.lock() {
            Ok(queues) => queues,
            Err(poisoned) => poisoned.into_inner(),
        };
        let sender = match queues.get(contact) {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::unbounded_channel();
                queues.insert(contact.clone(), sender.clone());
                tokio::spawn(self.clone().drain(contact.clone(), receiver));
                sender
            }
        };
        for job in jobs {
            // The worker only closes under this lock after finding its queue empty.
            let _ = sender.send((Arc::clone(channel), job));
        }
    }

    async fn drain(
        self,
        contact: ContactKey,
        mut receiver: mpsc::UnboundedReceiver<(Arc<Channel>, Job)>,
    ) {
        loop {
            match tokio::time::timeout(IDLE, receiver.recv()).await {
                Ok(Some((channel, job))) => self.send(&channel, &contact, job).await,
                Ok(None) => return,
                Err(_) => {
                    let mut queues = match self.queues.lock() {
                        Ok(queues) => queues,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    if receiver.is_empty() {
                        queues.remove(&contact);
                        return;
                    }
                }
            }
        }
    }

    /// The request for `job`, built anew for every attempt (signed requests carry a timestamp).
    fn request(channel: &Channel, contact: &ContactKey, job: &Job) -> Option<HttpRequest> {
        match job {
            Job::Request(request) => Some(request.clone()),
            Job::Message(message) => match channel.provider.send_request(&contact.id, message) {
                Ok(request) => Some(request),
                Err(error) => {
                    tracing::error!(message = "Reply cannot be sent.", channel = %channel.id, contact = %contact.id, %error);
                    None
                }
            },
        }
    }

    async fn send(&self, channel: &Channel, contact: &ContactKey, job: Job) {
        for attempt in 1..=MAX_ATTEMPTS {
            let Some(request) = Self::request(channel, contact, &job) else {
                return;
            };
            let failure = match self.http.execute(&request).await {
                Ok(response) => match channel.provider.read_response(&response) {
                    Ok(sent) => {
                        tracing::debug!(channel = %channel.id, contact = %contact.id, provider_id = ?sent.provider_id, "sent");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(message = "Provider refused a send.", channel = %channel.id, contact = %contact.id, attempt, %error);
                        error.decision
                    }
                },
                Err(error) => {
                    tracing::warn!(message = "Provider did not answer.", channel = %channel.id, contact = %contact.id, attempt, %error);
                    SendFailure::Retry
                }
            };
            match failure {
                SendFailure::Retry => tokio::time::sleep(Duration::from_secs(1 << attempt)).await,
                SendFailure::RateLimited(after) => {
                    let wait = after
                        .unwrap_or(Duration::from_secs(1 << attempt))
                        .min(Duration::from_secs(30));
                    tokio::time::sleep(wait).await;
                }
                SendFailure::OutsideWindow | SendFailure::OptedOut | SendFailure::DoNotRetry => {
                    return;
                }
            }
        }
        tracing::error!(message = "Reply given up after retries.", channel = %channel.id, contact = %contact.id);
    }
}
