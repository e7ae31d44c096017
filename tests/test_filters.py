"""The filter language: SQL compiled by the store agrees with an independent Python reference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engramdb import Memory, ValidationError
from engramdb.filters import parse_filter

KEYS = ["a", "b", "tags"]
SCALARS = st.one_of(
    st.sampled_from(["x", "y", "xy", "Z", ""]),
    st.integers(-3, 3),
    st.sampled_from([0.5, 2.0, -1.5]),
    st.booleans(),
)
META_VALUES = st.one_of(SCALARS, st.lists(st.one_of(st.sampled_from(["x", "y"]), st.integers(0, 2)), max_size=3))


def _same_type(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return isinstance(a, str) and isinstance(b, str)


def reference(node: dict[str, Any], record: dict[str, Any]) -> bool:
    """The documented semantics, written independently of the SQL compiler."""
    results = []
    for key, spec in node.items():
        if key == "AND":
            results.append(all(reference(c, record) for c in spec))
        elif key == "OR":
            results.append(any(reference(c, record) for c in spec))
        elif key == "NOT":
            results.append(not reference(spec, record))
        else:
            ops = spec if isinstance(spec, dict) else {"eq": spec}
            results.append(all(_op(record, key, op, v) for op, v in ops.items()))
    return all(results)


def _lookup(record: dict[str, Any], key: str) -> tuple[bool, Any]:
    if key.startswith("metadata."):
        meta = record["metadata"]
        name = key.split(".", 1)[1]
        return (name in meta, meta.get(name))
    value = record[key]
    return (value is not None, value)


def _op(record: dict[str, Any], key: str, op: str, value: Any) -> bool:
    present, actual = _lookup(record, key)
    if op == "exists":
        return present == value
    if op == "ne":
        return not _op(record, key, "eq", value)
    if op == "nin":
        return not _op(record, key, "in", value)
    if op == "in":
        return any(_op(record, key, "eq", v) for v in value)
    if not present or (isinstance(actual, (list, dict)) and op != "contains"):
        return False
    if op == "contains":
        if isinstance(actual, str) and isinstance(value, str):
            return value in actual
        return isinstance(actual, list) and any(_same_type(a, value) and a == value for a in actual)
    if not _same_type(actual, value):
        return False
    return {"eq": actual == value, "gt": actual > value, "gte": actual >= value,
            "lt": actual < value, "lte": actual <= value}[op]  # fmt: skip


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    meta_key = st.sampled_from([f"metadata.{k}" for k in KEYS])
    meta = st.one_of(
        st.tuples(meta_key, st.sampled_from(["eq", "ne", "contains"]), SCALARS),
        st.tuples(
            meta_key, st.sampled_from(["gt", "gte", "lt", "lte"]), SCALARS.filter(lambda v: not isinstance(v, bool))
        ),
        st.tuples(meta_key, st.sampled_from(["in", "nin"]), st.lists(SCALARS, min_size=1, max_size=3)),
        st.tuples(meta_key, st.just("exists"), st.booleans()),
    )
    kind = st.tuples(st.just("kind"), st.sampled_from(["eq", "ne"]), st.sampled_from(["fact", "episode"]))
    imp = st.tuples(
        st.just("importance"), st.sampled_from(["gt", "gte", "lt", "lte", "eq"]), st.sampled_from([0.2, 0.5, 0.8])
    )
    speaker = st.one_of(
        st.tuples(
            st.just("speaker"), st.sampled_from(["eq", "ne", "contains"]), st.sampled_from(["Al", "Alice", "Bo"])
        ),
        st.tuples(st.just("speaker"), st.just("exists"), st.booleans()),
    )
    return st.one_of(meta, kind, imp, speaker).map(lambda t: {t[0]: {t[1]: t[2]}})


FILTERS = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"AND": c}),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"OR": c}),
        children.map(lambda c: {"NOT": c}),
    ),
    max_leaves=6,
)
RECORDS = st.lists(
    st.fixed_dictionaries(
        {
            "metadata": st.dictionaries(st.sampled_from(KEYS), META_VALUES, max_size=3),
            "kind": st.sampled_from(["fact", "episode"]),
            "importance": st.sampled_from([0.2, 0.5, 0.8]),
            "speaker": st.sampled_from([None, "Alice", "Bob"]),
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, filters=st.lists(FILTERS, min_size=1, max_size=8))
def test_sql_filters_match_python_reference(records: list[dict[str, Any]], filters: list[dict[str, Any]]) -> None:
    with Memory(":memory:", embedder="hash:16") as m:
        ids = []
        for i, r in enumerate(records):
            message = {"role": "user", "content": f"record {i}", **({"name": r["speaker"]} if r["speaker"] else {})}
            ids.append(
                m.add(message, user_id="u", kind=r["kind"], importance=r["importance"], metadata=r["metadata"])
                .results[0]
                .id
            )
        for spec in filters:
            expected = [ids[i] for i, r in enumerate(records) if reference(spec, r)]
            page = m.get_all(user_id="u", filters=spec, limit=1000)
            assert [item.id for item in page.results] == expected, spec
            assert page.total == len(expected)
            hits = m.search("record", user_id="u", filters=spec, limit=1000, options={"lexical_weight": 0})
            assert sorted(h.id for h in hits.results) == sorted(expected), spec


@pytest.mark.parametrize(
    "spec",
    [
        {"colour": "red"},
        {"metadata": "x"},
        {"metadata.": 1},
        {'metadata.a"b': 1},
        {"kind": {"regex": "f"}},
        {"kind": {}},
        {"AND": []},
        {"AND": {"kind": "fact"}},
        {"OR": [{}]},
        {"NOT": []},
        {"kind": ["fact"]},
        {"kind": {"in": []}},
        {"kind": {"in": "fact"}},
        {"importance": {"gt": "high"}},
        {"importance": {"gt": True}},
        {"importance": {"contains": 1}},
        {"created_at": {"gte": "last tuesday"}},
        {"metadata.a": {"gt": True}},
        {"metadata.a": {"eq": None}},
        {"metadata.a": {"eq": [1]}},
        {"metadata.a": {"exists": "yes"}},
        {"and": [{"kind": "fact"}]},
    ],
)
def test_bad_filters_are_validation_errors(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_filter(spec)


def test_datetime_filters_accept_iso_strings() -> None:
    with Memory(":memory:", embedder="hash:16") as m:
        m.add("old", user_id="u", occurred_at="2020-01-01T00:00:00Z")
        m.add("new", user_id="u", occurred_at="2024-06-01T12:00:00+02:00")
        page = m.get_all(filters={"occurred_at": {"gte": "2024-01-01"}})
        assert [i.memory for i in page.results] == ["new"]
        page = m.get_all(
            filters={"OR": [{"occurred_at": {"lt": "2021-01-01T00:00:00Z"}}, {"occurred_at": {"exists": False}}]}
        )
        assert [i.memory for i in page.results] == ["old"]


def test_nested_metadata_paths() -> None:
    with Memory(":memory:", embedder="hash:16") as m:
        m.add("a", user_id="u", metadata={"trip": {"city": "Lisbon", "days": 4}})
        m.add("b", user_id="u", metadata={"trip": {"city": "Oslo"}})
        assert [i.memory for i in m.get_all(filters={"metadata.trip.days": {"gte": 3}}).results] == ["a"]
        assert [i.memory for i in m.get_all(filters={"metadata.trip.city": {"ne": "Lisbon"}}).results] == ["b"]


def test_a_condition_outside_a_not_can_use_an_index(tmp_path: Any) -> None:
    """Outside a ``NOT`` a condition is compiled bare, so the planner can use an index on its
    column: a derived fact's slot lookup (``extraction.pipeline``) seeks ``memories_slot``
    where a condition wrapped against NULL read every memory of the user."""
    with Memory(f"sqlite:///{tmp_path / 'm.db'}") as memory:
        memory.add("I live in Paris", user_id="u", session_id="s")
        statements: list[str] = []
        memory.store._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        memory.add("I moved to Berlin", user_id="u", session_id="s")
        memory.store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
        lookup = next(s for s in statements if s.startswith("SELECT") and "m.slot =" in s)
        plan = memory.store._conn.execute("EXPLAIN QUERY PLAN " + lookup).fetchall()  # type: ignore[attr-defined]
        assert any("memories_slot" in row[3] for row in plan)
