//! Unit and property tests of the schedule specs and rules: cron forms,
//! time zones across DST gaps and overlaps, leap days and month ends,
//! calendars, intervals, exclusions, jitter bounds, every overlap policy,
//! catch-up, pause, limited actions, trigger and backfill.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::engine::RunStatus;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("an RFC 3339 test time")
}

fn show(t: Timestamp) -> String {
    t.to_string().replace(".000Z", "Z")
}

fn cron(exprs: &[&str]) -> Spec {
    Spec {
        cron_expressions: exprs.iter().map(|s| (*s).to_owned()).collect(),
        ..Spec::default()
    }
}

fn times(spec: &Spec, after: &str, n: usize) -> Vec<String> {
    let compiled = spec.compile().expect("a valid spec");
    let mut out = Vec::new();
    let mut cursor = ts(after);
    while out.len() < n {
        let Some(next) = compiled.next_after(cursor) else {
            break;
        };
        out.push(show(next));
        cursor = next;
    }
    out
}

fn every(secs: i64, offset: i64) -> IntervalSpec {
    IntervalSpec {
        every: Duration::from_secs(secs),
        offset: Duration::from_secs(offset),
    }
}

fn range(start: i32, end: i32, step: i32) -> Range {
    Range { start, end, step }
}

fn schedule(spec: Spec, overlap: Overlap) -> Schedule {
    Schedule {
        spec,
        action: Action {
            start_workflow: StartWorkflowAction {
                workflow_id: "report".into(),
                workflow_type: "Report".into(),
                task_queue: "q".into(),
                input: json!(["daily"]),
                workflow_execution_timeout: None,
                workflow_run_timeout: None,
                workflow_task_timeout: None,
                memo: None,
                retry_policy: None,
            },
        },
        policies: Policies {
            overlap_policy: overlap,
            ..Policies::default()
        },
        state: State::default(),
    }
}

fn field_of(spec: Spec) -> String {
    spec.compile().expect_err("an invalid spec").field
}

#[test]
fn weekday_nine_am_runs_monday_to_friday_only() {
    // 2025-01-04 is a Saturday.
    assert_eq!(
        times(&cron(&["0 9 * * 1-5"]), "2025-01-04T00:00:00Z", 6),
        [
            "2025-01-06T09:00:00Z",
            "2025-01-07T09:00:00Z",
            "2025-01-08T09:00:00Z",
            "2025-01-09T09:00:00Z",
            "2025-01-10T09:00:00Z",
            "2025-01-13T09:00:00Z",
        ]
    );
    // Names, and 7 as Sunday.
    assert_eq!(
        times(&cron(&["0 9 * * SAT,7"]), "2025-01-04T10:00:00Z", 2),
        ["2025-01-05T09:00:00Z", "2025-01-11T09:00:00Z"]
    );
}

#[test]
fn six_fields_end_with_the_year_and_seven_start_with_the_second() {
    assert_eq!(
        times(&cron(&["0 12 1 1 * 2030"]), "2025-01-01T00:00:00Z", 2),
        ["2030-01-01T12:00:00Z"]
    );
    assert_eq!(
        times(&cron(&["30 0 12 1 1 * 2030"]), "2025-01-01T00:00:00Z", 2),
        ["2030-01-01T12:00:30Z"]
    );
    assert_eq!(
        times(&cron(&["*/20 * * * * * *"]), "2025-01-01T00:00:00Z", 3),
        [
            "2025-01-01T00:00:20Z",
            "2025-01-01T00:00:40Z",
            "2025-01-01T00:01:00Z"
        ]
    );
}

#[test]
fn descriptors_and_comments() {
    let after = "2025-01-01T10:30:00Z";
    assert_eq!(
        times(&cron(&["@hourly"]), after, 1),
        ["2025-01-01T11:00:00Z"]
    );
    assert_eq!(
        times(&cron(&["@daily"]), after, 1),
        ["2025-01-02T00:00:00Z"]
    );
    // 2025-01-05 is a Sunday.
    assert_eq!(
        times(&cron(&["@weekly"]), after, 1),
        ["2025-01-05T00:00:00Z"]
    );
    assert_eq!(
        times(&cron(&["@monthly"]), after, 1),
        ["2025-02-01T00:00:00Z"]
    );
    assert_eq!(
        times(&cron(&["@yearly"]), after, 1),
        ["2026-01-01T00:00:00Z"]
    );
    assert_eq!(
        times(&cron(&["0 12 * * * # noon every day"]), after, 1),
        ["2025-01-01T12:00:00Z"]
    );
    assert_eq!(
        times(&cron(&["@every 6h/15m"]), after, 2),
        ["2025-01-01T12:15:00Z", "2025-01-01T18:15:00Z"]
    );
}

