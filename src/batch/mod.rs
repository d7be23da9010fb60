//! Batch operations (Temporal's batch jobs), the pure part: the job as
//! stored ([`Batch`], one row of `batches`), the checking of what an
//! operator asks for ([`Request::check`], errors naming the field), the
//! query a job pages with ([`Batch::page_query`]) and the names of
//! what it writes on runs (the identity and request ids that make a
//! re-application recognisable). `runner` is the edge that carries jobs
//! out.
//!
//! **Paging.** A job operates on the runs its query matched when it
//! started: the filter is the operator's query AND `StartTime <=` the
//! job's creation, so runs started afterwards (a reset's new run among
//! them) are never picked up and the total counted at the start bounds
//! the work. Pages go by RunId ascending, a stable key that no operation
//! changes, strictly after the cursor (the last RunId taken): a run the
//! operation makes stop matching (a terminated run no longer matches
//! `ExecutionStatus="Running"`) lies behind the cursor already, so
//! nothing is skipped or taken twice. A page's run ids are committed with
//! the cursor *before* any of them is operated on (`Batch::pending`), and
//! a run leaves `pending` only in the commit that counts it; a node that
//! dies mid-page leaves the page to the next claimer, which applies each
//! pending run again and recognises the ones already done (see
//! `runner`), so each run is counted once.

pub mod runner;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::Registry;
use crate::ids::{Namespace, RunId, WorkflowId};
use crate::time::Timestamp;
use crate::visibility::{self, Attribute, Cursor, Expr, ListQuery, Op};

/// Temporal's default rate of a batch job, in runs per second.
const DEFAULT_RPS: f64 = 50.0;

/// The failures a job keeps with their reasons (the count goes on).
const MAX_FAILURES: usize = 20;

/// What a job does to each run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Operation {
    Terminate,
    /// Requests cancellation; the workflow decides how it closes.
    Cancel,
    Signal {
        name: String,
        input: Value,
    },
    /// Resets to the first or last completed workflow task.
    Reset {
        to_last: bool,
    },
    /// Deletes closed runs (an open one is a failure of the job).
    Delete,
}

impl Operation {
    /// The name in the API, CLI and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Terminate => "terminate",
            Operation::Cancel => "cancel",
            Operation::Signal { .. } => "signal",
            Operation::Reset { .. } => "reset",
            Operation::Delete => "delete",
        }
    }
}

/// A job's state (Temporal's BatchOperationState, plus Stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Running,
    Completed,
    /// The job could not go on (its stored query no longer checks).
    Failed,
    /// Stopped by an operator before it was done.
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "RUNNING",
            State::Completed => "COMPLETED",
            State::Failed => "FAILED",
            State::Stopped => "STOPPED",
        }
    }
}

/// A run the job took from a page and has not counted yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub run_id: RunId,
    pub workflow_id: WorkflowId,
}

/// A run the operation failed on, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFailure {
    pub workflow_id: WorkflowId,
    pub run_id: RunId,
    pub reason: String,
}

/// A batch job: what it does, and how far it got. Stored as the `doc` of
/// its `batches` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub namespace: Namespace,
    pub batch_id: String,
    /// The operator's query, as written.
    pub query: String,
    pub operation: Operation,
    pub reason: String,
    /// Who started the job.
    pub identity: Option<String>,
    /// Runs per second, already capped by the server's maximum.
    pub rps: f64,
    pub state: State,
    /// The runs the query matched when the job started.
    pub total: i64,
    /// Runs the operation was applied to.
    pub done: i64,
    pub failed: i64,
    /// The first [`MAX_FAILURES`] failures.
    pub failures: Vec<RunFailure>,
    /// Where the last page taken ended (its last RunId).
    pub cursor: Option<Cursor>,
    /// Runs taken from the last page and not yet counted.
    pub pending: Vec<Pending>,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// A start request, as the API reads it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub query: Option<String>,
    pub operation: Option<String>,
    pub reason: Option<String>,
    pub identity: Option<String>,
    pub rps: Option<f64>,
    pub signal_name: Option<String>,
    pub input: Option<Value>,
    /// `FIRST_WORKFLOW_TASK` or `LAST_WORKFLOW_TASK`.
    pub reset_type: Option<String>,
}

/// A start request that does not check, naming the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("query: {0}")]
    Query(visibility::Error),
}

