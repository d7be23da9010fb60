//! Fires schedules: claims due schedule rows with leases (any node, each
//! row to one claimer at a time), asks the pure rules (`schedule::tick`)
//! what to do, then starts the workflows and writes the schedule's new
//! info and next due time in ONE transaction guarded by the schedule's
//! version (`Applier::start_scheduled`). Of two nodes that tick the same
//! schedule (a lease ran out), one commits and the other's starts roll
//! back, so each nominal time starts its workflow once; a node that dies
//! mid-tick loses nothing, the lease runs out and another node ticks.
//!
//! Started runs get the workflow id `<action id>-<nominal time>`, a request
//! id naming the schedule and nominal time, and in their memo
//! `TemporalScheduledById` and `TemporalScheduledStartTime` (Temporal
//! keeps these as search attributes, which Baton does not have yet).
//! Cancel and terminate requests of the overlap policies go through
//! `apply` after the commit; the rules repeat them on every tick while the
//! workflow is open, so a crash in between only delays them.
//!
//! The loop sleeps until the next due row, a wake-up from this node's API
//! ([`Handle::wake`]), a jump of a time-skipping clock, or the poll
//! interval (which also catches other nodes' changes).

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::apply::{self, Applier};
use crate::claim;
use crate::engine::{Command, RunStatus, StartRun};
use crate::ids::{Namespace, RunId, TaskQueue, WorkflowId};
use crate::schedule::{self, Closed, Start};
use crate::store::{self, ScheduleRecord, Store};
use crate::time::Duration;

/// Schedules ticked by this node at once.
const IN_FLIGHT: usize = 64;

/// How long a claimed schedule stays invisible to other claimers.
const LEASE: Duration = Duration(30_000);

/// The API wakes the loop through it (a job started, a schedule changed).
pub use crate::claim::Handle;

pub struct Service {
    applier: Applier,
    options: claim::Options,
    handle: Handle,
}

