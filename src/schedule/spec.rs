//! A schedule's spec: which instants it takes actions at (Temporal's
//! `ScheduleSpec`). Cron strings, structured calendars, intervals with an
//! offset, exclusions, start and end, jitter and an IANA time zone, checked
//! once by [`Spec::compile`] into a [`Compiled`] spec whose
//! [`Compiled::next_after`] yields the nominal times in order.
//!
//! Matching is croner's (cron strings and calendars alike: a structured
//! calendar becomes a croner pattern), on *civil* time in the spec's zone,
//! and a civil match becomes every instant that shows that wall-clock time:
//! none in a DST gap (02:30 on a spring-forward day is skipped), two in an
//! overlap (01:30 on a fall-back day fires twice). That is Temporal's
//! documented rule ("literal matching of the clock time"). Day of month and
//! day of week must both match (Temporal does not implement cron's "or").
//! Everything is truncated to whole seconds, as Temporal does.

use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::{Duration, Timestamp};

/// A refused spec, naming the field (`spec.cron_expressions[0]`, …).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Inclusive range of a calendar field, Temporal's `Range`: `end` below
/// `start` means `start` alone; `step` 0 means 1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub start: i32,
    #[serde(default)]
    pub end: i32,
    #[serde(default)]
    pub step: i32,
}

/// Temporal's `StructuredCalendarSpec`. An empty field takes Temporal's
/// default: 0 for second, minute and hour, every value for the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub second: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minute: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hour: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub day_of_month: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub month: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub year: Vec<Range>,
    /// 0-6, 0 is Sunday (7 is Sunday too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub day_of_week: Vec<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Every `every`, shifted by `offset`: the instants epoch + n·every +
/// offset (Temporal's `IntervalSpec` with its `phase`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalSpec {
    pub every: Duration,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: Duration,
}

/// The union of the cron strings', calendars' and intervals' times, minus
/// the excluded calendars', inside `[start_time, end_time]`, each delayed
/// by its jitter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron_expressions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<CalendarSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<IntervalSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_calendars: Vec<CalendarSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter: Duration,
    /// IANA name; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A calendar source after compiling: a croner pattern and its zone.
#[derive(Clone, Debug)]
struct Calendar {
    cron: Cron,
    tz: Tz,
}

/// A checked [`Spec`], ready to yield times.
#[derive(Clone, Debug)]
pub struct Compiled {
    calendars: Vec<Calendar>,
    /// (every, offset) in whole seconds, offset below every.
    intervals: Vec<(i64, i64)>,
    excludes: Vec<Calendar>,
    start: Option<i64>,
    end: Option<i64>,
    jitter_ms: i64,
}

/// The largest shift of a wall clock at a zone transition that the civil
/// search allows for (real ones are at most 2 hours).
const MAX_SHIFT_SECS: i64 = 3 * 3600;

/// How many civil matches one search looks at before giving up (a spec
/// whose every match falls into DST gaps).
const MAX_SCAN: usize = 10_000;

impl Spec {
    /// Checks every field and compiles the spec; the error names the
    /// first bad field below `spec.`.
    pub fn compile(&self) -> Result<Compiled, Invalid> {
        let zone = match &self.time_zone {
            None => Tz::UTC,
            Some(name) => parse_tz(name).ok_or_else(|| {
                invalid(
                    "spec.time_zone",
                    format!("unknown time zone {name:?}: expected an IANA name such as \"America/New_York\""),
                )
            })?,
        };
        let mut calendars = Vec::new();
        let mut intervals = Vec::new();
        for (i, expr) in self.cron_expressions.iter().enumerate() {
            let field = format!("spec.cron_expressions[{i}]");
            match parse_cron_string(expr, zone, self.time_zone.is_some())
                .map_err(|m| invalid(&field, m))?
            {
                CronSource::Calendar(c) => calendars.push(*c),
                CronSource::Interval(every, offset) => intervals.push(check_interval(
                    &field,
                    Duration::from_secs(every),
                    Duration::from_secs(offset),
                )?),
            }
        }
        for (i, cal) in self.calendars.iter().enumerate() {
            calendars.push(compile_calendar(
                cal,
                zone,
                &format!("spec.calendars[{i}]"),
            )?);
        }
        for (i, iv) in self.intervals.iter().enumerate() {
            intervals.push(check_interval(
                &format!("spec.intervals[{i}]"),
                iv.every,
                iv.offset,
            )?);
        }
        let mut excludes = Vec::new();
        for (i, cal) in self.exclude_calendars.iter().enumerate() {
            excludes.push(compile_calendar(
                cal,
                zone,
                &format!("spec.exclude_calendars[{i}]"),
            )?);
        }
        if let (Some(start), Some(end)) = (self.start_time, self.end_time) {
            if end < start {
                return Err(invalid(
                    "spec.end_time",
                    "end_time must not be before start_time",
                ));
            }
        }
        if self.jitter.millis() < 0 {
            return Err(invalid("spec.jitter", "jitter must not be negative"));
        }
        if let Some(&(every, _)) = intervals.iter().min_by_key(|(every, _)| *every) {
            if self.jitter.millis() > every * 1000 {
                return Err(invalid(
                    "spec.jitter",
                    format!(
                        "jitter {} is larger than the interval {}",
                        self.jitter,
                        Duration::from_secs(every)
                    ),
                ));
            }
        }
        Ok(Compiled {
            calendars,
            intervals,
            excludes,
            start: self.start_time.map(|t| t.millis().div_euclid(1000)),
            end: self.end_time.map(|t| t.millis().div_euclid(1000)),
            jitter_ms: self.jitter.millis(),
        })
    }
}

