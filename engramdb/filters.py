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

Limits, so no filter can reach a database limit (SQLite's expression depth, its bound
parameters) and come back as a store failure that a client would retry: at most
``MAX_DEPTH`` levels of AND/OR/NOT, ``MAX_CLAUSES`` conditions in all (each value of an
``in``/``nin`` list counts as one), ``MAX_IN_VALUES`` values in one list, and integers that
fit in 64 bits (``MIN_INTEGER``..``MAX_INTEGER``, what SQLite stores).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Union

from .errors import ValidationError
from .models import MEMORY_KINDS, as_utc, storable

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
MAX_CLAUSES = 1000
MAX_IN_VALUES = 1000
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
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
    return _parse_object(spec, 0, _Budget())


class _Budget:
    """Conditions still allowed, counted while parsing so a huge filter stops at the limit."""

    def __init__(self) -> None:
        self.left = MAX_CLAUSES

    def take(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise ValidationError(
                f"filter has more than {MAX_CLAUSES} conditions (each value of an in/nin list counts as one)"
            )


def _parse_object(spec: Any, depth: int, budget: _Budget) -> Node:
    if depth > MAX_DEPTH:
        raise ValidationError(f"filter nests deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, dict) or not spec:
        raise ValidationError("each filter clause must be a non-empty JSON object")
    nodes: list[Node] = []
    for key, value in spec.items():
        if key in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"{key} takes a non-empty list of clauses")
            if len(value) > budget.left:  # each clause holds a condition or more: refuse before walking them
                budget.take(len(value))
            children = tuple(_parse_object(v, depth + 1, budget) for v in value)
            nodes.append(And(children) if key == "AND" else Or(children))
        elif key == "NOT":
            nodes.append(Not(_parse_object(value, depth + 1, budget)))
        else:
            for cond in _parse_field(key, value):
                budget.take(len(cond.value) if cond.op in ("in", "nin") else 1)
                nodes.append(cond)
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _parse_field(name: str, spec: Any) -> list[Cond]:
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
        if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
            raise ValidationError(f"'{op}' on {name!r} takes a non-empty list of at most {MAX_IN_VALUES} values")
        return Cond(name, op, tuple(_check_value(name, path, op, v) for v in value), path)
    return Cond(name, op, _check_value(name, path, op, value), path)


def _check_value(name: str, path: tuple[str, ...], op: str, value: Any) -> Scalar:
    if isinstance(value, str) and not storable(value):
        raise ValidationError(f"filter value for {name!r} is not valid Unicode or contains NUL")
    if path:
        if not isinstance(value, (str, int, float, bool)):
            raise ValidationError(f"metadata filter {name!r} takes a string, number or boolean")
        if isinstance(value, bool) and op in ORDERED_OPS:
            raise ValidationError(f"'{op}' cannot order booleans ({name!r})")
        return value if isinstance(value, (str, bool)) else _number(name, value)
    ftype = FIELDS[name]
    if op == "contains" and ftype != "str":
        raise ValidationError(f"'contains' applies to text fields, not {name!r}")
    if ftype == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(f"field {name!r} takes a number")
        return _number(name, value)
    if ftype == "datetime":
        return _datetime_value(name, value)
    if not isinstance(value, str):
        raise ValidationError(f"field {name!r} takes a string")
    if name == "kind" and op in ("eq", "ne", "in", "nin") and value not in MEMORY_KINDS:
        raise ValidationError(f"unknown kind {value!r}: use one of {', '.join(MEMORY_KINDS)}")
    return value


def _number(name: str, value: int | float) -> int | float:
    """A finite number; an integer must fit in 64 bits, as SQLite binds and stores them."""
    if isinstance(value, int):
        if not MIN_INTEGER <= value <= MAX_INTEGER:
            raise ValidationError(f"integers in filters must fit in 64 bits, -2^63 to 2^63 - 1 ({name!r})")
    elif not math.isfinite(value):
        raise ValidationError(f"filter value for {name!r} must be a finite number")
    return value


def _datetime_value(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        try:
            return format_datetime(value)
        except OverflowError:  # year 1 at +01:00 has no UTC instant
            pass
    elif isinstance(value, str):
        try:
            return format_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except (ValueError, OverflowError):
            pass
    raise ValidationError(f"field {name!r} takes an ISO 8601 datetime, got {value!r}")


def compile_sql(node: Node, leaf: Callable[[Cond], str], false: str, *, negated: bool = False) -> str:
    """The boolean skeleton of a filter in SQL, every leaf under a ``NOT`` made two-valued
    (NULL → ``false``).

    SQL's three-valued logic would otherwise make ``NOT`` disagree with the documented
    semantics on missing fields. Outside a ``NOT`` a NULL leaf already selects nothing, as
    ``false`` would, so the leaf stays bare there: a bare ``slot = ?`` can use an index, a
    wrapped one made a derived fact's slot lookup read every memory of its user (50 ms in a
    100k scope). Each store compiles the leaves in its own dialect.
    """
    if isinstance(node, (And, Or)):
        parts = [compile_sql(c, leaf, false, negated=negated) for c in node.children]
        return balanced("AND" if isinstance(node, And) else "OR", parts)
    if isinstance(node, Not):
        return f"(NOT {compile_sql(node.child, leaf, false, negated=True)})"
    return f"coalesce({leaf(node)}, {false})" if negated else f"({leaf(node)})"


def balanced(operator: str, terms: Sequence[str]) -> str:
    """``a OR b OR c ...`` as a balanced tree of parentheses.

    SQLite parses a flat chain into a tree as deep as the chain is long and refuses one deeper
    than 1000; balanced, ``MAX_CLAUSES`` terms nest about ten levels.
    """
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({balanced(operator, terms[:middle])} {operator} {balanced(operator, terms[middle:])})"


def positive(cond: Cond) -> Cond:
    """``ne``/``nin`` as the ``eq``/``in`` they negate."""
    return Cond(cond.field, "eq" if cond.op == "ne" else "in", cond.value, cond.path)


EPISODES = parse_filter({"kind": "episode"})
"""The messages themselves (kind ``episode``): what a session's recent turns are read from."""

NOT_EPISODES = parse_filter({"kind": {"ne": "episode"}})
"""Everything but the messages: the memories a derived one is reconciled with. The vector
index knows which rows are messages, so a dense search with exactly this filter reads no row."""
