//! Channels from the config, each with its provider built from its settings: one registry,
//! keyed by channel id (and, for Meta, by `phone_number_id`, since one webhook URL may carry
//! several numbers).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A channel's settings are wrong: which key, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    /// The key at fault, when one is.
    pub key: Option<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl SettingsError {
    /// An error about `key`.
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

/// Reads a provider's own settings (every key but the common ones) into `T`, which should deny
/// unknown fields so typos are caught; a missing or malformed key is named.
///
/// # Errors
/// The first missing, unknown or malformed key.
pub fn read_settings<T: DeserializeOwned>(
    settings: &Map<String, Value>,
) -> Result<T, SettingsError> {
    serde_path_to_error::deserialize(Value::Object(settings.clone())).map_err(|error| {
        let key = error
            .path()
            .iter()
            .next()
            .map(ToString::to_string)
            .filter(|k| !k.is_empty() && k != "?");
        let message = error.inner().to_string();
        let key = key.or_else(|| backticked(&message));
        SettingsError { key, message }
    })
}

/// A provider's API root from `base_url`, or its `default`, without a trailing slash.
///
/// # Errors
/// The URL is not http(s), so every request would fail later.
pub fn api_root(base_url: Option<&str>, default: &str) -> Result<String, SettingsError> {
    let url = base_url.unwrap_or(default).trim().trim_end_matches('/');
    if is_web_url(url) {
        return Ok(url.to_owned());
    }
    Err(SettingsError::at(
        "base_url",
        format!("`base_url` must be an http(s) url such as {default}, not {url:?}"),
    ))
}

/// True for `http://` and `https://` URLs, the only ones providers are reached at.
#[must_use]
pub fn is_web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// Every credential written in a channel's settings — the keys of [`SECRET_KEYS`] at any depth
/// (so `inbound_basic_auth.password` too), the `inbound_secret_header` value and every outbound
/// header of the generic provider — as written, so logs can redact them wherever they turn up
/// (a URL holding a token, a provider error echoing a key). The providers keep them as
/// [`super::Secret`]; this reads the config itself, before any provider is built.
#[must_use]
pub fn secrets(settings: &Map<String, Value>) -> Vec<&str> {
    let mut found = Vec::new();
    collect_secrets(settings, "", &mut found);
    found
}

fn collect_secrets<'a>(settings: &'a Map<String, Value>, parent: &str, found: &mut Vec<&'a str>) {
    for (key, value) in settings {
        match value {
            Value::String(text) if is_secret(parent, key) => found.push(text),
            Value::Object(inner) => collect_secrets(inner, key, found),
            _ => {}
        }
    }
}

fn is_secret(parent: &str, key: &str) -> bool {
    SECRET_KEYS.contains(&key)
        || parent == "headers"
        || (parent == "inbound_secret_header" && key == "value")
}

/// The first `` `name` `` in a serde message ("missing field `access_token`").
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// Keys every channel takes whatever its provider (DESIGN §4, §7).
const COMMON_KEYS: [&str; 3] = ["base_url", "rate_limit", "outside_window"];
/// The inbound mapping keys, which every provider accepts (the generic one reads them itself).
const MAPPING_KEYS: [&str; 2] = ["inbound", "inbound_secret_header"];
/// Channel keys whose values are credentials, whichever provider reads them (DESIGN §7).
const SECRET_KEYS: [&str; 7] = [
    "access_token",
    "app_secret",
    "verify_token",
    "api_key",
    "api_secret",
    "token",
    "password",
];
/// Every provider name, for "did you mean".
const PROVIDERS: [&str; 8] = [
    "meta",
    "generic",
    "simulator",
    "ivosights",
    "chatapi",
    "decisiontelecom",
    "digiworld",
    "socnet",
];

