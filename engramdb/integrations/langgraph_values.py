"""What engramdb keeps of a LangGraph item's value besides the value: its texts and a filter index.

- **Texts** (``item_texts``): an item is found by the texts at its indexed paths (LangGraph's
  path syntax: ``"text"``, ``"a.b"``, ``"msgs[*].content"``), each its own vector. The whole
  value (``"$"``, the default) is read as text (``value_text``), not as JSON: it is what
  engramdb embeds and what its own search and context show.
- **Filter index** (``filter_index``): LangGraph filters compare values at dotted paths whose
  keys may be any string, hold lists and objects compared whole, and NaN or NUL. engramdb's
  filter language addresses metadata keys of letters, digits, ``_`` and ``-`` and compares
  scalars. So every path of the value gets a slot named by a hash of the path: ``s…`` holds
  the scalar there (a string cut to ``LONG + 1`` characters, enough to order against any
  filter string up to ``LONG``), ``h…`` a digest of a longer string, ``j…`` a digest of the
  canonical JSON of a list or an object. ``value_filter`` turns a LangGraph filter into
  conditions on those slots, so the store applies it in its own query, before scoring.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from langgraph.store.base import get_text_at_path

from ..errors import ValidationError
from ..filters import MAX_INTEGER, MIN_INTEGER

INDEX = "lg_f"  # the metadata key of the filter index
LONG = 256  # strings longer than this are compared for equality by digest
NOTHING: dict[str, Any] = {"metadata.lg_key": {"exists": False}}  # every item has a key: matches none
_OPS = {"$eq": "eq", "$ne": "ne", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_BIGGEST = 1.7976931348623157e308  # the largest finite float: "< inf" is "<= this" among stored numbers


def item_texts(value: Mapping[str, Any], paths: list[str]) -> list[str]:
    """The texts an item is found by: those at ``paths`` (``"$"`` the whole value), non-empty, once each."""
    found: list[str] = []
    for path in paths:
        texts = [value_text(value)] if path == "$" else get_text_at_path(value, path)
        found.extend(t.strip() for t in texts if isinstance(t, str) and t.strip())
    return list(dict.fromkeys(found))


def value_text(value: Mapping[str, Any]) -> str:
    """The value as a reader sees it: a lone string as itself, else one ``path: value`` line per leaf.

    ``{"text": "Alice is vegetarian"}`` is ``Alice is vegetarian``; ``{"name": "Bob", "age": 30}``
    is ``name: Bob`` and ``age: 30``. JSON's quotes and braces would only dilute the vector.
    """
    leaves = list(_leaves(value, ""))
    if len(leaves) == 1 and isinstance(_only_leaf(value), str):
        return leaves[0][1]
    return "\n".join(f"{path}: {text}" for path, text in leaves)


def _only_leaf(value: Any) -> Any:
    while isinstance(value, Mapping) and len(value) == 1:
        value = next(iter(value.values()))
    return value


def _leaves(obj: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(obj, Mapping):
        for key, child in obj.items():
            yield from _leaves(child, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, (list, tuple)):
        if all(_scalar(item) for item in obj):
            if obj:
                yield path, ", ".join(_show(item) for item in obj)
        else:
            for item in obj:
                yield from _leaves(item, path)
    elif _scalar(obj):
        yield path, _show(obj)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- the filter index ---------------------------------------------------------------------


def filter_index(value: Mapping[str, Any]) -> dict[str, Any]:
    """A slot for every path of ``value`` (objects walked, lists compared whole), as the module says."""
    slots: dict[str, Any] = {}
    pending: list[tuple[tuple[str, ...], Any]] = [((str(k),), v) for k, v in value.items()]
    while pending:
        path, item = pending.pop()
        if isinstance(item, (Mapping, list, tuple)):
            slots[_slot("j", path)] = _digest(item)
            if isinstance(item, Mapping):
                pending.extend(((*path, str(k)), v) for k, v in item.items())
        elif isinstance(item, str):
            slots[_slot("s", path)] = item[: LONG + 1]
            if len(item) > LONG:
                slots[_slot("h", path)] = _digest(item)
        elif isinstance(item, (bool, float)):
            slots[_slot("s", path)] = item
        elif isinstance(item, int):
            slots[_slot("s", path)] = item if MIN_INTEGER <= item <= MAX_INTEGER else float(item)
    return slots


def _slot(kind: str, path: tuple[str, ...]) -> str:
    return kind + hashlib.blake2b(json.dumps(path).encode(), digest_size=8).hexdigest()


def _digest(value: Any) -> str:
    canonical = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _canonical(value: Any) -> Any:
    """1.0 and 1 are equal in a filter, as in Python: integral floats are written as integers."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- filters ------------------------------------------------------------------------------


