//! What only the in-memory store does: injected faults and deterministic
//! task ids. The `Store` semantics themselves are the conformance suite's
//! (tests/store_memory.rs).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::sync::broadcast::Receiver;

use crate::api::ApiError;
use crate::engine::{Queue, Transition};
use crate::ids::WorkflowId;
use crate::store::conformance::{create, effects_only, enqueue, ns, started, timer, update, T0};
use crate::store::{Call, Error, Fault, MemoryStore, Store, Wakeup};
use crate::time::Timestamp;

fn commits(call: Call) -> bool {
    call == Call::Commit
}

fn assert_unavailable<T: std::fmt::Debug>(res: crate::store::Result<T>) {
    match res {
        Err(e @ Error::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("expected an injected fault, got {other:?}"),
    }
}

/// A store whose next commit suffers `fault`, the start of a run, and a
/// subscription to the store's wake-ups; the start was committed once, and
/// failed.
async fn start_failing(fault: Fault) -> (MemoryStore, Transition, Receiver<Wakeup>) {
    let store = MemoryStore::new();
    store.fail_next(1, commits, fault);
    let transition = started(&ns(), "order-1", "Order", T0);
    let wakeups = store.subscribe();
    assert_unavailable(store.commit(&[create(transition.clone())]).await);
    (store, transition, wakeups)
}

#[tokio::test]
async fn a_failed_commit_writes_nothing_and_the_next_one_succeeds() {
    let (store, transition, mut wakeups) = start_failing(Fault::Fail).await;
    let run_id = transition.state.run_id;
    assert_eq!(store.load_run(&ns(), run_id).await.unwrap(), None);
    assert!(
        wakeups.try_recv().is_err(),
        "a failed commit announced rows"
    );

    store.commit(&[create(transition)]).await.unwrap();
    let record = store.load_run(&ns(), run_id).await.unwrap().unwrap();
    assert_eq!(record.version, 1);
    assert!(wakeups.try_recv().is_ok(), "the start's rows are announced");
    assert_eq!(store.injected_faults(), 1);
}

#[tokio::test]
async fn an_ambiguous_commit_is_applied_but_reported_as_failed() {
    let (store, transition, mut wakeups) = start_failing(Fault::ApplyThenFail).await;
    let run_id = transition.state.run_id;
    let record = store.load_run(&ns(), run_id).await.unwrap();
    assert_eq!(record.map(|r| r.version), Some(1), "the commit was applied");
    assert!(wakeups.try_recv().is_err(), "nobody heard of the commit");
    // A blind retry finds the run there already, as after a lost
    // connection: callers must re-read.
    let again = store.commit(&[create(transition)]).await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
}

#[tokio::test]
async fn an_ambiguous_claim_moves_the_leases_of_rows_nobody_gets() {
    let store = MemoryStore::new();
    let state = started(&ns(), "order-1", "Order", T0).state;
    store
        .commit(&[create(effects_only(&state, Vec::new()))])
        .await
        .unwrap();
    let t = T0 + 100_000;
    let armed = effects_only(&state, vec![enqueue(timer("a"), t, 50)]);
    store.commit(&[update(1, armed)]).await.unwrap();

    store.fail_next(1, |call| call == Call::ClaimTasks, Fault::ApplyThenFail);
    assert_unavailable(store.claim_tasks(Queue::Timer, Timestamp(t), 10).await);
    let rows = store.claim_tasks(Queue::Timer, Timestamp(t), 10).await;
    assert_eq!(rows.unwrap(), vec![], "the lost claim holds the lease");
    let rows = store.claim_tasks(Queue::Timer, Timestamp(t + 50), 10).await;
    let rows = rows.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].claims, 2, "the lost claim counts");
}

#[tokio::test]
async fn an_outage_of_writes_lasts_until_cleared() {
    let store = MemoryStore::new();
    let transition = started(&ns(), "order-1", "Order", T0);
    store.commit(&[create(transition.clone())]).await.unwrap();
    store.fail_all(Call::is_write, Fault::Fail);

    for _ in 0..3 {
        assert_unavailable(store.probe_write().await);
        assert_unavailable(store.delete_task("task-1").await);
    }
    let closed = effects_only(&transition.state, Vec::new());
    assert_unavailable(store.commit(&[update(1, closed.clone())]).await);
    // Reads still work.
    let latest = store.latest_run(&ns(), &WorkflowId::from("order-1")).await;
    assert_eq!(latest.unwrap().map(|r| r.version), Some(1));

    store.clear_faults();
    store.probe_write().await.unwrap();
    store.commit(&[update(1, closed)]).await.unwrap();
    assert_eq!(store.injected_faults(), 7);
}

#[tokio::test]
async fn a_hook_decides_the_calls_no_rule_caught() {
    let store = MemoryStore::new();
    let mut n = 0;
    store.fail_when(move |call| {
        n += 1;
        (call == Call::ListNamespaces && n % 2 == 0).then_some(Fault::Fail)
    });
    store.fail_next(1, |_| true, Fault::Fail);
    assert_unavailable(store.list_namespaces().await);
    let results: Vec<bool> = futures::future::join_all((0..4).map(|_| store.list_namespaces()))
        .await
        .iter()
        .map(Result::is_ok)
        .collect();
    assert_eq!(results, [true, false, true, false]);
    assert_eq!(store.injected_faults(), 3);
}

#[tokio::test]
async fn task_ids_are_deterministic() {
    async fn claimed_ids() -> Vec<String> {
        let store = MemoryStore::new();
        let state = started(&ns(), "order-1", "Order", T0).state;
        let effects = vec![enqueue(timer("a"), T0, 50), enqueue(timer("b"), T0, 50)];
        store
            .commit(&[create(effects_only(&state, effects))])
            .await
            .unwrap();
        let rows = store.claim_tasks(Queue::Timer, Timestamp(T0), 10).await;
        rows.unwrap().into_iter().map(|row| row.task_id).collect()
    }
    let ids = claimed_ids().await;
    assert_eq!(ids, ["task-1", "task-2"]);
    assert_eq!(claimed_ids().await, ids);
}

#[test]
fn the_api_answers_an_unavailable_store_with_503() {
    let e = Error::Unavailable("injected fault: Commit failed".to_owned());
    let response = ApiError::from(e).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
}
