//! The Rhai engine behind templates, `when` guards, `switch` conditions and script steps:
//! built once, sandboxed by limits, with chatflow's functions registered.
//!
//! Everything is compiled at load into [`Expr`]s and [`Program`]s; per message only evaluation
//! runs. The clock is injected per evaluation ([`with_clock`]) so the runtime stays a pure
//! function of its inputs.

mod api;
mod functions;
mod http;
mod sandbox;

use std::cell::Cell;
use std::collections::HashSet;

use rhai::{AST, ASTNode, Dynamic, Engine, Scope};
use serde_json::Value;
use thiserror::Error;

pub use api::{Jump, ScriptEffects};
pub use sandbox::{ScriptLimits, ScriptSettings};

/// Names every expression may use; anything else is a compile error (strict variables).
pub const SCOPE_NAMES: [&str; 3] = ["contact", "vars", "message"];

/// Rhai's own call-like keywords, which no module registers.
const KEYWORD_FUNCTIONS: [&str; 10] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_fn",
    "is_def_var",
    "this",
];

/// A compile error with its position inside the expression or script (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CompileError {
    /// What is wrong, in Rhai's words.
    pub message: String,
    /// Line inside the source, 1-based.
    pub line: usize,
    /// Column inside the source, 1-based.
    pub col: usize,
}

/// An evaluation failure: a runtime error or an exhausted sandbox limit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct EvalError {
    /// Where (`file:line:col` for scripts) and what went wrong, in Rhai's words.
    pub message: String,
}

/// The sandboxed engine, shared by every flow.
pub struct ScriptEngine {
    engine: Engine,
    /// Every function a script can call, for validation's "unknown function" check.
    known: HashSet<String>,
}

impl std::fmt::Debug for ScriptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptEngine")
    }
}

impl Default for ScriptEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// A compiled expression, with its source kept for messages.
#[derive(Debug, Clone)]
pub struct Expr {
    ast: AST,
    source: String,
}

impl Expr {
    /// The expression as written.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Where a script's text is, so its errors point into the file the author edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOrigin {
    /// The `.rhai` file, or the flow file holding an inline `rhai:`.
    pub file: String,
    /// Line and column (1-based) of the script's first character in `file`; `None` when the
    /// lines do not map back (a folded block), and positions are the script's own.
    pub start: Option<(usize, usize)>,
}

impl ScriptOrigin {
    /// Line and column (1-based) in `file` of a position inside the script (block scalars keep
    /// one indentation, so columns shift alike on every line).
    #[must_use]
    pub fn locate(&self, line: usize, col: usize) -> (usize, usize) {
        match self.start {
            Some((start_line, start_col)) => (start_line + line - 1, start_col + col - 1),
            None => (line, col),
        }
    }

    /// `file:line:col` of a position (1-based) inside the script.
    #[must_use]
    pub fn at(&self, line: usize, col: usize) -> String {
        let (line, col) = self.locate(line, col);
        format!("{}:{line}:{col}", self.file)
    }
}

/// A compiled script (a `script:` file or inline `rhai:`).
#[derive(Debug, Clone)]
pub struct Program {
    ast: AST,
    /// Where it came from, for error messages.
    pub origin: ScriptOrigin,
}

impl Program {
    /// Whether the script calls any of `names` (by plain name).
    #[must_use]
    pub fn calls_any(&self, names: &[&str]) -> bool {
        let mut found = false;
        self.ast.walk(&mut |path: &[ASTNode]| {
            if let Some((call, _)) = path.last().and_then(function_call) {
                found |= names.contains(&call.name.as_str());
            }
            !found
        });
        found
    }
}

/// A call to a function no module defines, found at validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCall {
    /// The function's name.
    pub name: String,
    /// Line inside the script, 1-based.
    pub line: usize,
    /// Column inside the script, 1-based.
    pub col: usize,
}

/// What expressions and scripts see: `contact`, `vars`, `message`.
#[derive(Debug, Clone)]
pub struct Bindings {
    scope: Scope<'static>,
}

impl Bindings {
    /// Binds the three documented names; each is converted to Rhai values once.
    #[must_use]
    pub fn new(contact: &Value, vars: &Value, message: &Value) -> Self {
        let mut scope = Scope::new();
        scope.push_constant("contact", to_dynamic(contact));
        scope.push("vars", to_dynamic(vars));
        scope.push_constant("message", to_dynamic(message));
        Self { scope }
    }

