"""Types shared by workflows, activities and the client (as
``temporalio.common``)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum, IntEnum
from typing import Any, ClassVar, Generic, TypeVar, cast

from baton._protocol import format_duration, parse_duration


@dataclass
class RetryPolicy:
    """Temporal's retry policy. Unset fields take the server's defaults:
    initial interval 1 s, coefficient 2.0, maximum interval 100 × initial,
    unlimited attempts."""

    initial_interval: timedelta = field(default_factory=lambda: timedelta(seconds=1))
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    """Zero means unlimited."""
    non_retryable_error_types: Sequence[str] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "initial_interval": format_duration(self.initial_interval),
            "backoff_coefficient": float(self.backoff_coefficient),
        }
        if self.maximum_interval is not None:
            out["maximum_interval"] = format_duration(self.maximum_interval)
        if self.maximum_attempts:
            out["maximum_attempts"] = int(self.maximum_attempts)
        if self.non_retryable_error_types:
            out["non_retryable_error_types"] = list(self.non_retryable_error_types)
        return out

    @staticmethod
    def from_wire(d: dict[str, Any]) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=parse_duration(d.get("initial_interval", "1s")),
            backoff_coefficient=float(d.get("backoff_coefficient", 2.0)),
            maximum_interval=parse_duration(d["maximum_interval"])
            if d.get("maximum_interval")
            else None,
            maximum_attempts=int(d.get("maximum_attempts", 0)),
            non_retryable_error_types=list(d.get("non_retryable_error_types") or []) or None,
        )


class WorkflowIDReusePolicy(str, Enum):
    """What a start does when the id's latest run is closed."""

    ALLOW_DUPLICATE = "ALLOW_DUPLICATE"
    ALLOW_DUPLICATE_FAILED_ONLY = "ALLOW_DUPLICATE_FAILED_ONLY"
    REJECT_DUPLICATE = "REJECT_DUPLICATE"
    TERMINATE_IF_RUNNING = "TERMINATE_IF_RUNNING"


class WorkflowIDConflictPolicy(str, Enum):
    """What a start does when the id's latest run is still open."""

    FAIL = "FAIL"
    USE_EXISTING = "USE_EXISTING"
    TERMINATE_EXISTING = "TERMINATE_EXISTING"


class WorkflowExecutionStatus(str, Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    TIMED_OUT = "TIMED_OUT"


class SearchAttributeIndexedValueType(IntEnum):
    """A custom search attribute's type (Temporal's names and numbers)."""

    TEXT = 1
    KEYWORD = 2
    INT = 3
    DOUBLE = 4
    BOOL = 5
    DATETIME = 6
    KEYWORD_LIST = 7

    @property
    def wire_name(self) -> str:
        """The server's name of the type (``Keyword``, ``KeywordList``, …)."""
        return _WIRE_TYPES[self]

    @staticmethod
    def from_wire(name: str) -> SearchAttributeIndexedValueType | None:
        return next((t for t, n in _WIRE_TYPES.items() if n == name), None)


_WIRE_TYPES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}

SearchAttributeValueType = TypeVar(
    "SearchAttributeValueType", str, int, float, bool, datetime, Sequence[str]
)


