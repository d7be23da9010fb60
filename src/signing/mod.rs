//! Signing and verifying pushes with the [Standard Webhooks] scheme.
//!
//! # Contract
//!
//! Every push carries three headers:
//!
//! - `webhook-id`: a unique message id (Baton uses `msg_<uuid>`);
//! - `webhook-timestamp`: the send time in whole unix seconds;
//! - `webhook-signature`: one or more space-separated `v1,<sig>` entries,
//!   where `<sig>` is the standard (padded) base64 of
//!   `HMAC-SHA256(key, "{id}.{timestamp}.{body}")`.
//!
//! A secret is written `whsec_<base64 key>`; the HMAC key is the decoded
//! bytes, not the text. As in the reference libraries the `whsec_` prefix is
//! optional when parsing. An endpoint may hold several secrets at once so a
//! secret can be rotated without downtime: the sender signs with each of
//! them and the receiver accepts the message if **any** signature matches
//! **any** of its secrets. Signatures are compared in constant time
//! (`subtle`), entries with a version other than `v1` are ignored, and the
//! timestamp must lie within [`TOLERANCE_SECS`] (five minutes) of the
//! receiver's clock in either direction, which bounds replay.
//!
//! Because the scheme is the public one, any Standard Webhooks library
//! verifies Baton's pushes; the module tests pin the official test vector
//! plus Baton's own vectors, which docs/protocol.md repeats for the SDKs.
//!
//! # Invariants
//!
//! Pure: no IO, no clock reads, no randomness. Callers pass `now` in and
//! supply the random bytes for [`generate_secret`]. A [`Secret`] never
//! prints its key (its `Debug` is redacted) and errors never echo one.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the message id.
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the send time in unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a message's timestamp may be from the receiver's clock, either
/// way (the Standard Webhooks default).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The prefix of a formatted secret.
const SECRET_PREFIX: &str = "whsec_";
/// The signature scheme this module produces and accepts.
const VERSION: &str = "v1";
/// Length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// Decodes secrets whether or not their base64 carries `=` padding; some
/// tools strip it. Signatures are still produced with padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An HMAC key parsed from `whsec_<base64>` (or from bare base64).
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

/// Why a secret string was refused. The message names the problem but
/// never repeats the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSecretError(SecretErrorKind);

/// The three headers of a received message, as the receiver found them.
/// `None` means the header was absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Headers<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a message was refused. Opaque on purpose: every refusal means the
/// same thing to a caller (answer 401), while the message says which check
/// failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError(Kind);

