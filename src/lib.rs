//! chatflow: a chatbot automation engine for WhatsApp Business API providers.
//!
//! Bots are YAML flows with Rhai for logic. This crate holds the pure core — the message model,
//! the flow language (loader, validator, router, runtime) and conversation tests — that the
//! server, the providers and the CLI are built on.
#![forbid(unsafe_code)]

pub mod chat;
pub mod config;
pub mod conversation_test;
pub mod diagnostic;
pub mod duration;
pub mod engine;
pub mod faq;
pub mod flow;
pub mod handoff;
pub mod message;
pub mod metrics;
pub mod outbox;
pub mod per_contact;
pub mod provider;
pub mod reload;
pub mod scheduler;
pub mod script;
pub mod server;
pub mod shape;
pub mod simulator;
pub mod source;
pub mod store;
pub mod telemetry;
