"""Standard Webhooks signing: the vectors of docs/protocol.md §3.4."""

from __future__ import annotations

import pytest

from baton._signing import WebhookVerificationError, parse_secret, sign, verify

S1 = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
S2 = "whsec_//////////////////////////////////////////8="
BODY1 = b'{"type":"activity_task","namespace":"default","activity_id":"1","attempt":1}'
BODY2 = '{"type":"workflow_task","input":"héllo ✓"}'.encode()

VECTORS = [
    (
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
    (
        [S1],
        "msg_0192f0c4a1b27c3d8e4f5a6b7c8d9e0f",
        1735689600,
        BODY1,
        "v1,adGWpeHLmdIjZ9HL547kGBBLsN4s/kNIlqVvJfWshXw=",
    ),
    (
        [S2],
        "msg_00000000000000000000000000000001",
        1700000000,
        BODY2,
        "v1,MxIhql8sUw2ajIRt6AZ7Lmb6OIUWk3ZhZXqf6Sz79+4=",
    ),
    (
        [S1, S2],
        "msg_0192f0c4a1b27c3d8e4f5a6b7c8d9e0f",
        1735689600,
        BODY1,
        "v1,adGWpeHLmdIjZ9HL547kGBBLsN4s/kNIlqVvJfWshXw= v1,bjVbt+r14pnPn3CLhV9dthPKPbpnafoQKVd9CUQfIpQ=",
    ),
]


def headers(msg_id: str, ts: int, sig: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


@pytest.mark.parametrize(("secrets", "msg_id", "ts", "body", "expected"), VECTORS)
def test_signatures_match_the_vectors(
    secrets: list[str], msg_id: str, ts: int, body: bytes, expected: str
) -> None:
    assert len(BODY2) == 45
    assert sign(secrets, msg_id, ts, body) == expected


@pytest.mark.parametrize(("secrets", "msg_id", "ts", "body", "sig"), VECTORS)
def test_vectors_verify_within_tolerance_and_fail_outside(
    secrets: list[str], msg_id: str, ts: int, body: bytes, sig: str
) -> None:
    h = headers(msg_id, ts, sig)
    for key in secrets:  # rotation: either secret alone accepts
        keys = [parse_secret(key)]
        for now in (ts, ts + 300, ts - 300):
            verify(keys, h, body, now=now)
        with pytest.raises(WebhookVerificationError, match="too old"):
            verify(keys, h, body, now=ts + 301)
        with pytest.raises(WebhookVerificationError, match="too new"):
            verify(keys, h, body, now=ts - 301)
        tampered = bytes([body[0] ^ 1]) + body[1:]
        with pytest.raises(WebhookVerificationError, match="no matching signature"):
            verify(keys, h, tampered, now=ts)


def test_missing_headers_and_foreign_versions_are_refused() -> None:
    keys = [parse_secret(S1)]
    good = headers("msg_0192f0c4a1b27c3d8e4f5a6b7c8d9e0f", 1735689600, VECTORS[1][4])
    for name in good:
        partial = {k: v for k, v in good.items() if k != name}
        with pytest.raises(WebhookVerificationError, match=f"missing {name}"):
            verify(keys, partial, BODY1, now=1735689600)
    wrong_version = dict(
        good, **{"webhook-signature": good["webhook-signature"].replace("v1,", "v1a,")}
    )
    with pytest.raises(WebhookVerificationError, match="no v1 signature"):
        verify(keys, wrong_version, BODY1, now=1735689600)
    bad_ts = dict(good, **{"webhook-timestamp": "17356896OO"})
    with pytest.raises(WebhookVerificationError, match="invalid webhook-timestamp"):
        verify(keys, bad_ts, BODY1, now=1735689600)
    other_key = [parse_secret(S2)]
    with pytest.raises(WebhookVerificationError, match="no matching"):
        verify(other_key, good, BODY1, now=1735689600)


def test_secrets_parse_with_or_without_prefix_and_padding() -> None:
    raw = bytes(range(32))
    assert parse_secret(S1) == raw
    assert parse_secret(S1.removeprefix("whsec_")) == raw
    assert parse_secret(S1.rstrip("=")) == raw
    for bad in ("whsec_", "sk_live_abc", "whsec_not base64!"):
        with pytest.raises(ValueError):
            parse_secret(bad)
