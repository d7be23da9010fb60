//! `decide_all`: many commands for one run folded into one transition, so
//! the node commits them together (group commit, DESIGN.md invariant 7).
//!
//! Folding is sequential: command `k` is decided against the state after
//! commands `0..k` that were accepted, exactly as if each had been
//! committed alone in that order. A rejected command changes nothing and
//! leaves the others untouched; each command gets its own result.

use super::command::Command;
use super::effect::{Dispatch, Effect};
use super::state::RunState;
use super::{decide, CheckpointReport, Ctx, Rejection, Transition};

/// The outcome of [`decide_all`].
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Everything the accepted commands imply, in order. Dispatch effects
    /// appear once each (the dispatcher reads the final state anyway).
    pub transition: Transition,
    /// One result per command, in the order given.
    pub results: Vec<Result<(), Rejection>>,
    /// Per command: what a checkpoint did (`None` for other commands).
    pub reports: Vec<Option<Box<CheckpointReport>>>,
}

impl Batch {
    /// True if at least one command was accepted: there is something to
    /// commit.
    pub fn changed(&self) -> bool {
        self.results.iter().any(Result::is_ok)
    }
}

/// Folds `cmds` over `state` in order. Never mutates `state`.
pub fn decide_all(state: &RunState, cmds: Vec<Command>, ctx: &Ctx) -> Batch {
    let mut current: Option<Transition> = None;
    let mut results = Vec::with_capacity(cmds.len());
    let mut reports = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        let base = current.as_ref().map_or(state, |t| &t.state);
        match decide(base, cmd, ctx) {
            Ok(mut next) => {
                reports.push(next.checkpoint.take());
                current = Some(match current.take() {
                    None => next,
                    Some(acc) => merge(acc, next),
                });
                results.push(Ok(()));
            }
            Err(rejection) => {
                reports.push(None);
                results.push(Err(rejection));
            }
        }
    }
    let transition = current.unwrap_or_else(|| Transition {
        state: state.clone(),
        events: Vec::new(),
        effects: Vec::new(),
        next_run: None,
        checkpoint: None,
    });
    Batch {
        transition,
        results,
        reports,
    }
}

/// `acc` followed by `next`, which was decided against `acc.state`.
fn merge(mut acc: Transition, next: Transition) -> Transition {
    acc.events.extend(next.events);
    for effect in next.effects {
        let repeated = matches!(&effect, Effect::Dispatch(d) if has_dispatch(&acc.effects, d));
        if !repeated {
            acc.effects.push(effect);
        }
    }
    acc.state = next.state;
    // Only the command that closes the run can name its next run, and a
    // closed run refuses every later command.
    acc.next_run = acc.next_run.or(next.next_run);
    acc
}

fn has_dispatch(effects: &[Effect], dispatch: &Dispatch) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::Dispatch(d) if d == dispatch))
}