/// A configured channel, ready to verify, parse and send.
#[derive(Debug)]
pub struct Channel {
    /// The id in `/webhooks/{id}`.
    pub id: String,
    /// Its provider.
    pub provider: std::sync::Arc<dyn super::Provider>,
    /// The generic inbound mapping, when set on a non-generic channel.
    pub mapping: Option<super::mapping::InboundMapping>,
    /// The shared-secret header, when set on a non-generic channel.
    pub secret_header: Option<super::mapping::SecretHeader>,
    /// Outbound messages per second (0 = unlimited).
    pub rate_limit: u32,
    /// Template sent instead when the 24-hour window is closed (checked at load).
    pub outside_window: Option<Box<crate::message::Outbound>>,
    /// Meta's `phone_number_id`, which routes changes of a shared webhook to this channel.
    pub route_key: Option<String>,
}

impl Channel {
    /// Checks the channel's secret header (if any) and the provider's own signature.
    ///
    /// # Errors
    /// Missing or wrong credentials.
    pub fn verify(&self, request: &super::WebhookRequest<'_>) -> Result<(), super::VerifyError> {
        if let Some(header) = &self.secret_header {
            header.verify(request)?;
        }
        self.provider.verify(request)
    }

    /// Parses a verified body: through the inbound mapping when it reads a sender, else the
    /// provider's own format.
    ///
    /// # Errors
    /// The body is not what the provider accepts at all.
    pub fn parse(&self, body: &[u8]) -> Result<super::Parsed, super::ParseError> {
        if let Some(mapping) = &self.mapping
            && let Ok(value) = serde_json::from_slice::<Value>(body)
        {
            let parsed = mapping.parse_webhook(&value);
            if !parsed.events.is_empty() {
                return Ok(parsed);
            }
        }
        self.provider.parse(body)
    }
}

/// Every channel, by id and by routing key.
#[derive(Debug, Default)]
pub struct Registry {
    channels: std::collections::HashMap<String, std::sync::Arc<Channel>>,
    by_route: std::collections::HashMap<String, String>,
}

impl Registry {
    /// Builds every channel of `config` (the simulator included when enabled).
    ///
    /// # Errors
    /// Each channel's problems, as (channel index, error); `Config::load` reports them at
    /// their place in the file.
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<Self, Vec<(usize, SettingsError)>> {
        let mut registry = Self::default();
        if config.simulator {
            registry.insert(simulator_channel("simulator"));
        }
        let mut errors = Vec::new();
        for (index, channel) in config.channels.iter().enumerate() {
            match build_channel(channel) {
                Ok(built) => registry.insert(built),
                Err(error) => errors.push((index, error)),
            }
        }
        if errors.is_empty() {
            Ok(registry)
        } else {
            Err(errors)
        }
    }

    fn insert(&mut self, channel: Channel) {
        if let Some(route) = &channel.route_key {
            self.by_route.insert(route.clone(), channel.id.clone());
        }
        self.channels
            .insert(channel.id.clone(), std::sync::Arc::new(channel));
    }

    /// The channel `id`.
    #[must_use]
    pub fn channel(&self, id: &str) -> Option<&std::sync::Arc<Channel>> {
        self.channels.get(id)
    }

    /// The channel a provider routing key (Meta `phone_number_id`) belongs to.
    #[must_use]
    pub fn by_route(&self, route: &str) -> Option<&std::sync::Arc<Channel>> {
        self.by_route
            .get(route)
            .and_then(|id| self.channels.get(id))
    }

    /// Every channel, sorted by id.
    #[must_use]
    pub fn all(&self) -> Vec<&std::sync::Arc<Channel>> {
        let mut channels: Vec<_> = self.channels.values().collect();
        channels.sort_by(|a, b| a.id.cmp(&b.id));
        channels
    }

