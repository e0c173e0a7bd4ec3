//! The `chatflow` command line (DESIGN §3).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use chatflow::config::Config;
use chatflow::conversation_test;
use chatflow::flow;
use chatflow::telemetry::LogFormat;

mod cli;

use cli::{chat, serve};

#[derive(Parser)]
#[command(
    name = "chatflow",
    version,
    about = "Chatbot automation engine for WhatsApp Business API providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: webhooks, the simulator and the admin API.
    Serve {
        /// The config file (default: ./chatflow.yaml when it exists, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// How log lines look (filter them with CHATFLOW_LOG or RUST_LOG, default info).
        #[arg(long, value_enum, default_value_t)]
        log_format: LogFormat,
    },
    /// Talk to the bots in the terminal, in process, no server needed.
    Chat {
        /// Your number.
        #[arg(long = "as", default_value = "15550001111")]
        phone: String,
        /// Your profile name.
        #[arg(long, default_value = "You")]
        name: String,
        /// Keep state in this directory (default: in memory; `serve` may hold ./data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The config file (default: ./chatflow.yaml when it exists, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// How log lines look, on stderr (filter them with CHATFLOW_LOG or RUST_LOG, default warn).
        #[arg(long, value_enum, default_value_t)]
        log_format: LogFormat,
    },
    /// Load config, flows and scripts; print every problem as path:line:col: message.
    Validate {
        /// The config file (default: ./chatflow.yaml when it exists, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run conversation tests (default: tests/conversations/*.yaml).
    Test {
        /// Test files or directories.
        files: Vec<PathBuf>,
        /// The config file (default: ./chatflow.yaml when it exists, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show which FAQ entries a question matches, best first, with their scores.
    Faq {
        /// The question, as a customer would type it.
        question: String,
        /// The channel asking (collections may serve only some).
        #[arg(long, default_value = "simulator")]
        channel: String,
        /// The config file (default: ./chatflow.yaml when it exists, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the JSON Schema of flow files, FAQ files or the config, for editor completion.
    Schema {
        /// Which file kind.
        #[arg(value_enum, default_value_t = SchemaKind::Flow)]
        kind: SchemaKind,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    Flow,
    Faq,
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, log_format } => {
            runtime().and_then(|rt| rt.block_on(serve::serve(config.as_deref(), log_format)))
        }
        Command::Chat {
            phone,
            name,
            data,
            config,
            log_format,
        } => runtime().and_then(|rt| {
            rt.block_on(chat::chat(
                &phone,
                &name,
                data.as_deref(),
                config.as_deref(),
                log_format,
            ))
        }),
        Command::Validate { config } => validate(config.as_deref()),
        Command::Test { files, config } => test(&files, config.as_deref()),
        Command::Schema { kind } => schema(kind),
        Command::Faq {
            question,
            channel,
            config,
        } => faq(&question, &channel, config.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The config named, `./chatflow.yaml` when it exists, or the built-in defaults.
pub(crate) fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    let default = Path::new("chatflow.yaml");
    let path = path.or_else(|| default.exists().then_some(default));
    let Some(path) = path else {
        return Ok(Config::default());
    };
    Config::load(path, &|name| std::env::var(name).ok()).map_err(|diagnostics| {
        eprint!("{diagnostics}");
        ExitCode::FAILURE
    })
}

fn validate(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match load_config(config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    match flow::load(&config.load_options()) {
        Ok(loaded) => {
            print!("{}", loaded.warnings);
            println!(
                "ok: {} flows, {} FAQ collections",
                loaded.bot.flows.len(),
                loaded.bot.faqs.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            print!("{diagnostics}");
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            println!("{errors} error(s)");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `chatflow faq "question"`: the top 5 entries with their scores and what the bot would do.
fn faq(question: &str, channel: &str, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match load_config(config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let bot = match flow::load(&config.load_options()) {
        Ok(loaded) => loaded.bot,
        Err(diagnostics) => {
            print!("{diagnostics}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let hits = bot.faq_index.search(question, channel, 5);
    let mut report = String::new();
    if hits.is_empty() {
        report.push_str("no FAQ entry shares a word with this question\n");
    }
    for (rank, hit) in hits.iter().enumerate() {
        let collection = &bot.faqs[hit.collection];
        // As the bot decides: only the best may answer, and only with a clear lead.
        let verdict = if rank == 0 && chatflow::faq::answers(&hits, collection.threshold) {
            "answers"
        } else if hit.score >= collection.suggest_threshold {
            "suggested"
        } else {
            "below"
        };
        let first = collection.entries[hit.entry]
            .questions
            .first()
            .map_or("", String::as_str);
        report.push_str(&format!(
            "{:.3}  {verdict:<9} {}#{}  {first}\n",
            hit.score, collection.id, hit.entry
        ));
    }
    // A closed pipe (`| head`) is the reader's choice, not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), report.as_bytes());
    Ok(ExitCode::SUCCESS)
}

fn test(files: &[PathBuf], config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match load_config(config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let loaded = match flow::load(&config.load_options()) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print!("{diagnostics}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let default = [PathBuf::from("tests/conversations")];
    let roots = if files.is_empty() {
        &default[..]
    } else {
        files
    };
    let mut paths = Vec::new();
    for root in roots {
        if root.is_dir() {
            paths.extend(
                flow::loader::yaml_files(root)
                    .with_context(|| format!("cannot read {}", root.display()))?,
            );
        } else {
            paths.push(root.clone());
        }
    }
    let (mut passed, mut failed) = (0, 0);
    for path in &paths {
        let outcome = match conversation_test::read(path) {
            Ok(test) => conversation_test::run(&loaded.bot, &test, path),
            Err(diagnostics) => {
                print!("{diagnostics}");
                failed += 1;
                continue;
            }
        };
        match outcome.failure {
            None => {
                passed += 1;
                println!("ok   {} ({})", outcome.name, path.display());
            }
            Some(why) => {
                failed += 1;
                println!("FAIL {} ({})\n{why}", outcome.name, path.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn schema(kind: SchemaKind) -> anyhow::Result<ExitCode> {
    let schema = match kind {
        SchemaKind::Flow => schemars::schema_for!(flow::model::FlowFile),
        SchemaKind::Faq => schemars::schema_for!(flow::model::FaqFile),
        SchemaKind::Config => schemars::schema_for!(Config),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