#[test]
fn cron_tz_and_time_zone_follow_daylight_saving() {
    // New York: UTC-5 in winter, UTC-4 in summer.
    let spec = cron(&["CRON_TZ=America/New_York 0 9 * * *"]);
    assert_eq!(
        times(&spec, "2025-03-08T00:00:00Z", 2),
        ["2025-03-08T14:00:00Z", "2025-03-09T13:00:00Z"]
    );
    let spec = Spec {
        time_zone: Some("America/New_York".into()),
        ..cron(&["0 9 * * *"])
    };
    assert_eq!(
        times(&spec, "2025-11-01T00:00:00Z", 2),
        ["2025-11-01T13:00:00Z", "2025-11-02T14:00:00Z"]
    );
}

#[test]
fn a_time_in_a_dst_gap_is_skipped_that_day() {
    // Berlin springs forward at 02:00 on 2025-03-30: 02:30 does not exist.
    let spec = Spec {
        time_zone: Some("Europe/Berlin".into()),
        ..cron(&["30 2 * * *"])
    };
    assert_eq!(
        times(&spec, "2025-03-29T00:00:00Z", 2),
        ["2025-03-29T01:30:00Z", "2025-03-31T00:30:00Z"]
    );
}

#[test]
fn a_time_in_a_dst_overlap_fires_twice() {
    // New York falls back at 02:00 EDT on 2025-11-02: 01:30 happens twice.
    let spec = Spec {
        time_zone: Some("America/New_York".into()),
        ..cron(&["30 1 * * *"])
    };
    assert_eq!(
        times(&spec, "2025-11-01T12:00:00Z", 3),
        [
            "2025-11-02T05:30:00Z",
            "2025-11-02T06:30:00Z",
            "2025-11-03T06:30:00Z"
        ]
    );
    // Every 20 minutes through the overlap: each wall time of the repeated
    // hour twice, in instant order.
    let spec = Spec {
        time_zone: Some("America/New_York".into()),
        ..cron(&["*/20 1 * * *"])
    };
    assert_eq!(
        times(&spec, "2025-11-02T05:00:00Z", 6),
        [
            "2025-11-02T05:20:00Z",
            "2025-11-02T05:40:00Z",
            "2025-11-02T06:00:00Z",
            "2025-11-02T06:20:00Z",
            "2025-11-02T06:40:00Z",
            "2025-11-03T06:00:00Z"
        ]
    );
}

