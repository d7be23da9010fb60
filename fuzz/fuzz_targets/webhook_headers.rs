//! libFuzzer target over the inbound-webhook header parsers: owns the
//! "never panics" and "a correct signature verifies" checks of
//! `baton::webhook::verify`, `baton::webhook::delivery_id` and
//! `baton::webhook::verify::unusable_secret` (run by `scripts/fuzz.sh`).
//!
//! Each input picks one of the six schemes (a generic HMAC with arbitrary
//! header, prefix, algorithm, encoding and signed template), up to three
//! secrets (arbitrary text, or well-formed `whsec_<base64>` and
//! `whpk_<base64>` keys so that the Standard Webhooks parsing goes past the
//! key formats), lower-case header pairs whose names are mostly the real
//! ones, a body, a tolerance and a clock. Half the time the target also
//! signs the delivery itself with the first secret (its own HMAC and
//! Ed25519 code, not baton's) and puts the signed headers first, so the
//! accepting paths are reached too.
//!
//! Checked, besides the absence of panics:
//!
//! - a delivery signed here verifies exactly when its timestamp (if the
//!   scheme has one) is within the tolerance, else it is `Stale`;
//! - when `verify` accepts and the scheme signs the body (every scheme but
//!   a generic template without `{body}`), the same call with one body
//!   byte changed (or one appended to an empty body) is refused;
//! - `unusable_secret` is `None` for every scheme but Standard Webhooks,
//!   and when it is `None`, `verify` never answers `BadSecret`;
//! - `delivery_id` is `<scheme>:<non-empty id>` or `sha256:<64 hex>`.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use baton::webhook::verify::unusable_secret;
use baton::webhook::{
    delivery_id, verify, Algorithm, Encoding, HmacScheme, Scheme, Signed, VerifyError,
};
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;

/// The header names the verifiers and `delivery_id` read, plus the two a
/// generic scheme is most often configured with.
const KNOWN_HEADERS: &[&str] = &[
    "stripe-signature",
    "x-hub-signature-256",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-shopify-hmac-sha256",
    "x-github-delivery",
    "x-shopify-event-id",
    "x-shopify-webhook-id",
    "x-signature",
    "x-timestamp",
];

/// Templates a generic scheme is configured with in practice.
const KNOWN_TEMPLATES: &[&str] = &[
    "{timestamp}.{body}",
    "v0:{timestamp}:{body}",
    "{body}",
    "{timestamp}",
    "{body}{timestamp}{body}",
];

/// A header name: seven times in eight one of [`KNOWN_HEADERS`], else
/// arbitrary text (lower-cased, as the lookup expects).
#[derive(Debug)]
struct Name(String);

impl<'a> Arbitrary<'a> for Name {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick: u8 = u.arbitrary()?;
        if pick < 224 {
            Ok(Name(
                KNOWN_HEADERS[usize::from(pick) % KNOWN_HEADERS.len()].to_owned(),
            ))
        } else {
            Ok(Name(u.arbitrary::<String>()?.to_ascii_lowercase()))
        }
    }
}

/// A generic template: mostly one of [`KNOWN_TEMPLATES`], else arbitrary.
#[derive(Debug)]
struct Template(String);

impl<'a> Arbitrary<'a> for Template {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let pick: u8 = u.arbitrary()?;
        if pick < 192 {
            Ok(Template(
                KNOWN_TEMPLATES[usize::from(pick) % KNOWN_TEMPLATES.len()].to_owned(),
            ))
        } else {
            Ok(Template(u.arbitrary()?))
        }
    }
}

