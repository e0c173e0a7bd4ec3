//! Rhai scripts in flows (DESIGN §8): every API function acting on the conversation, the
//! helpers, HTTP only to allowed hosts, each sandbox limit stopping a script while the bot goes
//! on answering, `error_flow`, and validation of script errors and unknown functions.

mod common;

use std::time::Duration;

use chatflow::flow::{Bot, ContactState, Effects, Input, LoadOptions, Note, TimerRequest, handle};
use chatflow::message::inbound::Content;
use chatflow::message::{InboundMessage, dsl_form};
use chatflow::script::{ScriptLimits, ScriptSettings};
use serde_json::{Value, json};

use common::compile;

const NOW: i64 = 1_800_000_000;

/// A bot from flow files, with `settings` for scripts.
fn bot_with(files: &[&str], settings: ScriptSettings) -> Bot {
    let options = LoadOptions {
        script: settings,
        ..LoadOptions::default()
    };
    compile(files, &options)
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|d| panic!("{d}"))
}

fn bot(files: &[&str]) -> Bot {
    bot_with(files, ScriptSettings::default())
}

/// A flow triggered by `word` whose one step runs `script` (indented for a block scalar).
fn script_flow(id: &str, word: &str, script: &str) -> String {
    let body: String = script
        .lines()
        .map(|line| format!("      {line}\n"))
        .collect();
    format!("flow: {id}\ntriggers: [{{keywords: [{word}]}}]\nsteps:\n  run:\n    rhai: |\n{body}")
}

fn text(body: &str) -> InboundMessage {
    InboundMessage {
        id: "wamid.1".into(),
        from: "15550001111".into(),
        name: Some("Ann".into()),
        timestamp: NOW,
        content: Content::Text {
            body: body.to_owned(),
        },
        reply_to: None,
        referral: None,
    }
}

fn say(bot: &Bot, state: &mut ContactState, body: &str) -> Effects {
    handle(bot, state, Input::Message(&text(body)), NOW)
}

fn new_contact() -> ContactState {
    ContactState::new("simulator", "15550001111")
}

/// The replies in DSL form; texts as plain strings.
fn replies(effects: &Effects) -> Vec<Value> {
    effects
        .replies
        .iter()
        .map(|reply| {
            let dsl = dsl_form(&reply.message);
            dsl.get("text").cloned().unwrap_or(dsl)
        })
        .collect()
}

