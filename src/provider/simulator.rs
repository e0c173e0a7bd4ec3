//! The built-in simulator as a provider: it renders everything, its inbound is the simulator
//! API, and what it "sends" stays in the contact's transcript.

use super::{
    BuildError, Capabilities, HttpRequest, HttpResponse, ParseError, Parsed, Provider, SendError,
    Sent, VerifyError, WebhookRequest,
};
use crate::message::Outbound;

/// The simulator provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simulator;

impl Provider for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn delivers(&self) -> bool {
        false
    }

    fn verify(&self, _request: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        Ok(())
    }

    fn parse(&self, body: &[u8]) -> Result<Parsed, ParseError> {
        let value = serde_json::from_slice(body)
            .map_err(|error| ParseError(format!("invalid JSON: {error}")))?;
        Ok(Parsed {
            events: Vec::new(),
            unrecognized: vec![value],
        })
    }

    fn send_request(&self, _to: &str, _message: &Outbound) -> Result<HttpRequest, BuildError> {
        Err(BuildError(
            "the simulator keeps replies in the transcript; nothing is sent".to_owned(),
        ))
    }

    fn read_response(&self, _response: &HttpResponse) -> Result<Sent, SendError> {
        Ok(Sent { provider_id: None })
    }
}
