//! JSON Schemas of a task queue version's inputs: what an SDK publishes in
//! its description (or an operator sets over REST), per workflow type
//! (input, each signal, update and query) and per activity type (input),
//! compiled once, and the check of a payload against one of them. Pure:
//! no IO. A schema describes the payload as sent, which for the SDKs is the
//! array of positional arguments (docs/protocol.md §1.5).

use std::collections::BTreeMap;

use jsonschema::Validator;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every schema of one endpoint version, as stored and as served.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schemas {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workflows: BTreeMap<String, WorkflowSchemas>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub activities: BTreeMap<String, ActivitySchemas>,
}

/// One workflow type's schemas; a missing one accepts anything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSchemas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub updates: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queries: BTreeMap<String, Value>,
}

/// One activity type's schemas.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivitySchemas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// What a payload is the input of.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A workflow's start input.
    Workflow(&'a str),
    Signal {
        workflow_type: &'a str,
        name: &'a str,
    },
    Update {
        workflow_type: &'a str,
        name: &'a str,
    },
    Query {
        workflow_type: &'a str,
        name: &'a str,
    },
    Activity(&'a str),
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Workflow(t) => write!(f, "the input of workflow type {t}"),
            Target::Signal {
                workflow_type,
                name,
            } => {
                write!(f, "signal {name} of workflow type {workflow_type}")
            }
            Target::Update {
                workflow_type,
                name,
            } => {
                write!(f, "update {name} of workflow type {workflow_type}")
            }
            Target::Query {
                workflow_type,
                name,
            } => {
                write!(f, "query {name} of workflow type {workflow_type}")
            }
            Target::Activity(t) => write!(f, "the input of activity type {t}"),
        }
    }
}

/// A schema that does not compile; names where it is.
#[derive(Debug, thiserror::Error)]
#[error("invalid schema at {at}: {message}")]
pub struct InvalidSchema {
    /// Dotted path in [`Schemas`], e.g. `workflows.Order.signals.approve`.
    pub at: String,
    pub message: String,
}

/// One way a payload breaks its schema.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// JSON pointer into the payload (`""` is the payload itself).
    pub pointer: String,
    pub message: String,
}

/// A payload its schema refuses, with every violation.
#[derive(Debug, thiserror::Error)]
#[error("{field} does not match the schema of {target}: {}", summary(.violations))]
pub struct InvalidInput {
    /// The request member holding the payload (`input`, `signal_input`, `args`).
    pub field: &'static str,
    pub target: String,
    pub violations: Vec<Violation>,
}

fn summary(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", display_pointer(&v.pointer), v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn display_pointer(p: &str) -> &str {
    if p.is_empty() {
        "(root)"
    } else {
        p
    }
}

/// [`Schemas`] compiled.
#[derive(Default)]
pub struct Compiled {
    validators: BTreeMap<String, Validator>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.validators.keys()).finish()
    }
}

/// The key of one schema in [`Compiled`], which is also its dotted path.
fn key(target: Target<'_>) -> String {
    match target {
        Target::Workflow(t) => format!("workflows.{t}.input"),
        Target::Signal {
            workflow_type,
            name,
        } => format!("workflows.{workflow_type}.signals.{name}"),
        Target::Update {
            workflow_type,
            name,
        } => format!("workflows.{workflow_type}.updates.{name}"),
        Target::Query {
            workflow_type,
            name,
        } => format!("workflows.{workflow_type}.queries.{name}"),
        Target::Activity(t) => format!("activities.{t}.input"),
    }
}

impl Schemas {
    /// Compiles every schema; the first that does not compile is the error.
    pub fn compile(&self) -> Result<Compiled, InvalidSchema> {
        let mut all: Vec<(String, &Value)> = Vec::new();
        for (t, w) in &self.workflows {
            if let Some(s) = &w.input {
                all.push((key(Target::Workflow(t)), s));
            }
            let named = [
                (&w.signals, "signals"),
                (&w.updates, "updates"),
                (&w.queries, "queries"),
            ];
            for (map, kind) in named {
                for (name, s) in map {
                    all.push((format!("workflows.{t}.{kind}.{name}"), s));
                }
            }
        }
        for (t, a) in &self.activities {
            if let Some(s) = &a.input {
                all.push((key(Target::Activity(t)), s));
            }
        }
        let mut validators = BTreeMap::new();
        for (at, schema) in all {
            let validator = jsonschema::validator_for(schema).map_err(|e| InvalidSchema {
                at: at.clone(),
                message: e.to_string(),
            })?;
            validators.insert(at, validator);
        }
        Ok(Compiled { validators })
    }
}

impl Compiled {
    /// Checks `payload` (the request member `field`) against the target's
    /// schema; no schema accepts anything.
    pub fn check(
        &self,
        target: Target<'_>,
        field: &'static str,
        payload: &Value,
    ) -> Result<(), InvalidInput> {
        let Some(validator) = self.validators.get(&key(target)) else {
            return Ok(());
        };
        let violations: Vec<Violation> = validator
            .iter_errors(payload)
            .map(|e| Violation {
                pointer: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            return Ok(());
        }
        Err(InvalidInput {
            field,
            target: target.to_string(),
            violations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Schemas {
        serde_json::from_value(json!({
            "workflows": {"Order": {
                "input": {
                    "type": "array",
                    "prefixItems": [{
                        "type": "object",
                        "properties": {"amount": {"type": "integer"}, "sku": {"type": "string"}},
                        "required": ["amount", "sku"]
                    }]
                },
                "signals": {"approve": {"type": "array", "items": {"type": "boolean"}}}
            }}
        }))
        .expect("schemas")
    }

    #[test]
    fn every_violation_is_listed_with_its_pointer() {
        let compiled = order().compile().expect("compiles");
        let err = compiled
            .check(
                Target::Workflow("Order"),
                "input",
                &json!([{"amount": "ten"}]),
            )
            .expect_err("refused");
        let pointers: Vec<&str> = err.violations.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers.len(), 2, "{err}");
        assert!(pointers.contains(&"/0/amount"), "{pointers:?}");
        assert!(pointers.contains(&"/0"), "{pointers:?}");
        assert!(err.to_string().contains("/0/amount"), "{err}");
        compiled
            .check(
                Target::Workflow("Order"),
                "input",
                &json!([{"amount": 10, "sku": "a"}]),
            )
            .expect("valid");
    }

    #[test]
    fn targets_without_a_schema_accept_anything() {
        let compiled = order().compile().expect("compiles");
        let signal = |name| Target::Signal {
            workflow_type: "Order",
            name,
        };
        assert!(compiled
            .check(signal("approve"), "input", &json!(["yes"]))
            .is_err());
        compiled
            .check(signal("other"), "input", &json!(["yes"]))
            .expect("no schema");
        compiled
            .check(Target::Workflow("Other"), "input", &json!(1))
            .expect("no schema");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_named() {
        let mut schemas = order();
        schemas
            .workflows
            .entry("Order".into())
            .or_default()
            .updates
            .insert("resize".into(), json!({"type": "no-such-type"}));
        let err = schemas.compile().expect_err("refused");
        assert_eq!(err.at, "workflows.Order.updates.resize");
    }
}
