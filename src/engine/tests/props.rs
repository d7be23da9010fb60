//! Property tests: random command sequences, generated from a small
//! alphabet and resolved against the current state, must keep the fold
//! laws and the engine's invariants after every step:
//!
//! - (a) replaying the whole history gives the snapshot's history view
//!   (checked by the harness on every accepted command);
//! - (b) event ids are dense and ascending, the history is append-only;
//! - (c) a closed run rejects every command, and a rejection changes
//!   nothing;
//! - (d) at most one workflow task is in flight, and events are buffered
//!   only while one is;
//! - (e) each activity closes at most once in the history;
//! - (f) what is open has its durable row: the task table that the effects
//!   build always holds the row that will move each open thing forward (so
//!   no run can hang), and a closed run holds none;
//! - (g) a completed workflow task writes exactly the transient events that
//!   its push showed;
//! - (h) a signal request id is recorded at most once, and a cancellation
//!   request at most once.

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use super::harness::Scenario;
use crate::engine::{
    self, ActivityPhase, ActivityToken, CancelTimer, CancelWorkflowExecution, ChildPhase, Command,
    CompleteWorkflowExecution, CompleteWorkflowUpdate, Effect, EventAttributes,
    FailWorkflowExecution, Failure, Limits, MoveToVersion, RecordMarker, Rejection,
    RequestCancelActivityTask, RetryPolicySpec, RunState, ScheduleActivityTask, Signal, StartTimer,
    Task, TimeoutType, Transition, Update, WorkflowCommand, WorkflowTaskFailedCause,
    WorkflowTaskToken,
};
use crate::ids::{ActivityId, TimerId};
use crate::time::{Duration, Timestamp};

/// One step, in terms the current state resolves (`pick` indexes whatever
/// candidates exist, modulo their number).
#[derive(Clone, Debug)]
enum Op {
    Advance(i64),
    CompleteWft {
        stale: bool,
        commands: Vec<Cmd>,
    },
    FailWft {
        stale: bool,
    },
    WftUndelivered {
        stale: bool,
        timed_out: bool,
    },
    Activity {
        pick: usize,
        stale: bool,
        action: Action,
    },
    /// Fire (or claim, for an activity row) a row of the task table, due
    /// or not: an early row must be re-armed.
    Row {
        pick: usize,
    },
    Terminate,
    /// A client signal; request ids from a small set, so that some repeat.
    Signal {
        request_id: Option<u8>,
    },
    RequestCancel,
    /// A client's update that passed validation; ids from a small set, so
    /// that some repeat.
    Update(u8),
    /// The dispatcher pins an unpinned run, or an operator moves the run
    /// from its pin (or a wrong one) to version `to`.
    Pin(u8),
    Move {
        wrong_from: bool,
        to: u8,
    },
}

#[derive(Clone, Debug)]
enum Action {
    Undelivered,
    Complete,
    Fail {
        non_retryable: bool,
        error_type: bool,
    },
    Canceled,
    Heartbeat,
}

#[derive(Clone, Debug)]
enum Cmd {
    Schedule {
        id: u8,
        stc: Option<i64>,
        s2c: Option<i64>,
        s2s: Option<i64>,
        hb: Option<i64>,
        attempts: u32,
    },
    CancelActivity(u8),
    StartTimer(u8, i64),
    CancelTimer(u8),
    Marker,
    Complete,
    Fail,
    CancelWorkflow,
    /// Completes update `u{id}`: valid only once it was delivered.
    CompleteUpdate(u8),
}

