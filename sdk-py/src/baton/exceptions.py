"""Every error the SDK raises, rooted at :class:`BatonError`.

Names and meanings follow ``temporalio.exceptions``. :class:`FailureError`
and its subclasses are the errors that travel as a failure (a message, a
type, details and a cause chain): raised by workflow code they fail the
workflow; raised by an activity they fail the attempt. Any other exception
raised by workflow code fails only the workflow *task*, which the server
retries, so a bug can be fixed and redeployed without losing the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from enum import Enum
from typing import Any


class BatonError(Exception):
    """Base of every error raised by this SDK."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class FailureError(BatonError):
    """An error that is serialised as a failure. ``failure`` is the raw wire
    form when the error was decoded from one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._failure: dict[str, Any] | None = None
        self.stack_trace: str | None = None

    @property
    def failure(self) -> dict[str, Any] | None:
        return self._failure


class ApplicationError(FailureError):
    """An error raised on purpose by workflow or activity code.

    ``type`` is what :class:`baton.common.RetryPolicy`'s
    ``non_retryable_error_types`` matches; ``non_retryable=True`` stops
    retries whatever the policy says. ``details`` are converted to JSON.
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self._details: tuple[Any, ...] = details
        self._type = type
        self._non_retryable = non_retryable
        self._next_retry_delay = next_retry_delay

    @property
    def details(self) -> Sequence[Any]:
        return self._details

    @property
    def type(self) -> str | None:
        return self._type

    @property
    def non_retryable(self) -> bool:
        return self._non_retryable

    @property
    def next_retry_delay(self) -> timedelta | None:
        return self._next_retry_delay


class CancelledError(FailureError):
    """Work was cancelled (an activity, a child workflow, the workflow)."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        super().__init__(message)
        self._details: tuple[Any, ...] = details

    @property
    def details(self) -> Sequence[Any]:
        return self._details


class TerminatedError(FailureError):
    """The workflow was terminated (``handle.terminate()`` or an operator)."""

    def __init__(self, message: str, *details: Any) -> None:
        super().__init__(message)
        self._details: tuple[Any, ...] = details

    @property
    def details(self) -> Sequence[Any]:
        return self._details


class TimeoutType(str, Enum):
    START_TO_CLOSE = "START_TO_CLOSE"
    SCHEDULE_TO_START = "SCHEDULE_TO_START"
    SCHEDULE_TO_CLOSE = "SCHEDULE_TO_CLOSE"
    HEARTBEAT = "HEARTBEAT"


class TimeoutError(FailureError):
    """An activity or workflow timed out. ``type`` says which timeout."""

    def __init__(
        self,
        message: str,
        *,
        type: TimeoutType | None,
        last_heartbeat_details: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self._type = type
        self._last_heartbeat_details = last_heartbeat_details

    @property
    def type(self) -> TimeoutType | None:
        return self._type

    @property
    def last_heartbeat_details(self) -> Sequence[Any]:
        return self._last_heartbeat_details


class ServerError(FailureError):
    """A failure the server produced (for example an undeliverable task)."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message)
        self._non_retryable = non_retryable

    @property
    def non_retryable(self) -> bool:
        return self._non_retryable


class RetryState(str, Enum):
    """Why retrying stopped; the server's names."""

    RETRY_POLICY_NOT_SET = "RETRY_POLICY_NOT_SET"
    MAXIMUM_ATTEMPTS_REACHED = "MAXIMUM_ATTEMPTS_REACHED"
    NON_RETRYABLE_FAILURE = "NON_RETRYABLE_FAILURE"
    TIMEOUT = "TIMEOUT"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"


class ActivityError(FailureError):
    """Raised in the workflow when an activity fails for good (its retries
    are exhausted, it failed non-retryably, timed out or was cancelled).
    ``cause`` (also ``__cause__``) is the activity's own error."""

    def __init__(
        self,
        message: str,
        *,
        scheduled_event_id: int,
        started_event_id: int,
        identity: str,
        activity_type: str,
        activity_id: str,
        retry_state: RetryState | None,
    ) -> None:
        super().__init__(message)
        self._scheduled_event_id = scheduled_event_id
        self._started_event_id = started_event_id
        self._identity = identity
        self._activity_type = activity_type
        self._activity_id = activity_id
        self._retry_state = retry_state

    @property
    def scheduled_event_id(self) -> int:
        return self._scheduled_event_id

    @property
    def started_event_id(self) -> int:
        return self._started_event_id

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def activity_type(self) -> str:
        return self._activity_type

    @property
    def activity_id(self) -> str:
        return self._activity_id

    @property
    def retry_state(self) -> RetryState | None:
        return self._retry_state

    @property
    def cause(self) -> BaseException | None:
        return self.__cause__


