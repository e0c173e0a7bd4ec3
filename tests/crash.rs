//! The real binary, SIGKILLed at random moments while four contacts talk to it, loses no reply
//! and duplicates none beyond the one window DESIGN §1 allows (a send in flight at the crash).
//!
//! Black box: `chatflow serve` on a temp data dir, a Meta channel pointing at a mock Graph API
//! (`common/faulty.rs`) that accepts every send, and a bot that answers every text with
//! `echo <text>`. Each contact sends its texts one after another as signed Meta webhooks; like
//! Meta, a webhook that got no 2xx (the server was down) is re-posted until it gets one, and a
//! delivered one is sometimes redelivered. Meanwhile the server is killed with SIGKILL at random
//! moments and restarted on the same data dir. Afterwards every accepted text must have its reply
//! at the mock, in the contact's order, each once — except a reply whose two copies were sent by
//! two server lives separated by a kill (at most one per contact per kill).
//!
//! ```sh
//! cargo test --test crash -- --nocapture                                # 3 kills, a few seconds
//! CHATFLOW_CRASH_CYCLES=50 cargo test --release --test crash -- --nocapture   # a long soak
//! CHATFLOW_CRASH_CYCLES=0 cargo test --test crash -- --nocapture        # no kills: checks the harness
//! CHATFLOW_CRASH_SEED=123 cargo test --test crash -- --nocapture        # replays a printed seed
//! CHATFLOW_CRASH_LOGS=1 cargo test --test crash -- --nocapture          # the servers' logs on stderr
//! ```
//! A seed replays the kill delays, think times and redelivery choices; the interleaving with the
//! server's own timing cannot be replayed exactly.

// Included by path rather than through `mod common`: this test uses no library item, so the
// engine's internals can change without touching it.
#[allow(
    dead_code,
    reason = "the crash test uses only the provider and its answers"
)]
#[path = "common/faulty.rs"]
mod faulty;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use faulty::{FaultyProvider, Outcome, Received, faulty_provider};

/// Contacts talking at once; each is a sequence of texts sent one after another.
const CONTACTS: usize = 4;
/// Kills in the normal suite (`CHATFLOW_CRASH_CYCLES` overrides).
const DEFAULT_CYCLES: usize = 3;
/// How long a server life lasts before its kill, in milliseconds.
const LIFE_MS: Range<u64> = 100..700;
/// Traffic on the last server before the contacts stop (the whole run when there are no kills).
const TAIL: Duration = Duration::from_millis(500);
/// A contact's pause between two texts, in milliseconds: people do not type in lockstep.
const THINK_MS: Range<u64> = 10..40;
/// How long the mock Graph API takes to accept a send, in milliseconds (Meta's takes longer):
/// replies wait in the send queue and are in flight when a kill comes, as in production.
const SEND_LATENCY_MS: Range<u64> = 5..40;
/// Chance in percent that the provider redelivers a webhook it already got a 200 for.
const REDELIVERY_PERCENT: u64 = 10;
/// Pause before re-posting a webhook that got no 2xx.
const REPOST_PAUSE: Duration = Duration::from_millis(20);
/// One webhook post may take this long; a hung server counts as down.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the replies of every accepted text may take to arrive after the last restart.
const REPLY_WAIT: Duration = Duration::from_secs(20);
/// After every reply arrived, how long to keep listening for late duplicates.
const SETTLE: Duration = Duration::from_millis(500);
/// How long SIGTERM may take to stop the server.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// Failures listed per check; the rest are counted.
const LISTED: usize = 20;
/// The Meta channel's app secret, which signs the webhooks.
const APP_SECRET: &str = "s3cret";
/// The bot: every text is answered with `echo <text>`.
const ECHO_FLOW: &str = "flow: echo\ntriggers:\n  - event: text\nsteps:\n  reply:\n    send:\n      text: \"echo {{message.text}}\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_no_reply() {
    let plan = Plan::from_env();
    println!("{}", plan.describe());
    let seed = plan.seed;
    let provider = faulty_provider(move |request| graph_api(request, seed)).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = write_config(dir.path(), &provider.base);
    let server = start(&config).await;

    let traffic = Arc::new(Traffic::new(&server.base, plan.deadline()));
    let senders: Vec<_> = (1..=CONTACTS)
        .map(|contact| {
            let rng = Rng(plan.seed ^ contact as u64);
            tokio::spawn(Arc::clone(&traffic).talk(contact, plan.messages_per_contact(), rng))
        })
        .collect();
    let (server, kills) = crash_loop(&plan, &config, server, &traffic).await;
    traffic.stop.store(true, Ordering::SeqCst);
    let mut logs = Vec::new();
    for sender in senders {
        logs.push(sender.await.expect("a contact's task ends"));
    }

    let expected = expected_replies(&logs);
    let received = wait_for_replies(&provider, &expected).await;
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("the stop finishes");
    let run = Run {
        started: plan.started,
        logs,
        kills,
        replies: replies(&received),
    };
    println!("{}", run.summary());
    let failures = run.failures(&expected, stopped);
    assert!(
        failures.is_empty(),
        "crash test failed ({}):\n\n{}",
        plan.replay(),
        failures.join("\n\n")
    );
}

