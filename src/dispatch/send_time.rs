//! When an activity attempt's push goes out, and with what deadline: a
//! pure decision, taken once the attempt's endpoint has room for it.
//!
//! The attempt started (its timers were armed) when it was committed, but
//! the push may have waited behind its endpoint's `max_concurrency`. A
//! Temporal activity's start-to-close clock starts when a worker picks the
//! task up; here it starts at the send: a push sent late moves the
//! attempt's start to the send (recorded as `Command::ActivityAttemptSent`),
//! so queueing never eats the handler's time. An attempt whose timer rows
//! are due before that move could be recorded is not sent: its timer
//! settles it, without a wasted push.

use crate::time::{Duration, Timestamp};

/// Pushes that waited for their endpoint longer than this restart their
/// attempt's clocks (shorter waits are not worth a commit).
const RESTART_AFTER: Duration = Duration(1_000);

/// What the decision needs to know of an attempt.
#[derive(Debug)]
pub(super) struct Attempt {
    /// When the attempt started (was committed).
    pub started: Timestamp,
    pub start_to_close: Duration,
    /// The activity's schedule-to-close deadline, if it has one.
    pub schedule_to_close_deadline: Option<Timestamp>,
    /// When the attempt's start-to-close (or heartbeat) timer row is due:
    /// `started + start_to_close`, or later if this node postponed it while
    /// the push waited (see `waiting`).
    pub timers_due: Timestamp,
}

/// The push's start and deadline as the handler sees them.
#[derive(Debug, PartialEq)]
pub(super) struct SendTime {
    pub started: Timestamp,
    pub deadline: Timestamp,
    /// The start moved to the send: record it.
    pub restarted: bool,
}

/// `None` if the attempt must not be sent at `now`; otherwise its start
/// and deadline. A send later than [`RESTART_AFTER`] (or a tenth of the
/// start-to-close timeout, if less) after the start moves the start to
/// `now`; then the timers must be due far enough out (a tenth of the
/// timeout, at least 100 ms) for the move to be recorded first.
pub(super) fn decide(attempt: &Attempt, now: Timestamp) -> Option<SendTime> {
    let cap = |d: Timestamp| attempt.schedule_to_close_deadline.map_or(d, |s| d.min(s));
    let stc = attempt.start_to_close;
    let fires = cap(attempt.timers_due);
    if fires <= now {
        return None;
    }
    let waited = now.since(attempt.started);
    let threshold = RESTART_AFTER.min(Duration(stc.0 / 10));
    if waited <= threshold {
        return Some(SendTime {
            started: attempt.started,
            deadline: cap(attempt.started.saturating_add(stc)),
            restarted: false,
        });
    }
    let margin = Duration(stc.0 / 10).max(Duration(100));
    if fires.since(now) <= margin {
        // The attempt's timer may fire before the restart is recorded, and
        // the handler's work would be refused: not worth a push.
        return None;
    }
    Some(SendTime {
        started: now,
        deadline: cap(now.saturating_add(stc)),
        restarted: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(1_700_000_000_000);

    fn attempt(stc_ms: i64) -> Attempt {
        Attempt {
            started: T,
            start_to_close: Duration(stc_ms),
            schedule_to_close_deadline: None,
            timers_due: T.saturating_add(Duration(stc_ms)),
        }
    }

    fn at(ms: i64) -> Timestamp {
        T.saturating_add(Duration(ms))
    }

    #[test]
    fn a_prompt_send_keeps_the_start() {
        let sent = decide(&attempt(5_000), at(300)).expect("sent");
        assert_eq!(
            sent,
            SendTime {
                started: T,
                deadline: at(5_000),
                restarted: false
            }
        );
    }

    #[test]
    fn a_late_send_restarts_the_clock_at_the_send() {
        // Waited 2 s of a 5 s timeout: the handler still gets all 5 s.
        let sent = decide(&attempt(5_000), at(2_000)).expect("sent");
        assert_eq!(
            sent,
            SendTime {
                started: at(2_000),
                deadline: at(7_000),
                restarted: true
            }
        );
    }

    #[test]
    fn short_timeouts_restart_after_a_tenth_of_them() {
        assert!(!decide(&attempt(500), at(50)).expect("sent").restarted);
        assert!(decide(&attempt(500), at(51)).expect("sent").restarted);
    }

    #[test]
    fn not_sent_once_the_timer_is_due_or_nearly() {
        assert_eq!(decide(&attempt(5_000), at(5_000)), None);
        assert_eq!(decide(&attempt(5_000), at(9_000)), None);
        // Within the margin (a tenth of the timeout) of the timer.
        assert_eq!(decide(&attempt(5_000), at(4_500)), None);
        assert!(decide(&attempt(5_000), at(4_499)).is_some());
    }

    #[test]
    fn a_postponed_timer_lets_a_long_wait_be_sent_with_its_whole_timeout() {
        // Waited 12 s for a 5 s attempt; the node held its timer off.
        let mut a = attempt(5_000);
        a.timers_due = at(15_000);
        let sent = decide(&a, at(12_000)).expect("sent");
        assert_eq!(
            sent,
            SendTime {
                started: at(12_000),
                deadline: at(17_000),
                restarted: true
            }
        );
    }

    #[test]
    fn schedule_to_close_caps_everything() {
        let mut a = attempt(5_000);
        a.timers_due = at(15_000);
        a.schedule_to_close_deadline = Some(at(13_000));
        let sent = decide(&a, at(12_000)).expect("sent");
        assert_eq!(sent.deadline, at(13_000));
        assert_eq!(decide(&a, at(13_000)), None);
        // A deadline within the margin is not worth a push either.
        assert_eq!(decide(&a, at(12_600)), None);
    }
}
