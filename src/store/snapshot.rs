//! The stored form of a run's snapshot, `runs.state`, and its schema
//! versions.
//!
//! A row holds `{"v":N,"state":{…}}`: [`RunState`]'s serde form wrapped
//! with the version of that form. Rows written before the wrapper existed
//! hold the bare `RunState` object and read as version 1, the form the
//! wrapper's version 1 holds. [`decode`] reads every version ever written:
//! the current one deserializes directly (the hot path, no intermediate
//! tree); an older one is upgraded step by step ([`UPGRADES`]) as JSON,
//! then deserialized. A row from a newer build is refused as corrupt
//! rather than misread.
//!
//! The rule (ARCHITECTURE.md, "store"): a change to `RunState` that an old
//! row would not decode into with the same meaning (a renamed, removed or
//! reshaped field, a new field whose default is not what old rows mean)
//! bumps [`CURRENT`] and adds the step that upgrades the previous version.
//! The golden rows in `testdata/run_state/` are never edited: each version
//! keeps its own, and the tests load every one of them.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::RunState;

use super::rows::encode_json;
use super::{Error, Result};

/// The version [`encode`] writes.
pub(super) const CURRENT: u32 = 1;

/// One upgrade step: the JSON object of a state, changed in place from one
/// version to the next.
type Upgrade = fn(&mut Map<String, Value>) -> std::result::Result<(), String>;

/// `UPGRADES[i]` turns a version `i + 1` state into version `i + 2`; so
/// `UPGRADES.len() + 1 == CURRENT`.
const UPGRADES: &[Upgrade] = &[];

/// The `runs.state` text of `state`, at [`CURRENT`].
pub(super) fn encode(state: &RunState) -> Result<String> {
    encode_json("run state", &Stored { v: CURRENT, state })
}

/// The state a `runs.state` text holds, whatever version wrote it.
pub(super) fn decode(text: &str) -> Result<RunState> {
    serde_json::from_str::<Decoded>(text)
        .map(|d| d.0)
        .map_err(|e| Error::Corrupt(format!("decoding run state: {e}")))
}

#[derive(Serialize)]
struct Stored<'a> {
    v: u32,
    state: &'a RunState,
}

/// A decoded row; see [`StoredVisitor`].
struct Decoded(RunState);

impl<'de> Deserialize<'de> for Decoded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Decoded, D::Error> {
        d.deserialize_map(StoredVisitor)
    }
}

/// Reads `{"v":N,"state":…}` in the order [`encode`] writes it without
/// buffering; anything else (an unversioned row, or the two keys in the
/// other order) is collected as JSON first.
struct StoredVisitor;

impl<'de> Visitor<'de> for StoredVisitor {
    type Value = Decoded;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stored run state (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Decoded, A::Error> {
        let first = map.next_key::<String>()?;
        if first.as_deref() == Some("v") {
            let version = check_version(map.next_value()?).map_err(de::Error::custom)?;
            match map.next_key::<String>()?.as_deref() {
                Some("state") => {}
                Some(other) => return Err(de::Error::unknown_field(other, &["v", "state"])),
                None => return Err(de::Error::missing_field("state")),
            }
            let state = if version == CURRENT {
                map.next_value::<RunState>()?
            } else {
                let Value::Object(object) = map.next_value()? else {
                    return Err(de::Error::custom("the state is not a JSON object"));
                };
                upgrade(version, object).map_err(de::Error::custom)?
            };
            if let Some(other) = map.next_key::<String>()? {
                return Err(de::Error::unknown_field(&other, &["v", "state"]));
            }
            return Ok(Decoded(state));
        }
        let mut object = Map::new();
        if let Some(key) = first {
            object.insert(key, map.next_value()?);
        }
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            object.insert(key, value);
        }
        let state = match object.remove("v") {
            // Unversioned: written before versions existed, so version 1.
            None => upgrade(1, object),
            Some(v) => {
                let version = serde_json::from_value(v).map_err(|e| e.to_string());
                let state = object.remove("state");
                match (version.and_then(check_version), state, object.keys().next()) {
                    (Err(e), _, _) => Err(e),
                    (_, _, Some(other)) => Err(format!("unknown field {other:?} beside \"v\"")),
                    (Ok(version), Some(Value::Object(state)), None) => upgrade(version, state),
                    (Ok(_), _, None) => Err("the state is missing or not a JSON object".into()),
                }
            }
        };
        state.map(Decoded).map_err(de::Error::custom)
    }
}

