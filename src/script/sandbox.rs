//! What a script may use: limits on work and data sizes, which hosts it may call, and where it
//! may import modules from. Scripts come from the bot's author, but they run on every message,
//! so a mistake (a loop that never ends, a string that doubles forever) must stop the script,
//! never the engine.

use std::path::{Path, PathBuf};

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Shared};
use serde::{Deserialize, Serialize};

/// Config `script_limits`: each bound stops a script that exceeds it with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptLimits {
    /// Rhai operations per run (a loop iteration is a few).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_depth: usize,
    /// Nesting of expressions.
    pub max_expr_depth: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Items in one array.
    pub max_array_size: usize,
    /// Entries in one map.
    pub max_map_size: usize,
    /// How long `http_get`/`http_post` wait for an answer.
    pub http_timeout: crate::duration::Duration,
    /// Largest response body `http_get`/`http_post` read, in bytes.
    pub http_max_body: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 200_000,
            max_call_depth: 32,
            max_expr_depth: 64,
            max_string_size: 256 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            http_timeout: crate::duration::Duration::from_secs(5),
            http_max_body: 1024 * 1024,
        }
    }
}

/// Everything that shapes the script engine, from `chatflow.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptSettings {
    /// Work and size limits.
    pub limits: ScriptLimits,
    /// Hosts `http_get`/`http_post` may call (config `script_http_allow`); empty: none.
    pub http_allow: Vec<String>,
    /// The only directory `import` may read modules from.
    pub scripts_dir: PathBuf,
}

/// Applies the limits and closes the doors a bot script has no business opening.
pub fn apply(engine: &mut Engine, settings: &ScriptSettings) {
    let limits = &settings.limits;
    engine
        .set_strict_variables(true)
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_depth)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth / 2)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_module_resolver(ScriptsDir::new(&settings.scripts_dir));
    // `eval` would run text built at run time, which validation never saw.
    engine.disable_symbol("eval");
    engine.on_print(|text| tracing::info!(message = "Script printed.", text));
    engine.on_debug(|text, source, position| {
        tracing::debug!(message = "Script debug.", text, source = source.unwrap_or_default(), %position);
    });
}

/// Resolves `import "name"` to `scripts_dir/name.rhai`, and nothing outside it.
struct ScriptsDir {
    root: PathBuf,
    files: FileModuleResolver,
}

impl ScriptsDir {
    fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            files: FileModuleResolver::new_with_path(root),
        }
    }
}

impl ModuleResolver for ScriptsDir {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        position: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let inside = Path::new(path)
            .components()
            .all(|part| matches!(part, std::path::Component::Normal(_)));
        if !inside {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                format!(
                    "{path} (modules are imported by a plain name from {})",
                    self.root.display()
                ),
                position,
            )));
        }
        self.files.resolve(engine, source, path, position)
    }
}
