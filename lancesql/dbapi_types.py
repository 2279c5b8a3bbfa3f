"""DB-API type objects and constructors (PEP 249), over Arrow types.

``cursor.description``'s type code is the column's Arrow type; it compares equal to
the PEP 249 type objects (``STRING``, ``BINARY``, ``NUMBER``, ``DATETIME``, ``ROWID``)
of its family, so ``description[0][1] == lancesql.NUMBER`` works as PEP 249 says.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.types as pat


class DBAPITypeObject:
    """A PEP 249 type object: equal to every Arrow type of its family."""

    def __init__(self, name: str, test: Callable[[pa.DataType], bool]):
        self.name = name
        self._test = test

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TypeCode):
            other = other.arrow_type
        if isinstance(other, pa.DataType):
            return self._test(other)
        return other is self

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name


STRING = DBAPITypeObject(
    "STRING", lambda t: pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t)
)
BINARY = DBAPITypeObject(
    "BINARY",
    lambda t: (
        pat.is_binary(t) or pat.is_large_binary(t) or pat.is_fixed_size_binary(t) or pat.is_binary_view(t)
    ),
)
NUMBER = DBAPITypeObject(
    "NUMBER", lambda t: pat.is_integer(t) or pat.is_floating(t) or pat.is_decimal(t) or pat.is_boolean(t)
)
DATETIME = DBAPITypeObject("DATETIME", lambda t: pat.is_temporal(t))
ROWID = DBAPITypeObject("ROWID", lambda t: pat.is_uint64(t))


class TypeCode:
    """``description``'s type code: the Arrow type, comparing equal to PEP 249's type objects."""

    def __init__(self, arrow_type: pa.DataType):
        self.arrow_type = arrow_type

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other == self.arrow_type
        if isinstance(other, TypeCode):
            return other.arrow_type == self.arrow_type
        if isinstance(other, pa.DataType):
            return other == self.arrow_type
        if isinstance(other, str):
            return other == str(self.arrow_type)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self.arrow_type))

    def __repr__(self) -> str:
        return str(self.arrow_type)

    __str__ = __repr__


def type_code(arrow_type: pa.DataType) -> TypeCode:
    """The type code of a column of ``arrow_type``."""
    return TypeCode(arrow_type)


def Date(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, day)


def Time(hour: int, minute: int, second: int) -> dt.time:
    return dt.time(hour, minute, second)


def Timestamp(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second)


def DateFromTicks(ticks: float) -> dt.date:
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> dt.time:
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> dt.datetime:
    return Timestamp(*time.localtime(ticks)[:6])


def Binary(value: Any) -> bytes:
    return bytes(value)
