//! Deterministic-schedule simulation of the REAL node code (STYLE.md §6b,
//! §10; DESIGN.md invariants): `server::services` — the command path with
//! its per-run writers, the dispatcher, the timer and transfer services —
//! runs on an in-memory store (`store::MemoryStore`, with injected
//! transient and ambiguous failures), a simulated clock (tokio's paused time)
//! and an in-memory push transport that runs scripted workflows and
//! activities and misbehaves at random: it refuses, fails, times out,
//! answers garbage, or runs the handler and loses its answer. Clients start
//! runs and send signals concurrently; the node crashes at random instants
//! (its runtime is dropped with every task in it: no shutdown code runs)
//! and restarts on the same store.
//!
//! After a chaotic phase the faults stop and every run must close
//! (liveness). Then the DESIGN.md invariants are checked over the stored
//! histories and what the handlers saw:
//! - every run completes with the result its script implies (nothing lost);
//! - event ids are dense and every history a handler was pushed is a
//!   prefix of the final history (append-only; no push of an uncommitted
//!   event);
//! - each activity's result and each signal (by request id) are recorded
//!   exactly once;
//! - timers never fire early;
//! - in a seed without faults or crashes, each activity executes exactly
//!   once (a result accepted by the handler is never dropped and redone —
//!   the fan-out loss of the optimistic-retry command path).
//!
//! `SIM_SEED=<n>` re-runs one seed (the fault schedule, timing and inputs
//! come from it; tokio's scheduler may interleave equal-time wake-ups
//! differently from run to run, so a replay is faithful in what it injects
//! rather than bit-identical), `SIM_SEEDS=<n>` runs seeds `0..n` (default
//! 1,000). A failure prints the seed.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::watch;

use baton::apply::{self, StartRequest};
use baton::dispatch::{self, Delivery, Transport};
use baton::engine::{self, Command, Event, IdConflictPolicy, IdReusePolicy, Signal, StartRun};
use baton::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use baton::server::{self, Options};
use baton::signing::Secret;
use baton::store::{Call, Endpoint, Fault, MemoryStore, NamespaceRecord, Store};
use baton::time::{Clock, Duration, Timestamp};

/// Parallel activities of the fan-out workflow: many in the clean seeds,
/// whose point is contention on one run, fewer in the chaotic ones.
const FAN_OUT_CLEAN: usize = 64;
const FAN_OUT: usize = 16;
/// Signals the signal workflow waits for.
const SIGNALS: usize = 6;
/// Simulated time of the chaotic phase, and the limit of the calm one.
const CHAOS_MS: u64 = 10_000;
const CALM_MS: u64 = 600_000;
const START: Timestamp = Timestamp(1_700_000_000_000);

#[test]
fn the_real_node_keeps_the_invariants_under_faults_and_crashes() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("SIM_SEEDS").map_or(1_000, |s| s.parse().expect("a number"));
            (0..n).collect()
        }
    };
    let mut totals = Stats::default();
    for seed in seeds {
        let result = panic::catch_unwind(AssertUnwindSafe(|| simulate(seed)));
        match result {
            Ok(stats) => totals.add(&stats),
            Err(e) => {
                eprintln!("simulation failed: rerun with SIM_SEED={seed}");
                panic::resume_unwind(e);
            }
        }
    }
    eprintln!("simulation: {totals:?}");
    if totals.seeds >= 10 {
        // The seeds exercise what they are meant to.
        assert!(totals.crashes > 0 && totals.faults > 0 && totals.clean_seeds > 0);
    }
}

/// What the runs exercised, summed over seeds.
#[derive(Debug, Default)]
struct Stats {
    seeds: u64,
    clean_seeds: u64,
    crashes: u64,
    faults: u64,
    store_faults: u64,
    pushes: u64,
    executions: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.clean_seeds += o.clean_seeds;
        self.crashes += o.crashes;
        self.faults += o.faults;
        self.store_faults += o.store_faults;
        self.pushes += o.pushes;
        self.executions += o.executions;
    }
}

// ---------------------------------------------------------------------------
// The world shared by a seed's node incarnations.

