//! Deterministic simulation of the engine, the store and the edges, with no
//! real IO (STYLE.md section 6b; DESIGN.md invariants).
//!
//! A [`Sim`] owns a seeded RNG, a simulated clock, an in-memory store that
//! commits [`Transition`]s the way the real store does (events, snapshot and
//! task rows in one step; effects in order: Enqueue upserts by key with a
//! fresh row id, Dequeue and DequeueAll delete), and a fake SDK endpoint
//! that runs a scripted workflow and misbehaves at random: it fails, times
//! out, answers garbage, never answers, or answers twice. Each step the RNG
//! picks one thing to happen: a push result is delivered (in any order) or
//! lost, an old result is delivered again, the clock moves to the next due
//! row, a due or lease-expired row is claimed, or the node "crashes" and
//! forgets every push in flight, keeping only the store.
//!
//! After every step the DESIGN.md invariants are checked. After a bounded
//! chaotic phase the endpoint turns well-behaved and every run must close
//! (liveness).
//!
//! `SIM_SEED=<n>` re-runs one seed, `SIM_SEEDS=<n>` runs seeds `0..n`
//! (default 256); a failure prints the seed that reproduces it.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use baton::engine::{
    self, ActivityToken, CancelTimer, Command, CompleteWorkflowExecution, Ctx, Dispatch, Effect,
    Event, EventAttributes, Failure, Limits, Queue, Rejection, RequestCancelActivityTask,
    RetryPolicySpec, RunState, RunStatus, ScheduleActivityTask, StartRun, StartTimer, Task,
    TimeoutType, Transition, WorkflowCommand, WorkflowTaskFailedCause, WorkflowTaskToken,
};
use baton::ids::{ActivityId, RunId, TimerId};
use baton::time::{Duration, Timestamp};

/// Runs per seed, each with its own scripted workflow.
const RUNS: usize = 6;
/// Steps of the chaotic phase.
const CHAOS_STEPS: usize = 1_500;
/// Upper bound on the well-behaved phase that must close every run.
const CALM_STEPS: usize = 4_000;
const START: Timestamp = Timestamp(1_700_000_000_000);

#[test]
fn simulated_runs_keep_the_invariants_and_finish() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SIM_SEEDS").map_or(256, |s| s.parse().expect("a number"));
            (0..n).collect()
        }
    };
    let mut totals = Stats::default();
    for seed in seeds {
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut sim = Sim::new(seed);
            sim.run();
            sim.stats
        }));
        match result {
            Ok(stats) => totals.add(&stats),
            Err(e) => {
                eprintln!("simulation failed: rerun with SIM_SEED={seed}");
                panic::resume_unwind(e);
            }
        }
    }
    if std::env::var("SIM_VERBOSE").is_ok() {
        eprintln!("{totals:#?}");
    }
}

/// What the simulation exercised, to see that it exercises something.
#[derive(Debug, Default)]
struct Stats {
    steps: usize,
    accepted: usize,
    stale: usize,
    duplicates_refused: usize,
    crashes: usize,
    rows_fired: usize,
    closed: BTreeMap<String, usize>,
    event_types: BTreeMap<&'static str, usize>,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.steps += other.steps;
        self.accepted += other.accepted;
        self.stale += other.stale;
        self.duplicates_refused += other.duplicates_refused;
        self.crashes += other.crashes;
        self.rows_fired += other.rows_fired;
        for (k, v) in &other.closed {
            *self.closed.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.event_types {
            *self.event_types.entry(k).or_default() += v;
        }
    }
}

// ---------------------------------------------------------------------------
// The store.

/// A task row: what the `tasks` table holds per (run, key).
#[derive(Clone, Debug)]
struct Row {
    /// Changes whenever the row is replaced, so a claimer deletes only the
    /// row it claimed.
    id: u64,
    task: Task,
    visible_at: Timestamp,
    lease: Duration,
}

struct StoredRun {
    state: RunState,
    version: i64,
    history: Vec<Event>,
    rows: BTreeMap<String, Row>,
}

#[derive(Default)]
struct Store {
    runs: Vec<StoredRun>,
    next_row_id: u64,
}