/// Mostly valid timeouts, sometimes none, rarely zero (invalid).
fn secs() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(0)),
        20 => (1..4i64).prop_map(|s| Some(s * 1_000)),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        12 => (0..3u8, secs(), secs(), secs(), secs(), 0..3u32).prop_map(
            |(id, stc, s2c, s2s, hb, attempts)| Cmd::Schedule { id, stc, s2c, s2s, hb, attempts }
        ),
        2 => (0..3u8).prop_map(Cmd::CancelActivity),
        5 => (0..2u8, 0..4i64).prop_map(|(id, s)| Cmd::StartTimer(id, s * 1_000)),
        2 => (0..2u8).prop_map(Cmd::CancelTimer),
        2 => Just(Cmd::Marker),
        3 => (0..3u8).prop_map(Cmd::CompleteUpdate),
        1 => prop_oneof![Just(Cmd::Complete), Just(Cmd::Fail), Just(Cmd::CancelWorkflow)],
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => Just(Action::Undelivered),
        3 => Just(Action::Complete),
        3 => (any::<bool>(), any::<bool>())
            .prop_map(|(non_retryable, error_type)| Action::Fail { non_retryable, error_type }),
        1 => Just(Action::Canceled),
        2 => Just(Action::Heartbeat),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0..6_000i64).prop_map(Op::Advance),
        20 => (prop::bool::weighted(0.1), vec(cmd(), 1..4))
            .prop_map(|(stale, commands)| Op::CompleteWft { stale, commands }),
        2 => any::<bool>().prop_map(|stale| Op::FailWft { stale }),
        2 => (any::<bool>(), any::<bool>())
            .prop_map(|(stale, timed_out)| Op::WftUndelivered { stale, timed_out }),
        25 => (any::<usize>(), prop::bool::weighted(0.15), action())
            .prop_map(|(pick, stale, action)| Op::Activity { pick, stale, action }),
        20 => any::<usize>().prop_map(|pick| Op::Row { pick }),
        1 => prop::bool::weighted(0.3)
            .prop_map(|t| if t { Op::Terminate } else { Op::Advance(0) }),
        4 => prop::option::of(0..3u8).prop_map(|request_id| Op::Signal { request_id }),
        1 => Just(Op::RequestCancel),
        3 => (0..3u8).prop_map(Op::Update),
        1 => (0..3u8).prop_map(Op::Pin),
        1 => (prop::bool::weighted(0.2), 0..3u8)
            .prop_map(|(wrong_from, to)| Op::Move { wrong_from, to }),
    ]
}

fn ms(d: Option<i64>) -> Option<Duration> {
    d.map(Duration)
}

fn workflow_command(c: &Cmd) -> WorkflowCommand {
    match c {
        Cmd::Schedule {
            id,
            stc,
            s2c,
            s2s,
            hb,
            attempts,
        } => WorkflowCommand::ScheduleActivityTask(ScheduleActivityTask {
            activity_id: ActivityId(format!("a{id}")),
            activity_type: "Work".into(),
            task_queue: None,
            input: Value::Null,
            schedule_to_close_timeout: ms(*s2c),
            schedule_to_start_timeout: ms(*s2s),
            start_to_close_timeout: ms(*stc),
            heartbeat_timeout: ms(*hb),
            retry_policy: Some(RetryPolicySpec {
                maximum_attempts: Some(*attempts),
                non_retryable_error_types: vec!["Fatal".into()],
                ..RetryPolicySpec::default()
            }),
        }),
        Cmd::CancelActivity(id) => {
            WorkflowCommand::RequestCancelActivityTask(RequestCancelActivityTask {
                activity_id: ActivityId(format!("a{id}")),
            })
        }
        Cmd::StartTimer(id, after) => WorkflowCommand::StartTimer(StartTimer {
            timer_id: TimerId(format!("t{id}")),
            start_to_fire_timeout: Duration(*after),
        }),
        Cmd::CancelTimer(id) => WorkflowCommand::CancelTimer(CancelTimer {
            timer_id: TimerId(format!("t{id}")),
        }),
        Cmd::Marker => WorkflowCommand::RecordMarker(RecordMarker {
            marker_name: "m".into(),
            details: Value::Null,
            failure: None,
        }),
        Cmd::Complete => WorkflowCommand::CompleteWorkflowExecution(CompleteWorkflowExecution {
            result: Value::Null,
        }),
        Cmd::Fail => WorkflowCommand::FailWorkflowExecution(FailWorkflowExecution {
            failure: Failure::new("gave up", ""),
        }),
        Cmd::CancelWorkflow => {
            WorkflowCommand::CancelWorkflowExecution(CancelWorkflowExecution { details: None })
        }
        Cmd::CompleteUpdate(id) => {
            WorkflowCommand::CompleteWorkflowUpdate(CompleteWorkflowUpdate {
                update_id: format!("u{id}"),
                result: Value::from(*id),
                failure: None,
            })
        }
    }
}

/// A run plus the task table its effects build, applied the way the store
/// applies them.
struct World {
    scenario: Scenario,
    rows: BTreeMap<String, Task>,
}

impl World {
    fn new() -> World {
        let mut scenario = Scenario::new();
        scenario.limits = Limits {
            max_history_events: 80,
            suggest_continue_as_new_events: 30,
            ..Limits::default()
        };
        let mut world = World {
            scenario,
            rows: BTreeMap::new(),
        };
        let transition = world
            .scenario
            .apply_start("start run_timeout=90s")
            .expect("a valid start");
        world.apply_effects(&transition);
        world.check(&transition);
        world
    }

