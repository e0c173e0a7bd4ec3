//! Logs: which lines are written (a `RUST_LOG`-style filter from `CHATFLOW_LOG`, else
//! `RUST_LOG`), how they look (readable text or JSON lines), and that no credential the config
//! holds ever reaches them — whatever printed it: a URL in an error, a provider's answer
//! echoing a key, a careless field. Every line passes one [`Redactor`] on its way out.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use aho_corasick::{AhoCorasick, MatchKind};
use tracing::Metadata;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// The variables the filter is read from; the first one set wins.
pub const FILTER_VARIABLES: [&str; 2] = ["CHATFLOW_LOG", "RUST_LOG"];

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are left alone: replacing every `abc` in the logs would garble
/// them, and a credential that short protects nothing anyway.
const MIN_SECRET_LEN: usize = 6;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable text, coloured on a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Why logging could not be set up; the process should not start without its logs.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A filter variable holds a directive that does not parse.
    #[error(
        "{variable} is not a valid log filter ({reason}); write directives like `info`, `warn,chatflow=debug` or `chatflow::outbox=trace`"
    )]
    Filter {
        /// The variable at fault.
        variable: &'static str,
        /// What the filter parser said (its text: as a source it would print its own cause
        /// twice).
        reason: String,
    },
    /// The secrets cannot be searched for (far too many or too long).
    #[error("the secrets in the config cannot be redacted from the logs")]
    Secrets(#[source] aho_corasick::BuildError),
    /// Logging was set up before in this process.
    #[error("logging was already set up")]
    AlreadySet(#[source] tracing::subscriber::SetGlobalDefaultError),
}

/// Sets up the process's logs: filtered by the environment (`default` when no filter variable
/// is set), written to stderr in `format` — coloured only on a terminal — with every one of
/// `secrets` redacted.
///
/// # Errors
/// A filter variable does not parse, or logging was set up before.
pub fn init<'a>(
    format: LogFormat,
    default: &str,
    secrets: impl IntoIterator<Item = &'a str>,
) -> Result<(), TelemetryError> {
    let filter = filter(&|name| std::env::var(name).ok(), default)?;
    let writer = Redacting::new(io::stderr, Redactor::new(secrets)?);
    let subscriber = subscriber(format, filter, writer, io::stderr().is_terminal());
    tracing::subscriber::set_global_default(subscriber).map_err(TelemetryError::AlreadySet)
}

/// The filter from the first of [`FILTER_VARIABLES`] that `env` has (an empty one counts as
/// unset), else `default`. A directive that does not parse is an error, never ignored: a typo
/// would otherwise silently log nothing.
///
/// # Errors
/// The variable in use does not parse as a filter.
pub fn filter(
    env: &dyn Fn(&str) -> Option<String>,
    default: &str,
) -> Result<EnvFilter, TelemetryError> {
    for variable in FILTER_VARIABLES {
        let Some(directives) = env(variable).filter(|value| !value.trim().is_empty()) else {
            continue;
        };
        return EnvFilter::builder()
            .parse(directives)
            .map_err(|error| TelemetryError::Filter {
                variable,
                reason: error.to_string(),
            });
    }
    Ok(EnvFilter::new(default))
}

/// The subscriber chatflow logs through, writing to `writer`: `filter` picks the lines, `ansi`
/// colours them (human format only). A span also writes a line when it closes, with its fields
/// — those recorded late, like the flow a turn ended in, included — and its duration: one line
/// per handled event, send attempt and fired timer.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_span_events(FmtSpan::CLOSE);
    match format {
        LogFormat::Human => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    }
}

/// Finds the configured secrets in a formatted line, in each spelling a line may hold them.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// `None`: no secret long enough to look for.
    automaton: Option<AhoCorasick>,
}

impl Redactor {
    /// A redactor for `secrets`; those shorter than a few characters are ignored.
    ///
    /// # Errors
    /// The secrets are too many or too long to search for.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Result<Self, TelemetryError> {
        let mut patterns: Vec<String> = secrets
            .into_iter()
            .filter(|secret| secret.len() >= MIN_SECRET_LEN)
            .flat_map(spellings)
            .collect();
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .map_err(TelemetryError::Secrets)?;
        Ok(Self {
            automaton: Some(automaton),
        })
    }

    /// `line` with every secret replaced by [`REDACTED`].
    #[must_use]
    pub fn redact<'l>(&self, line: &'l [u8]) -> Cow<'l, [u8]> {
        match &self.automaton {
            Some(automaton) if automaton.is_match(line) => {
                let mut out = Vec::with_capacity(line.len());
                automaton.replace_all_with_bytes(line, &mut out, |_, _, out| {
                    out.extend_from_slice(REDACTED.as_bytes());
                    true
                });
                Cow::Owned(out)
            }
            _ => Cow::Borrowed(line),
        }
    }
}

