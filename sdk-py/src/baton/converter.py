"""JSON data conversion driven by type hints, like Temporal's default JSON
converter.

:func:`to_json` turns a Python value into plain JSON data (dicts, lists,
strings, numbers, booleans, None); :func:`from_json` turns JSON data back
into the type a function's hints ask for. Supported: primitives,
dataclasses, enums, ``datetime``/``date``/``time`` (ISO 8601),
``timedelta`` (seconds), ``UUID``, ``Decimal`` (string), ``TypedDict``,
``NamedTuple``, ``list``/``tuple``/``set``/``dict``/``Sequence``/
``Mapping``, ``Optional``/``Union``/``Literal``, ``NewType``, and pydantic
models when pydantic is installed (the optional ``pydantic`` extra).

Arguments travel as one JSON array, one element per positional argument
(docs/protocol.md). A non-array ``input`` (for example an object posted by
hand to the REST API) counts as the single argument.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import traceback
import typing
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Union, cast

from baton._protocol import JSON, FailureDict, parse_timestamp
from baton.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    RetryState,
    ServerError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
)

try:  # pragma: no cover - depends on the environment
    import pydantic as _pydantic

    _BaseModel: type | None = _pydantic.BaseModel
except ImportError:  # pragma: no cover
    _BaseModel = None

_NoneType = type(None)

try:
    from types import UnionType as _UnionType  # py3.10+
except ImportError:  # pragma: no cover
    _UnionType = None  # type: ignore[assignment,misc]


def _is_pydantic_model(tp: Any) -> bool:
    return _BaseModel is not None and isinstance(tp, type) and issubclass(tp, _BaseModel)


def to_json(value: Any) -> JSON:
    """Converts a Python value to JSON data; raises TypeError when it cannot."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if _BaseModel is not None and isinstance(value, _BaseModel):
        model: Any = value
        return model.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(cast(object, value), "_fields"):  # NamedTuple
        nt = cast(Any, value)
        return {name: to_json(getattr(nt, name)) for name in nt._fields}
    if isinstance(value, collections.abc.Mapping):
        m = cast("collections.abc.Mapping[Any, Any]", value)
        return {_key_to_json(k): to_json(v) for k, v in m.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = cast("collections.abc.Iterable[Any]", value)
        return [to_json(v) for v in items]
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bytes are not JSON; encode them (base64) first")
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def _key_to_json(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, Enum):
        return str(key.value)
    if isinstance(key, (int, float, bool, uuid.UUID)):
        return str(key)
    raise TypeError(f"cannot use {type(key).__name__} as a JSON object key")


def from_json(value: JSON, hint: Any) -> Any:
    """Converts JSON data to ``hint``; raises TypeError/ValueError on a
    mismatch. ``hint`` of ``None`` or ``Any`` returns the data unchanged."""
    if hint is None or hint is Any or hint is object or hint is inspect.Parameter.empty:
        return value
    if hint is _NoneType:
        if value is not None:
            raise TypeError(f"expected null, got {type(value).__name__}")
        return None
    if isinstance(hint, str):
        raise TypeError(f"unresolved type hint {hint!r}")
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # NewType
        return from_json(value, supertype)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (_UnionType is not None and origin is _UnionType):
        if value is None and _NoneType in args:
            return None
        errors: list[str] = []
        for arm in args:
            if arm is _NoneType:
                continue
            try:
                return from_json(value, arm)
            except (TypeError, ValueError, KeyError) as e:
                errors.append(str(e))
        raise TypeError(f"{value!r} matches no arm of {hint}: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{value!r} is not one of {args}")
        return value
    if origin is typing.Annotated:
        return from_json(value, args[0])
    if origin is not None:
        return _from_json_generic(value, origin, args, hint)
    if not isinstance(hint, type):
        return value
    return _from_json_class(value, hint)


def _from_json_generic(value: JSON, origin: Any, args: tuple[Any, ...], hint: Any) -> Any:
    if origin in (
        list,
        collections.abc.Sequence,
        collections.abc.MutableSequence,
        collections.abc.Iterable,
        collections.abc.Collection,
    ):
        seq = _expect_list(value, hint)
        item = args[0] if args else Any
        return [from_json(v, item) for v in seq]
    if origin in (set, frozenset, collections.abc.Set, collections.abc.MutableSet):
        seq = _expect_list(value, hint)
        item = args[0] if args else Any
        items = {from_json(v, item) for v in seq}
        return frozenset(items) if origin is frozenset else items
    if origin is tuple:
        seq = _expect_list(value, hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(v, args[0]) for v in seq)
        if args == ((),):
            return ()
        if args and len(args) != len(seq):
            raise ValueError(f"expected {len(args)} items for {hint}, got {len(seq)}")
        return (
            tuple(from_json(v, a) for v, a in zip(seq, args, strict=True)) if args else tuple(seq)
        )
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {hint}, got {type(value).__name__}")
        kt, vt = (*args, Any, Any)[:2] if args else (Any, Any)
        obj = cast("dict[str, Any]", value)
        return {_key_from_json(k, kt): from_json(v, vt) for k, v in obj.items()}
    if isinstance(origin, type):
        return _from_json_class(value, origin)
    return value


def _expect_list(value: JSON, hint: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected an array for {hint}, got {type(value).__name__}")
    return cast("list[Any]", value)


def _key_from_json(key: str, hint: Any) -> Any:
    if hint in (str, Any):
        return key
    if hint is int:
        return int(key)
    if hint is float:
        return float(key)
    if isinstance(hint, type) and issubclass(hint, Enum):
        for member in hint:
            if str(member.value) == key:
                return member
        raise ValueError(f"{key!r} is not a {hint.__name__}")
    if hint is uuid.UUID:
        return uuid.UUID(key)
    return key


def _from_json_class(value: JSON, klass: type) -> Any:
    cls: Any = klass
    if cls is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected a boolean, got {type(value).__name__}")
        return value
    if cls is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return value
    if cls is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if cls is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    if issubclass(cls, Enum):
        return cls(value)
    if cls is datetime:
        return _parse_datetime(_expect_str(value, cls))
    if cls is date:
        return date.fromisoformat(_expect_str(value, cls))
    if cls is time:
        return time.fromisoformat(_expect_str(value, cls))
    if cls is timedelta:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected seconds for timedelta, got {type(value).__name__}")
        return timedelta(seconds=value)
    if cls is uuid.UUID:
        return uuid.UUID(_expect_str(value, cls))
    if cls is Decimal:
        return Decimal(str(value))
    if _is_pydantic_model(cls):
        return cls.model_validate(value)
    if dataclasses.is_dataclass(klass):
        return _from_json_dataclass(value, klass)
    if typing.is_typeddict(cls):
        return _from_json_typeddict(value, cls)
    if _is_namedtuple(cls):
        hints = typing.get_type_hints(cls)
        obj = _expect_dict(value, cls)
        return cls(**{k: from_json(v, hints.get(k, Any)) for k, v in obj.items()})
    if cls in (list, tuple, set, frozenset, dict):
        return _from_json_generic(value, cls, (), cls)
    if isinstance(value, cls):
        return value
    raise TypeError(f"cannot convert JSON to {cls.__name__}")


def _is_namedtuple(klass: type) -> bool:
    return issubclass(klass, tuple) and hasattr(cast(object, klass), "_fields")


def _expect_str(value: JSON, cls: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string for {cls.__name__}")
    return value


def _expect_dict(value: JSON, cls: type) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(value).__name__}")
    return cast("dict[str, Any]", value)


def _parse_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        # 3.10 refuses "Z" and odd fraction lengths; the server writes both.
        dt = parse_timestamp(text)
        return dt.astimezone(timezone.utc)


def _from_json_dataclass(value: JSON, cls: type) -> Any:
    obj = _expect_dict(value, cls)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in obj:
            continue
        converted = from_json(obj[f.name], hints.get(f.name, Any))
        if f.init:
            kwargs[f.name] = converted
        else:
            later[f.name] = converted
    instance = cls(**kwargs)
    for k, v in later.items():
        object.__setattr__(instance, k, v)
    return instance


def _from_json_typeddict(value: JSON, cls: type) -> Any:
    obj = _expect_dict(value, cls)
    hints = typing.get_type_hints(cls)
    required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
    missing = required - obj.keys()
    if missing:
        raise KeyError(f"{cls.__name__} is missing {sorted(missing)}")
    return {k: from_json(v, hints.get(k, Any)) for k, v in obj.items()}


# --- arguments ----------------------------------------------------------------


def encode_args(args: Sequence[Any]) -> list[JSON]:
    """Positional arguments to the wire's JSON array."""
    return [to_json(a) for a in args]


def split_input(value: JSON) -> list[JSON]:
    """The wire ``input`` as a list of positional arguments."""
    if value is None:
        return []
    if isinstance(value, list):
        return cast("list[JSON]", value)
    return [value]


def decode_args(value: JSON, hints: Sequence[Any]) -> list[Any]:
    """The wire ``input`` converted by positional parameter hints; extra
    values beyond the hints are passed through unconverted."""
    raw = split_input(value)
    return [from_json(v, hints[i] if i < len(hints) else Any) for i, v in enumerate(raw)]


def type_hints_of(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    """(positional parameter hints, return hint) of a function or bound
    method, skipping ``self``. Unresolvable hints become ``Any``."""
    target = inspect.unwrap(fn)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return [], Any
    params: list[Any] = []
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and p.name == "self":
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            params.append(hints.get(p.name, Any))
        elif p.kind is p.VAR_POSITIONAL:
            break
    return params, hints.get("return", Any)


# --- failures -------------------------------------------------------------------


def _details_to_json(details: Sequence[Any]) -> JSON:
    return [to_json(d) for d in details]


def _details_from_json(value: JSON) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(cast("list[Any]", value))
    return (value,)


def error_to_failure(err: BaseException, *, include_stack: bool = True) -> FailureDict:
    """An exception (and its ``__cause__`` chain) as the wire failure.

    Each failure error carries its ``kind`` (protocol.md §5.3.1):
    ApplicationError maps its fields; an ActivityError or ChildWorkflowError
    carries its info; any other exception is a retryable application
    failure whose type is its class name (as in Temporal).
    """
    f: FailureDict = {"message": str(err.args[0]) if err.args else str(err) or type(err).__name__}
    if isinstance(err, ApplicationError):
        f["kind"] = "APPLICATION"
        f["type"] = err.type or type(err).__name__
        if err.non_retryable:
            f["non_retryable"] = True
        if err.details:
            f["details"] = _details_to_json(err.details)
    elif isinstance(err, TimeoutError):
        f["kind"] = "TIMEOUT"
        f["type"] = "TimeoutError"
        if err.type is not None:
            f["timeout_type"] = err.type.value
    elif isinstance(err, (CancelledError, TerminatedError)):
        f["kind"] = "CANCELED" if isinstance(err, CancelledError) else "TERMINATED"
        f["type"] = type(err).__name__
        if err.details:
            f["details"] = _details_to_json(err.details)
    elif isinstance(err, ActivityError):
        f["kind"] = "ACTIVITY"
        f["type"] = "ActivityError"
        info: dict[str, Any] = {"activity_type": err.activity_type, "activity_id": err.activity_id}
        if err.scheduled_event_id:
            info["scheduled_event_id"] = err.scheduled_event_id
        if err.started_event_id:
            info["started_event_id"] = err.started_event_id
        if err.identity:
            info["identity"] = err.identity
        if err.retry_state:
            info["retry_state"] = err.retry_state.value
        f["activity_failure_info"] = info
    elif isinstance(err, ChildWorkflowError):
        f["kind"] = "CHILD_WORKFLOW_EXECUTION"
        f["type"] = "ChildWorkflowError"
        child: dict[str, Any] = {"workflow_id": err.workflow_id, "workflow_type": err.workflow_type}
        if err.namespace:
            child["namespace"] = err.namespace
        if err.run_id:
            child["run_id"] = err.run_id
        if err.retry_state:
            child["retry_state"] = err.retry_state.value
        f["child_workflow_execution_failure_info"] = child
    elif isinstance(err, ServerError):
        f["kind"] = "SERVER"
        f["type"] = "ServerError"
        if err.non_retryable:
            f["non_retryable"] = True
    else:
        f["kind"] = "APPLICATION"
        f["type"] = type(err).__name__
    if include_stack and err.__traceback__ is not None:
        f["stack_trace"] = "".join(traceback.format_tb(err.__traceback__))
    elif isinstance(err, FailureError) and err.stack_trace:
        f["stack_trace"] = err.stack_trace
    cause = err.__cause__
    if cause is not None:
        f["cause"] = error_to_failure(cause, include_stack=include_stack)
    return f


def _retry_state(value: Any) -> RetryState | None:
    return RetryState(value) if value in RetryState.__members__ else None


def _legacy_kind(fd: FailureDict) -> str:
    """The kind of a failure recorded before kinds existed: from its type
    (the names Baton's SDKs and server used), else APPLICATION."""
    ftype = fd.get("type", "")
    details = fd.get("details")
    if fd.get("timeout_type") or ftype == "TimeoutError":
        return "TIMEOUT"
    if ftype in ("ActivityError", "ChildWorkflowError") and not isinstance(details, dict):
        return "APPLICATION"
    return {
        "CancelledError": "CANCELED",
        "TerminatedError": "TERMINATED",
        "ServerError": "SERVER",
        "ActivityError": "ACTIVITY",
        "ChildWorkflowError": "CHILD_WORKFLOW_EXECUTION",
    }.get(ftype, "APPLICATION")


def failure_to_error(f: FailureDict | dict[str, Any]) -> FailureError:
    """The wire failure as an exception of its kind, with ``__cause__`` set
    from the chain. A failure without ``kind`` is decoded as the SDKs wrote
    it before kinds existed (by ``type``), else as an ApplicationError."""
    fd = cast(FailureDict, f)
    message = fd.get("message", "")
    ftype = fd.get("type", "")
    details = fd.get("details")
    kind = fd.get("kind") or _legacy_kind(fd)
    err: FailureError
    if kind == "TIMEOUT":
        timeout_type = fd.get("timeout_type")
        tt = TimeoutType(timeout_type) if timeout_type in TimeoutType.__members__ else None
        err = TimeoutError(message, type=tt)
    elif kind == "CANCELED":
        err = CancelledError(message, *_details_from_json(details))
    elif kind == "TERMINATED":
        err = TerminatedError(message, *_details_from_json(details))
    elif kind == "SERVER":
        err = ServerError(message, non_retryable=bool(fd.get("non_retryable")))
    elif kind == "ACTIVITY":
        d = fd.get("activity_failure_info") or cast("dict[str, Any]", details or {})
        err = ActivityError(
            message,
            scheduled_event_id=int(d.get("scheduled_event_id") or 0),
            started_event_id=int(d.get("started_event_id") or 0),
            identity=str(d.get("identity") or ""),
            activity_type=str(d.get("activity_type") or ""),
            activity_id=str(d.get("activity_id") or ""),
            retry_state=_retry_state(d.get("retry_state")),
        )
    elif kind == "CHILD_WORKFLOW_EXECUTION":
        d = fd.get("child_workflow_execution_failure_info") or cast("dict[str, Any]", details or {})
        err = ChildWorkflowError(
            message,
            namespace=str(d.get("namespace") or ""),
            workflow_id=str(d.get("workflow_id") or ""),
            run_id=str(d.get("run_id") or ""),
            workflow_type=str(d.get("workflow_type") or ""),
            retry_state=_retry_state(d.get("retry_state")),
        )
    else:
        err = ApplicationError(
            message,
            *_details_from_json(details),
            type=ftype or None,
            non_retryable=bool(fd.get("non_retryable")),
        )
    err._failure = dict(fd)
    err.stack_trace = fd.get("stack_trace")
    cause = fd.get("cause")
    if cause:
        err.__cause__ = failure_to_error(cause)
    return err
