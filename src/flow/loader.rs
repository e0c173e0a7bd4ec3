//! Reading flow and FAQ files: YAML syntax and types checked by serde, every error located at
//! `path:line:col` with the marked parse of [`crate::source`], as many errors as can be found in
//! one pass.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, Diagnostics, Position, did_you_mean};
use crate::flow::model::{FaqFile, FlowFile, StepSpec};
use crate::message::MessageSpec;
use crate::source::{PathSeg, SourceMap, YamlPath};

/// One YAML file's text and positions.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as shown to the user.
    pub path: PathBuf,
    /// Where each node sits.
    pub map: SourceMap,
}

impl SourceFile {
    /// An error at the key of `path` (or its nearest ancestor).
    #[must_use]
    pub fn error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.path, self.map.locate(path), message)
    }

    /// A warning at the key of `path` (or its nearest ancestor).
    #[must_use]
    pub fn warning(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(&self.path, self.map.locate(path), message)
    }

    /// An error at the value of `path` (its key when the value has no position).
    #[must_use]
    pub fn value_error(&self, path: &YamlPath, message: impl Into<String>) -> Diagnostic {
        let position = self
            .map
            .value(path)
            .unwrap_or_else(|| self.map.locate(path));
        Diagnostic::error(&self.path, position, message)
    }
}

/// What a file in the flows directory turned out to be.
#[derive(Debug)]
pub enum Document {
    /// A flow.
    Flow(Box<FlowFile>),
    /// An FAQ collection.
    Faq(FaqFile),
}

/// The YAML files of `dir`, sorted, so loads and reports are stable.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and type-checks one flow or FAQ file; problems go to `diagnostics`.
pub fn read_document(path: &Path, diagnostics: &mut Diagnostics) -> Option<(SourceFile, Document)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                path,
                Position::new(1, 1),
                format!("cannot read file: {error}"),
            ));
            return None;
        }
    };
    parse_document(path, &text, diagnostics)
}

/// Type-checks one flow or FAQ file from its text.
pub fn parse_document(
    path: &Path,
    text: &str,
    diagnostics: &mut Diagnostics,
) -> Option<(SourceFile, Document)> {
    let value = parse_yaml(path, text, diagnostics)?;
    let file = SourceFile {
        path: path.to_path_buf(),
        map: SourceMap::parse(text),
    };
    let document = if value.get("faq").is_some() {
        Document::Faq(deserialize_all::<FaqFile>(
            &file,
            &value,
            &["entries"],
            diagnostics,
        )?)
    } else if value.get("flow").is_some() {
        Document::Flow(Box::new(deserialize_all::<FlowFile>(
            &file,
            &value,
            &["steps", "triggers"],
            diagnostics,
        )?))
    } else {
        diagnostics.push(file.error(
            &YamlPath::root(),
            "a flow file starts with `flow: NAME`, an FAQ file with `faq: NAME`",
        ));
        return None;
    };
    Some((file, document))
}

/// Parses YAML text into a value, locating syntax errors.
pub fn parse_yaml(
    path: &Path,
    text: &str,
    diagnostics: &mut Diagnostics,
) -> Option<serde_yaml::Value> {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(map)) => Some(serde_yaml::Value::Mapping(map)),
        Ok(_) => {
            diagnostics.push(Diagnostic::error(
                path,
                Position::new(1, 1),
                "expected a YAML mapping of keys",
            ));
            None
        }
        Err(error) => {
            let position = error.location().map_or(Position::new(1, 1), |at| {
                Position::new(at.line(), at.column())
            });
            diagnostics.push(Diagnostic::error(
                path,
                position,
                format!("invalid YAML: {error}"),
            ));
            None
        }
    }
}

/// Deserializes a whole document; on failure, deserializes each entry of the `collections`
/// (steps, triggers, entries) and the rest on their own, so every broken part is reported.
pub fn deserialize_all<T: DeserializeOwned>(
    file: &SourceFile,
    value: &serde_yaml::Value,
    collections: &[&str],
    diagnostics: &mut Diagnostics,
) -> Option<T> {
    let mut first = Diagnostics::default();
    if let Some(document) = deserialize_at::<T>(file, value, &YamlPath::root(), &mut first) {
        return Some(document);
    }
    let mut found = Diagnostics::default();
    let mut rest = value.clone();
    for name in collections {
        let Some(collection) = rest.get_mut(*name) else {
            continue;
        };
        let base = YamlPath::root().key(*name);
        check_entries(file, collection, &base, name, &mut found);
    }
    deserialize_at::<T>(file, &rest, &YamlPath::root(), &mut found);
    diagnostics
        .0
        .extend(if found.0.is_empty() { first.0 } else { found.0 });
    None
}