#[test]
fn leap_days_and_month_ends() {
    assert_eq!(
        times(&cron(&["0 0 29 2 *"]), "2025-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    );
    // `L`: the last day of each month.
    assert_eq!(
        times(&cron(&["0 0 L * *"]), "2024-01-15T00:00:00Z", 3),
        [
            "2024-01-31T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2024-03-31T00:00:00Z"
        ]
    );
    // The 31st skips the months without one.
    assert_eq!(
        times(&cron(&["0 0 31 * *"]), "2025-01-31T00:00:00Z", 2),
        ["2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z"]
    );
    // `#`: the first Monday of the month.
    assert_eq!(
        times(&cron(&["0 9 * * 1#1"]), "2025-01-01T00:00:00Z", 2),
        ["2025-01-06T09:00:00Z", "2025-02-03T09:00:00Z"]
    );
}

#[test]
fn day_of_month_and_day_of_week_must_both_match() {
    // Friday the 13th (Temporal's rule, not cron's "or").
    assert_eq!(
        times(&cron(&["0 0 13 * 5"]), "2025-01-01T00:00:00Z", 2),
        ["2025-06-13T00:00:00Z", "2026-02-13T00:00:00Z"]
    );
}

#[test]
fn structured_calendars_with_ranges_and_steps() {
    let spec = Spec {
        calendars: vec![CalendarSpec {
            minute: vec![range(0, 45, 15)],
            hour: vec![range(9, 0, 0)],
            day_of_week: vec![range(1, 5, 1)],
            ..CalendarSpec::default()
        }],
        ..Spec::default()
    };
    assert_eq!(
        times(&spec, "2025-01-03T09:40:00Z", 3),
        [
            "2025-01-03T09:45:00Z",
            "2025-01-06T09:00:00Z",
            "2025-01-06T09:15:00Z"
        ]
    );
    // Defaults: second, minute and hour 0; every day.
    let midnight = Spec {
        calendars: vec![CalendarSpec::default()],
        ..Spec::default()
    };
    assert_eq!(
        times(&midnight, "2025-01-03T09:40:00Z", 1),
        ["2025-01-04T00:00:00Z"]
    );
}

#[test]
fn intervals_with_offsets_and_the_union_of_sources() {
    let spec = Spec {
        intervals: vec![every(6 * 3600, 15 * 60)],
        ..Spec::default()
    };
    assert_eq!(
        times(&spec, "2025-01-01T00:15:00Z", 3),
        [
            "2025-01-01T06:15:00Z",
            "2025-01-01T12:15:00Z",
            "2025-01-01T18:15:00Z"
        ]
    );
    let union = Spec {
        intervals: vec![every(3600, 0)],
        ..cron(&["30 0 * * *"])
    };
    assert_eq!(
        times(&union, "2025-01-01T00:00:00Z", 3),
        [
            "2025-01-01T00:30:00Z",
            "2025-01-01T01:00:00Z",
            "2025-01-01T02:00:00Z"
        ]
    );
}

#[test]
fn exclusions_and_start_and_end_bound_the_times() {
    let spec = Spec {
        intervals: vec![every(3600, 0)],
        exclude_calendars: vec![CalendarSpec {
            hour: vec![range(12, 13, 1)],
            ..CalendarSpec::default()
        }],
        ..Spec::default()
    };
    assert_eq!(
        times(&spec, "2025-01-01T10:30:00Z", 3),
        [
            "2025-01-01T11:00:00Z",
            "2025-01-01T14:00:00Z",
            "2025-01-01T15:00:00Z"
        ]
    );
    let bounded = Spec {
        intervals: vec![every(3600, 0)],
        start_time: Some(ts("2025-01-01T05:00:00Z")),
        end_time: Some(ts("2025-01-01T07:00:00Z")),
        ..Spec::default()
    };
    assert_eq!(
        times(&bounded, "2025-01-01T00:00:00Z", 5),
        [
            "2025-01-01T05:00:00Z",
            "2025-01-01T06:00:00Z",
            "2025-01-01T07:00:00Z"
        ]
    );
}

#[test]
fn jitter_is_deterministic_below_its_bound_and_keeps_times_in_order() {
    let spec = Spec {
        intervals: vec![every(3600, 0)],
        jitter: Duration::from_secs(600),
        ..Spec::default()
    };
    let compiled = spec.compile().unwrap();
    let mut cursor = ts("2025-01-01T00:00:00Z");
    let mut delays = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let nominal = compiled.next_after(cursor).unwrap();
        let actual = compiled.actual("a", nominal);
        let delay = actual.millis() - nominal.millis();
        assert!((0..600_000).contains(&delay), "delay {delay}");
        assert_eq!(compiled.actual("a", nominal), actual, "same on every node");
        delays.insert(delay);
        cursor = nominal;
    }
    assert!(
        delays.len() > 400,
        "jitter spreads: {} values",
        delays.len()
    );
    let nominal = ts("2025-01-01T05:00:00Z");
    assert_ne!(compiled.actual("a", nominal), compiled.actual("b", nominal));

    // Jitter larger than the gap to the next time is capped by the gap.
    let minutely = Spec {
        jitter: Duration::from_secs(300),
        ..cron(&["* * * * *"])
    };
    let compiled = minutely.compile().unwrap();
    for minute in 0..200 {
        let nominal = Timestamp(ts("2025-01-01T00:00:00Z").millis() + minute * 60_000);
        let delay = compiled.actual("x", nominal).millis() - nominal.millis();
        assert!((0..60_000).contains(&delay), "delay {delay}");
    }
}

#[test]
fn invalid_specs_name_their_field() {
    assert_eq!(field_of(cron(&["0 9 * *"])), "spec.cron_expressions[0]");
    assert_eq!(
        field_of(cron(&["@daily", "61 * * * *"])),
        "spec.cron_expressions[1]"
    );
    assert_eq!(
        field_of(cron(&["CRON_TZ=Mars/Olympus 0 9 * * *"])),
        "spec.cron_expressions[0]"
    );
    assert_eq!(
        field_of(Spec {
            time_zone: Some("Mars/Olympus".into()),
            ..cron(&["0 9 * * *"])
        }),
        "spec.time_zone"
    );
    assert_eq!(
        field_of(Spec {
            time_zone: Some("UTC".into()),
            ..cron(&["CRON_TZ=Europe/Paris 0 9 * * *"])
        }),
        "spec.cron_expressions[0]"
    );
    assert_eq!(
        field_of(Spec {
            intervals: vec![every(60, 0)],
            jitter: Duration::from_secs(61),
            ..Spec::default()
        }),
        "spec.jitter"
    );
    assert_eq!(
        field_of(Spec {
            intervals: vec![IntervalSpec {
                every: Duration(500),
                offset: Duration::ZERO
            }],
            ..Spec::default()
        }),
        "spec.intervals[0].every"
    );
    assert_eq!(
        field_of(Spec {
            calendars: vec![CalendarSpec {
                hour: vec![range(9, 24, 1)],
                ..CalendarSpec::default()
            }],
            ..Spec::default()
        }),
        "spec.calendars[0].hour[0]"
    );
    assert_eq!(
        field_of(Spec {
            start_time: Some(ts("2025-01-02T00:00:00Z")),
            end_time: Some(ts("2025-01-01T00:00:00Z")),
            ..cron(&["@daily"])
        }),
        "spec.end_time"
    );
    let mut bad = schedule(cron(&["@daily"]), Overlap::Skip);
    bad.action.start_workflow.workflow_type = String::new();
    assert_eq!(
        validate(&bad).unwrap_err().field,
        "action.start_workflow.workflow_type"
    );
}

/// A schedule every hour on the hour, created at midnight.
struct Hourly {
    schedule: Schedule,
    compiled: Compiled,
    info: Info,
}

impl Hourly {
    fn new(overlap: Overlap) -> Hourly {
        let schedule = schedule(
            Spec {
                intervals: vec![every(3600, 0)],
                ..Spec::default()
            },
            overlap,
        );
        let compiled = validate(&schedule).unwrap();
        Hourly {
            schedule,
            compiled,
            info: create(ts("2025-01-01T00:00:00Z")),
        }
    }

    fn tick(&mut self, at: &str, closed: &[&str]) -> Tick {
        let closed: Vec<Closed> = closed
            .iter()
            .map(|w| Closed {
                workflow_id: (*w).to_owned(),
                status: RunStatus::Completed,
            })
            .collect();
        let out = tick(
            "hourly",
            &self.schedule,
            &self.compiled,
            &self.info,
            ts(at),
            &closed,
        );
        self.schedule = out.schedule.clone();
        self.info = out.info.clone();
        out
    }
}

fn ids(t: &Tick) -> Vec<&str> {
    t.starts.iter().map(|s| s.workflow_id.as_str()).collect()
}

#[test]
fn skip_drops_an_action_while_the_previous_run_is_open() {
    let mut h = Hourly::new(Overlap::Skip);
    let first = h.tick("2025-01-01T01:00:00Z", &[]);
    assert_eq!(ids(&first), ["report-2025-01-01T01:00:00Z"]);
    assert_eq!(first.wake_at, Some(ts("2025-01-01T02:00:00Z")));
    let second = h.tick("2025-01-01T02:00:00Z", &[]);
    assert!(second.starts.is_empty());
    assert_eq!(h.info.overlap_skipped, 1);
    let third = h.tick("2025-01-01T03:00:00Z", &["report-2025-01-01T01:00:00Z"]);
    assert_eq!(ids(&third), ["report-2025-01-01T03:00:00Z"]);
    assert_eq!(h.info.action_count, 2);
}

#[test]
fn buffer_one_starts_one_waiting_action_when_the_run_closes() {
    let mut h = Hourly::new(Overlap::BufferOne);
    h.tick("2025-01-01T01:00:00Z", &[]);
    let t = h.tick("2025-01-01T02:00:00Z", &[]);
    assert!(t.starts.is_empty());
    assert_eq!(h.info.buffer.len(), 1);
    // Polls while something waits.
    assert_eq!(t.wake_at, Some(ts("2025-01-01T02:00:01Z")));
    h.tick("2025-01-01T03:00:00Z", &[]);
    assert_eq!(h.info.buffer.len(), 1, "at most one waits");
    assert_eq!(h.info.overlap_skipped, 1);
    let t = h.tick("2025-01-01T03:10:00Z", &["report-2025-01-01T01:00:00Z"]);
    assert_eq!(ids(&t), ["report-2025-01-01T02:00:00Z"]);
    assert!(h.info.buffer.is_empty());
}

#[test]
fn buffer_all_starts_every_waiting_action_in_turn() {
    let mut h = Hourly::new(Overlap::BufferAll);
    h.tick("2025-01-01T01:00:00Z", &[]);
    h.tick("2025-01-01T02:00:00Z", &[]);
    h.tick("2025-01-01T03:00:00Z", &[]);
    assert_eq!(h.info.buffer.len(), 2);
    let t = h.tick("2025-01-01T03:01:00Z", &["report-2025-01-01T01:00:00Z"]);
    assert_eq!(ids(&t), ["report-2025-01-01T02:00:00Z"]);
    let t = h.tick("2025-01-01T03:02:00Z", &["report-2025-01-01T02:00:00Z"]);
    assert_eq!(ids(&t), ["report-2025-01-01T03:00:00Z"]);
    assert_eq!(h.info.overlap_skipped, 0);
}

#[test]
fn cancel_other_and_terminate_other_act_on_the_running_workflow() {
    for (policy, cancel) in [
        (Overlap::CancelOther, true),
        (Overlap::TerminateOther, false),
    ] {
        let mut h = Hourly::new(policy);
        h.tick("2025-01-01T01:00:00Z", &[]);
        let t = h.tick("2025-01-01T02:00:00Z", &[]);
        let expected = vec!["report-2025-01-01T01:00:00Z".to_owned()];
        if cancel {
            assert_eq!((t.cancel, t.terminate), (expected, vec![]));
        } else {
            assert_eq!((t.cancel, t.terminate), (vec![], expected));
        }
        assert!(t.starts.is_empty(), "waits for the other to close");
        let t = h.tick("2025-01-01T02:00:02Z", &["report-2025-01-01T01:00:00Z"]);
        assert_eq!(ids(&t), ["report-2025-01-01T02:00:00Z"]);
    }
}

#[test]
fn allow_all_overlaps() {
    let mut h = Hourly::new(Overlap::AllowAll);
    h.tick("2025-01-01T01:00:00Z", &[]);
    let t = h.tick("2025-01-01T02:00:00Z", &[]);
    assert_eq!(ids(&t), ["report-2025-01-01T02:00:00Z"]);
    assert_eq!(h.info.running.len(), 2);
}

#[test]
fn downtime_is_caught_up_within_the_window_only() {
    let mut h = Hourly::new(Overlap::AllowAll);
    h.schedule.policies.catchup_window = Some(Duration::from_secs(90 * 60));
    // Down from 00:30 to 03:10: 01:00 is 130 minutes late, 02:00 and 03:00
    // are within 90 minutes.
    let t = h.tick("2025-01-01T03:10:00Z", &[]);
    assert_eq!(
        ids(&t),
        ["report-2025-01-01T02:00:00Z", "report-2025-01-01T03:00:00Z"]
    );
    assert_eq!(h.info.missed_catchup_window, 1);
    // With SKIP only the first caught-up time runs; the rest overlap it.
    let mut h = Hourly::new(Overlap::Skip);
    let t = h.tick("2025-01-01T03:10:00Z", &[]);
    assert_eq!(ids(&t), ["report-2025-01-01T01:00:00Z"]);
    assert_eq!(h.info.overlap_skipped, 2);
}

#[test]
fn pause_stops_actions_and_unpause_resumes_without_a_burst() {
    let mut h = Hourly::new(Overlap::AllowAll);
    h.tick("2025-01-01T01:00:00Z", &[]);
    h.schedule = pause(&h.schedule, "maintenance");
    let t = h.tick("2025-01-01T02:00:00Z", &[]);
    assert!(t.starts.is_empty());
    assert_eq!(t.wake_at, None, "a paused schedule sleeps");
    let (s, i) = unpause(&h.schedule, &h.info, ts("2025-01-01T05:30:00Z"), "done");
    (h.schedule, h.info) = (s, i);
    assert_eq!(h.schedule.state.note, "done");
    let t = h.tick("2025-01-01T05:30:00Z", &[]);
    assert!(t.starts.is_empty(), "no burst for 03:00-05:00");
    assert_eq!(t.wake_at, Some(ts("2025-01-01T06:00:00Z")));
    let t = h.tick("2025-01-01T06:00:00Z", &[]);
    assert_eq!(ids(&t), ["report-2025-01-01T06:00:00Z"]);
    assert_eq!(h.info.missed_catchup_window, 0);
}

#[test]
fn pause_on_failure_pauses_when_a_started_workflow_fails() {
    let mut h = Hourly::new(Overlap::Skip);
    h.schedule.policies.pause_on_failure = true;
    h.tick("2025-01-01T01:00:00Z", &[]);
    let closed = [Closed {
        workflow_id: "report-2025-01-01T01:00:00Z".into(),
        status: RunStatus::Failed,
    }];
    let t = tick(
        "hourly",
        &h.schedule,
        &h.compiled,
        &h.info,
        ts("2025-01-01T02:00:00Z"),
        &closed,
    );
    assert!(t.schedule.state.paused);
    assert!(
        t.schedule.state.note.contains("failed"),
        "{}",
        t.schedule.state.note
    );
    assert!(t.starts.is_empty());
}

#[test]
fn limited_actions_count_down_scheduled_actions_only() {
    let mut h = Hourly::new(Overlap::AllowAll);
    h.schedule.state.limited_actions = true;
    h.schedule.state.remaining_actions = 2;
    h.tick("2025-01-01T01:00:00Z", &[]);
    let t = h.tick("2025-01-01T02:00:00Z", &[]);
    assert_eq!(t.schedule.state.remaining_actions, 0);
    assert_eq!(t.wake_at, None);
    let t = h.tick("2025-01-01T03:00:00Z", &[]);
    assert!(t.starts.is_empty());
    // A trigger still runs.
    h.info = trigger(&h.info, ts("2025-01-01T03:30:00Z"), None);
    let t = h.tick("2025-01-01T03:30:00Z", &[]);
    assert_eq!(ids(&t), ["report-2025-01-01T03:30:00Z"]);
    assert_eq!(h.info.action_count, 3);
}

#[test]
fn trigger_obeys_its_overlap_override() {
    let mut h = Hourly::new(Overlap::Skip);
    h.tick("2025-01-01T01:00:00Z", &[]);
    h.info = trigger(&h.info, ts("2025-01-01T01:10:00Z"), None);
    assert!(h.tick("2025-01-01T01:10:00Z", &[]).starts.is_empty());
    h.info = trigger(&h.info, ts("2025-01-01T01:20:00Z"), Some(Overlap::AllowAll));
    let t = h.tick("2025-01-01T01:20:00Z", &[]);
    assert_eq!(ids(&t), ["report-2025-01-01T01:20:00Z"]);
    assert!(t.starts[0].manual);
}

#[test]
fn backfill_takes_the_range_exclusive_of_start_inclusive_of_end() {
    let schedule = schedule(cron(&["0 9 * * 1-5"]), Overlap::AllowAll);
    let compiled = validate(&schedule).unwrap();
    let info = create(ts("2025-02-01T00:00:00Z"));
    let info = backfill(
        "daily",
        &compiled,
        &info,
        &[Backfill {
            start: ts("2025-01-06T09:00:00Z"),
            end: ts("2025-01-13T09:00:00Z"),
            overlap: None,
        }],
    );
    let t = tick(
        "daily",
        &schedule,
        &compiled,
        &info,
        ts("2025-02-01T00:00:00Z"),
        &[],
    );
    assert_eq!(
        ids(&t),
        [
            "report-2025-01-07T09:00:00Z",
            "report-2025-01-08T09:00:00Z",
            "report-2025-01-09T09:00:00Z",
            "report-2025-01-10T09:00:00Z",
            "report-2025-01-13T09:00:00Z",
        ]
    );
}

#[test]
fn update_does_not_catch_up_the_new_specs_past() {
    let mut h = Hourly::new(Overlap::AllowAll);
    h.tick("2025-01-01T01:00:00Z", &[]);
    h.schedule.spec.intervals = vec![every(60, 0)];
    h.compiled = validate(&h.schedule).unwrap();
    h.info = update(&h.info, ts("2025-01-01T01:30:00Z"));
    let t = h.tick("2025-01-01T01:30:30Z", &[]);
    assert!(t.starts.is_empty());
    assert_eq!(t.wake_at, Some(ts("2025-01-01T01:31:00Z")));
}

proptest! {
    /// For random specs and random downtime windows, the actions taken are
    /// exactly the spec's times that the first tick after each (the end of
    /// the downtime it fell in) saw within the catch-up window, each once.
    #[test]
    fn actions_equal_the_specs_times_within_the_catchup_window(
        every_s in 30i64..7200,
        offset_s in 0i64..3600,
        cron_minute in proptest::option::of(0u32..60),
        jitter_s in 0i64..30,
        window_s in 10i64..20_000,
        downtimes in proptest::collection::vec((0i64..86_400, 0i64..30_000), 0..6),
    ) {
        let mut spec = Spec {
            intervals: vec![every(every_s, offset_s)],
            jitter: Duration::from_secs(jitter_s.min(every_s)),
            ..Spec::default()
        };
        if let Some(m) = cron_minute {
            spec.cron_expressions.push(format!("{m} */3 * * *"));
        }
        let mut s = schedule(spec, Overlap::AllowAll);
        s.policies.catchup_window = Some(Duration::from_secs(window_s));
        let compiled = validate(&s).unwrap();
        let t0 = ts("2025-03-01T00:00:00Z").millis();
        let horizon = t0 + 86_400_000;
        // The end of the downtime `t` falls in, if it does.
        let down = |t: i64| downtimes.iter().find_map(|&(from, len)| {
            let from = t0 + from * 1000;
            (t >= from && t < from + len * 1000).then_some(from + len * 1000)
        });
        // The node ticks at each wake-up unless it is down; then at the
        // end of the downtime.
        let mut info = create(Timestamp(t0));
        let mut now = t0;
        let mut taken = Vec::new();
        while now <= horizon {
            let out = tick("p", &s, &compiled, &info, Timestamp(now), &[]);
            for start in &out.starts {
                taken.push(start.nominal);
            }
            info = out.info;
            s = out.schedule;
            let Some(wake) = out.wake_at else { break };
            let mut next = wake.millis().max(now + 1);
            while let Some(end) = down(next) {
                next = end;
            }
            now = next;
        }
        // Expected, from the spec alone.
        let mut expected = Vec::new();
        let mut missed = 0;
        let mut cursor = Timestamp(t0);
        while let Some(nominal) = compiled.next_after(cursor) {
            cursor = nominal;
            let actual = compiled.actual("p", nominal).millis();
            let mut seen = actual;
            while let Some(end) = down(seen) {
                seen = end;
            }
            if seen > horizon {
                break;
            }
            // The tick that takes it is the first at or after its time:
            // the end of the downtime it fell in.
            if seen - actual > window_s * 1000 {
                missed += 1;
            } else {
                expected.push(nominal);
            }
        }
        let mut unique = taken.clone();
        unique.dedup();
        prop_assert_eq!(&unique, &taken, "each time at most once");
        prop_assert_eq!(taken, expected);
        prop_assert_eq!(info.missed_catchup_window, missed);
    }
}
