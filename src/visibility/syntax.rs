//! The grammar of list filters, parsed with winnow in two passes: a lexer
//! from text to [`Token`]s (each with its byte offset), then a parser from
//! tokens to the untyped [`Ast`]. Nothing here knows attribute names or
//! types; `check` does. Keywords are case-insensitive, attribute names are
//! not (as in Temporal).
//!
//! ```text
//! query      := [expr] [ORDER BY order_term {, order_term}] [GROUP BY name]
//! expr       := conjunction {OR conjunction}
//! conjunction:= primary {AND primary}
//! primary    := ( expr ) | name predicate
//! predicate  := op literal | IN ( literal {, literal} ) | BETWEEN literal AND literal
//!             | STARTS_WITH literal | IS [NOT] NULL
//! op         := = | != | <> | < | <= | > | >=
//! order_term := name [ASC | DESC]
//! literal    := 'text' | "text" | number | TRUE | FALSE
//! name       := identifier | `any text but a backtick`
//! ```

use winnow::combinator::{alt, cut_err, delimited, opt, preceded, repeat, separated};
use winnow::error::{ContextError, ErrMode, ModalResult, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::TokenSlice;
use winnow::token::{any, one_of, take_till, take_while};

use super::Error;

/// A token and where it starts in the text (a byte offset).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token<'s> {
    pub kind: Kind,
    /// The token's text as written (for a string, with its quotes).
    pub raw: &'s str,
    pub at: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    /// An attribute name, bare or in backticks (without them).
    Name(String),
    /// A quoted string, unescaped.
    Text(String),
    Number,
    Keyword(Keyword),
    Op(Op),
    LParen,
    RParen,
    Comma,
    /// The end of the text.
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keyword {
    And,
    Or,
    In,
    Between,
    StartsWith,
    Is,
    Not,
    Null,
    Order,
    Group,
    By,
    Asc,
    Desc,
    True,
    False,
}

const KEYWORDS: [(&str, Keyword); 15] = [
    ("and", Keyword::And),
    ("or", Keyword::Or),
    ("in", Keyword::In),
    ("between", Keyword::Between),
    ("starts_with", Keyword::StartsWith),
    ("is", Keyword::Is),
    ("not", Keyword::Not),
    ("null", Keyword::Null),
    ("order", Keyword::Order),
    ("group", Keyword::Group),
    ("by", Keyword::By),
    ("asc", Keyword::Asc),
    ("desc", Keyword::Desc),
    ("true", Keyword::True),
    ("false", Keyword::False),
];

/// A comparison operator (the typed AST uses the same one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The operator as written in a query (and in SQL).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A value as written, with the token it came from (for errors).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Literal<'s> {
    pub value: LiteralValue,
    pub token: &'s Token<'s>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum LiteralValue {
    Text(String),
    /// Digits, an optional sign and fraction, checked by `check`.
    Number(String),
    Bool(bool),
}

/// An attribute name with its token.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Name<'s> {
    pub name: String,
    pub token: &'s Token<'s>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ast<'s> {
    And(Box<Ast<'s>>, Box<Ast<'s>>),
    Or(Box<Ast<'s>>, Box<Ast<'s>>),
    Predicate(Name<'s>, Predicate<'s>),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Predicate<'s> {
    Compare(Op, &'s Token<'s>, Literal<'s>),
    In(Vec<Literal<'s>>),
    Between(Literal<'s>, Literal<'s>),
    StartsWith(Literal<'s>),
    IsNull { negated: bool },
}

/// A parsed query: the filter, the ORDER BY terms (name, descending) and
/// the GROUP BY name, each with its keyword token for errors.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Parsed<'s> {
    pub filter: Option<Ast<'s>>,
    pub order_by: Option<(&'s Token<'s>, Vec<(Name<'s>, bool)>)>,
    pub group_by: Option<(&'s Token<'s>, Name<'s>)>,
}

/// Splits `text` into tokens, ending with [`Kind::End`].
pub(super) fn lex(text: &str) -> Result<Vec<Token<'_>>, Error> {
    let mut rest = text;
    let mut tokens = Vec::new();
    loop {
        rest = rest.trim_start();
        let at = text.len() - rest.len();
        if rest.is_empty() {
            tokens.push(Token {
                kind: Kind::End,
                raw: "",
                at,
            });
            return Ok(tokens);
        }
        let before = rest;
        let kind = token.parse_next(&mut rest).map_err(|_| {
            let bad: String = before.chars().take_while(|c| !c.is_whitespace()).collect();
            let what = match before.chars().next() {
                Some('\'' | '"') => "a string that is never closed".to_owned(),
                Some('`') => "a name whose backtick is never closed".to_owned(),
                _ => "a character that starts no token".to_owned(),
            };
            Error::at(text, at, &bad).with_message(format!("{what} `{bad}`"))
        })?;
        tokens.push(Token {
            kind,
            raw: &before[..before.len() - rest.len()],
            at,
        });
    }
}

fn token(input: &mut &str) -> ModalResult<Kind> {
    alt((
        quoted('\''),
        quoted('"'),
        delimited('`', take_till(1.., '`'), '`').map(|name: &str| Kind::Name(name.to_owned())),
        number.value(Kind::Number),
        word,
        operator,
        one_of(['(', ')', ',']).map(|c| match c {
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            _ => Kind::Comma,
        }),
    ))
    .parse_next(input)
}

fn operator(input: &mut &str) -> ModalResult<Kind> {
    take_while(1..=2, ['!', '<', '>', '='])
        .verify_map(|op: &str| {
            Some(Kind::Op(match op {
                "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return None,
            }))
        })
        .parse_next(input)
}

/// `-?digits(.digits)?`.
fn number<'s>(input: &mut &'s str) -> ModalResult<&'s str> {
    (
        opt('-'),
        take_while(1.., |c: char| c.is_ascii_digit()),
        opt(('.', take_while(1.., |c: char| c.is_ascii_digit()))),
    )
        .take()
        .parse_next(input)
}

/// A bare word: a keyword if it is one (in any case), else a name.
fn word(input: &mut &str) -> ModalResult<Kind> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .map(|w: &str| {
            KEYWORDS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(w))
                .map_or_else(|| Kind::Name(w.to_owned()), |(_, k)| Kind::Keyword(*k))
        })
        .parse_next(input)
}

