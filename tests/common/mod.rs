//! Shared test helpers: bots built from YAML text in the test itself, so each rule is shown on
//! the smallest bot, and (in `harness`) the end-to-end plumbing with a mock provider.

#[allow(dead_code, reason = "each fault-injection test uses some of it")]
pub mod faulty;
#[allow(dead_code, reason = "only the end-to-end tests use it")]
pub mod harness;
#[allow(dead_code, reason = "each provider test uses some of it")]
pub mod provider;

use std::path::Path;

use chatflow::diagnostic::Diagnostics;
use chatflow::flow::compile::compile_documents;
use chatflow::flow::loader::parse_document;
use chatflow::flow::{Bot, LoadOptions, Loaded};

/// Compiles flow files given as text (named `f0.yaml`, `f1.yaml`, …).
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn compile(files: &[&str], options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let documents = files
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            parse_document(Path::new(&format!("f{i}.yaml")), text, &mut diagnostics)
        })
        .collect();
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    compile_documents(documents, options)
}

/// A clock the test moves.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub struct VirtualClock(std::sync::atomic::AtomicI64);

impl chatflow::engine::Clock for VirtualClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[allow(dead_code, reason = "not every test file uses every helper")]
impl VirtualClock {
    /// A clock showing `instant` (Unix seconds).
    pub fn at(instant: i64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::atomic::AtomicI64::new(instant)))
    }

    /// Moves the clock to `instant`.
    pub fn set(&self, instant: i64) {
        self.0.store(instant, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock on by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The shipped bots (`flows/`, `scripts/`), which must load.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn shipped_bot() -> Bot {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let options = LoadOptions {
        flows_dir: root.join("flows"),
        scripts_dir: root.join("scripts"),
        ..LoadOptions::default()
    };
    chatflow::flow::load(&options)
        .unwrap_or_else(|problems| panic!("the shipped flows load: {problems}"))
        .bot
}

/// A bot that must load.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn bot(files: &[&str]) -> Bot {
    compile(files, &LoadOptions::default())
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|d| panic!("{d}"))
}

/// `text` from `contact` through the engine (each message a new id); the replies' texts, other
/// kinds as their debug form.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub async fn say<S: chatflow::store::Store>(
    engine: &chatflow::engine::Engine<S>,
    contact: &chatflow::store::ContactKey,
    text: &str,
) -> Vec<String> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = format!(
        "m{}",
        NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let input = chatflow::simulator::SimulatedInput::text(text);
    let replies = engine
        .handle_message(contact, |_, now| {
            let sender = chatflow::simulator::Sender {
                from: &contact.id,
                name: None,
                id: &id,
                now,
                options: &[],
            };
            input.to_message(sender).map_err(|e| e.to_string())
        })
        .await
        .expect("handled");
    replies
        .into_iter()
        .map(|reply| match reply.message {
            chatflow::message::Outbound::Text { text } => text.body,
            other => format!("{other:?}"),
        })
        .collect()
}