fn errors(effects: &Effects) -> Vec<String> {
    effects
        .notes
        .iter()
        .filter_map(|note| match note {
            Note::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn send_and_send_text_reply_in_call_order_before_the_steps_own_send() {
    let flow = "flow: hello\ntriggers: [{keywords: [hi]}]\nsteps:\n  greet:\n    rhai: |\n      send_text(\"Hi \" + contact.name);\n      send(#{ buttons: #{ body: \"Pick one\", buttons: [#{ id: \"a\", title: \"A\" }, #{ id: \"b\", title: \"B\" }] } });\n    send: { text: \"from the step\" }\n";
    let effects = say(&bot(&[flow]), &mut new_contact(), "hi");
    assert_eq!(
        replies(&effects),
        [
            json!("Hi Ann"),
            json!({"buttons": {"body": "Pick one", "buttons": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}}),
            json!("from the step"),
        ]
    );
}

#[test]
fn vars_written_by_a_script_persist_with_the_contact_and_templates_see_them() {
    let flow = "flow: price\ntriggers: [{keywords: [price]}]\nsteps:\n  compute:\n    rhai: |\n      vars.qty = 3;\n      vars.total = vars.qty * 15000;\n    send: { text: \"Total {{ format_currency(vars.total, \\\"IDR\\\") }}\" }\n";
    let mut state = new_contact();
    let effects = say(&bot(&[flow]), &mut state, "price");
    assert_eq!(replies(&effects), [json!("Total Rp 45.000")]);
    assert_eq!(state.vars["total"], json!(45_000));
}

#[test]
fn goto_goto_flow_and_end_flow_replace_the_steps_own_movement() {
    let router = script_flow(
        "router",
        "go",
        "if message.text == \"go step\" { goto(\"second\"); }\nelse if message.text == \"go flow\" { goto_flow(\"other\"); }\nelse { end_flow(); }",
    )
    .replace("keywords: [go]", "contains: [go]")
        + "    ask: { type: text }\n  second:\n    send: { text: \"second step\" }\n";
    let other = "flow: other\nsteps:\n  s: { send: { text: \"other flow\" } }\n";
    let bot = bot(&[&router, other]);
    let cases = [
        ("go step", json!(["second step"])),
        ("go flow", json!(["other flow"])),
        ("go", json!([])),
    ];
    for (said, expected) in cases {
        let mut state = new_contact();
        let effects = say(&bot, &mut state, said);
        assert_eq!(json!(replies(&effects)), expected, "{said}");
        assert!(errors(&effects).is_empty(), "{:?}", errors(&effects));
        assert_eq!(
            state.conversation, None,
            "{said}: the ask was not waited on"
        );
    }
}

#[test]
fn a_jump_to_nowhere_fails_the_step_with_what_is_missing() {
    let flow = script_flow("lost", "lost", "goto(\"nowhere\");");
    let effects = say(&bot(&[&flow]), &mut new_contact(), "lost");
    let errors = errors(&effects);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("goto(\"nowhere\")") && e.contains("no step")),
        "{errors:?}"
    );
}

#[test]
fn tag_untag_remind_and_log() {
    let flow = script_flow(
        "crm",
        "vip",
        "tag(\"vip\");\ntag(\"new\");\nuntag(\"new\");\nremind(\"nudge\", \"2h\");\nlog(\"tagged \" + contact.id);",
    );
    let nudge = "flow: nudge\nsteps:\n  s: { send: { text: \"nudge\" } }\n";
    let mut state = new_contact();
    let effects = say(&bot(&[&flow, nudge]), &mut state, "vip");
    assert_eq!(state.tags.iter().collect::<Vec<_>>(), ["vip"]);
    assert_eq!(
        effects.timers,
        [TimerRequest::StartFlow {
            flow: "nudge".to_owned(),
            due: NOW + 7200
        }]
    );
    assert!(effects.notes.contains(&Note::ScriptLog {
        message: "tagged 15550001111".to_owned()
    }));
}

#[test]
fn conversation_functions_outside_a_script_step_are_an_error_not_a_silent_no_op() {
    let flow = "flow: t\ntriggers: [{keywords: [t]}]\nsteps:\n  s: { send: { text: \"{{ send_text(\\\"x\\\") }}\" } }\n";
    let effects = say(&bot(&[flow]), &mut new_contact(), "t");
    let errors = errors(&effects);
    assert!(
        errors.iter().any(|e| e.contains("works in script steps")),
        "{errors:?}"
    );
}

#[test]
fn helpers_for_text_numbers_dates_and_random_choice() {
    let flow = script_flow(
        "helpers",
        "help",
        "let d = parse_date(\"23/11/2026\", \"Asia/Jakarta\");\nsend_text(format_time(add_days(d, 1), \"%Y-%m-%d %a\", \"Asia/Jakarta\"));\nsend_text(format_number(1234567.891, 2));\nsend_text(`${contains_normalized(\"Café au LAIT\", \"cafe au\")}`);\nsend_text(`${parse_date(\"tomorrow\") == ()}`);\nsend_text(random_choice([\"heads\", \"tails\"]));\nsend_text(`${days_between(d, add_duration(d, \"3d 2h\"))} ${weekday(d, \"Asia/Jakarta\")}`);",
    );
    let effects = say(&bot(&[&flow]), &mut new_contact(), "help");
    let got = replies(&effects);
    assert!(errors(&effects).is_empty(), "{:?}", errors(&effects));
    assert_eq!(
        got[..4],
        [
            json!("2026-11-24 Tue"),
            json!("1,234,567.89"),
            json!("true"),
            json!("true")
        ]
    );
    assert!(
        got[4] == json!("heads") || got[4] == json!("tails"),
        "{got:?}"
    );
    assert_eq!(got[5], json!("3 1"), "three days on from a Monday");
}

/// A script limit exhausted: the step fails with the limit named at `file:line:col`, the flow
/// goes to `error_flow`, and the next message routes as usual.
fn assert_stopped_and_recovered(script: &str, limit_words: &str) {
    let flow = script_flow("runaway", "run", script);
    let ping =
        "flow: ping\ntriggers: [{keywords: [ping]}]\nsteps:\n  s: { send: { text: pong } }\n";
    let oops = "flow: oops\nsteps:\n  s: { send: { text: \"Sorry, something went wrong.\" } }\n";
    let options = LoadOptions {
        error_flow: Some("oops".to_owned()),
        ..LoadOptions::default()
    };
    let bot = compile(&[&flow, ping, oops], &options)
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|d| panic!("{d}"));
    let mut state = new_contact();
    let effects = say(&bot, &mut state, "run");
    let errors = errors(&effects);
    assert!(
        errors
            .iter()
            .any(|e| e.contains(limit_words) && e.contains("f0.yaml:")),
        "{limit_words}: {errors:?}"
    );
    assert_eq!(replies(&effects), [json!("Sorry, something went wrong.")]);
    assert_eq!(replies(&say(&bot, &mut state, "ping")), [json!("pong")]);
}

