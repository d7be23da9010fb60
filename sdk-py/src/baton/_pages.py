"""History pages (docs/protocol.md §5.10).

A workflow task, query or update validation push whose ``history`` does not
start at event 1 (``history_first_event_id`` > 1: a paged push, or a sticky
one the app holds no instance for) names the older events with an opaque
``history_reference``. :meth:`Pager.whole` fetches them from the push's
``history_url`` (the namespace's page route), signed with the endpoint's
push secret exactly as checkpoints are (§5.9), page after page, following
``next_first_event_id`` until it reaches the push's first event, and gives
back the push with the whole history, ready to replay (the ``payloads`` its
pages inline, docs/protocol.md §9.1, merged into the push's own).
:func:`post_signed` is that signed request, which the payload route
(:mod:`baton._payloads`) takes as well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from baton import _http, _signing
from baton._protocol import EventDict

if TYPE_CHECKING:  # _inline imports this module (through _payloads)
    from baton._inline import PushTiming

log = logging.getLogger("baton.workflow")

_PAGE_TIMEOUT = 10.0
_PAGE_TRIES = 3


class HistoryUnavailable(Exception):
    """The older events could not be had: the page route refused the
    request (an expired reference, an unknown run, a bad signature) or was
    not reached in time."""


class Pager:
    """Pages in what partial pushes lack, for one app (its push secrets and
    its ``checkpoint_base_url``, which replaces the base of ``history_url``
    as it does ``checkpoint_url``'s)."""

    def __init__(self, keys: Sequence[bytes], base_url: str | None) -> None:
        self._keys = keys
        self._base_url = base_url
        #: Pages fetched so far.
        self.pages = 0

    async def whole(
        self, push: dict[str, Any], timing: PushTiming, *, until: float
    ) -> dict[str, Any]:
        """``push`` with its whole history: itself when it has it, else with
        the older events prepended. Raises :class:`HistoryUnavailable`
        (``until`` is the monotonic time to give up at)."""
        first = int(push.get("history_first_event_id") or 1)
        if first <= 1:
            return push
        url = push.get("history_url")
        reference = push.get("history_reference")
        if not isinstance(url, str) or not isinstance(reference, str):
            raise HistoryUnavailable(
                f"the push starts at event {first} without history_url and history_reference"
            )
        if self._base_url:
            url = (
                f"{self._base_url.rstrip('/')}/api/v1/namespaces/{push['namespace']}"
                "/workflow-tasks/history"
            )
        older: list[EventDict] = []
        inlined: dict[str, Any] = {}
        at = 1
        while at < first:
            page = await self._page(
                url, {"history_reference": reference, "first_event_id": at}, timing, until
            )
            events = page.get("events")
            after = page.get("next_first_event_id")
            if (
                not isinstance(events, list)
                or not events
                or not isinstance(after, int)
                or after > first
                or cast("list[EventDict]", events)[0].get("event_id") != at
                or cast("list[EventDict]", events)[-1].get("event_id") != after - 1
            ):
                raise HistoryUnavailable(f"malformed history page from {url} at event {at}")
            older.extend(cast("list[EventDict]", events))
            payloads = page.get("payloads")
            if isinstance(payloads, dict):
                inlined.update(cast("dict[str, Any]", payloads))
            at = after
        whole = {**push, "history": older + list(push["history"])}
        if inlined:
            whole["payloads"] = {**inlined, **(push.get("payloads") or {})}
        return whole

    async def _page(
        self, url: str, body: dict[str, Any], timing: PushTiming, until: float
    ) -> dict[str, Any]:
        page = await post_signed(
            self._keys,
            url,
            body,
            timing,
            until=until,
            what="history page",
            error=HistoryUnavailable,
        )
        self.pages += 1
        return page


async def post_signed(
    keys: Sequence[bytes],
    url: str,
    body: dict[str, Any],
    timing: PushTiming,
    *,
    until: float,
    what: str,
    error: type[HistoryUnavailable],
) -> dict[str, Any]:
    """One request to a route that takes the push secret's signature
    instead of an API key (the page route, the payload route), signed as
    Baton signs pushes (§3) by the server's clock, retried on 503 and
    transport errors until ``until``; its answer, else raises ``error``."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    problem = "no time left"
    for attempt in range(_PAGE_TRIES):
        left = until - time.monotonic()
        if left <= 0:
            break
        headers = {
            "Content-Type": "application/json",
            **_signing.signed_headers(keys, timing.server_clock(), payload),
        }
        try:
            resp = await _http.request(
                "POST", url, body=payload, headers=headers, timeout=min(_PAGE_TIMEOUT, left)
            )
        except (OSError, asyncio.TimeoutError) as err:
            problem = repr(err)
        else:
            if resp.status == 200:
                try:
                    return resp.json_object()
                except ValueError as err:
                    raise error(f"{what} from {url}: {err}") from err
            problem = f"answered {resp.status}: {resp.body[:300]!r}"
            if resp.status != 503:
                break
        log.warning("%s from %s failed: %s", what, url, problem)
        if attempt + 1 < _PAGE_TRIES:
            await asyncio.sleep(0.05 * 2**attempt)
    raise error(f"{what} from {url}: {problem}")
