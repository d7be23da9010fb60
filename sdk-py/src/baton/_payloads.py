"""Payloads by reference (docs/protocol.md §9.1).

A server may store a large payload apart from the history and leave a
*reference* in its place, ``{"$baton_payload": {"sha256": …, "size_bytes": …}}``
(an object with that one member), in the events and pushes that carry it.
Workflow and activity code never see one: before a replay, the references
at the positions replay reads (:data:`READ_POSITIONS`) are put in place;
before an activity runs, its ``input`` and ``heartbeat_details``. Other
positions (ActivityTaskScheduled ``input``, a completion's ``result``…)
are left as they are: nothing reads them, and no determinism check
compares them.

The values come from the ``payloads`` member (sha256 → payload) of the
push, of its history pages (:mod:`baton._pages`) and of checkpoint answers
(§5.9); the rest from the signed payload route, ``POST
…/namespaces/{ns}/payloads`` (the page route's sibling, signed with the
push secret the same way), up to 100 digests a request, asking again for
those an answer left out. :class:`Payloads` does this for one push,
fetching each payload once; the client's history fetch uses
:func:`resolve_history` with the API-key route instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from baton._pages import HistoryUnavailable, post_signed
from baton._protocol import EventDict, parse_timestamp

if TYPE_CHECKING:  # _inline imports this module
    from baton._inline import PushTiming

REFERENCE = "$baton_payload"
#: The payload replay reads from each event type: the only member of an
#: event that is put in place.
READ_POSITIONS: Mapping[str, str] = {
    "WorkflowExecutionStarted": "input",
    "ActivityTaskCompleted": "result",
    "WorkflowExecutionSignaled": "input",
    "WorkflowExecutionUpdateAdmitted": "input",
    "MarkerRecorded": "details",
    "ChildWorkflowExecutionCompleted": "result",
}
#: What an activity task push may carry by reference.
ACTIVITY_MEMBERS = ("input", "heartbeat_details")
#: Digests per request of the payload route.
MAX_DIGESTS = 100
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Concurrent requests of the client's history fetch.
_CLIENT_FETCHES = 8


class PayloadUnavailable(HistoryUnavailable):
    """A referenced payload could not be had: the payload route refused the
    request or left every digest out, no route was known, or a reference
    was malformed. Handled as a history page that could not be had."""


def digest(value: Any) -> str | None:
    """The sha256 ``value`` refers to when it is a reference, else None.
    Raises :class:`PayloadUnavailable` for a malformed one (an object whose
    only member is ``$baton_payload`` is always the server's reference)."""
    if not isinstance(value, dict) or len(cast("dict[str, Any]", value)) != 1:
        return None
    if REFERENCE not in value:
        return None
    inner = cast("dict[str, Any]", value)[REFERENCE]
    sha = cast("dict[str, Any]", inner).get("sha256") if isinstance(inner, dict) else None
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise PayloadUnavailable(f"malformed payload reference {value!r:.200}")
    return sha


def read_digests(events: Iterable[EventDict]) -> list[str]:
    """The digests referenced at the read positions of ``events``, each
    once, in order."""
    out: dict[str, None] = {}
    for e in events:
        member = READ_POSITIONS.get(e["event_type"])
        if member is not None:
            sha = digest((e.get("attributes") or {}).get(member))
            if sha is not None:
                out[sha] = None
    return list(out)


def put_in_place(events: Sequence[EventDict], values: Mapping[str, Any]) -> list[EventDict]:
    """``events`` with the references at their read positions replaced by
    ``values`` (sha256 → payload); the events without one are the same
    objects. Raises :class:`PayloadUnavailable` for a digest ``values``
    lacks."""
    out: list[EventDict] = []
    for e in events:
        member = READ_POSITIONS.get(e["event_type"])
        attributes = e.get("attributes") or {}
        sha = digest(attributes.get(member)) if member is not None else None
        if member is not None and sha is not None:
            if sha not in values:
                raise PayloadUnavailable(f"no payload {sha} for event {e['event_id']}")
            e = cast(EventDict, {**e, "attributes": {**attributes, member: values[sha]}})
        out.append(e)
    return out


def route(push: Mapping[str, Any], base_url: str | None, server_url: str | None) -> str | None:
    """The payload route of ``push``'s namespace: under ``base_url`` (the
    app's ``checkpoint_base_url``) when set, else an activity push's
    ``payloads_url``, else beside the push's ``history_url`` or
    ``checkpoint_url``, else under ``server_url`` (an older server's
    activity push names none). None when nothing names it."""
    tail = f"/api/v1/namespaces/{push['namespace']}/payloads"
    if base_url:
        return base_url.rstrip("/") + tail
    named = push.get("payloads_url")
    if isinstance(named, str) and named:
        return named
    for member, suffix in (
        ("history_url", "/workflow-tasks/history"),
        ("checkpoint_url", "/workflow-tasks/checkpoint"),
    ):
        url = push.get(member)
        if isinstance(url, str) and url.endswith(suffix):
            return url[: -len(suffix)] + "/payloads"
    if server_url:
        return server_url.rstrip("/") + tail
    return None


class Resolver:
    """Puts references in place for one app (its push secrets, its
    ``checkpoint_base_url`` and ``server_url``)."""

    def __init__(self, keys: Sequence[bytes], base_url: str | None, server_url: str | None) -> None:
        self._keys = keys
        self._base_url = base_url
        self._server_url = server_url
        #: Payloads fetched from the payload route so far.
        self.fetched = 0

    def for_push(self, push: Mapping[str, Any], timing: PushTiming, *, until: float) -> Payloads:
        """The payloads of one push (``until``: the monotonic time to give
        up fetching at)."""
        return Payloads(self, push, timing, until)

    async def activity_task(self, push: dict[str, Any], timing: PushTiming) -> dict[str, Any]:
        """An activity task push with its ``input`` and ``heartbeat_details``
        put in place (fetched by the attempt's deadline); itself when it
        holds no reference."""
        if all(digest(push.get(m)) is None for m in ACTIVITY_MEMBERS):
            return push
        budget = parse_timestamp(push["deadline"]) - parse_timestamp(push["started_time"])
        until = timing.received + max(0.0, budget.total_seconds())
        return await self.for_push(push, timing, until=until).activity_task(push)


class Payloads:
    """The payloads one push's references name (see the module doc)."""

    def __init__(
        self, resolver: Resolver, push: Mapping[str, Any], timing: PushTiming, until: float
    ) -> None:
        self._resolver = resolver
        self._url = route(push, resolver._base_url, resolver._server_url)
        self._run_id = str(push.get("run_id") or "")
        self._timing = timing
        self._until = until
        self._known: dict[str, Any] = {}
        self.add(push.get("payloads"))

    def add(self, inlined: Any) -> None:
        """Takes in a ``payloads`` member (of a page, a checkpoint answer)."""
        if isinstance(inlined, dict):
            self._known.update(cast("dict[str, Any]", inlined))

    async def workflow_push(self, push: Mapping[str, Any]) -> dict[str, Any]:
        """A workflow task, query or update validation push (or the whole
        one :meth:`Pager.whole` made of it) with the references of its
        ``history`` put in place, without ``payloads``."""
        self.add(push.get("payloads"))
        out = {k: v for k, v in push.items() if k != "payloads"}
        out["history"] = await self.events(cast("list[EventDict]", push["history"]))
        return out

    async def events(self, events: Sequence[EventDict]) -> list[EventDict]:
        """``events`` with the references at their read positions put in place."""
        await self._fetch(read_digests(events))
        return put_in_place(events, self._known)

    async def activity_task(self, push: Mapping[str, Any]) -> dict[str, Any]:
        """An activity task push with its ``input`` and
        ``heartbeat_details`` put in place, without ``payloads``."""
        self.add(push.get("payloads"))
        out = {k: v for k, v in push.items() if k != "payloads"}
        refs = {m: sha for m in ACTIVITY_MEMBERS if (sha := digest(push.get(m))) is not None}
        await self._fetch(list(refs.values()))
        for member, sha in refs.items():
            out[member] = self._known[sha]
        return out

    async def _fetch(self, digests: Sequence[str]) -> None:
        """Fetches the payloads of ``digests`` not known yet, in requests of
        up to :data:`MAX_DIGESTS`, asking again for those an answer left
        out (it stops at 8 MiB, after at least one)."""
        missing = [d for d in dict.fromkeys(digests) if d not in self._known]
        if not missing:
            return
        if self._url is None:
            raise PayloadUnavailable(
                f"{len(missing)} referenced payloads and no payload route: the push names "
                "no history_url and the app has no checkpoint_base_url or server_url"
            )
        while missing:
            batch = missing[:MAX_DIGESTS]
            answer = await post_signed(
                self._resolver._keys,
                self._url,
                {"run_id": self._run_id, "sha256": batch},
                self._timing,
                until=self._until,
                what="payloads",
                error=PayloadUnavailable,
            )
            got = answer.get("payloads")
            sent = [d for d in batch if isinstance(got, dict) and d in got]
            if not sent:
                raise PayloadUnavailable(
                    f"payloads from {self._url}: the answer has none of the {len(batch)} asked for"
                )
            for d in sent:
                self._known[d] = cast("dict[str, Any]", got)[d]
            self._resolver.fetched += len(sent)
            missing = [d for d in missing if d not in self._known]


async def resolve_history(
    events: Sequence[EventDict], fetch: Callable[[str], Awaitable[Any]]
) -> list[EventDict]:
    """``events`` (a history as ``GET …/history`` returns it) with the
    references at their read positions put in place, each payload fetched
    once by ``fetch`` (sha256 → payload; the client's API-key route)."""
    digests = read_digests(events)
    if not digests:
        return list(events)
    gate = asyncio.Semaphore(_CLIENT_FETCHES)

    async def one(sha: str) -> tuple[str, Any]:
        async with gate:
            return sha, await fetch(sha)

    values = dict(await asyncio.gather(*(one(d) for d in digests)))
    return put_in_place(events, values)