#[derive(Debug, Arbitrary)]
enum SchemeInput {
    Stripe,
    GitHub,
    StandardWebhooks,
    Slack,
    Shopify,
    Hmac {
        header: Name,
        /// Configure the header name upper-cased (it is compared lower-cased).
        upper: bool,
        prefix: String,
        algorithm: AlgorithmInput,
        encoding: EncodingInput,
        signed: SignedInput,
    },
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum AlgorithmInput {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum EncodingInput {
    Hex,
    Base64,
}

#[derive(Debug, Arbitrary)]
enum SignedInput {
    Body,
    Template {
        timestamp_header: Name,
        template: Template,
    },
}

#[derive(Debug, Arbitrary)]
enum SecretInput {
    Text(String),
    /// `whsec_` and the base64 of these bytes, padded or not.
    Whsec {
        key: Vec<u8>,
        padded: bool,
    },
    /// `whpk_` and the base64 of the public key of this Ed25519 seed.
    Whpk([u8; 32]),
    /// `whpk_` and the base64 of arbitrary bytes (mostly not a key).
    WhpkRaw(Vec<u8>),
}

impl SecretInput {
    fn render(&self) -> String {
        match self {
            SecretInput::Text(text) => text.clone(),
            SecretInput::Whsec { key, padded: true } => format!("whsec_{}", STANDARD.encode(key)),
            SecretInput::Whsec { key, padded: false } => {
                format!("whsec_{}", STANDARD_NO_PAD.encode(key))
            }
            SecretInput::Whpk(seed) => {
                let public = SigningKey::from_bytes(seed).verifying_key();
                format!("whpk_{}", STANDARD.encode(public.as_bytes()))
            }
            SecretInput::WhpkRaw(bytes) => format!("whpk_{}", STANDARD.encode(bytes)),
        }
    }
}

/// Asks the target to sign the delivery with the first secret.
#[derive(Debug, Arbitrary)]
struct Sign {
    /// The signed timestamp minus `now`.
    skew: i16,
    /// The Standard Webhooks message id.
    id: String,
}

#[derive(Debug, Arbitrary)]
struct Input {
    scheme: SchemeInput,
    secrets: Vec<SecretInput>,
    headers: Vec<(Name, String)>,
    body: Vec<u8>,
    tolerance_secs: i64,
    now_secs: i64,
    sign: Option<Sign>,
    /// Which body byte the tamper check changes, and how.
    flip_at: u16,
    flip_mask: u8,
}

fn scheme_of(input: &SchemeInput) -> Scheme {
    match input {
        SchemeInput::Stripe => Scheme::Stripe,
        SchemeInput::GitHub => Scheme::GitHub,
        SchemeInput::StandardWebhooks => Scheme::StandardWebhooks,
        SchemeInput::Slack => Scheme::Slack,
        SchemeInput::Shopify => Scheme::Shopify,
        SchemeInput::Hmac {
            header,
            upper,
            prefix,
            algorithm,
            encoding,
            signed,
        } => Scheme::Hmac(HmacScheme {
            header: if *upper {
                header.0.to_ascii_uppercase()
            } else {
                header.0.clone()
            },
            algorithm: match algorithm {
                AlgorithmInput::Sha1 => Algorithm::Sha1,
                AlgorithmInput::Sha256 => Algorithm::Sha256,
                AlgorithmInput::Sha512 => Algorithm::Sha512,
            },
            encoding: match encoding {
                EncodingInput::Hex => Encoding::Hex,
                EncodingInput::Base64 => Encoding::Base64,
            },
            prefix: prefix.clone(),
            signed: match signed {
                SignedInput::Body => Signed::Body,
                SignedInput::Template {
                    timestamp_header,
                    template,
                } => Signed::Template {
                    timestamp_header: timestamp_header.0.clone(),
                    template: template.0.clone(),
                },
            },
        }),
    }
}

/// The name `delivery_id` prefixes a provider id with.
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

/// Whether changing the body must change what is signed.
fn signs_body(scheme: &Scheme) -> bool {
    match scheme {
        Scheme::Hmac(HmacScheme {
            signed: Signed::Template { template, .. },
            ..
        }) => template.contains("{body}"),
        _ => true,
    }
}

fn mac_of<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    mac_of::<Hmac<sha2::Sha256>>(key, message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// What the target signed: the headers to put first, and whether the
/// scheme checks a timestamp (so the outcome depends on the tolerance).
struct Signature {
    headers: Vec<(String, String)>,
    timestamped: bool,
}

/// Signs the delivery with `secret` the way each provider documents it,
/// or `None` when this input cannot be signed (a timestamp that is not
/// whole unix seconds, a Standard Webhooks secret that is not a key, a
/// generic scheme whose signature and timestamp headers are the same).
fn sign(
    scheme: &Scheme,
    secret: &SecretInput,
    sign: &Sign,
    body: &[u8],
    now: i64,
) -> Option<Signature> {
    let ts = now
        .checked_add(i64::from(sign.skew))
        .filter(|ts| (0..=999_999_999_999_999_999).contains(ts))?
        .to_string();
    let key = secret.render();
    let key = key.as_bytes();
    let pair = |name: &str, value: String| (name.to_owned(), value);
    let signature = match scheme {
        Scheme::Stripe => {
            let tag = hmac_sha256(key, &concat(&[ts.as_bytes(), b".", body]));
            Signature {
                headers: vec![pair("stripe-signature", format!("t={ts},v1={}", hex(&tag)))],
                timestamped: true,
            }
        }
        Scheme::GitHub => Signature {
            headers: vec![pair(
                "x-hub-signature-256",
                format!("sha256={}", hex(&hmac_sha256(key, body))),
            )],
            timestamped: false,
        },
        Scheme::StandardWebhooks => {
            let content = concat(&[sign.id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            let entry = match secret {
                SecretInput::Whsec { key, .. } => {
                    format!("v1,{}", STANDARD.encode(hmac_sha256(key, &content)))
                }
                SecretInput::Whpk(seed) => {
                    let signature = SigningKey::from_bytes(seed).sign(&content);
                    format!("v1a,{}", STANDARD.encode(signature.to_bytes()))
                }
                SecretInput::Text(_) | SecretInput::WhpkRaw(_) => return None,
            };
            Signature {
                headers: vec![
                    pair("webhook-id", sign.id.clone()),
                    pair("webhook-timestamp", ts.clone()),
                    pair("webhook-signature", entry),
                ],
                timestamped: true,
            }
        }
        Scheme::Slack => {
            let tag = hmac_sha256(key, &concat(&[b"v0:", ts.as_bytes(), b":", body]));
            Signature {
                headers: vec![
                    pair("x-slack-request-timestamp", ts.clone()),
                    pair("x-slack-signature", format!("v0={}", hex(&tag))),
                ],
                timestamped: true,
            }
        }
        Scheme::Shopify => Signature {
            headers: vec![pair(
                "x-shopify-hmac-sha256",
                STANDARD.encode(hmac_sha256(key, body)),
            )],
            timestamped: false,
        },
        Scheme::Hmac(generic) => {
            let name = generic.header.to_ascii_lowercase();
            let (message, timestamp_header) = match &generic.signed {
                Signed::Body => (body.to_vec(), None),
                Signed::Template {
                    timestamp_header,
                    template,
                } => {
                    let ts_name = timestamp_header.to_ascii_lowercase();
                    if ts_name == name {
                        return None;
                    }
                    // The timestamp is digits, so substituting it first
                    // can neither make nor break a `{body}`.
                    let with_ts = template.replace("{timestamp}", &ts);
                    let mut message = Vec::new();
                    for (i, literal) in with_ts.split("{body}").enumerate() {
                        if i > 0 {
                            message.extend_from_slice(body);
                        }
                        message.extend_from_slice(literal.as_bytes());
                    }
                    (message, Some(ts_name))
                }
            };
            let tag = match generic.algorithm {
                Algorithm::Sha1 => mac_of::<Hmac<sha1::Sha1>>(key, &message),
                Algorithm::Sha256 => mac_of::<Hmac<sha2::Sha256>>(key, &message),
                Algorithm::Sha512 => mac_of::<Hmac<sha2::Sha512>>(key, &message),
            };
            let encoded = match generic.encoding {
                Encoding::Hex => hex(&tag),
                Encoding::Base64 => STANDARD.encode(&tag),
            };
            let mut headers = vec![pair(&name, format!("{}{encoded}", generic.prefix))];
            if let Some(ts_name) = &timestamp_header {
                headers.push(pair(ts_name, ts.clone()));
            }
            Signature {
                headers,
                timestamped: timestamp_header.is_some(),
            }
        }
    };
    Some(signature)
}

fn run(input: Input) {
    let scheme = scheme_of(&input.scheme);
    let secret_inputs = &input.secrets[..input.secrets.len().min(3)];
    let secrets: Vec<String> = secret_inputs.iter().map(SecretInput::render).collect();
    let now = input.now_secs;
    let tolerance = input.tolerance_secs;
    let body = &input.body;

    let signature = match (&input.sign, secret_inputs.first()) {
        (Some(how), Some(first)) => sign(&scheme, first, how, body, now),
        _ => None,
    };
    // The lookup answers the first pair of a name: the signed headers
    // shadow the arbitrary ones.
    let mut pairs: Vec<(String, String)> = signature
        .as_ref()
        .map(|s| s.headers.clone())
        .unwrap_or_default();
    pairs.extend(
        input
            .headers
            .iter()
            .take(16)
            .map(|(name, value)| (name.0.clone(), value.clone())),
    );
    let lookup = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let unusable = unusable_secret(&scheme, &secrets);
    if scheme != Scheme::StandardWebhooks {
        assert_eq!(unusable, None, "only Standard Webhooks keys have a format");
    }

    let result = verify(&scheme, &secrets, tolerance, lookup, body, now);
    if unusable.is_none() {
        assert!(
            !matches!(result, Err(VerifyError::BadSecret(_))),
            "unusable_secret passed secrets that verify refused: {result:?}"
        );
    }

    if let (Some(signature), Some(how), None) = (&signature, &input.sign, &unusable) {
        let within = !signature.timestamped
            || i64::from(how.skew).unsigned_abs() <= u64::try_from(tolerance).unwrap_or(0);
        if within {
            assert_eq!(result, Ok(()), "a delivery signed here was refused");
        } else {
            assert!(
                matches!(result, Err(VerifyError::Stale { .. })),
                "a signature outside the tolerance was not stale: {result:?}"
            );
        }
    }

    if result.is_ok() && signs_body(&scheme) {
        let mut tampered = body.clone();
        if tampered.is_empty() {
            tampered.push(input.flip_mask);
        } else {
            let at = usize::from(input.flip_at) % tampered.len();
            tampered[at] ^= input.flip_mask.max(1);
        }
        let again = verify(&scheme, &secrets, tolerance, lookup, &tampered, now);
        assert!(again.is_err(), "a changed body still verified");
    }

    let id = delivery_id(&scheme, lookup, body);
    let provider = id
        .strip_prefix(scheme_name(&scheme))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| !rest.is_empty());
    let hashed = id.strip_prefix("sha256:").is_some_and(|hash| {
        hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    assert!(provider || hashed, "unexpected delivery id {id:?}");
}

fuzz_target!(|input: Input| run(input));