/// A string in `quote`s; a backslash escapes the next character, and a
/// doubled quote stands for one (SQL's way).
fn quoted(mut quote: char) -> impl FnMut(&mut &str) -> ModalResult<Kind> {
    move |input: &mut &str| {
        let _ = quote.parse_next(input)?;
        let mut text = String::new();
        loop {
            match any.parse_next(input)? {
                '\\' => text.push(any.parse_next(input)?),
                c if c == quote => {
                    if opt(quote).parse_next(input)?.is_some() {
                        text.push(quote);
                    } else {
                        return Ok(Kind::Text(text));
                    }
                }
                c => text.push(c),
            }
        }
    }
}

type Tokens<'t, 's> = TokenSlice<'t, Token<'s>>;

fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

/// Parses lexed tokens (ending with [`Kind::End`]) into a query.
pub(super) fn parse<'s>(text: &'s str, tokens: &'s [Token<'s>]) -> Result<Parsed<'s>, Error> {
    let mut input = Tokens::new(tokens);
    match query.parse_next(&mut input) {
        Ok(parsed) => Ok(parsed),
        Err(e) => {
            let index = tokens.len() - input.len();
            let token = &tokens[index.min(tokens.len() - 1)];
            // The innermost expectation is the precise one; the outer
            // ones ("a condition") only repeat it in general terms.
            let wanted = match &e {
                ErrMode::Backtrack(c) | ErrMode::Cut(c) => c.context().find_map(|c| match c {
                    StrContext::Expected(v) => Some(v.to_string()),
                    _ => None,
                }),
                ErrMode::Incomplete(_) => None,
            };
            let found = match token.kind {
                Kind::End => "the end of the query".to_owned(),
                _ => format!("`{}`", token.raw),
            };
            let message = match wanted {
                None => format!("unexpected {found}"),
                Some(wanted) => format!("expected {wanted}, found {found}"),
            };
            Err(Error::at(text, token.at, token.raw).with_message(message))
        }
    }
}

fn kind<'s>(want: Kind) -> impl Parser<Tokens<'s, 's>, &'s Token<'s>, ErrMode<ContextError>> {
    any.verify(move |t: &&Token<'s>| t.kind == want)
}

fn keyword<'s>(want: Keyword) -> impl Parser<Tokens<'s, 's>, &'s Token<'s>, ErrMode<ContextError>> {
    kind(Kind::Keyword(want))
}

