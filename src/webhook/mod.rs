//! Inbound webhooks: what Baton needs to turn a provider's signed HTTP
//! delivery into a workflow command, as pure functions.
//!
//! - [`verify`]: the signature schemes (Stripe, GitHub, Standard Webhooks
//!   v1/v1a, Slack, Shopify, generic HMAC), over the raw body bytes, with
//!   tolerance and secret rotation;
//! - [`delivery_id`]: the provider's id for a delivery, from which the
//!   action's request id derives so that a redelivery is deduplicated by
//!   `apply` rather than signalling or starting twice;
//! - [`event_type`]: the per-scheme event type that routing rules match on;
//! - [`route`]: the routing rules and the payload templates of a
//!   [`Source`].
//!
//! # Invariants
//!
//! Pure: no IO, no clock, no randomness (`tests/tidy.rs`); callers pass the
//! headers (looked up by lower-case name), the body and `now`. A delivery
//! id and an event type are read only from a delivery that has already
//! verified; the functions never fail, they fall back to a body hash or
//! `None`.

pub mod route;
pub mod verify;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use route::{first_match, Action, Condition, Rule, TemplateError};
pub use verify::{
    verify, Algorithm, Encoding, HmacScheme, Scheme, Signed, VerifyError, DEFAULT_TOLERANCE_SECS,
};

/// A webhook source as configured: how its deliveries are signed, the
/// secrets that may have signed them (several while one is rotated), how
/// far a signed timestamp may be from now, and its routing rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub scheme: Scheme,
    pub secrets: Vec<String>,
    pub tolerance_secs: i64,
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The provider's identity for a delivery, stable across its redeliveries,
/// prefixed with the scheme so two schemes never collide:
///
/// - Stripe: the event's `id` in the body (`evt_…`);
/// - GitHub: `X-GitHub-Delivery` (kept by GitHub's "redeliver");
/// - Standard Webhooks: `webhook-id`;
/// - Slack: the Events API `event_id` in the body;
/// - Shopify: `X-Shopify-Event-Id`, else `X-Shopify-Webhook-Id`;
/// - generic HMAC, or when the above is missing: `sha256:<hex of the body>`,
///   since a retry resends the same bytes.
pub fn delivery_id<'a>(
    scheme: &Scheme,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> String {
    let json = || serde_json::from_slice::<Value>(body).ok();
    let found = match scheme {
        Scheme::Stripe => json().and_then(|v| string_at(&v, "/id")),
        Scheme::GitHub => header("x-github-delivery").map(str::to_owned),
        Scheme::StandardWebhooks => header("webhook-id").map(str::to_owned),
        Scheme::Slack => json().and_then(|v| string_at(&v, "/event_id")),
        Scheme::Shopify => header("x-shopify-event-id")
            .or_else(|| header("x-shopify-webhook-id"))
            .map(str::to_owned),
        Scheme::Hmac(_) => None,
    };
    match found.filter(|id| !id.is_empty()) {
        Some(id) => format!("{}:{id}", scheme_name(scheme)),
        None => format!("sha256:{}", hex(&Sha256::digest(body))),
    }
}

/// The event type routing rules can match with their `event` shortcut:
/// Stripe and Standard Webhooks `/type` in the body; GitHub's
/// `X-GitHub-Event` header; Slack's `/event/type` (Events API), else
/// `/type`; Shopify's `X-Shopify-Topic`; none for a generic HMAC.
pub fn event_type<'a>(
    scheme: &Scheme,
    header: impl Fn(&str) -> Option<&'a str>,
    body: Option<&Value>,
) -> Option<String> {
    match scheme {
        Scheme::Stripe | Scheme::StandardWebhooks => body.and_then(|v| string_at(v, "/type")),
        Scheme::GitHub => header("x-github-event").map(str::to_owned),
        Scheme::Slack => {
            body.and_then(|v| string_at(v, "/event/type").or_else(|| string_at(v, "/type")))
        }
        Scheme::Shopify => header("x-shopify-topic").map(str::to_owned),
        Scheme::Hmac(_) => None,
    }
}

/// The scheme's name as written in a source's JSON (`"type"`).
fn scheme_name(scheme: &Scheme) -> &'static str {
    match scheme {
        Scheme::Stripe => "stripe",
        Scheme::GitHub => "github",
        Scheme::StandardWebhooks => "standard_webhooks",
        Scheme::Slack => "slack",
        Scheme::Shopify => "shopify",
        Scheme::Hmac(_) => "hmac",
    }
}

fn string_at(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer)?.as_str().map(str::to_owned)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn delivery_ids_come_from_the_provider() {
        let stripe = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        assert_eq!(delivery_id(&Scheme::Stripe, none, stripe), "stripe:evt_1");
        let gh = |name: &str| {
            (name == "x-github-delivery").then_some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        };
        assert_eq!(
            delivery_id(&Scheme::GitHub, gh, b"{}"),
            "github:72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
        let sw = |name: &str| (name == "webhook-id").then_some("msg_1");
        assert_eq!(
            delivery_id(&Scheme::StandardWebhooks, sw, b"{}"),
            "standard_webhooks:msg_1"
        );
        let slack = br#"{"event_id":"Ev1","event":{"type":"app_mention"}}"#;
        assert_eq!(delivery_id(&Scheme::Slack, none, slack), "slack:Ev1");
        let shop = |name: &str| (name == "x-shopify-webhook-id").then_some("b54557e4");
        assert_eq!(
            delivery_id(&Scheme::Shopify, shop, b"{}"),
            "shopify:b54557e4"
        );
    }

    #[test]
    fn missing_ids_fall_back_to_the_body_hash() {
        // sha256("") is the well-known e3b0c442…
        assert_eq!(
            delivery_id(&Scheme::Stripe, none, b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let generic = Scheme::Hmac(HmacScheme {
            header: "x".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: String::new(),
            signed: Signed::Body,
        });
        assert_eq!(
            delivery_id(&generic, none, b"a"),
            delivery_id(&generic, none, b"a")
        );
        assert_ne!(
            delivery_id(&generic, none, b"a"),
            delivery_id(&generic, none, b"b")
        );
    }

    #[test]
    fn event_types_per_scheme() {
        let body = json!({"type": "payment_intent.succeeded"});
        assert_eq!(
            event_type(&Scheme::Stripe, none, Some(&body)).as_deref(),
            Some("payment_intent.succeeded")
        );
        let gh = |name: &str| (name == "x-github-event").then_some("pull_request");
        assert_eq!(
            event_type(&Scheme::GitHub, gh, None).as_deref(),
            Some("pull_request")
        );
        let slack = json!({"type": "event_callback", "event": {"type": "app_mention"}});
        assert_eq!(
            event_type(&Scheme::Slack, none, Some(&slack)).as_deref(),
            Some("app_mention")
        );
        assert_eq!(event_type(&Scheme::Shopify, none, None), None);
    }
}