    fn state(&self) -> &RunState {
        self.scenario.state()
    }

    fn apply_effects(&mut self, transition: &Transition) {
        for effect in &transition.effects {
            match effect {
                Effect::Enqueue { task, .. } => {
                    self.rows.insert(task.key(), task.clone());
                }
                Effect::Dequeue { key } => {
                    self.rows.remove(key);
                }
                Effect::DequeueAll => self.rows.clear(),
                Effect::Dispatch(_) => {}
            }
        }
    }

    fn wft_token(&self, stale: bool) -> Option<WorkflowTaskToken> {
        let view = engine::workflow_task_view(self.state(), &self.scenario.ctx());
        let mut token = view.map(|v| v.token).unwrap_or(WorkflowTaskToken {
            seq: self.state().workflow_task_seq,
            attempt: 1,
            started_at: self.scenario.now,
        });
        if stale {
            if token.attempt > 1 {
                token.attempt -= 1;
            } else {
                token.seq = token.seq.saturating_sub(1);
            }
        }
        Some(token)
    }

    /// Every activity ever scheduled (open or not), by scheduled event id.
    fn scheduled(&self) -> Vec<i64> {
        self.scenario
            .history
            .iter()
            .filter(|e| matches!(e.attributes, EventAttributes::ActivityTaskScheduled(_)))
            .map(|e| e.event_id)
            .collect()
    }

    fn command(&mut self, op: &Op) -> Option<Command> {
        Some(match op {
            Op::Advance(_) => return None,
            Op::CompleteWft { stale, commands } => Command::CompleteWorkflowTask {
                token: self.wft_token(*stale)?,
                commands: commands.iter().map(workflow_command).collect(),
                identity: None,
                force_create_new_workflow_task: false,
                search_attributes: Default::default(),
            },
            Op::FailWft { stale } => Command::FailWorkflowTask {
                token: self.wft_token(*stale)?,
                cause: WorkflowTaskFailedCause::NonDeterministicError,
                failure: Failure::new("diverged", ""),
            },
            Op::WftUndelivered { stale, timed_out } => Command::WorkflowTaskUndelivered {
                token: self.wft_token(*stale)?,
                timed_out: *timed_out,
                error: "reset".into(),
            },
            Op::Activity {
                pick,
                stale,
                action,
            } => {
                let scheduled = self.scheduled();
                let sched = *scheduled.get(pick % scheduled.len().max(1))?;
                let attempt = self.state().activities.get(&sched).map_or(1, |a| a.attempt);
                let token = ActivityToken {
                    scheduled_event_id: sched,
                    attempt: if *stale { attempt + 1 } else { attempt },
                };
                match action {
                    Action::Undelivered => Command::ActivityUndelivered {
                        token,
                        error: "503".into(),
                    },
                    Action::Complete => Command::CompleteActivity {
                        token,
                        result: Value::Null,
                    },
                    Action::Fail {
                        non_retryable,
                        error_type,
                    } => {
                        let mut failure =
                            Failure::new("boom", if *error_type { "Fatal" } else { "IOError" });
                        failure.non_retryable = *non_retryable;
                        Command::FailActivity { token, failure }
                    }
                    Action::Canceled => Command::ReportActivityCanceled {
                        token,
                        details: None,
                    },
                    Action::Heartbeat => Command::RecordActivityHeartbeat {
                        token,
                        details: Some(Value::from(attempt)),
                    },
                }
            }
            Op::Row { pick } => {
                let rows: Vec<&Task> = self
                    .rows
                    .values()
                    .filter(|t| **t != Task::WorkflowTask)
                    .collect();
                let task = (*rows.get(pick % rows.len().max(1))?).clone();
                match task {
                    Task::ActivityTask { scheduled_event_id } => {
                        Command::StartActivityAttempt { scheduled_event_id }
                    }
                    task => Command::FireTimer(task),
                }
            }
            Op::Terminate => Command::TerminateWorkflow {
                reason: "test".into(),
                details: None,
                identity: None,
            },
            Op::Signal { request_id } => Command::SignalWorkflow(Signal {
                signal_name: "go".into(),
                input: Value::Null,
                request_id: request_id.map(|r| format!("r{r}")),
                identity: None,
            }),
            Op::RequestCancel => Command::RequestCancelWorkflow {
                reason: "test".into(),
                request_id: None,
                identity: None,
            },
            Op::Update(id) => Command::AdmitUpdate(Update {
                update_id: format!("u{id}"),
                update_name: "add".into(),
                input: Value::Null,
                identity: None,
            }),
            Op::Pin(v) => Command::PinVersion {
                version: format!("v{v}"),
            },
            Op::Move { wrong_from, to } => {
                let pinned = self.scenario.state().pinned_version.clone();
                let from = match (wrong_from, pinned) {
                    (false, Some(v)) => v,
                    _ => "elsewhere".to_owned(),
                };
                Command::UpdateWorkflowExecutionOptions(MoveToVersion {
                    from_version: from,
                    to_version: format!("v{to}"),
                    reason: "test".into(),
                    identity: None,
                })
            }
        })
    }

