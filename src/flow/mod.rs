//! The flow language (DESIGN §6): file model, loader and validator, compiled bot, router,
//! templates and the pure runtime.

pub mod answer;
pub mod bot;
pub mod compile;
pub mod loader;
pub mod model;
pub mod normalize;
pub mod router;
pub mod runtime;
pub mod schedule;
pub mod state;
pub mod template;

pub use bot::Bot;
pub use compile::{LoadOptions, Loaded, load};
pub use runtime::{AbandonCause, Effects, Input, Note, TimerRequest, handle};
pub use state::{ContactState, Conversation};