@dataclass(frozen=True)
class SearchAttributeKey(Generic[SearchAttributeValueType]):
    """A typed custom search attribute name, made with the ``for_*``
    constructors as in temporalio."""

    name: str
    indexed_value_type: SearchAttributeIndexedValueType

    @staticmethod
    def for_text(name: str) -> SearchAttributeKey[str]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.TEXT)

    @staticmethod
    def for_keyword(name: str) -> SearchAttributeKey[str]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD)

    @staticmethod
    def for_int(name: str) -> SearchAttributeKey[int]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.INT)

    @staticmethod
    def for_float(name: str) -> SearchAttributeKey[float]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DOUBLE)

    @staticmethod
    def for_bool(name: str) -> SearchAttributeKey[bool]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.BOOL)

    @staticmethod
    def for_datetime(name: str) -> SearchAttributeKey[datetime]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DATETIME)

    @staticmethod
    def for_keyword_list(name: str) -> SearchAttributeKey[Sequence[str]]:
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD_LIST)

    def value_set(
        self, value: SearchAttributeValueType
    ) -> SearchAttributeUpdate[SearchAttributeValueType]:
        """An update that sets the attribute (``workflow.upsert_search_attributes``)."""
        return SearchAttributeUpdate(self, value)

    def value_unset(self) -> SearchAttributeUpdate[SearchAttributeValueType]:
        """An update that removes the attribute."""
        return SearchAttributeUpdate(self, None)

    def to_wire(self, value: Any) -> Any:
        """``value`` as the plain JSON the server types by its registry."""
        if value is None:
            return None
        t = self.indexed_value_type
        if t == SearchAttributeIndexedValueType.DATETIME:
            if not isinstance(value, datetime):
                raise TypeError(f"search attribute {self.name} takes a datetime")
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        if t == SearchAttributeIndexedValueType.KEYWORD_LIST:
            return [str(v) for v in value]
        if t == SearchAttributeIndexedValueType.DOUBLE:
            return float(value)
        return value

    def from_wire(self, value: Any) -> Any:
        if self.indexed_value_type == SearchAttributeIndexedValueType.DATETIME:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if self.indexed_value_type == SearchAttributeIndexedValueType.KEYWORD_LIST:
            return list(value)
        if self.indexed_value_type == SearchAttributeIndexedValueType.DOUBLE:
            return float(value)
        return value


@dataclass(frozen=True)
class SearchAttributePair(Generic[SearchAttributeValueType]):
    """A key and its value."""

    key: SearchAttributeKey[SearchAttributeValueType]
    value: SearchAttributeValueType


@dataclass(frozen=True)
class SearchAttributeUpdate(Generic[SearchAttributeValueType]):
    """A key and its new value, ``None`` to remove it."""

    key: SearchAttributeKey[SearchAttributeValueType]
    value: SearchAttributeValueType | None


@dataclass(frozen=True)
class TypedSearchAttributes(Collection[SearchAttributePair[Any]]):
    """A run's custom search attributes, typed (temporalio's
    ``TypedSearchAttributes``): look a value up by its key."""

    search_attributes: Sequence[SearchAttributePair[Any]] = ()

    empty: ClassVar[TypedSearchAttributes]

    def __len__(self) -> int:
        return len(self.search_attributes)

    def __iter__(self) -> Iterator[SearchAttributePair[Any]]:
        return iter(self.search_attributes)

    def __contains__(self, key: object) -> bool:
        """A key (or its name) with a value here."""
        if isinstance(key, SearchAttributeKey):
            name: object = cast("SearchAttributeKey[Any]", key).name
        else:
            name = key
        return any(p.key.name == name for p in self.search_attributes)

    def __getitem__(
        self, key: SearchAttributeKey[SearchAttributeValueType]
    ) -> SearchAttributeValueType:
        for p in self.search_attributes:
            if p.key.name == key.name and p.key.indexed_value_type == key.indexed_value_type:
                return cast("SearchAttributeValueType", p.value)
        raise KeyError(key.name)

    def get(self, key: SearchAttributeKey[SearchAttributeValueType], default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def updated(
        self, *updates: SearchAttributePair[Any] | SearchAttributeUpdate[Any]
    ) -> TypedSearchAttributes:
        """A copy with each update applied (a ``None`` value removes the key)."""
        pairs = {p.key.name: p for p in self.search_attributes}
        for u in updates:
            if u.value is None:
                pairs.pop(u.key.name, None)
            else:
                pairs[u.key.name] = SearchAttributePair(u.key, u.value)
        return TypedSearchAttributes(list(pairs.values()))

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON by name, as starts send them."""
        return {p.key.name: p.key.to_wire(p.value) for p in self.search_attributes}

    @staticmethod
    def from_wire(typed: Mapping[str, Any]) -> TypedSearchAttributes:
        """From the server's typed form (``{"name": {"type": …, "value": …}}``)."""
        pairs: list[SearchAttributePair[Any]] = []
        for name, raw in typed.items():
            if not isinstance(raw, dict):
                continue
            v = cast("dict[str, Any]", raw)
            kind = SearchAttributeIndexedValueType.from_wire(str(v.get("type")))
            if kind is None:
                continue
            key: SearchAttributeKey[Any] = SearchAttributeKey(name, kind)
            pairs.append(SearchAttributePair(key, key.from_wire(v.get("value"))))
        return TypedSearchAttributes(pairs)


TypedSearchAttributes.empty = TypedSearchAttributes()