/// SIGTERM while replies wait to be sent: the server exits 0 after the sends under way finish,
/// and the next start sends the rest — every reply once, in order, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_what_is_under_way_and_the_next_start_sends_the_rest_once() {
    const TEXTS: usize = 6;
    let provider = faulty_provider(|request| {
        Outcome::meta_accepted(&format!("wamid.out{}", request.index))
            .after(Duration::from_millis(150))
    })
    .await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = write_config(dir.path(), &provider.base);
    let server = start(&config).await;
    let client = reqwest::Client::new();
    for seq in 1..=TEXTS {
        let webhook = Webhook::new(1, seq);
        let response = client
            .post(format!("{}/webhooks/main", server.base))
            .header("x-hub-signature-256", &webhook.signature)
            .body(webhook.body)
            .send()
            .await
            .expect("the server answers");
        assert!(response.status().is_success(), "{}", response.status());
    }
    let stopped = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("the stop finishes");
    assert!(
        stopped.is_ok_and(|status| status.success()),
        "a graceful stop exits 0"
    );
    let before_restart = replies(&provider.received()).len();
    assert!(
        before_restart < TEXTS,
        "the test needs replies left for the next start"
    );

    set_life(&config, 1);
    let server = start(&config).await;
    let expected: Vec<String> = (1..=TEXTS).map(|seq| format!("echo c1-m{seq}")).collect();
    for _ in 0..500 {
        if replies(&provider.received()).len() >= TEXTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: Vec<String> = replies(&provider.received())
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(all, expected, "{before_restart} were sent before the stop");
    drop(server);
}

/// The mock Graph API: every send accepted with a fresh message id, mark-as-read acknowledged,
/// each after a latency drawn from the seed and the request's number.
fn graph_api(request: &Received, seed: u64) -> Outcome {
    let latency = Rng(seed ^ ((request.index as u64) << 32)).millis(SEND_LATENCY_MS);
    let outcome = if request.json["status"] == "read" {
        Outcome::json(200, json!({"success": true}))
    } else {
        Outcome::meta_accepted(&format!("wamid.out{}", request.index))
    };
    outcome.after(latency)
}

/// The run's parameters, from the environment.
struct Plan {
    seed: u64,
    cycles: usize,
    started: Instant,
}

impl Plan {
    fn from_env() -> Self {
        let number = |name: &str| {
            std::env::var(name).ok().map(|value| {
                value
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}"))
            })
        };
        let clock = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("a clock after 1970");
        Self {
            seed: number("CHATFLOW_CRASH_SEED").unwrap_or(clock.as_nanos() as u64),
            cycles: number("CHATFLOW_CRASH_CYCLES")
                .map_or(DEFAULT_CYCLES, |cycles| cycles as usize),
            started: Instant::now(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "crash test: {} kills, seed {} ({})",
            self.cycles,
            self.seed,
            self.replay()
        )
    }

