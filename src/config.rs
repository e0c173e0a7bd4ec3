//! `chatflow.yaml` (DESIGN §4): types, `${ENV}` substitution, defaults, validation. Relative
//! paths are relative to the config file.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Diagnostics, Position};
use crate::duration::Duration;
use crate::flow::LoadOptions;
use crate::flow::loader::{SourceFile, deserialize_at, parse_yaml};
use crate::provider::Secret;
use crate::source::{SourceMap, YamlPath};

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate (Meta calls webhooks over HTTPS only); without it,
    /// plain HTTP, e.g. behind a TLS reverse proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Where state is kept.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Flow and FAQ files.
    #[serde(default = "default_flows_dir")]
    pub flows_dir: PathBuf,
    /// Rhai scripts.
    #[serde(default = "default_scripts_dir")]
    pub scripts_dir: PathBuf,
    /// Bearer token for every `/api/*` route.
    #[serde(default, skip_serializing)]
    pub admin_token: Option<Secret>,
    /// Started when nothing matches (default: the flow `fallback` if there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_flow: Option<String>,
    /// Started when a script fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_flow: Option<String>,
    /// The built-in `simulator` channel.
    #[serde(default = "yes")]
    pub simulator: bool,
    /// An ask left unanswered this long ends its flow.
    #[serde(default = "default_conversation_timeout")]
    pub conversation_timeout: Duration,
    /// Largest webhook body accepted, e.g. `4MiB`.
    #[serde(default = "default_body_limit")]
    pub body_limit: String,
    /// How long provider message ids are remembered.
    #[serde(default = "default_dedupe_window")]
    pub dedupe_window: Duration,
    /// Send attempts before a message is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long the message log is kept.
    #[serde(default = "default_log_retention")]
    pub log_retention: Duration,
    /// Opt-out and opt-in words.
    #[serde(default)]
    pub opt_out: OptOut,
    /// Hosts Rhai `http_get`/`http_post` may call.
    #[serde(default)]
    pub script_http_allow: Vec<String>,
    /// Limits on what one script run may do.
    #[serde(default)]
    pub script_limits: crate::script::ScriptLimits,
    /// Told (POST, JSON with the recent transcript) whenever a contact is handed to a human or
    /// given back, so a help desk can pick the conversation up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_webhook: Option<String>,
    /// Provider channels.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Where settings that name flows were written, to report a missing flow there.
    #[serde(skip)]
    #[schemars(skip)]
    pub places: HashMap<String, (PathBuf, Position)>,
}

/// `tls: {cert, key}`: PEM files, relative to the config file like every path in it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain, the server's own certificate first (Let's Encrypt's
    /// `fullchain.pem`).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (Let's Encrypt's `privkey.pem`).
    pub key: PathBuf,
}

/// `opt_out: {stop, start}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOut {
    /// Words that opt a contact out.
    #[serde(default = "default_stop_words")]
    pub stop: Vec<String>,
    /// Words that opt a contact back in.
    #[serde(default = "default_start_words")]
    pub start: Vec<String>,
    /// The confirmation sent after a stop word.
    #[serde(default = "default_stop_reply")]
    pub stop_reply: String,
    /// The confirmation sent after a start word.
    #[serde(default = "default_start_reply")]
    pub start_reply: String,
}

impl Default for OptOut {
    fn default() -> Self {
        Self {
            stop: default_stop_words(),
            start: default_start_words(),
            stop_reply: default_stop_reply(),
            start_reply: default_start_reply(),
        }
    }
}

