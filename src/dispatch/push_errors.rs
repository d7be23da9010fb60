//! The last push errors per endpoint version, as this node saw them: kept
//! in memory (a node's own view, lost on restart, not shared between
//! nodes), bounded per endpoint and in the number of endpoints, and shown
//! by the endpoints API so that a wrong URL or secret is obvious. Pure
//! bookkeeping: the caller passes the time.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use reqwest::StatusCode;

use super::answer::snippet;
use super::client::Delivery;
use crate::ids::{Namespace, TaskQueue};
use crate::time::Timestamp;

/// Errors kept per endpoint version, newest first.
pub const PER_ENDPOINT: usize = 5;
/// Endpoint versions tracked; past it, the one whose last error is oldest
/// is forgotten.
const ENDPOINTS: usize = 4096;

/// One failed push.
#[derive(Clone, Debug, PartialEq)]
pub struct PushError {
    pub time: Timestamp,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<u16>,
    pub message: String,
}

type Key = (Namespace, TaskQueue, String);

#[derive(Default)]
pub(super) struct PushErrors {
    by_endpoint: Mutex<HashMap<Key, VecDeque<PushError>>>,
}

/// What a delivery says went wrong, if anything did.
fn failure(delivery: &Delivery) -> Option<(Option<u16>, String)> {
    match delivery {
        Delivery::Answered { status, .. } if status.is_success() => None,
        Delivery::Answered { status, body } => {
            let reason = status.canonical_reason().unwrap_or("");
            let body = snippet(body);
            let message = if body.is_empty() {
                format!("answered {} {reason}", status.as_u16())
            } else {
                format!("answered {} {reason}: {body}", status.as_u16())
            };
            Some((Some(status.as_u16()), message))
        }
        Delivery::Refused(why) => Some((refused_status(why), format!("refused: {why}"))),
        Delivery::TimedOut => Some((None, "no complete answer before the deadline".to_owned())),
        Delivery::Failed(why) => Some((None, why.clone())),
    }
}

/// The status of a refusal by status (`endpoint answered 503 …`, as the
/// transport words it); connection errors have none.
fn refused_status(why: &str) -> Option<u16> {
    let rest = why.strip_prefix("endpoint answered ")?;
    let code: u16 = rest.split(' ').next()?.parse().ok()?;
    StatusCode::from_u16(code).ok().map(|s| s.as_u16())
}

impl PushErrors {
    /// Notes `delivery` to the endpoint version if it failed.
    pub(super) fn note(
        &self,
        namespace: &Namespace,
        task_queue: &TaskQueue,
        version: &str,
        delivery: &Delivery,
        now: Timestamp,
    ) {
        let Some((status_code, message)) = failure(delivery) else {
            return;
        };
        let Ok(mut map) = self.by_endpoint.lock() else {
            return;
        };
        let key = (namespace.clone(), task_queue.clone(), version.to_owned());
        if !map.contains_key(&key) && map.len() >= ENDPOINTS {
            let oldest = map
                .iter()
                .min_by_key(|(_, errors)| errors.front().map(|e| e.time))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let errors = map.entry(key).or_default();
        errors.push_front(PushError {
            time: now,
            status_code,
            message,
        });
        errors.truncate(PER_ENDPOINT);
    }

    /// The endpoint version's last errors, newest first.
    pub(super) fn of(
        &self,
        namespace: &Namespace,
        task_queue: &TaskQueue,
        version: &str,
    ) -> Vec<PushError> {
        let Ok(map) = self.by_endpoint.lock() else {
            return Vec::new();
        };
        let key = (namespace.clone(), task_queue.clone(), version.to_owned());
        map.get(&key)
            .map(|e| e.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (Namespace, TaskQueue) {
        (Namespace("default".into()), TaskQueue("q".into()))
    }

    #[test]
    fn failures_are_kept_newest_first_and_bounded() {
        let errors = PushErrors::default();
        let (ns, q) = key();
        let ok = Delivery::Answered {
            status: StatusCode::OK,
            body: b"{}".to_vec(),
        };
        errors.note(&ns, &q, "v1", &ok, Timestamp(1));
        assert!(errors.of(&ns, &q, "v1").is_empty());
        for i in 0..8 {
            let d = Delivery::Answered {
                status: StatusCode::UNAUTHORIZED,
                body: format!("bad signature {i}").into_bytes(),
            };
            errors.note(&ns, &q, "v1", &d, Timestamp(10 + i));
        }
        let got = errors.of(&ns, &q, "v1");
        assert_eq!(got.len(), PER_ENDPOINT);
        assert_eq!(got[0].time, Timestamp(17));
        assert_eq!(got[0].status_code, Some(401));
        assert_eq!(got[0].message, "answered 401 Unauthorized: bad signature 7");
        assert!(errors.of(&ns, &q, "v2").is_empty());
    }

    #[test]
    fn refusals_and_timeouts_say_what_happened() {
        assert_eq!(
            failure(&Delivery::TimedOut),
            Some((None, "no complete answer before the deadline".into()))
        );
        assert_eq!(
            failure(&Delivery::Refused(
                "endpoint answered 503 Service Unavailable".into()
            ))
            .map(|f| f.0),
            Some(Some(503))
        );
        assert_eq!(
            failure(&Delivery::Refused(
                "connection refused (127.0.0.1:9)".into()
            ))
            .map(|f| f.0),
            Some(None)
        );
        assert_eq!(
            failure(&Delivery::Failed("reset".into())),
            Some((None, "reset".into()))
        );
    }
}