    /// Ids of the channels whose provider is the simulator.
    #[must_use]
    pub fn simulator_channels(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .channels
            .values()
            .filter(|channel| channel.provider.name() == "simulator")
            .map(|channel| channel.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

fn simulator_channel(id: &str) -> Channel {
    Channel {
        id: id.to_owned(),
        provider: std::sync::Arc::new(super::simulator::Simulator),
        mapping: None,
        secret_header: None,
        rate_limit: 0,
        outside_window: None,
        route_key: None,
    }
}

/// Settings every channel shares.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonSettings {
    base_url: Option<String>,
    rate_limit: Option<u32>,
    outside_window: Option<crate::message::spec::TemplateSpec>,
    inbound: Option<super::mapping::InboundMapping>,
    inbound_secret_header: Option<super::mapping::SecretHeader>,
}

/// Builds one channel, checking its provider's keys.
///
/// # Errors
/// The first missing, unknown or malformed key, or an unknown provider.
pub fn build_channel(channel: &crate::config::Channel) -> Result<Channel, SettingsError> {
    let (common, own) = split_settings(&channel.provider, &channel.settings);
    let common: CommonSettings = read_settings(&common)?;
    let base_url = common.base_url.as_deref();
    let (provider, route_key): (std::sync::Arc<dyn super::Provider>, Option<String>) =
        match channel.provider.as_str() {
            "meta" => {
                let meta = super::meta::Meta::from_settings(base_url, &own)?;
                let route = meta.phone_number_id().to_owned();
                (std::sync::Arc::new(meta), Some(route))
            }
            "generic" => (
                std::sync::Arc::new(super::generic::Generic::from_settings(base_url, &own)?),
                None,
            ),
            "simulator" => {
                if let Some(key) = own.keys().next() {
                    return Err(SettingsError::at(
                        key,
                        format!("the simulator takes no key \"{key}\""),
                    ));
                }
                (std::sync::Arc::new(super::simulator::Simulator), None)
            }
            "ivosights" => (
                std::sync::Arc::new(super::ivosights::Ivosights::from_settings(base_url, &own)?),
                None,
            ),
            "chatapi" => (
                std::sync::Arc::new(super::chatapi::ChatApi::from_settings(base_url, &own)?),
                None,
            ),
            "decisiontelecom" => (
                std::sync::Arc::new(super::decisiontelecom::DecisionTelecom::from_settings(
                    base_url, &own,
                )?),
                None,
            ),
            "digiworld" => (
                std::sync::Arc::new(super::digiworld::Digiworld::from_settings(base_url, &own)?),
                None,
            ),
            "socnet" => (
                std::sync::Arc::new(super::socnet::Socnet::from_settings(base_url, &own)?),
                None,
            ),
            name => {
                let hint = crate::diagnostic::did_you_mean(name, PROVIDERS);
                return Err(SettingsError::at(
                    "provider",
                    format!(
                        "unknown provider \"{name}\"{hint}; one of {}",
                        PROVIDERS.join(", ")
                    ),
                ));
            }
        };
    let outside_window = common
        .outside_window
        .map(|spec| spec.to_outbound())
        .transpose()
        .map_err(|error| {
            SettingsError::at(
                "outside_window",
                format!("{} {}", error.path, error.message),
            )
        })?
        .map(Box::new);
    Ok(Channel {
        id: channel.id.clone(),
        provider,
        mapping: common.inbound,
        secret_header: common.inbound_secret_header,
        rate_limit: common.rate_limit.unwrap_or(80),
        outside_window,
        route_key,
    })
}

/// Splits a channel's keys into the shared ones and the provider's own; the generic provider
/// reads the inbound mapping itself.
fn split_settings(
    provider: &str,
    settings: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let shared = |key: &str| {
        COMMON_KEYS.contains(&key) || (provider != "generic" && MAPPING_KEYS.contains(&key))
    };
    let mut common = Map::new();
    let mut own = Map::new();
    for (key, value) in settings {
        let side = if shared(key) { &mut common } else { &mut own };
        side.insert(key.clone(), value.clone());
    }
    (common, own)
}