    fn replay(&self) -> String {
        format!(
            "replay with CHATFLOW_CRASH_SEED={} CHATFLOW_CRASH_CYCLES={}",
            self.seed, self.cycles
        )
    }

    /// A bound on each contact's texts, far above what the run's time allows.
    fn messages_per_contact(&self) -> usize {
        200 * (self.cycles + 2)
    }

    /// When the contacts give up re-posting: a server that stays down is a failure, not a hang.
    fn deadline(&self) -> Instant {
        self.started + Duration::from_secs(15 + 3 * self.cycles as u64)
    }
}

/// A small seeded generator (splitmix64), so a run's random choices can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn millis(&mut self, range: Range<u64>) -> Duration {
        Duration::from_millis(range.start + self.next() % (range.end - range.start))
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A config in `dir`: the echo bot, data kept in `dir/data` across restarts, and one Meta
/// channel whose Graph API is the mock (no simulator channel, so Meta is the only one).
fn write_config(dir: &Path, graph_api: &str) -> PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir(&flows).expect("a flows dir");
    std::fs::write(flows.join("echo.yaml"), ECHO_FLOW).expect("the flow written");
    let text = format!(
        "listen: 127.0.0.1:0\ndata_dir: {data}\nflows_dir: {flows}\nsimulator: false\nchannels:\n  - id: main\n    provider: meta\n    base_url: {graph_api}\n    phone_number_id: \"1000\"\n    access_token: life-0\n    app_secret: {APP_SECRET}\n    verify_token: v\n",
        data = dir.join("data").display(),
        flows = flows.display(),
    );
    let path = dir.join("chatflow.yaml");
    std::fs::write(&path, text).expect("the config written");
    path
}

/// Gives server life `life` its own access token, `life-N`: the mock reads from each send's
/// `Authorization` header which process sent it, exactly, even when a killed process's last
/// request is read after its successor started.
fn set_life(config: &Path, life: usize) {
    let text = std::fs::read_to_string(config).expect("the config is readable");
    let text: Vec<String> = text
        .lines()
        .map(
            |line| match line.trim_start().strip_prefix("access_token:") {
                Some(_) => format!("    access_token: life-{life}"),
                None => line.to_owned(),
            },
        )
        .collect();
    std::fs::write(config, text.join("\n") + "\n").expect("the config written");
}

/// The server life that sent `request`, from its `Bearer life-N` token.
fn sender_life(request: &Received) -> usize {
    request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer life-"))
        .and_then(|life| life.parse().ok())
        .unwrap_or(usize::MAX)
}

