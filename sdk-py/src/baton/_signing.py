"""Standard Webhooks signing and verification (docs/protocol.md §3).

Every push carries ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (space-separated ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``). A secret is ``whsec_<base64 key>``; the HMAC key is
the decoded bytes. Several secrets may be configured at once (rotation): a
message is accepted when any signature matches any secret. Timestamps more
than five minutes away from the receiver's clock are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence

from baton.exceptions import BatonError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOLERANCE_SECS = 5 * 60
_PREFIX = "whsec_"


class WebhookVerificationError(BatonError):
    """A push failed verification; the handler answers 401 and runs nothing."""


def parse_secret(secret: str) -> bytes:
    """The HMAC key of ``whsec_<base64>`` (prefix and padding optional)."""
    text = secret.strip()
    if text.startswith(_PREFIX):
        text = text[len(_PREFIX) :]
    elif "_" in text:
        raise ValueError("signing secret must look like whsec_<base64>")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("signing secret is not valid base64") from None
    if not key:
        raise ValueError("signing secret is empty")
    return key


def sign(secrets: Sequence[str | bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,`` entry per secret."""
    entries: list[str] = []
    for s in secrets:
        key = s if isinstance(s, bytes) else parse_secret(s)
        tag = _tag(key, msg_id, str(timestamp), body)
        entries.append("v1," + base64.b64encode(tag).decode("ascii"))
    return " ".join(entries)


def signed_headers(keys: Sequence[bytes], timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of a request the app signs as Baton signs pushes (its
    checkpoints and history pages, docs/protocol.md §5.9, §5.10): a fresh
    message id, ``timestamp`` and the signature of ``body``."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(keys, msg_id, timestamp, body),
    }


def _tag(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return hmac.new(key, content, hashlib.sha256).digest()


def verify(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECS,
) -> None:
    """Raises :class:`WebhookVerificationError` unless the message is signed
    by one of ``keys`` within ``tolerance`` seconds of ``now``.

    ``headers`` must be keyed by lower-case names.
    """
    msg_id = headers.get(ID_HEADER)
    ts_text = headers.get(TIMESTAMP_HEADER)
    sig_header = headers.get(SIGNATURE_HEADER)
    for name, value in (
        (ID_HEADER, msg_id),
        (TIMESTAMP_HEADER, ts_text),
        (SIGNATURE_HEADER, sig_header),
    ):
        if not value:
            raise WebhookVerificationError(f"missing {name} header")
    assert msg_id is not None and ts_text is not None and sig_header is not None
    if not ts_text.isascii() or not ts_text.isdigit():
        raise WebhookVerificationError("invalid webhook-timestamp")
    ts = int(ts_text)
    current = int(time.time() if now is None else now)
    if ts < current - tolerance:
        raise WebhookVerificationError("message timestamp too old")
    if ts > current + tolerance:
        raise WebhookVerificationError("message timestamp too new")
    if not keys:
        raise WebhookVerificationError("no signing secret configured")
    candidates: list[bytes] = []
    for entry in sig_header.split(" "):
        version, _, sig = entry.partition(",")
        if version != "v1" or not sig:
            continue
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            candidates.append(raw)
    if not candidates:
        raise WebhookVerificationError("no v1 signature in webhook-signature")
    matched = False
    for key in keys:
        expected = _tag(key, msg_id, ts_text, body)
        for c in candidates:
            # Keep comparing after a match so timing does not depend on position.
            matched |= hmac.compare_digest(expected, c)
    if not matched:
        raise WebhookVerificationError("no matching signature")
