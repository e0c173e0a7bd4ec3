//! The `chatflow` command line (DESIGN §3).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use chatflow::config::Config;
use chatflow::conversation_test;
use chatflow::flow;

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
        Command::Validate { config } => validate(config.as_deref()),
        Command::Test { files, config } => test(&files, config.as_deref()),
        Command::Schema { kind } => schema(kind),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The config named, `./chatflow.yaml` when it exists, or the built-in defaults.
fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
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