/// A running `chatflow serve` on an ephemeral port.
struct Server {
    child: Child,
    base: String,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

/// What one kill did, for telling a duplicate across it from one that is a bug.
struct Kill {
    /// When SIGKILL was sent.
    signalled: Instant,
    /// When the next server was spawned, its predecessor being gone: replies recorded before
    /// were sent by the old life, those after by the new one.
    respawned: Instant,
    /// When the next server printed its address.
    up: Instant,
    /// The exit status if the server had already died on its own.
    died_by_itself: Option<ExitStatus>,
}

impl Server {
    /// Starts the binary and reads its address from the first stdout line (blocking).
    fn start(config: &Path) -> Self {
        let stderr = if std::env::var_os("CHATFLOW_CRASH_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatflow"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("chatflow starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("a first line");
        let base = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("chatflow did not start: no address in {line:?}"))
            .to_owned();
        Self {
            child,
            base,
            _stdout: stdout,
        }
    }

    /// `kill -9`, waits for the exit, starts server life `life` on the same data (blocking).
    fn crash_and_restart(mut self, config: &Path, life: usize) -> (Self, Kill) {
        let died_by_itself = self.child.try_wait().expect("the server's state");
        let signalled = Instant::now();
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("the killed server exits");
        let respawned = Instant::now();
        set_life(config, life);
        let next = Self::start(config);
        let kill = Kill {
            signalled,
            respawned,
            up: Instant::now(),
            died_by_itself,
        };
        (next, kill)
    }

    /// SIGTERM, then the exit status (blocking); an error when it does not stop in time.
    fn terminate(mut self) -> Result<ExitStatus, String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let deadline = Instant::now() + STOP_WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("the server's state") {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "the server did not stop within {STOP_WAIT:?} of SIGTERM"
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server without blocking the runtime.
async fn start(config: &Path) -> Server {
    let config = config.to_owned();
    tokio::task::spawn_blocking(move || Server::start(&config))
        .await
        .expect("the server starts")
}

/// Kills and restarts the server `plan.cycles` times at random moments, pointing the contacts
/// at each new address; then lets the last server take traffic for a while.
async fn crash_loop(
    plan: &Plan,
    config: &Path,
    mut server: Server,
    traffic: &Traffic,
) -> (Server, Vec<Kill>) {
    let mut rng = Rng(plan.seed);
    let mut kills = Vec::new();
    for life in 1..=plan.cycles {
        tokio::time::sleep(rng.millis(LIFE_MS)).await;
        let config = config.to_owned();
        let (next, kill) =
            tokio::task::spawn_blocking(move || server.crash_and_restart(&config, life))
                .await
                .expect("the server restarts");
        *traffic.address.write().expect("not poisoned") = next.base.clone();
        kills.push(kill);
        server = next;
    }
    tokio::time::sleep(TAIL).await;
    (server, kills)
}

/// What the contacts share: the client, the server's current address, the stop signal.
struct Traffic {
    client: reqwest::Client,
    /// The server's base URL; it changes at every restart.
    address: RwLock<String>,
    /// Set when the contacts should stop after their current text.
    stop: AtomicBool,
    deadline: Instant,
}

/// One text a contact sent: when it was first posted, and when and after how many posts it got
/// its 200 (a kill in between means the server died while handling it).
struct Text {
    text: String,
    first_post: Instant,
    posts: usize,
    accepted: Option<Instant>,
}

/// What one contact did.
struct ContactLog {
    contact: usize,
    texts: Vec<Text>,
    posts: usize,
    failed_posts: usize,
    redeliveries: usize,
    /// Why the contact stopped early, if it did.
    error: Option<String>,
}

/// One signed Meta webhook carrying a contact's text.
struct Webhook {
    id: String,
    text: String,
    body: String,
    signature: String,
}

impl Webhook {
    fn new(contact: usize, seq: usize) -> Self {
        let text = format!("c{contact}-m{seq}");
        let id = format!("wamid.{text}");
        let from = phone(contact);
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1000"},
            "contacts": [{"profile": {"name": format!("Contact {contact}")}, "wa_id": from}],
            "messages": [{"from": from, "id": id, "timestamp": unix_now().to_string(), "type": "text", "text": {"body": text}}]
        }}]}]})
        .to_string();
        let mut mac =
            Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("any key length");
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        Self {
            id,
            text,
            body,
            signature,
        }
    }
}

/// Seconds since the Unix epoch, as webhook timestamps carry them.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// A contact's WhatsApp number (digits, no `+`).
fn phone(contact: usize) -> String {
    format!("1555000{contact:04}")
}

