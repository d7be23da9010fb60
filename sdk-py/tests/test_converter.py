"""JSON conversion by type hints, and failures to and from exceptions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, Literal, NamedTuple, Optional, TypedDict, Union

import pydantic
import pytest

from baton.converter import (
    decode_args,
    encode_args,
    error_to_failure,
    failure_to_error,
    from_json,
    to_json,
    type_hints_of,
)
from baton.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    street: str
    zip: str | None = None


@dataclass
class Customer:
    name: str
    color: Color
    joined: datetime
    addresses: list[Address] = field(default_factory=list)
    tags: dict[str, Level] = field(default_factory=dict)
    score: float = 0.0


class Point(NamedTuple):
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


class Model(pydantic.BaseModel):
    name: str
    when: datetime
    tags: list[str] = []


WHEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (None, type(None)),
        (True, bool),
        (3, int),
        (2.5, float),
        ("s", str),
        (Color.BLUE, Color),
        (Level.HIGH, Level),
        (WHEN, datetime),
        (date(2024, 1, 2), date),
        (timedelta(seconds=90.5), timedelta),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID),
        (Decimal("10.25"), Decimal),
        ([1, 2, 3], list[int]),
        ((1, "a"), tuple[int, str]),
        ((1, 2, 3), tuple[int, ...]),
        ({1, 2}, set[int]),
        ({"a": Color.RED}, dict[str, Color]),
        ({Level.LOW: "x"}, dict[Level, str]),
        (Address("Main St"), Address),
        (
            Customer(
                "Ada", Color.RED, WHEN, [Address("1 Loop", "94000")], {"vip": Level.HIGH}, 1.5
            ),
            Customer,
        ),
        (Point(1, 2), Point),
        ({"title": "Heat", "year": 1995}, Movie),
        (Model(name="m", when=WHEN, tags=["a"]), Model),
        (Address("x"), Optional[Address]),
        (None, Optional[Address]),
        (5, Union[str, int]),
        ("on", Literal["on", "off"]),
    ],
)
def test_values_round_trip_through_json(value: Any, hint: Any) -> None:
    import json

    wire = json.loads(json.dumps(to_json(value)))
    assert from_json(wire, hint) == value


def test_shapes_on_the_wire() -> None:
    c = Customer("Ada", Color.RED, WHEN, [Address("1 Loop")], {"vip": Level.HIGH})
    assert to_json(c) == {
        "name": "Ada",
        "color": "red",
        "joined": "2024-05-06T07:08:09.123000+00:00",
        "addresses": [{"street": "1 Loop", "zip": None}],
        "tags": {"vip": 2},
        "score": 0.0,
    }
    assert from_json("2024-05-06T07:08:09.123Z", datetime) == WHEN


def test_mismatches_raise() -> None:
    for value, hint in [
        ("x", int),
        (1, str),
        ({"street": 1}, Address),
        ("green", Color),
        ([1], dict[str, int]),
        ({"title": "x"}, Movie),
        (True, int),
    ]:
        with pytest.raises((TypeError, ValueError, KeyError)):
            from_json(value, hint)
    with pytest.raises(TypeError):
        to_json(object())
    with pytest.raises(TypeError):
        to_json(b"bytes")


def test_untyped_values_pass_through() -> None:
    assert from_json({"a": [1]}, Any) == {"a": [1]}
    assert from_json({"a": [1]}, None) == {"a": [1]}


def test_arguments_travel_as_one_array() -> None:
    def fn(a: Address, n: int, *rest: Any) -> Customer: ...

    hints, ret = type_hints_of(fn)
    assert hints == [Address, int] and ret is Customer
    wire = encode_args([Address("x"), 2])
    assert wire == [{"street": "x", "zip": None}, 2]
    assert decode_args(wire, hints) == [Address("x"), 2]
    # A non-array input is the single argument; null is no argument.
    assert decode_args({"street": "y"}, hints) == [Address("y")]
    assert decode_args(None, hints) == []

    class W:
        def run(self, x: int) -> None: ...

    assert type_hints_of(W.run)[0] == [int]


def test_application_error_round_trips_as_failure() -> None:
    try:
        try:
            raise ConnectionError("socket closed")
        except ConnectionError as inner:
            raise ApplicationError(
                "charge failed", {"id": 1}, "two", type="Payment", non_retryable=True
            ) from inner
    except ApplicationError as err:
        f = error_to_failure(err)
    assert f["message"] == "charge failed"
    assert f["type"] == "Payment"
    assert f["non_retryable"] is True
    assert f["details"] == [{"id": 1}, "two"]
    assert "stack_trace" in f
    assert f["cause"]["type"] == "ConnectionError"
    back = failure_to_error(f)
    assert isinstance(back, ApplicationError)
    assert (back.message, back.type, back.non_retryable, list(back.details)) == (
        "charge failed",
        "Payment",
        True,
        [{"id": 1}, "two"],
    )
    assert isinstance(back.__cause__, ApplicationError)
    assert back.__cause__.type == "ConnectionError"
    assert back.failure == f


def test_plain_exceptions_are_retryable_and_typed_by_class() -> None:
    f = error_to_failure(KeyError("k"))
    assert f["type"] == "KeyError" and "non_retryable" not in f


def test_server_failures_become_typed_errors() -> None:
    timeout = failure_to_error(
        {
            "message": "activity heartbeat timeout",
            "type": "TimeoutError",
            "timeout_type": "HEARTBEAT",
            "cause": {"message": "boom", "type": "IOError"},
        }
    )
    assert isinstance(timeout, TimeoutError) and timeout.type == TimeoutType.HEARTBEAT
    assert isinstance(timeout.__cause__, ApplicationError)
    act = ActivityError(
        "Activity task failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="",
        activity_type="pay",
        activity_id="1",
        retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    act.__cause__ = CancelledError("stop", "d")
    back = failure_to_error(error_to_failure(act))
    assert isinstance(back, ActivityError)
    assert (back.activity_type, back.activity_id, back.scheduled_event_id, back.retry_state) == (
        "pay",
        "1",
        5,
        RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    assert isinstance(back.cause, CancelledError) and list(back.cause.details) == ["d"]
