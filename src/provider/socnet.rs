//! PLACEHOLDER (interface only, so the tree compiles): replaced by the socnet provider.

use serde_json::{Map, Value};

use super::registry::SettingsError;
use super::simulator::Simulator;

/// Placeholder.
pub struct Socnet;

impl Socnet {
    /// Placeholder.
    ///
    /// # Errors
    /// Always.
    pub fn from_settings(
        _base_url: Option<&str>,
        _settings: &Map<String, Value>,
    ) -> Result<Simulator, SettingsError> {
        Err(SettingsError::at(
            "provider",
            "this provider is not available in this version yet; use meta, generic or simulator",
        ))
    }
}
