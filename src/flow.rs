//! Per-endpoint flow control settings (pure): a rate limit on pushes and
//! concurrency keys, as registered with an endpoint version, their
//! validation, and the evaluation of a key template against a run.
//!
//! A key template is literal text with `{…}` placeholders. Each placeholder
//! is `input` or `search_attributes` followed by a JSON pointer (RFC 6901,
//! resolved by `serde_json::Value::pointer`) into the run's start input or
//! its search attributes: `customer_id={input/0/customer_id}` or
//! `{search_attributes/CustomerId}`. A string value is inserted as is, any
//! other value as its JSON text. A placeholder that points at nothing makes
//! the key not apply to the run (it is not limited by that key).
//!
//! The enforcement (slots and token buckets shared through the store) is
//! in `dispatch::flow`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::SearchAttributes;

/// An endpoint version's flow control; the default limits nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowControl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrency_keys: Vec<ConcurrencyKey>,
}

/// Pushes per second to the endpoint version, across all nodes: a token
/// bucket of `burst` tokens refilled at `per_second`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    /// Defaults to `ceil(per_second)`.
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateLimit {
    /// The bucket's size.
    pub fn burst(&self) -> u32 {
        self.burst
            .unwrap_or_else(|| self.per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32)
    }
}

/// At most `limit` tasks of runs whose `key` evaluates to one value are in
/// flight at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyKey {
    pub key: String,
    pub limit: u32,
}

/// Invalid settings: the message names the member.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct Invalid(pub String);

impl FlowControl {
    /// True when nothing is limited.
    pub fn is_unlimited(&self) -> bool {
        self.rate_limit.is_none() && self.concurrency_keys.is_empty()
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(r) = &self.rate_limit {
            if !(r.per_second.is_finite() && r.per_second > 0.0) {
                return Err(Invalid(
                    "rate_limit.per_second must be a number greater than 0".into(),
                ));
            }
            if r.burst == Some(0) {
                return Err(Invalid("rate_limit.burst must be at least 1".into()));
            }
        }
        for (i, k) in self.concurrency_keys.iter().enumerate() {
            if k.limit == 0 {
                return Err(Invalid(format!(
                    "concurrency_keys[{i}].limit must be at least 1"
                )));
            }
            parse(&k.key).map_err(|e| Invalid(format!("concurrency_keys[{i}].key: {e}")))?;
        }
        Ok(())
    }
}

/// One piece of a key template.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    /// A JSON pointer into the start input.
    Input(&'a str),
    /// A JSON pointer into the search attributes.
    SearchAttribute(&'a str),
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    let mut placeholders = 0;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "a `{` is never closed".to_owned())?;
        let inner = &after[..close];
        let piece = if let Some(p) = inner.strip_prefix("input") {
            Piece::Input(p)
        } else if let Some(p) = inner.strip_prefix("search_attributes") {
            Piece::SearchAttribute(p)
        } else {
            return Err(format!(
                "placeholder {{{inner}}} must start with `input` or `search_attributes`"
            ));
        };
        let pointer = match &piece {
            Piece::Input(p) | Piece::SearchAttribute(p) => *p,
            Piece::Text(_) => unreachable!("placeholders only"),
        };
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(format!(
                "placeholder {{{inner}}}: a JSON pointer starts with `/`"
            ));
        }
        pieces.push(piece);
        placeholders += 1;
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("a `}` is never opened".into());
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    if placeholders == 0 {
        return Err("needs at least one {input/…} or {search_attributes/…} placeholder".into());
    }
    Ok(pieces)
}

/// The key's value for a run with this start input and these search
/// attributes, or `None` when a placeholder points at
/// nothing (or the template is invalid, which registration refuses).
pub fn evaluate(
    template: &str,
    input: &Value,
    search_attributes: &SearchAttributes,
) -> Option<String> {
    let pieces = parse(template).ok()?;
    let mut attributes = None;
    let mut out = String::new();
    for piece in pieces {
        let value = match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Input(p) => input.pointer(p)?.clone(),
            Piece::SearchAttribute(p) => {
                let all = attributes.get_or_insert_with(|| {
                    serde_json::to_value(search_attributes).unwrap_or(Value::Null)
                });
                all.pointer(p)?.clone()
            }
        };
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_or_name_their_fault() {
        assert_eq!(
            parse("c={input/0/customer_id}").unwrap(),
            vec![Piece::Text("c="), Piece::Input("/0/customer_id")]
        );
        assert!(parse("plain").unwrap_err().contains("at least one"));
        assert!(parse("{input/0").unwrap_err().contains("never closed"));
        assert!(parse("{body/x}").unwrap_err().contains("must start with"));
        assert!(parse("{inputx}").unwrap_err().contains("JSON pointer"));
        assert!(parse("{input}}").unwrap_err().contains("never opened"));
    }

    #[test]
    fn invalid_settings_name_the_member() {
        let bad = |json: Value| {
            serde_json::from_value::<FlowControl>(json)
                .unwrap()
                .validate()
                .unwrap_err()
                .0
        };
        assert!(bad(serde_json::json!({"rate_limit": {"per_second": 0}}))
            .starts_with("rate_limit.per_second"));
        assert!(
            bad(serde_json::json!({"rate_limit": {"per_second": 1, "burst": 0}}))
                .starts_with("rate_limit.burst")
        );
        assert!(
            bad(serde_json::json!({"concurrency_keys": [{"key": "{input}", "limit": 0}]}))
                .starts_with("concurrency_keys[0].limit")
        );
        let ok: FlowControl =
            serde_json::from_value(serde_json::json!({"rate_limit": {"per_second": 2.5}})).unwrap();
        assert_eq!(ok.rate_limit.unwrap().burst(), 3);
    }
}
