//! Routing rules: which verified delivery does what, and the templates
//! that map its payload onto a workflow command.
//!
//! A source's rules are tried in order; the first whose every condition
//! holds is the delivery's rule, and no rule means the delivery is
//! ignored. A rule matches on
//!
//! - `events`: the scheme's event type ([`super::event_type`]) is one of
//!   these (empty: any);
//! - `headers`: each named header (any case) equals the value given;
//! - `when`: each JSON pointer (RFC 6901) into the body `equals` a value,
//!   or is `in` a list of values.
//!
//! # Templates
//!
//! The workflow id, signal or update name and the inputs are templates
//! over the JSON body. The syntax is deliberately small: `{` + an RFC 6901
//! JSON pointer + `}` is replaced by the value there, and `{}` (the empty
//! pointer) by the whole body; `{{` and `}}` are literal braces. In a
//! string field a string value is inserted as is and any other value as
//! its JSON text. In an input, a string that is exactly one placeholder
//! becomes the value itself (an object stays an object), any other string
//! is interpolated, and arrays and objects are templated element by
//! element. A pointer that names nothing fails the delivery (a mapping
//! the sender's retry can succeed at once the rule is fixed), never an
//! empty string. JSON pointers rather than JMESPath: the conditions need
//! pointers anyway, `serde_json` resolves them, and a mapping needs
//! lookups, not a query language.
//!
//! # Invariants
//!
//! Pure (`tests/tidy.rs`). [`Rule::check`] refuses, at configuration
//! time, every template that would fail to parse, so a delivery fails
//! only on a pointer its payload lacks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One routing rule of a source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Names the rule in the delivery log.
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<Condition>,
    pub action: Action,
}

/// A test of the value at `pointer`: exactly one of `equals` and `in`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub pointer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
}

/// What a matched delivery does. Every string is a template; the inputs
/// default to `"{}"`, the whole body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Signal {
        workflow_id: String,
        signal: String,
        #[serde(default = "whole_body")]
        input: Value,
    },
    SignalWithStart {
        workflow_id: String,
        signal: String,
        #[serde(default = "whole_body")]
        input: Value,
        workflow_type: String,
        task_queue: String,
        #[serde(default = "whole_body")]
        workflow_input: Value,
    },
    Start {
        workflow_id: String,
        workflow_type: String,
        task_queue: String,
        #[serde(default = "whole_body")]
        input: Value,
    },
    Update {
        workflow_id: String,
        update: String,
        #[serde(default = "whole_body")]
        input: Value,
    },
}

fn whole_body() -> Value {
    Value::String("{}".into())
}

impl Action {
    /// The action's name in the delivery log and the API.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Signal { .. } => "signal",
            Action::SignalWithStart { .. } => "signal_with_start",
            Action::Start { .. } => "start",
            Action::Update { .. } => "update",
        }
    }

    pub fn workflow_id(&self) -> &str {
        match self {
            Action::Signal { workflow_id, .. }
            | Action::SignalWithStart { workflow_id, .. }
            | Action::Start { workflow_id, .. }
            | Action::Update { workflow_id, .. } => workflow_id,
        }
    }

    /// The same action with every string template passed through `text`
    /// and every input template through `value`, each with its field
    /// name: the one walk over an action's templates, for checking them
    /// and for filling them in.
    fn map_templates(
        &self,
        text: impl Fn(&str, &str) -> Result<String, TemplateError>,
        value: impl Fn(&str, &Value) -> Result<Value, TemplateError>,
    ) -> Result<Action, TemplateError> {
        Ok(match self {
            Action::Signal {
                workflow_id,
                signal,
                input,
            } => Action::Signal {
                workflow_id: text("workflow_id", workflow_id)?,
                signal: text("signal", signal)?,
                input: value("input", input)?,
            },
            Action::SignalWithStart {
                workflow_id,
                signal,
                input,
                workflow_type,
                task_queue,
                workflow_input,
            } => Action::SignalWithStart {
                workflow_id: text("workflow_id", workflow_id)?,
                signal: text("signal", signal)?,
                input: value("input", input)?,
                workflow_type: text("workflow_type", workflow_type)?,
                task_queue: text("task_queue", task_queue)?,
                workflow_input: value("workflow_input", workflow_input)?,
            },
            Action::Start {
                workflow_id,
                workflow_type,
                task_queue,
                input,
            } => Action::Start {
                workflow_id: text("workflow_id", workflow_id)?,
                workflow_type: text("workflow_type", workflow_type)?,
                task_queue: text("task_queue", task_queue)?,
                input: value("input", input)?,
            },
            Action::Update {
                workflow_id,
                update,
                input,
            } => Action::Update {
                workflow_id: text("workflow_id", workflow_id)?,
                update: text("update", update)?,
                input: value("input", input)?,
            },
        })
    }
}

/// Why a rule or a template is unusable, or why a delivery could not be
/// mapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field}: the payload has nothing at `{pointer}`")]
    Missing { field: String, pointer: String },
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    /// `{` and `}` from `{{` and `}}`.
    Brace(char),
    Pointer(&'a str),
}