struct World {
    rng: Mutex<StdRng>,
    /// Faults are injected while true.
    chaos: AtomicBool,
    clean: bool,
    faults: AtomicU64,
    pushes: AtomicU64,
    /// Executions per (idempotency key): run id / activity id.
    executions: Mutex<HashMap<String, u32>>,
    /// The histories handlers were pushed.
    pushed: Mutex<Vec<Pushed>>,
    /// Signal request ids the API accepted, per workflow id.
    acked_signals: Mutex<HashMap<String, HashSet<String>>>,
}

impl World {
    fn chance(&self, p: f64) -> bool {
        self.rng.lock().unwrap().gen_bool(p)
    }

    fn below(&self, n: u64) -> u64 {
        self.rng.lock().unwrap().gen_range(0..n)
    }

    fn chaotic(&self) -> bool {
        self.chaos.load(Ordering::SeqCst)
    }
}

/// A run id and the (event id, event type)s of the history it was pushed.
type Pushed = (String, Vec<(i64, String)>);

/// Sim time: tokio's paused clock of the current incarnation, plus where
/// the previous incarnations left off. Never goes backwards.
struct SimClock {
    base: Mutex<(tokio::time::Instant, Timestamp)>,
}

impl SimClock {
    /// Called at the start of each incarnation, inside its runtime.
    fn rebase(&self, at: Timestamp) {
        *self.base.lock().unwrap() = (tokio::time::Instant::now(), at);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        let (instant, at) = *self.base.lock().unwrap();
        let elapsed = tokio::time::Instant::now().saturating_duration_since(instant);
        at.saturating_add(Duration(elapsed.as_millis() as i64))
    }
}

// ---------------------------------------------------------------------------
// The transport: scripted handlers behind a misbehaving network.

struct SimTransport {
    world: Arc<World>,
}

#[async_trait]
impl Transport for SimTransport {
    async fn push(
        &self,
        _url: &str,
        _secrets: &[Secret],
        body: Vec<u8>,
        timeout: std::time::Duration,
        _now_secs: i64,
        _trace: Option<&baton::engine::TraceContext>,
    ) -> Delivery {
        let w = &self.world;
        w.pushes.fetch_add(1, Ordering::SeqCst);
        let request: Value = serde_json::from_slice(&body).unwrap();
        // Network delay before the handler sees it.
        tokio::time::sleep(std::time::Duration::from_millis(w.below(30))).await;
        let fault = w.chaotic() && w.chance(0.08);
        if fault {
            w.faults.fetch_add(1, Ordering::SeqCst);
            match w.below(4) {
                0 => return Delivery::Refused("connection refused".into()),
                1 => return Delivery::Failed("connection reset".into()),
                2 => {
                    tokio::time::sleep(timeout).await;
                    return Delivery::TimedOut;
                }
                _ => {
                    // The handler runs; its answer is lost on the way back.
                    let _ = handle(w, &request);
                    return Delivery::Failed("connection reset after the request".into());
                }
            }
        }
        let answer = handle(w, &request);
        if w.chaotic() && w.chance(0.02) {
            w.faults.fetch_add(1, Ordering::SeqCst);
            return Delivery::Answered {
                status: reqwest::StatusCode::OK,
                body: b"{\"garbage\": true".to_vec(),
            };
        }
        // Handler time and the way back.
        tokio::time::sleep(std::time::Duration::from_millis(w.below(30))).await;
        Delivery::Answered {
            status: reqwest::StatusCode::OK,
            body: serde_json::to_vec(&answer).unwrap(),
        }
    }
}