fn parse_tz(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

fn check_interval(field: &str, every: Duration, offset: Duration) -> Result<(i64, i64), Invalid> {
    let every_s = every.millis() / 1000;
    if every_s < 1 {
        return Err(invalid(
            format!("{field}.every"),
            "the interval must be at least 1s",
        ));
    }
    let offset_s = offset.millis() / 1000;
    if offset_s < 0 {
        return Err(invalid(
            format!("{field}.offset"),
            "the offset must not be negative",
        ));
    }
    Ok((every_s, offset_s % every_s))
}

enum CronSource {
    Calendar(Box<Calendar>),
    /// `@every`: interval and offset in seconds.
    Interval(i64, i64),
}

/// A Temporal cron string: an optional `CRON_TZ=`/`TZ=` prefix, 5 fields
/// (minute to day of week), 6 (and year) or 7 (second first), or a
/// descriptor (`@daily`, …, `@every 1h/15m`), and an optional `# comment`.
fn parse_cron_string(expr: &str, zone: Tz, zone_given: bool) -> Result<CronSource, String> {
    // `#` is also croner's nth-weekday marker (`5#3`): a comment starts at
    // a `#` that begins the string or follows whitespace.
    let text = match expr.find(" #") {
        Some(at) => &expr[..at],
        None if expr.trim_start().starts_with('#') => "",
        None => expr,
    };
    let mut text = text.trim();
    let mut tz = zone;
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if zone_given {
                return Err(format!(
                    "{prefix}{name} conflicts with spec.time_zone; give the zone once"
                ));
            }
            tz = parse_tz(name).ok_or_else(|| {
                format!("unknown time zone {name:?} in {prefix}: expected an IANA name")
            })?;
            text = rest.trim();
            break;
        }
    }
    if text.is_empty() {
        return Err("empty cron expression".into());
    }
    if let Some(rest) = text.strip_prefix("@every") {
        let rest = rest.trim();
        let (every, offset) = rest.split_once('/').unwrap_or((rest, "0s"));
        let parse = |s: &str| {
            s.trim()
                .parse::<Duration>()
                .map_err(|_| format!("invalid @every duration {s:?}"))
        };
        return Ok(CronSource::Interval(
            parse(every)?.millis() / 1000,
            parse(offset)?.millis() / 1000,
        ));
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    let pattern = match fields.len() {
        _ if text.starts_with('@') => text.to_owned(),
        5 | 7 => fields.join(" "),
        // Temporal's six fields end with the year; croner's six start with
        // the second.
        6 => format!("0 {}", fields.join(" ")),
        n => {
            return Err(format!(
            "a cron expression has 5, 6 or 7 fields (or is a descriptor such as @daily), not {n}"
        ))
        }
    };
    let cron = parser()
        .parse(&pattern)
        .map_err(|e| format!("invalid cron expression {text:?}: {e}"))?;
    Ok(CronSource::Calendar(Box::new(Calendar { cron, tz })))
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Optional)
        .dom_and_dow(true)
        .build()
}

/// A structured calendar as a croner pattern (`a-b/s` lists per field).
fn compile_calendar(cal: &CalendarSpec, tz: Tz, field: &str) -> Result<Calendar, Invalid> {
    let parts = [
        ("second", &cal.second, 0, 59, "0"),
        ("minute", &cal.minute, 0, 59, "0"),
        ("hour", &cal.hour, 0, 23, "0"),
        ("day_of_month", &cal.day_of_month, 1, 31, "*"),
        ("month", &cal.month, 1, 12, "*"),
        ("day_of_week", &cal.day_of_week, 0, 7, "*"),
        ("year", &cal.year, 1970, 9999, "*"),
    ];
    let mut pattern = Vec::new();
    for (name, ranges, min, max, default) in parts {
        if ranges.is_empty() {
            pattern.push(default.to_owned());
            continue;
        }
        let mut items = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            let at = format!("{field}.{name}[{i}]");
            let end = r.end.max(r.start);
            if r.start < min || end > max {
                return Err(invalid(
                    at,
                    format!("{name} must be within {min}-{max}, not {}-{end}", r.start),
                ));
            }
            if r.step < 0 {
                return Err(invalid(at, "step must not be negative"));
            }
            let step = r.step.max(1);
            items.push(match (end == r.start, step) {
                (true, _) => r.start.to_string(),
                (false, 1) => format!("{}-{end}", r.start),
                (false, s) => format!("{}-{end}/{s}", r.start),
            });
        }
        pattern.push(items.join(","));
    }
    let cron = parser()
        .parse(&pattern.join(" "))
        .map_err(|e| invalid(field, format!("invalid calendar: {e}")))?;
    Ok(Calendar { cron, tz })
}

