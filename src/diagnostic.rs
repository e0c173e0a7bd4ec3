//! Problems found in a user's files, reported as `path:line:col: message` so editors and
//! terminals can jump straight to them.

use std::fmt;
use std::path::{Path, PathBuf};

/// How serious a problem is: errors refuse to load, warnings only inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file cannot be used as written.
    Error,
    /// The file works, but probably not as its author meant.
    Warning,
}

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
}

impl Position {
    /// A position at `line:col` (both 1-based).
    #[must_use]
    pub fn new(line: usize, col: usize) -> Self {
        Self { line, col }
    }
}

/// One problem in one file, with where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it (relative paths stay relative).
    pub file: PathBuf,
    /// Where in the file; the file's start when the problem has no better place.
    pub position: Position,
    /// Error or warning.
    pub severity: Severity,
    /// Lowercase, no trailing period, says what is wrong and, where it can, what to do.
    pub message: String,
}

impl Diagnostic {
    /// An error at `position` in `file`.
    pub fn error(file: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    /// A warning at `position` in `file`.
    pub fn warning(file: &Path, position: Position, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, position, message)
        }
    }

    /// True for errors, which stop a load.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Position { line, col } = self.position;
        let level = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}:{line}:{col}: {level}{}",
            self.file.display(),
            self.message
        )
    }
}

/// Every problem found in a set of files, sorted by file and position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// True when at least one problem is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Sorts by file, position, then message, so reports are stable.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.file, a.position, &a.message).cmp(&(&b.file, b.position, &b.message))
        });
    }

    /// The problems, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `name`, for "did you mean" hints; `None` when nothing is close.
#[must_use]
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean "x"?)` when a close candidate exists, else nothing.
#[must_use]
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|hint| format!(" (did you mean \"{hint}\"?)"))
        .unwrap_or_default()
}

/// `error: cause: cause…` — an error and its chain of causes on one line, for a diagnostic
/// about a file that could not be used (the cause says why: missing, unreadable, malformed).
#[must_use]
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_path_line_col() {
        let d = Diagnostic::error(Path::new("flows/pizza.yaml"), Position::new(14, 7), "bad");
        assert_eq!(d.to_string(), "flows/pizza.yaml:14:7: bad");
        let w = Diagnostic::warning(Path::new("a.yaml"), Position::new(1, 1), "hmm");
        assert_eq!(w.to_string(), "a.yaml:1:1: warning: hmm");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest("adress", ["address", "confirm"]), Some("address"));
        assert_eq!(closest("zzz", ["address", "confirm"]), None);
    }
}
