//! Extractors that turn malformed requests into problems instead of axum's
//! plain-text rejections: `AppJson` for bodies, `AppPath` for path
//! parameters and `AppQuery` for query strings.

use std::fmt;
use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::error::ApiError;

/// A JSON body, which must be a JSON object; also a JSON response.
pub struct AppJson<T>(pub T);

/// A request body type. Every string in a body must be free of U+0000
/// (NUL): PostgreSQL's `text` cannot hold it, so an identifier, name or
/// option with a NUL would fail there and not on SQLite. Payloads, the
/// user's opaque JSON (inputs, results, details, memo), are stored as JSON
/// text in which a NUL stays escaped, so they may hold any JSON string and
/// come back as they were sent, on both backends.
pub trait Body: DeserializeOwned {
    /// JSON pointers (RFC 6901) of the body's payload members: NUL is
    /// accepted anywhere below them.
    const PAYLOADS: &'static [&'static str];
}

impl<S: Send + Sync, T: Body> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::BadRequest(
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge(
                    "request body is too large".into(),
                ))
            }
            Err(e) => return Err(ApiError::BadRequest(e.body_text())),
        };
        parse_body(&bytes)
    }
}

/// A body already read (a signed one, whose bytes were verified first),
/// checked as [`AppJson`] checks what it extracts.
pub(super) fn parse_body<T: Body>(bytes: &[u8]) -> Result<AppJson<T>, ApiError> {
    // Only a body that spells the escape can hold a NUL (JSON has no
    // raw control characters in strings), so most bodies skip the walk.
    if contains(bytes, br"\u0000") {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            refuse_nul_in_json(&value, &mut String::new(), T::PAYLOADS)?;
        }
    }
    match axum::Json::<Object<T>>::from_bytes(bytes) {
        Ok(axum::Json(Object(v))) => Ok(AppJson(v)),
        Err(e) => Err(ApiError::BadRequest(e.body_text())),
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` has it.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.as_bytes()[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const NUL: char = '\u{0}';

fn nul_problem(what: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "{what} contains U+0000 (NUL), which is accepted only inside payloads"
    ))
}

/// Refuses a NUL in any key or string of `value` outside the `payloads`
/// pointers; `at` is the JSON pointer of `value`.
fn refuse_nul_in_json(value: &Value, at: &mut String, payloads: &[&str]) -> Result<(), ApiError> {
    if payloads.contains(&at.as_str()) {
        return Ok(());
    }
    let field = |at: &str| format!("field {}", if at.is_empty() { "/" } else { at });
    match value {
        Value::String(s) if s.contains(NUL) => Err(nul_problem(&field(at))),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                refuse_nul_in_json(item, at, payloads)?;
                at.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = at.len();
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                if key.contains(NUL) {
                    return Err(nul_problem(&format!(
                        "the name of {}",
                        field(&at.replace(NUL, "\\u0000"))
                    )));
                }
                refuse_nul_in_json(item, at, payloads)?;
                at.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// For `#[serde(default, deserialize_with = "null_as_default")]` on an
/// optional body field that is not an `Option`: `null` means absent, as it
/// does for every other optional field (the spec's convention).
pub fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes `T` from a JSON object only. Serde's derived structs also
/// read a JSON array of the field values in order, so `["ops"]` would have
/// created namespace `ops`; every body of this API is an object.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters (a percent-decoded segment that is not UTF-8 is a bad
/// request).
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in &params {
                if value.contains(NUL) {
                    return Err(nul_problem(&format!("path parameter {name}")));
                }
            }
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AppPath(p.0))
            .map_err(|e: PathRejection| {
                if e.status().is_server_error() {
                    ApiError::Internal(e.body_text())
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })
    }
}

/// A query string.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
            for (name, value) in &pairs {
                if name.contains(NUL) {
                    return Err(nul_problem("the name of a query parameter"));
                }
                if value.contains(NUL) {
                    return Err(nul_problem(&format!("query parameter {name}")));
                }
            }
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}
