//! `chatflow chat`: talk to the bots in the terminal, in process; state in memory unless
//! `--data` names a directory.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};

use chatflow::chat::{HELP, Line, parse_line, render};
use chatflow::engine::{Engine, SystemClock};
use chatflow::flow;
use chatflow::simulator::MessageIds;
use chatflow::store::{ContactKey, MemoryStore, SledStore, Store};
use chatflow::telemetry::{self, LogFormat};

/// Runs the terminal chat until `/quit` or end of input. Logs go to stderr, warnings and
/// errors only unless a filter variable asks for more: the terminal is the conversation.
pub async fn chat(
    phone: &str,
    name: &str,
    data: Option<&Path>,
    config: Option<&Path>,
    log_format: LogFormat,
) -> anyhow::Result<ExitCode> {
    let config = match crate::load_config(config) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    telemetry::init(log_format, "warn", config.secrets())?;
    let bot = match flow::load(&config.load_options()) {
        Ok(loaded) => loaded.bot,
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let contact = ContactKey::new("simulator", phone);
    match data {
        Some(dir) => {
            talk(
                Engine::new(bot, SledStore::open(dir)?, Arc::new(SystemClock)),
                contact,
                name,
            )
            .await
        }
        None => {
            talk(
                Engine::new(bot, MemoryStore::new(), Arc::new(SystemClock)),
                contact,
                name,
            )
            .await
        }
    }
}

async fn talk<S: Store>(
    engine: Engine<S>,
    contact: ContactKey,
    name: &str,
) -> anyhow::Result<ExitCode> {
    println!("chatting as {} ({name}); /help for commands", contact.id);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let ids = MessageIds::new("chat");
    while let Some(line) = lines.next_line().await? {
        let input = match parse_line(&line) {
            Ok(Line::Send(input)) => input,
            Ok(Line::Help) => {
                println!("{HELP}");
                continue;
            }
            Ok(Line::Quit) => break,
            Ok(Line::Nothing) => continue,
            Err(usage) => {
                println!("{usage}");
                continue;
            }
        };
        let replies = engine
            .handle_message(&contact, |state, now| {
                input.from_contact(state, Some(name), &ids.next(), now)
            })
            .await;
        match replies {
            Ok(replies) if replies.is_empty() => println!("(no reply)"),
            Ok(replies) => {
                for reply in replies {
                    println!("bot: {}\n", render(&reply.message).replace('\n', "\n     "));
                }
            }
            Err(error) => println!("error: {error}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
