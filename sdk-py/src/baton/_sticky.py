"""The sticky workflow cache of a long-lived app (docs/protocol.md §5.10).

After a workflow task answered with ``commands`` (the run still open, no
inline session), the app keeps the run's :class:`WorkflowInstance`, loop,
timers and coroutines as they are, and answers ``"sticky": true``; the
server then pushes the run's next task with only the events that follow.
Such a push takes the instance *out* of the cache (no other push of the run
can share it while it runs) and feeds it the new events
(:meth:`WorkflowInstance.advance`); when there is no instance, or it does
not end where the push starts, or applying the events goes wrong, the app
pages in the history and replays from the first event, as without a cache.

At most ``max_cached_workflows`` instances are kept, the least recently
used torn down first. The AWS Lambda handler keeps none (the process may
freeze or vanish between invocations).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from baton._workflow_instance import WorkflowInstance

DEFAULT_MAX_CACHED_WORKFLOWS = 1000


@dataclass(frozen=True)
class WorkflowCacheStats:
    """What the app's sticky cache, history paging and payload fetching did
    since it started (:attr:`baton.App.workflow_cache_stats`)."""

    #: Instances held now.
    cached: int
    #: Workflow tasks that went on in a cached instance, without a replay.
    hits: int
    #: Workflow tasks replayed from the first event (the first task of a
    #: run in this app, a whole or paged push, an instance evicted, lost to
    #: another process, or dropped because the push did not follow on).
    misses: int
    #: Instances torn down to stay within ``max_cached_workflows``.
    evictions: int
    #: History pages fetched from the server (tasks, queries and update
    #: validations whose push lacked older events).
    history_pages: int
    #: Payloads fetched from the server's payload route (references the
    #: pushes did not inline, docs/protocol.md §9.1).
    payloads_fetched: int = 0


class WorkflowCache:
    """Instances by run id, least recently used first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("max_cached_workflows must be >= 0")
        self.capacity = capacity
        self._entries: collections.OrderedDict[str, WorkflowInstance] = collections.OrderedDict()
        # An app may be called from several threads (a test, an emulator).
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, run_id: str) -> WorkflowInstance | None:
        """Takes the run's instance out of the cache, if it has one."""
        with self._lock:
            return self._entries.pop(run_id, None)

    def keep(self, run_id: str, inst: WorkflowInstance) -> bool:
        """Keeps ``inst`` as the run's, most recently used, unless the cache
        is off; tears down what it replaces and what falls out."""
        if self.capacity == 0:
            return False
        dropped: list[WorkflowInstance] = []
        with self._lock:
            previous = self._entries.pop(run_id, None)
            if previous is not None and previous is not inst:
                dropped.append(previous)
            self._entries[run_id] = inst
            while len(self._entries) > self.capacity:
                dropped.append(self._entries.popitem(last=False)[1])
                self.evictions += 1
        for d in dropped:
            d.teardown()
        return True

    def clear(self) -> None:
        """Tears down every instance (the app is shutting down)."""
        with self._lock:
            dropped = list(self._entries.values())
            self._entries.clear()
        for d in dropped:
            d.teardown()
