//! Retry policies: Temporal's fields, defaults and validation, and the pure
//! back-off computation both activities and workflow tasks use.

use serde::{Deserialize, Serialize};

use crate::time::Duration;

use super::failure::Failure;

/// As in Temporal: initial 1 s, coefficient 2.0, maximum interval
/// 100 × initial, unlimited attempts (`maximum_attempts = 0`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub initial_interval: Duration,
    pub backoff_coefficient: f64,
    pub maximum_interval: Duration,
    /// Zero means unlimited.
    pub maximum_attempts: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_retryable_error_types: Vec<String>,
}

/// A retry policy as a caller writes it: every field optional, filled from
/// the defaults by [`RetryPolicySpec::resolve`].
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicySpec {
    #[serde(default)]
    pub initial_interval: Option<Duration>,
    #[serde(default)]
    pub backoff_coefficient: Option<f64>,
    #[serde(default)]
    pub maximum_interval: Option<Duration>,
    #[serde(default)]
    pub maximum_attempts: Option<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub non_retryable_error_types: Vec<String>,
}

/// `null` means absent in every member of a [`RetryPolicySpec`], as in
/// the `Option` ones (openapi.yaml's `RetryPolicySpec`; stored snapshots
/// hold such nulls too).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl RetryPolicySpec {
    /// Fills defaults and checks the result the way Temporal does.
    pub fn resolve(&self) -> Result<RetryPolicy, String> {
        let initial = self.initial_interval.unwrap_or(Duration::from_secs(1));
        if initial.is_zero() {
            return Err("retry_policy.initial_interval must be greater than zero".into());
        }
        let coefficient = self.backoff_coefficient.unwrap_or(2.0);
        if !coefficient.is_finite() || coefficient < 1.0 {
            return Err("retry_policy.backoff_coefficient must be at least 1.0".into());
        }
        let maximum = self
            .maximum_interval
            .unwrap_or(Duration(initial.0.saturating_mul(100)));
        if maximum < initial {
            return Err(
                "retry_policy.maximum_interval must not be less than initial_interval".into(),
            );
        }
        Ok(RetryPolicy {
            initial_interval: initial,
            backoff_coefficient: coefficient,
            maximum_interval: maximum,
            maximum_attempts: self.maximum_attempts.unwrap_or(0),
            non_retryable_error_types: self.non_retryable_error_types.clone(),
        })
    }
}

impl From<RetryPolicy> for RetryPolicySpec {
    fn from(p: RetryPolicy) -> RetryPolicySpec {
        RetryPolicySpec {
            initial_interval: Some(p.initial_interval),
            backoff_coefficient: Some(p.backoff_coefficient),
            maximum_interval: Some(p.maximum_interval),
            maximum_attempts: Some(p.maximum_attempts),
            non_retryable_error_types: p.non_retryable_error_types,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicySpec::default()
            .resolve()
            .expect("the default retry policy is valid")
    }
}

/// The outcome of asking a policy whether to try again after `attempt`
/// (1-based) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    After(Duration),
    NonRetryable,
    AttemptsExhausted,
}

impl RetryPolicy {
    pub fn next(&self, attempt: u32, failure: &Failure) -> Retry {
        if failure.non_retryable
            || (!failure.error_type.is_empty()
                && self
                    .non_retryable_error_types
                    .iter()
                    .any(|t| t == &failure.error_type))
        {
            return Retry::NonRetryable;
        }
        if self.maximum_attempts != 0 && attempt >= self.maximum_attempts {
            return Retry::AttemptsExhausted;
        }
        Retry::After(backoff(
            self.initial_interval,
            self.backoff_coefficient,
            self.maximum_interval,
            attempt,
        ))
    }
}

/// `initial × coefficient^(attempt-1)`, capped at `maximum`.
pub fn backoff(initial: Duration, coefficient: f64, maximum: Duration, attempt: u32) -> Duration {
    let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    #[allow(clippy::cast_precision_loss)]
    let raw = initial.0 as f64 * coefficient.powi(exp);
    if !raw.is_finite() || raw >= maximum.0 as f64 {
        return maximum;
    }
    #[allow(clippy::cast_possible_truncation)]
    Duration(raw as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_temporal() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial_interval, Duration(1_000));
        assert_eq!(p.backoff_coefficient, 2.0);
        assert_eq!(p.maximum_interval, Duration(100_000));
        assert_eq!(p.maximum_attempts, 0);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default();
        let f = Failure::new("boom", "IOError");
        let delays: Vec<_> = (1..=9).map(|a| p.next(a, &f)).collect();
        assert_eq!(delays[0], Retry::After(Duration(1_000)));
        assert_eq!(delays[1], Retry::After(Duration(2_000)));
        assert_eq!(delays[2], Retry::After(Duration(4_000)));
        assert_eq!(delays[7], Retry::After(Duration(100_000)));
    }

    #[test]
    fn non_retryable_by_flag_type_or_attempts() {
        let p = RetryPolicySpec {
            maximum_attempts: Some(3),
            non_retryable_error_types: vec!["CardDeclined".into()],
            ..RetryPolicySpec::default()
        }
        .resolve()
        .unwrap();
        let mut f = Failure::new("x", "CardDeclined");
        assert_eq!(p.next(1, &f), Retry::NonRetryable);
        f.error_type = "Other".into();
        assert_eq!(p.next(2, &f), Retry::After(Duration(2_000)));
        assert_eq!(p.next(3, &f), Retry::AttemptsExhausted);
        f.non_retryable = true;
        assert_eq!(p.next(1, &f), Retry::NonRetryable);
    }

    #[test]
    fn invalid_policies_are_refused() {
        let bad = RetryPolicySpec {
            backoff_coefficient: Some(0.5),
            ..RetryPolicySpec::default()
        };
        assert!(bad.resolve().is_err());
        let bad = RetryPolicySpec {
            initial_interval: Some(Duration(10_000)),
            maximum_interval: Some(Duration(1_000)),
            ..RetryPolicySpec::default()
        };
        assert!(bad.resolve().is_err());
    }
}
