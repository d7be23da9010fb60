//! Custom search attributes, pure: their types (Temporal's names), the
//! typed slot a namespace's registry maps each name to, how plain JSON
//! values are typed against the registry, and how new names get slots.
//!
//! A run's attributes are kept as [`SearchAttributes`]: name → value with
//! its type and slot, as set at start and by `UpsertWorkflowSearchAttributes`
//! events. The store writes each value into its slot's listing column at
//! every commit; `visibility` resolves names in queries through the same
//! registry. Slots are never given to another name (see [`assign`]), so a
//! value left behind by a removed attribute can never answer a query for a
//! different one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::{rfc3339_millis, Timestamp};

/// A custom search attribute's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SearchAttributeType {
    Keyword,
    Text,
    Int,
    Double,
    Bool,
    Datetime,
    KeywordList,
}

impl SearchAttributeType {
    pub const ALL: [SearchAttributeType; 7] = [
        SearchAttributeType::Keyword,
        SearchAttributeType::Text,
        SearchAttributeType::Int,
        SearchAttributeType::Double,
        SearchAttributeType::Bool,
        SearchAttributeType::Datetime,
        SearchAttributeType::KeywordList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchAttributeType::Keyword => "Keyword",
            SearchAttributeType::Text => "Text",
            SearchAttributeType::Int => "Int",
            SearchAttributeType::Double => "Double",
            SearchAttributeType::Bool => "Bool",
            SearchAttributeType::Datetime => "Datetime",
            SearchAttributeType::KeywordList => "KeywordList",
        }
    }

    /// A type by its name, in any case.
    pub fn parse(name: &str) -> Option<SearchAttributeType> {
        SearchAttributeType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// How many attributes of this type a namespace may register: the
    /// number of listing columns the store has for it.
    pub fn slots(self) -> u8 {
        match self {
            SearchAttributeType::Keyword => 10,
            _ => 3,
        }
    }

    /// What a JSON value of this type looks like, for errors.
    fn expected(self) -> &'static str {
        match self {
            SearchAttributeType::Keyword | SearchAttributeType::Text => "a string",
            SearchAttributeType::Int => "a whole number",
            SearchAttributeType::Double => "a number",
            SearchAttributeType::Bool => "true or false",
            SearchAttributeType::Datetime => "an RFC 3339 time such as \"2026-11-01T00:00:00Z\"",
            SearchAttributeType::KeywordList => "an array of strings",
        }
    }
}

/// One listing column: the `index`-th (1-based) of its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    #[serde(rename = "type")]
    pub kind: SearchAttributeType,
    pub index: u8,
}

/// A namespace's registered (not removed) attributes: name → slot. Cheap
/// to clone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry(Arc<BTreeMap<String, Slot>>);

impl Registry {
    pub fn new(attributes: impl IntoIterator<Item = (String, Slot)>) -> Registry {
        Registry(Arc::new(attributes.into_iter().collect()))
    }

    pub fn get(&self, name: &str) -> Option<Slot> {
        self.0.get(name).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Slot)> {
        self.0.iter()
    }
}

/// A value set on a run, with the type and slot it was typed against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchAttributeValue {
    #[serde(rename = "type")]
    pub kind: SearchAttributeType,
    pub slot: u8,
    pub value: Value,
}

impl SearchAttributeValue {
    pub fn slot(&self) -> Slot {
        Slot {
            kind: self.kind,
            index: self.slot,
        }
    }
}

/// A run's custom search attributes by name.
pub type SearchAttributes = BTreeMap<String, SearchAttributeValue>;