/// Checks each entry of a collection on its own and empties the collection so the rest of the
/// document can be checked without it.
fn check_entries(
    file: &SourceFile,
    collection: &mut serde_yaml::Value,
    base: &YamlPath,
    name: &str,
    diagnostics: &mut Diagnostics,
) {
    match collection {
        serde_yaml::Value::Mapping(entries) if name == "steps" => {
            for (key, entry) in entries.iter() {
                let key = key.as_str().unwrap_or_default();
                check_step(file, entry, &base.key(key), diagnostics);
            }
            entries.clear();
        }
        serde_yaml::Value::Sequence(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                let path = base.index(index);
                match name {
                    "triggers" => {
                        deserialize_at::<crate::flow::model::TriggerSpec>(
                            file,
                            entry,
                            &path,
                            diagnostics,
                        );
                    }
                    _ => {
                        deserialize_at::<crate::flow::model::FaqEntrySpec>(
                            file,
                            entry,
                            &path,
                            diagnostics,
                        );
                    }
                }
            }
            entries.clear();
        }
        _ => {}
    }
}

/// Checks one step; when it is broken, checks each message of its `send` on its own and the
/// rest of the step without them, so every broken message is reported.
fn check_step(
    file: &SourceFile,
    step: &serde_yaml::Value,
    path: &YamlPath,
    diagnostics: &mut Diagnostics,
) {
    let mut first = Diagnostics::default();
    if deserialize_at::<StepSpec>(file, step, path, &mut first).is_some() {
        return;
    }
    let mut rest = step.clone();
    let Some(send) = rest.as_mapping_mut().and_then(|m| m.remove("send")) else {
        diagnostics.0.extend(first.0);
        return;
    };
    match &send {
        serde_yaml::Value::Sequence(messages) => {
            for (index, message) in messages.iter().enumerate() {
                deserialize_at::<MessageSpec>(
                    file,
                    message,
                    &path.key("send").index(index),
                    diagnostics,
                );
            }
        }
        message => {
            deserialize_at::<MessageSpec>(file, message, &path.key("send"), diagnostics);
        }
    }
    deserialize_at::<StepSpec>(file, &rest, path, diagnostics);
}

/// Deserializes `value` (found at `base` in the file) into `T`, locating any error.
pub fn deserialize_at<T: DeserializeOwned>(
    file: &SourceFile,
    value: &serde_yaml::Value,
    base: &YamlPath,
    diagnostics: &mut Diagnostics,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Ok(document) => Some(document),
        Err(error) => {
            let path = base.join(&convert_path(error.path()));
            diagnostics.push(located_error(file, &path, &error.inner().to_string()));
            None
        }
    }
}

fn convert_path(path: &serde_path_to_error::Path) -> YamlPath {
    YamlPath(
        path.iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(PathSeg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(PathSeg::Key(key.clone())),
                _ => None,
            })
            .collect(),
    )
}

/// Rewrites serde's messages for people: unknown keys and values get "did you mean" and the
/// position of the key itself.
fn located_error(file: &SourceFile, path: &YamlPath, message: &str) -> Diagnostic {
    if let Some((name, expected)) = parse_unknown(message, "unknown field `") {
        let hint = did_you_mean(name, expected.iter().map(String::as_str));
        let place = path.key(name);
        let allowed = expected.join(", ");
        return file.error(
            &place,
            format!("unknown key \"{name}\"{hint}; allowed here: {allowed}"),
        );
    }
    if let Some((name, expected)) = parse_unknown(message, "unknown variant `") {
        let hint = did_you_mean(name, expected.iter().map(String::as_str));
        let allowed = expected.join(", ");
        return file.value_error(
            path,
            format!("unknown value \"{name}\"{hint}; expected one of {allowed}"),
        );
    }
    let where_ = if path.0.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    file.value_error(path, format!("{where_}{message}"))
}

/// Splits "unknown field `x`, expected one of `a`, `b`" into `x` and `[a, b]`.
fn parse_unknown<'a>(message: &'a str, prefix: &str) -> Option<(&'a str, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (name, tail) = rest.split_once('`')?;
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let mut diagnostics = Diagnostics::default();
        parse_document(Path::new("f.yaml"), text, &mut diagnostics);
        diagnostics.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn unknown_keys_are_located_with_a_suggestion() {
        let found = problems("flow: a\nsteps:\n  s:\n    send: {text: hi}\n    ask: {sav: x}\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("f.yaml:5:11: unknown key \"sav\" (did you mean \"save\"?)"),
            "{found:?}"
        );
    }

    #[test]
    fn every_broken_step_is_reported_at_once() {
        let found = problems(
            "flow: a\nsteps:\n  s:\n    sned: {text: hi}\n  t:\n    ask: {type: choise}\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("f.yaml:4:5: unknown key \"sned\" (did you mean \"send\"?)"),
            "{found:?}"
        );
        assert!(
            found[1]
                .starts_with("f.yaml:6:17: unknown value \"choise\" (did you mean \"choice\"?)"),
            "{found:?}"
        );
    }

    #[test]
    fn syntax_errors_carry_serde_yamls_position() {
        let found = problems("flow: a\nsteps: [\n");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("f.yaml:3:1: invalid YAML"),
            "{found:?}"
        );
    }

    #[test]
    fn a_file_that_is_neither_flow_nor_faq_says_how_to_start() {
        let found = problems("name: x\n");
        assert!(found[0].contains("`flow: NAME`"), "{found:?}");
    }
}