    /// Sets one variable in `vars`, so a step's `set` or a saved answer does not rebuild the
    /// whole scope; `false` if `vars` is no longer a map (then rebuild).
    pub fn set_var(&mut self, name: &str, value: &Value) -> bool {
        let Some(vars) = self.scope.get_mut("vars") else {
            return false;
        };
        match vars.write_lock::<rhai::Map>() {
            Some(mut map) => {
                map.insert(name.into(), to_dynamic(value));
                true
            }
            None => false,
        }
    }

    /// The current `vars`, as scripts left them.
    #[must_use]
    pub fn vars(&self) -> Value {
        self.scope
            .get("vars")
            .and_then(|vars| rhai::serde::from_dynamic(vars).ok())
            .unwrap_or(Value::Null)
    }
}

impl ScriptEngine {
    /// The engine with the default limits and no HTTP access.
    #[must_use]
    pub fn new() -> Self {
        Self::with_settings(&ScriptSettings::default())
    }

    /// The engine with `settings`' limits and allowlist, and chatflow's functions.
    #[must_use]
    pub fn with_settings(settings: &ScriptSettings) -> Self {
        let mut engine = Engine::new();
        sandbox::apply(&mut engine, settings);
        functions::register(&mut engine);
        api::register(&mut engine);
        http::register(&mut engine, settings);
        let mut known: HashSet<String> = engine
            .collect_fn_metadata(None, |info| Some(info.metadata.name.to_string()), true)
            .into_iter()
            .collect();
        known.extend(KEYWORD_FUNCTIONS.iter().map(|name| (*name).to_owned()));
        Self { engine, known }
    }

    /// Compiles one expression (a template's `{{ … }}`, a `when` or an `if`).
    pub fn compile_expr(&self, source: &str) -> Result<Expr, CompileError> {
        let ast = self
            .engine
            .compile_expression_with_scope(&declared_scope(), source)
            .map_err(compile_error)?;
        Ok(Expr {
            ast,
            source: source.to_owned(),
        })
    }

    /// Compiles a whole script.
    pub fn compile_program(
        &self,
        source: &str,
        origin: ScriptOrigin,
    ) -> Result<Program, CompileError> {
        let ast = self
            .engine
            .compile_with_scope(&declared_scope(), source)
            .map_err(compile_error)?;
        Ok(Program { ast, origin })
    }

    /// Calls in `program` to functions that neither chatflow, Rhai nor the script defines —
    /// a typo Rhai would only report when the line runs.
    #[must_use]
    pub fn unknown_calls(&self, program: &Program) -> Vec<UnknownCall> {
        let own: HashSet<String> = program
            .ast
            .iter_functions()
            .map(|function| function.name.to_owned())
            .collect();
        let mut unknown = Vec::new();
        program.ast.walk(&mut |path: &[ASTNode]| {
            if let Some((call, position)) = path.last().and_then(function_call) {
                let name = call.name.as_str();
                let plain = call.namespace.is_empty()
                    && call.op_token.is_none()
                    && name.starts_with(|c: char| c.is_alphabetic() || c == '_');
                if plain && !self.known.contains(name) && !own.contains(name) {
                    unknown.push(UnknownCall {
                        name: name.to_owned(),
                        line: position.line().unwrap_or(1),
                        col: position.position().unwrap_or(1),
                    });
                }
            }
            true
        });
        unknown
    }

    /// Evaluates an expression to a JSON value.
    pub fn eval(&self, expr: &Expr, bindings: &mut Bindings) -> Result<Value, EvalError> {
        let result: Dynamic = self
            .engine
            .eval_ast_with_scope(&mut bindings.scope, &expr.ast)
            .map_err(|error| EvalError {
                message: format!("in `{}`: {error}", expr.source),
            })?;
        Ok(from_dynamic(&result))
    }

    /// Evaluates a condition; anything but a boolean is an error.
    pub fn eval_bool(&self, expr: &Expr, bindings: &mut Bindings) -> Result<bool, EvalError> {
        match self.eval(expr, bindings)? {
            Value::Bool(value) => Ok(value),
            other => Err(EvalError {
                message: format!("`{}` gave {other}, not true or false", expr.source),
            }),
        }
    }