class ChildWorkflowError(FailureError):
    """Raised in the parent when a child workflow fails (issue 4: the
    server does not run child workflows yet)."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        workflow_id: str,
        run_id: str,
        workflow_type: str,
        retry_state: RetryState | None,
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type = workflow_type
        self.retry_state = retry_state

    @property
    def cause(self) -> BaseException | None:
        return self.__cause__


class WorkflowAlreadyStartedError(FailureError):
    """A start was refused because the workflow id is in use (see the id
    reuse and conflict policies)."""

    def __init__(self, workflow_id: str, workflow_type: str, *, run_id: str | None = None) -> None:
        super().__init__("Workflow execution already started")
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id


class WorkflowFailureError(BatonError):
    """Raised by ``WorkflowHandle.result()`` when the run did not complete:
    ``cause`` is an :class:`ApplicationError`, :class:`ActivityError`,
    :class:`TerminatedError`, :class:`TimeoutError` or :class:`CancelledError`."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow execution failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        assert self.__cause__ is not None
        return self.__cause__


class WorkflowContinuedAsNewError(BatonError):
    """The run continued as new and the handle was asked not to follow."""

    def __init__(self, new_execution_run_id: str) -> None:
        super().__init__("Workflow continued as new")
        self.new_execution_run_id = new_execution_run_id


class NonDeterminismError(BatonError):
    """Replaying the history with the current workflow code diverged from
    what the history records. Reported to the server as a workflow task
    failure (cause ``NON_DETERMINISTIC_ERROR``); the run waits for a fix."""

    def __init__(
        self,
        message: str,
        *,
        event_id: int | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.expected = expected
        self.actual = actual


class RestrictedWorkflowAccessError(BatonError):
    """Workflow code called something non-deterministic (the wall clock, a
    global random generator, ``uuid.uuid4``, blocking IO). Use the
    ``baton.workflow`` equivalents, or an activity."""

    def __init__(self, qualified_name: str, hint: str = "") -> None:
        msg = f"cannot call {qualified_name} inside a workflow: it is not deterministic on replay"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)
        self.qualified_name = qualified_name


class RPCError(BatonError):
    """The server's REST API refused or failed a request. ``status`` is the
    HTTP status, ``code`` the stable problem code (``not_found``,
    ``already_exists``, ``conflict``, ``invalid_argument``, …)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        detail: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        #: The whole problem document, when the server sent one.
        self.problem = problem


class WorkflowUpdateFailedError(BatonError):
    """An update did not produce a result: its validator rejected it
    (nothing was recorded) or its handler raised. ``cause`` is the
    :class:`ApplicationError` (or other failure error) it raised, as in
    ``temporalio.client.WorkflowUpdateFailedError``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("Workflow update failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        assert self.__cause__ is not None
        return self.__cause__


class WorkflowQueryFailedError(BatonError):
    """The workflow's query handler answered with a failure: an unknown
    query name (the message lists the known ones), arguments it could not
    decode, or an error the handler raised (the server's ``400
    query_failed``). ``message`` is the failure's message."""


class NotSupportedError(BatonError):
    """The feature is part of the SDK's API but the server does not support
    it yet (see the message for the issue that tracks it)."""


class WorkflowNotFoundError(RPCError):
    """The workflow id (or the given run) does not exist (``404``).
    ``temporalio`` raises ``RPCError`` with status ``NOT_FOUND`` here; this
    subclass of :class:`RPCError` keeps ``status`` and ``code``."""

    def __init__(self, message: str, *, workflow_id: str, run_id: str | None = None) -> None:
        super().__init__(message, status=404, code="not_found")
        self.workflow_id = workflow_id
        self.run_id = run_id


class WorkflowAlreadyCompletedError(RPCError):
    """The run is closed, so it takes no more signals or cancellation
    requests (``409 conflict``; Temporal's "workflow execution already
    completed")."""

    def __init__(self, message: str, *, workflow_id: str, run_id: str | None = None) -> None:
        super().__init__(message, status=409, code="conflict")
        self.workflow_id = workflow_id
        self.run_id = run_id
