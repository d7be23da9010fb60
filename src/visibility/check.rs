//! From the untyped tree to the typed query: attribute names resolved
//! (system ones, then the namespace's registry), every literal converted
//! to its attribute's type, every operator checked against it. Each error
//! names the offending token and its column.

use crate::engine::{Registry, RunStatus};
use crate::time::Duration;

use super::syntax::{Ast, Literal, LiteralValue, Name, Predicate, Token};
use super::{Attribute, Double, Error, Expr, Op, OrderTerm, Type, Value};

pub(super) fn filter(
    text: &str,
    registry: &Registry,
    ast: Option<&Ast<'_>>,
) -> Result<Option<Expr>, Error> {
    ast.map(|ast| expr(text, registry, ast)).transpose()
}

pub(super) fn order(
    text: &str,
    registry: &Registry,
    order_by: Option<&(&Token<'_>, Vec<(Name<'_>, bool)>)>,
) -> Result<Vec<OrderTerm>, Error> {
    let Some((_, terms)) = order_by else {
        return Ok(Vec::new());
    };
    terms
        .iter()
        .map(|(name, descending)| {
            let attribute = attribute(text, registry, name)?;
            if matches!(attribute.kind(), Type::Text | Type::KeywordList) {
                return Err(error(
                    text,
                    name.token,
                    format!(
                        "runs cannot be ordered by {} (a {})",
                        name.name,
                        attribute.kind().as_str()
                    ),
                ));
            }
            Ok(OrderTerm {
                attribute,
                descending: *descending,
            })
        })
        .collect()
}

pub(super) fn group_by(
    text: &str,
    registry: &Registry,
    group_by: Option<&(&Token<'_>, Name<'_>)>,
) -> Result<Option<Attribute>, Error> {
    let Some((_, name)) = group_by else {
        return Ok(None);
    };
    match attribute(text, registry, name)? {
        Attribute::ExecutionStatus => Ok(Some(Attribute::ExecutionStatus)),
        _ => Err(error(
            text,
            name.token,
            format!(
                "runs can be grouped by ExecutionStatus only, not by {}",
                name.name
            ),
        )),
    }
}

fn error(text: &str, token: &Token<'_>, message: String) -> Error {
    Error::at(text, token.at, token.raw).with_message(message)
}

fn attribute(text: &str, registry: &Registry, name: &Name<'_>) -> Result<Attribute, Error> {
    if let Some(a) = Attribute::from_name(&name.name) {
        return Ok(a);
    }
    registry
        .get(&name.name)
        .map(Attribute::Custom)
        .ok_or_else(|| {
            let near = Attribute::ALL
                .into_iter()
                .map(|a| -> &str { a.name() })
                .chain(registry.iter().map(|(n, _)| n.as_str()))
                .find(|a| a.eq_ignore_ascii_case(&name.name));
            let hint = match near {
                Some(a) => format!(" (names are case-sensitive: did you mean {a}?)"),
                None => String::new(),
            };
            error(
                text,
                name.token,
                format!("unknown search attribute `{}`{hint}", name.name),
            )
        })
}

fn expr(text: &str, registry: &Registry, ast: &Ast<'_>) -> Result<Expr, Error> {
    match ast {
        Ast::And(l, r) => Ok(Expr::And(
            Box::new(expr(text, registry, l)?),
            Box::new(expr(text, registry, r)?),
        )),
        Ast::Or(l, r) => Ok(Expr::Or(
            Box::new(expr(text, registry, l)?),
            Box::new(expr(text, registry, r)?),
        )),
        Ast::Predicate(name, predicate) => {
            let attribute = attribute(text, registry, name)?;
            let kind = attribute.kind();
            let refuse = |token: &Token<'_>, what: &str| {
                error(
                    text,
                    token,
                    format!(
                        "{what} does not apply to {} (a {})",
                        name.name,
                        kind.as_str()
                    ),
                )
            };
            let value = |literal: &Literal<'_>| typed(text, &name.name, attribute, literal);
            match predicate {
                Predicate::Compare(op, token, literal) => {
                    let equality_only = matches!(
                        kind,
                        Type::Status | Type::CustomKeyword | Type::Text | Type::Bool
                    );
                    if (equality_only && !matches!(op, Op::Eq | Op::Ne))
                        || (kind == Type::KeywordList && *op != Op::Eq)
                    {
                        return Err(refuse(token, &format!("`{}`", op.as_str())));
                    }
                    Ok(Expr::Compare {
                        attribute,
                        op: *op,
                        value: value(literal)?,
                    })
                }
                Predicate::In(literals) => {
                    if matches!(kind, Type::Text | Type::Bool) {
                        let at = literals.first().map_or(name.token, |l| l.token);
                        return Err(refuse(at, "IN"));
                    }
                    Ok(Expr::In {
                        attribute,
                        values: literals.iter().map(value).collect::<Result<_, _>>()?,
                    })
                }
                Predicate::Between(low, high) => {
                    if matches!(
                        kind,
                        Type::Status
                            | Type::CustomKeyword
                            | Type::Text
                            | Type::Bool
                            | Type::KeywordList
                    ) {
                        return Err(refuse(low.token, "BETWEEN"));
                    }
                    Ok(Expr::Between {
                        attribute,
                        low: value(low)?,
                        high: value(high)?,
                    })
                }
                Predicate::StartsWith(literal) => {
                    if !matches!(kind, Type::Keyword | Type::CustomKeyword) {
                        return Err(refuse(literal.token, "STARTS_WITH"));
                    }
                    match value(literal)? {
                        Value::Text(prefix) => Ok(Expr::StartsWith { attribute, prefix }),
                        _ => Err(refuse(literal.token, "a number")),
                    }
                }
                Predicate::IsNull { negated } => Ok(Expr::IsNull {
                    attribute,
                    negated: *negated,
                }),
            }
        }
    }
}