/// One provider channel; provider-specific keys are checked by the provider.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct Channel {
    /// Appears in the webhook URL: `/webhooks/{id}`.
    pub id: String,
    /// meta, ivosights, chatapi, decisiontelecom, digiworld, socnet, generic or simulator.
    pub provider: String,
    /// The provider's other keys (base_url, rate_limit, tokens…).
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Shows the keys of the settings but none of their values, which hold credentials.
impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_flows_dir() -> PathBuf {
    PathBuf::from("flows")
}
fn default_scripts_dir() -> PathBuf {
    PathBuf::from("scripts")
}
fn yes() -> bool {
    true
}
fn default_conversation_timeout() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_body_limit() -> String {
    "4MiB".to_owned()
}
fn default_dedupe_window() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_max_attempts() -> u32 {
    8
}
fn default_log_retention() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}
fn default_stop_words() -> Vec<String> {
    vec!["STOP".to_owned(), "UNSUBSCRIBE".to_owned()]
}
fn default_stop_reply() -> String {
    "You will get no more messages from us. Reply START to subscribe again.".to_owned()
}
fn default_start_reply() -> String {
    "Welcome back! You will get our messages again.".to_owned()
}
fn default_start_words() -> Vec<String> {
    vec!["START".to_owned()]
}

impl Default for Config {
    fn default() -> Self {
        // An empty mapping takes every default.
        serde_yaml::from_str("{}").unwrap_or_else(|_| unreachable!("defaults deserialize"))
    }
}

impl Config {
    /// Reads `path`, substituting `${NAME}` from `env`, and makes relative paths relative to it.
    ///
    /// # Errors
    /// Every problem found, at `path:line:col`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Diagnostics> {
        let mut diagnostics = Diagnostics::default();
        let text = std::fs::read_to_string(path).map_err(|error| {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::error(
                path,
                Position::new(1, 1),
                format!("cannot read config: {error}"),
            ));
            d
        })?;
        let text = substitute_env(path, &text, env, &mut diagnostics);
        let file = SourceFile {
            path: path.to_path_buf(),
            map: SourceMap::parse(&text),
        };
        let config = parse_yaml(path, &text, &mut diagnostics).and_then(|value| {
            deserialize_at::<Config>(&file, &value, &YamlPath::root(), &mut diagnostics)
        });
        match config {
            Some(mut config) if !diagnostics.has_errors() => {
                let base = path.parent().unwrap_or(Path::new(""));
                let tls_files = config
                    .tls
                    .iter_mut()
                    .flat_map(|tls| [&mut tls.cert, &mut tls.key]);
                let dirs = [
                    &mut config.data_dir,
                    &mut config.flows_dir,
                    &mut config.scripts_dir,
                ];
                for path in dirs.into_iter().chain(tls_files) {
                    if path.is_relative() {
                        *path = base.join(&*path);
                    }
                }
                config.check(&file, &mut diagnostics);
                for setting in ["fallback_flow", "error_flow"] {
                    if let Some(position) = file.map.value(&YamlPath::root().key(setting)) {
                        config
                            .places
                            .insert(setting.to_owned(), (path.to_path_buf(), position));
                    }
                }
                if diagnostics.has_errors() {
                    Err(diagnostics)
                } else {
                    Ok(config)
                }
            }
            _ => Err(diagnostics),
        }
    }

    fn check(&self, file: &SourceFile, diagnostics: &mut Diagnostics) {
        if parse_size(&self.body_limit).is_none() {
            let path = YamlPath::root().key("body_limit");
            diagnostics.push(file.value_error(
                &path,
                format!(
                    "body_limit \"{}\" is not a size; write it like 4MiB, 512KB or 1000000",
                    self.body_limit
                ),
            ));
        }
        if let Some(url) = &self.handoff_webhook
            && reqwest::Url::parse(url)
                .ok()
                .is_none_or(|url| !matches!(url.scheme(), "http" | "https"))
        {
            diagnostics.push(file.value_error(
                &YamlPath::root().key("handoff_webhook"),
                format!("handoff_webhook \"{url}\" is not an http(s) URL; write it like https://desk.example.com/hooks/chatflow"),
            ));
        }
        if let Some(tls) = &self.tls
            && let Err(error) = crate::server::tls::acceptor(tls)
        {
            let path = YamlPath::root().key("tls").key(error.setting());
            diagnostics.push(file.value_error(&path, crate::diagnostic::with_causes(&error)));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, channel) in self.channels.iter().enumerate() {
            if !seen.insert(&channel.id) {
                let path = YamlPath::root().key("channels").index(i).key("id");
                diagnostics.push(file.value_error(
                    &path,
                    format!("channel id \"{}\" is used twice", channel.id),
                ));
            }
            if channel.id == "simulator" && self.simulator {
                let path = YamlPath::root().key("channels").index(i).key("id");
                diagnostics.push(file.value_error(&path, "channel id \"simulator\" is the built-in simulator; pick another id or set simulator: false"));
            }
            if let Err(error) = crate::provider::registry::build_channel(channel) {
                let item = YamlPath::root().key("channels").index(i);
                let path = error
                    .key
                    .as_deref()
                    .map_or_else(|| item.clone(), |key| item.key(key));
                let message = format!("channel \"{}\": {}", channel.id, error.message);
                diagnostics.push(file.error(&path, message));
            }
        }
    }

    /// `body_limit` in bytes (checked at load, so the fallback is never used after it).
    #[must_use]
    pub fn body_limit_bytes(&self) -> usize {
        parse_size(&self.body_limit).unwrap_or(crate::server::DEFAULT_BODY_LIMIT)
    }

    /// Channel ids the bot serves, the simulator included when enabled.
    #[must_use]
    pub fn channel_ids(&self) -> Vec<String> {
        let simulator = self.simulator.then(|| "simulator".to_owned());
        simulator
            .into_iter()
            .chain(self.channels.iter().map(|c| c.id.clone()))
            .collect()
    }

    /// Every credential this config holds — the admin token and each channel's — for the log
    /// redactor.
    #[must_use]
    pub fn secrets(&self) -> Vec<&str> {
        let admin = self.admin_token.iter().map(Secret::expose);
        // A help desk URL carrying credentials (a password or a token in its query) is a
        // secret as a whole.
        let desk = self.handoff_webhook.as_deref().filter(|url| {
            reqwest::Url::parse(url)
                .is_ok_and(|url| url.password().is_some() || url.query().is_some())
        });
        let channels = self
            .channels
            .iter()
            .flat_map(|channel| crate::provider::registry::secrets(&channel.settings));
        admin.chain(desk).chain(channels).collect()
    }

    /// What the flow loader needs from the config.
    #[must_use]
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            flows_dir: self.flows_dir.clone(),
            scripts_dir: self.scripts_dir.clone(),
            fallback_flow: self.fallback_flow.clone(),
            error_flow: self.error_flow.clone(),
            places: self.places.clone(),
            conversation_timeout: self.conversation_timeout,
            channels: self.channel_ids(),
            opt_out: self.opt_out.clone(),
            script: crate::script::ScriptSettings {
                limits: self.script_limits,
                http_allow: self.script_http_allow.clone(),
                scripts_dir: self.scripts_dir.clone(),
            },
        }
    }
}

