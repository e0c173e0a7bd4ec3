//! Shared test helpers: bots built from YAML text in the test itself, so each rule is shown on
//! the smallest bot, and (in `harness`) the end-to-end plumbing with a mock provider.

#[allow(dead_code, reason = "each fault-injection test uses some of it")]
pub mod faulty;
#[allow(dead_code, reason = "only the end-to-end tests use it")]
pub mod harness;
#[allow(dead_code, reason = "each provider test uses some of it")]
pub mod provider;

use std::path::Path;

use chatflow::diagnostic::Diagnostics;
use chatflow::flow::compile::compile_documents;
use chatflow::flow::loader::parse_document;
use chatflow::flow::{Bot, LoadOptions, Loaded};

/// Compiles flow files given as text (named `f0.yaml`, `f1.yaml`, …).
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn compile(files: &[&str], options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let documents = files
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            parse_document(Path::new(&format!("f{i}.yaml")), text, &mut diagnostics)
        })
        .collect();
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    compile_documents(documents, options)
}

/// A bot that must load.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn bot(files: &[&str]) -> Bot {
    compile(files, &LoadOptions::default())
        .map(|loaded| loaded.bot)
        .unwrap_or_else(|d| panic!("{d}"))
}