#[test]
fn an_endless_loop_is_stopped_by_the_operation_limit() {
    assert_stopped_and_recovered("let n = 0;\nloop { n += 1; }", "operations");
}

#[test]
fn a_string_that_keeps_doubling_is_stopped_by_the_size_limit() {
    assert_stopped_and_recovered("let s = \"x\";\nloop { s += s; }", "Length of string");
}

#[test]
fn runaway_recursion_is_stopped_by_the_call_depth_limit() {
    assert_stopped_and_recovered("fn down(n) { down(n + 1) }\ndown(0);", "Stack overflow");
}

#[test]
fn a_runtime_error_points_at_the_line_in_the_flow_file() {
    let flow = script_flow("broken", "b", "let x = 1;\nlet y = x.nope;");
    let effects = say(&bot(&[&flow]), &mut new_contact(), "b");
    let errors = errors(&effects);
    // The block starts on line 6, column 7 of f0.yaml; `x.nope` is its second line.
    assert!(
        errors.iter().any(|e| e.contains("f0.yaml:7:")),
        "{errors:?}"
    );
}

#[test]
fn limits_come_from_the_config() {
    let flow = script_flow(
        "count",
        "count",
        "let n = 0;\nfor i in 0..1000 { n += i; }\nsend_text(`${n}`);",
    );
    let tight = ScriptSettings {
        limits: ScriptLimits {
            max_operations: 500,
            ..ScriptLimits::default()
        },
        ..ScriptSettings::default()
    };
    let effects = say(&bot_with(&[&flow], tight), &mut new_contact(), "count");
    assert!(errors(&effects).iter().any(|e| e.contains("operations")));
    let effects = say(&bot(&[&flow]), &mut new_contact(), "count");
    assert_eq!(replies(&effects), [json!("499500")]);
}

#[test]
fn validation_reports_syntax_errors_and_unknown_functions_at_their_place() {
    let flow = script_flow(
        "typo",
        "typo",
        "let total = 1;\nsend_txt(`${total}`);\nfn helper() { 1 }\nhelper();",
    );
    let error = compile(&[&flow], &LoadOptions::default())
        .map(|_| ())
        .expect_err("an unknown function is an error")
        .to_string();
    assert!(
        error.contains("f0.yaml:7:7") && error.contains("unknown function `send_txt`"),
        "{error}"
    );
    assert!(
        !error.contains("helper"),
        "script-defined functions are known: {error}"
    );

    let syntax = script_flow("syntax", "syntax", "let x = ;");
    let error = compile(&[&syntax], &LoadOptions::default())
        .map(|_| ())
        .expect_err("a syntax error")
        .to_string();
    assert!(error.contains("f0.yaml:6:"), "{error}");
}

