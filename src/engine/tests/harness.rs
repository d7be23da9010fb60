//! The scenario harness: a one-run world driven by a small text language,
//! rendering what each command did as stable text for `expect![[...]]`.
//!
//! A script is one engine input per line. A line may start with `@3s` (set
//! the clock) or `@+2s` (advance it). Workflow-task commands follow `|`.
//!
//! ```text
//! start [type=Order] [run_timeout=60s] [execution_timeout=..] [task_timeout=..]
//! limits [max_events=N] [max_bytes=N] [suggest_events=N] [max_payload=N] [wft_backoff=D] [wft_max_backoff=D] [max_heartbeats=N]
//! push-wft                                   show the current task as pushed now
//! complete-wft [token=SEQ/ATTEMPT] [force] | schedule a1 stc=10s | timer t1 5s | complete
//! fail-wft [cause=NON_DETERMINISTIC_ERROR] [token=..]
//! wft-undelivered [timed_out] [token=..]
//! start-attempt a1 | undelivered a1 | heartbeat a1 [details=..]
//! complete-activity a1 [result=..] | fail-activity a1 [type=T] [non_retryable] | canceled a1
//! checkpoint first [inline=a1,..] | schedule a1 ..     the first checkpoint of a session
//! checkpoint [complete=a1,..] [result=..] [fail=a2,..] [type=T] [non_retryable] [attempt=N] [time=D] [inline=..] [| ..]
//! fire-timeout a1 start-to-close | fire-timer t1 | fire-run-timeout
//! terminate [reason=..]
//! signal NAME [input=..] [request_id=..]     (start also takes signal=NAME: signal-with-start)
//! request-cancel [reason=..]
//! pin VERSION | move from=V1 to=V2 reason=.. [identity=..]   (start also takes version=V)
//! update NAME id=ID [input=..]
//! child-started INIT [run=N] | child-start-failed INIT | external-delivered INIT | external-failed INIT
//! child-closed INIT completed|failed|canceled|timed-out|terminated [result=..] [run=N]
//! reset first|last|EVENT_ID [reason=..] [no_reapply]   the reset run replaces the run
//! fire-backoff                               the first workflow task's back-off is due
//! ```
//!
//! `start` also takes `memo=JSON` and a retry policy (`initial=`,
//! `coefficient=`, `max_interval=`, `attempts=`, `non_retryable=A,B`).
//! When a command starts the next run of the chain (continue-as-new, a
//! retry) the harness renders that run's start and follows it: later lines
//! talk to the new run. Run ids are small numbers: the first run is 1.
//! `start parent=INIT [parent_close_policy=P]` starts the run as the child
//! of run 9 of workflow `parent-1`, initiated by event INIT.
//!
//! Workflow commands: `schedule ID [type=] [queue=] [input=] [stc=] [s2c=]
//! [s2s=] [hb=] [initial=] [coefficient=] [max_interval=] [attempts=]
//! [non_retryable=A,B]`, `cancel ID`, `timer ID DURATION`, `cancel-timer ID`,
//! `marker NAME [details=]`, `complete [result=]`, `fail-workflow [message=]
//! [type=] [non_retryable] [details=]`, `cancel-workflow [details=]`,
//! `complete-update ID [result=] [failure=MESSAGE]`, `continue-as-new
//! [input=] [type=] [queue=] [run_timeout=] [task_timeout=] [memo=]
//! [backoff=] [attempts=]`, `start-child WF [type=] [queue=] [input=]
//! [task_timeout=] [policy=] [reuse=]`, `signal-external WF NAME [run=N]
//! [input=] [child_only]`, `cancel-external WF [run=N] [child_only]`.
//!
//! Activity tokens default to the activity's current attempt (`attempt=N`
//! overrides); workflow-task tokens default to the task last shown by
//! `push-wft`, else the current task pushed now. Values are JSON where they
//! parse as JSON, else strings.
//!
//! A `checkpoint` (docs/protocol.md §5.9) without `first` continues from
//! the last checkpoint that continued, as a handler does with its
//! `continuation_token`; its completions (`complete=` ids first, then
//! `fail=` ids) are reported in that order, and `time=` (default: the
//! clock) is its `workflow_time`. Commands follow `|`; a line without `|`
//! carries none (completions only), one ending in `|` an empty list.
//!
//! After every accepted command the harness checks the fold laws: new event
//! ids continue the history densely, and replaying the whole history gives
//! the snapshot's history view.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use expect_test::Expect;
use serde::Serialize;
use serde_json::Value;

use crate::engine::{
    self, ActivityPhase, ActivityToken, CancelTimer, CancelWorkflowExecution, Checkpoint,
    CheckpointFrom, ChildExecution, ChildOutcome, Command, CompleteWorkflowExecution,
    CompleteWorkflowUpdate, ContinuationToken, ContinueAsNewWorkflowExecution, Ctx, Dispatch,
    Effect, Event, EventAttributes, ExternalWorkflowExecutionFailedCause, FailWorkflowExecution,
    Failure, InlineOutcome, Limits, MoveToVersion, ParentClosePolicy, ParentInfo, RecordMarker,
    Rejection, RequestCancelActivityTask, RequestCancelExternalWorkflowExecution, Reset,
    ResetPoint, RetryPolicy, RetryPolicySpec, RetryState, RunState, ScheduleActivityTask, Signal,
    SignalExternalWorkflowExecution, StartChildWorkflowExecution,
    StartChildWorkflowExecutionFailedCause, StartRun, StartTimer, Task, TimeoutType, Transition,
    Update, WorkflowCommand, WorkflowExecution, WorkflowTaskFailedCause, WorkflowTaskToken,
    WorkflowTaskView,
};
use crate::ids::{ActivityId, RunId, TaskQueue, TimerId, WorkflowId};
use crate::time::{Duration, Timestamp};

/// Runs `given` silently (every line must be accepted), then renders each
/// line of `when` and compares the text with `expect`.
pub(super) fn check(given: &str, when: &str, expect: Expect) {
    let mut scenario = Scenario::given(given);
    let mut out = String::new();
    for line in script_lines(when) {
        out.push_str(&scenario.render(line));
    }
    expect.assert_eq(&out);
}

/// Runs `given` once per line of `whens`, each from a fresh copy, and
/// renders only the output lines that contain `filter`.
pub(super) fn check_each(given: &str, whens: &[&str], filter: &str, expect: Expect) {
    let base = Scenario::given(given);
    let mut out = String::new();
    for line in whens {
        let mut scenario = base.clone();
        let rendered = scenario.render(line);
        let mut shown: Vec<&str> = rendered
            .lines()
            .skip(1)
            .filter(|l| l.contains(filter))
            .collect();
        if shown.is_empty() {
            shown.push("  (nothing)");
        }
        writeln!(out, "> {line}").unwrap();
        for l in shown {
            writeln!(out, "{l}").unwrap();
        }
    }
    expect.assert_eq(&out);
}

