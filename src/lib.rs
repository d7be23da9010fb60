//! Baton: durable execution with Temporal's programming model, pushed to
//! serverless handlers over signed HTTP.
//!
//! Reading order: [`engine`] (the rules, pure), [`store`] (persistence),
//! [`apply`] (the one command path), then the edges: [`dispatch`],
//! [`timers`], [`transfer`], [`scheduler`] (which fires the pure
//! [`schedule`] rules), [`api`], [`cli`]; [`visibility`] is the pure
//! list-filter language; [`webhook`] verifies and maps inbound provider
//! deliveries, also pure. See ARCHITECTURE.md.

pub mod api;
pub mod apply;
pub mod batch;
pub mod claim;
pub mod cli;
pub mod dispatch;
pub mod engine;
pub mod flow;
pub mod ids;
pub mod payload;
pub mod readiness;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod schema;
pub mod server;
pub mod signing;
pub mod store;
mod telemetry;
pub mod time;
pub mod timers;
pub mod transfer;
mod ui;
pub mod visibility;
pub mod webhook;
