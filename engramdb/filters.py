"""One filter language for search and get_all, parsed once into a small AST.

Syntax (a JSON object)::

    {"kind": "fact"}                                    # eq shorthand
    {"metadata.topic": {"in": ["food", "travel"]}}
    {"importance": {"gte": 0.5, "lt": 0.9}}             # several operators are ANDed
    {"AND": [...]}, {"OR": [...]}, {"NOT": {...}}       # combinators
    {"created_at": {"gte": "2024-05-01T00:00:00Z"}}

Operators: eq, ne, gt, gte, lt, lte, in, nin, contains, exists. Fields are the first-class
columns in ``FIELDS`` or ``metadata.<key>[.<key>...]``. Anything else is a ValidationError —
a typo never silently matches everything.

Semantics, identical on every backend: comparisons only hold between values of the same
type (a string never equals a number; booleans are not numbers); ``ne`` and ``nin`` hold
when the field is missing; ``contains`` is substring on strings and membership on lists;
``exists`` means the field is present (not null for columns).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Union

from .errors import ValidationError
from .models import MEMORY_KINDS, as_utc, is_unicode

FieldType = Literal["str", "number", "datetime"]

FIELDS: dict[str, FieldType] = {
    "id": "str",
    "kind": "str",
    "user_id": "str",
    "agent_id": "str",
    "session_id": "str",
    "role": "str",
    "speaker": "str",
    "state": "str",
    "subject": "str",
    "slot": "str",
    "hash": "str",
    "importance": "number",
    "access_count": "number",
    "created_at": "datetime",
    "updated_at": "datetime",
    "occurred_at": "datetime",
    "valid_from": "datetime",
    "valid_to": "datetime",
    "expires_at": "datetime",
    "last_accessed_at": "datetime",
}
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "exists")
ORDERED_OPS = ("gt", "gte", "lt", "lte")
_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_DEPTH = 16
Scalar = Union[str, int, float, bool]


@dataclass(frozen=True)
class Cond:
    """A leaf: ``field op value``. ``path`` is set for metadata fields."""

    field: str
    op: str
    value: Any
    path: tuple[str, ...] = ()

    @property
    def is_metadata(self) -> bool:
        return bool(self.path)


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Union[Cond, And, Or, Not]


def format_datetime(value: datetime) -> str:
    """The one storage format for datetimes: fixed-width UTC ISO 8601, so text order is time order."""
    # isoformat, not strftime: strftime("%Y") drops the zero padding of years before 1000.
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_filter(spec: dict[str, Any] | None) -> Node | None:
    """Parse a filter object into an AST; ``None`` or ``{}`` means no filter.

    Raises:
        ValidationError: on an unknown field or operator, or a value of the wrong type.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValidationError(f"filters must be a JSON object, got {type(spec).__name__}")
    if not spec:
        return None
    return _parse_object(spec, 0)


def _parse_object(spec: Any, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise ValidationError(f"filter nests deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, dict) or not spec:
        raise ValidationError("each filter clause must be a non-empty JSON object")
    nodes: list[Node] = []
    for key, value in spec.items():
        if key in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"{key} takes a non-empty list of clauses")
            children = tuple(_parse_object(v, depth + 1) for v in value)
            nodes.append(And(children) if key == "AND" else Or(children))
        elif key == "NOT":
            nodes.append(Not(_parse_object(value, depth + 1)))
        else:
            nodes.extend(_parse_field(key, value))
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _parse_field(name: str, spec: Any) -> list[Node]:
    path = _metadata_path(name)
    if not path and name not in FIELDS:
        known = ", ".join(sorted(FIELDS))
        raise ValidationError(f"unknown filter field {name!r}: use one of {known}, metadata.<key>, AND, OR or NOT")
    if not isinstance(spec, dict):
        return [_cond(name, path, "eq", spec)]
    if not spec:
        raise ValidationError(f"field {name!r} has an empty operator object")
    return [_cond(name, path, op, value) for op, value in spec.items()]


def _metadata_path(name: str) -> tuple[str, ...]:
    if not name.startswith("metadata."):
        return ()
    keys = tuple(name.split(".")[1:])
    if not keys or not all(_KEY.match(k) for k in keys):
        raise ValidationError(f"bad metadata field {name!r}: keys are 1-64 characters of letters, digits, _ or -")
    return keys


def _cond(name: str, path: tuple[str, ...], op: str, value: Any) -> Cond:
    if op not in OPERATORS:
        raise ValidationError(f"unknown filter operator {op!r} on {name!r}: use one of {', '.join(OPERATORS)}")
    if op == "exists":
        if not isinstance(value, bool):
            raise ValidationError(f"'exists' on {name!r} takes true or false")
        return Cond(name, op, value, path)
    if op in ("in", "nin"):
        if not isinstance(value, list) or not value or len(value) > 1000:
            raise ValidationError(f"'{op}' on {name!r} takes a non-empty list of at most 1000 values")
        return Cond(name, op, tuple(_check_value(name, path, op, v) for v in value), path)
    return Cond(name, op, _check_value(name, path, op, value), path)


def _check_value(name: str, path: tuple[str, ...], op: str, value: Any) -> Scalar:
    if isinstance(value, str) and (not is_unicode(value) or "\x00" in value):
        raise ValidationError(f"filter value for {name!r} is not valid Unicode or contains NUL")
    if path:
        if not isinstance(value, (str, int, float, bool)) or value != value:  # NaN check
            raise ValidationError(f"metadata filter {name!r} takes a string, number or boolean")
        if isinstance(value, bool) and op in ORDERED_OPS:
            raise ValidationError(f"'{op}' cannot order booleans ({name!r})")
        return value
    ftype = FIELDS[name]
    if op == "contains" and ftype != "str":
        raise ValidationError(f"'contains' applies to text fields, not {name!r}")
    if ftype == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValidationError(f"field {name!r} takes a number")
        return value
    if ftype == "datetime":
        return _datetime_value(name, value)
    if not isinstance(value, str):
        raise ValidationError(f"field {name!r} takes a string")
    if name == "kind" and op in ("eq", "ne", "in", "nin") and value not in MEMORY_KINDS:
        raise ValidationError(f"unknown kind {value!r}: use one of {', '.join(MEMORY_KINDS)}")
    return value


def _datetime_value(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, str):
        try:
            return format_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValidationError(f"field {name!r} takes an ISO 8601 datetime, got {value!r}")


def compile_sql(node: Node, leaf: Callable[[Cond], str], false: str) -> str:
    """The boolean skeleton of a filter in SQL, every leaf made two-valued (NULL → ``false``).

    SQL's three-valued logic would otherwise make ``NOT`` disagree with the documented
    semantics on missing fields. Each store compiles the leaves in its own dialect.
    """
    if isinstance(node, And):
        return "(" + " AND ".join(compile_sql(c, leaf, false) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(compile_sql(c, leaf, false) for c in node.children) + ")"
    if isinstance(node, Not):
        return f"(NOT {compile_sql(node.child, leaf, false)})"
    return f"coalesce({leaf(node)}, {false})"


def positive(cond: Cond) -> Cond:
    """``ne``/``nin`` as the ``eq``/``in`` they negate."""
    return Cond(cond.field, "eq" if cond.op == "ne" else "in", cond.value, cond.path)
