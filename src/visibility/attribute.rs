//! The search attributes a list filter may name, with their types: the
//! system ones (what a run's listing row holds, under Temporal's names;
//! Baton's own with a `Baton` prefix, as Temporal prefixes its own with
//! `Temporal`) and the namespace's custom ones, by the slot the registry
//! maps their name to.

use crate::engine::{SearchAttributeType, Slot};

/// A system search attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attribute {
    WorkflowId,
    RunId,
    WorkflowType,
    TaskQueue,
    ExecutionStatus,
    StartTime,
    CloseTime,
    /// Close time minus start time; null while the run is open.
    ExecutionDuration,
    HistoryLength,
    ParentWorkflowId,
    ParentRunId,
    /// The endpoint version the run is pinned to.
    BatonPinnedVersion,
    /// The schedule that started the run (its memo's
    /// `TemporalScheduledById`, as the scheduler writes it).
    TemporalScheduledById,
    /// A custom search attribute, by its slot.
    Custom(Slot),
}

/// What values an attribute holds, and so which literals and operators a
/// filter may use with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// Exact text: every comparison, IN, BETWEEN, STARTS_WITH.
    Keyword,
    /// One of the run statuses: `=`, `!=`, IN.
    Status,
    /// An RFC 3339 time (stored as milliseconds since the epoch).
    Datetime,
    /// A duration such as `"90s"` or `"1h 30m"` (stored as milliseconds).
    Duration,
    Int,
    /// Custom only: words; `=` / `!=` match the literal's words (see the
    /// module doc of `visibility`).
    Text,
    Double,
    /// `true` / `false` (stored as 1 / 0).
    Bool,
    /// Custom only: a list of keywords; `=` and IN mean "contains".
    KeywordList,
    /// Custom Keywords: `=`, `!=`, IN, STARTS_WITH (as Temporal's).
    CustomKeyword,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Keyword => "Keyword",
            Type::Status => "Keyword (a run status)",
            Type::Datetime => "Datetime",
            Type::Duration => "Duration",
            Type::Int => "Int",
            Type::Text => "Text",
            Type::Double => "Double",
            Type::Bool => "Bool",
            Type::KeywordList => "KeywordList",
            Type::CustomKeyword => "Keyword",
        }
    }
}

impl Attribute {
    pub const ALL: [Attribute; 13] = [
        Attribute::WorkflowId,
        Attribute::RunId,
        Attribute::WorkflowType,
        Attribute::TaskQueue,
        Attribute::ExecutionStatus,
        Attribute::StartTime,
        Attribute::CloseTime,
        Attribute::ExecutionDuration,
        Attribute::HistoryLength,
        Attribute::ParentWorkflowId,
        Attribute::ParentRunId,
        Attribute::BatonPinnedVersion,
        Attribute::TemporalScheduledById,
    ];

    /// The name a filter uses (case-sensitive, as in Temporal); custom
    /// attributes are named by the registry, so this is their slot.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::WorkflowId => "WorkflowId",
            Attribute::RunId => "RunId",
            Attribute::WorkflowType => "WorkflowType",
            Attribute::TaskQueue => "TaskQueue",
            Attribute::ExecutionStatus => "ExecutionStatus",
            Attribute::StartTime => "StartTime",
            Attribute::CloseTime => "CloseTime",
            Attribute::ExecutionDuration => "ExecutionDuration",
            Attribute::HistoryLength => "HistoryLength",
            Attribute::ParentWorkflowId => "ParentWorkflowId",
            Attribute::ParentRunId => "ParentRunId",
            Attribute::BatonPinnedVersion => "BatonPinnedVersion",
            Attribute::TemporalScheduledById => "TemporalScheduledById",
            Attribute::Custom(_) => "a custom search attribute",
        }
    }

    pub fn from_name(name: &str) -> Option<Attribute> {
        Attribute::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn kind(self) -> Type {
        match self {
            Attribute::WorkflowId
            | Attribute::RunId
            | Attribute::WorkflowType
            | Attribute::TaskQueue
            | Attribute::ParentWorkflowId
            | Attribute::ParentRunId
            | Attribute::BatonPinnedVersion
            | Attribute::TemporalScheduledById => Type::Keyword,
            Attribute::ExecutionStatus => Type::Status,
            Attribute::StartTime | Attribute::CloseTime => Type::Datetime,
            Attribute::ExecutionDuration => Type::Duration,
            Attribute::HistoryLength => Type::Int,
            Attribute::Custom(slot) => match slot.kind {
                SearchAttributeType::Keyword => Type::CustomKeyword,
                SearchAttributeType::Text => Type::Text,
                SearchAttributeType::Int => Type::Int,
                SearchAttributeType::Double => Type::Double,
                SearchAttributeType::Bool => Type::Bool,
                SearchAttributeType::Datetime => Type::Datetime,
                SearchAttributeType::KeywordList => Type::KeywordList,
            },
        }
    }

    /// True if some runs have no value (open runs have no close time, runs
    /// without a parent no parent).
    pub fn is_nullable(self) -> bool {
        matches!(
            self,
            Attribute::CloseTime
                | Attribute::ExecutionDuration
                | Attribute::ParentWorkflowId
                | Attribute::ParentRunId
                | Attribute::BatonPinnedVersion
                | Attribute::TemporalScheduledById
                | Attribute::Custom(_)
        )
    }
}
