//! Time as data: [`Timestamp`], [`Duration`] and the [`Clock`] that the
//! edges read. The engine never reads a clock; it is handed `now` in its
//! context, which is what lets tests and the `baton dev` time-skipping
//! feature move time by hand.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC. Serialized as RFC 3339 with
/// millisecond precision, the way Temporal's JSON API writes times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// Time elapsed since `earlier`, zero if `earlier` is in the future.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration((self.0 - earlier.0).max(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(millis) = u64::try_from(self.0) else {
            return write!(f, "{}ms", self.0);
        };
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = humantime::TimestampError;
    fn from_str(s: &str) -> Result<Timestamp, Self::Err> {
        let t = humantime::parse_rfc3339_weak(s)?;
        let millis = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Ok(Timestamp(i64::try_from(millis).unwrap_or(i64::MAX)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A length of time in milliseconds. On the wire it is a string: Temporal's
/// `"1.5s"` form, or a humantime form such as `"500ms"`, `"10m"`, `"7 days"`.
/// It is written back as seconds (`"1.5s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub i64);

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub fn from_secs(secs: i64) -> Duration {
        Duration(secs.saturating_mul(1000))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, millis) = (self.0 / 1000, (self.0 % 1000).abs());
        if millis == 0 {
            write!(f, "{secs}s")
        } else {
            let frac = format!("{millis:03}");
            write!(f, "{secs}.{}s", frac.trim_end_matches('0'))
        }
    }
}

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid duration {0:?}: expected a string such as \"30s\", \"1.5s\", \"500ms\" or \"10m\""
)]
pub struct DurationError(String);

impl std::str::FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Duration, DurationError> {
        let t = s.trim();
        if let Some(num) = t.strip_suffix('s') {
            if let Ok(secs) = num.parse::<f64>() {
                if (0.0..1e13).contains(&secs) {
                    // Rounded to the millisecond; sub-millisecond precision is
                    // meaningless for a durable timer.
                    #[allow(clippy::cast_possible_truncation)]
                    return Ok(Duration((secs * 1000.0).round() as i64));
                }
                return Err(DurationError(s.to_owned()));
            }
        }
        let d = humantime::parse_duration(t).map_err(|_| DurationError(s.to_owned()))?;
        i64::try_from(d.as_millis())
            .map(Duration)
            .map_err(|_| DurationError(s.to_owned()))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// The one source of "now" for the services. Production uses
/// [`SystemClock`]; `baton dev --time-skipping` and tests use
/// [`SkippingClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Announces jumps of time, so sleepers can wake early; `None` for
    /// clocks that only move with the wall.
    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<Duration>> {
        None
    }
}

/// Wall-clock time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        #[allow(clippy::disallowed_methods)] // The one sanctioned wall-clock read.
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Wall-clock time plus an offset that only grows: `skip` moves every
/// service's notion of now forward, which is how a test waits 48 hours for a
/// signal in milliseconds. Time never goes backwards, so timers stay
/// monotonic.
#[derive(Debug)]
pub struct SkippingClock {
    offset: tokio::sync::watch::Sender<Duration>,
}

impl Default for SkippingClock {
    fn default() -> SkippingClock {
        SkippingClock {
            offset: tokio::sync::watch::Sender::new(Duration::ZERO),
        }
    }
}

impl SkippingClock {
    pub fn skip(&self, d: Duration) {
        self.offset
            .send_modify(|o| *o = Duration(o.0.saturating_add(d.0.max(0))));
    }

    pub fn offset(&self) -> Duration {
        *self.offset.borrow()
    }
}

impl Clock for SkippingClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().saturating_add(self.offset())
    }

    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<Duration>> {
        Some(self.offset.subscribe())
    }
}

/// Milliseconds since the epoch of an RFC 3339 time with a `Z` or
/// `±hh:mm` offset (`T` or a space between date and time); digits past
/// the millisecond are dropped.
pub fn rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if !at(4, b'-') || !at(7, b'-') || !(at(10, b'T') || at(10, b't') || at(10, b' ')) {
        return None;
    }
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !at(13, b':') || !at(16, b':') {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && at(i + 3, b':') => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return None,
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_temporal_and_humantime_forms() {
        let parse = |s: &str| s.parse::<Duration>().map(|d| d.0).ok();
        assert_eq!(parse("30s"), Some(30_000));
        assert_eq!(parse("1.5s"), Some(1_500));
        assert_eq!(parse("500ms"), Some(500));
        assert_eq!(parse("10m"), Some(600_000));
        assert_eq!(parse("7 days"), Some(7 * 86_400_000));
        assert_eq!(parse("-1s"), None);
        assert_eq!(parse("soon"), None);
        assert_eq!(Duration(1_500).to_string(), "1.5s");
        assert_eq!(Duration(60_000).to_string(), "60s");
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = Timestamp(1_700_000_000_123);
        let s = t.to_string();
        assert_eq!(s, "2023-11-14T22:13:20.123Z");
        assert_eq!(s.parse::<Timestamp>().ok(), Some(t));
    }
}
