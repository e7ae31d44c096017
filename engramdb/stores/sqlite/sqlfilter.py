"""Compile the filter AST (engramdb.filters) to a parameterised SQLite expression.

Every predicate is wrapped so it yields 0 or 1, never NULL: SQL's three-valued logic would
otherwise make ``NOT`` disagree with the documented semantics on missing fields.
"""

from __future__ import annotations

from typing import Any

from ...filters import FIELDS, Cond, Node, balanced, compile_sql, positive

COLUMN = {name: f"m.{name}" for name in FIELDS}
COLUMN["speaker"] = "m.speaker"

_SQL_OP = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def compile_filter(node: Node, params: list[Any]) -> str:
    return compile_sql(node, lambda cond: _leaf(cond, params), "0")


def _leaf(cond: Cond, params: list[Any]) -> str:
    if cond.op in ("ne", "nin"):
        return f"NOT coalesce({_leaf(positive(cond), params)}, 0)"
    if cond.is_metadata:
        return _metadata_leaf(cond, params)
    column = COLUMN[cond.field]
    if cond.op == "exists":
        return f"({column} IS NOT NULL) = {1 if cond.value else 0}"
    if cond.op == "in":
        params.extend(cond.value)
        return f"{column} IN ({', '.join('?' for _ in cond.value)})"
    if cond.op == "contains":
        params.append(cond.value)
        return f"instr({column}, ?) > 0"
    params.append(cond.value)
    return f"{column} {_SQL_OP[cond.op]} ?"


def _json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{key}"' for key in path)


def _typed_compare(path: str, op: str, value: Any, params: list[Any]) -> str:
    """``json value op value`` that only holds when the JSON type matches the value's type."""
    if isinstance(value, bool):
        params.append(path)
        return f"(json_type(m.metadata, ?) = '{'true' if value else 'false'}')"
    types = "('integer', 'real')" if isinstance(value, (int, float)) else "('text')"
    params.extend([path, path, value])
    return f"(json_type(m.metadata, ?) IN {types} AND json_extract(m.metadata, ?) {_SQL_OP[op]} ?)"


def _metadata_leaf(cond: Cond, params: list[Any]) -> str:
    path = _json_path(cond.path)
    if cond.op == "exists":
        params.append(path)
        return f"(json_type(m.metadata, ?) IS NOT NULL) = {1 if cond.value else 0}"
    if cond.op == "in":
        return balanced("OR", [_typed_compare(path, "eq", v, params) for v in cond.value])
    if cond.op == "contains":
        return _metadata_contains(path, cond.value, params)
    return _typed_compare(path, cond.op, cond.value, params)


def _metadata_contains(path: str, value: Any, params: list[Any]) -> str:
    if isinstance(value, bool):
        element = f"j.type = '{'true' if value else 'false'}'"
    elif isinstance(value, (int, float)):
        element = "j.type IN ('integer', 'real') AND j.value = ?"
    else:
        element = "j.type = 'text' AND j.value = ?"
    substring = ""
    if isinstance(value, str):
        params.extend([path, path, value])
        substring = "(json_type(m.metadata, ?) = 'text' AND instr(json_extract(m.metadata, ?), ?) > 0) OR "
    params.extend([path, path])
    if not isinstance(value, bool):
        params.append(value)
    return (
        f"({substring}(json_type(m.metadata, ?) = 'array' AND EXISTS "
        f"(SELECT 1 FROM json_each(m.metadata, ?) AS j WHERE {element})))"
    )