def value_filter(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A LangGraph filter as engramdb conditions on the filter index, to be ANDed.

    ``{"color": "red"}``, ``{"score": {"$gt": 3}}``, ``{"tags": ["a", "b"]}`` (the whole list),
    ``{"user.name": "x"}`` and ``{"user": {"name": "x"}}`` (a nested key). ``$eq`` and ``$ne``
    compare any JSON value; the ordered operators numbers, or strings up to ``LONG`` characters.
    NaN equals nothing; a string with NUL is never stored, so it too equals nothing.

    Raises:
        ValidationError: an unknown operator, or an ordered comparison of something else.
    """
    if not isinstance(spec, Mapping):
        raise ValidationError(f"a filter is an object of field: value, not {type(spec).__name__}")
    clauses: list[dict[str, Any]] = []
    for key, condition in spec.items():
        clauses.extend(_conditions(tuple(str(key).split(".")), condition))
    return clauses


def _conditions(path: tuple[str, ...], condition: Any) -> list[dict[str, Any]]:
    if isinstance(condition, Mapping) and any(str(k).startswith("$") for k in condition):
        out: list[dict[str, Any]] = []
        for operator, operand in condition.items():
            if operator not in _OPS:
                raise ValidationError(f"unknown filter operator {operator!r}: use one of {', '.join(_OPS)}")
            out.extend(_leaf(path, _OPS[operator], operand))
        return out
    if isinstance(condition, Mapping) and condition:  # a nested object: each of its keys must match
        return [c for key, sub in condition.items() for c in _conditions((*path, str(key)), sub)]
    return _leaf(path, "eq", condition)


def _leaf(path: tuple[str, ...], op: str, operand: Any) -> list[dict[str, Any]]:
    """One comparison: ``[]`` when it holds for every item, ``[NOTHING]`` when for none."""
    if operand is None:  # null: the path holds nothing (LangGraph reads a missing key as None)
        if op not in ("eq", "ne"):
            raise ValidationError(f"'${op}' cannot compare with null")
        absent = {"AND": [{_field("s", path): {"exists": False}}, {_field("j", path): {"exists": False}}]}
        return [absent if op == "eq" else {"NOT": absent}]
    if isinstance(operand, (Mapping, list, tuple)):
        if op not in ("eq", "ne"):
            raise ValidationError(f"'${op}' compares numbers or strings, not a list or an object")
        return [{_field("j", path): {op: _digest(operand)}}]
    if isinstance(operand, bool):
        if op not in ("eq", "ne"):
            raise ValidationError(f"'${op}' cannot order booleans")
        return [{_field("s", path): {op: operand}}]
    if isinstance(operand, (int, float)):
        return _number(path, op, operand)
    if isinstance(operand, str):
        return _string(path, op, operand)
    raise ValidationError(f"a filter compares JSON values, not {type(operand).__name__}")


def _number(path: tuple[str, ...], op: str, operand: float) -> list[dict[str, Any]]:
    """Values stored are finite: NaN matches nothing (but ``$ne``), an infinity bounds all or none."""
    field = _field("s", path)
    if isinstance(operand, int) and MIN_INTEGER <= operand <= MAX_INTEGER:
        return [{field: {op: operand}}]
    value = float(operand)
    if math.isfinite(value):
        return [{field: {op: value}}]
    if math.isnan(value) or op in ("eq", "ne"):
        return [] if op == "ne" else [NOTHING]
    above = value > 0  # +inf: every number is below it; -inf: every number is above it
    if (op in ("lt", "lte")) == above:
        return [{field: {"lte" if above else "gte": _BIGGEST if above else -_BIGGEST}}]
    return [NOTHING]


def _string(path: tuple[str, ...], op: str, operand: str) -> list[dict[str, Any]]:
    if "\x00" in operand or not _unicode(operand):  # never stored: no value holds it
        return [] if op == "ne" else [NOTHING]
    if len(operand) <= LONG:
        return [{_field("s", path): {op: operand}}]
    if op not in ("eq", "ne"):
        raise ValidationError(f"'${op}' orders strings of at most {LONG} characters")
    return [{_field("h", path): {op: _digest(operand)}}]


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _field(kind: str, path: tuple[str, ...]) -> str:
    return f"metadata.{INDEX}.{_slot(kind, path)}"


__all__ = ["INDEX", "LONG", "filter_index", "item_texts", "value_filter", "value_text"]