    fn step(&mut self, op: &Op) {
        if let Op::Advance(d) = op {
            self.scenario.now = self.scenario.now.saturating_add(Duration(*d));
            return;
        }
        let Some(cmd) = self.command(op) else {
            return;
        };
        let view = engine::workflow_task_view(self.state(), &self.scenario.ctx());
        let before = self.state().clone();
        let history_len = self.scenario.history.len();
        match self.scenario.apply(cmd.clone()) {
            Ok(transition) => {
                // (c) a closed run accepts nothing.
                assert!(!before.status.is_closed(), "closed run accepted {cmd:?}");
                // (g) the written Scheduled/Started are the pushed ones.
                if let (Command::CompleteWorkflowTask { token, .. }, Some(view)) = (&cmd, view) {
                    let completed = transition
                        .events
                        .iter()
                        .any(|e| matches!(e.attributes, EventAttributes::WorkflowTaskCompleted(_)));
                    if completed && view.token == *token {
                        let n = view.transient_events.len();
                        assert_eq!(transition.events[..n], view.transient_events[..]);
                    }
                }
                self.apply_effects(&transition);
                self.check(&transition);
            }
            Err(rejection) => {
                // (c) a rejection changes nothing.
                assert_eq!(self.state(), &before);
                assert_eq!(self.scenario.history.len(), history_len);
                if before.status.is_closed() {
                    assert_eq!(rejection, Rejection::RunClosed(before.status));
                }
                // A claimer drops the row it could not use.
                match cmd {
                    Command::FireTimer(task) if self.rows.get(&task.key()) == Some(&task) => {
                        self.rows.remove(&task.key());
                    }
                    Command::StartActivityAttempt { scheduled_event_id } => {
                        self.rows
                            .remove(&Task::ActivityTask { scheduled_event_id }.key());
                    }
                    _ => {}
                }
            }
        }
    }

