//! `{{ expr }}` templates in flow values, compiled once at load.
//!
//! A value that is exactly one `{{ expr }}` keeps the expression's type; a value mixing text and
//! expressions is a string, with `()` rendering as nothing (DESIGN §6).

use serde_json::Value;

use crate::script::{Bindings, CompileError, EvalError, Expr, ScriptEngine};

/// A string value from a flow file, split into literal text and expressions.
#[derive(Debug, Clone)]
pub enum Template {
    /// No `{{` at all: the text as is.
    Literal(String),
    /// Exactly one `{{ expr }}` and nothing else: keeps the expression's type.
    Single(Expr),
    /// Text and expressions mixed: always a string.
    Mixed(Vec<Part>),
}

/// A piece of a mixed template.
#[derive(Debug, Clone)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// An expression to render.
    Expr(Expr),
}

/// A template that does not compile, with the offending expression's place in the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("`{{{{` at character {offset} is never closed with `}}}}`")]
    Unclosed { offset: usize },
    /// An expression Rhai cannot compile.
    #[error("in `{{{{ {source_text} }}}}`: {error}")]
    Expr {
        source_text: String,
        error: CompileError,
    },
}

impl Template {
    /// Splits and compiles `text`.
    pub fn compile(engine: &ScriptEngine, text: &str) -> Result<Self, TemplateError> {
        if !text.contains("{{") {
            return Ok(Self::Literal(text.to_owned()));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed {
                offset: text.len() - rest.len() + open,
            })?;
            let source = after[..close].trim();
            let expr = engine
                .compile_expr(source)
                .map_err(|error| TemplateError::Expr {
                    source_text: source.to_owned(),
                    error,
                })?;
            parts.push(Part::Expr(expr));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(match parts.as_slice() {
            [Part::Expr(expr)] => Self::Single(expr.clone()),
            _ => Self::Mixed(parts),
        })
    }

    /// True when rendering can only ever give the same text.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        matches!(self, Self::Literal(_))
    }

    /// Renders keeping the type of a lone expression.
    pub fn render_value(
        &self,
        engine: &ScriptEngine,
        bindings: &mut Bindings,
    ) -> Result<Value, EvalError> {
        match self {
            Self::Literal(text) => Ok(Value::String(text.clone())),
            Self::Single(expr) => engine.eval(expr, bindings),
            Self::Mixed(_) => self.render_text(engine, bindings).map(Value::String),
        }
    }

    /// Renders as text, whatever the expressions give.
    pub fn render_text(
        &self,
        engine: &ScriptEngine,
        bindings: &mut Bindings,
    ) -> Result<String, EvalError> {
        match self {
            Self::Literal(text) => Ok(text.clone()),
            Self::Single(expr) => Ok(display(&engine.eval(expr, bindings)?)),
            Self::Mixed(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => out.push_str(text),
                        Part::Expr(expr) => out.push_str(&display(&engine.eval(expr, bindings)?)),
                    }
                }
                Ok(out)
            }
        }
    }
}

/// How a value reads inside text: strings bare, `()` as nothing, the rest as JSON.
#[must_use]
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_f64() {
            // 29.0 reads as 29 in a chat; fractions keep their digits.
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e15 => {
                format!("{float:.0}")
            }
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

/// Whether a rendered tree keeps lone expressions' types (`set`) or turns scalars into text
/// (message fields, which are text; numeric message fields accept text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderMode {
    /// Keep the expression's type.
    Typed,
    /// Scalars become text; maps and lists keep their structure.
    Text,
}

/// A JSON-like tree whose strings are templates: `set` values and messages.
#[derive(Debug, Clone)]
pub enum ValueTemplate {
    /// Contains no template anywhere.
    Const(Value),
    /// A templated string.
    Text(Template),
    /// A list with templates inside.
    Array(Vec<ValueTemplate>),
    /// A map with templates inside.
    Object(Vec<(String, ValueTemplate)>),
}

/// A template error at a path inside a value tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedTemplateError {
    /// Where in the tree.
    pub path: crate::source::YamlPath,
    /// What is wrong.
    pub error: TemplateError,
}

impl ValueTemplate {
    /// Compiles every string in `value`; reports every broken template.
    pub fn compile(
        engine: &ScriptEngine,
        value: &Value,
    ) -> Result<Self, Vec<LocatedTemplateError>> {
        let mut errors = Vec::new();
        let tree = Self::compile_at(engine, value, &crate::source::YamlPath::root(), &mut errors);
        if errors.is_empty() {
            Ok(tree)
        } else {
            Err(errors)
        }
    }

