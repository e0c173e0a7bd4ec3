//! Template messages both ways: DSL parameters to Meta components (spec §5.8) and back.
//!
//! Templates are the kind whose Meta shape differs most from what authors write (components,
//! typed parameter objects, button indexes as strings), so both directions live together here.

use serde_json::{Map, Value, json};

use super::{ConvertError, exactly_one, lenient};
use crate::message::outbound::{Outbound, Template, TemplateComponent, TemplateLanguage};
use crate::message::spec::{
    CurrencySpec, TemplateButtonSpec, TemplateParam, TemplateParamObject, TemplateParams,
    TemplateSpec,
};
use crate::source::YamlPath;

/// The Meta template message for `spec`.
pub(super) fn to_outbound(spec: &TemplateSpec, at: &YamlPath) -> Result<Outbound, ConvertError> {
    let mut components = Vec::new();
    for (kind, params) in [("header", &spec.header), ("body", &spec.body)] {
        if let Some(params) = params {
            components.extend(params_component(kind, params, &at.key(kind))?);
        }
    }
    for (index, button) in spec.buttons.iter().enumerate() {
        components.push(button_component(
            index,
            button,
            &at.key("buttons").index(index),
        )?);
    }
    let template = Template {
        id: spec.id.clone(),
        name: spec.name.clone(),
        language: TemplateLanguage {
            code: spec.language.clone(),
        },
        components,
    };
    Ok(Outbound::Template { template })
}

/// A header or body component; `None` when it has no parameters, since Meta wants none then.
fn params_component(
    kind: &str,
    params: &TemplateParams,
    at: &YamlPath,
) -> Result<Option<TemplateComponent>, ConvertError> {
    let parameters = match params {
        TemplateParams::Positional(list) => list
            .iter()
            .enumerate()
            .map(|(index, param)| parameter(param, &at.index(index)))
            .collect::<Result<Vec<_>, _>>()?,
        TemplateParams::Named(map) => map
            .iter()
            .map(|(name, param)| named_parameter(name, param, &at.key(name.as_str())))
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok((!parameters.is_empty()).then(|| TemplateComponent {
        kind: kind.to_owned(),
        sub_type: None,
        index: None,
        parameters,
    }))
}

fn parameter(param: &TemplateParam, at: &YamlPath) -> Result<Value, ConvertError> {
    match param {
        TemplateParam::Text(text) => Ok(json!({"type": "text", "text": text})),
        TemplateParam::Object(object) => object_parameter(object, at),
    }
}

/// A `{{name}}` parameter: the same object with `parameter_name` (right after `type` for text).
fn named_parameter(
    name: &str,
    param: &TemplateParam,
    at: &YamlPath,
) -> Result<Value, ConvertError> {
    if let TemplateParam::Text(text) = param {
        return Ok(json!({"type": "text", "parameter_name": name, "text": text}));
    }
    let mut value = parameter(param, at)?;
    if let Value::Object(object) = &mut value {
        object.insert("parameter_name".to_owned(), Value::from(name));
    }
    Ok(value)
}

fn object_parameter(object: &TemplateParamObject, at: &YamlPath) -> Result<Value, ConvertError> {
    let media = |kind: &'static str, url: &Option<String>| {
        url.as_ref()
            .map(|url| (kind, Ok(json!({"type": kind, kind: {"link": url}}))))
    };
    let found = [
        media("image", &object.image),
        media("video", &object.video),
        media("document", &object.document),
        object.currency.as_ref().map(|currency| ("currency", currency_parameter(currency, &at.key("currency")))),
        object.date_time.as_ref().map(|date_time| {
            ("date_time", Ok(json!({"type": "date_time", "date_time": {"fallback_value": date_time.fallback}})))
        }),
    ];
    let allowed = "image, video, document, currency, date_time";
    exactly_one(
        found.into_iter().flatten().collect(),
        at,
        "a parameter",
        allowed,
    )?
}