impl Traffic {
    fn new(address: &str, deadline: Instant) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(POST_TIMEOUT)
                .build()
                .expect("an HTTP client"),
            address: RwLock::new(address.to_owned()),
            stop: AtomicBool::new(false),
            deadline,
        }
    }

    /// One contact's conversation: texts one after another until told to stop.
    async fn talk(self: Arc<Self>, contact: usize, messages: usize, mut rng: Rng) -> ContactLog {
        let mut log = ContactLog {
            contact,
            texts: Vec::new(),
            posts: 0,
            failed_posts: 0,
            redeliveries: 0,
            error: None,
        };
        for seq in 1..=messages {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let webhook = Webhook::new(contact, seq);
            let first_post = Instant::now();
            let delivered = self.deliver(&webhook, &mut log).await;
            log.texts.push(Text {
                text: webhook.text.clone(),
                first_post,
                posts: delivered.as_ref().copied().unwrap_or(0),
                accepted: delivered.is_ok().then(Instant::now),
            });
            let redelivered = match delivered {
                Ok(_) if rng.chance(REDELIVERY_PERCENT) => {
                    log.redeliveries += 1;
                    self.deliver(&webhook, &mut log).await
                }
                other => other,
            };
            if let Err(error) = redelivered {
                log.error = Some(error);
                break;
            }
            tokio::time::sleep(rng.millis(THINK_MS)).await;
        }
        log
    }

    /// Posts `webhook` until it gets a 2xx, as a provider does, and counts the posts; 429, 5xx
    /// and no answer mean "try again", any other status is a bug in this test.
    async fn deliver(&self, webhook: &Webhook, log: &mut ContactLog) -> Result<usize, String> {
        let mut posts = 0;
        loop {
            posts += 1;
            if Instant::now() > self.deadline {
                return Err(format!(
                    "{} ({}) got no 2xx before the deadline: the server stayed down or unresponsive",
                    webhook.text, webhook.id
                ));
            }
            log.posts += 1;
            let base = self.address.read().expect("not poisoned").clone();
            match self.post(&base, webhook).await {
                Ok(status) if status.is_success() => return Ok(posts),
                Ok(status) if status.as_u16() != 429 && status.is_client_error() => {
                    return Err(format!(
                        "{} ({}) was refused with {status}: the webhook or its signature is wrong",
                        webhook.text, webhook.id
                    ));
                }
                _ => log.failed_posts += 1,
            }
            tokio::time::sleep(REPOST_PAUSE).await;
        }
    }

    async fn post(&self, base: &str, webhook: &Webhook) -> reqwest::Result<reqwest::StatusCode> {
        let response = self
            .client
            .post(format!("{base}/webhooks/main"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &webhook.signature)
            .body(webhook.body.clone())
            .send()
            .await?;
        Ok(response.status())
    }
}

/// The reply each accepted text must get, mapped to its contact and position.
fn expected_replies(logs: &[ContactLog]) -> HashMap<String, (usize, usize)> {
    logs.iter()
        .flat_map(|log| {
            log.texts
                .iter()
                .enumerate()
                .filter(|(_, text)| text.accepted.is_some())
                .map(|(seq, text)| (format!("echo {}", text.text), (log.contact, seq)))
        })
        .collect()
}