fn field(field: &'static str, message: impl Into<String>) -> Error {
    Error::Field {
        field,
        message: message.into(),
    }
}

/// What a checked request holds, before the job gets its id and total.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub query: String,
    pub operation: Operation,
    pub reason: String,
    pub identity: Option<String>,
    pub rps: f64,
}

impl Request {
    /// Checks the request whole, its query against the namespace's search
    /// attributes; `max_rps` is the server's cap, which a larger rate is
    /// lowered to (as Temporal does).
    pub fn check(self, max_rps: f64, registry: &Registry) -> Result<Checked, Error> {
        let query = self.query.unwrap_or_default();
        if query.trim().is_empty() {
            return Err(field(
                "query",
                "a batch job needs a query naming its runs (`WorkflowType=\"…\"`)",
            ));
        }
        filter_of(&query, registry)?;
        let has_signal_name = self.signal_name.is_some();
        let operation = match self.operation.as_deref() {
            None => return Err(field("operation", "required")),
            Some("terminate") => Operation::Terminate,
            Some("cancel") => Operation::Cancel,
            Some("delete") => Operation::Delete,
            Some("signal") => match self.signal_name {
                Some(name) if !name.is_empty() => Operation::Signal {
                    name,
                    input: self.input.unwrap_or(Value::Null),
                },
                _ => return Err(field("signal_name", "a signal batch needs a signal name")),
            },
            Some("reset") => match self.reset_type.as_deref() {
                Some("FIRST_WORKFLOW_TASK") => Operation::Reset { to_last: false },
                Some("LAST_WORKFLOW_TASK") => Operation::Reset { to_last: true },
                Some(other) => {
                    return Err(field(
                        "reset_type",
                        format!(
                            "unknown reset type {other:?}: FIRST_WORKFLOW_TASK or \
                             LAST_WORKFLOW_TASK"
                        ),
                    ))
                }
                None => return Err(field("reset_type", "a reset batch needs a reset type")),
            },
            Some(other) => {
                return Err(field(
                    "operation",
                    format!(
                        "unknown operation {other:?}: terminate, cancel, signal, reset or delete"
                    ),
                ))
            }
        };
        if !matches!(operation, Operation::Signal { .. }) && has_signal_name {
            return Err(field(
                "signal_name",
                "only a signal batch takes a signal name",
            ));
        }
        if !matches!(operation, Operation::Reset { .. }) && self.reset_type.is_some() {
            return Err(field("reset_type", "only a reset batch takes a reset type"));
        }
        let reason = self.reason.unwrap_or_default();
        if matches!(operation, Operation::Reset { .. }) && reason.trim().is_empty() {
            return Err(field("reason", "a reset batch needs a reason"));
        }
        let rps = match self.rps {
            None => DEFAULT_RPS,
            Some(r) if r.is_finite() && r > 0.0 => r,
            Some(r) => {
                return Err(field(
                    "rps",
                    format!("{r} is not a rate: give runs per second above 0"),
                ))
            }
        };
        Ok(Checked {
            query,
            operation,
            reason,
            identity: self.identity,
            rps: rps.min(max_rps),
        })
    }
}

/// The filter of a batch query: a list filter with neither ORDER BY (a
/// job has its own order) nor GROUP BY.
fn filter_of(query: &str, registry: &Registry) -> Result<Option<Expr>, Error> {
    let count = visibility::parse_count(query, registry).map_err(Error::Query)?;
    if count.group_by.is_some() {
        return Err(field("query", "GROUP BY is only for counting runs"));
    }
    Ok(count.filter)
}

impl Batch {
    /// A new job, Running, with nothing done yet.
    pub fn new(
        namespace: Namespace,
        batch_id: String,
        checked: Checked,
        total: i64,
        now: Timestamp,
    ) -> Batch {
        Batch {
            namespace,
            batch_id,
            query: checked.query,
            operation: checked.operation,
            reason: checked.reason,
            identity: checked.identity,
            rps: checked.rps,
            state: State::Running,
            total,
            done: 0,
            failed: 0,
            failures: Vec::new(),
            cursor: None,
            pending: Vec::new(),
            created_at: now,
            closed_at: None,
        }
    }

