//! Where `validate` points for problems inside Rhai code and templates embedded in YAML: the
//! exact character, whether the code is a block scalar, a quoted string or a plain one.

mod common;

use chatflow::flow::LoadOptions;

fn problems(text: &str) -> Vec<String> {
    match common::compile(&[text], &LoadOptions::default()) {
        Ok(loaded) => loaded.warnings.iter().map(ToString::to_string).collect(),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn inline_rhai_errors_point_into_the_block_scalar() {
    let found = problems("flow: a\nsteps:\n  s:\n    rhai: |\n      let x = 1;\n      let y = ;\n");
    assert_eq!(found, ["f0.yaml:6:15: script error: Unexpected ';'"]);
}

#[test]
fn inline_rhai_errors_point_into_a_quoted_string() {
    let found = problems("flow: a\nsteps:\n  s:\n    rhai: \"vars.x = (;\"\n");
    assert_eq!(found, ["f0.yaml:4:22: script error: Unexpected ';'"]);
}

#[test]
fn template_errors_name_the_expression_at_the_value() {
    let found = problems("flow: a\nsteps:\n  s:\n    send: { text: \"Hi {{ vars.x + }}\" }\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("f0.yaml:4:19: in `{{ vars.x + }}`"),
        "{found:?}"
    );
}

#[test]
fn unknown_names_in_conditions_are_caught_at_load() {
    let found = problems(
        "flow: a\ntriggers:\n  - keywords: [hi]\n    when: 'varz.plan == 1'\nsteps:\n  s: { send: { text: hi } }\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("f0.yaml:4:11: in `varz.plan == 1`: Undefined variable: varz"),
        "{found:?}"
    );
}

#[test]
fn undefined_targets_suggest_the_close_name() {
    let found = problems(
        "flow: a\nsteps:\n  s:\n    send: { text: hi }\n    next: adress\n  address: { send: { text: where } }\n",
    );
    assert_eq!(
        found[0],
        "f0.yaml:5:11: \"adress\" is neither a step of this flow nor a flow (did you mean \"address\"?)"
    );
}

#[test]
fn faq_questions_that_match_another_entry_as_well_are_pointed_at() {
    let faq = "faq: shop\nentries:\n  - questions: [\"when are you open\", \"opening hours\"]\n    answer: { text: \"9-5\" }\n  - questions: [\"do you deliver\", \"When are you OPEN?\"]\n    answer: { text: \"yes\" }\n";
    let found = problems(faq);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("f0.yaml:3:17: warning: \"when are you open\" also matches entry 1"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("f0.yaml:5:35: warning: \"When are you OPEN?\" also matches entry 0"),
        "{found:?}"
    );
}
