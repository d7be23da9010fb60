//! Baton: durable execution with Temporal's programming model, pushed to
//! serverless handlers over signed HTTP.
//!
//! Reading order: [`engine`] (the rules, pure), [`store`] (persistence),
//! [`apply`] (the one command path), then the edges: [`dispatch`],
//! [`timers`], [`transfer`], [`api`], [`cli`]; [`visibility`] is the
//! pure list-filter language. See ARCHITECTURE.md.

pub mod api;
pub mod apply;
pub mod claim;
pub mod cli;
pub mod dispatch;
pub mod engine;
pub mod ids;
pub mod readiness;
pub mod retention;
pub mod server;
pub mod signing;
pub mod store;
pub mod time;
pub mod timers;
pub mod transfer;
pub mod visibility;
