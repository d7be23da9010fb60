//! Fault injection for [`MemoryStore`](super::MemoryStore): which calls
//! fail, and how. Everything here is decided by the caller (counted rules,
//! or a hook that can hold a seeded random generator), so a simulation
//! that injects faults stays reproducible.

use std::fmt;

use crate::store::Error;

/// A [`Store`](crate::store::Store) method, as fault rules name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Migrate,
    ProbeWrite,
    CreateNamespace,
    GetNamespace,
    UpdateNamespace,
    ListNamespaces,
    CreateApiKey,
    GetApiKey,
    ListApiKeys,
    RevokeApiKey,
    TouchApiKey,
    SearchAttributes,
    AddSearchAttributes,
    RemoveSearchAttribute,
    UpsertEndpoint,
    ListEndpoints,
    DeleteEndpoint,
    QueueEndpoints,
    PromoteEndpoint,
    SetEndpointSchemas,
    OpenRunsByVersion,
    OpenRunsPinnedTo,
    LoadRun,
    LatestRun,
    RunByRequestId,
    Commit,
    ReadHistory,
    PutPayloads,
    ReadPayloads,
    ListRuns,
    CountRuns,
    DeleteRun,
    ClaimRetention,
    DeleteExpiredRuns,
    ReleaseRetention,
    ClaimTasks,
    AcquireFlowSlot,
    ReleaseFlowSlot,
    RenewFlowSlots,
    TakeFlowToken,
    DeleteTask,
    PostponeTasks,
    QueueDepths,
    OpenRuns,
    NextVisibleAt,
    CreateSchedule,
    GetSchedule,
    ListSchedules,
    DeleteSchedule,
    CommitSchedule,
    ClaimSchedules,
    NextScheduleDue,
    CreateBatch,
    GetBatch,
    ListBatches,
    UpdateBatch,
    RequestBatchStop,
    ClaimBatches,
    CreateWebhook,
    GetWebhook,
    ListWebhooks,
    DeleteWebhook,
    RecordDelivery,
    GetDelivery,
    ListDeliveries,
}

impl Call {
    /// True for the calls that change stored data (a claim moves leases),
    /// and for `probe_write`, which tests that a change could be made.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Call::Migrate
                | Call::ProbeWrite
                | Call::CreateNamespace
                | Call::UpdateNamespace
                | Call::CreateApiKey
                | Call::RevokeApiKey
                | Call::TouchApiKey
                | Call::UpsertEndpoint
                | Call::DeleteEndpoint
                | Call::PromoteEndpoint
                | Call::SetEndpointSchemas
                | Call::Commit
                | Call::PutPayloads
                | Call::ClaimTasks
                | Call::AcquireFlowSlot
                | Call::ReleaseFlowSlot
                | Call::RenewFlowSlots
                | Call::TakeFlowToken
                | Call::DeleteTask
                | Call::PostponeTasks
                | Call::CreateSchedule
                | Call::DeleteSchedule
                | Call::CommitSchedule
                | Call::ClaimSchedules
                | Call::CreateBatch
                | Call::UpdateBatch
                | Call::RequestBatchStop
                | Call::ClaimBatches
                | Call::CreateWebhook
                | Call::DeleteWebhook
                | Call::RecordDelivery
                | Call::DeleteRun
                | Call::ClaimRetention
                | Call::DeleteExpiredRuns
                | Call::ReleaseRetention
        )
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How an injected fault fails a call. Either way the call returns
/// [`Error::Unavailable`], which is transient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails before it does anything: nothing changes (a refused
    /// connection, a pool timeout, a failover).
    Fail,
    /// The call takes effect, then reports failure (a connection lost after
    /// the database committed): a commit is applied and sends no wake-ups,
    /// a claim moves the leases of rows nobody receives. The caller cannot
    /// tell it from [`Fault::Fail`]. On a read it is the same as `Fail`.
    ApplyThenFail,
}

/// Which calls a rule catches.
type Matcher = Box<dyn Fn(Call) -> bool + Send>;

