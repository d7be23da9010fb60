//! What is stored by reference, how references look, and where they are
//! found and put back.

use std::collections::{BTreeSet, HashMap};

use serde_json::{json, Value};

use super::*;
use crate::engine::{ActivityToken, Command};

const OFFLOADER: Offloader = Offloader {
    threshold: 100,
    limit: 1_000,
};

fn offloaded(mut value: Value) -> (Value, Vec<StoredPayload>) {
    let mut out = Vec::new();
    OFFLOADER.value(&mut value, &mut out);
    (value, out)
}

#[test]
fn large_payloads_become_references_to_their_encoding() {
    let payload = json!({"pad": "x".repeat(200)});
    let (reference, stored) = offloaded(payload.clone());
    let encoded = serde_json::to_string(&payload).unwrap();
    let r = Reference::of(&reference).expect("a reference");
    assert_eq!(r.size_bytes, encoded.len() as u64);
    assert_eq!(
        r.sha256,
        format!("{:x}", Sha256::digest(encoded.as_bytes()))
    );
    assert_eq!(
        stored,
        vec![StoredPayload {
            sha256: r.sha256,
            data: encoded
        }]
    );
}

#[test]
fn small_oversized_and_reference_payloads_stay_in_place() {
    for value in [
        json!({"small": true}),
        json!("x".repeat(2_000)),
        Reference {
            sha256: "a".repeat(64),
            size_bytes: 5,
        }
        .to_value(),
    ] {
        assert_eq!(offloaded(value.clone()), (value, vec![]));
    }
}

#[test]
fn a_payload_holding_the_marker_is_stored_whatever_its_size() {
    let payload = json!({"nested": {MARKER: {"sha256": "b".repeat(64), "size_bytes": 1}, "x": 1}});
    let (reference, stored) = offloaded(payload.clone());
    assert!(Reference::of(&reference).is_some());
    assert_eq!(stored[0].data, serde_json::to_string(&payload).unwrap());
    // Off by size, the marker rule still holds.
    let mut value = payload;
    let mut out = Vec::new();
    Offloader {
        threshold: 0,
        limit: 1_000,
    }
    .value(&mut value, &mut out);
    assert_eq!(out.len(), 1);
    assert!(Reference::of(&value).is_some());
}

#[test]
fn only_well_formed_objects_are_references() {
    let digest = "c".repeat(64);
    assert!(Reference::of(&json!({MARKER: {"sha256": digest, "size_bytes": 3}})).is_some());
    for not in [
        json!({MARKER: {"sha256": "C".repeat(64), "size_bytes": 3}}),
        json!({MARKER: {"sha256": "c".repeat(63), "size_bytes": 3}}),
        json!({MARKER: {"sha256": digest, "size_bytes": -1}}),
        json!({MARKER: {"sha256": digest, "size_bytes": 3}, "other": 1}),
        json!([{MARKER: {"sha256": digest, "size_bytes": 3}}]),
    ] {
        assert!(Reference::of(&not).is_none(), "{not}");
    }
}

#[test]
fn a_command_stores_the_same_payload_once() {
    let big = json!({"pad": "y".repeat(300)});
    let mut cmd = Command::CompleteActivity {
        token: ActivityToken {
            scheduled_event_id: 5,
            attempt: 1,
        },
        result: big.clone(),
    };
    let mut out = Vec::new();
    OFFLOADER.command(&mut cmd, &mut out);
    OFFLOADER.value(&mut big.clone(), &mut out);
    assert_eq!(out.len(), 1);
    let Command::CompleteActivity { result, .. } = cmd else {
        unreachable!()
    };
    assert!(Reference::of(&result).is_some());
}

#[test]
fn scanning_finds_every_reference_in_stored_json() {
    let (a, _) = offloaded(json!({"pad": "a".repeat(200)}));
    let (b, _) = offloaded(json!({"pad": "b".repeat(200)}));
    let doc = json!({"events": [{"input": a}, {"deep": {"result": b}}], "text": "$baton_payload"});
    let mut found = BTreeSet::new();
    scan_digests(serde_json::to_string(&doc).unwrap().as_bytes(), &mut found);
    let expected: BTreeSet<String> = [&a, &b]
        .iter()
        .map(|v| Reference::of(v).unwrap().sha256)
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn putting_in_place_replaces_references_and_nothing_else() {
    let (reference, stored) = offloaded(json!({"pad": "z".repeat(200)}));
    let fetched: HashMap<String, Value> = stored
        .iter()
        .map(|p| (p.sha256.clone(), serde_json::from_str(&p.data).unwrap()))
        .collect();
    let mut value = reference;
    put_in_place(&mut value, &fetched);
    assert_eq!(value, json!({"pad": "z".repeat(200)}));
    let mut plain = json!({"a": 1});
    put_in_place(&mut plain, &fetched);
    assert_eq!(plain, json!({"a": 1}));
}
