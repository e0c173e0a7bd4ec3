//! `chatflow chat` as a user types into it: text, slash commands, and replies that show the ids
//! to answer with.

use std::io::Write;
use std::process::{Command, Stdio};

fn chat(input: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatflow"))
        .args(["chat", "--as", "15550001111", "--name", "Ann"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("chatflow chat starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("typed");
    let output = child.wait_with_output().expect("chat ends at end of input");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_typed_dialogue_reads_like_whatsapp_with_ids() {
    let out = chat("hi\n/button order_pizza\nLarge\n/dance\n/quit\nnever read\n");
    assert!(
        out.contains("bot: *Welcome to Pizza Planet*\n     Hi Ann! What would you like to do?"),
        "{out}"
    );
    assert!(out.contains("[order_pizza] Order pizza"), "{out}");
    assert!(
        out.contains("bot: *Pizza time*\n     Which size, Ann?"),
        "{out}"
    );
    assert!(
        out.contains("bot: How many large pizzas would you like?"),
        "{out}"
    );
    assert!(
        out.contains("unknown command /dance; /help lists them"),
        "{out}"
    );
    assert!(!out.contains("never read"), "{out}");
}