fn utc(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// The zone's offset from UTC at an instant, in seconds.
fn offset_at(tz: Tz, secs: i64) -> i64 {
    utc(secs).map_or(0, |t| {
        i64::from(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    })
}

/// Every instant whose wall clock in `tz` reads `civil`: none in a gap,
/// two in an overlap.
fn instants(tz: Tz, civil: NaiveDateTime) -> Vec<i64> {
    match tz.from_local_datetime(&civil) {
        chrono::LocalResult::None => Vec::new(),
        chrono::LocalResult::Single(t) => vec![t.timestamp()],
        chrono::LocalResult::Ambiguous(a, b) => vec![a.timestamp(), b.timestamp()],
    }
}

impl Calendar {
    /// The first instant after `after` (seconds) whose wall clock matches.
    fn next_after(&self, after: i64) -> Option<i64> {
        // Civil time of instants just after `after` is at least this much
        // (a fall-back transition shortly after may lower it).
        let low_offset = offset_at(self.tz, after).min(offset_at(self.tz, after + MAX_SHIFT_SECS));
        let mut civil = utc(after)?.naive_utc() + chrono::Duration::seconds(low_offset);
        let mut inclusive = true;
        let mut best: Option<i64> = None;
        let mut stop: Option<NaiveDateTime> = None;
        for _ in 0..MAX_SCAN {
            let c = self.cron.find_next_occurrence(&civil, inclusive).ok()?;
            if stop.is_some_and(|s| c > s) {
                break;
            }
            for t in instants(self.tz, c) {
                if t > after && best.is_none_or(|b| t < b) {
                    best = Some(t);
                }
            }
            if let (Some(b), None) = (best, stop) {
                // A later civil time maps to an earlier instant only across
                // a fall-back between `after` and `b`: look that far on.
                let drop = offset_at(self.tz, after) - offset_at(self.tz, b);
                if drop <= 0 {
                    return best;
                }
                stop = Some(c + chrono::Duration::seconds(drop));
            }
            civil = c;
            inclusive = false;
        }
        best
    }

    fn matches(&self, secs: i64) -> bool {
        let Some(t) = utc(secs) else { return false };
        let civil = self.tz.from_utc_datetime(&t.naive_utc()).naive_local();
        self.cron.is_time_matching(&civil).unwrap_or(false)
    }
}

fn next_interval(every: i64, offset: i64, after: i64) -> i64 {
    let n = (after - offset).div_euclid(every) + 1;
    offset + n * every
}

impl Compiled {
    /// The first nominal time strictly after `after`, if the spec has one.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let mut cursor = after.millis().div_euclid(1000);
        if let Some(start) = self.start {
            cursor = cursor.max(start - 1);
        }
        for _ in 0..MAX_SCAN {
            let next = self
                .calendars
                .iter()
                .filter_map(|c| c.next_after(cursor))
                .chain(
                    self.intervals
                        .iter()
                        .map(|&(every, offset)| next_interval(every, offset, cursor)),
                )
                .min()?;
            if self.end.is_some_and(|end| next > end) {
                return None;
            }
            if !self.excludes.iter().any(|x| x.matches(next)) {
                return Some(Timestamp(next * 1000));
            }
            cursor = next;
        }
        None
    }

    /// When the action for `nominal` is taken: delayed by a jitter that
    /// every node computes the same (a hash of the schedule id and the
    /// nominal time), below the configured jitter and below the gap to the
    /// next nominal time, so actions stay in order.
    pub fn actual(&self, schedule_id: &str, nominal: Timestamp) -> Timestamp {
        if self.jitter_ms <= 0 {
            return nominal;
        }
        let gap = self
            .next_after(nominal)
            .map_or(i64::MAX, |next| next.millis() - nominal.millis());
        let bound = self.jitter_ms.min(gap);
        if bound <= 0 {
            return nominal;
        }
        let digest = Sha256::new()
            .chain_update(schedule_id.as_bytes())
            .chain_update([0])
            .chain_update(nominal.millis().to_be_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let draw = u64::from_be_bytes(first) % u64::try_from(bound).unwrap_or(1);
        Timestamp(nominal.millis() + i64::try_from(draw).unwrap_or(0))
    }

    /// The next `n` nominal times after `after`, with their actual times.
    pub fn upcoming(&self, schedule_id: &str, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            out.push(self.actual(schedule_id, next));
            cursor = next;
        }
        out
    }
}

fn is_zero(d: &Duration) -> bool {
    d.is_zero()
}
