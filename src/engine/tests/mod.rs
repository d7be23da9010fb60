//! Engine tests, at the engine's own boundary (STYLE.md section 6a).
//!
//! Scenario tests are scripts in the small text language of [`harness`]:
//! each test names a behaviour, sets the run up with a `given` script and
//! pins, as stable text, every event, effect and state change of the `when`
//! script (`UPDATE_EXPECT=1 cargo test --lib engine` regenerates the
//! expectations). The harness checks the fold laws after every accepted
//! command. [`props`] checks the same laws, and a few more, over random
//! command sequences.

mod harness;

mod activities;
mod cancellation;
mod chains;
mod checkpoint;
mod children;
mod props;
mod replay_vectors;
mod run;
mod search_attributes;
mod signals;
mod timeouts;
mod timers;
mod updates;
mod versioning;
mod workflow_tasks;
