//! Outbound messages: every DSL fixture in Meta's shape, the errors of specs that cannot be sent,
//! WhatsApp's limits one by one, trimming rendered messages to fit, and the DSL round trip.

use std::fs;
use std::path::{Path, PathBuf};

use chatflow::diagnostic::Severity;
use chatflow::message::limits::{self, LimitIssue};
use chatflow::message::outbound::{Choice, Interactive};
use chatflow::message::{MessageSpec, Outbound, dsl_form};
use serde_json::{Value, json};

fn load(path: &Path) -> MessageSpec {
    let text = fs::read_to_string(path).expect("fixture is readable");
    serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn fixtures(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .expect("fixture folder exists")
        .map(|entry| entry.expect("fixture folder is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    paths
}

fn spec(value: Value) -> MessageSpec {
    serde_json::from_value(value.clone()).unwrap_or_else(|error| panic!("{value}: {error}"))
}

fn convert(path: &Path) -> Outbound {
    load(path)
        .to_outbound()
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn converts_every_dsl_kind_to_the_meta_shape() {
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        insta::assert_json_snapshot!(convert(path));
    });
}

#[test]
fn shows_every_sent_message_in_dsl_form() {
    insta::glob!("fixtures/dsl/*.yaml", |path| {
        insta::assert_json_snapshot!(dsl_form(&convert(path)));
    });
}

#[test]
fn says_where_and_why_a_spec_cannot_be_sent() {
    insta::glob!("fixtures/dsl_errors/*.yaml", |path| {
        let error = load(path)
            .to_outbound()
            .expect_err("fixture must not convert");
        insta::assert_snapshot!(format!(
            "path: {}\nmessage: {}\ndisplay: {error}",
            error.path, error.message
        ));
    });
}

#[test]
fn every_message_survives_the_dsl_round_trip() {
    for path in fixtures("dsl") {
        let sent = convert(&path);
        let form = dsl_form(&sent);
        let again: MessageSpec = serde_json::from_value(form.clone())
            .unwrap_or_else(|error| panic!("{}: {form} is not a spec: {error}", path.display()));
        assert_eq!(
            again.to_outbound().as_ref(),
            Ok(&sent),
            "{}",
            path.display()
        );
    }
}

#[test]
fn four_to_ten_buttons_come_back_as_a_list() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsl/buttons_5.yaml");
    let form = dsl_form(&convert(&path));
    assert!(
        form.get("list").is_some() && form.get("buttons").is_none(),
        "{form}"
    );
}

#[test]
fn fixtures_are_within_whatsapp_limits() {
    for path in fixtures("dsl") {
        let errors: Vec<LimitIssue> = limits::check(&load(&path))
            .into_iter()
            .filter(|issue| issue.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

fn ids(choices: &[Choice]) -> Vec<&str> {
    choices.iter().map(|choice| choice.id.as_str()).collect()
}

#[test]
fn choices_are_the_options_as_sent_in_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsl");
    assert_eq!(
        ids(&load(&dir.join("buttons_3.yaml")).choices()),
        ["small", "medium", "large"]
    );
    let list = load(&dir.join("list_2_sections.yaml")).choices();
    assert_eq!(ids(&list), ["priority_express", "priority_mail", "ground"]);
    assert_eq!(list[2].description.as_deref(), Some("2–5 Days"));
    let as_list = load(&dir.join("buttons_5.yaml")).choices();
    assert_eq!(
        ids(&as_list),
        ["cheese", "ham", "mushrooms", "olives", "none"]
    );
    assert_eq!(as_list[0].description.as_deref(), Some("Mozzarella"));
    assert!(load(&dir.join("text_string.yaml")).choices().is_empty());
    assert!(
        load(&dir.join("wa_flow_navigate.yaml"))
            .choices()
            .is_empty()
    );
}

#[test]
fn spec_and_outbound_agree_on_choices() {
    for path in fixtures("dsl") {
        let spec = load(&path);
        assert_eq!(
            spec.choices(),
            convert(&path).choices(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn reply_buttons_drop_descriptions() {
    let spec = spec(
        json!({"buttons": {"body": "b", "buttons": [{"id": "a", "title": "A", "description": "d"}]}}),
    );
    assert_eq!(spec.choices()[0].description, None);
    let Ok(Outbound::Interactive {
        interactive: Interactive::Button { action, .. },
    }) = spec.to_outbound()
    else {
        panic!("one button is a reply button message");
    };
    assert_eq!(action.buttons[0].reply.description, None);
}

// ---- limits: one test per limit; at the limit is fine, one character more is an error ----

fn issues_at<'a>(issues: &'a [LimitIssue], path: &str) -> Vec<&'a LimitIssue> {
    issues
        .iter()
        .filter(|issue| issue.path.to_string() == path)
        .collect()
}

/// `max` characters at `path` pass and `max + 1` are one error there. Uses a two-byte letter, so
/// a limit counted in bytes would fail.
fn assert_length_limit(path: &str, max: usize, make: impl Fn(&str) -> Value) {
    let at_limit = limits::check(&spec(make(&"é".repeat(max))));
    assert!(
        issues_at(&at_limit, path).is_empty(),
        "{path} at {max}: {at_limit:?}"
    );
    let over = limits::check(&spec(make(&"é".repeat(max + 1))));
    let expected = format!("is {} characters; WhatsApp allows {max}", max + 1);
    let found = issues_at(&over, path);
    assert!(
        matches!(found.as_slice(), [issue] if issue.severity == Severity::Error && issue.message.contains(&expected)),
        "{path} over {max}: {over:?}"
    );
}

fn buttons(body: &str, titles: &[&str]) -> Value {
    let buttons: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| json!({"id": format!("b{i}"), "title": title}))
        .collect();
    json!({"buttons": {"body": body, "buttons": buttons}})
}

fn list_with_rows(sections: usize, rows_per_section: usize) -> Value {
    let sections: Vec<Value> = (0..sections)
        .map(|s| {
            let rows: Vec<Value> = (0..rows_per_section)
                .map(|r| json!({"id": format!("r{s}-{r}"), "title": format!("Row {s}-{r}")}))
                .collect();
            json!({"title": format!("Section {s}"), "rows": rows})
        })
        .collect();
    json!({"list": {"body": "b", "button": "Open", "sections": sections}})
}

#[test]
fn limits_the_text_body_to_4096() {
    assert_length_limit("text", 4096, |v| json!({"text": v}));
    assert_length_limit("text.body", 4096, |v| json!({"text": {"body": v}}));
}

#[test]
fn limits_captions_to_1024() {
    for kind in ["image", "video", "document"] {
        assert_length_limit(
            &format!("{kind}.caption"),
            1024,
            |v| json!({kind: {"url": "https://x/y", "caption": v}}),
        );
    }
}

#[test]
fn limits_interactive_bodies_to_1024() {
    assert_length_limit("buttons.body", 1024, |v| buttons(v, &["A"]));
    assert_length_limit(
        "list.body",
        1024,
        |v| json!({"list": {"body": v, "button": "Open", "sections": [{"rows": [{"id": "a", "title": "A"}]}]}}),
    );
    assert_length_limit(
        "product.body",
        1024,
        |v| json!({"product": {"body": v, "catalog_id": "1", "product_id": "p"}}),
    );
    assert_length_limit(
        "products.body",
        1024,
        |v| json!({"products": {"header": "H", "body": v, "catalog_id": "1", "sections": [{"product_ids": ["p"]}]}}),
    );
    assert_length_limit(
        "wa_flow.body",
        1024,
        |v| json!({"wa_flow": {"body": v, "flow_id": "1", "cta": "Go"}}),
    );
    assert_length_limit(
        "cta_url.body",
        1024,
        |v| json!({"cta_url": {"body": v, "button": "Go", "url": "https://x"}}),
    );
    assert_length_limit(
        "location_request.body",
        1024,
        |v| json!({"location_request": {"body": v}}),
    );
}

#[test]
fn limits_header_text_to_60() {
    assert_length_limit(
        "buttons.header",
        60,
        |v| json!({"buttons": {"header": v, "body": "b", "buttons": [{"id": "a", "title": "A"}]}}),
    );
    assert_length_limit(
        "cta_url.header.text",
        60,
        |v| json!({"cta_url": {"header": {"text": v}, "body": "b", "button": "Go", "url": "https://x"}}),
    );
    assert_length_limit(
        "products.header",
        60,
        |v| json!({"products": {"header": v, "body": "b", "catalog_id": "1", "sections": [{"product_ids": ["p"]}]}}),
    );
}

#[test]
fn limits_footers_to_60() {
    assert_length_limit(
        "buttons.footer",
        60,
        |v| json!({"buttons": {"body": "b", "footer": v, "buttons": [{"id": "a", "title": "A"}]}}),
    );
    assert_length_limit(
        "wa_flow.footer",
        60,
        |v| json!({"wa_flow": {"body": "b", "footer": v, "flow_id": "1", "cta": "Go"}}),
    );
}

#[test]
fn limits_button_titles_to_20() {
    assert_length_limit("buttons.buttons[1].title", 20, |v| buttons("b", &["A", v]));
}

#[test]
fn says_what_is_wrong_with_a_long_button_title() {
    let issues = limits::check(&spec(buttons(
        "Which size?",
        &["Small", "Extra large pizza please"],
    )));
    assert_eq!(
        issues_at(&issues, "buttons.buttons[1].title")[0].message,
        "button title \"Extra large pizza please\" is 24 characters; WhatsApp allows 20"
    );
}

#[test]
fn limits_button_ids_to_256() {
    assert_length_limit(
        "buttons.buttons[0].id",
        256,
        |v| json!({"buttons": {"body": "b", "buttons": [{"id": v, "title": "A"}]}}),
    );
}

#[test]
fn wants_unique_button_ids_and_titles() {
    let same_id = json!({"buttons": {"body": "b", "buttons": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]}});
    let issues = limits::check(&spec(same_id));
    assert_eq!(
        issues_at(&issues, "buttons.buttons[1].id").len(),
        1,
        "{issues:?}"
    );
    let same_title = json!({"buttons": {"body": "b", "buttons": [{"id": "a", "title": "A"}, {"id": "b", "title": "A"}]}});
    let issues = limits::check(&spec(same_title));
    assert_eq!(
        issues_at(&issues, "buttons.buttons[1].title").len(),
        1,
        "{issues:?}"
    );
    assert!(limits::check(&spec(buttons("b", &["A", "B", "C"]))).is_empty());
}

#[test]
fn wants_button_titles() {
    let issues = limits::check(&spec(buttons("b", &["A", " "])));
    assert_eq!(
        issues_at(&issues, "buttons.buttons[1].title")[0].message,
        "button title is empty; WhatsApp requires one"
    );
}

#[test]
fn sends_four_to_ten_buttons_as_a_list_with_a_warning() {
    let three = limits::check(&spec(buttons("b", &["A", "B", "C"])));
    assert!(issues_at(&three, "buttons.buttons").is_empty(), "{three:?}");
    for count in [4, 10] {
        let titles: Vec<String> = (0..count).map(|i| format!("Option {i}")).collect();
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let issues = limits::check(&spec(buttons("b", &titles)));
        let found = issues_at(&issues, "buttons.buttons");
        assert!(
            matches!(found.as_slice(), [issue] if issue.severity == Severity::Warning),
            "{issues:?}"
        );
        assert_eq!(
            found[0].message,
            format!("{count} buttons are sent as a list; WhatsApp shows at most 3 reply buttons")
        );
    }
}

#[test]
fn refuses_more_than_ten_buttons_and_none() {
    let titles: Vec<String> = (0..11).map(|i| format!("Option {i}")).collect();
    let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
    let issues = limits::check(&spec(buttons("b", &titles)));
    let found = issues_at(&issues, "buttons.buttons");
    assert!(
        matches!(found.as_slice(), [issue] if issue.severity == Severity::Error),
        "{issues:?}"
    );
    let none = limits::check(&spec(buttons("b", &[])));
    assert!(
        matches!(issues_at(&none, "buttons.buttons").as_slice(), [issue] if issue.severity == Severity::Error)
    );
}

#[test]
fn applies_list_limits_to_buttons_sent_as_a_list() {
    let five = |v: &str| buttons("b", &["A", "B", "C", "D", v]);
    assert_length_limit("buttons.buttons[4].title", 24, five);
    assert_length_limit("buttons.button", 20, |v| {
        let mut message = buttons("b", &["A", "B", "C", "D"]);
        message["buttons"]["button"] = json!(v);
        message
    });
}

#[test]
fn warns_about_what_a_list_of_buttons_leaves_out() {
    let mut message = buttons("b", &["A", "B", "C", "D"]);
    message["buttons"]["header"] = json!({"image": "https://x/y.png"});
    let issues = limits::check(&spec(message));
    assert!(
        matches!(issues_at(&issues, "buttons.header").as_slice(), [issue] if issue.severity == Severity::Warning)
    );
    let described = json!({"buttons": {"body": "b", "buttons": [{"id": "a", "title": "A", "description": "d"}]}});
    let issues = limits::check(&spec(described));
    assert!(
        matches!(issues_at(&issues, "buttons.buttons[0].description").as_slice(), [issue] if issue.severity == Severity::Warning)
    );
}

#[test]
fn limits_the_list_button_to_20() {
    assert_length_limit(
        "list.button",
        20,
        |v| json!({"list": {"body": "b", "button": v, "sections": [{"rows": [{"id": "a", "title": "A"}]}]}}),
    );
}

#[test]
fn limits_list_sections_to_ten() {
    assert!(
        issues_at(
            &limits::check(&spec(list_with_rows(10, 1))),
            "list.sections"
        )
        .is_empty()
    );
    let issues = limits::check(&spec(list_with_rows(11, 1)));
    assert!(
        issues_at(&issues, "list.sections")
            .iter()
            .any(|i| i.message == "there are 11 sections; WhatsApp allows 10"),
        "{issues:?}"
    );
    let issues = limits::check(&spec(list_with_rows(0, 1)));
    assert_eq!(issues_at(&issues, "list.sections").len(), 1, "{issues:?}");
}

#[test]
fn limits_list_rows_to_ten_in_total() {
    assert!(limits::check(&spec(list_with_rows(2, 5))).is_empty());
    let issues = limits::check(&spec(list_with_rows(2, 6)));
    let found = issues_at(&issues, "list.sections");
    assert_eq!(found.len(), 1, "{issues:?}");
    assert_eq!(
        found[0].message,
        "there are 12 rows; WhatsApp allows 10 across all sections"
    );
    let mut empty = list_with_rows(1, 1);
    empty["list"]["sections"][0]["rows"] = json!([]);
    assert_eq!(
        issues_at(&limits::check(&spec(empty)), "list.sections[0].rows").len(),
        1
    );
}

#[test]
fn limits_section_titles_to_24_and_wants_them_when_several() {
    assert_length_limit("list.sections[0].title", 24, |v| {
        let mut list = list_with_rows(2, 1);
        list["list"]["sections"][0]["title"] = json!(v);
        list
    });
    let mut untitled = list_with_rows(2, 1);
    untitled["list"]["sections"][1]
        .as_object_mut()
        .expect("section is a map")
        .remove("title");
    let issues = limits::check(&spec(untitled));
    assert_eq!(
        issues_at(&issues, "list.sections[1]").len(),
        1,
        "{issues:?}"
    );
    let mut single = list_with_rows(1, 1);
    single["list"]["sections"][0]
        .as_object_mut()
        .expect("section is a map")
        .remove("title");
    assert!(limits::check(&spec(single)).is_empty());
}

#[test]
fn limits_list_rows() {
    let row = |field: &'static str| {
        move |v: &str| {
            let mut list = list_with_rows(1, 2);
            list["list"]["sections"][0]["rows"][1][field] = json!(v);
            list
        }
    };
    assert_length_limit("list.sections[0].rows[1].title", 24, row("title"));
    assert_length_limit(
        "list.sections[0].rows[1].description",
        72,
        row("description"),
    );
    assert_length_limit("list.sections[0].rows[1].id", 200, row("id"));
}

#[test]
fn wants_unique_row_ids_across_sections() {
    let mut list = list_with_rows(2, 1);
    list["list"]["sections"][1]["rows"][0]["id"] = json!("r0-0");
    let issues = limits::check(&spec(list));
    let found = issues_at(&issues, "list.sections[1].rows[0].id");
    assert!(
        matches!(found.as_slice(), [issue] if issue.severity == Severity::Error),
        "{issues:?}"
    );
}

fn products(sections: usize, per_section: usize) -> Value {
    let sections: Vec<Value> = (0..sections)
        .map(|s| {
            let ids: Vec<String> = (0..per_section).map(|p| format!("p{s}-{p}")).collect();
            json!({"title": format!("Section {s}"), "product_ids": ids})
        })
        .collect();
    json!({"products": {"header": "H", "body": "b", "catalog_id": "1", "sections": sections}})
}

#[test]
fn limits_product_lists_to_ten_sections_and_thirty_products() {
    assert!(limits::check(&spec(products(10, 3))).is_empty());
    let issues = limits::check(&spec(products(11, 1)));
    assert!(
        issues_at(&issues, "products.sections")
            .iter()
            .any(|i| i.message == "there are 11 sections; WhatsApp allows 10"),
        "{issues:?}"
    );
    let issues = limits::check(&spec(products(3, 11)));
    let found = issues_at(&issues, "products.sections");
    assert_eq!(found.len(), 1, "{issues:?}");
    assert_eq!(
        found[0].message,
        "there are 33 products; WhatsApp allows 30 across all sections"
    );
    assert_length_limit("products.sections[0].title", 24, |v| {
        let mut message = products(2, 1);
        message["products"]["sections"][0]["title"] = json!(v);
        message
    });
}

#[test]
fn limits_the_flow_button_to_20() {
    assert_length_limit(
        "wa_flow.cta",
        20,
        |v| json!({"wa_flow": {"body": "b", "flow_id": "1", "cta": v}}),
    );
}

#[test]
fn limits_the_cta_url_button_to_20() {
    assert_length_limit(
        "cta_url.button",
        20,
        |v| json!({"cta_url": {"body": "b", "button": v, "url": "https://x"}}),
    );
}

#[test]
fn limits_contacts_to_257() {
    let cards =
        |count: usize| json!({"contacts": vec![json!({"name": {"formatted_name": "A"}}); count]});
    assert!(limits::check(&spec(cards(257))).is_empty());
    let issues = limits::check(&spec(cards(258)));
    assert_eq!(
        issues_at(&issues, "contacts")[0].message,
        "there are 258 contact cards; WhatsApp allows 257"
    );
    assert_eq!(
        issues_at(&limits::check(&spec(cards(0))), "contacts").len(),
        1
    );
}

#[test]
fn limits_template_parameters() {
    let template = |header: Value, body: Value| json!({"template": {"name": "t", "language": "en", "header": header, "body": body}});
    assert_length_limit("template.header[0]", 60, |v| {
        template(json!([v]), json!([]))
    });
    assert_length_limit("template.body[1]", 1024, |v| {
        template(json!([]), json!(["a", v]))
    });
    assert_length_limit("template.body.first_name", 1024, |v| {
        template(json!([]), json!({"first_name": v}))
    });
    assert_length_limit(
        "template.buttons[0].url",
        2000,
        |v| json!({"template": {"name": "t", "language": "en", "buttons": [{"url": v}]}}),
    );
    let issues = limits::check(&spec(template(json!(["a", "b"]), json!([]))));
    assert_eq!(
        issues_at(&issues, "template.header")[0].message,
        "a template header takes one parameter; there are 2"
    );
}

#[test]
fn limits_the_fallback_text_to_4096() {
    assert_length_limit(
        "fallback_text",
        4096,
        |v| json!({"text": "hi", "fallback_text": v}),
    );
}

#[test]
fn leaves_templated_strings_to_the_check_after_rendering() {
    let long = "{{ contact.vars.a_rather_long_variable_name }}";
    assert!(long.chars().count() > 24);
    assert!(limits::check(&spec(buttons(long, &[long]))).is_empty());
    let mut list = list_with_rows(1, 1);
    list["list"]["sections"][0]["rows"][0]["title"] = json!(long);
    assert!(limits::check(&spec(list)).is_empty());
}

// ---- fit: rendered messages are cut to fit, with a note per cut ----

#[test]
fn cuts_a_long_rendered_text_to_fit() {
    let mut message = spec(json!({"text": "é".repeat(5000)}))
        .to_outbound()
        .expect("converts");
    let notes = limits::fit(&mut message);
    assert_eq!(
        notes,
        ["text.body was 5000 characters; cut to the 4096 WhatsApp allows"]
    );
    let Outbound::Text { text } = &message else {
        panic!("still text")
    };
    assert_eq!(text.body.chars().count(), 4096);
    assert!(text.body.ends_with("é…"));
}

#[test]
fn leaves_messages_at_the_limit_alone() {
    let mut message = spec(json!({"text": "é".repeat(4096)}))
        .to_outbound()
        .expect("converts");
    let before = message.clone();
    assert!(limits::fit(&mut message).is_empty());
    assert_eq!(message, before);
}

#[test]
fn fits_every_text_of_an_interactive_message() {
    let long = "x".repeat(2000);
    let mut buttons = spec(
        json!({"buttons": {"header": long, "body": long, "footer": long,
        "buttons": [{"id": "a", "title": long}]}}),
    )
    .to_outbound()
    .expect("converts");
    let mut list = spec(json!({"list": {"body": "b", "button": long, "sections": [
        {"title": long, "rows": [{"id": "a", "title": long, "description": long}]}]}}))
    .to_outbound()
    .expect("converts");
    let mut flow = spec(json!({"wa_flow": {"body": "b", "flow_id": "1", "cta": long}}))
        .to_outbound()
        .expect("converts");
    let mut cta = spec(json!({"cta_url": {"body": "b", "button": long, "url": "https://x"}}))
        .to_outbound()
        .expect("converts");
    let mut template = spec(json!({"template": {"name": "t", "language": "en", "header": [long], "body": [long, long]}}))
        .to_outbound()
        .expect("converts");
    let notes: Vec<String> = [&mut buttons, &mut list, &mut flow, &mut cta, &mut template]
        .into_iter()
        .flat_map(limits::fit)
        .collect();
    insta::assert_yaml_snapshot!(notes);
    for message in [&buttons, &list, &flow, &cta, &template] {
        let fitted: MessageSpec =
            serde_json::from_value(dsl_form(message)).expect("dsl form is a spec");
        let errors = limits::check(&fitted);
        assert!(errors.is_empty(), "{message:?}: {errors:?}");
    }
}