    /// The runs the job is about (see the module doc), by RunId ascending;
    /// `registry` holds the namespace's search attributes.
    pub fn page_query(&self, registry: &Registry) -> Result<ListQuery, Error> {
        let filter = filter_of(&self.query, registry)?;
        Ok(ListQuery::by_run_id(Some(Expr::and(
            filter,
            Expr::Compare {
                attribute: Attribute::StartTime,
                op: Op::Le,
                value: visibility::Value::Int(self.created_at.millis()),
            },
        ))))
    }

    /// The identity written on every command the job applies: how a
    /// re-application after a crash recognises the job's own work.
    fn marker(&self) -> String {
        format!("batch/{}", self.batch_id)
    }

    /// The request id of the job's command to `run_id`, where the command
    /// path dedupes by request id (signals, cancellation, reset).
    fn request_id(&self, run_id: RunId) -> String {
        format!("batch/{}/{run_id}", self.batch_id)
    }

    /// Counts an outcome of a pending run.
    fn count(&mut self, run: &Pending, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.done += 1,
            Err(reason) => {
                self.failed += 1;
                if self.failures.len() < MAX_FAILURES {
                    self.failures.push(RunFailure {
                        workflow_id: run.workflow_id.clone(),
                        run_id: run.run_id,
                        reason,
                    });
                }
            }
        }
    }

    /// Ends the job in `state`.
    fn close(&mut self, state: State, now: Timestamp) {
        self.state = state;
        self.closed_at = Some(now);
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(operation: &str) -> Request {
        Request {
            query: Some("WorkflowType = \"T\"".into()),
            operation: Some(operation.into()),
            ..Request::default()
        }
    }

    fn field_of(r: Request) -> &'static str {
        match r.check(1000.0, &Registry::default()) {
            Err(Error::Field { field, .. }) => field,
            Err(Error::Query(_)) => "query",
            Ok(c) => panic!("accepted: {c:?}"),
        }
    }

    #[test]
    fn bad_requests_name_their_field() {
        assert_eq!(field_of(request("explode")), "operation");
        assert_eq!(field_of(request("signal")), "signal_name");
        assert_eq!(field_of(request("reset")), "reset_type");
        let mut r = request("reset");
        r.reset_type = Some("MIDDLE".into());
        assert_eq!(field_of(r), "reset_type");
        let mut r = request("reset");
        r.reset_type = Some("LAST_WORKFLOW_TASK".into());
        assert_eq!(field_of(r), "reason");
        let mut r = request("terminate");
        r.rps = Some(0.0);
        assert_eq!(field_of(r), "rps");
        let mut r = request("terminate");
        r.rps = Some(f64::NAN);
        assert_eq!(field_of(r), "rps");
        let mut r = request("terminate");
        r.query = Some("WorkflowType = ".into());
        assert_eq!(field_of(r), "query");
        let mut r = request("terminate");
        r.query = Some("WorkflowType = \"T\" ORDER BY StartTime".into());
        assert_eq!(field_of(r), "query");
        let mut r = request("terminate");
        r.query = Some("  ".into());
        assert_eq!(field_of(r), "query");
        let mut r = request("terminate");
        r.signal_name = Some("s".into());
        assert_eq!(field_of(r), "signal_name");
    }

    #[test]
    fn a_rate_is_capped_by_the_server_and_defaults_to_temporals() {
        let mut r = request("terminate");
        let registry = Registry::default();
        assert_eq!(
            r.clone().check(1000.0, &registry).map(|c| c.rps),
            Ok(DEFAULT_RPS)
        );
        r.rps = Some(5000.0);
        assert_eq!(r.check(1000.0, &registry).map(|c| c.rps), Ok(1000.0));
    }

    #[test]
    fn failures_are_counted_and_the_first_kept() {
        let checked = request("terminate")
            .check(10.0, &Registry::default())
            .unwrap();
        let mut batch = Batch::new(
            Namespace("default".into()),
            "b".into(),
            checked,
            30,
            Timestamp(0),
        );
        let run = Pending {
            run_id: RunId::generate(),
            workflow_id: WorkflowId("w".into()),
        };
        for _ in 0..MAX_FAILURES + 5 {
            batch.count(&run, Err("closed".into()));
        }
        batch.count(&run, Ok(()));
        assert_eq!((batch.done, batch.failed), (1, MAX_FAILURES as i64 + 5));
        assert_eq!(batch.failures.len(), MAX_FAILURES);
    }
}