/// Types `given` (plain JSON by name) against `registry`: each value
/// checked and normalised (times to RFC 3339 in UTC with milliseconds,
/// `-0.0` to `0.0`); `null`, and an empty KeywordList, become `None`
/// (unset). The error names the first offending attribute.
pub fn typed(
    registry: &Registry,
    given: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, Option<SearchAttributeValue>>, String> {
    given
        .iter()
        .map(|(name, value)| {
            let slot = registry.get(name).ok_or_else(|| {
                format!("unknown search attribute `{name}`: register it on the namespace first")
            })?;
            let typed = normalise(slot.kind, value).ok_or_else(|| {
                format!(
                    "search attribute `{name}` is a {}: expected {}, found {}",
                    slot.kind.as_str(),
                    slot.kind.expected(),
                    shorten(value)
                )
            })?;
            Ok((
                name.clone(),
                typed.map(|value| SearchAttributeValue {
                    kind: slot.kind,
                    slot: slot.index,
                    value,
                }),
            ))
        })
        .collect()
}

/// `given` typed, without the unset ones (a start sets only what it names).
pub fn typed_set(
    registry: &Registry,
    given: &serde_json::Map<String, Value>,
) -> Result<SearchAttributes, String> {
    Ok(typed(registry, given)?
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect())
}

/// `Some(None)`: unset; `None`: not of the type.
fn normalise(kind: SearchAttributeType, value: &Value) -> Option<Option<Value>> {
    if value.is_null() {
        return Some(None);
    }
    let no_nul = |s: &str| !s.contains('\0');
    let typed = match (kind, value) {
        (SearchAttributeType::Keyword | SearchAttributeType::Text, Value::String(s))
            if no_nul(s) =>
        {
            value.clone()
        }
        (SearchAttributeType::Int, Value::Number(n)) => Value::from(n.as_i64()?),
        (SearchAttributeType::Double, Value::Number(n)) => {
            let f = n.as_f64()?;
            Value::from(if f == 0.0 { 0.0 } else { f })
        }
        (SearchAttributeType::Bool, Value::Bool(_)) => value.clone(),
        (SearchAttributeType::Datetime, Value::String(s)) => {
            Value::from(Timestamp(rfc3339_millis(s)?).to_string())
        }
        (SearchAttributeType::KeywordList, Value::Array(items)) => {
            if !items.iter().all(|i| i.as_str().is_some_and(no_nul)) {
                return None;
            }
            if items.is_empty() {
                return Some(None);
            }
            value.clone()
        }
        _ => return None,
    };
    Some(Some(typed))
}

fn shorten(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The words of a Text value, as Text comparisons match them: maximal
/// runs of alphanumeric characters, lowercased.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A registry row as stored: removed attributes keep their slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredAttribute {
    pub name: String,
    pub slot: Slot,
    pub removed: bool,
}

/// Why [`assign`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    #[error("search attribute `{0}` is already registered")]
    AlreadyRegistered(String),
    #[error("search attribute `{0}` is named twice in the request")]
    NamedTwice(String),
    #[error(
        "search attribute `{name}`: the namespace has no {} slot left (at most {} {} attributes, \
         removed ones included: a removed attribute keeps its slot)",
        kind.as_str(), kind.slots(), kind.as_str()
    )]
    NoSlotLeft {
        name: String,
        kind: SearchAttributeType,
    },
}