fn check_version(version: u32) -> std::result::Result<u32, String> {
    match version {
        0 => Err("run state version 0 does not exist".into()),
        v if v > CURRENT => Err(format!(
            "run state version {v} was written by a newer Baton (this one reads up to {CURRENT})"
        )),
        v => Ok(v),
    }
}

/// Upgrades a version `from` state to [`CURRENT`] and deserializes it.
fn upgrade(from: u32, mut object: Map<String, Value>) -> std::result::Result<RunState, String> {
    for step in UPGRADES.iter().skip(from.saturating_sub(1) as usize) {
        step(&mut object)?;
    }
    serde_json::from_value(Value::Object(object)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use expect_test::expect_file;

    use super::*;

    fn golden_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/testdata/run_state")
    }

    /// Every golden row of every version, by path below `golden_dir()`.
    fn goldens() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for version in std::fs::read_dir(golden_dir())
            .expect("golden dir")
            .flatten()
        {
            if !version.path().is_dir() || version.file_name() == "current" {
                continue;
            }
            for file in std::fs::read_dir(version.path())
                .expect("version dir")
                .flatten()
            {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "json") {
                    let rel = path
                        .strip_prefix(golden_dir())
                        .expect("below the golden dir")
                        .display()
                        .to_string();
                    let text = std::fs::read_to_string(&path).expect("readable golden row");
                    out.push((rel, text));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn current_version_has_an_upgrade_from_every_older_one() {
        assert_eq!(UPGRADES.len() + 1, CURRENT as usize);
    }

    /// Each golden row loads, and reads as its re-encoding in the current
    /// form (`current/<version>-<name>.json`, regenerated with UPDATE_EXPECT=1 when
    /// `RunState` gains a field; a change there is a change to review, and
    /// a golden that no longer loads is a missing upgrade step).
    #[test]
    fn every_golden_row_loads() {
        let goldens = goldens();
        assert!(goldens.len() >= 7, "golden rows are missing: {goldens:?}");
        for (rel, text) in goldens {
            let state = decode(&text).unwrap_or_else(|e| panic!("{rel} does not load: {e}"));
            let encoded = encode(&state).expect("encodes");
            assert_eq!(
                decode(&encoded).expect("decodes"),
                state,
                "{rel} round trip"
            );
            // The same text as `encoded`, laid out to be read in review.
            let pretty = serde_json::to_string_pretty(&Stored {
                v: CURRENT,
                state: &state,
            })
            .expect("encodes")
                + "\n";
            let json = |text: &str| serde_json::from_str::<Value>(text).expect("JSON");
            assert_eq!(json(&encoded), json(&pretty), "{rel}");
            // `v1/orders.json` is read as `current/v1-orders.json`.
            let name = rel.replace(['/', '\\'], "-");
            expect_file![golden_dir().join("current").join(name)].assert_eq(&pretty);
        }
    }

    #[test]
    fn rows_are_written_versioned_and_read_in_any_key_order() {
        let (_, text) = goldens().into_iter().next().expect("a golden row");
        let state = decode(&text).expect("loads");
        let encoded = encode(&state).expect("encodes");
        assert!(encoded.starts_with(r#"{"v":1,"state":{"#), "{encoded}");
        let bare = serde_json::to_string(&state).expect("encodes");
        let swapped = format!(r#"{{"state":{bare},"v":1}}"#);
        assert_eq!(decode(&swapped).expect("loads"), state);
        assert_eq!(decode(&bare).expect("loads"), state);
    }

    #[test]
    fn rows_from_a_newer_build_or_without_a_state_are_refused() {
        let (_, text) = goldens().into_iter().next().expect("a golden row");
        let bare = serde_json::to_string(&decode(&text).expect("loads")).expect("encodes");
        let refused = |text: &str| decode(text).expect_err("refused").to_string();
        assert!(refused(&format!(r#"{{"v":2,"state":{bare}}}"#)).contains("newer Baton"));
        assert!(refused(&format!(r#"{{"state":{bare},"v":2}}"#)).contains("newer Baton"));
        assert!(refused(r#"{"v":1}"#).contains("missing field `state`"));
        assert!(refused(&format!(r#"{{"v":1,"state":{bare},"x":1}}"#)).contains("unknown field"));
        assert!(refused("[]").contains("run state"));
    }

    #[test]
    fn run_state_has_no_field_the_wrapper_uses() {
        let (_, text) = goldens().into_iter().next().expect("a golden row");
        let value = serde_json::to_value(decode(&text).expect("loads")).expect("encodes");
        let object = value.as_object().expect("an object");
        assert!(!object.contains_key("v") && !object.contains_key("state"));
    }
}