fn script_lines(script: &str) -> impl Iterator<Item = &str> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// One run and everything needed to talk to it the way the edges do.
#[derive(Clone)]
pub(super) struct Scenario {
    pub now: Timestamp,
    pub limits: Limits,
    pub state: Option<RunState>,
    /// Every committed event, in order.
    pub history: Vec<Event>,
    /// The workflow task last shown by `push-wft`; used (once) as the
    /// token of the next workflow-task answer.
    pushed: Option<WorkflowTaskView>,
    /// The continuation of the last checkpoint that continued.
    continuation: Option<ContinuationToken>,
    /// Runs created so far; run ids are 1, 2, ...
    runs: u128,
}

impl Scenario {
    pub fn new() -> Scenario {
        Scenario {
            now: Timestamp(0),
            limits: Limits::default(),
            state: None,
            history: Vec::new(),
            pushed: None,
            continuation: None,
            runs: 0,
        }
    }

    pub fn given(script: &str) -> Scenario {
        let mut scenario = Scenario::new();
        for line in script_lines(script) {
            if let Err(rejection) = scenario.run(line) {
                panic!("given line `{line}` was rejected: {rejection}");
            }
        }
        scenario
    }

    pub fn ctx(&self) -> Ctx {
        Ctx {
            now: self.now,
            limits: self.limits.clone(),
            next_run_id: RunId(uuid::Uuid::from_u128(self.runs + 1)),
        }
    }

    pub fn state(&self) -> &RunState {
        self.state
            .as_ref()
            .expect("the script starts the run first")
    }

    /// Runs one line and renders it: the line, then what it did.
    pub fn render(&mut self, line: &str) -> String {
        let mut out = format!("> {line}\n");
        match self.run(line) {
            Ok(text) => out.push_str(&text),
            Err(rejection) => writeln!(out, "  rejected: {rejection}").unwrap(),
        }
        out
    }