    fn compile_at(
        engine: &ScriptEngine,
        value: &Value,
        path: &crate::source::YamlPath,
        errors: &mut Vec<LocatedTemplateError>,
    ) -> Self {
        let tree = match value {
            Value::String(text) => match Template::compile(engine, text) {
                Ok(Template::Literal(_)) => return Self::Const(value.clone()),
                Ok(template) => Self::Text(template),
                Err(error) => {
                    errors.push(LocatedTemplateError {
                        path: path.clone(),
                        error,
                    });
                    return Self::Const(value.clone());
                }
            },
            Value::Array(items) => Self::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Self::compile_at(engine, item, &path.index(i), errors))
                    .collect(),
            ),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(key, item)| {
                        (
                            key.clone(),
                            Self::compile_at(engine, item, &path.key(key), errors),
                        )
                    })
                    .collect(),
            ),
            _ => return Self::Const(value.clone()),
        };
        if tree.is_const() {
            Self::Const(value.clone())
        } else {
            tree
        }
    }

    fn is_const(&self) -> bool {
        match self {
            Self::Const(_) => true,
            Self::Text(_) => false,
            Self::Array(items) => items.iter().all(Self::is_const),
            Self::Object(entries) => entries.iter().all(|(_, item)| item.is_const()),
        }
    }

    /// The value when it holds no template at all.
    #[must_use]
    pub fn as_const(&self) -> Option<&Value> {
        match self {
            Self::Const(value) => Some(value),
            _ => None,
        }
    }

    /// Renders the tree.
    pub fn render(
        &self,
        engine: &ScriptEngine,
        bindings: &mut Bindings,
        mode: RenderMode,
    ) -> Result<Value, EvalError> {
        Ok(match self {
            Self::Const(value) => value.clone(),
            Self::Text(template) => {
                let value = template.render_value(engine, bindings)?;
                match (mode, value) {
                    (RenderMode::Text, value @ (Value::Array(_) | Value::Object(_))) => value,
                    (RenderMode::Text, value) => Value::String(display(&value)),
                    (RenderMode::Typed, value) => value,
                }
            }
            Self::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(engine, bindings, mode))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Object(entries) => {
                let mut map = serde_json::Map::new();
                for (key, item) in entries {
                    map.insert(key.clone(), item.render(engine, bindings, mode)?);
                }
                Value::Object(map)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(text: &str, mode: RenderMode) -> Value {
        let engine = ScriptEngine::new();
        let mut bindings = Bindings::new(
            &json!({"name": "Ann"}),
            &json!({"qty": 2, "size": "large"}),
            &json!({}),
        );
        let tree = ValueTemplate::compile(&engine, &json!(text)).unwrap();
        tree.render(&engine, &mut bindings, mode).unwrap()
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        assert_eq!(render("{{ vars.qty * 40 }}", RenderMode::Typed), json!(80));
        assert_eq!(render("{{ vars.qty > 1 }}", RenderMode::Typed), json!(true));
    }

    #[test]
    fn mixed_text_is_a_string_and_unit_renders_as_nothing() {
        assert_eq!(
            render("{{vars.qty}} × {{vars.size}}", RenderMode::Typed),
            json!("2 × large")
        );
        assert_eq!(
            render("[{{ vars.missing }}]", RenderMode::Typed),
            json!("[]")
        );
    }

    #[test]
    fn whole_floats_read_as_whole_numbers() {
        assert_eq!(display(&json!(29.0)), "29");
        assert_eq!(display(&json!(29.5)), "29.5");
        assert_eq!(display(&json!(-3)), "-3");
    }

    #[test]
    fn message_fields_render_as_text() {
        assert_eq!(render("{{ vars.qty }}", RenderMode::Text), json!("2"));
    }

    #[test]
    fn unclosed_and_broken_expressions_are_reported() {
        let engine = ScriptEngine::new();
        assert!(matches!(
            Template::compile(&engine, "hi {{ contact.name"),
            Err(TemplateError::Unclosed { offset: 3 })
        ));
        let error = Template::compile(&engine, "{{ vars.qty * }}").unwrap_err();
        assert!(
            error.to_string().starts_with("in `{{ vars.qty * }}`"),
            "{error}"
        );
    }
}