#[derive(Clone, Debug, PartialEq, Eq)]
enum SecretErrorKind {
    /// Looks like `<word>_...` with a prefix other than `whsec_`.
    UnknownPrefix(String),
    Base64,
    Empty,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    MissingHeader(&'static str),
    BadTimestamp,
    TooOld { timestamp: i64, now: i64 },
    TooNew { timestamp: i64, now: i64 },
    NoSecrets,
    NoSignature,
    NoMatch,
}

/// Returns the `webhook-signature` header value for a message: one
/// `v1,<base64>` entry per secret, in the given order, separated by single
/// spaces. With no secrets the value is empty, which no receiver accepts;
/// callers should not send unsigned pushes.
pub fn sign(secrets: &[Secret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let entries: Vec<String> = secrets
        .iter()
        .map(|secret| {
            let tag = secret.tag(msg_id, timestamp_secs, body);
            format!("{VERSION},{}", STANDARD.encode(tag))
        })
        .collect();
    entries.join(" ")
}

/// Checks a received message against the receiver's secrets at `now_secs`
/// (unix seconds). Accepts when the timestamp is within [`TOLERANCE_SECS`]
/// and some `v1` signature matches some secret.
pub fn verify(
    secrets: &[Secret],
    headers: Headers<'_>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let msg_id = headers
        .id
        .ok_or(VerifyError(Kind::MissingHeader(ID_HEADER)))?;
    let timestamp = headers
        .timestamp
        .ok_or(VerifyError(Kind::MissingHeader(TIMESTAMP_HEADER)))?;
    let signature = headers
        .signature
        .ok_or(VerifyError(Kind::MissingHeader(SIGNATURE_HEADER)))?;

    let timestamp = parse_timestamp(timestamp)?;
    if now_secs.saturating_sub(timestamp) > TOLERANCE_SECS {
        return Err(VerifyError(Kind::TooOld {
            timestamp,
            now: now_secs,
        }));
    }
    if timestamp.saturating_sub(now_secs) > TOLERANCE_SECS {
        return Err(VerifyError(Kind::TooNew {
            timestamp,
            now: now_secs,
        }));
    }
    if secrets.is_empty() {
        return Err(VerifyError(Kind::NoSecrets));
    }

    let candidates = v1_candidates(signature);
    if candidates.is_empty() {
        return Err(VerifyError(Kind::NoSignature));
    }

    for secret in secrets {
        let expected = secret.tag(msg_id, timestamp, body);
        // Stopping at the first match leaks only that some signature
        // matched, which the response reveals anyway.
        if candidates
            .iter()
            .any(|candidate| bool::from(candidate.ct_eq(&expected)))
        {
            return Ok(());
        }
    }
    Err(VerifyError(Kind::NoMatch))
}

/// Decodes the well-formed `v1,<base64>` entries of a `webhook-signature`
/// value; anything else (an unknown version such as `v1a`, bad base64, a
/// wrong length) is skipped, as the specification asks. Inbound webhook
/// verification (`crate::webhook`) reuses it.
pub(crate) fn v1_candidates(signature: &str) -> Vec<[u8; TAG_LEN]> {
    signature
        .split(' ')
        .filter_map(|entry| {
            let (version, sig) = entry.split_once(',')?;
            if version != VERSION {
                return None;
            }
            let mut tag = [0u8; TAG_LEN];
            match STANDARD.decode_slice(sig, &mut tag) {
                Ok(TAG_LEN) => Some(tag),
                _ => None,
            }
        })
        .collect()
}

/// Formats a new secret, `whsec_<base64 of random>`, from 32 bytes the
/// caller drew from a cryptographically secure generator. The module stays
/// pure; the caller owns the randomness.
pub fn generate_secret(random: [u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(random))
}

impl<'a> Headers<'a> {
    /// Collects the three headers through a lookup by lower-case name, for
    /// example `Headers::from_lookup(|name| map.get(name)?.to_str().ok())`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'a str>) -> Headers<'a> {
        Headers {
            id: lookup(ID_HEADER),
            timestamp: lookup(TIMESTAMP_HEADER),
            signature: lookup(SIGNATURE_HEADER),
        }
    }
}

impl Secret {
    /// Wraps raw key bytes, for callers that store keys undecorated.
    pub fn from_bytes(key: Vec<u8>) -> Result<Secret, ParseSecretError> {
        if key.is_empty() {
            return Err(ParseSecretError(SecretErrorKind::Empty));
        }
        Ok(Secret { key })
    }

