"""Compile the filter AST (engramdb.filters) to a parameterised PostgreSQL expression.

The semantics are the SQLite compiler's, leaf for leaf: every predicate yields true or false,
never NULL (so ``NOT`` means "does not match"); a metadata comparison only holds when the JSON
value has the type of the value compared; strings compare in byte order (collation "C").
"""

from __future__ import annotations

from typing import Any

from ...filters import FIELDS, Cond, Node, balanced, compile_sql, positive

_SQL_OP = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_CAST = {"str": "", "number": "", "datetime": "::timestamptz"}


def compile_filter(node: Node, params: list[Any]) -> str:
    return compile_sql(node, lambda cond: _leaf(cond, params), "false")


def _leaf(cond: Cond, params: list[Any]) -> str:
    if cond.op in ("ne", "nin"):
        return f"NOT coalesce({_leaf(positive(cond), params)}, false)"
    if cond.is_metadata:
        return _metadata_leaf(cond, params)
    column = f"m.{cond.field}"
    cast = _CAST[FIELDS[cond.field]]
    if cond.op == "exists":
        return f"({column} IS NOT NULL) = {'true' if cond.value else 'false'}"
    if cond.op == "in":
        params.extend(cond.value)
        return f"{column} IN ({', '.join('%s' + cast for _ in cond.value)})"
    if cond.op == "contains":
        params.append(cond.value)
        return f"strpos({column}, %s) > 0"
    params.append(cond.value)
    return f"{column} {_SQL_OP[cond.op]} %s{cast}"


def _typed_compare(path: list[str], op: str, value: Any, params: list[Any]) -> str:
    """``json value op value`` that only holds when the JSON type matches the value's type."""
    if isinstance(value, bool):
        params.append(path)
        return f"(m.metadata #> %s::text[]) = '{'true' if value else 'false'}'::jsonb"
    if isinstance(value, (int, float)):
        params.extend([path, path, value])
        return (
            "(CASE WHEN jsonb_typeof(m.metadata #> %s::text[]) = 'number' "
            f"THEN (m.metadata #> %s::text[])::numeric {_SQL_OP[op]} %s::numeric ELSE false END)"
        )
    params.extend([path, path, value])
    return (
        "(jsonb_typeof(m.metadata #> %s::text[]) = 'string' "
        f'AND (m.metadata #>> %s::text[]) COLLATE "C" {_SQL_OP[op]} %s)'
    )


def _metadata_leaf(cond: Cond, params: list[Any]) -> str:
    path = list(cond.path)
    if cond.op == "exists":
        params.append(path)
        return f"(m.metadata #> %s::text[] IS NOT NULL) = {'true' if cond.value else 'false'}"
    if cond.op == "in":
        return balanced("OR", [_typed_compare(path, "eq", v, params) for v in cond.value])
    if cond.op == "contains":
        return _metadata_contains(path, cond.value, params)
    return _typed_compare(path, cond.op, cond.value, params)


def _metadata_contains(path: list[str], value: Any, params: list[Any]) -> str:
    substring = ""
    if isinstance(value, str):
        params.extend([path, path, value])
        substring = (
            "(jsonb_typeof(m.metadata #> %s::text[]) = 'string' AND strpos(m.metadata #>> %s::text[], %s) > 0) OR "
        )
    if isinstance(value, bool):
        element = f"j.value = '{'true' if value else 'false'}'::jsonb"
    elif isinstance(value, (int, float)):
        element = "jsonb_typeof(j.value) = 'number' AND (j.value)::numeric = %s::numeric"
    else:
        element = "jsonb_typeof(j.value) = 'string' AND j.value #>> '{}' = %s"
    params.extend([path, path])
    if not isinstance(value, bool):
        params.append(value)
    return (  # CASE, not AND: jsonb_array_elements must never see a non-array
        f"({substring}(CASE WHEN jsonb_typeof(m.metadata #> %s::text[]) = 'array' THEN EXISTS "
        f"(SELECT 1 FROM jsonb_array_elements(m.metadata #> %s::text[]) AS j WHERE {element}) ELSE false END))"
    )