/// Decides about a call no rule caught; see `MemoryStore::fail_when`.
pub(super) type Hook = Box<dyn FnMut(Call) -> Option<Fault> + Send>;

struct Rule {
    calls: Matcher,
    /// Calls left to fail; `None` until the rules are cleared.
    remaining: Option<u64>,
    fault: Fault,
}

/// The armed faults of one store.
#[derive(Default)]
pub(super) struct Faults {
    /// Consulted in the order they were added; the first that catches a
    /// call decides it.
    rules: Vec<Rule>,
    hook: Option<Hook>,
    injected: u64,
}

impl Faults {
    pub fn add(&mut self, calls: Matcher, remaining: Option<u64>, fault: Fault) {
        if remaining != Some(0) {
            self.rules.push(Rule {
                calls,
                remaining,
                fault,
            });
        }
    }

    pub fn set_hook(&mut self, hook: Option<Hook>) {
        self.hook = hook;
    }

    pub fn clear(&mut self) {
        self.rules.clear();
        self.hook = None;
    }

    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// The fault `call` suffers, if any, using up one call of the rule
    /// that caught it.
    pub fn decide(&mut self, call: Call) -> Option<Fault> {
        let fault = match self.rules.iter().position(|rule| (rule.calls)(call)) {
            Some(i) => {
                let rule = &mut self.rules[i];
                let fault = rule.fault;
                if let Some(remaining) = &mut rule.remaining {
                    *remaining -= 1;
                    if *remaining == 0 {
                        self.rules.remove(i);
                    }
                }
                Some(fault)
            }
            None => self.hook.as_mut().and_then(|hook| hook(call)),
        };
        if fault.is_some() {
            self.injected += 1;
        }
        fault
    }
}

/// The error an injected fault reports.
pub(super) fn unavailable(call: Call, fault: Fault) -> Error {
    let what = match fault {
        Fault::Fail => "failed",
        Fault::ApplyThenFail => "applied, then failed",
    };
    Error::Unavailable(format!("injected fault: {call} {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commits() -> Matcher {
        Box::new(|call| call == Call::Commit)
    }

    #[test]
    fn counted_rules_run_out() {
        let mut faults = Faults::default();
        faults.add(commits(), Some(2), Fault::Fail);
        assert_eq!(faults.decide(Call::LoadRun), None);
        assert_eq!(faults.decide(Call::Commit), Some(Fault::Fail));
        assert_eq!(faults.decide(Call::Commit), Some(Fault::Fail));
        assert_eq!(faults.decide(Call::Commit), None);
        assert_eq!(faults.injected(), 2);
    }

    #[test]
    fn the_first_matching_rule_decides_and_the_hook_comes_last() {
        let mut faults = Faults::default();
        faults.add(commits(), Some(1), Fault::ApplyThenFail);
        faults.add(Box::new(Call::is_write), None, Fault::Fail);
        faults.add(commits(), Some(0), Fault::Fail);
        let mut n = 0;
        faults.set_hook(Some(Box::new(move |_| {
            n += 1;
            (n % 2 == 0).then_some(Fault::Fail)
        })));
        assert_eq!(faults.decide(Call::Commit), Some(Fault::ApplyThenFail));
        assert_eq!(faults.decide(Call::Commit), Some(Fault::Fail));
        assert_eq!(faults.decide(Call::DeleteTask), Some(Fault::Fail));
        // Reads are left to the hook: every second one fails.
        let reads: Vec<_> = (0..4).map(|_| faults.decide(Call::LoadRun)).collect();
        assert_eq!(reads, [None, Some(Fault::Fail), None, Some(Fault::Fail)]);
        faults.clear();
        assert_eq!(faults.decide(Call::Commit), None);
        assert_eq!(faults.decide(Call::LoadRun), None);
        assert_eq!(faults.injected(), 5);
    }

    #[test]
    fn injected_errors_are_transient() {
        for fault in [Fault::Fail, Fault::ApplyThenFail] {
            let e = unavailable(Call::Commit, fault);
            assert!(e.is_transient(), "{e}");
            assert!(e.to_string().contains("Commit"), "{e}");
        }
    }
}
