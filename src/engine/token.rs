//! Fencing tokens (DESIGN.md invariant 3). Every push carries one; an
//! answer whose token does not name the run's current task and attempt is
//! refused and changes nothing.
//!
//! On the wire a token is opaque: base64url of
//! `v1:<namespace>:<run id>:w:<seq>:<attempt>:<started ms>` for workflow tasks,
//! `v1:<namespace>:<run id>:a:<scheduled event id>:<attempt>` for
//! activities and `v1:<namespace>:<run id>:c:<last event id>:<its time ms>`
//! for the continuation of a checkpoint session (docs/protocol.md §5.9).
//!
//! A [`HistoryReference`] is not a task token but is written the same way,
//! `v1:<namespace>:<run id>:h:<last event id>:<expiry ms>`: what a partial
//! push lets its handler page in (docs/protocol.md §5.10).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::ids::{Namespace, RunId};
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkflowTaskToken {
    /// Counts the run's workflow tasks, transient ones included.
    pub seq: u64,
    pub attempt: u32,
    /// When the dispatcher pushed this attempt; the time of the
    /// WorkflowTaskStarted event the SDK saw (and so of `workflow.now()`).
    pub started_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivityToken {
    pub scheduled_event_id: i64,
    pub attempt: u32,
}

/// A checkpoint's continuation: current while the run's last event is
/// still the one the checkpoint appended last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContinuationToken {
    pub last_event_id: i64,
    /// That event's time: the earliest `workflow_time` the next checkpoint
    /// may give.
    pub last_event_time: Timestamp,
}

/// A token with the run it belongs to, as handed to SDKs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskToken {
    pub namespace: Namespace,
    pub run_id: RunId,
    pub task: TokenKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Workflow(WorkflowTaskToken),
    Activity(ActivityToken),
    Continuation(ContinuationToken),
}

impl fmt::Display for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = match self.task {
            TokenKind::Workflow(t) => format!(
                "v1:{}:{}:w:{}:{}:{}",
                self.namespace,
                self.run_id,
                t.seq,
                t.attempt,
                t.started_at.millis()
            ),
            TokenKind::Activity(t) => format!(
                "v1:{}:{}:a:{}:{}",
                self.namespace, self.run_id, t.scheduled_event_id, t.attempt
            ),
            TokenKind::Continuation(t) => format!(
                "v1:{}:{}:c:{}:{}",
                self.namespace,
                self.run_id,
                t.last_event_id,
                t.last_event_time.millis()
            ),
        };
        f.write_str(&URL_SAFE_NO_PAD.encode(raw))
    }
}

/// The token could not be decoded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed task token")]
pub struct TokenError;

impl FromStr for TaskToken {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<TaskToken, TokenError> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| TokenError)?;
        let raw = String::from_utf8(bytes).map_err(|_| TokenError)?;
        let parts: Vec<&str> = raw.split(':').collect();
        let num = |i: usize| -> Result<i64, TokenError> {
            parts.get(i).and_then(|p| p.parse().ok()).ok_or(TokenError)
        };
        if parts.first() != Some(&"v1") || parts.len() < 6 {
            return Err(TokenError);
        }
        let namespace = Namespace(parts[1].to_owned());
        let run_id = parts[2].parse().map_err(|_| TokenError)?;
        if (parts[3], parts.len()) == ("c", 6) {
            return Ok(TaskToken {
                namespace,
                run_id,
                task: TokenKind::Continuation(ContinuationToken {
                    last_event_id: num(4)?,
                    last_event_time: Timestamp(num(5)?),
                }),
            });
        }
        let attempt = u32::try_from(num(5)?).map_err(|_| TokenError)?;
        let task = match (parts[3], parts.len()) {
            ("w", 7) => TokenKind::Workflow(WorkflowTaskToken {
                seq: u64::try_from(num(4)?).map_err(|_| TokenError)?,
                attempt,
                started_at: Timestamp(num(6)?),
            }),
            ("a", 6) => TokenKind::Activity(ActivityToken {
                scheduled_event_id: num(4)?,
                attempt,
            }),
            _ => return Err(TokenError),
        };
        Ok(TaskToken {
            namespace,
            run_id,
            task,
        })
    }
}

/// The events `1 ..= through` of a run, readable until `expires_at`
/// through the page route (docs/protocol.md §5.10). Authorised by the
/// request's signature with the run's endpoint secret, not by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryReference {
    pub namespace: Namespace,
    pub run_id: RunId,
    pub through: i64,
    pub expires_at: Timestamp,
}

impl fmt::Display for HistoryReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = format!(
            "v1:{}:{}:h:{}:{}",
            self.namespace,
            self.run_id,
            self.through,
            self.expires_at.millis()
        );
        f.write_str(&URL_SAFE_NO_PAD.encode(raw))
    }
}

impl FromStr for HistoryReference {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<HistoryReference, TokenError> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| TokenError)?;
        let raw = String::from_utf8(bytes).map_err(|_| TokenError)?;
        let parts: Vec<&str> = raw.split(':').collect();
        let [v, namespace, run_id, "h", through, expires] = parts[..] else {
            return Err(TokenError);
        };
        if v != "v1" {
            return Err(TokenError);
        }
        Ok(HistoryReference {
            namespace: Namespace(namespace.to_owned()),
            run_id: run_id.parse().map_err(|_| TokenError)?,
            through: through.parse().map_err(|_| TokenError)?,
            expires_at: Timestamp(expires.parse().map_err(|_| TokenError)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let run_id = RunId::generate();
        for task in [
            TokenKind::Workflow(WorkflowTaskToken {
                seq: 3,
                attempt: 2,
                started_at: Timestamp(1_700_000_000_000),
            }),
            TokenKind::Activity(ActivityToken {
                scheduled_event_id: 5,
                attempt: 7,
            }),
            TokenKind::Continuation(ContinuationToken {
                last_event_id: 11,
                last_event_time: Timestamp(1_700_000_000_030),
            }),
        ] {
            let t = TaskToken {
                namespace: "default".into(),
                run_id,
                task,
            };
            assert_eq!(t.to_string().parse::<TaskToken>(), Ok(t));
        }
        assert_eq!("%%%".parse::<TaskToken>(), Err(TokenError));
        assert_eq!(
            URL_SAFE_NO_PAD.encode("v1:x:y:z").parse::<TaskToken>(),
            Err(TokenError)
        );
    }

    #[test]
    fn history_references_round_trip_and_are_not_task_tokens() {
        let r = HistoryReference {
            namespace: "default".into(),
            run_id: RunId::generate(),
            through: 1_200,
            expires_at: Timestamp(1_700_000_300_000),
        };
        let s = r.to_string();
        assert_eq!(s.parse::<HistoryReference>(), Ok(r.clone()));
        assert_eq!(s.parse::<TaskToken>(), Err(TokenError));
        let continuation = TaskToken {
            namespace: "default".into(),
            run_id: r.run_id,
            task: TokenKind::Continuation(ContinuationToken {
                last_event_id: 11,
                last_event_time: Timestamp(1),
            }),
        };
        assert_eq!(
            continuation.to_string().parse::<HistoryReference>(),
            Err(TokenError)
        );
        assert_eq!("%%%".parse::<HistoryReference>(), Err(TokenError));
    }
}