fn invalid(field: &str, reason: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Splits a template into literal text and pointers.
fn parse<'a>(field: &str, template: &'a str) -> Result<Vec<Piece<'a>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            pieces.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Brace('{'));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Brace('}'));
            rest = after;
        } else if tail.starts_with('}') {
            return Err(invalid(field, "a lone `}` (write `}}` for a brace)"));
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| invalid(field, "a `{` without its `}`"))?;
            let pointer = &tail[1..end];
            if !(pointer.is_empty() || pointer.starts_with('/')) || pointer.contains('{') {
                return Err(invalid(
                    field,
                    format!("`{{{pointer}}}` is no JSON pointer (they start with `/`; `{{}}` is the whole body)"),
                ));
            }
            pieces.push(Piece::Pointer(pointer));
            rest = &tail[end + 1..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn lookup<'b>(field: &str, body: &'b Value, pointer: &str) -> Result<&'b Value, TemplateError> {
    body.pointer(pointer).ok_or_else(|| TemplateError::Missing {
        field: field.to_owned(),
        pointer: pointer.to_owned(),
    })
}

/// Renders a string template.
pub fn render_str(field: &str, template: &str, body: &Value) -> Result<String, TemplateError> {
    let mut out = String::new();
    for piece in parse(field, template)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Brace(c) => out.push(c),
            Piece::Pointer(p) => match lookup(field, body, p)? {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    // An id or a name is stored as text, which cannot hold a NUL on
    // PostgreSQL: refused here, the same on every backend.
    if out.contains('\0') {
        return Err(invalid(field, "the payload puts a NUL (U+0000) here"));
    }
    Ok(out)
}

/// Renders an input template (see the module docs).
pub fn render_value(field: &str, template: &Value, body: &Value) -> Result<Value, TemplateError> {
    Ok(match template {
        Value::String(s) => match parse(field, s)?.as_slice() {
            [Piece::Pointer(p)] => lookup(field, body, p)?.clone(),
            _ => Value::String(render_str(field, s, body)?),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render_value(&format!("{field}/{i}"), v, body))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(&format!("{field}/{k}"), v, body)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// Checks a value template's strings parse, without a body.
fn check_value(field: &str, template: &Value) -> Result<(), TemplateError> {
    match template {
        Value::String(s) => parse(field, s).map(drop),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_value(&format!("{field}/{i}"), v)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_value(&format!("{field}/{k}"), v)),
        _ => Ok(()),
    }
}

fn check_str(field: &str, template: &str) -> Result<(), TemplateError> {
    if template.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    parse(field, template).map(drop)
}

impl Rule {
    /// Refuses a rule that could never work, naming the field by its
    /// path under `prefix` (e.g. `rules/0/action/workflow_id`).
    pub fn check(&self, prefix: &str) -> Result<(), TemplateError> {
        if self.name.trim().is_empty() {
            return Err(invalid(&format!("{prefix}/name"), "must not be empty"));
        }
        for (i, c) in self.when.iter().enumerate() {
            let field = format!("{prefix}/when/{i}");
            if !(c.pointer.is_empty() || c.pointer.starts_with('/')) {
                return Err(invalid(
                    &format!("{field}/pointer"),
                    "a JSON pointer starts with `/`",
                ));
            }
            if c.equals.is_some() == c.one_of.is_some() {
                return Err(invalid(&field, "give exactly one of `equals` and `in`"));
            }
        }
        let a = |name: &str| format!("{prefix}/action/{name}");
        self.action
            .map_templates(
                |name, t| check_str(&a(name), t).map(|()| String::new()),
                |name, t| check_value(&a(name), t).map(|()| Value::Null),
            )
            .map(drop)
    }

    /// Whether this rule takes a delivery with `event` type, these
    /// headers (looked up by lower-case name) and this body.
    fn matches<'a>(
        &self,
        event: Option<&str>,
        header: &impl Fn(&str) -> Option<&'a str>,
        body: &Value,
    ) -> bool {
        let event_ok =
            self.events.is_empty() || event.is_some_and(|e| self.events.iter().any(|x| x == e));
        let headers_ok = self
            .headers
            .iter()
            .all(|(name, want)| header(&name.to_ascii_lowercase()) == Some(want.as_str()));
        let when_ok = self.when.iter().all(|c| match body.pointer(&c.pointer) {
            None => false,
            Some(v) => match (&c.equals, &c.one_of) {
                (Some(want), _) => v == want,
                (None, Some(list)) => list.contains(v),
                (None, None) => false,
            },
        });
        event_ok && headers_ok && when_ok
    }

    /// The rule's action with its templates filled in from `body`.
    pub fn resolve(&self, body: &Value) -> Result<Action, TemplateError> {
        self.action.map_templates(
            |name, t| render_str(&format!("action/{name}"), t, body),
            |name, t| render_value(&format!("action/{name}"), t, body),
        )
    }
}

/// The first rule that takes the delivery, if any.
pub fn first_match<'r, 'a>(
    rules: &'r [Rule],
    event: Option<&str>,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &Value,
) -> Option<&'r Rule> {
    rules.iter().find(|r| r.matches(event, &header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(value: Value) -> Rule {
        serde_json::from_value(value).expect("rule parses")
    }

    fn none(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn string_templates_interpolate_and_escape() {
        let body = json!({"data": {"object": {"id": "pi_1", "amount": 2000}}, "a/b": "slash"});
        assert_eq!(
            render_str("f", "pay-{/data/object/id}", &body).as_deref(),
            Ok("pay-pi_1")
        );
        assert_eq!(
            render_str("f", "{/data/object/amount}", &body).as_deref(),
            Ok("2000")
        );
        assert_eq!(render_str("f", "{/a~1b}", &body).as_deref(), Ok("slash"));
        assert_eq!(render_str("f", "{{x}}", &body).as_deref(), Ok("{x}"));
        assert!(matches!(
            render_str("f", "id-{/nul}", &json!({"nul": "a\u{0}"})),
            Err(TemplateError::Invalid { .. })
        ));
        assert_eq!(
            render_str("f", "{/nope}", &body),
            Err(TemplateError::Missing {
                field: "f".into(),
                pointer: "/nope".into()
            })
        );
        for bad in ["{data}", "{/a", "a}", "{/a{b}"] {
            assert!(
                matches!(
                    render_str("f", bad, &body),
                    Err(TemplateError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn value_templates_keep_types() {
        let body = json!({"pr": {"number": 7, "merged": true, "head": {"ref": "x"}}});
        let template = json!({"n": "{/pr/number}", "title": "PR #{/pr/number}", "all": "{}", "list": ["{/pr/merged}", 3]});
        assert_eq!(
            render_value("input", &template, &body),
            Ok(json!({"n": 7, "title": "PR #7", "all": body, "list": [true, 3]}))
        );
        assert_eq!(
            render_value("input", &json!("{/pr/missing}"), &body),
            Err(TemplateError::Missing {
                field: "input".into(),
                pointer: "/pr/missing".into()
            })
        );
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = vec![
            rule(json!({"name": "merged", "events": ["pull_request"],
                "when": [{"pointer": "/action", "equals": "closed"}, {"pointer": "/pull_request/merged", "equals": true}],
                "action": {"type": "start", "workflow_id": "pr-{/number}", "workflow_type": "Deploy", "task_queue": "q"}})),
            rule(
                json!({"name": "any-pr", "events": ["pull_request"], "headers": {"X-Tenant": "acme"},
                "when": [{"pointer": "/action", "in": ["opened", "closed"]}],
                "action": {"type": "signal", "workflow_id": "pr-{/number}", "signal": "pr"}}),
            ),
        ];
        let merged = json!({"action": "closed", "number": 7, "pull_request": {"merged": true}});
        let closed = json!({"action": "closed", "number": 7, "pull_request": {"merged": false}});
        let tenant = |n: &str| (n == "x-tenant").then_some("acme");
        let hit = first_match(&rules, Some("pull_request"), none, &merged).expect("matches");
        assert_eq!(hit.name, "merged");
        assert_eq!(
            hit.resolve(&merged),
            Ok(Action::Start {
                workflow_id: "pr-7".into(),
                workflow_type: "Deploy".into(),
                task_queue: "q".into(),
                input: merged.clone()
            })
        );
        assert!(first_match(&rules, Some("pull_request"), none, &closed).is_none());
        assert_eq!(
            first_match(&rules, Some("pull_request"), tenant, &closed).map(|r| r.name.as_str()),
            Some("any-pr")
        );
        assert!(first_match(&rules, Some("push"), tenant, &merged).is_none());
        assert!(first_match(&rules, None, tenant, &Value::Null).is_none());
    }

    #[test]
    fn check_names_the_bad_field() {
        let bad = rule(
            json!({"name": "r", "action": {"type": "signal", "workflow_id": "{id}", "signal": "s"}}),
        );
        assert_eq!(
            bad.check("rules/0").map_err(|e| e.to_string()),
            Err("rules/0/action/workflow_id: `{id}` is no JSON pointer (they start with `/`; `{}` is the whole body)".into())
        );
        let both = rule(
            json!({"name": "r", "when": [{"pointer": "/a", "equals": 1, "in": [1]}],
            "action": {"type": "update", "workflow_id": "w", "update": "u"}}),
        );
        assert!(both
            .check("rules/1")
            .unwrap_err()
            .to_string()
            .starts_with("rules/1/when/0:"));
        let empty = rule(
            json!({"name": "r", "action": {"type": "start", "workflow_id": "w", "workflow_type": " ", "task_queue": "q"}}),
        );
        assert!(empty
            .check("rules/2")
            .unwrap_err()
            .to_string()
            .starts_with("rules/2/action/workflow_type:"));
        assert!(serde_json::from_value::<Rule>(
            json!({"name": "r", "action": {"type": "teleport", "workflow_id": "w"}})
        )
        .is_err());
    }
}