/// `literal` as a value of `attribute`'s type (`name` as written).
fn typed(
    text: &str,
    name: &str,
    attribute: Attribute,
    literal: &Literal<'_>,
) -> Result<Value, Error> {
    let kind = attribute.kind();
    let wrong = |expected: &str| {
        error(
            text,
            literal.token,
            format!(
                "{name} is a {}: expected {expected}, found `{}`",
                kind.as_str(),
                literal.token.raw
            ),
        )
    };
    match (kind, &literal.value) {
        (Type::Keyword | Type::CustomKeyword | Type::KeywordList, LiteralValue::Text(s)) => {
            Ok(Value::Text(s.clone()))
        }
        (Type::Keyword | Type::CustomKeyword | Type::KeywordList, _) => {
            Err(wrong("a quoted string"))
        }
        // The literal's words, as the value's are kept.
        (Type::Text, LiteralValue::Text(s)) => Ok(Value::List(crate::engine::text_tokens(s))),
        (Type::Text, _) => Err(wrong("a quoted string")),
        (Type::Double, LiteralValue::Number(n)) => n
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| Value::Double(Double(if f == 0.0 { 0.0 } else { f })))
            .ok_or_else(|| wrong("a number")),
        (Type::Double, _) => Err(wrong("a number")),
        (Type::Bool, LiteralValue::Bool(b)) => Ok(Value::Int(i64::from(*b))),
        (Type::Bool, _) => Err(wrong("true or false")),
        (Type::Status, LiteralValue::Text(s)) => status(s)
            .map(|st| Value::Text(st.as_str().to_owned()))
            .ok_or_else(|| {
                wrong(
                    "one of Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, \
                     TimedOut",
                )
            }),
        (Type::Status, _) => Err(wrong("a quoted run status")),
        (Type::Datetime, LiteralValue::Text(s)) => crate::time::rfc3339_millis(s)
            .map(Value::Int)
            .ok_or_else(|| wrong("an RFC 3339 time such as \"2026-11-01T00:00:00Z\"")),
        (Type::Datetime, _) => Err(wrong("a quoted RFC 3339 time")),
        (Type::Duration, LiteralValue::Text(s)) => s
            .parse::<Duration>()
            .map(|d| Value::Int(d.millis()))
            .map_err(|_| wrong("a duration such as \"90s\" or \"1h 30m\"")),
        (Type::Duration, _) => Err(wrong("a quoted duration")),
        (Type::Int, LiteralValue::Number(n)) => n
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| wrong("a whole number")),
        (Type::Int, _) => Err(wrong("a whole number")),
    }
}

/// A run status by Temporal's name (`ContinuedAsNew`) or Baton's
/// (`CONTINUED_AS_NEW`), in any case.
fn status(name: &str) -> Option<RunStatus> {
    let squashed: String = name.chars().filter(|c| *c != '_').collect();
    [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Terminated,
        RunStatus::ContinuedAsNew,
        RunStatus::TimedOut,
    ]
    .into_iter()
    .find(|st| st.as_str().replace('_', "").eq_ignore_ascii_case(&squashed))
}
