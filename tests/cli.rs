//! The `chatflow` binary as users run it: `validate`, `test` and `schema` over the shipped bots
//! in `flows/`, and over the deliberately broken files in `tests/broken/`.
//!
//! Every expected `path:line:col` below was checked by eye against its file: a quoted value is
//! located at its quote, a block mapping in a list at its first key, a keyword at the keyword.

use std::process::Output;

/// Runs the built binary from the crate root, where `flows/` and `tests/` are.
fn chatflow(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chatflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the chatflow binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fails with the whole output, which is what one needs to see when a line is missing.
fn assert_has_line(out: &str, line: &str) {
    assert!(
        out.lines().any(|l| l == line),
        "missing line\n  {line}\nin output:\n{out}"
    );
}

/// A line that starts with `prefix` and says `words` somewhere after it.
fn assert_has_line_starting(out: &str, prefix: &str, words: &str) {
    let found = out.lines().any(|l| {
        l.strip_prefix(prefix)
            .is_some_and(|rest| rest.contains(words))
    });
    assert!(found, "missing\n  {prefix}…{words}…\nin output:\n{out}");
}

fn validate_broken() -> (Output, String) {
    let output = chatflow(&["validate", "--config", "tests/broken/chatflow.yaml"]);
    let out = stdout(&output);
    (output, out)
}

/// Problems reported at the right place with the right words.
const BROKEN_REPORTED: &[&str] = &[
    // menus.yaml: WhatsApp's limits, a choice without a menu, scripts.
    "tests/broken/flows/menus.yaml:10:9: warning: 4 buttons are sent as a list; WhatsApp shows at most 3 reply buttons",
    "tests/broken/flows/menus.yaml:22:11: there are 11 buttons; WhatsApp allows 3 reply buttons, or 10 options as a list",
    "tests/broken/flows/menus.yaml:41:11: there are 11 rows; WhatsApp allows 10 across all sections",
    "tests/broken/flows/menus.yaml:60:30: an ask of type choice needs a buttons or list message in this step's send (or a script that sends one)",
    "tests/broken/flows/menus.yaml:66:27: script error: Unexpected ';'",
    "tests/broken/flows/menus.yaml:69:13: cannot read script tests/broken/scripts/missing.rhai: No such file or directory (os error 2); scripts live in tests/broken/scripts",
    "tests/broken/scripts/total.rhai:3:25: script error: Unexpected ';'",
    // order.yaml: moves to names that do not exist, each with the close name it meant.
    "tests/broken/flows/order.yaml:13:47: \"give_upp\" is neither a step of this flow nor a flow (did you mean \"give_up\"?)",
    "tests/broken/flows/order.yaml:13:83: \"nudg\" is neither a step of this flow nor a flow (did you mean \"nudge\"?)",
    "tests/broken/flows/order.yaml:14:11: \"adress\" is neither a step of this flow nor a flow (did you mean \"address\"?)",
    "tests/broken/flows/order.yaml:22:15: \"pickup_at_shopp\" is neither a step of this flow nor a flow (did you mean \"pickup_at_shop\"?)",
    "tests/broken/flows/order.yaml:23:15: \"confrim\" is neither a step of this flow nor a flow (did you mean \"confirm\"?)",
    "tests/broken/flows/order.yaml:26:29: flow \"feedbak\" is not defined (did you mean \"feedback\"?)",
    "tests/broken/flows/order.yaml:27:11: \"thankz\" is neither a step of this flow nor a flow (did you mean \"thanks\"?)",
    "tests/broken/flows/order_again.yaml:2:7: flow id \"order\" is already used by tests/broken/flows/order.yaml; flow ids must be unique",
    "tests/broken/flows/promo.yaml:4:12: invalid regex: unclosed character class",
    "tests/broken/flows/promo.yaml:5:5: a trigger has exactly one kind, this one has keywords and contains; split it into several triggers",
    "tests/broken/flows/promo.yaml:7:23: invalid cron \"0 9 * * Mon-Fry\": 'Fry' is not a valid day of the week.",
    "tests/broken/flows/promo.yaml:10:11: in `contact.tags.contains(\"vip\") &&`: Script is incomplete",
    "tests/broken/flows/promo.yaml:11:23: keyword \"pizza\" also starts flow \"order\" at the same priority 0; give one flow a higher priority",
    "tests/broken/flows/order.yaml:12:33: button title \"Large with extra cheese\" is 23 characters; WhatsApp allows 20",
    "tests/broken/flows/order.yaml:16:19: in `{{ vars.x + }}`: Script is incomplete",
    "tests/broken/flows/order.yaml:19:13: in `vars.address == `: Script is incomplete",
    "tests/broken/flows/promo.yaml:8:52: unknown time zone \"Asia/Jakart\"; use an IANA name such as Asia/Jakarta",
    // typos.yaml: serde's errors, rewritten with a suggestion.
    "tests/broken/flows/typos.yaml:4:5: unknown key \"keyword\" (did you mean \"keywords\"?); allowed here: keywords, contains, regex, button, event, schedule, when",
    "tests/broken/flows/typos.yaml:5:12: unknown value \"locaton\" (did you mean \"location\"?); expected one of text, image, audio, video, document, sticker, voice, location, contacts, order, flow_reply, reaction, unsupported, any, status_sent, status_delivered, status_read, status_failed",
    "tests/broken/flows/typos.yaml:8:5: unknown key \"sned\" (did you mean \"send\"?); allowed here: set, script, rhai, tag, untag, send, handoff, remind, ask, switch, goto, next, end, outside_window",
    "tests/broken/flows/typos.yaml:12:30: unknown value \"choise\" (did you mean \"choice\"?); expected one of text, number, integer, email, phone, date, choice, location, media, flow_reply, any",
];

#[test]
fn validate_reports_every_problem_of_the_broken_flows_and_exits_1() {
    let (output, out) = validate_broken();
    assert_eq!(output.status.code(), Some(1), "{out}");
    for line in BROKEN_REPORTED {
        assert_has_line(&out, line);
    }
    assert!(
        out.lines().last().is_some_and(|l| l.ends_with(" error(s)")),
        "{out}"
    );
}

#[test]
fn validate_prints_one_line_per_problem() {
    let (_, out) = validate_broken();
    let mut lines: Vec<&str> = out.lines().collect();
    let summary = lines.pop().unwrap_or_default();
    assert!(summary.ends_with(" error(s)"), "{out}");
    for line in lines {
        assert!(
            line.starts_with("tests/broken/"),
            "a problem's text goes on past its line: {line:?}\n{out}"
        );
    }
    assert_has_line_starting(
        &out,
        "tests/broken/flows/promo.yaml:4:12: ",
        "invalid regex: ",
    );
    assert_has_line_starting(
        &out,
        "tests/broken/flows/promo.yaml:7:23: ",
        "invalid cron \"0 9 * * Mon-Fry\"",
    );
    assert!(
        !out.contains("(?i)"),
        "the regex is shown as the author wrote it: {out}"
    );
}

#[test]
fn validate_reports_each_problem_once_and_no_unreachable_steps_while_targets_are_broken() {
    let (_, out) = validate_broken();
    let at = "tests/broken/flows/menus.yaml:22:11: ";
    let reported = out.lines().filter(|l| l.starts_with(at)).count();
    assert_eq!(reported, 1, "{out}");
    assert!(!out.contains("never reached"), "{out}");
    let errors = out
        .lines()
        .filter(|l| l.starts_with("tests/broken/") && !l.contains(": warning: "))
        .count();
    assert!(
        out.trim_end().ends_with(&format!("\n{errors} error(s)")),
        "{out}"
    );
}

#[test]
fn validate_accepts_the_shipped_flows_without_warnings() {
    let output = chatflow(&["validate"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(!out.contains("warning:"), "{out}");
    assert!(out.starts_with("ok: "), "{out}");
}

#[test]
fn test_passes_on_the_shipped_conversation_tests() {
    let output = chatflow(&["test"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
}

#[test]
fn test_fails_on_wrong_expectations_with_a_readable_diff() {
    let output = chatflow(&["test", "tests/broken/conversations"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    for line in [
        "FAIL deliberately wrong, to show how a reply that differs reads (tests/broken/conversations/wrong_reply.yaml)",
        "step 2 ({\"user\":\"2\"}): the bot's replies differ",
        "--- expected",
        "+++ actual",
        "-    header: Our pizzas",
        "+    header: Our menu",
        "     product_id: truffle",
        "FAIL deliberately wrong, to show how vars that differ read (tests/broken/conversations/wrong_vars.yaml)",
        "step 1 ({\"user\":\"I want 2 pizzas\"}): vars differ",
        "-qty: 2",
        "+qty: '2'",
        "0 passed, 2 failed",
    ] {
        assert_has_line(&out, line);
    }
}

#[test]
fn schema_forbids_unknown_keys_in_steps() {
    let output = chatflow(&["schema"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("\"additionalProperties\": false"), "{out}");
    let schema: serde_json::Value = serde_json::from_str(&out).expect("schema prints JSON");
    let step = &schema["$defs"]["StepSpec"];
    assert_eq!(
        step["additionalProperties"],
        serde_json::json!(false),
        "{step}"
    );
    assert!(step["properties"]["send"].is_object(), "{step}");
}