fn query<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Parsed<'s>> {
    // An empty filter is allowed before ORDER BY / GROUP BY (or alone).
    let filter = opt(expr).parse_next(input)?;
    let order_by = opt((
        keyword(Keyword::Order),
        cut_err(preceded(
            keyword(Keyword::By).context(expected("BY")),
            separated(1.., order_term, kind(Kind::Comma)),
        )),
    ))
    .parse_next(input)?;
    let group_by = opt((
        keyword(Keyword::Group),
        cut_err(preceded(keyword(Keyword::By).context(expected("BY")), name)),
    ))
    .parse_next(input)?;
    let what = match (&filter, &order_by, &group_by) {
        (_, _, Some(_)) => "the end of the query",
        (_, Some(_), None) => "`,`, GROUP BY or the end of the query",
        (Some(_), None, None) => "AND, OR, ORDER BY, GROUP BY or the end of the query",
        (None, None, None) => "a condition, ORDER BY or GROUP BY",
    };
    cut_err(kind(Kind::End).context(expected(what))).parse_next(input)?;
    Ok(Parsed {
        filter,
        order_by,
        group_by,
    })
}

fn order_term<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<(Name<'s>, bool)> {
    let name = name.parse_next(input)?;
    let direction = opt(alt((keyword(Keyword::Asc), keyword(Keyword::Desc)))).parse_next(input)?;
    let descending = direction.is_some_and(|t| t.kind == Kind::Keyword(Keyword::Desc));
    Ok((name, descending))
}

fn expr<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Ast<'s>> {
    let first = conjunction.parse_next(input)?;
    repeat(0.., preceded(keyword(Keyword::Or), cut_err(conjunction)))
        .fold(
            move || first.clone(),
            |left, right| Ast::Or(Box::new(left), Box::new(right)),
        )
        .parse_next(input)
}

fn conjunction<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Ast<'s>> {
    let first = primary.parse_next(input)?;
    repeat(0.., preceded(keyword(Keyword::And), cut_err(primary)))
        .fold(
            move || first.clone(),
            |left, right| Ast::And(Box::new(left), Box::new(right)),
        )
        .parse_next(input)
}

fn primary<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Ast<'s>> {
    alt((
        preceded(
            kind(Kind::LParen),
            cut_err((expr, kind(Kind::RParen).context(expected("`)`")))).map(|(e, _)| e),
        ),
        (name, cut_err(predicate)).map(|(n, p)| Ast::Predicate(n, p)),
    ))
    .context(expected("a condition"))
    .parse_next(input)
}

fn name<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Name<'s>> {
    any.verify_map(|t: &'s Token<'s>| match &t.kind {
        Kind::Name(name) => Some(Name {
            name: name.clone(),
            token: t,
        }),
        _ => None,
    })
    .context(expected("an attribute name"))
    .parse_next(input)
}

fn predicate<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Predicate<'s>> {
    let op = any.verify_map(|t: &'s Token<'s>| match t.kind {
        Kind::Op(op) => Some((op, t)),
        _ => None,
    });
    alt((
        (op, cut_err(literal)).map(|((op, t), value)| Predicate::Compare(op, t, value)),
        preceded(
            keyword(Keyword::In),
            cut_err(delimited(
                kind(Kind::LParen).context(expected("`(`")),
                separated(1.., literal, kind(Kind::Comma)),
                kind(Kind::RParen).context(expected("`,` or `)`")),
            )),
        )
        .map(Predicate::In),
        preceded(
            keyword(Keyword::Between),
            cut_err((
                literal,
                keyword(Keyword::And).context(expected("AND")),
                literal,
            )),
        )
        .map(|(low, _, high)| Predicate::Between(low, high)),
        preceded(keyword(Keyword::StartsWith), cut_err(literal)).map(Predicate::StartsWith),
        preceded(
            keyword(Keyword::Is),
            cut_err((
                opt(keyword(Keyword::Not)),
                keyword(Keyword::Null).context(expected("NULL")),
            )),
        )
        .map(|(not, _)| Predicate::IsNull {
            negated: not.is_some(),
        }),
    ))
    .context(expected(
        "an operator (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS)",
    ))
    .parse_next(input)
}

fn literal<'s>(input: &mut Tokens<'s, 's>) -> ModalResult<Literal<'s>> {
    any.verify_map(|t: &'s Token<'s>| {
        let value = match &t.kind {
            Kind::Text(s) => LiteralValue::Text(s.clone()),
            Kind::Number => LiteralValue::Number(t.raw.to_owned()),
            Kind::Keyword(Keyword::True) => LiteralValue::Bool(true),
            Kind::Keyword(Keyword::False) => LiteralValue::Bool(false),
            _ => return None,
        };
        Some(Literal { value, token: t })
    })
    .context(expected("a value"))
    .parse_next(input)
}