impl Store {
    /// Commits one transition atomically. `expected` is the version the
    /// transition was decided on (optimistic concurrency).
    fn commit(&mut self, run: usize, expected: Option<i64>, t: &Transition) {
        let stored = match expected {
            None => {
                self.runs.push(StoredRun {
                    state: t.state.clone(),
                    version: 0,
                    history: Vec::new(),
                    rows: BTreeMap::new(),
                });
                assert_eq!(self.runs.len() - 1, run);
                &mut self.runs[run]
            }
            Some(v) => {
                let stored = &mut self.runs[run];
                assert_eq!(stored.version, v, "a commit on a stale version");
                stored
            }
        };
        // Events continue the history densely.
        let first = stored.history.len() as i64 + 1;
        for (e, id) in t.events.iter().zip(first..) {
            assert_eq!(e.event_id, id, "event ids are dense and ascending");
        }
        assert_eq!(t.state.next_event_id, first + t.events.len() as i64);
        stored.history.extend(t.events.iter().cloned());
        stored.state = t.state.clone();
        stored.version += 1;
        for effect in &t.effects {
            match effect {
                Effect::Enqueue { task, at, lease } => {
                    self.next_row_id += 1;
                    stored.rows.insert(
                        task.key(),
                        Row {
                            id: self.next_row_id,
                            task: task.clone(),
                            visible_at: *at,
                            lease: *lease,
                        },
                    );
                }
                Effect::Dequeue { key } => {
                    stored.rows.remove(key);
                }
                Effect::DequeueAll => stored.rows.clear(),
                Effect::Dispatch(_) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The fake SDK endpoint.

/// One step of a scripted workflow.
#[derive(Clone, Copy, Debug)]
enum Step {
    Activity(&'static str),
    Sleep(&'static str, i64),
    /// Run an activity against a timer: whichever closes first wins; the
    /// loser is canceled.
    Race(&'static str, &'static str, i64),
}

const SCRIPTS: [&[Step]; 3] = [
    &[
        Step::Activity("a0"),
        Step::Activity("a1"),
        Step::Activity("a2"),
    ],
    &[
        Step::Activity("a0"),
        Step::Sleep("nap", 2_000),
        Step::Activity("a1"),
        Step::Activity("a2"),
    ],
    &[
        Step::Activity("a0"),
        Step::Race("a1", "deadline", 3_000),
        Step::Activity("a2"),
    ],
];

fn schedule(id: &str) -> WorkflowCommand {
    // Each activity has its own mix of timeouts; all retry at most three
    // times, so every activity closes eventually.
    let secs = |s: i64| Some(Duration::from_secs(s));
    let (s2c, s2s, hb) = match id {
        "a0" => (None, secs(5), None),
        "a1" => (None, None, secs(1)),
        _ => (secs(30), None, None),
    };
    WorkflowCommand::ScheduleActivityTask(ScheduleActivityTask {
        activity_id: ActivityId(id.to_owned()),
        activity_type: format!("Do-{id}"),
        task_queue: None,
        input: Value::from(id),
        schedule_to_close_timeout: s2c,
        schedule_to_start_timeout: s2s,
        start_to_close_timeout: secs(4),
        heartbeat_timeout: hb,
        retry_policy: Some(RetryPolicySpec {
            maximum_attempts: Some(3),
            non_retryable_error_types: vec!["Fatal".into()],
            ..RetryPolicySpec::default()
        }),
    })
}

/// What the workflow code decides after replaying `history` from event 1
/// (the SDK keeps no state between tasks).
fn replay_workflow(script: &[Step], history: &[Event]) -> Vec<WorkflowCommand> {
    let mut scheduled: BTreeMap<&str, i64> = BTreeMap::new();
    let mut closed = BTreeSet::new();
    let mut cancel_requested = BTreeSet::new();
    let mut timers_started = BTreeSet::new();
    let mut timers_fired = BTreeSet::new();
    let mut timers_done = BTreeSet::new();
    for e in history {
        match &e.attributes {
            EventAttributes::ActivityTaskScheduled(a) => {
                let id = ["a0", "a1", "a2"]
                    .into_iter()
                    .find(|id| *id == a.activity_id.as_str())
                    .expect("only scripted activities are scheduled");
                scheduled.insert(id, e.event_id);
            }
            EventAttributes::ActivityTaskCompleted(a) => {
                closed.insert(a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskFailed(a) => {
                closed.insert(a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskTimedOut(a) => {
                closed.insert(a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskCanceled(a) => {
                closed.insert(a.scheduled_event_id);
            }
            EventAttributes::ActivityTaskCancelRequested(a) => {
                cancel_requested.insert(a.scheduled_event_id);
            }
            EventAttributes::TimerStarted(t) => {
                timers_started.insert(t.timer_id.as_str().to_owned());
            }
            EventAttributes::TimerFired(t) => {
                timers_fired.insert(t.timer_id.as_str().to_owned());
                timers_done.insert(t.timer_id.as_str().to_owned());
            }
            EventAttributes::TimerCanceled(t) => {
                timers_done.insert(t.timer_id.as_str().to_owned());
            }
            _ => {}
        }
    }
    let timer = |id: &str, ms: i64| {
        WorkflowCommand::StartTimer(StartTimer {
            timer_id: TimerId(id.to_owned()),
            start_to_fire_timeout: Duration(ms),
        })
    };
    let mut commands = Vec::new();
    for step in script {
        match *step {
            Step::Activity(id) => match scheduled.get(id) {
                None => {
                    commands.push(schedule(id));
                    return commands;
                }
                Some(sched) if !closed.contains(sched) => return commands,
                Some(_) => {}
            },
            Step::Sleep(id, ms) => {
                if !timers_started.contains(id) {
                    commands.push(timer(id, ms));
                    return commands;
                }
                if !timers_fired.contains(id) {
                    return commands;
                }
            }
            Step::Race(act, t, ms) => {
                let Some(&sched) = scheduled.get(act) else {
                    commands.push(schedule(act));
                    commands.push(timer(t, ms));
                    return commands;
                };
                if closed.contains(&sched) {
                    if !timers_done.contains(t) {
                        commands.push(WorkflowCommand::CancelTimer(CancelTimer {
                            timer_id: TimerId(t.to_owned()),
                        }));
                    }
                    continue;
                }
                if timers_fired.contains(t) && !cancel_requested.contains(&sched) {
                    commands.push(WorkflowCommand::RequestCancelActivityTask(
                        RequestCancelActivityTask {
                            activity_id: ActivityId(act.to_owned()),
                        },
                    ));
                }
                return commands;
            }
        }
    }
    commands.push(WorkflowCommand::CompleteWorkflowExecution(
        CompleteWorkflowExecution {
            result: Value::from("done"),
        },
    ));
    commands
}

/// How the endpoint answers a workflow task.
#[derive(Clone, Debug)]
enum WftAnswer {
    Commands {
        commands: Vec<WorkflowCommand>,
        /// Deliberately invalid, so a refusal is expected.
        buggy: bool,
    },
    /// The SDK reports a failure (non-determinism).
    Fail,
    /// 5xx or an unparseable body: a transport failure for the dispatcher.
    Garbage,
    /// The HTTP call timed out.
    TimedOut,
}

/// How the endpoint answers an activity task, in order.
#[derive(Clone, Debug)]
enum ActivityAnswer {
    Heartbeat,
    Complete,
    Fail {
        non_retryable: bool,
    },
    /// Connection refused, 429, 503: the handler never ran.
    Undelivered,
}

#[derive(Clone, Debug)]
enum Push {
    WorkflowTask {
        run: usize,
        token: WorkflowTaskToken,
        answer: WftAnswer,
    },
    Activity {
        run: usize,
        token: ActivityToken,
        answers: Vec<ActivityAnswer>,
    },
}

// ---------------------------------------------------------------------------
// The simulation.

struct Sim {
    seed: u64,
    rng: StdRng,
    now: Timestamp,
    limits: Limits,
    store: Store,
    scripts: Vec<&'static [Step]>,
    /// Pushes whose answers have not arrived yet; lost in a crash.
    in_flight: Vec<Push>,
    /// SDK answers already delivered once, to deliver again.
    delivered: Vec<(usize, Command)>,
    /// The endpoint behaves (the liveness phase).
    calm: bool,
    checker: Vec<Checker>,
    stats: Stats,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let scripts = (0..RUNS)
            .map(|_| SCRIPTS[rng.gen_range(0..SCRIPTS.len())])
            .collect();
        // Some seeds run against a small history limit, so that runs get
        // terminated by it mid-flight.
        let mut limits = Limits::default();
        if rng.gen_bool(0.25) {
            limits.max_history_events = rng.gen_range(20..60);
            limits.suggest_continue_as_new_events = 10;
        }
        Sim {
            seed,
            rng,
            now: START,
            limits,
            store: Store::default(),
            scripts,
            in_flight: Vec::new(),
            delivered: Vec::new(),
            calm: false,
            checker: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            now: self.now,
            limits: self.limits.clone(),
            next_run_id: RunId::generate(),
        }
    }

    fn run(&mut self) {
        for run in 0..RUNS {
            let run_timeout = self
                .rng
                .gen_bool(0.2)
                .then(|| Duration::from_secs(self.rng.gen_range(20..120)));
            let cmd = StartRun {
                namespace: "default".into(),
                workflow_id: format!("wf-{run}").as_str().into(),
                run_id: RunId(uuid::Uuid::from_u128(
                    (u128::from(self.seed) << 32) | run as u128,
                )),
                workflow_type: "Scripted".into(),
                task_queue: "sim".into(),
                input: Value::Null,
                execution_timeout: None,
                run_timeout,
                task_timeout: Some(Duration::from_secs(5)),
                request_id: None,
                identity: None,
                pinned_version: None,
                parent: None,
                memo: None,
                retry_policy: None,
                chain: None,
            };
            let t = engine::start(cmd, &self.ctx()).expect("a valid start");
            self.checker.push(Checker::default());
            self.commit(run, None, &t);
        }
        for _ in 0..CHAOS_STEPS {
            if self.all_closed() {
                break;
            }
            self.chaos_step();
            self.check_all();
        }
        self.calm = true;
        let mut steps = 0;
        while !self.all_closed() {
            assert!(
                steps < CALM_STEPS,
                "runs still open after {CALM_STEPS} calm steps: {:?}",
                self.open_runs()
            );
            self.calm_step();
            self.check_all();
            steps += 1;
        }
        // Final: a full replay of every history gives its snapshot.
        for stored in &self.store.runs {
            let s = &stored.state;
            let replayed = RunState::replay(
                s.namespace.clone(),
                s.workflow_id.clone(),
                s.run_id,
                &stored.history,
            );
            assert_eq!(replayed.history_view(), s.history_view());
            *self
                .stats
                .closed
                .entry(s.status.as_str().to_owned())
                .or_default() += 1;
            for e in &stored.history {
                *self
                    .stats
                    .event_types
                    .entry(e.attributes.event_type())
                    .or_default() += 1;
            }
        }
    }

    fn all_closed(&self) -> bool {
        self.store.runs.iter().all(|r| r.state.status.is_closed())
    }

    fn open_runs(&self) -> Vec<(usize, RunStatus, usize, usize)> {
        self.store
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.state.status.is_closed())
            .map(|(i, r)| (i, r.state.status, r.history.len(), r.rows.len()))
            .collect()
    }

    fn chaos_step(&mut self) {
        self.stats.steps += 1;
        match self.rng.gen_range(0..100) {
            0..=39 => self.deliver_one(),
            40..=47 => self.lose_one(),
            48..=53 => self.deliver_duplicate(),
            54..=77 => self.claim_one(),
            78..=89 => self.advance_to_next_row(),
            90..=92 => {
                // The node dies: every push in flight is forgotten; the
                // store (and its leases) is all that is left.
                self.stats.crashes += 1;
                self.in_flight.clear();
            }
            93..=97 => {
                let d = self.rng.gen_range(0..3_000);
                self.now = self.now.saturating_add(Duration(d));
            }
            _ => {
                if self.rng.gen_bool(0.05) {
                    let run = self.rng.gen_range(0..RUNS);
                    let cmd = Command::TerminateWorkflow {
                        reason: "operator".into(),
                        details: None,
                        identity: None,
                    };
                    let _ = self.apply(run, cmd);
                }
            }
        }
    }

    fn calm_step(&mut self) {
        self.stats.steps += 1;
        if !self.in_flight.is_empty() {
            self.deliver_one();
        } else if self.due_rows().is_empty() {
            let next = self.next_visible_at();
            let next = next.expect("an open run has a row to move it forward");
            self.now = self.now.max(next);
        } else {
            self.claim_one();
        }
    }

    /// Rows visible now, as (run, key).
    fn due_rows(&self) -> Vec<(usize, String)> {
        let mut due = Vec::new();
        for (run, stored) in self.store.runs.iter().enumerate() {
            for (key, row) in &stored.rows {
                if row.visible_at <= self.now {
                    due.push((run, key.clone()));
                }
            }
        }
        due
    }

    fn next_visible_at(&self) -> Option<Timestamp> {
        self.store
            .runs
            .iter()
            .flat_map(|r| r.rows.values().map(|row| row.visible_at))
            .min()
    }

    fn advance_to_next_row(&mut self) {
        if let Some(next) = self.next_visible_at() {
            self.now = self.now.max(next);
        }
        self.claim_one();
    }

    /// Loads, decides and commits one command, as `apply` does. Accepted
    /// transitions hand their pushes to the (simulated) dispatcher.
    fn apply(&mut self, run: usize, cmd: Command) -> Result<(), Rejection> {
        let stored = &self.store.runs[run];
        let (state, version) = (stored.state.clone(), stored.version);
        match engine::decide(&state, cmd.clone(), &self.ctx()) {
            Ok(t) => {
                assert!(!state.status.is_closed(), "a closed run accepted {cmd:?}");
                self.stats.accepted += 1;
                self.commit(run, Some(version), &t);
                Ok(())
            }
            Err(rejection) => {
                match &rejection {
                    Rejection::Stale(_) => self.stats.stale += 1,
                    Rejection::RunClosed(status) => assert_eq!(*status, state.status),
                    other => panic!("unexpected rejection of {cmd:?}: {other}"),
                }
                Err(rejection)
            }
        }
    }

    fn commit(&mut self, run: usize, expected: Option<i64>, t: &Transition) {
        let before = self.store.runs.get(run).map(|r| r.history.len());
        self.store.commit(run, expected, t);
        let stored = &self.store.runs[run];
        self.checker[run].observe(&stored.history[before.unwrap_or(0)..], &stored.state);
        for effect in &t.effects {
            if let Effect::Dispatch(d) = effect {
                assert!(!t.state.status.is_closed(), "a push for a closed run");
                match d {
                    Dispatch::WorkflowTask => self.push_workflow_task(run),
                    Dispatch::ActivityTask { scheduled_event_id } => {
                        self.push_activity(run, *scheduled_event_id);
                    }
                }
            }
        }
    }

    /// Pushes the run's current workflow task: the endpoint replays the
    /// history plus the transient events and decides its answer now.
    fn push_workflow_task(&mut self, run: usize) {
        let stored = &self.store.runs[run];
        let view = engine::workflow_task_view(&stored.state, &self.ctx())
            .expect("a workflow task row or push has a task in flight");
        let mut history = stored.history.clone();
        history.extend(view.transient_events.iter().cloned());
        let mut commands = replay_workflow(self.scripts[run], &history);
        let answer = if self.calm {
            WftAnswer::Commands {
                commands,
                buggy: false,
            }
        } else {
            match self.rng.gen_range(0..100) {
                0..=74 => WftAnswer::Commands {
                    commands,
                    buggy: false,
                },
                75..=79 => {
                    commands.push(WorkflowCommand::CancelTimer(CancelTimer {
                        timer_id: TimerId("no-such-timer".into()),
                    }));
                    WftAnswer::Commands {
                        commands,
                        buggy: true,
                    }
                }
                80..=84 => WftAnswer::Fail,
                85..=89 => WftAnswer::Garbage,
                90..=94 => WftAnswer::TimedOut,
                // Never answers.
                _ => return,
            }
        };
        self.in_flight.push(Push::WorkflowTask {
            run,
            token: view.token,
            answer,
        });
    }

    fn push_activity(&mut self, run: usize, scheduled_event_id: i64) {
        let act = &self.store.runs[run].state.activities[&scheduled_event_id];
        let token = ActivityToken {
            scheduled_event_id,
            attempt: act.attempt,
        };
        let answers = if self.calm {
            vec![ActivityAnswer::Complete]
        } else {
            match self.rng.gen_range(0..100) {
                0..=54 => vec![ActivityAnswer::Complete],
                55..=64 => vec![ActivityAnswer::Heartbeat, ActivityAnswer::Complete],
                65..=79 => vec![ActivityAnswer::Fail {
                    non_retryable: false,
                }],
                80..=83 => vec![ActivityAnswer::Fail {
                    non_retryable: true,
                }],
                84..=91 => vec![ActivityAnswer::Undelivered],
                // Hangs: only a timeout will tell.
                _ => return,
            }
        };
        self.in_flight.push(Push::Activity {
            run,
            token,
            answers,
        });
    }

    /// Delivers the answer of a random push in flight (so out of order).
    fn deliver_one(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let idx = self.rng.gen_range(0..self.in_flight.len());
        let push = self.in_flight.swap_remove(idx);
        match push {
            Push::WorkflowTask { run, token, answer } => {
                let (cmd, buggy, duplicable) = match answer {
                    WftAnswer::Commands { commands, buggy } => (
                        Command::CompleteWorkflowTask {
                            token,
                            commands,
                            identity: None,
                        },
                        buggy,
                        true,
                    ),
                    WftAnswer::Fail => (
                        Command::FailWorkflowTask {
                            token,
                            cause: WorkflowTaskFailedCause::NonDeterministicError,
                            failure: Failure::new("replay diverged", ""),
                        },
                        true,
                        true,
                    ),
                    WftAnswer::Garbage | WftAnswer::TimedOut => (
                        Command::WorkflowTaskUndelivered {
                            token,
                            timed_out: matches!(answer, WftAnswer::TimedOut),
                            error: "bad answer".into(),
                        },
                        true,
                        false,
                    ),
                };
                let before = self.store.runs[run].history.len();
                if self.apply(run, cmd.clone()).is_ok() && !buggy {
                    // A correct SDK's answer is refused only when new
                    // events arrived meanwhile.
                    for e in &self.store.runs[run].history[before..] {
                        if let EventAttributes::WorkflowTaskFailed(f) = &e.attributes {
                            assert_eq!(
                                f.cause,
                                WorkflowTaskFailedCause::UnhandledCommand,
                                "a correct answer was refused: {f:?}"
                            );
                        }
                    }
                }
                if duplicable {
                    self.remember(run, cmd);
                }
            }
            Push::Activity {
                run,
                token,
                mut answers,
            } => {
                let answer = answers.remove(0);
                let cancel_requested = self.store.runs[run]
                    .state
                    .activities
                    .get(&token.scheduled_event_id)
                    .is_some_and(|a| a.cancel_requested && a.attempt == token.attempt);
                let cmd = match answer {
                    ActivityAnswer::Complete if cancel_requested && self.rng.gen_bool(0.5) => {
                        Command::ReportActivityCanceled {
                            token,
                            details: None,
                        }
                    }
                    ActivityAnswer::Complete => Command::CompleteActivity {
                        token,
                        result: Value::from(token.attempt),
                    },
                    ActivityAnswer::Fail { non_retryable } => {
                        let error_type = if non_retryable && self.rng.gen_bool(0.5) {
                            "Fatal"
                        } else {
                            "IOError"
                        };
                        let mut failure = Failure::new("boom", error_type);
                        failure.non_retryable = non_retryable && error_type != "Fatal";
                        Command::FailActivity { token, failure }
                    }
                    ActivityAnswer::Heartbeat => Command::RecordActivityHeartbeat {
                        token,
                        details: Some(Value::from(token.attempt)),
                    },
                    ActivityAnswer::Undelivered => Command::ActivityUndelivered {
                        token,
                        error: "503".into(),
                    },
                };
                let _ = self.apply(run, cmd.clone());
                if matches!(
                    cmd,
                    Command::CompleteActivity { .. }
                        | Command::FailActivity { .. }
                        | Command::ReportActivityCanceled { .. }
                ) {
                    self.remember(run, cmd);
                }
                if !answers.is_empty() {
                    self.in_flight.push(Push::Activity {
                        run,
                        token,
                        answers,
                    });
                }
            }
        }
    }

    fn remember(&mut self, run: usize, cmd: Command) {
        if self.delivered.len() >= 32 {
            let idx = self.rng.gen_range(0..self.delivered.len());
            self.delivered.swap_remove(idx);
        }
        self.delivered.push((run, cmd));
    }

    /// A push fails or vanishes. Half the time the dispatcher notices and
    /// reports a transport failure; otherwise only a timeout or a lease
    /// expiry brings the work back.
    fn lose_one(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let idx = self.rng.gen_range(0..self.in_flight.len());
        let push = self.in_flight.swap_remove(idx);
        if self.rng.gen_bool(0.5) {
            return;
        }
        let (run, cmd) = match push {
            Push::WorkflowTask { run, token, .. } => (
                run,
                Command::WorkflowTaskUndelivered {
                    token,
                    timed_out: self.rng.gen_bool(0.5),
                    error: "connection reset".into(),
                },
            ),
            Push::Activity { run, token, .. } => (
                run,
                Command::ActivityUndelivered {
                    token,
                    error: "connection refused".into(),
                },
            ),
        };
        let _ = self.apply(run, cmd);
    }

    /// An answer arrives a second time: it must be refused (results are
    /// recorded exactly once; DESIGN.md invariant 4).
    fn deliver_duplicate(&mut self) {
        if self.delivered.is_empty() {
            return;
        }
        let idx = self.rng.gen_range(0..self.delivered.len());
        let (run, cmd) = self.delivered[idx].clone();
        let result = self.apply(run, cmd.clone());
        assert!(result.is_err(), "a duplicate answer was accepted: {cmd:?}");
        self.stats.duplicates_refused += 1;
    }

    /// Claims one due row (of either queue) and handles it the way the
    /// dispatcher and the timer service do. Sometimes the claimer dies
    /// right after the claim, leaving the row leased.
    fn claim_one(&mut self) {
        let due = self.due_rows();
        if due.is_empty() {
            return;
        }
        let (run, key) = due[self.rng.gen_range(0..due.len())].clone();
        let now = self.now;
        let row = {
            let row = self.store.runs[run]
                .rows
                .get_mut(&key)
                .expect("a due row exists");
            row.visible_at = now.saturating_add(row.lease);
            row.clone()
        };
        if !self.calm && self.rng.gen_bool(0.05) {
            return;
        }
        self.stats.rows_fired += 1;
        let refused = match (&row.task, row.task.queue()) {
            (Task::WorkflowTask, _) => {
                // Re-push the task in flight (its first push was lost, or
                // it is a retry after back-off).
                self.push_workflow_task(run);
                false
            }
            (Task::ActivityTask { scheduled_event_id }, _) => {
                let cmd = Command::StartActivityAttempt {
                    scheduled_event_id: *scheduled_event_id,
                };
                self.apply(run, cmd).is_err()
            }
            (task, Queue::Timer) => self.apply(run, Command::FireTimer(task.clone())).is_err(),
            (task, Queue::Push) => panic!("unknown push task {task:?}"),
            (task, Queue::Transfer) => panic!("no run here reaches another: {task:?}"),
        };
        if refused {
            // The claimer deletes exactly the row it claimed.
            let rows = &mut self.store.runs[run].rows;
            if rows.get(&key).is_some_and(|r| r.id == row.id) {
                rows.remove(&key);
            }
        }
    }

    fn check_all(&self) {
        for (run, stored) in self.store.runs.iter().enumerate() {
            self.checker[run].check_rows(stored, self.seed);
        }
    }
}

// ---------------------------------------------------------------------------
// The invariants.

/// Everything observed of one run so far, to check each new batch of
/// events against.
#[derive(Default)]
struct Checker {
    /// The fold of every event so far (incremental replay).
    replayed: Option<RunState>,
    /// The workflow task whose Scheduled event has no outcome yet.
    open_workflow_task: Option<i64>,
    closed_activities: BTreeSet<i64>,
    /// Scheduled event id → (time, schedule-to-close).
    activities: BTreeMap<i64, (Timestamp, Option<Duration>)>,
    /// Started event id → when the timer may fire.
    timers: BTreeMap<i64, Timestamp>,
    /// Earliest time the run may time out.
    deadline: Option<Timestamp>,
    closed: Option<(RunStatus, usize)>,
    seen: usize,
}

impl Checker {
    fn observe(&mut self, new: &[Event], state: &RunState) {
        // Terminal runs stay terminal: nothing is ever appended again.
        if let Some((status, len)) = self.closed {
            panic!("closed run ({status:?}, {len} events) changed: {new:?}");
        }
        let mut replayed = self.replayed.take().unwrap_or_else(|| {
            RunState::empty(
                state.namespace.clone(),
                state.workflow_id.clone(),
                state.run_id,
            )
        });
        for e in new {
            replayed.evolve(e);
            let t = e.event_time;
            match &e.attributes {
                EventAttributes::WorkflowExecutionStarted(a) => {
                    self.deadline = a.workflow_run_timeout.map(|d| t.saturating_add(d));
                }
                // At most one workflow task in flight.
                EventAttributes::WorkflowTaskScheduled(_) => {
                    assert_eq!(
                        self.open_workflow_task, None,
                        "two workflow tasks in flight"
                    );
                    self.open_workflow_task = Some(e.event_id);
                }
                EventAttributes::WorkflowTaskCompleted(a) => {
                    assert_eq!(self.open_workflow_task.take(), Some(a.scheduled_event_id));
                }
                EventAttributes::WorkflowTaskFailed(a) => {
                    assert_eq!(self.open_workflow_task.take(), Some(a.scheduled_event_id));
                }
                EventAttributes::WorkflowTaskTimedOut(a) => {
                    assert_eq!(self.open_workflow_task.take(), Some(a.scheduled_event_id));
                }
                EventAttributes::ActivityTaskScheduled(a) => {
                    self.activities
                        .insert(e.event_id, (t, a.schedule_to_close_timeout));
                }
                EventAttributes::ActivityTaskCompleted(a) => {
                    self.close_activity(a.scheduled_event_id)
                }
                EventAttributes::ActivityTaskFailed(a) => self.close_activity(a.scheduled_event_id),
                EventAttributes::ActivityTaskCanceled(a) => {
                    self.close_activity(a.scheduled_event_id)
                }
                EventAttributes::ActivityTaskTimedOut(a) => {
                    self.close_activity(a.scheduled_event_id);
                    if a.failure.timeout_type == Some(TimeoutType::ScheduleToClose) {
                        let (scheduled, s2c) = self.activities[&a.scheduled_event_id];
                        let s2c = s2c.expect("timed out schedule-to-close without one");
                        assert!(
                            t >= scheduled.saturating_add(s2c),
                            "activity timed out early"
                        );
                    }
                }
                EventAttributes::TimerStarted(a) => {
                    self.timers
                        .insert(e.event_id, t.saturating_add(a.start_to_fire_timeout));
                }
                // Timers never fire before their time.
                EventAttributes::TimerFired(a) => {
                    let due = self.timers[&a.started_event_id];
                    assert!(t >= due, "timer {} fired at {t:?}, due {due:?}", a.timer_id);
                }
                EventAttributes::WorkflowExecutionTimedOut(_) => {
                    let deadline = self.deadline.expect("timed out without a deadline");
                    assert!(t >= deadline, "run timed out early");
                }
                _ => {}
            }
        }
        self.seen += new.len();
        // Replay of the history is the snapshot's history view.
        assert_eq!(replayed.history_view(), state.history_view());
        assert_eq!(replayed.next_event_id as usize, self.seen + 1);
        self.replayed = Some(replayed);
        if state.status.is_closed() {
            self.closed = Some((state.status, self.seen));
        }
    }

    /// Each activity completes at most once.
    fn close_activity(&mut self, sched: i64) {
        assert!(
            self.closed_activities.insert(sched),
            "activity {sched} closed twice"
        );
    }

    fn check_rows(&self, stored: &StoredRun, seed: u64) {
        let state = &stored.state;
        if state.status.is_closed() {
            assert!(
                stored.rows.is_empty(),
                "seed {seed}: rows of a closed run: {:?}",
                stored.rows.keys()
            );
            return;
        }
        // The workflow-task row is the durable form of "a task in flight":
        // it exists exactly when one does.
        assert_eq!(
            stored.rows.contains_key(&Task::WorkflowTask.key()),
            state.workflow_task.is_some(),
            "seed {seed}: workflow task row and state disagree"
        );
        assert!(
            state.buffered.is_empty() || state.workflow_task.is_some(),
            "events buffered with no task in flight"
        );
    }
}