    fn check(&self, transition: &Transition) {
        let state = self.state();
        let history = &self.scenario.history;
        // (b) dense ids from 1 (the harness checked each batch continues
        // the history; the whole history must be 1..=n).
        for (i, e) in history.iter().enumerate() {
            assert_eq!(e.event_id, i as i64 + 1);
        }
        // (h) signal dedupe and a single cancellation request.
        let mut signal_ids = BTreeSet::new();
        let mut cancel_requests = 0;
        for e in history {
            match &e.attributes {
                EventAttributes::WorkflowExecutionSignaled(a) => {
                    if let Some(r) = &a.request_id {
                        assert!(signal_ids.insert(r.clone()), "signal {r} recorded twice");
                    }
                }
                EventAttributes::WorkflowExecutionCancelRequested(_) => cancel_requests += 1,
                _ => {}
            }
        }
        assert!(cancel_requests <= 1, "cancellation requested twice");
        // (i) an update is admitted once, accepted once right after the
        // completion of a later workflow task, completed once after that.
        let mut admitted = BTreeMap::new();
        let mut accepted = BTreeMap::new();
        let mut completed = BTreeSet::new();
        let mut after_completion = false;
        for e in history {
            match &e.attributes {
                EventAttributes::WorkflowExecutionUpdateAdmitted(a) => {
                    let first = admitted.insert(a.update_id.clone(), e.event_id).is_none();
                    assert!(first, "update {} admitted twice", a.update_id);
                }
                EventAttributes::WorkflowExecutionUpdateAccepted(a) => {
                    assert!(after_completion, "accepted away from a task's completion");
                    assert_eq!(admitted.get(&a.update_id), Some(&a.admitted_event_id));
                    let first = accepted.insert(a.update_id.clone(), e.event_id).is_none();
                    assert!(first, "update {} accepted twice", a.update_id);
                }
                EventAttributes::WorkflowExecutionUpdateCompleted(a) => {
                    assert_eq!(accepted.get(&a.update_id), Some(&a.accepted_event_id));
                    assert!(completed.insert(a.update_id.clone()), "completed twice");
                }
                _ => {}
            }
            after_completion = matches!(
                e.attributes,
                EventAttributes::WorkflowTaskCompleted(_)
                    | EventAttributes::WorkflowExecutionUpdateAccepted(_)
            );
        }
        // Every recorded update a completed task carried is accepted.
        if let Some(last) = history
            .iter()
            .rev()
            .find(|e| matches!(e.attributes, EventAttributes::WorkflowTaskCompleted(_)))
        {
            for (id, admitted_at) in &admitted {
                if *admitted_at < last.event_id {
                    assert!(
                        accepted.contains_key(id),
                        "update {id} delivered, not accepted"
                    );
                }
            }
        }
        // (d) at most one workflow task in flight, per the history...
        let mut open: Option<i64> = None;
        for e in history {
            match &e.attributes {
                EventAttributes::WorkflowTaskScheduled(_) => {
                    assert_eq!(
                        open, None,
                        "a second workflow task scheduled at {}",
                        e.event_id
                    );
                    open = Some(e.event_id);
                }
                EventAttributes::WorkflowTaskCompleted(a) => {
                    assert_eq!(open, Some(a.scheduled_event_id));
                    open = None;
                }
                EventAttributes::WorkflowTaskFailed(a) => {
                    assert_eq!(open, Some(a.scheduled_event_id));
                    open = None;
                }
                EventAttributes::WorkflowTaskTimedOut(a) => {
                    assert_eq!(open, Some(a.scheduled_event_id));
                    open = None;
                }
                _ => {}
            }
        }
        // ...and per the state: events wait only behind a task in flight.
        if !state.buffered.is_empty() {
            assert!(state.workflow_task.is_some(), "buffered events, no task");
        }
        // (e) each activity closes at most once, after its Started event.
        let mut closed = BTreeSet::new();
        let mut started = BTreeSet::new();
        for e in history {
            let (sched, started_id) = match &e.attributes {
                EventAttributes::ActivityTaskStarted(a) => {
                    started.insert(e.event_id);
                    assert!(!closed.contains(&a.scheduled_event_id));
                    continue;
                }
                EventAttributes::ActivityTaskCompleted(a) => {
                    (a.scheduled_event_id, a.started_event_id)
                }
                EventAttributes::ActivityTaskFailed(a) => {
                    (a.scheduled_event_id, a.started_event_id)
                }
                EventAttributes::ActivityTaskTimedOut(a) => {
                    (a.scheduled_event_id, a.started_event_id)
                }
                EventAttributes::ActivityTaskCanceled(a) => {
                    (a.scheduled_event_id, a.started_event_id)
                }
                _ => continue,
            };
            assert!(closed.insert(sched), "activity {sched} closed twice");
            assert!(started_id == 0 || started.contains(&started_id));
        }
        // (f) the durable rows.
        if state.status.is_closed() {
            assert!(
                self.rows.is_empty(),
                "rows of a closed run: {:?}",
                self.rows
            );
            assert!(state.workflow_task.is_none() && state.buffered.is_empty());
            assert!(!transition
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Dispatch(_))));
            return;
        }
        assert_eq!(
            self.rows.contains_key("workflow_task"),
            state.workflow_task.is_some(),
            "a workflow task in flight has its row, and only then"
        );
        if state.deadline.is_some() {
            assert_eq!(self.rows.get("run_timeout"), Some(&Task::RunTimeout));
        }
        for (id, timer) in &state.timers {
            if !timer.fired {
                assert_eq!(
                    self.rows.get(&format!("timer/{id}")),
                    Some(&Task::UserTimer {
                        timer_id: id.clone(),
                        started_event_id: timer.started_event_id
                    })
                );
            }
        }
        for act in state.activities.values() {
            let sched = act.scheduled_event_id;
            let timeout = |tt: TimeoutType, attempt: u32| {
                let task = Task::ActivityTimeout {
                    scheduled_event_id: sched,
                    attempt,
                    timeout_type: tt,
                };
                self.rows.get(&task.key()) == Some(&task)
            };
            match act.phase {
                ActivityPhase::Scheduled { .. } => {
                    assert!(self.rows.contains_key(&format!("activity/{sched}")));
                }
                ActivityPhase::Started { .. } => {
                    assert!(timeout(TimeoutType::StartToClose, act.attempt));
                    if act.heartbeat_timeout.is_some() {
                        assert!(timeout(TimeoutType::Heartbeat, act.attempt));
                    }
                }
                ActivityPhase::Closed => {
                    assert!(!self.rows.keys().any(|k| k
                        .strip_prefix(&format!("activity/{sched}"))
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))));
                }
            }
            if act.phase != ActivityPhase::Closed && act.schedule_to_close_timeout.is_some() {
                assert!(timeout(TimeoutType::ScheduleToClose, 0));
            }
        }
        // Every row belongs to something open.
        for task in self.rows.values() {
            let is_open = match task {
                Task::WorkflowTask => state.workflow_task.is_some(),
                Task::ActivityTask { scheduled_event_id }
                | Task::ActivityTimeout {
                    scheduled_event_id, ..
                } => state
                    .activities
                    .get(scheduled_event_id)
                    .is_some_and(|a| a.phase != ActivityPhase::Closed),
                Task::UserTimer { timer_id, .. } => {
                    state.timers.get(timer_id).is_some_and(|t| !t.fired)
                }
                Task::RunTimeout => state.deadline.is_some(),
                Task::StartChild { initiated_event_id } => state
                    .children
                    .get(initiated_event_id)
                    .is_some_and(|c| c.phase == ChildPhase::Initiated),
                Task::SignalExternal { initiated_event_id }
                | Task::CancelExternal { initiated_event_id } => state
                    .external_requests
                    .get(initiated_event_id)
                    .is_some_and(|r| !r.done),
                Task::NotifyParent | Task::ApplyParentClosePolicy { .. } => {
                    state.status.is_closed()
                }
                Task::WorkflowBackoffTimer => {
                    state.workflow_task_seq == 0 && state.chain.backoff_until.is_some()
                }
            };
            assert!(is_open, "row {task:?} outlived what it was for");
        }
    }

    /// (c) Every kind of command is refused by a closed run.
    fn check_closed_run_absorbs_everything(&mut self) {
        let before = self.state().clone();
        let token = WorkflowTaskToken {
            seq: before.workflow_task_seq,
            attempt: 1,
            started_at: Timestamp(0),
        };
        let act = ActivityToken {
            scheduled_event_id: self.scheduled().first().copied().unwrap_or(5),
            attempt: 1,
        };
        let commands = [
            Command::CompleteWorkflowTask {
                token,
                commands: vec![],
                identity: None,
                force_create_new_workflow_task: false,
                search_attributes: Default::default(),
            },
            Command::FailWorkflowTask {
                token,
                cause: WorkflowTaskFailedCause::NonDeterministicError,
                failure: Failure::default(),
            },
            Command::WorkflowTaskUndelivered {
                token,
                timed_out: false,
                error: String::new(),
            },
            Command::StartActivityAttempt {
                scheduled_event_id: act.scheduled_event_id,
            },
            Command::ActivityUndelivered {
                token: act,
                error: String::new(),
            },
            Command::CompleteActivity {
                token: act,
                result: Value::Null,
            },
            Command::FailActivity {
                token: act,
                failure: Failure::default(),
            },
            Command::ReportActivityCanceled {
                token: act,
                details: None,
            },
            Command::RecordActivityHeartbeat {
                token: act,
                details: None,
            },
            Command::FireTimer(Task::RunTimeout),
            Command::TerminateWorkflow {
                reason: String::new(),
                details: None,
                identity: None,
            },
            Command::SignalWorkflow(Signal {
                signal_name: "go".into(),
                input: Value::Null,
                request_id: None,
                identity: None,
            }),
            Command::RequestCancelWorkflow {
                reason: String::new(),
                request_id: None,
                identity: None,
            },
            Command::PinVersion {
                version: "v1".into(),
            },
            Command::UpdateWorkflowExecutionOptions(MoveToVersion {
                from_version: "v1".into(),
                to_version: "v2".into(),
                reason: "test".into(),
                identity: None,
            }),
        ];
        for cmd in commands {
            assert_eq!(
                self.scenario.apply(cmd),
                Err(Rejection::RunClosed(before.status))
            );
        }
        assert_eq!(self.state(), &before);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_command_sequences_keep_the_fold_laws(ops in vec(op(), 1..150)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op);
        }
        if world.state().status.is_closed() {
            world.check_closed_run_absorbs_everything();
        }
    }
}
