"""JSON Schemas from type hints: what a handler's description publishes
under ``schemas`` (docs/protocol.md §1.5), so the server refuses a start,
signal, update or query whose payload its hints would not convert.

A schema describes the wire payload: the JSON array of positional
arguments, each item the schema of its parameter's hint. The schemas are
no stricter than :func:`baton.converter.from_json`: a hint they cannot
describe (``Any``, a class the converter passes through) accepts anything,
and objects accept members they do not name. A non-array payload counts as
the first argument, as the converter reads it. Pydantic models publish
their own ``model_json_schema``, their ``$defs`` hoisted to the root.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Union, cast

from baton.converter import _is_pydantic_model, type_hints_of

_NoneType = type(None)

try:
    from types import UnionType as _UnionType  # py3.10+
except ImportError:  # pragma: no cover
    _UnionType = None  # type: ignore[assignment,misc]

Schema = dict[str, Any]


def args_schema(fn: Callable[..., Any], hints: Sequence[Any] | None = None) -> Schema | None:
    """The schema of ``fn``'s positional arguments as a payload; ``None``
    when no parameter has a hint it can describe."""
    if hints is None:
        hints, _ = type_hints_of(fn)
    required = _required_count(fn)
    defs: dict[str, Schema] = {}
    items = [_schema(h, defs) for h in hints]
    if not any(items):
        return None
    array: Schema = {"type": "array", "prefixItems": items}
    if required:
        array["minItems"] = required
    schema: Schema = {"if": {"type": "array"}, "then": array, "else": items[0] if items else {}}
    if defs:
        schema["$defs"] = defs
    return schema


def _required_count(fn: Callable[..., Any]) -> int:
    try:
        sig = inspect.signature(inspect.unwrap(fn))
    except (TypeError, ValueError):
        return 0
    n = 0
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and p.name == "self":
            continue
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.default is not p.empty:
            break
        n += 1
    return n


def _schema(hint: Any, defs: dict[str, Schema]) -> Schema:
    """The schema of one hint; ``{}`` (anything) when it cannot say."""
    if hint is None or hint is _NoneType:
        return {"type": "null"}
    if hint is Any or hint is object or hint is inspect.Parameter.empty or isinstance(hint, str):
        return {}
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # NewType
        return _schema(supertype, defs)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (_UnionType is not None and origin is _UnionType):
        arms = [_schema(a, defs) for a in args]
        return {} if any(a == {} for a in arms) else {"anyOf": arms}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Annotated:
        return _schema(args[0], defs)
    if origin is not None:
        return _generic(origin, args, defs)
    if not isinstance(hint, type):
        return {}
    return _class(hint, defs)


def _generic(origin: Any, args: tuple[Any, ...], defs: dict[str, Schema]) -> Schema:
    if isinstance(origin, type) and issubclass(origin, Mapping):
        value = _schema(args[1], defs) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _array(_schema(args[0], defs))
        items = [_schema(a, defs) for a in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items)}
    if isinstance(origin, type) and issubclass(origin, (Sequence, set, frozenset)):
        return _array(_schema(args[0], defs) if args else {})
    return {}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items} if items else {"type": "array"}


def _class(hint: type, defs: dict[str, Schema]) -> Schema:
    cls: Any = hint
    if _sub(cls, Enum):
        return {"enum": [m.value for m in cls]}
    if cls is bool:
        return {"type": "boolean"}
    if cls is int:
        return {"type": "integer"}
    if cls is float:
        return {"type": "number"}
    if cls is timedelta:
        return {"type": "number"}
    if cls in (str, datetime, date, time, uuid.UUID, Decimal):
        return {"type": "string"}
    if _is_pydantic_model(cls):
        model = cls.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(model.pop("$defs", {}))
        return cast(Schema, model)
    if dataclasses.is_dataclass(cls):
        return _dataclass(cls, defs)
    if _sub(cls, dict) and hasattr(cls, "__required_keys__"):  # TypedDict
        hints = typing.get_type_hints(cls)
        props = {k: _schema(h, defs) for k, h in hints.items()}
        required = sorted(
            cast("frozenset[str]", getattr(cls, "__required_keys__", frozenset[str]()))
        )
        return _object(props, required)
    if _sub(cls, (list, tuple, set, frozenset)) and not hasattr(cls, "_fields"):
        return {"type": "array"}
    if _sub(cls, dict):
        return {"type": "object"}
    return {}


def _sub(cls: Any, kinds: type | tuple[type, ...]) -> bool:
    """``issubclass``, without narrowing ``cls`` for the type checker."""
    return issubclass(cls, kinds)


def _dataclass(cls: Any, defs: dict[str, Schema]) -> Schema:
    hints = typing.get_type_hints(cls)
    props: dict[str, Schema] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        props[f.name] = _schema(hints.get(f.name, Any), defs)
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if f.init and no_default:
            required.append(f.name)
    return _object(props, required)


def _object(props: dict[str, Schema], required: list[str]) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema
