//! The long-running commands of the binary: `serve` and `chat`.

pub mod chat;
pub mod serve;