fn currency_parameter(currency: &CurrencySpec, at: &YamlPath) -> Result<Value, ConvertError> {
    let amount = lenient(&currency.amount_1000, &at.key("amount_1000"))?;
    Ok(json!({"type": "currency", "currency": {
        "fallback_value": currency.fallback,
        "code": currency.code,
        "amount_1000": amount,
    }}))
}

fn button_component(
    index: usize,
    button: &TemplateButtonSpec,
    at: &YamlPath,
) -> Result<TemplateComponent, ConvertError> {
    let found = [
        button.quick_reply.as_ref().map(|payload| {
            (
                "quick_reply",
                json!({"type": "payload", "payload": payload}),
            )
        }),
        button
            .url
            .as_ref()
            .map(|suffix| ("url", json!({"type": "text", "text": suffix}))),
        button.flow.as_ref().map(|token| {
            (
                "flow",
                json!({"type": "action", "action": {"flow_token": token}}),
            )
        }),
    ];
    let found: Vec<_> = found.into_iter().flatten().collect();
    let sub_type = found.first().map(|(name, _)| (*name).to_owned());
    let parameter = exactly_one(found, at, "a template button", "quick_reply, url, flow")?;
    Ok(TemplateComponent {
        kind: "button".to_owned(),
        sub_type,
        index: Some(index.to_string()),
        parameters: vec![parameter],
    })
}

/// A template in DSL form: parameters Meta-shaped objects it does not know are shown as they are.
pub(super) fn dsl(template: &Template) -> Value {
    let mut out = Map::new();
    out.insert("name".to_owned(), Value::from(template.name.as_str()));
    out.insert(
        "language".to_owned(),
        Value::from(template.language.code.as_str()),
    );
    if let Some(id) = &template.id {
        out.insert("id".to_owned(), Value::from(id.as_str()));
    }
    let mut buttons = Vec::new();
    let mut others = Vec::new();
    for component in &template.components {
        match component.kind.as_str() {
            kind @ ("header" | "body") => {
                out.insert(kind.to_owned(), params_dsl(&component.parameters));
            }
            "button" => buttons.push(button_dsl(component)),
            _ => others.push(json!(component)),
        }
    }
    for (key, list) in [("buttons", buttons), ("components", others)] {
        if !list.is_empty() {
            out.insert(key.to_owned(), Value::Array(list));
        }
    }
    Value::Object(out)
}

/// A map when every parameter is named, else a list.
fn params_dsl(parameters: &[Value]) -> Value {
    let name = |param: &Value| {
        param
            .get("parameter_name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let names: Option<Vec<String>> = parameters.iter().map(name).collect();
    match names {
        Some(names) if !names.is_empty() => {
            let entries = names.into_iter().zip(parameters.iter().map(param_dsl));
            Value::Object(entries.collect())
        }
        _ => Value::Array(parameters.iter().map(param_dsl).collect()),
    }
}

fn param_dsl(param: &Value) -> Value {
    let kind = param
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inner = param.get(kind);
    let field = |key: &str| inner.and_then(|inner| inner.get(key)).cloned();
    let shown = match kind {
        "text" => param.get("text").cloned(),
        "image" | "video" | "document" if inner.is_some_and(|inner| inner.get("id").is_none()) => {
            field("link").map(|link| json!({kind: link}))
        }
        "currency" => Some(json!({"currency": {
            "code": field("code"),
            "amount_1000": field("amount_1000"),
            "fallback": field("fallback_value"),
        }})),
        "date_time" => Some(json!({"date_time": {"fallback": field("fallback_value")}})),
        _ => None,
    };
    shown.unwrap_or_else(|| param.clone())
}

fn button_dsl(component: &TemplateComponent) -> Value {
    let param = component.parameters.first();
    let at = |pointer: &str| param.and_then(|param| param.pointer(pointer)).cloned();
    let shown = match component.sub_type.as_deref() {
        Some("quick_reply") => at("/payload").map(|payload| json!({"quick_reply": payload})),
        Some("url") => at("/text").map(|suffix| json!({"url": suffix})),
        Some("flow") => at("/action/flow_token").map(|token| json!({"flow": token})),
        _ => None,
    };
    shown.unwrap_or_else(|| json!(component))
}