fn handle(w: &World, request: &Value) -> Value {
    match request["type"].as_str().unwrap() {
        "workflow_task" => {
            let run_id = request["run_id"].as_str().unwrap().to_owned();
            let seen = history(request)
                .iter()
                .filter(|e| e["event_id"].as_i64().is_some())
                .map(|e| {
                    (
                        e["event_id"].as_i64().unwrap(),
                        e["event_type"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            w.pushed.lock().unwrap().push((run_id, seen));
            workflow(request)
        }
        "activity_task" => {
            let key = request["idempotency_key"].as_str().unwrap().to_owned();
            *w.executions.lock().unwrap().entry(key).or_default() += 1;
            json!({"result": request["input"]})
        }
        other => panic!("unexpected push {other}"),
    }
}

fn history(request: &Value) -> &[Value] {
    request["history"]
        .as_array()
        .map(|h| h.as_slice())
        .unwrap_or_default()
}

fn count(history: &[Value], event_type: &str) -> usize {
    history
        .iter()
        .filter(|e| e["event_type"] == event_type)
        .count()
}

fn commands(commands: Vec<Value>) -> Value {
    json!({ "commands": commands })
}

fn complete(result: Value) -> Value {
    commands(vec![json!({"command_type": "CompleteWorkflowExecution",
        "attributes": {"result": result}})])
}

fn activity(id: &str, input: Value) -> Value {
    json!({"command_type": "ScheduleActivityTask", "attributes": {
        "activity_id": id, "activity_type": "work", "input": input,
        "start_to_close_timeout": "5s",
        "retry_policy": {"initial_interval": "100ms", "maximum_interval": "1s"}}})
}

/// The scripts, over raw history.
fn workflow(request: &Value) -> Value {
    let h = history(request);
    match request["workflow_type"].as_str().unwrap() {
        // FAN_OUT activities at once; the sum of their inputs.
        "FanOut" => {
            let n = h[0]["attributes"]["input"]["n"].as_u64().unwrap() as usize;
            if count(h, "ActivityTaskScheduled") == 0 {
                return commands(
                    (0..n)
                        .map(|i| activity(&format!("a{i}"), json!(i)))
                        .collect(),
                );
            }
            let done: Vec<i64> = h
                .iter()
                .filter(|e| e["event_type"] == "ActivityTaskCompleted")
                .map(|e| e["attributes"]["result"].as_i64().unwrap())
                .collect();
            match done.len() == n {
                true => complete(json!(done.iter().sum::<i64>())),
                false => commands(vec![]),
            }
        }
        // An activity, a 5 s timer, another activity.
        "Sequence" => {
            let scheduled = count(h, "ActivityTaskScheduled");
            let completed = count(h, "ActivityTaskCompleted");
            match (
                scheduled,
                completed,
                count(h, "TimerStarted"),
                count(h, "TimerFired"),
            ) {
                (0, _, _, _) => commands(vec![activity("first", json!(1))]),
                (1, 1, 0, _) => commands(vec![json!({"command_type": "StartTimer",
                    "attributes": {"timer_id": "pause", "start_to_fire_timeout": "5s"}})]),
                (1, 1, 1, 1) => commands(vec![activity("second", json!(2))]),
                (2, 2, _, _) => complete(json!("done")),
                _ => commands(vec![]),
            }
        }
        // Completes with the request ids of the first SIGNALS signals.
        "Signals" => {
            let ids: Vec<Value> = h
                .iter()
                .filter(|e| e["event_type"] == "WorkflowExecutionSignaled")
                .map(|e| e["attributes"]["input"].clone())
                .collect();
            match ids.len() >= SIGNALS {
                true => complete(json!(ids)),
                false => commands(vec![]),
            }
        }
        other => panic!("unknown workflow type {other}"),
    }
}

// ---------------------------------------------------------------------------
// One seed.

fn options() -> Options {
    let claim = baton::claim::Options {
        batch: 16,
        poll_interval: Duration(200),
    };
    Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: String::new(),
        api_key: None,
        limits: engine::Limits {
            workflow_task_initial_backoff: Duration(50),
            workflow_task_max_backoff: Duration(500),
            delivery_initial_backoff: Duration(50),
            delivery_max_backoff: Duration(500),
            lease_grace: Duration(1_000),
            ..engine::Limits::default()
        },
        apply: apply::Options {
            // Small, so eviction and reloads happen.
            run_cache_bytes: 64 * 1024,
            ..apply::Options::default()
        },
        dispatch: dispatch::Options {
            claim: claim.clone(),
            ..dispatch::Options::default()
        },
        timers: claim,
        time_skipping: false,
        tls: Default::default(),
        ui: false,
        default_retention: baton::store::DEFAULT_RETENTION,
        batch_max_rps: 1_000.0,
    }
}

/// The runs of a seed: (workflow id, type).
fn plan(seed: u64) -> Vec<(String, &'static str)> {
    let mut runs = vec![
        ("fan-0".to_owned(), "FanOut"),
        ("seq-0".to_owned(), "Sequence"),
        ("sig-0".to_owned(), "Signals"),
    ];
    if seed.is_multiple_of(2) {
        runs.push(("fan-1".to_owned(), "FanOut"));
    }
    runs
}

fn simulate(seed: u64) -> Stats {
    let clean = seed.is_multiple_of(10);
    let world = Arc::new(World {
        rng: Mutex::new(StdRng::seed_from_u64(seed)),
        chaos: AtomicBool::new(!clean),
        clean,
        faults: AtomicU64::new(0),
        pushes: AtomicU64::new(0),
        executions: Mutex::default(),
        pushed: Mutex::default(),
        acked_signals: Mutex::default(),
    });
    let memory = Arc::new(MemoryStore::new());
    let store: Arc<dyn Store> = memory.clone();
    // Round trips of 0–3 ms, so concurrent commands overlap the way they
    // do against a real database.
    let w = world.clone();
    memory.delay_when(move |_| std::time::Duration::from_millis(1 + w.below(4)));
    let clock = Arc::new(SimClock {
        base: Mutex::new((
            tokio::time::Instant::from_std(std::time::Instant::now()),
            START,
        )),
    });
    setup(&store);
    if !clean {
        let w = world.clone();
        memory.fail_when(move |call| {
            if !w.chaotic() || !matches!(call, Call::Commit | Call::LoadRun | Call::ClaimTasks) {
                return None;
            }
            match w.below(100) {
                0..=2 => Some(Fault::Fail),
                3 => Some(Fault::ApplyThenFail),
                _ => None,
            }
        });
    }
    let runs = plan(seed);
    // Crash instants within the chaotic phase (none in a clean seed).
    let mut crashes: Vec<u64> = match clean {
        true => vec![],
        false => (0..1 + world.below(3))
            .map(|_| 500 + world.below(CHAOS_MS - 1_000))
            .collect(),
    };
    crashes.sort_unstable();
    let mut now = START;
    let mut incarnations = 0;
    loop {
        let crash_at = crashes.get(incarnations).copied();
        let elapsed = now.since(START).0 as u64;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let done = runtime.block_on(incarnation(
            store.clone(),
            clock.clone(),
            world.clone(),
            memory.clone(),
            runs.clone(),
            now,
            crash_at.map(|t| t.saturating_sub(elapsed)),
        ));
        now = runtime.block_on(async { clock.now() });
        // A crash: every task of the node dies where it stands.
        drop(runtime);
        incarnations += 1;
        if done {
            break;
        }
        assert!(incarnations < 10, "seed {seed}: runs did not close");
    }
    memory.clear_faults();
    check(seed, &world, &memory, &runs);
    let executions = world
        .executions
        .lock()
        .unwrap()
        .values()
        .map(|n| u64::from(*n))
        .sum();
    Stats {
        seeds: 1,
        clean_seeds: u64::from(clean),
        crashes: (incarnations - 1) as u64,
        faults: world.faults.load(Ordering::SeqCst),
        store_faults: memory.injected_faults(),
        pushes: world.pushes.load(Ordering::SeqCst),
        executions,
    }
}

fn fan_out(world: &World) -> usize {
    match world.clean {
        true => FAN_OUT_CLEAN,
        false => FAN_OUT,
    }
}

fn setup(store: &Arc<dyn Store>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let ns = NamespaceRecord {
            name: Namespace::from("default"),
            description: String::new(),
            retention: baton::store::DEFAULT_RETENTION,
            created_at: START,
        };
        store.create_namespace(&ns).await.unwrap();
        store
            .upsert_endpoint(&Endpoint {
                namespace: Namespace::from("default"),
                task_queue: TaskQueue::from("q"),
                version: "v1".into(),
                url: "sim://handler".into(),
                secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
                max_concurrency: 64,
                is_current: true,
                created_at: START,
                schemas: Default::default(),
                flow: Default::default(),
                features: Vec::new(),
            })
            .await
            .unwrap();
    });
}

/// Runs the node from `now` until `crash_after` ms (a crash) or, with no
/// crash planned, until the chaos is over and every run has closed. True
/// when the runs closed.
async fn incarnation(
    store: Arc<dyn Store>,
    clock: Arc<SimClock>,
    world: Arc<World>,
    memory: Arc<MemoryStore>,
    runs: Vec<(String, &'static str)>,
    now: Timestamp,
    crash_after: Option<u64>,
) -> bool {
    clock.rebase(now);
    let (_shutdown, shutdown_rx) = watch::channel(false);
    let transport = Arc::new(SimTransport {
        world: world.clone(),
    });
    let node = server::services(store, clock.clone(), transport, &options(), shutdown_rx);
    // Clients: start every run, and signal the signal workflows, retrying
    // until the API accepts (a retry carries the same request id).
    for (id, kind) in runs.clone() {
        let (applier, world) = (node.applier.clone(), world.clone());
        tokio::spawn(async move {
            start_run(&applier, &world, &id, kind).await;
            if kind == "Signals" {
                send_signals(&applier, &world, &id).await;
            }
        });
    }
    let elapsed = now.since(START).0 as u64;
    match crash_after {
        Some(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            false
        }
        None => {
            let chaos_left = CHAOS_MS.saturating_sub(elapsed);
            tokio::time::sleep(std::time::Duration::from_millis(chaos_left)).await;
            world.chaos.store(false, Ordering::SeqCst);
            memory.clear_faults();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(CALM_MS);
            while tokio::time::Instant::now() < deadline {
                if all_closed(&node.applier, &runs).await {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            panic!("runs still open {CALM_MS} ms after the faults stopped");
        }
    }
}

async fn start_run(applier: &apply::Applier, world: &World, id: &str, kind: &str) {
    loop {
        let req = StartRequest {
            run: StartRun {
                trace_context: None,
                namespace: Namespace::from("default"),
                workflow_id: WorkflowId::from(id),
                run_id: RunId::generate(),
                workflow_type: kind.into(),
                task_queue: TaskQueue::from("q"),
                input: json!({"n": fan_out(world)}),
                execution_timeout: None,
                run_timeout: None,
                task_timeout: Some(Duration::from_secs(2)),
                request_id: Some(format!("start-{id}")),
                identity: None,
                pinned_version: None,
                parent: None,
                memo: None,
                search_attributes: Default::default(),
                retry_policy: None,
                chain: None,
            },
            reuse_policy: IdReusePolicy::AllowDuplicate,
            conflict_policy: IdConflictPolicy::Fail,
        };
        match applier.start(req).await {
            Ok(_) | Err(apply::Error::AlreadyStarted { .. }) => return,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

async fn send_signals(applier: &apply::Applier, world: &World, id: &str) {
    let ns = Namespace::from("default");
    for i in 0..SIGNALS {
        let request_id = format!("{id}-s{i}");
        if world
            .acked_signals
            .lock()
            .unwrap()
            .get(id)
            .is_some_and(|s| s.contains(&request_id))
        {
            continue;
        }
        tokio::time::sleep(std::time::Duration::from_millis(world.below(400))).await;
        loop {
            let Ok(Some(run)) = applier.store().latest_run(&ns, &WorkflowId::from(id)).await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let cmd = Command::SignalWorkflow(Signal {
                signal_name: "go".into(),
                input: json!(request_id),
                request_id: Some(request_id.clone()),
                identity: None,
            });
            match applier.apply(&ns, run.state.run_id, cmd).await {
                Ok(_) => {
                    world
                        .acked_signals
                        .lock()
                        .unwrap()
                        .entry(id.to_owned())
                        .or_default()
                        .insert(request_id.clone());
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }
}

async fn all_closed(applier: &apply::Applier, runs: &[(String, &'static str)]) -> bool {
    let ns = Namespace::from("default");
    for (id, _) in runs {
        match applier
            .store()
            .latest_run(&ns, &WorkflowId::from(id.as_str()))
            .await
        {
            Ok(Some(r)) if r.state.status.is_closed() => {}
            _ => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------
// The invariants, over what is stored and what the handlers saw.

fn check(seed: u64, world: &World, memory: &Arc<MemoryStore>, runs: &[(String, &'static str)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ns = Namespace::from("default");
    // Workflow id → its run's history, and run id → workflow id.
    let mut stored: HashMap<String, Vec<Event>> = HashMap::new();
    let mut workflow_of: HashMap<String, String> = HashMap::new();
    rt.block_on(async {
        for (id, kind) in runs {
            let record = memory
                .latest_run(&ns, &WorkflowId::from(id.as_str()))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("seed {seed}: {id} was never started"));
            let state = &record.state;
            let history = memory
                .read_history(&ns, state.run_id, 0, 1_000_000)
                .await
                .unwrap();
            check_history(seed, world, id, kind, &history);
            workflow_of.insert(state.run_id.to_string(), id.clone());
            stored.insert(id.clone(), history);
        }
    });
    // Append-only, and nothing pushed before it was committed: what a
    // handler saw is a prefix of the final history.
    for (run_id, seen) in world.pushed.lock().unwrap().iter() {
        let Some(history) = workflow_of.get(run_id).and_then(|id| stored.get(id)) else {
            continue;
        };
        for (event_id, event_type) in seen {
            let stored_type = history
                .get((*event_id - 1) as usize)
                .map(|e| e.attributes.event_type());
            assert_eq!(
                stored_type,
                Some(event_type.as_str()),
                "seed {seed}: run {run_id} was pushed event {event_id} {event_type}, \
                 which is not in its final history"
            );
        }
    }
    // Signals: each accepted request id recorded exactly once.
    for (id, acked) in world.acked_signals.lock().unwrap().iter() {
        let run_history = &stored[id];
        let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
        for e in run_history {
            if let Some(s) = signal_input(e) {
                *recorded.entry(s).or_default() += 1;
            }
        }
        for request_id in acked {
            assert_eq!(
                recorded.get(request_id),
                Some(&1),
                "seed {seed}: accepted signal {request_id} recorded {:?} times",
                recorded.get(request_id)
            );
        }
    }
    // Without faults or crashes, nothing is executed twice: a result the
    // handler returned is never dropped and redone.
    if world.clean {
        let executions = world.executions.lock().unwrap();
        let repeated: Vec<_> = executions.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            repeated.is_empty(),
            "seed {seed}: executed more than once without any fault: {repeated:?}"
        );
    }
}

fn signal_input(e: &Event) -> Option<String> {
    match &e.attributes {
        engine::EventAttributes::WorkflowExecutionSignaled(s) => {
            s.input.as_str().map(str::to_owned)
        }
        _ => None,
    }
}

fn check_history(seed: u64, world: &World, id: &str, kind: &str, history: &[Event]) {
    for (i, e) in history.iter().enumerate() {
        assert_eq!(
            e.event_id,
            i as i64 + 1,
            "seed {seed}: {id}: dense event ids"
        );
    }
    let json: Vec<Value> = history
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let last = json.last().unwrap();
    assert_eq!(
        last["event_type"], "WorkflowExecutionCompleted",
        "seed {seed}: {id} did not complete: {last}"
    );
    let result = &last["attributes"]["result"];
    let mut completed = HashSet::new();
    for e in &json {
        if e["event_type"] == "ActivityTaskCompleted" {
            let sched = e["attributes"]["scheduled_event_id"].as_i64().unwrap();
            assert!(
                completed.insert(sched),
                "seed {seed}: {id}: activity {sched} completed twice"
            );
        }
    }
    match kind {
        "FanOut" => {
            assert_eq!(completed.len(), fan_out(world), "seed {seed}: {id}");
            let n = fan_out(world) as i64;
            assert_eq!(result, &json!(n * (n - 1) / 2), "seed {seed}: {id}");
        }
        "Sequence" => {
            assert_eq!(completed.len(), 2, "seed {seed}: {id}");
            let started = json
                .iter()
                .find(|e| e["event_type"] == "TimerStarted")
                .unwrap();
            let fired = json
                .iter()
                .find(|e| e["event_type"] == "TimerFired")
                .unwrap();
            let at = |e: &Value| {
                e["event_time"]
                    .as_str()
                    .map(|t| t.parse::<Timestamp>().unwrap())
                    .unwrap()
            };
            assert!(
                at(fired).since(at(started)) >= Duration::from_secs(5),
                "seed {seed}: {id}: the timer fired early"
            );
        }
        "Signals" => {
            assert_eq!(
                result.as_array().map(Vec::len),
                Some(SIGNALS),
                "seed {seed}: {id}"
            );
        }
        _ => unreachable!(),
    }
}