/// Reads a size such as `4MiB`, `512KB`, `3MB` or a plain number of bytes.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1024,
        "mb" => 1_000_000,
        "mib" => 1024 * 1024,
        "gb" => 1_000_000_000,
        "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Replaces `${NAME}` with the variable's value; a missing variable is an error at its place.
fn substitute_env(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    diagnostics: &mut Diagnostics,
) -> String {
    let mut out = String::with_capacity(text.len());
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            let name = &rest[start + 2..start + 2 + len];
            out.push_str(&rest[..start]);
            match env(name) {
                Some(value) => out.push_str(&value),
                None => {
                    let col = line[..line.len() - rest.len() + start].chars().count() + 1;
                    diagnostics.push(Diagnostic::error(
                        path,
                        Position::new(line_no + 1, col),
                        format!("environment variable {name} is not set; export it or write the value here"),
                    ));
                }
            }
            rest = &rest[start + 3 + len..];
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
        let dir = std::env::temp_dir().join(format!(
            "chatflow-config-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chatflow.yaml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path, env).map_err(|d| d.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(parse_size("4MiB"), Some(4 * 1024 * 1024));
        assert_eq!(parse_size("3 MB"), Some(3_000_000));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("4 parsecs"), None);
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.flows_dir, PathBuf::from("flows"));
        assert!(config.simulator);
        assert_eq!(config.channel_ids(), vec!["simulator"]);
    }

    #[test]
    fn env_variables_are_substituted_and_missing_ones_located() {
        let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_owned());
        let config = load("admin_token: ${TOKEN}\n", &env).unwrap();
        assert_eq!(
            config.admin_token.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        let errors = load("admin_token: ${NOPE}\n", &env).unwrap_err();
        assert!(errors[0].contains("NOPE is not set"), "{errors:?}");
    }

    #[test]
    fn a_help_desk_url_is_checked_and_kept_out_of_logs_when_it_carries_credentials() {
        let errors = load("handoff_webhook: desk.example.com\n", &|_| None).unwrap_err();
        assert!(errors[0].contains("not an http(s) URL"), "{errors:?}");
        let with_token = "https://desk.example.com/hook?token=k3y-abcdef";
        let config = load(&format!("handoff_webhook: {with_token}\n"), &|_| None).unwrap();
        assert!(config.secrets().contains(&with_token));
        let plain = load("handoff_webhook: https://desk.example.com/hook\n", &|_| {
            None
        })
        .unwrap();
        assert!(plain.secrets().is_empty());
    }

    #[test]
    fn unknown_keys_are_errors_with_a_hint() {
        let errors = load("flow_dir: ./x\n", &|_| None).unwrap_err();
        assert!(
            errors[0].contains("did you mean \"flows_dir\""),
            "{errors:?}"
        );
    }

    #[test]
    fn a_misconfigured_channel_names_the_channel_and_key() {
        let text = "channels:\n  - id: main\n    provider: meta\n    phone_number_id: \"1\"\n    acces_token: x\n    app_secret: y\n    verify_token: z\n";
        let errors = load(text, &|_| None).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("channel \"main\": ") && errors[0].contains("acces_token"),
            "{errors:?}"
        );
        let errors = load("channels:\n  - id: x\n    provider: metta\n", &|_| None).unwrap_err();
        assert!(
            errors[0].contains("unknown provider \"metta\" (did you mean \"meta\"?)"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_credential_is_listed_for_redaction_and_none_is_debug_printed() {
        let text = r#"admin_token: admin-s3cret
channels:
  - id: main
    provider: meta
    phone_number_id: "106540352242922"
    access_token: meta-access
    app_secret: meta-app
    verify_token: meta-verify
  - id: ivo
    provider: ivosights
    api_key: ivo-key
    inbound_basic_auth: { username: ann, password: ivo-password }
  - id: dw
    provider: digiworld
    token: dw-token
    api_secret: dw-secret
  - id: plain
    provider: generic
    inbound: { from: /sender, text: /text }
    inbound_secret_header: { name: X-Webhook-Secret, value: generic-inbound }
    outbound:
      url: "https://api.example.com/send"
      headers: { Authorization: "Key generic-outbound" }
      body: { phone: "{{to}}", message: "{{text}}" }
"#;
        let config = load(text, &|_| None).unwrap();
        let mut secrets = config.secrets();
        secrets.sort_unstable();
        assert_eq!(
            secrets,
            [
                "Key generic-outbound",
                "admin-s3cret",
                "dw-secret",
                "dw-token",
                "generic-inbound",
                "ivo-key",
                "ivo-password",
                "meta-access",
                "meta-app",
                "meta-verify",
            ]
        );
        let shown = format!("{config:?}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("phone_number_id"), "{shown}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = load("flows_dir: bots\n", &|_| None).unwrap();
        assert!(config.flows_dir.ends_with("bots"), "{:?}", config.flows_dir);
        let config_dir = config.flows_dir.parent().unwrap();
        assert!(
            config_dir.join("chatflow.yaml").is_file(),
            "{:?}",
            config.flows_dir
        );
    }
}