/// The rows to write to register `wanted` (name, type) next to `existing`:
/// a name registered before with the same type and removed gets its old
/// slot back (and so its old values); any other name gets the lowest slot
/// of its type no row has ever held. All or nothing.
pub fn assign(
    existing: &[RegisteredAttribute],
    wanted: &[(String, SearchAttributeType)],
) -> Result<Vec<RegisteredAttribute>, AssignError> {
    let mut out: Vec<RegisteredAttribute> = Vec::new();
    for (name, kind) in wanted {
        if out.iter().any(|r| &r.name == name) {
            return Err(AssignError::NamedTwice(name.clone()));
        }
        if existing.iter().any(|r| &r.name == name && !r.removed) {
            return Err(AssignError::AlreadyRegistered(name.clone()));
        }
        let previous = existing
            .iter()
            .find(|r| &r.name == name && r.slot.kind == *kind);
        let slot = match previous {
            Some(r) => r.slot,
            None => {
                let taken = |index: u8| {
                    existing
                        .iter()
                        .chain(&out)
                        .any(|r| r.slot == Slot { kind: *kind, index })
                };
                let index = (1..=kind.slots()).find(|i| !taken(*i)).ok_or_else(|| {
                    AssignError::NoSlotLeft {
                        name: name.clone(),
                        kind: *kind,
                    }
                })?;
                Slot { kind: *kind, index }
            }
        };
        out.push(RegisteredAttribute {
            name: name.clone(),
            slot,
            removed: false,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::new([
            (
                "CustomerId".to_owned(),
                Slot {
                    kind: SearchAttributeType::Keyword,
                    index: 1,
                },
            ),
            (
                "Amount".to_owned(),
                Slot {
                    kind: SearchAttributeType::Double,
                    index: 2,
                },
            ),
            (
                "When".to_owned(),
                Slot {
                    kind: SearchAttributeType::Datetime,
                    index: 1,
                },
            ),
            (
                "Tags".to_owned(),
                Slot {
                    kind: SearchAttributeType::KeywordList,
                    index: 1,
                },
            ),
        ])
    }

    fn map(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().expect("an object").clone()
    }

    #[test]
    fn values_are_typed_and_normalised() {
        let typed = typed(
            &registry(),
            &map(
                json!({"CustomerId": "c1", "Amount": -0.0, "When": "2026-01-01T01:00:00+01:00",
                "Tags": []}),
            ),
        )
        .expect("valid");
        let value = |n: &str| typed[n].as_ref().map(|v| v.value.clone());
        assert_eq!(value("CustomerId"), Some(json!("c1")));
        assert_eq!(value("Amount"), Some(json!(0.0)));
        assert_eq!(value("When"), Some(json!("2026-01-01T00:00:00.000Z")));
        assert_eq!(value("Tags"), None);
        assert_eq!(typed["Amount"].as_ref().map(|v| v.slot), Some(2));
    }

    #[test]
    fn errors_name_the_attribute() {
        let err = typed(&registry(), &map(json!({"Nope": 1}))).expect_err("unknown");
        assert!(err.contains("`Nope`"), "{err}");
        let err = typed(&registry(), &map(json!({"CustomerId": 5}))).expect_err("wrong type");
        assert!(err.contains("`CustomerId` is a Keyword"), "{err}");
        let err = typed(&registry(), &map(json!({"Tags": ["a", 1]}))).expect_err("wrong type");
        assert!(err.contains("`Tags`"), "{err}");
    }

    #[test]
    fn tokens_are_lowercased_words() {
        assert_eq!(tokens("Hello, World-42 ü"), ["hello", "world", "42", "ü"]);
        assert!(tokens(" ,; ").is_empty());
    }

    #[test]
    fn slots_are_never_given_to_another_name() {
        let kw = SearchAttributeType::Keyword;
        let first = assign(&[], &[("A".into(), kw), ("B".into(), kw)]).expect("room");
        assert_eq!(
            first.iter().map(|r| r.slot.index).collect::<Vec<_>>(),
            [1, 2]
        );
        let mut existing = first;
        existing[0].removed = true;
        // A new name skips the removed attribute's slot; the old name gets
        // it back.
        let next = assign(&existing, &[("C".into(), kw), ("A".into(), kw)]).expect("room");
        assert_eq!(
            next.iter().map(|r| r.slot.index).collect::<Vec<_>>(),
            [3, 1]
        );
        assert_eq!(
            assign(&existing, &[("B".into(), kw)]),
            Err(AssignError::AlreadyRegistered("B".into()))
        );
        let full: Vec<_> = (0..3)
            .map(|i| (format!("I{i}"), SearchAttributeType::Int))
            .collect();
        assert!(assign(&[], &full).is_ok());
        let over: Vec<_> = (0..4)
            .map(|i| (format!("I{i}"), SearchAttributeType::Int))
            .collect();
        assert!(matches!(
            assign(&[], &over),
            Err(AssignError::NoSlotLeft { .. })
        ));
    }
}
