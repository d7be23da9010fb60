//! [`Builder`]: a transition under construction. It owns a private copy of
//! the run's state and collects what the rules append (events, folded in
//! with `RunState::evolve` as they go) and ask for (effects), and
//! [`Builder::finish`] turns it into the [`Transition`] to commit.
//!
//! This file holds what every concern uses: appending events, enqueueing
//! and dequeueing task rows, events from outside the workflow-task cycle
//! (buffered while a task is in flight), and closing the run. The rules
//! themselves add `impl Builder` blocks in their own files.

use crate::engine::command::StartRun;
use crate::engine::effect::{Effect, Task};
use crate::engine::event::*;
use crate::engine::state::{ActivityOutcome, Buffered, BufferedEntry, RunState};
use crate::engine::{Ctx, Transition};
use crate::ids::ActivityId;
use crate::time::{Duration, Timestamp};

/// A transition under construction: a private copy of the state plus what
/// has been appended and asked for so far.
pub(super) struct Builder<'a> {
    pub(super) state: RunState,
    pub(super) events: Vec<Event>,
    pub(super) effects: Vec<Effect>,
    pub(super) ctx: &'a Ctx,
    /// A workflow command canceled an activity that had not started; the
    /// workflow must be told by a new workflow task.
    pub(super) canceled_unstarted_activity: bool,
    pub(super) next_run: Option<Box<StartRun>>,
    /// Activity ids whose first attempt a checkpoint starts inline: not
    /// pushed (docs/protocol.md §5.9).
    pub(super) inline: Vec<ActivityId>,
    /// A continuing checkpoint: events from outside the workflow-task
    /// cycle are appended without scheduling a task, since the checkpoint
    /// appends its speculative one.
    pub(super) hold_workflow_task: bool,
    /// Why the workflow task this transition answered was refused, if it
    /// was (a checkpoint reports it).
    pub(super) workflow_task_failed: Option<(WorkflowTaskFailedCause, String)>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(state: &RunState, ctx: &'a Ctx) -> Builder<'a> {
        Builder {
            state: state.clone(),
            events: Vec::new(),
            effects: Vec::new(),
            ctx,
            canceled_unstarted_activity: false,
            next_run: None,
            inline: Vec::new(),
            hold_workflow_task: false,
            workflow_task_failed: None,
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.ctx.now
    }

    pub(super) fn finish(mut self) -> Transition {
        let limits = &self.ctx.limits;
        if !self.state.status.is_closed()
            && (self.state.history_length() > limits.max_history_events
                || self.state.history_size_bytes > limits.max_history_bytes)
        {
            self.flush_buffered();
            self.close_run(EventAttributes::WorkflowExecutionTerminated(
                WorkflowExecutionTerminated {
                    reason: format!(
                        "history limit exceeded: {} events, {} bytes (limits {} events, {} bytes)",
                        self.state.history_length(),
                        self.state.history_size_bytes,
                        limits.max_history_events,
                        limits.max_history_bytes
                    ),
                    details: None,
                    identity: Some("baton".to_owned()),
                },
            ));
        }
        Transition {
            state: self.state,
            events: self.events,
            effects: self.effects,
            next_run: self.next_run,
            checkpoint: None,
        }
    }

    pub(super) fn push_event(&mut self, event: Event) -> i64 {
        self.state.evolve(&event);
        let id = event.event_id;
        self.events.push(event);
        id
    }

    pub(super) fn append_at(&mut self, attributes: EventAttributes, time: Timestamp) -> i64 {
        let event = Event {
            event_id: self.state.next_event_id,
            event_time: time,
            attributes,
        };
        self.push_event(event)
    }

    pub(super) fn append(&mut self, attributes: EventAttributes) -> i64 {
        self.append_at(attributes, self.now())
    }

    pub(super) fn enqueue(&mut self, task: Task, at: Timestamp) {
        // A claimed workflow task stays leased for as long as its push may
        // take; anything else only until its command is applied.
        let lease = match task {
            Task::WorkflowTask => self.state.workflow_task_timeout.0,
            _ => 0,
        };
        let lease = Duration(lease + self.ctx.limits.lease_grace.0);
        self.effects.push(Effect::Enqueue { task, at, lease });
    }

    pub(super) fn dequeue(&mut self, task: &Task) {
        self.effects.push(Effect::Dequeue { key: task.key() });
    }

    /// An event from outside the workflow-task cycle: buffered while a task
    /// is in flight, else appended, and a workflow task scheduled for it.
    pub(super) fn external(&mut self, entry: BufferedEntry) {
        if self.state.workflow_task.is_some() {
            let time = self.now();
            self.state.buffered.push(Buffered { time, entry });
        } else if self.backing_off() || self.hold_workflow_task {
            // The first workflow task, due at the back-off's end, sees it;
            // or the checkpoint's speculative task does.
            self.append_entry(entry, self.now());
        } else {
            self.append_entry(entry, self.now());
            self.schedule_workflow_task();
        }
    }

    pub(super) fn append_entry(&mut self, entry: BufferedEntry, time: Timestamp) {
        match entry {
            BufferedEntry::Event(attributes) => {
                self.append_at(attributes, time);
            }
            BufferedEntry::ActivityClosed {
                scheduled_event_id,
                attempt,
                last_failure,
                outcome,
            } => {
                let started = self.append_at(
                    EventAttributes::ActivityTaskStarted(ActivityTaskStarted {
                        scheduled_event_id,
                        attempt,
                        last_failure,
                    }),
                    time,
                );
                let closing = match outcome {
                    ActivityOutcome::Completed(result) => {
                        EventAttributes::ActivityTaskCompleted(ActivityTaskCompleted {
                            scheduled_event_id,
                            started_event_id: started,
                            result,
                        })
                    }
                    ActivityOutcome::Failed(failure, retry_state) => {
                        EventAttributes::ActivityTaskFailed(ActivityTaskFailed {
                            scheduled_event_id,
                            started_event_id: started,
                            failure,
                            retry_state,
                        })
                    }
                    ActivityOutcome::TimedOut(failure, retry_state) => {
                        EventAttributes::ActivityTaskTimedOut(ActivityTaskTimedOut {
                            scheduled_event_id,
                            started_event_id: started,
                            failure,
                            retry_state,
                        })
                    }
                    ActivityOutcome::Canceled(details) => {
                        EventAttributes::ActivityTaskCanceled(ActivityTaskCanceled {
                            scheduled_event_id,
                            started_event_id: started,
                            details,
                        })
                    }
                };
                self.append_at(closing, time);
            }
            BufferedEntry::ChildClosed {
                initiated_event_id,
                first_run_id,
                run_id,
                outcome,
            } => self.append_child_closed(initiated_event_id, first_run_id, run_id, outcome, time),
        }
    }

    /// Appends the buffered events; true if there were any.
    pub(super) fn flush_buffered(&mut self) -> bool {
        let buffered = std::mem::take(&mut self.state.buffered);
        let any = !buffered.is_empty();
        for b in buffered {
            self.append_entry(b.entry, b.time);
        }
        any
    }

    /// The first workflow task waits for a back-off to end.
    pub(super) fn backing_off(&self) -> bool {
        self.state.workflow_task_seq == 0 && self.state.chain.backoff_until.is_some()
    }

    pub(super) fn close_run(&mut self, attributes: EventAttributes) {
        self.append(attributes);
        // Nothing more runs for a closed run: its rows go, and so do the
        // pushes this transition asked for (an activity scheduled by the
        // same response, a workflow task before the history limit hit).
        self.effects.retain(|e| !matches!(e, Effect::Dispatch(_)));
        self.effects.push(Effect::DequeueAll);
        self.reach_parent_and_children();
    }
}