    /// The HMAC-SHA256 of `"{id}.{timestamp}.{body}"` under this key.
    pub(crate) fn tag(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl FromStr for Secret {
    type Err = ParseSecretError;

    fn from_str(s: &str) -> Result<Secret, ParseSecretError> {
        let encoded = match s.strip_prefix(SECRET_PREFIX) {
            Some(rest) => rest,
            None => {
                // Standard base64 has no `_`, so `word_...` is a prefix we do
                // not know (a `whpk_` public key, say); name it rather than
                // reporting bad base64.
                if let Some((prefix, _)) = s.split_once('_') {
                    if !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Err(ParseSecretError(SecretErrorKind::UnknownPrefix(format!(
                            "{prefix}_"
                        ))));
                    }
                }
                s
            }
        };
        let key = LENIENT
            .decode(encoded)
            .map_err(|_| ParseSecretError(SecretErrorKind::Base64))?;
        Secret::from_bytes(key)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for ParseSecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            SecretErrorKind::UnknownPrefix(prefix) => write!(
                f,
                "signing secret has unknown prefix `{prefix}` (expected `{SECRET_PREFIX}<base64>`)"
            ),
            SecretErrorKind::Base64 => write!(
                f,
                "signing secret is not valid base64 (expected `{SECRET_PREFIX}<base64>`)"
            ),
            SecretErrorKind::Empty => f.write_str("signing secret has an empty key"),
        }
    }
}

impl std::error::Error for ParseSecretError {}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::MissingHeader(name) => write!(f, "missing `{name}` header"),
            Kind::BadTimestamp => write!(
                f,
                "`{TIMESTAMP_HEADER}` header is not a whole number of unix seconds"
            ),
            Kind::TooOld { timestamp, now } => write!(
                f,
                "message timestamp {timestamp} is {}s older than now ({now}); tolerance is {TOLERANCE_SECS}s",
                now - timestamp
            ),
            Kind::TooNew { timestamp, now } => write!(
                f,
                "message timestamp {timestamp} is {}s ahead of now ({now}); tolerance is {TOLERANCE_SECS}s",
                timestamp - now
            ),
            Kind::NoSecrets => f.write_str("no signing secrets configured; refusing every message"),
            Kind::NoSignature => write!(
                f,
                "`{SIGNATURE_HEADER}` header holds no well-formed `{VERSION},<base64>` signature"
            ),
            Kind::NoMatch => f.write_str("no signature matches any configured secret"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Parses the timestamp header: ASCII digits only (no sign, no spaces), so
/// the value signed is unambiguous.
fn parse_timestamp(s: &str) -> Result<i64, VerifyError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError(Kind::BadTimestamp));
    }
    s.parse().map_err(|_| VerifyError(Kind::BadTimestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official Standard Webhooks test vector (the reference
    /// libraries' tests use it).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    /// Baton's own vectors, repeated in docs/protocol.md. The secrets are
    /// `generate_secret` of the bytes 0..32 and of 32 × 0xff; frozen, never
    /// regenerate them.
    const BATON_SECRET_A: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const BATON_SECRET_B: &str = "whsec_//////////////////////////////////////////8=";
    const BATON_ID: &str = "msg_0192f0c4a1b27c3d8e4f5a6b7c8d9e0f";
    const BATON_TS: i64 = 1735689600;
    const BATON_BODY: &[u8] =
        br#"{"type":"activity_task","namespace":"default","activity_id":"1","attempt":1}"#;

    fn secret(s: &str) -> Secret {
        s.parse().expect("test secrets are well formed")
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Headers<'a> {
        Headers {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    fn kind(res: Result<(), VerifyError>) -> Kind {
        res.expect_err("verification should fail").0
    }

    #[test]
    fn official_vector_signs_and_verifies() {
        let secrets = [secret(SPEC_SECRET)];
        assert_eq!(sign(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        let ts = SPEC_TS.to_string();
        assert_eq!(
            verify(
                &secrets,
                headers(SPEC_ID, &ts, SPEC_SIG),
                SPEC_BODY,
                SPEC_TS
            ),
            Ok(())
        );
    }

    #[test]
    fn secret_prefix_is_optional() {
        let bare = secret(SPEC_SECRET.trim_start_matches(SECRET_PREFIX));
        assert_eq!(sign(&[bare], SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    }

    #[test]
    fn baton_vectors_are_frozen() {
        let a = secret(BATON_SECRET_A);
        let b = secret(BATON_SECRET_B);
        // Vector 1: one secret, an activity task body.
        assert_eq!(
            sign(std::slice::from_ref(&a), BATON_ID, BATON_TS, BATON_BODY),
            "v1,adGWpeHLmdIjZ9HL547kGBBLsN4s/kNIlqVvJfWshXw="
        );
        // Vector 2: a body with multi-byte UTF-8; the MAC covers the bytes
        // exactly as sent.
        let body = r#"{"type":"workflow_task","input":"héllo ✓"}"#.as_bytes();
        assert_eq!(
            sign(
                std::slice::from_ref(&b),
                "msg_00000000000000000000000000000001",
                1700000000,
                body
            ),
            "v1,MxIhql8sUw2ajIRt6AZ7Lmb6OIUWk3ZhZXqf6Sz79+4="
        );
        // Vector 3: rotation; one entry per secret, in order.
        assert_eq!(
            sign(&[a, b], BATON_ID, BATON_TS, BATON_BODY),
            "v1,adGWpeHLmdIjZ9HL547kGBBLsN4s/kNIlqVvJfWshXw= \
             v1,bjVbt+r14pnPn3CLhV9dthPKPbpnafoQKVd9CUQfIpQ="
        );
    }

    #[test]
    fn generated_secrets_round_trip() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(generate_secret(bytes), BATON_SECRET_A);
        assert_eq!(generate_secret([0xff; 32]), BATON_SECRET_B);
        assert_eq!(secret(&generate_secret(bytes)).key, bytes.to_vec());
    }

    #[test]
    fn signed_message_verifies() {
        let secrets = [secret(BATON_SECRET_A)];
        let sig = sign(&secrets, BATON_ID, BATON_TS, BATON_BODY);
        let ts = BATON_TS.to_string();
        assert_eq!(
            verify(&secrets, headers(BATON_ID, &ts, &sig), BATON_BODY, BATON_TS),
            Ok(())
        );
    }

    #[test]
    fn rotation_accepts_either_secret() {
        let old = secret(BATON_SECRET_A);
        let new = secret(BATON_SECRET_B);
        let ts = BATON_TS.to_string();

        // The sender holds both during rotation; a receiver with either one
        // accepts.
        let both = sign(&[old.clone(), new.clone()], BATON_ID, BATON_TS, BATON_BODY);
        for receiver in [std::slice::from_ref(&old), std::slice::from_ref(&new)] {
            let h = headers(BATON_ID, &ts, &both);
            assert_eq!(verify(receiver, h, BATON_BODY, BATON_TS), Ok(()));
        }

        // The receiver holds both; a sender with either one is accepted.
        for sender in [&old, &new] {
            let sig = sign(std::slice::from_ref(sender), BATON_ID, BATON_TS, BATON_BODY);
            let h = headers(BATON_ID, &ts, &sig);
            let receiver = [old.clone(), new.clone()];
            assert_eq!(verify(&receiver, h, BATON_BODY, BATON_TS), Ok(()));
        }
    }

    #[test]
    fn forged_body_is_refused() {
        let secrets = [secret(SPEC_SECRET)];
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert_eq!(
            kind(verify(&secrets, h, br#"{"test": 2432232315}"#, SPEC_TS)),
            Kind::NoMatch
        );
    }

    #[test]
    fn forged_id_or_timestamp_is_refused() {
        let secrets = [secret(SPEC_SECRET)];
        let ts = SPEC_TS.to_string();
        let h = headers("msg_other", &ts, SPEC_SIG);
        assert_eq!(kind(verify(&secrets, h, SPEC_BODY, SPEC_TS)), Kind::NoMatch);
        let ts = (SPEC_TS + 1).to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert_eq!(kind(verify(&secrets, h, SPEC_BODY, SPEC_TS)), Kind::NoMatch);
    }

    #[test]
    fn wrong_secret_is_refused() {
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        let other = [secret(BATON_SECRET_A)];
        assert_eq!(kind(verify(&other, h, SPEC_BODY, SPEC_TS)), Kind::NoMatch);
    }

    #[test]
    fn timestamp_tolerance_is_five_minutes_each_way() {
        let secrets = [secret(SPEC_SECRET)];
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        let edge_late = SPEC_TS + TOLERANCE_SECS;
        let edge_early = SPEC_TS - TOLERANCE_SECS;
        assert_eq!(verify(&secrets, h, SPEC_BODY, edge_late), Ok(()));
        assert_eq!(verify(&secrets, h, SPEC_BODY, edge_early), Ok(()));
        assert_eq!(
            kind(verify(&secrets, h, SPEC_BODY, edge_late + 1)),
            Kind::TooOld {
                timestamp: SPEC_TS,
                now: edge_late + 1
            }
        );
        assert_eq!(
            kind(verify(&secrets, h, SPEC_BODY, edge_early - 1)),
            Kind::TooNew {
                timestamp: SPEC_TS,
                now: edge_early - 1
            }
        );
    }

    #[test]
    fn stale_timestamp_is_refused_before_signatures_are_checked() {
        // A replayed message with a valid signature is still refused.
        let secrets = [secret(SPEC_SECRET)];
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        let err = verify(&secrets, h, SPEC_BODY, SPEC_TS + 3600).expect_err("stale");
        assert_eq!(
            err.to_string(),
            "message timestamp 1614265330 is 3600s older than now (1614268930); tolerance is 300s"
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let secrets = [secret(SPEC_SECRET)];
        let ts = SPEC_TS.to_string();
        let full = headers(SPEC_ID, &ts, SPEC_SIG);
        let cases = [
            (Headers { id: None, ..full }, ID_HEADER),
            (
                Headers {
                    timestamp: None,
                    ..full
                },
                TIMESTAMP_HEADER,
            ),
            (
                Headers {
                    signature: None,
                    ..full
                },
                SIGNATURE_HEADER,
            ),
        ];
        for (h, name) in cases {
            let err = verify(&secrets, h, SPEC_BODY, SPEC_TS).expect_err("missing header");
            assert_eq!(err.0, Kind::MissingHeader(name));
            assert_eq!(err.to_string(), format!("missing `{name}` header"));
        }
        assert_eq!(
            kind(verify(&secrets, Headers::default(), SPEC_BODY, SPEC_TS)),
            Kind::MissingHeader(ID_HEADER)
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        let secrets = [secret(SPEC_SECRET)];
        for ts in [
            "",
            "abc",
            "-1614265330",
            "+1614265330",
            " 1614265330",
            "1614265330.5",
            "99999999999999999999",
        ] {
            let h = headers(SPEC_ID, ts, SPEC_SIG);
            assert_eq!(
                kind(verify(&secrets, h, SPEC_BODY, SPEC_TS)),
                Kind::BadTimestamp,
                "{ts:?}"
            );
        }
    }

    #[test]
    fn unknown_versions_and_garbage_entries_are_skipped() {
        let secrets = [secret(SPEC_SECRET)];
        let ts = SPEC_TS.to_string();
        let mixed = format!("v2,abc v1a,xyz v1,!!! v1,AAAA {SPEC_SIG}");
        let h = headers(SPEC_ID, &ts, &mixed);
        assert_eq!(verify(&secrets, h, SPEC_BODY, SPEC_TS), Ok(()));

        let h = headers(SPEC_ID, &ts, "v2,abc v1,!!! nonsense");
        assert_eq!(
            kind(verify(&secrets, h, SPEC_BODY, SPEC_TS)),
            Kind::NoSignature
        );
        let h = headers(SPEC_ID, &ts, "");
        assert_eq!(
            kind(verify(&secrets, h, SPEC_BODY, SPEC_TS)),
            Kind::NoSignature
        );
    }

    #[test]
    fn no_secrets_refuses_everything() {
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert_eq!(kind(verify(&[], h, SPEC_BODY, SPEC_TS)), Kind::NoSecrets);
        assert_eq!(sign(&[], SPEC_ID, SPEC_TS, SPEC_BODY), "");
    }

    #[test]
    fn headers_from_lookup_uses_lower_case_names() {
        let map = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1"),
            ("webhook-signature", "v1,x"),
        ];
        let h = Headers::from_lookup(|name| map.iter().find(|(k, _)| *k == name).map(|(_, v)| *v));
        assert_eq!(h, headers("msg_1", "1", "v1,x"));
    }

    #[test]
    fn bad_secrets_are_refused_without_echoing_them() {
        let err = |s: &str| s.parse::<Secret>().expect_err("bad secret");
        assert_eq!(err("whsec_").0, SecretErrorKind::Empty);
        assert_eq!(err("").0, SecretErrorKind::Empty);
        assert_eq!(err("whsec_not base64!").0, SecretErrorKind::Base64);
        assert_eq!(
            err("whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").0,
            SecretErrorKind::UnknownPrefix("whpk_".into())
        );
        let msg = err("whsec_s3cr3t!!").to_string();
        assert!(!msg.contains("s3cr3t"), "{msg}");
        assert_eq!(format!("{:?}", secret(SPEC_SECRET)), "Secret(<redacted>)");
    }

    #[test]
    fn secret_padding_is_optional() {
        let padded = secret(BATON_SECRET_A);
        let unpadded = secret(BATON_SECRET_A.trim_end_matches('='));
        assert_eq!(padded.key, unpadded.key);
    }
}