#[test]
fn imports_read_modules_from_scripts_dir_only() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("prices.rhai"), "fn price(qty) { qty * 2 }").expect("written");
    let flow = script_flow(
        "shop",
        "shop",
        "import \"prices\" as p;\nsend_text(`${p::price(21)}`);",
    );
    let escape = script_flow("escape", "escape", "import \"../etc/passwd\" as p;");
    let settings = ScriptSettings {
        scripts_dir: dir.path().to_path_buf(),
        ..ScriptSettings::default()
    };
    let bot = bot_with(&[&flow, &escape], settings);
    assert_eq!(
        replies(&say(&bot, &mut new_contact(), "shop")),
        [json!("42")]
    );
    let effects = say(&bot, &mut new_contact(), "escape");
    assert!(
        errors(&effects)
            .iter()
            .any(|e| e.contains("Module not found: ../etc/passwd")),
        "{:?}",
        errors(&effects)
    );
}

/// An API on 127.0.0.1 answering `/price` with JSON and `/big` with a large body.
async fn business_api() -> String {
    let router = axum::Router::new()
        .route(
            "/price",
            axum::routing::get(|| async { axum::Json(json!({"price": 12500})) }),
        )
        .route(
            "/order",
            axum::routing::post(|axum::Json(order): axum::Json<Value>| async move {
                axum::Json(json!({"received": order}))
            }),
        )
        .route(
            "/big",
            axum::routing::get(|| async { "x".repeat(64 * 1024) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_reaches_allowed_hosts_only_with_a_size_cap() {
    let api = business_api().await;
    let script = format!(
        "let r = http_get(\"{api}/price\");\nsend_text(`${{r.status}} ${{r.json.price}}`);\nlet o = http_post(\"{api}/order\", #{{ qty: 2 }}, #{{ \"X-Key\": \"k\" }});\nsend_text(`${{o.json.received.qty}}`);"
    );
    let flow = script_flow("lookup", "lookup", &script);
    let big = script_flow("big", "big", &format!("http_get(\"{api}/big\");"));
    let elsewhere = script_flow(
        "elsewhere",
        "elsewhere",
        "http_get(\"http://example.com/\");",
    );
    let settings = ScriptSettings {
        http_allow: vec!["127.0.0.1".to_owned()],
        limits: ScriptLimits {
            http_max_body: 1024,
            http_timeout: chatflow::duration::Duration(Duration::from_secs(2)),
            ..ScriptLimits::default()
        },
        ..ScriptSettings::default()
    };
    let bot = bot_with(&[&flow, &big, &elsewhere], settings);
    assert!(bot.uses_http);
    let run = move |word: &'static str, bot: std::sync::Arc<Bot>| {
        tokio::task::spawn_blocking(move || say(&bot, &mut new_contact(), word))
    };
    let bot = std::sync::Arc::new(bot);
    let effects = run("lookup", std::sync::Arc::clone(&bot))
        .await
        .expect("ran");
    assert!(errors(&effects).is_empty(), "{:?}", errors(&effects));
    assert_eq!(replies(&effects), [json!("200 12500"), json!("2")]);

    let effects = run("big", std::sync::Arc::clone(&bot)).await.expect("ran");
    assert!(
        errors(&effects)
            .iter()
            .any(|e| e.contains("larger than 1024 bytes")),
        "{:?}",
        errors(&effects)
    );
    let effects = run("elsewhere", bot).await.expect("ran");
    assert!(
        errors(&effects)
            .iter()
            .any(|e| e.contains("\"example.com\" is not in script_http_allow")),
        "{:?}",
        errors(&effects)
    );
}
