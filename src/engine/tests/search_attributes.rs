//! Custom search attributes: set by UpsertWorkflowSearchAttributes (null
//! removes), refused whole with BAD_SEARCH_ATTRIBUTES, carried by
//! continue-as-new unless given, never inherited by children.

use serde_json::{json, Value};

use super::harness::Scenario;
use crate::engine::{
    self, Command, EventAttributes, Registry, SearchAttributeType, Slot, Transition,
    WorkflowCommand, WorkflowTaskFailedCause,
};

fn registry() -> Registry {
    let attributes = [
        ("CustomerId", SearchAttributeType::Keyword, 1),
        ("Priority", SearchAttributeType::Int, 2),
        ("Tags", SearchAttributeType::KeywordList, 1),
    ];
    Registry::new(attributes.map(|(name, kind, index)| (name.to_owned(), Slot { kind, index })))
}

/// Answers the current workflow task with `commands` (wire JSON).
fn answer(scenario: &mut Scenario, commands: Value) -> Transition {
    let token = engine::workflow_task_view(scenario.state(), &scenario.ctx())
        .expect("a workflow task")
        .token;
    let commands: Vec<WorkflowCommand> = serde_json::from_value(commands).expect("commands");
    scenario
        .apply(Command::CompleteWorkflowTask {
            token,
            commands,
            identity: None,
            force_create_new_workflow_task: false,
            search_attributes: registry(),
        })
        .expect("accepted")
}

fn upsert(attributes: Value) -> Value {
    json!({"command_type": "UpsertWorkflowSearchAttributes",
           "attributes": {"search_attributes": attributes}})
}

fn values(t: &Transition) -> Value {
    t.state
        .search_attributes
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn upserts_set_and_remove_and_keep_the_rest() {
    let mut s = Scenario::given("start");
    let t = answer(
        &mut s,
        json!([upsert(json!({"CustomerId": "c-17", "Priority": 2})),
               {"command_type": "StartTimer", "attributes": {"timer_id": "t", "start_to_fire_timeout": "1s"}}]),
    );
    assert_eq!(values(&t), json!({"CustomerId": "c-17", "Priority": 2}));
    let event = t
        .events
        .iter()
        .find_map(|e| match &e.attributes {
            EventAttributes::UpsertWorkflowSearchAttributes(a) => Some(a.clone()),
            _ => None,
        })
        .expect("an upsert event");
    assert_eq!(event.workflow_task_completed_event_id, 4);
    assert_eq!(
        event.search_attributes["Priority"]
            .as_ref()
            .map(|v| (v.kind, v.slot)),
        Some((SearchAttributeType::Int, 2))
    );
    s.run("@1s fire-timer t").expect("fires");
    let t = answer(
        &mut s,
        json!([upsert(json!({"Priority": null, "Tags": ["a"]})),
               {"command_type": "CompleteWorkflowExecution", "attributes": {}}]),
    );
    assert_eq!(values(&t), json!({"CustomerId": "c-17", "Tags": ["a"]}));
}

#[test]
fn a_bad_attribute_refuses_the_whole_answer() {
    for bad in [
        json!({"Nope": 1}),
        json!({"Priority": "high"}),
        json!({"Tags": [1]}),
        json!({}),
    ] {
        let mut s = Scenario::given("start");
        let t = answer(
            &mut s,
            json!([{"command_type": "StartTimer", "attributes": {"timer_id": "t", "start_to_fire_timeout": "1s"}},
                   upsert(bad.clone())]),
        );
        let failed = t.events.iter().find_map(|e| match &e.attributes {
            EventAttributes::WorkflowTaskFailed(f) => Some(f.cause),
            _ => None,
        });
        assert_eq!(
            failed,
            Some(WorkflowTaskFailedCause::BadSearchAttributes),
            "{bad}"
        );
        assert!(t.state.timers.is_empty(), "{bad}: nothing applied");
        assert!(t.state.search_attributes.is_empty(), "{bad}");
    }
}

#[test]
fn continue_as_new_carries_them_unless_given_and_children_inherit_none() {
    let mut s = Scenario::given("start");
    answer(
        &mut s,
        json!([upsert(json!({"CustomerId": "c-17"})),
               {"command_type": "StartChildWorkflowExecution",
                "attributes": {"workflow_id": "child-1", "workflow_type": "Child"}},
               {"command_type": "StartChildWorkflowExecution",
                "attributes": {"workflow_id": "child-2", "workflow_type": "Child",
                               "search_attributes": {"Priority": 7}}}]),
    );
    assert_eq!(s.state().children.len(), 2);
    let children: Vec<Vec<String>> = s
        .history
        .iter()
        .filter_map(|e| match &e.attributes {
            EventAttributes::StartChildWorkflowExecutionInitiated(a) => {
                Some(a.search_attributes.keys().cloned().collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(children, [vec![], vec!["Priority".to_owned()]]);

    let mut carried = Scenario::given("start");
    answer(&mut carried, json!([upsert(json!({"CustomerId": "c-17"}))]));
    carried.run("@1s signal go").expect("signal");
    let t = answer(
        &mut carried,
        json!([{"command_type": "ContinueAsNewWorkflowExecution", "attributes": {}}]),
    );
    let next = t.next_run.expect("a next run");
    assert_eq!(
        next.search_attributes.keys().collect::<Vec<_>>(),
        ["CustomerId"]
    );

    let mut given = Scenario::given("start");
    answer(&mut given, json!([upsert(json!({"CustomerId": "c-17"}))]));
    given.run("@1s signal go").expect("signal");
    let t = answer(
        &mut given,
        json!([{"command_type": "ContinueAsNewWorkflowExecution",
                "attributes": {"search_attributes": {"Priority": 1}}}]),
    );
    let next = t.next_run.expect("a next run");
    assert_eq!(
        next.search_attributes.keys().collect::<Vec<_>>(),
        ["Priority"]
    );
}