/// Waits until every expected reply reached the mock (then a little longer, for late
/// duplicates), or `REPLY_WAIT` passed; returns everything the mock received.
async fn wait_for_replies(
    provider: &FaultyProvider,
    expected: &HashMap<String, (usize, usize)>,
) -> Vec<Received> {
    let deadline = Instant::now() + REPLY_WAIT;
    while Instant::now() < deadline {
        let bodies: HashSet<String> = replies(&provider.received())
            .into_iter()
            .map(|reply| reply.body)
            .collect();
        if expected.keys().all(|body| bodies.contains(body)) {
            tokio::time::sleep(SETTLE).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    provider.received()
}

/// A text message the bot sent, as the mock received it.
struct Reply {
    /// The recipient's number without `+`.
    to: String,
    body: String,
    index: usize,
    at: Instant,
    /// The server life that sent it.
    life: usize,
}

/// The text sends among the requests (mark-as-read and other requests are not replies).
fn replies(received: &[Received]) -> Vec<Reply> {
    received
        .iter()
        .filter(|request| request.json["type"] == "text")
        .map(|request| Reply {
            to: request.json["to"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('+')
                .to_owned(),
            body: request.json["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            index: request.index,
            at: request.at,
            life: sender_life(request),
        })
        .collect()
}

/// Everything the run did, for the summary and the checks.
struct Run {
    started: Instant,
    logs: Vec<ContactLog>,
    kills: Vec<Kill>,
    replies: Vec<Reply>,
}

impl Run {
    fn summary(&self) -> String {
        let sum = |count: fn(&ContactLog) -> usize| self.logs.iter().map(count).sum::<usize>();
        let accepted = sum(|log| log.texts.iter().filter(|t| t.accepted.is_some()).count());
        let distinct: HashSet<&str> = self.replies.iter().map(|r| r.body.as_str()).collect();
        format!(
            "crash test summary: {} kills; {} texts sent by {CONTACTS} contacts, {accepted} accepted; \
             {} webhook posts ({} got no 2xx and were re-posted), {} redeliveries; \
             {} replies received ({} duplicates); {:.1} s",
            self.kills.len(),
            sum(|log| log.texts.len()),
            sum(|log| log.posts),
            sum(|log| log.failed_posts),
            sum(|log| log.redeliveries),
            self.replies.len(),
            self.replies.len() - distinct.len(),
            self.started.elapsed().as_secs_f64(),
        )
    }

    /// Every problem found, each a paragraph a reader can act on.
    fn failures(
        &self,
        expected: &HashMap<String, (usize, usize)>,
        stopped: Result<ExitStatus, String>,
    ) -> Vec<String> {
        let mut failures: Vec<String> = self
            .logs
            .iter()
            .filter_map(|log| log.error.clone())
            .map(|error| format!("a contact stopped early: {error}"))
            .collect();
        failures.extend(self.kills.iter().enumerate().filter_map(|(k, kill)| {
            kill.died_by_itself.map(|status| {
                format!(
                    "the server died by itself ({status}) before kill #{}",
                    k + 1
                )
            })
        }));
        failures.extend(self.missing(expected));
        failures.extend(self.unexpected(expected));
        failures.extend(self.out_of_order(expected));
        failures.extend(self.bad_duplicates());
        match stopped {
            Ok(status) if status.success() => {}
            Ok(status) => failures.push(format!(
                "after SIGTERM the server exited with {status}, not 0"
            )),
            Err(error) => failures.push(error),
        }
        failures
    }

    /// (a) Accepted texts without a reply, with where they fell among the kills.
    fn missing(&self, expected: &HashMap<String, (usize, usize)>) -> Option<String> {
        let got: HashSet<&str> = self.replies.iter().map(|r| r.body.as_str()).collect();
        let accepted = self.logs.iter().flat_map(|log| &log.texts);
        let lines: Vec<String> = accepted
            .filter(|text| text.accepted.is_some())
            .filter(|text| !got.contains(format!("echo {}", text.text).as_str()))
            .map(|text| self.placed(text))
            .collect();
        listing(
            &lines,
            &format!(
                "{} of {} texts got a 200 but never their reply within {REPLY_WAIT:?} of the last restart. \
                 A kill between a text's first post and its 200 lost a reply of a turn committed before \
                 the 200; a kill soon after its 200 lost a reply still queued for sending:",
                lines.len(),
                expected.len()
            ),
        )
    }

    /// Sends that answer nothing the contacts said (a wrong body or recipient).
    fn unexpected(&self, expected: &HashMap<String, (usize, usize)>) -> Option<String> {
        let lines: Vec<String> = self
            .replies
            .iter()
            .filter(|reply| {
                expected
                    .get(&reply.body)
                    .is_none_or(|&(contact, _)| phone(contact) != reply.to)
            })
            .map(|reply| format!("{:?} to {} ({})", reply.body, reply.to, self.request(reply)))
            .collect();
        listing(
            &lines,
            "replies that answer no accepted text of their recipient:",
        )
    }

    /// (b) Per contact, the first copies of its replies must arrive in the order it sent.
    fn out_of_order(&self, expected: &HashMap<String, (usize, usize)>) -> Option<String> {
        let mut seen = HashSet::new();
        let mut latest: HashMap<usize, (usize, &Reply)> = HashMap::new();
        let mut lines = Vec::new();
        for reply in &self.replies {
            let Some(&(contact, seq)) = expected.get(&reply.body) else {
                continue;
            };
            if !seen.insert(reply.body.as_str()) {
                continue;
            }
            match latest.get(&contact) {
                Some(&(before, earlier)) if before > seq => lines.push(format!(
                    "contact c{contact}: {:?} ({}; {}) arrived after {:?} ({}; {}), a later text",
                    reply.body,
                    self.accepted(contact, seq),
                    self.request(reply),
                    earlier.body,
                    self.accepted(contact, before),
                    self.request(earlier)
                )),
                _ => {
                    latest.insert(contact, (seq, reply));
                }
            }
        }
        listing(
            &lines,
            "replies of one contact out of the order of its texts:",
        )
    }

    /// (c) A reply sent twice is allowed only across a kill: one copy from the life that was
    /// killed, one from a later life, at most one such reply per contact per kill.
    fn bad_duplicates(&self) -> Option<String> {
        let mut copies: HashMap<&str, Vec<&Reply>> = HashMap::new();
        for reply in &self.replies {
            copies.entry(&reply.body).or_default().push(reply);
        }
        let mut per_kill: HashMap<(&str, usize), Vec<&str>> = HashMap::new();
        let mut lines = Vec::new();
        for (body, copies) in copies.iter().filter(|(_, copies)| copies.len() > 1) {
            let lives: Vec<usize> = copies.iter().map(|copy| copy.life).collect();
            let requests: Vec<String> = copies.iter().map(|copy| self.request(copy)).collect();
            if copies.len() == 2 && lives[0] < lives[1] {
                per_kill
                    .entry((copies[0].to.as_str(), lives[0] + 1))
                    .or_default()
                    .push(body);
            } else {
                lines.push(format!(
                    "{body:?} sent {} times, by server lives {lives:?} ({}): a redelivered webhook \
                     or a retried send made a second reply without a crash in between",
                    copies.len(),
                    requests.join(", ")
                ));
            }
        }
        for ((to, kill), bodies) in per_kill.iter().filter(|(_, bodies)| bodies.len() > 1) {
            lines.push(format!(
                "kill #{kill} duplicated {} replies to {to}: {bodies:?}; only the one in flight at \
                 the crash may be sent again",
                bodies.len()
            ));
        }
        lines.sort();
        listing(
            &lines,
            "replies sent more than once beyond what a crash allows:",
        )
    }

    /// The server life running at `at`: 0 until the first kill's restart, life `k` from kill
    /// `#k`'s restart on.
    fn life(&self, at: Instant) -> usize {
        self.kills
            .iter()
            .filter(|kill| kill.respawned <= at)
            .count()
    }

    /// Where a text fell among the kills, e.g. `c1-m7: posted at 1.200 s, 200 at 1.234 s on
    /// post 1; next kill #2 at 1.284 s (restarted at 1.320 s)`.
    fn placed(&self, text: &Text) -> String {
        let next = self
            .kills
            .iter()
            .enumerate()
            .find(|(_, kill)| kill.signalled > text.first_post);
        let kill = match next {
            Some((k, kill)) => format!(
                "next kill #{} at {} (restarted at {})",
                k + 1,
                self.clock(kill.signalled),
                self.clock(kill.up)
            ),
            None => "no kill after it".to_owned(),
        };
        let accepted = text
            .accepted
            .map_or("never".to_owned(), |at| self.clock(at));
        format!(
            "{}: posted at {}, 200 at {accepted} on post {}; {kill}",
            text.text,
            self.clock(text.first_post),
            text.posts
        )
    }

    /// `request #12 at 1.234 s in life 1`: where a reply copy reached the mock.
    fn request(&self, reply: &Reply) -> String {
        format!(
            "request #{} at {} sent by life {}",
            reply.index,
            self.clock(reply.at),
            reply.life
        )
    }

    /// `200 at 1.200 s in life 1`: when, and by which server life, the webhook of a contact's
    /// `seq`-th text (0-based) was accepted.
    fn accepted(&self, contact: usize, seq: usize) -> String {
        let text = self
            .logs
            .iter()
            .find(|log| log.contact == contact)
            .and_then(|log| log.texts.get(seq));
        let at = text.and_then(|text| text.accepted);
        at.map_or("no 200".to_owned(), |at| {
            format!("200 at {} in life {}", self.clock(at), self.life(at))
        })
    }

    fn clock(&self, at: Instant) -> String {
        format!(
            "{:.3} s",
            at.saturating_duration_since(self.started).as_secs_f64()
        )
    }
}

/// `title` and up to `LISTED` lines, or nothing when there are no lines.
fn listing(lines: &[String], title: &str) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut text = title.to_owned();
    for line in lines.iter().take(LISTED) {
        let _ = write!(text, "\n  {line}");
    }
    if lines.len() > LISTED {
        let _ = write!(text, "\n  … and {} more", lines.len() - LISTED);
    }
    Some(text)
}

/// The checks themselves, on made-up runs of one contact with two texts and one kill at 100 ms
/// (next life from 110 ms): a harness that cannot fail proves nothing.
#[test]
fn the_checks_allow_a_duplicate_only_across_a_kill_and_catch_the_rest() {
    let ok = "";
    let cases = [
        (&[("c1-m1", 20), ("c1-m2", 60), ("c1-m2", 120)][..], ok),
        (
            &[("c1-m1", 20), ("c1-m1", 30), ("c1-m2", 60)],
            "sent 2 times",
        ),
        (
            &[("c1-m2", 20), ("c1-m1", 30)],
            "\"echo c1-m1\" (200 at 0.015 s in life 0; request #1 at 0.030 s sent by life 0) arrived after \"echo c1-m2\"",
        ),
        (&[("c1-m1", 20)], "c1-m2: posted at 0.040 s"),
        (
            &[("c1-m1", 20), ("c1-m2", 60), ("c1-m1", 120), ("c1-m2", 130)],
            "kill #1 duplicated 2",
        ),
        (
            &[("c1-m1", 20), ("c1-m2", 60), ("c9-m9", 70)],
            "answer no accepted text",
        ),
    ];
    for (replies, expected) in cases {
        let run = made_up_run(replies);
        let exited = std::os::unix::process::ExitStatusExt::from_raw(0);
        let failures = run
            .failures(&expected_replies(&run.logs), Ok(exited))
            .join("\n");
        if expected.is_empty() {
            assert!(failures.is_empty(), "{replies:?} should pass:\n{failures}");
        } else {
            assert!(
                failures.contains(expected),
                "{replies:?} should report {expected:?}:\n{failures}"
            );
        }
    }
}

/// Contact 1 posted `c1-m1` at 10 ms and `c1-m2` at 40 ms (200s at 15 and 45 ms), one kill at
/// 100 ms, and the mock received `replies` (text, milliseconds).
fn made_up_run(replies: &[(&str, u64)]) -> Run {
    let started = Instant::now();
    let at = |ms| started + Duration::from_millis(ms);
    let text = |text: &str, ms| Text {
        text: text.to_owned(),
        first_post: at(ms),
        posts: 1,
        accepted: Some(at(ms + 5)),
    };
    Run {
        started,
        logs: vec![ContactLog {
            contact: 1,
            texts: vec![text("c1-m1", 10), text("c1-m2", 40)],
            posts: 2,
            failed_posts: 0,
            redeliveries: 0,
            error: None,
        }],
        kills: vec![Kill {
            signalled: at(100),
            respawned: at(110),
            up: at(150),
            died_by_itself: None,
        }],
        replies: replies
            .iter()
            .enumerate()
            .map(|(index, &(text, ms))| Reply {
                to: phone(1),
                body: format!("echo {text}"),
                index,
                at: at(ms),
                life: usize::from(ms >= 110),
            })
            .collect(),
    }
}