    /// Runs one line; a rejection leaves the scenario as it was.
    pub fn run(&mut self, line: &str) -> Result<String, Rejection> {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix('@') {
            let (time, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            self.now = match time.strip_prefix('+') {
                Some(d) => self.now.saturating_add(duration(d)),
                None => Timestamp(duration(time).0),
            };
            line = rest.trim();
        }
        let mut parts = line.split('|');
        let args = Args::parse(parts.next().unwrap_or_default());
        let sub: Vec<Args> = parts.map(Args::parse).collect();
        let verb = args.pos(0);
        let cmd = match verb {
            "start" => return self.start(&args),
            "limits" => {
                self.set_limits(&args);
                return Ok(String::new());
            }
            "push-wft" => {
                let view = engine::workflow_task_view(self.state(), &self.ctx())
                    .ok_or_else(|| Rejection::Stale("no workflow task to push".into()))?;
                let mut out = String::new();
                writeln!(
                    out,
                    "  token {}/{} started_at={}",
                    view.token.seq,
                    view.token.attempt,
                    time(view.token.started_at)
                )
                .unwrap();
                for e in &view.transient_events {
                    writeln!(out, "  ~ {}", event(e)).unwrap();
                }
                self.pushed = Some(view);
                return Ok(out);
            }
            "checkpoint" => return self.checkpoint(&args, &sub),
            "complete-wft" => Command::CompleteWorkflowTask {
                token: self.wft_token(&args)?,
                commands: sub.iter().map(workflow_command).collect(),
                identity: None,
                force_create_new_workflow_task: args.flag("force"),
                search_attributes: Default::default(),
            },
            "fail-wft" => Command::FailWorkflowTask {
                token: self.wft_token(&args)?,
                cause: args.get("cause").map_or(
                    WorkflowTaskFailedCause::NonDeterministicError,
                    |c| {
                        serde_json::from_value(Value::String(c.to_owned()))
                            .unwrap_or_else(|_| panic!("unknown cause {c}"))
                    },
                ),
                failure: Failure::new(args.get("message").unwrap_or("replay diverged"), ""),
            },
            "wft-undelivered" => Command::WorkflowTaskUndelivered {
                token: self.wft_token(&args)?,
                timed_out: args.flag("timed_out"),
                error: "connection reset".into(),
            },
            "start-attempt" => Command::StartActivityAttempt {
                scheduled_event_id: self.sched(args.pos(1)),
            },
            "undelivered" => Command::ActivityUndelivered {
                token: self.activity_token(&args),
                error: "503".into(),
            },
            "complete-activity" => Command::CompleteActivity {
                token: self.activity_token(&args),
                result: args.value("result").unwrap_or(Value::String("ok".into())),
            },
            "fail-activity" => {
                let mut failure = Failure::new(
                    args.get("message").unwrap_or("boom"),
                    args.get("type").unwrap_or("IOError"),
                );
                failure.non_retryable = args.flag("non_retryable");
                failure.details = args.value("details");
                Command::FailActivity {
                    token: self.activity_token(&args),
                    failure,
                }
            }
            "canceled" => Command::ReportActivityCanceled {
                token: self.activity_token(&args),
                details: args.value("details"),
            },
            "heartbeat" => Command::RecordActivityHeartbeat {
                token: self.activity_token(&args),
                details: args.value("details"),
            },
            "fire-timeout" => {
                let timeout_type: TimeoutType = serde_json::from_value(Value::String(
                    args.pos(2).to_uppercase().replace('-', "_"),
                ))
                .unwrap_or_else(|_| panic!("unknown timeout type {}", args.pos(2)));
                let scheduled_event_id = self.sched(args.pos(1));
                let attempt = match (args.get("attempt"), timeout_type) {
                    (Some(a), _) => a.parse().expect("attempt is a number"),
                    (None, TimeoutType::ScheduleToClose) => 0,
                    (None, _) => self.attempt(scheduled_event_id),
                };
                Command::FireTimer(Task::ActivityTimeout {
                    scheduled_event_id,
                    attempt,
                    timeout_type,
                })
            }
            "fire-timer" => {
                let timer_id = TimerId::from(args.pos(1));
                let started_event_id = match args.get("started") {
                    Some(s) => s.parse().expect("started is a number"),
                    None => self.timer_started(&timer_id),
                };
                Command::FireTimer(Task::UserTimer {
                    timer_id,
                    started_event_id,
                })
            }
            "fire-run-timeout" => Command::FireTimer(Task::RunTimeout),
            "fire-backoff" => Command::FireTimer(Task::WorkflowBackoffTimer),
            "reset" => return self.reset(&args),
            "terminate" => Command::TerminateWorkflow {
                reason: args.get("reason").unwrap_or("by test").to_owned(),
                details: None,
                identity: None,
            },
            "signal" => Command::SignalWorkflow(Signal {
                signal_name: args.text(args.pos(1)),
                input: args.value("input").unwrap_or(Value::Null),
                request_id: args.get("request_id").map(str::to_owned),
                identity: None,
            }),
            "child-started" => Command::ChildStarted {
                initiated_event_id: args.num(1),
                run_id: run_id(args.get("run").unwrap_or("2")),
            },
            "child-start-failed" => Command::ChildStartFailed {
                initiated_event_id: args.num(1),
                cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
            },
            "child-closed" => Command::ChildClosed {
                initiated_event_id: args.num(1),
                first_run_id: run_id(args.get("first").or(args.get("run")).unwrap_or("2")),
                run_id: run_id(args.get("run").unwrap_or("2")),
                outcome: match args.pos(2) {
                    "completed" => {
                        ChildOutcome::Completed(args.value("result").unwrap_or(Value::Null))
                    }
                    "failed" => ChildOutcome::Failed(
                        Failure::new("child gave up", "ValueError"),
                        RetryState::RetryPolicyNotSet,
                    ),
                    "canceled" => ChildOutcome::Canceled(None),
                    "timed-out" => ChildOutcome::TimedOut(RetryState::Timeout),
                    "terminated" => ChildOutcome::Terminated,
                    other => panic!("unknown child outcome {other:?}"),
                },
            },
            "external-delivered" => Command::ExternalRequestDelivered {
                initiated_event_id: args.num(1),
            },
            "external-failed" => Command::ExternalRequestFailed {
                initiated_event_id: args.num(1),
                cause: ExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound,
            },
            "request-cancel" => Command::RequestCancelWorkflow {
                reason: args.get("reason").unwrap_or("by test").to_owned(),
                request_id: None,
                identity: None,
            },
            "pin" => Command::PinVersion {
                version: args.pos(1).to_owned(),
            },
            "move" => Command::UpdateWorkflowExecutionOptions(MoveToVersion {
                from_version: args.get("from").unwrap_or_default().to_owned(),
                to_version: args.get("to").unwrap_or_default().to_owned(),
                reason: args
                    .get("reason")
                    .map_or_else(String::new, |r| args.text(r)),
                identity: args.get("identity").map(str::to_owned),
            }),
            "update" => Command::AdmitUpdate(Update {
                update_name: args.text(args.pos(1)),
                update_id: args.text(args.get("id").unwrap_or("u1")),
                input: args.value("input").unwrap_or(Value::Null),
                identity: None,
            }),
            other => panic!("unknown command {other:?} in `{line}`"),
        };
        let transition = self.apply(cmd)?;
        let mut out = self.describe(&transition);
        if let Some(next) = transition.next_run {
            // The edge starts the next run in the same commit; follow it.
            let next = engine::start(*next, &self.ctx()).expect("the next run starts");
            writeln!(out, "  next run {}:", next.state.run_id.0.as_u128()).unwrap();
            self.follow(&next);
            out.push_str(&self.describe(&next));
        }
        Ok(out)
    }

    /// Makes `transition`, which created a run, the scenario's run.
    fn follow(&mut self, transition: &Transition) {
        self.runs += 1;
        self.state = None;
        self.history.clear();
        self.pushed = None;
        self.continuation = None;
        self.commit(transition);
    }

    /// Runs a `checkpoint ...` line and renders its transition and report.
    fn checkpoint(&mut self, args: &Args, sub: &[Args]) -> Result<String, Rejection> {
        let from = if args.flag("first") {
            CheckpointFrom::WorkflowTask(self.wft_token(args)?)
        } else {
            CheckpointFrom::Continuation(
                self.continuation
                    .expect("a continued checkpoint comes before a continuation"),
            )
        };
        let attempt = args.get("attempt");
        let mut completions = Vec::new();
        for id in list(args.get("complete")) {
            let result = args.value("result").unwrap_or(Value::String("ok".into()));
            completions.push((self.token_of(id, attempt), InlineOutcome::Completed(result)));
        }
        for id in list(args.get("fail")) {
            let mut failure = Failure::new(
                args.get("message").unwrap_or("boom"),
                args.get("type").unwrap_or("IOError"),
            );
            failure.non_retryable = args.flag("non_retryable");
            completions.push((self.token_of(id, attempt), InlineOutcome::Failed(failure)));
        }
        let commands = (!sub.is_empty()).then(|| {
            sub.iter()
                .filter(|c| !c.pos(0).is_empty())
                .map(workflow_command)
                .collect()
        });
        let cp = Checkpoint {
            from,
            completions,
            commands,
            inline: list(args.get("inline"))
                .map(|id| ActivityId(id.to_owned()))
                .collect(),
            workflow_time: Some(
                args.get("time")
                    .map_or(self.now, |d| Timestamp(duration(d).0)),
            ),
            identity: None,
            search_attributes: Default::default(),
        };
        let transition = self.apply(Command::Checkpoint(Box::new(cp)))?;
        let report = transition
            .checkpoint
            .as_deref()
            .expect("a checkpoint reports what it did");
        let mut out = self.describe(&transition);
        write!(
            out,
            "  checkpoint accepted={:?} continued={}",
            report.accepted, report.continued
        )
        .unwrap();
        for (id, sched) in &report.inline_attempts {
            write!(out, " inline={id}#{sched}").unwrap();
        }
        if let Some((cause, message)) = &report.workflow_task_failed {
            write!(out, " workflow_task_failed={} {message:?}", name(cause)).unwrap();
        }
        if report.continued {
            assert_eq!(
                report.events, transition.events,
                "a continued checkpoint reports its events"
            );
            if let Some(e) = report.events.last() {
                self.continuation = Some(ContinuationToken {
                    last_event_id: e.event_id,
                    last_event_time: e.event_time,
                });
                write!(out, " continuation={}@{}", e.event_id, time(e.event_time)).unwrap();
            }
        }
        out.push('\n');
        Ok(out)
    }

    fn reset(&mut self, args: &Args) -> Result<String, Rejection> {
        let point = match args.pos(1) {
            "first" => ResetPoint::FirstWorkflowTask,
            "last" => ResetPoint::LastWorkflowTask,
            id => ResetPoint::WorkflowTaskCompleted(id.parse().expect("an event id")),
        };
        let req = Reset {
            point,
            reason: args.get("reason").unwrap_or("bad deploy").to_owned(),
            reapply_signals: !args.flag("no_reapply"),
            pinned_version: args.get("version").map(str::to_owned),
        };
        let ctx = self.ctx();
        let mut out = String::new();
        let mut history = self.history.clone();
        if !self.state().status.is_closed() {
            // The edge terminates the open run in the same commit, and the
            // reset run copies from after that.
            let reason = format!("reset to run {}", short(ctx.next_run_id));
            let terminated =
                engine::terminate_for_reset(self.state(), ctx.next_run_id, reason, &ctx)?;
            writeln!(out, "  old run {}:", short(self.state().run_id)).unwrap();
            out.push_str(&self.describe(&terminated));
            history.extend(terminated.events.iter().cloned());
        }
        let transition = engine::reset(self.state(), &history, req, &ctx)?;
        writeln!(out, "  reset run {}:", short(transition.state.run_id)).unwrap();
        self.follow(&transition);
        out.push_str(&self.describe(&transition));
        Ok(out)
    }

    /// Decides one command and, if accepted, commits it.
    pub fn apply(&mut self, cmd: Command) -> Result<Transition, Rejection> {
        let transition = engine::decide(self.state(), cmd, &self.ctx())?;
        self.commit(&transition);
        Ok(transition)
    }

    fn commit(&mut self, transition: &Transition) {
        let first = self.state.as_ref().map_or(1, |s| s.next_event_id);
        for (e, id) in transition.events.iter().zip(first..) {
            assert_eq!(e.event_id, id, "event ids are dense and ascending");
        }
        self.history.extend(transition.events.iter().cloned());
        let replayed = RunState::replay(
            transition.state.namespace.clone(),
            transition.state.workflow_id.clone(),
            transition.state.run_id,
            &self.history,
        );
        assert_eq!(
            replayed.history_view(),
            transition.state.history_view(),
            "replaying the history gives the snapshot"
        );
        self.state = Some(transition.state.clone());
    }

    /// Runs a `start ...` line and returns its transition.
    pub fn apply_start(&mut self, line: &str) -> Result<Transition, Rejection> {
        let args = Args::parse(line);
        assert_eq!(args.pos(0), "start");
        self.start_transition(&args)
    }

    fn start(&mut self, args: &Args) -> Result<String, Rejection> {
        let transition = self.start_transition(args)?;
        Ok(self.describe(&transition))
    }

    fn start_transition(&mut self, args: &Args) -> Result<Transition, Rejection> {
        let dur = |k: &str| args.get(k).map(duration);
        let spec = retry_spec(args);
        let cmd = StartRun {
            trace_context: None,
            namespace: "default".into(),
            workflow_id: args.get("id").unwrap_or("order-1").into(),
            run_id: RunId(uuid::Uuid::from_u128(1)),
            workflow_type: args.get("type").unwrap_or("Order").to_owned(),
            task_queue: args.get("queue").unwrap_or("orders").into(),
            input: args.value("input").unwrap_or(Value::Null),
            execution_timeout: dur("execution_timeout"),
            run_timeout: dur("run_timeout"),
            task_timeout: dur("task_timeout"),
            request_id: None,
            identity: None,
            pinned_version: args.get("version").map(str::to_owned),
            parent: args.get("parent").map(|init| ParentInfo {
                workflow_id: "parent-1".into(),
                run_id: run_id("9"),
                initiated_event_id: init.parse().expect("parent=INITIATED_EVENT_ID"),
                parent_close_policy: args
                    .get("parent_close_policy")
                    .map_or(ParentClosePolicy::Terminate, enum_value),
            }),
            memo: args.value("memo"),
            search_attributes: Default::default(),
            retry_policy: (spec != RetryPolicySpec::default()).then_some(spec),
            chain: None,
        };
        let transition = match args.get("signal") {
            Some(name) => {
                let signal = Signal {
                    signal_name: args.text(name),
                    input: args.value("signal_input").unwrap_or(Value::Null),
                    request_id: None,
                    identity: None,
                };
                engine::start_with_signal(cmd, signal, &self.ctx())?
            }
            None => engine::start(cmd, &self.ctx())?,
        };
        self.runs = 1;
        self.commit(&transition);
        Ok(transition)
    }

    fn set_limits(&mut self, args: &Args) {
        let num = |k: &str| args.get(k).map(|v| v.parse::<i64>().expect("a number"));
        if let Some(n) = num("max_events") {
            self.limits.max_history_events = n;
        }
        if let Some(n) = num("max_bytes") {
            self.limits.max_history_bytes = n as u64;
        }
        if let Some(n) = num("suggest_events") {
            self.limits.suggest_continue_as_new_events = n;
        }
        if let Some(n) = num("suggest_bytes") {
            self.limits.suggest_continue_as_new_bytes = n as u64;
        }
        if let Some(n) = num("max_payload") {
            self.limits.max_payload_bytes = n as u64;
        }
        if let Some(d) = args.get("wft_backoff") {
            self.limits.workflow_task_initial_backoff = duration(d);
        }
        if let Some(d) = args.get("wft_max_backoff") {
            self.limits.workflow_task_max_backoff = duration(d);
        }
        if let Some(n) = num("max_heartbeats") {
            self.limits.max_workflow_task_heartbeats = n as u32;
        }
    }

    fn wft_token(&mut self, args: &Args) -> Result<WorkflowTaskToken, Rejection> {
        if let Some(t) = args.get("token") {
            let (seq, attempt) = t.split_once('/').expect("token=SEQ/ATTEMPT");
            return Ok(WorkflowTaskToken {
                seq: seq.parse().expect("seq is a number"),
                attempt: attempt.parse().expect("attempt is a number"),
                started_at: self.now,
            });
        }
        if let Some(view) = self.pushed.take() {
            return Ok(view.token);
        }
        engine::workflow_task_view(self.state(), &self.ctx())
            .map(|v| v.token)
            .ok_or_else(|| Rejection::Stale("no workflow task to answer".into()))
    }

    /// The scheduled event id of the activity last scheduled with this id.
    pub fn sched(&self, activity_id: &str) -> i64 {
        self.history
            .iter()
            .rev()
            .find_map(|e| match &e.attributes {
                EventAttributes::ActivityTaskScheduled(a)
                    if a.activity_id.as_str() == activity_id =>
                {
                    Some(e.event_id)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no activity {activity_id:?} was scheduled"))
    }

    /// The activity's current attempt, or the one that closed it.
    fn attempt(&self, sched: i64) -> u32 {
        if let Some(a) = self.state().activities.get(&sched) {
            return a.attempt;
        }
        self.history
            .iter()
            .rev()
            .find_map(|e| match &e.attributes {
                EventAttributes::ActivityTaskStarted(a) if a.scheduled_event_id == sched => {
                    Some(a.attempt)
                }
                _ => None,
            })
            .unwrap_or(1)
    }

    fn activity_token(&self, args: &Args) -> ActivityToken {
        self.token_of(args.pos(1), args.get("attempt"))
    }

    /// The token of the activity last scheduled with this id: its current
    /// attempt unless `attempt` is given.
    fn token_of(&self, activity_id: &str, attempt: Option<&str>) -> ActivityToken {
        let scheduled_event_id = self.sched(activity_id);
        let attempt = match attempt {
            Some(a) => a.parse().expect("attempt is a number"),
            None => self.attempt(scheduled_event_id),
        };
        ActivityToken {
            scheduled_event_id,
            attempt,
        }
    }

    fn timer_started(&self, timer_id: &TimerId) -> i64 {
        self.history
            .iter()
            .rev()
            .find_map(|e| match &e.attributes {
                EventAttributes::TimerStarted(t) if &t.timer_id == timer_id => Some(e.event_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no timer {timer_id} was started"))
    }

    /// Events, effects and the resulting state, one fact per line.
    fn describe(&self, transition: &Transition) -> String {
        let mut out = String::new();
        for e in &transition.events {
            writeln!(out, "  + {}", event(e)).unwrap();
        }
        let mut dequeued: Vec<String> = Vec::new();
        let flush = |out: &mut String, dequeued: &mut Vec<String>| {
            if !dequeued.is_empty() {
                writeln!(out, "  dequeue {}", dequeued.join(", ")).unwrap();
                dequeued.clear();
            }
        };
        for effect in &transition.effects {
            if let Effect::Dequeue { key } = effect {
                dequeued.push(key.clone());
                continue;
            }
            flush(&mut out, &mut dequeued);
            match effect {
                Effect::Enqueue { task, at, lease } => {
                    write!(out, "  enqueue {} at {}", task_name(task), time(*at)).unwrap();
                    if *lease != self.limits.lease_grace {
                        write!(out, " lease {lease}").unwrap();
                    }
                    out.push('\n');
                }
                Effect::DequeueAll => out.push_str("  dequeue all\n"),
                Effect::Dispatch(Dispatch::WorkflowTask) => {
                    out.push_str("  dispatch workflow task\n");
                }
                Effect::Dispatch(Dispatch::ActivityTask { scheduled_event_id }) => {
                    writeln!(out, "  dispatch activity #{scheduled_event_id}").unwrap();
                }
                Effect::Dequeue { .. } => unreachable!("handled above"),
            }
        }
        flush(&mut out, &mut dequeued);
        out.push_str(&describe_state(&transition.state));
        out
    }
}

fn describe_state(state: &RunState) -> String {
    let mut out = format!("  = {}", state.status.as_str());
    if let Some(task) = &state.workflow_task {
        write!(out, ", workflow task {}/{}", task.seq, task.attempt).unwrap();
        if task.scheduled_event_id.is_none() {
            write!(out, " transient due {}", time(task.scheduled_time)).unwrap();
        }
    }
    if !state.buffered.is_empty() {
        write!(out, ", {} buffered", state.buffered.len()).unwrap();
    }
    if state.cancel_requested {
        out.push_str(", cancel requested");
    }
    if let Some(v) = &state.pinned_version {
        write!(out, ", pinned to {v}").unwrap();
    }
    out.push('\n');
    for (id, c) in &state.children {
        write!(
            out,
            "  = child {} #{id} {} {}",
            c.workflow_id,
            name(&c.phase),
            name(&c.parent_close_policy)
        )
        .unwrap();
        if let Some(r) = c.run_id {
            write!(out, " run {}", r.0.as_u128()).unwrap();
        }
        out.push('\n');
    }
    for (id, r) in &state.external_requests {
        writeln!(
            out,
            "  = {} to {} #{id}{}",
            if r.cancel { "cancel request" } else { "signal" },
            r.workflow_id,
            if r.done { ", done (buffered)" } else { "" }
        )
        .unwrap();
    }
    for a in state.activities.values() {
        write!(
            out,
            "  = activity {} #{} attempt {}",
            a.activity_id, a.scheduled_event_id, a.attempt
        )
        .unwrap();
        match a.phase {
            ActivityPhase::Scheduled { due, .. } => write!(out, ", waiting until {}", time(due)),
            ActivityPhase::Started { since } => write!(out, ", started at {}", time(since)),
            ActivityPhase::Closed => write!(out, ", closed (result buffered)"),
        }
        .unwrap();
        if let Some(t) = a.last_heartbeat_time {
            write!(out, ", heartbeat at {}", time(t)).unwrap();
        }
        if let Some(d) = &a.heartbeat_details {
            write!(out, ", details {d}").unwrap();
        }
        if a.undelivered > 0 {
            write!(out, ", undelivered {}", a.undelivered).unwrap();
        }
        if a.cancel_requested {
            out.push_str(", cancel requested");
        }
        if let Some(f) = &a.last_failure {
            write!(out, ", last failure {}", failure(f)).unwrap();
        }
        out.push('\n');
    }
    for (id, u) in &state.updates {
        let at = |e: Option<i64>| e.map_or("-".to_owned(), |e| format!("#{e}"));
        writeln!(
            out,
            "  = update {id} {} admitted {} accepted {} completed {}",
            name(&u.stage()),
            at(u.admitted_event_id),
            at(u.accepted_event_id),
            at(u.completed_event_id)
        )
        .unwrap();
    }
    for (id, t) in &state.timers {
        write!(
            out,
            "  = timer {id} #{} fires at {}",
            t.started_event_id,
            time(t.fire_at)
        )
        .unwrap();
        if t.fired {
            out.push_str(", fired (buffered)");
        }
        out.push('\n');
    }
    out
}

/// Whitespace-separated words: `key=value` pairs and positional words.
struct Args<'a> {
    positional: Vec<&'a str>,
    named: BTreeMap<&'a str, &'a str>,
}

impl<'a> Args<'a> {
    fn parse(s: &'a str) -> Args<'a> {
        let mut args = Args {
            positional: Vec::new(),
            named: BTreeMap::new(),
        };
        for word in s.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) => {
                    args.named.insert(k, v);
                }
                None => args.positional.push(word),
            }
        }
        args
    }

    fn pos(&self, i: usize) -> &'a str {
        self.positional.get(i).copied().unwrap_or_default()
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.named.get(key).copied()
    }

    fn flag(&self, name: &str) -> bool {
        self.positional.contains(&name)
    }

    fn num(&self, i: usize) -> i64 {
        self.pos(i).parse().expect("a number")
    }

    fn value(&self, key: &str) -> Option<Value> {
        self.get(key).map(value)
    }

    /// A positional or named text; `""` is the empty string.
    fn text(&self, s: &'a str) -> String {
        if s == "\"\"" {
            String::new()
        } else {
            s.to_owned()
        }
    }
}

fn value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

/// The words of a comma-separated list (none for an absent one).
fn list(s: Option<&str>) -> impl Iterator<Item = &str> {
    s.into_iter().flat_map(|s| s.split(','))
}

/// A run id written as a small number.
fn run_id(n: &str) -> RunId {
    RunId(uuid::Uuid::from_u128(n.parse().expect("a run number")))
}

/// An enum value by its serde name (`ABANDON`).
fn enum_value<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_json::from_value(Value::String(s.to_owned()))
        .unwrap_or_else(|_| panic!("unknown value {s}"))
}

fn duration(s: &str) -> Duration {
    s.parse()
        .unwrap_or_else(|e| panic!("bad duration {s:?}: {e}"))
}

/// A retry policy from `initial=`, `coefficient=`, `max_interval=`,
/// `attempts=` and `non_retryable=A,B`; the default when none is given.
fn retry_spec(args: &Args) -> RetryPolicySpec {
    let dur = |k: &str| args.get(k).map(duration);
    RetryPolicySpec {
        initial_interval: dur("initial"),
        backoff_coefficient: args
            .get("coefficient")
            .map(|c| c.parse().expect("a number")),
        maximum_interval: dur("max_interval"),
        maximum_attempts: args.get("attempts").map(|a| a.parse().expect("a number")),
        non_retryable_error_types: args
            .get("non_retryable")
            .map(|t| t.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    }
}

fn workflow_command(args: &Args) -> WorkflowCommand {
    let dur = |k: &str| args.get(k).map(duration);
    match args.pos(0) {
        "schedule" => {
            let spec = retry_spec(args);
            WorkflowCommand::ScheduleActivityTask(ScheduleActivityTask {
                activity_id: ActivityId(args.text(args.pos(1))),
                activity_type: args.text(args.get("type").unwrap_or("Work")),
                task_queue: args.get("queue").map(|q| TaskQueue(args.text(q))),
                input: args.value("input").unwrap_or(Value::Null),
                schedule_to_close_timeout: dur("s2c"),
                schedule_to_start_timeout: dur("s2s"),
                start_to_close_timeout: dur("stc"),
                heartbeat_timeout: dur("hb"),
                retry_policy: (spec != RetryPolicySpec::default()).then_some(spec),
            })
        }
        "cancel" => WorkflowCommand::RequestCancelActivityTask(RequestCancelActivityTask {
            activity_id: ActivityId(args.text(args.pos(1))),
        }),
        "timer" => WorkflowCommand::StartTimer(StartTimer {
            timer_id: TimerId(args.text(args.pos(1))),
            start_to_fire_timeout: duration(args.pos(2)),
        }),
        "cancel-timer" => WorkflowCommand::CancelTimer(CancelTimer {
            timer_id: TimerId(args.text(args.pos(1))),
        }),
        "marker" => WorkflowCommand::RecordMarker(RecordMarker {
            marker_name: args.text(args.pos(1)),
            details: args.value("details").unwrap_or(Value::Null),
            failure: None,
        }),
        "complete" => WorkflowCommand::CompleteWorkflowExecution(CompleteWorkflowExecution {
            result: args.value("result").unwrap_or(Value::Null),
        }),
        "fail-workflow" => {
            let mut failure = Failure::new(
                args.get("message").unwrap_or("gave up"),
                args.get("type").unwrap_or_default(),
            );
            failure.details = args.value("details");
            failure.non_retryable = args.flag("non_retryable");
            WorkflowCommand::FailWorkflowExecution(FailWorkflowExecution { failure })
        }
        "continue-as-new" => {
            let spec = retry_spec(args);
            WorkflowCommand::ContinueAsNewWorkflowExecution(ContinueAsNewWorkflowExecution {
                workflow_type: args.get("type").map(|t| args.text(t)),
                task_queue: args.get("queue").map(|q| TaskQueue(args.text(q))),
                input: args.value("input").unwrap_or(Value::Null),
                workflow_run_timeout: dur("run_timeout"),
                workflow_task_timeout: dur("task_timeout"),
                memo: args.value("memo"),
                search_attributes: None,
                retry_policy: (spec != RetryPolicySpec::default()).then_some(spec),
                backoff_start_interval: dur("backoff"),
            })
        }
        "cancel-workflow" => WorkflowCommand::CancelWorkflowExecution(CancelWorkflowExecution {
            details: args.value("details"),
        }),
        "complete-update" => WorkflowCommand::CompleteWorkflowUpdate(CompleteWorkflowUpdate {
            update_id: args.text(args.pos(1)),
            result: args.value("result").unwrap_or(Value::Null),
            failure: args
                .get("failure")
                .map(|m| Failure::new(args.text(m), "ApplicationError")),
        }),
        "start-child" => {
            WorkflowCommand::StartChildWorkflowExecution(StartChildWorkflowExecution {
                workflow_id: WorkflowId(args.text(args.pos(1))),
                workflow_type: args.text(args.get("type").unwrap_or("Fulfil")),
                task_queue: args.get("queue").map(|q| TaskQueue(args.text(q))),
                input: args.value("input").unwrap_or(Value::Null),
                workflow_execution_timeout: dur("execution_timeout"),
                workflow_run_timeout: dur("run_timeout"),
                workflow_task_timeout: dur("task_timeout"),
                retry_policy: None,
                workflow_id_reuse_policy: args
                    .get("reuse")
                    .map_or_else(Default::default, enum_value),
                parent_close_policy: args.get("policy").map_or_else(Default::default, enum_value),
                memo: None,
                search_attributes: None,
            })
        }
        "signal-external" => {
            WorkflowCommand::SignalExternalWorkflowExecution(SignalExternalWorkflowExecution {
                workflow_id: WorkflowId(args.text(args.pos(1))),
                run_id: args.get("run").map(run_id),
                signal_name: args.text(args.pos(2)),
                input: args.value("input").unwrap_or(Value::Null),
                child_workflow_only: args.flag("child_only"),
            })
        }
        "cancel-external" => WorkflowCommand::RequestCancelExternalWorkflowExecution(
            RequestCancelExternalWorkflowExecution {
                workflow_id: WorkflowId(args.text(args.pos(1))),
                run_id: args.get("run").map(run_id),
                child_workflow_only: args.flag("child_only"),
                reason: String::new(),
            },
        ),
        other => panic!("unknown workflow command {other:?}"),
    }
}

/// Scenario run ids are small numbers (`RunId(1)` starts, the next run of
/// a chain is `RunId(2)`): rendered as that number.
fn short(r: RunId) -> String {
    r.0.as_u128().to_string()
}

/// Times are rendered as offsets from the epoch, which is where every
/// scenario's clock starts.
fn time(t: Timestamp) -> String {
    Duration(t.0).to_string()
}

/// The serde name of an enum value (`NON_RETRYABLE_FAILURE`).
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

fn failure(f: &Failure) -> String {
    let mut out = String::new();
    if !f.error_type.is_empty() {
        write!(out, "{} ", f.error_type).unwrap();
    }
    write!(out, "{:?}", f.message).unwrap();
    if f.non_retryable {
        out.push_str(" non_retryable");
    }
    if let Some(d) = &f.details {
        write!(out, " details={d}").unwrap();
    }
    if let Some(cause) = &f.cause {
        write!(out, " (cause: {})", failure(cause)).unwrap();
    }
    out
}

fn task_name(task: &Task) -> String {
    match task {
        Task::ActivityTimeout { attempt, .. } if *attempt > 0 => {
            format!("{} attempt {attempt}", task.key())
        }
        Task::UserTimer {
            started_event_id, ..
        } => format!("{} #{started_event_id}", task.key()),
        Task::ApplyParentClosePolicy {
            workflow_id,
            policy,
            ..
        } => format!("{} {workflow_id} {}", task.key(), name(policy)),
        _ => task.key(),
    }
}

fn retry_policy(p: &RetryPolicy) -> String {
    let mut out = format!(
        "retry={}*{}^n max_interval={} attempts={}",
        p.initial_interval, p.backoff_coefficient, p.maximum_interval, p.maximum_attempts
    );
    if !p.non_retryable_error_types.is_empty() {
        write!(
            out,
            " non_retryable={}",
            p.non_retryable_error_types.join(",")
        )
        .unwrap();
    }
    out
}

/// `wf` or `wf/run N` (run ids are small numbers in scenarios).
fn execution(e: &WorkflowExecution) -> String {
    match e.run_id {
        Some(r) => format!("{}/run {}", e.workflow_id, r.0.as_u128()),
        None => e.workflow_id.to_string(),
    }
}

fn child(c: &ChildExecution) -> String {
    format!(
        "{} initiated={} started={}",
        execution(&c.workflow_execution),
        c.initiated_event_id,
        c.started_event_id
    )
}

pub(super) fn event(e: &Event) -> String {
    use EventAttributes as A;
    let body = match &e.attributes {
        A::WorkflowExecutionStarted(a) => {
            let mut s = format!(
                "type={} queue={} task_timeout={}",
                a.workflow_type, a.task_queue, a.workflow_task_timeout
            );
            if let Some(d) = a.workflow_run_timeout {
                write!(s, " run_timeout={d}").unwrap();
            }
            if let Some(d) = a.workflow_execution_timeout {
                write!(s, " execution_timeout={d}").unwrap();
            }
            if let Some(v) = &a.pinned_version {
                write!(s, " pinned_version={v}").unwrap();
            }
            if let Some(p) = &a.parent {
                write!(
                    s,
                    " parent={}/run {} initiated={} {}",
                    p.workflow_id,
                    p.run_id.0.as_u128(),
                    p.initiated_event_id,
                    name(&p.parent_close_policy)
                )
                .unwrap();
            }
            if a.attempt != 1 {
                write!(s, " attempt={}", a.attempt).unwrap();
            }
            if let Some(t) = a.workflow_execution_expiration_time {
                write!(s, " expires={}", time(t)).unwrap();
            }
            if let Some(d) = a.first_workflow_task_backoff {
                write!(s, " backoff={d}").unwrap();
            }
            if let Some(i) = a.initiator {
                write!(s, " initiator={}", name(&i)).unwrap();
            }
            // Every run is the first and original run of itself; only a
            // chain's later runs say more.
            if let (Some(r), Some(first)) = (a.continued_execution_run_id, a.first_execution_run_id)
            {
                write!(s, " continued={} first={}", short(r), short(first)).unwrap();
            }
            if let Some(f) = &a.continued_failure {
                write!(s, " continued_failure={}", failure(f)).unwrap();
            }
            if let Some(m) = &a.memo {
                write!(s, " memo={m}").unwrap();
            }
            if let Some(p) = &a.retry_policy {
                write!(s, " {}", retry_policy(p)).unwrap();
            }
            if !a.input.is_null() {
                write!(s, " input={}", a.input).unwrap();
            }
            s
        }
        A::WorkflowTaskScheduled(a) => format!("attempt={}", a.attempt),
        A::WorkflowTaskStarted(a) => format!(
            "scheduled={}{}",
            a.scheduled_event_id,
            if a.suggest_continue_as_new {
                " suggest_continue_as_new"
            } else {
                ""
            }
        ),
        A::WorkflowTaskCompleted(a) => {
            format!(
                "scheduled={} started={}",
                a.scheduled_event_id, a.started_event_id
            )
        }
        A::WorkflowTaskFailed(a) => {
            let mut s = format!(
                "scheduled={} started={} {} {:?}",
                a.scheduled_event_id,
                a.started_event_id,
                name(&a.cause),
                a.failure.message
            );
            if let (Some(base), Some(new)) = (a.base_run_id, a.new_run_id) {
                write!(s, " base={} new={}", short(base), short(new)).unwrap();
            }
            s
        }
        A::WorkflowTaskTimedOut(a) => format!(
            "scheduled={} started={} {}",
            a.scheduled_event_id,
            a.started_event_id,
            name(&a.timeout_type)
        ),
        A::ActivityTaskScheduled(a) => {
            let mut s = format!(
                "{} type={} stc={}",
                a.activity_id, a.activity_type, a.start_to_close_timeout
            );
            for (k, d) in [
                ("s2c", a.schedule_to_close_timeout),
                ("s2s", a.schedule_to_start_timeout),
                ("hb", a.heartbeat_timeout),
            ] {
                if let Some(d) = d {
                    write!(s, " {k}={d}").unwrap();
                }
            }
            // Only a queue other than the scenarios' workflow queue is news.
            if a.task_queue.as_str() != "orders" {
                write!(s, " queue={}", a.task_queue).unwrap();
            }
            if a.retry_policy != RetryPolicy::default() {
                write!(s, " {}", retry_policy(&a.retry_policy)).unwrap();
            }
            if !a.input.is_null() {
                write!(s, " input={}", a.input).unwrap();
            }
            if a.inline {
                s.push_str(" inline");
            }
            s
        }
        A::ActivityTaskStarted(a) => {
            let mut s = format!("scheduled={} attempt={}", a.scheduled_event_id, a.attempt);
            if let Some(f) = &a.last_failure {
                write!(s, " last_failure={}", failure(f)).unwrap();
            }
            s
        }
        A::ActivityTaskCompleted(a) => format!(
            "scheduled={} started={} result={}",
            a.scheduled_event_id, a.started_event_id, a.result
        ),
        A::ActivityTaskFailed(a) => format!(
            "scheduled={} started={} {} {}",
            a.scheduled_event_id,
            a.started_event_id,
            name(&a.retry_state),
            failure(&a.failure)
        ),
        A::ActivityTaskTimedOut(a) => format!(
            "scheduled={} started={} {} {}",
            a.scheduled_event_id,
            a.started_event_id,
            name(&a.retry_state),
            failure(&a.failure)
        ),
        A::ActivityTaskCancelRequested(a) => format!("scheduled={}", a.scheduled_event_id),
        A::ActivityTaskCanceled(a) => {
            let mut s = format!(
                "scheduled={} started={}",
                a.scheduled_event_id, a.started_event_id
            );
            if let Some(d) = &a.details {
                write!(s, " details={d}").unwrap();
            }
            s
        }
        A::TimerStarted(a) => format!("{} after={}", a.timer_id, a.start_to_fire_timeout),
        A::TimerFired(a) => format!("{} started={}", a.timer_id, a.started_event_id),
        A::TimerCanceled(a) => format!("{} started={}", a.timer_id, a.started_event_id),
        A::MarkerRecorded(a) => format!("{} details={}", a.marker_name, a.details),
        A::UpsertWorkflowSearchAttributes(a) => {
            serde_json::to_string(&a.search_attributes).expect("search attributes serialize")
        }
        A::WorkflowExecutionCompleted(a) => format!("result={}", a.result),
        A::WorkflowExecutionFailed(a) => {
            let mut s = format!("{} {}", name(&a.retry_state), failure(&a.failure));
            if let Some(r) = a.new_execution_run_id {
                write!(s, " new_run={}", short(r)).unwrap();
            }
            s
        }
        A::WorkflowExecutionTimedOut(a) => {
            let mut s = name(&a.retry_state);
            if let Some(r) = a.new_execution_run_id {
                write!(s, " new_run={}", short(r)).unwrap();
            }
            s
        }
        A::WorkflowExecutionContinuedAsNew(a) => {
            let mut s = format!(
                "new_run={} type={} queue={} task_timeout={} input={}",
                short(a.new_execution_run_id),
                a.workflow_type,
                a.task_queue,
                a.workflow_task_timeout,
                a.input
            );
            if let Some(d) = a.workflow_run_timeout {
                write!(s, " run_timeout={d}").unwrap();
            }
            if let Some(d) = a.backoff_start_interval {
                write!(s, " backoff={d}").unwrap();
            }
            if let Some(m) = &a.memo {
                write!(s, " memo={m}").unwrap();
            }
            s
        }
        A::WorkflowExecutionCanceled(a) => match &a.details {
            Some(d) => format!("details={d}"),
            None => String::new(),
        },
        A::WorkflowExecutionTerminated(a) => format!("{:?}", a.reason),
        A::WorkflowExecutionSignaled(a) => {
            let mut s = format!("{} input={}", a.signal_name, a.input);
            if let Some(r) = &a.request_id {
                write!(s, " request_id={r}").unwrap();
            }
            s
        }
        A::WorkflowExecutionCancelRequested(a) => format!("{:?}", a.cause),
        A::WorkflowExecutionOptionsUpdated(a) => {
            let mut s = format!("pinned_version={}", a.versioning_override.pinned_version);
            if let Some(v) = &a.previous_pinned_version {
                write!(s, " previous={v}").unwrap();
            }
            write!(s, " reason={:?}", a.reason).unwrap();
            if let Some(i) = &a.identity {
                write!(s, " identity={i}").unwrap();
            }
            s
        }
        A::WorkflowExecutionUpdateAdmitted(a) => {
            format!("{} {} input={}", a.update_id, a.update_name, a.input)
        }
        A::WorkflowExecutionUpdateAccepted(a) => {
            format!("{} admitted={}", a.update_id, a.admitted_event_id)
        }
        A::WorkflowExecutionUpdateCompleted(a) => {
            let outcome = match &a.failure {
                Some(f) => format!("failure={}", failure(f)),
                None => format!("result={}", a.result),
            };
            format!("{} accepted={} {outcome}", a.update_id, a.accepted_event_id)
        }
        A::StartChildWorkflowExecutionInitiated(a) => {
            let mut s = format!(
                "{} type={} queue={} task_timeout={} {}",
                a.workflow_id,
                a.workflow_type,
                a.task_queue,
                a.workflow_task_timeout,
                name(&a.parent_close_policy)
            );
            if !a.input.is_null() {
                write!(s, " input={}", a.input).unwrap();
            }
            s
        }
        A::StartChildWorkflowExecutionFailed(a) => format!(
            "{} initiated={} {}",
            a.workflow_id,
            a.initiated_event_id,
            name(&a.cause)
        ),
        A::ChildWorkflowExecutionStarted(a) => format!(
            "{} initiated={}",
            execution(&a.workflow_execution),
            a.initiated_event_id
        ),
        A::ChildWorkflowExecutionCompleted(a) => {
            format!("{} result={}", child(&a.child), a.result)
        }
        A::ChildWorkflowExecutionFailed(a) => format!(
            "{} {} {}",
            child(&a.child),
            name(&a.retry_state),
            failure(&a.failure)
        ),
        A::ChildWorkflowExecutionCanceled(a) => child(&a.child),
        A::ChildWorkflowExecutionTimedOut(a) => {
            format!("{} {}", child(&a.child), name(&a.retry_state))
        }
        A::ChildWorkflowExecutionTerminated(a) => child(&a.child),
        A::SignalExternalWorkflowExecutionInitiated(a) => format!(
            "{} {} input={}{}",
            execution(&a.workflow_execution),
            a.signal_name,
            a.input,
            if a.child_workflow_only {
                " child_only"
            } else {
                ""
            }
        ),
        A::RequestCancelExternalWorkflowExecutionInitiated(a) => format!(
            "{}{}",
            execution(&a.workflow_execution),
            if a.child_workflow_only {
                " child_only"
            } else {
                ""
            }
        ),
        A::SignalExternalWorkflowExecutionFailed(a) => format!(
            "{} initiated={} {}",
            execution(&a.workflow_execution),
            a.initiated_event_id,
            name(&a.cause)
        ),
        A::RequestCancelExternalWorkflowExecutionFailed(a) => format!(
            "{} initiated={} {}",
            execution(&a.workflow_execution),
            a.initiated_event_id,
            name(&a.cause)
        ),
        A::ExternalWorkflowExecutionSignaled(a) => format!(
            "{} initiated={}",
            execution(&a.workflow_execution),
            a.initiated_event_id
        ),
        A::ExternalWorkflowExecutionCancelRequested(a) => format!(
            "{} initiated={}",
            execution(&a.workflow_execution),
            a.initiated_event_id
        ),
    };
    let line = format!(
        "{} @{} {} {}",
        e.event_id,
        time(e.event_time),
        e.attributes.event_type(),
        body
    );
    line.trim_end().to_owned()
}