    /// Runs a script; its changes to `vars` stay in `bindings`, and what it asked of the
    /// conversation (sends, jumps, tags, reminders, log lines) is returned for the runtime to
    /// apply. A failure is reported at `file:line:col` and asks for nothing.
    pub fn run(
        &self,
        program: &Program,
        bindings: &mut Bindings,
    ) -> Result<ScriptEffects, EvalError> {
        let (result, effects) = api::collect(|| {
            self.engine
                .run_ast_with_scope(&mut bindings.scope, &program.ast)
        });
        match result {
            Ok(()) => Ok(effects),
            Err(mut error) => {
                let position = error.take_position();
                let at = program.origin.at(
                    position.line().unwrap_or(1),
                    position.position().unwrap_or(1),
                );
                Err(EvalError {
                    message: format!("{at}: {error}"),
                })
            }
        }
    }
}

/// The function call a node is, whether a statement (`f(x);`) or inside an expression.
fn function_call<'a>(node: &ASTNode<'a>) -> Option<(&'a rhai::FnCallExpr, rhai::Position)> {
    match node {
        ASTNode::Expr(rhai::Expr::FnCall(call, position))
        | ASTNode::Stmt(rhai::Stmt::FnCall(call, position)) => Some((call, *position)),
        _ => None,
    }
}

fn declared_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    for name in SCOPE_NAMES {
        scope.push_dynamic(name, Dynamic::UNIT);
    }
    scope
}

fn compile_error(error: rhai::ParseError) -> CompileError {
    CompileError {
        message: error.0.to_string(),
        line: error.1.line().unwrap_or(1),
        col: error.1.position().unwrap_or(1),
    }
}

/// JSON to Rhai: objects become maps, integers INT, other numbers FLOAT.
pub fn to_dynamic(value: &Value) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// Rhai to JSON: `()` becomes null; values JSON cannot hold become their text.
#[must_use]
pub fn from_dynamic(value: &Dynamic) -> Value {
    rhai::serde::from_dynamic(value).unwrap_or_else(|_| Value::String(value.to_string()))
}

thread_local! {
    static CLOCK: Cell<i64> = const { Cell::new(0) };
}

/// Runs `body` with `now()` answering `unix_seconds`, so evaluation depends only on its inputs.
pub fn with_clock<T>(unix_seconds: i64, body: impl FnOnce() -> T) -> T {
    let previous = CLOCK.with(|clock| clock.replace(unix_seconds));
    let result = body();
    CLOCK.with(|clock| clock.set(previous));
    result
}

fn clock_now() -> i64 {
    CLOCK.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> ScriptOrigin {
        ScriptOrigin {
            file: "inline.rhai".to_owned(),
            start: None,
        }
    }

    fn bindings() -> Bindings {
        Bindings::new(
            &json!({"name": "Ann"}),
            &json!({"qty": 3}),
            &json!({"text": "hi"}),
        )
    }

    #[test]
    fn evaluates_over_the_documented_names() {
        let engine = ScriptEngine::new();
        let expr = engine.compile_expr("vars.qty * 40").unwrap();
        assert_eq!(engine.eval(&expr, &mut bindings()).unwrap(), json!(120));
        let expr = engine.compile_expr("contact.name + \"!\"").unwrap();
        assert_eq!(engine.eval(&expr, &mut bindings()).unwrap(), json!("Ann!"));
    }

    #[test]
    fn unknown_names_fail_at_compile_time_with_a_position() {
        let engine = ScriptEngine::new();
        let error = engine.compile_expr("contcat.name").unwrap_err();
        assert!(error.message.contains("contcat"), "{error}");
        assert_eq!((error.line, error.col), (1, 1));
    }

    #[test]
    fn now_reads_the_injected_clock() {
        let engine = ScriptEngine::new();
        let expr = engine.compile_expr("now()").unwrap();
        let value = with_clock(1_700_000_000, || engine.eval(&expr, &mut bindings()));
        assert_eq!(value.unwrap(), json!(1_700_000_000));
    }

    #[test]
    fn runaway_loops_stop_at_the_operation_limit() {
        let engine = ScriptEngine::new();
        let program = engine
            .compile_program("loop { vars.qty += 1; }", origin())
            .unwrap();
        let error = engine.run(&program, &mut bindings()).unwrap_err();
        assert!(error.message.contains("operations"), "{error}");
    }

    #[test]
    fn scripts_write_vars() {
        let engine = ScriptEngine::new();
        let program = engine
            .compile_program("vars.price = vars.qty * 10;", origin())
            .unwrap();
        let mut bindings = bindings();
        engine.run(&program, &mut bindings).unwrap();
        assert_eq!(bindings.vars(), json!({"qty": 3, "price": 30}));
    }
}