/// How a secret can appear in a line: as written, escaped inside a JSON or a Rust debug string
/// (quotes, backslashes, control characters), and form-encoded in a URL query.
fn spellings(secret: &str) -> Vec<String> {
    let quoted = |text: String| text[1..text.len() - 1].to_owned();
    let json = serde_json::to_string(secret).map_or_else(|_| secret.to_owned(), quoted);
    let debug = quoted(format!("{secret:?}"));
    let query = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![secret.to_owned(), json, debug, query]
}

/// A [`MakeWriter`] that hands out writers redacting each formatted line before it reaches
/// the inner one: the single place secrets are kept out of the logs.
#[derive(Debug)]
pub struct Redacting<M> {
    inner: M,
    redactor: Redactor,
}

impl<M> Redacting<M> {
    /// Writes to `inner` what `redactor` lets through.
    pub fn new(inner: M, redactor: Redactor) -> Self {
        Self { inner, redactor }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer(), &self.redactor)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        RedactingWriter::new(self.inner.make_writer_for(meta), &self.redactor)
    }
}

/// Gathers what the formatter writes for one line and passes it on redacted when flushed or
/// dropped, so a secret split over several writes is still caught.
pub struct RedactingWriter<'a, W: Write> {
    inner: W,
    redactor: &'a Redactor,
    line: Vec<u8>,
}

impl<'a, W: Write> RedactingWriter<'a, W> {
    fn new(inner: W, redactor: &'a Redactor) -> Self {
        Self {
            inner,
            redactor,
            line: Vec::new(),
        }
    }
}

impl<W: Write> Write for RedactingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.inner.write_all(&self.redactor.redact(&line))?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<'_, W> {
    fn drop(&mut self) {
        // A log line that cannot be written has nowhere to be reported.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(secrets: &[&str], line: &str) -> String {
        let redactor = Redactor::new(secrets.iter().copied()).expect("a redactor");
        String::from_utf8(redactor.redact(line.as_bytes()).into_owned()).expect("utf-8")
    }

    #[test]
    fn secrets_are_replaced_in_every_spelling() {
        let secrets = ["t0ken/with+\"quote\"", "plain-secret"];
        assert_eq!(
            redacted(&secrets, "GET /api/plain-secret/send?k=plain-secret"),
            "GET /api/[redacted]/send?k=[redacted]"
        );
        assert_eq!(
            redacted(&secrets, r#"{"url":"t0ken/with+\"quote\""}"#),
            r#"{"url":"[redacted]"}"#
        );
        assert_eq!(
            redacted(
                &secrets,
                "https://x.example/send?token=t0ken%2Fwith%2B%22quote%22"
            ),
            "https://x.example/send?token=[redacted]"
        );
    }

    #[test]
    fn the_longest_secret_wins_and_short_ones_are_left_alone() {
        assert_eq!(
            redacted(&["secret", "secret-plus", "abc"], "secret-plus secret abc"),
            "[redacted] [redacted] abc"
        );
        assert_eq!(redacted(&[], "nothing to hide"), "nothing to hide");
    }

    #[test]
    fn a_line_written_in_pieces_is_redacted_whole() {
        let redactor = Redactor::new(["split-secret"]).expect("a redactor");
        let mut out = Vec::new();
        {
            let mut writer = RedactingWriter::new(&mut out, &redactor);
            writer.write_all(b"key=split-").expect("written");
            writer.write_all(b"secret\n").expect("written");
        }
        assert_eq!(String::from_utf8(out).expect("utf-8"), "key=[redacted]\n");
    }

    #[test]
    fn the_filter_comes_from_chatflow_log_then_rust_log_and_a_bad_one_is_named() {
        let env = |chatflow: Option<&str>, rust: Option<&str>| {
            let chatflow = chatflow.map(str::to_owned);
            let rust = rust.map(str::to_owned);
            move |name: &str| match name {
                "CHATFLOW_LOG" => chatflow.clone(),
                "RUST_LOG" => rust.clone(),
                _ => None,
            }
        };
        let shown = |filter: EnvFilter| filter.to_string();
        assert_eq!(shown(filter(&env(None, None), "info").expect("ok")), "info");
        assert_eq!(
            shown(filter(&env(Some("debug"), Some("warn")), "info").expect("ok")),
            "debug"
        );
        assert_eq!(
            shown(filter(&env(Some(" "), Some("warn")), "info").expect("ok")),
            "warn"
        );
        let error = filter(&env(None, Some("chatflow=loud")), "info").expect_err("bad");
        assert!(
            error
                .to_string()
                .starts_with("RUST_LOG is not a valid log filter")
        );
        let error = filter(&env(Some("chatflow=loud"), None), "info").expect_err("bad");
        assert!(
            error.to_string().starts_with("CHATFLOW_LOG is not"),
            "{error}"
        );
    }
}
