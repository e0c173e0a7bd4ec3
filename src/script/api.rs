//! The functions that let a script act on the conversation (DESIGN §8): `send`, `send_text`,
//! `goto`, `goto_flow`, `end_flow`, `tag`, `untag`, `remind`, `log`.
//!
//! They do not act directly: each records what it asks for in the run's [`ScriptEffects`], and
//! the flow runtime applies them after the script returns — so a script stays a function of
//! its inputs, and a script that fails half-way changes nothing.

use std::cell::RefCell;

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde_json::Value;

/// Where a script asked the conversation to go next; the last call wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jump {
    /// `goto("step")`: a step of the current flow.
    Step(String),
    /// `goto_flow("flow")`: the start of another flow.
    Flow(String),
    /// `end_flow()`.
    End,
}

/// What one script run asked for, in call order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptEffects {
    /// Messages in DSL form (`send_text(s)` is `{"text": s}`).
    pub sends: Vec<Value>,
    /// Where to go after the step, instead of its own ask/switch/goto.
    pub jump: Option<Jump>,
    /// Tags to add (`true`) or remove (`false`).
    pub tags: Vec<(String, bool)>,
    /// Flows to start after a delay: the flow id and the delay in seconds.
    pub reminders: Vec<(String, i64)>,
    /// Lines from `log(s)`.
    pub logs: Vec<String>,
}

thread_local! {
    static EFFECTS: RefCell<Option<ScriptEffects>> = const { RefCell::new(None) };
}

/// Runs `body` collecting what the script functions ask for.
pub fn collect<T>(body: impl FnOnce() -> T) -> (T, ScriptEffects) {
    let previous = EFFECTS.with(|effects| effects.replace(Some(ScriptEffects::default())));
    let result = body();
    let collected = EFFECTS.with(|effects| effects.replace(previous));
    (result, collected.unwrap_or_default())
}

/// Records into the current run; outside a script step (in a template, say) it is an error.
fn record(name: &str, change: impl FnOnce(&mut ScriptEffects)) -> Result<(), Box<EvalAltResult>> {
    EFFECTS.with(|effects| match effects.borrow_mut().as_mut() {
        Some(effects) => {
            change(effects);
            Ok(())
        }
        None => Err(format!(
            "{name}() acts on the conversation, so it works in script steps (script: or rhai:), not in templates or conditions"
        )
        .into()),
    })
}

/// Registers the conversation functions.
pub fn register(engine: &mut Engine) {
    engine.register_fn("send", |message: Map| {
        let message = rhai::serde::from_dynamic::<Value>(&Dynamic::from_map(message))
            .map_err(|error| format!("send(): not a message: {error}"))?;
        record("send", |effects| effects.sends.push(message))
    });
    engine.register_fn("send_text", |text: &str| {
        let text = text.to_owned();
        record("send_text", |effects| {
            effects.sends.push(serde_json::json!({ "text": text }));
        })
    });
    // `goto` is reserved in Rhai, so `goto("step")` is registered as syntax rather than a function.
    let goto =
        engine.register_custom_syntax(["goto", "(", "$expr$", ")"], false, |context, inputs| {
            let step = context
                .eval_expression_tree(&inputs[0])?
                .into_string()
                .map_err(|kind| format!("goto() takes a step name, not {kind}"))?;
            record("goto", |effects| effects.jump = Some(Jump::Step(step)))?;
            Ok(Dynamic::UNIT)
        });
    if let Err(error) = goto {
        tracing::error!(message = "goto() is unavailable to scripts.", %error);
    }
    engine.register_fn("goto_flow", |flow: &str| {
        let jump = Jump::Flow(flow.to_owned());
        record("goto_flow", |effects| effects.jump = Some(jump))
    });
    engine.register_fn("end_flow", || {
        record("end_flow", |effects| effects.jump = Some(Jump::End))
    });
    engine.register_fn("tag", |tag: &str| {
        let tag = tag.to_owned();
        record("tag", |effects| effects.tags.push((tag, true)))
    });
    engine.register_fn("untag", |tag: &str| {
        let tag = tag.to_owned();
        record("untag", |effects| effects.tags.push((tag, false)))
    });
    engine.register_fn("remind", |flow: &str, after: &str| {
        let delay = after
            .parse::<crate::duration::Duration>()
            .map_err(|error| format!("remind(\"{flow}\", \"{after}\"): {error}"))?;
        let reminder = (flow.to_owned(), delay.as_secs_i64());
        record("remind", |effects| effects.reminders.push(reminder))
    });
    engine.register_fn("log", |line: &str| {
        let line = line.to_owned();
        record("log", |effects| effects.logs.push(line))
    });
}