impl Service {
    pub fn new(applier: Applier, options: claim::Options) -> Service {
        Service {
            applier,
            options,
            handle: Handle::default(),
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Ticks due schedules until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let store = self.applier.store().clone();
        let clock = self.applier.clock().clone();
        let capacity = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut jumps = clock.jumps();
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Room for at least one schedule, and as many more as are free
            // now: a busy node waits for room here, not for the poll.
            let first = tokio::select! {
                permit = capacity.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let mut permits = vec![first];
            while (permits.len() as i64) < self.options.batch {
                match capacity.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let asked = permits.len();
            let now = clock.now();
            match store
                .claim_schedules(now, LEASE, i64::try_from(asked).unwrap_or(1))
                .await
            {
                Ok(records) => {
                    let full = records.len() >= asked;
                    for (record, permit) in records.into_iter().zip(permits.drain(..)) {
                        tokio::spawn(fire(self.applier.clone(), record, permit));
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming schedules failed"),
            }
            drop(permits);
            let mut target = now.saturating_add(self.options.poll_interval);
            match store.next_schedule_due(now).await {
                Ok(Some(next)) => target = target.min(next),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading the next due schedule failed"),
            }
            let sleep = tokio::time::sleep(target.since(clock.now()).to_std());
            tokio::select! {
                _ = sleep => {}
                _ = self.handle.woken() => {}
                Some(()) = jumped(&mut jumps) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

async fn jumped(jumps: &mut Option<watch::Receiver<Duration>>) -> Option<()> {
    match jumps {
        Some(rx) => rx.changed().await.ok(),
        None => std::future::pending().await,
    }
}

/// One tick of one claimed schedule. Failures are logged: the claim's
/// lease brings the schedule back.
async fn fire(applier: Applier, record: ScheduleRecord, _permit: OwnedSemaphorePermit) {
    let id = record.schedule_id.clone();
    if let Err(e) = tick(&applier, record).await {
        match e {
            // Someone else changed the schedule since the claim (an API
            // call, another node); their write set its next due time.
            apply::Error::Store(store::Error::Conflict) => {
                tracing::debug!(schedule_id = %id, "schedule changed concurrently")
            }
            e => tracing::warn!(schedule_id = %id, error = %e, "schedule tick failed"),
        }
    }
}

async fn tick(applier: &Applier, record: ScheduleRecord) -> Result<(), apply::Error> {
    let store = applier.store();
    let ns = record.namespace.clone();
    let compiled = match schedule::validate(&record.schedule) {
        Ok(c) => c,
        Err(e) => {
            // Stored before a rule got stricter: it sleeps until updated.
            tracing::warn!(schedule_id = %record.schedule_id, error = %e, "invalid schedule");
            let idle = ScheduleRecord {
                due_at: None,
                ..record
            };
            return applier.start_scheduled(&idle, Vec::new()).await;
        }
    };
    let mut closed = Vec::new();
    for workflow_id in &record.info.running {
        let latest = store
            .latest_run(&ns, &WorkflowId(workflow_id.clone()))
            .await?;
        let status = match latest {
            Some(run) if run.state.status == RunStatus::Running => continue,
            Some(run) => run.state.status,
            None => RunStatus::Terminated,
        };
        closed.push(Closed {
            workflow_id: workflow_id.clone(),
            status,
        });
    }
    let now = applier.clock().now();
    let out = schedule::tick(
        &record.schedule_id,
        &record.schedule,
        &compiled,
        &record.info,
        now,
        &closed,
    );
    let mut info = out.info;
    let mut runs = Vec::new();
    for start in &out.starts {
        // A run of this id already exists (a backfill of a time the
        // schedule already took, or a crash after the commit): the action
        // was taken; starting it twice is not.
        let wid = WorkflowId(start.workflow_id.clone());
        if store.latest_run(&ns, &wid).await?.is_some() {
            tracing::debug!(workflow_id = %wid, "scheduled workflow already started");
            continue;
        }
        let run = start_run(&record, start);
        if let Some(action) = info
            .recent_actions
            .iter_mut()
            .rev()
            .find(|a| a.workflow_id == start.workflow_id)
        {
            action.run_id = Some(run.run_id);
        }
        runs.push(run);
    }
    let next = ScheduleRecord {
        schedule: out.schedule,
        info,
        due_at: out.wake_at,
        ..record
    };
    let started = runs.len();
    applier.start_scheduled(&next, runs).await?;
    crate::telemetry::schedule_actions(&ns.0, started);
    for (workflow_id, terminate) in out
        .cancel
        .iter()
        .map(|w| (w, false))
        .chain(out.terminate.iter().map(|w| (w, true)))
    {
        let Some(run) = store
            .latest_run(&ns, &WorkflowId(workflow_id.clone()))
            .await?
        else {
            continue;
        };
        let reason = format!("overlap policy of schedule {}", next.schedule_id);
        let cmd = if terminate {
            Command::TerminateWorkflow {
                reason,
                details: None,
                identity: Some("baton-scheduler".to_owned()),
            }
        } else {
            Command::RequestCancelWorkflow {
                reason,
                request_id: None,
                identity: Some("baton-scheduler".to_owned()),
            }
        };
        match applier.apply(&ns, run.state.run_id, cmd).await {
            Ok(_) | Err(apply::Error::Rejected(_)) => {}
            Err(e) => tracing::warn!(%workflow_id, error = %e, "overlap policy action failed"),
        }
    }
    Ok(())
}

/// The run a start of the schedule's action makes.
fn start_run(record: &ScheduleRecord, start: &Start) -> StartRun {
    let action = &record.schedule.action.start_workflow;
    let mut memo = match &action.memo {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    memo.insert(
        "TemporalScheduledById".to_owned(),
        Value::String(record.schedule_id.clone()),
    );
    memo.insert(
        "TemporalScheduledStartTime".to_owned(),
        Value::String(start.nominal.to_string()),
    );
    StartRun {
        trace_context: None,
        namespace: Namespace(record.namespace.0.clone()),
        workflow_id: WorkflowId(start.workflow_id.clone()),
        run_id: RunId::generate(),
        workflow_type: action.workflow_type.clone(),
        task_queue: TaskQueue(action.task_queue.clone()),
        input: action.input.clone(),
        execution_timeout: action.workflow_execution_timeout,
        run_timeout: action.workflow_run_timeout,
        task_timeout: action.workflow_task_timeout,
        request_id: Some(format!(
            "schedule:{}:{}",
            record.schedule_id,
            start.nominal.millis()
        )),
        identity: Some("baton-scheduler".to_owned()),
        pinned_version: None,
        memo: Some(Value::Object(memo)),
        search_attributes: Default::default(),
        retry_policy: action.retry_policy.clone(),
        chain: None,
        parent: None,
    }
}

/// Reads the schedule's running workflows' current runs, for describe: the
/// open ones with their run ids.
pub async fn running(
    store: &Arc<dyn Store>,
    record: &ScheduleRecord,
) -> Result<Vec<(String, RunId)>, store::Error> {
    let mut out = Vec::new();
    for workflow_id in &record.info.running {
        let latest = store
            .latest_run(&record.namespace, &WorkflowId(workflow_id.clone()))
            .await?;
        if let Some(run) = latest.filter(|r| r.state.status == RunStatus::Running) {
            out.push((workflow_id.clone(), run.state.run_id));
        }
    }
    Ok(out)
}
