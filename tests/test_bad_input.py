"""Bad input is a typed ValidationError in the library and a 4xx over HTTP, on both stores.

Each case here once escaped as a TypeError, RecursionError or OverflowError (a 500), or as
a store failure (a 503 that invites retries): filters that are not objects, nest or grow
without bound, or hold integers SQLite cannot bind; metadata nested thousands deep; a NUL
in a memory id; an import body that is not UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live import serving

from engramdb import Memory, ValidationError
from engramdb.filters import MAX_CLAUSES, MAX_DEPTH, MAX_IN_VALUES, MAX_INTEGER, MIN_INTEGER
from engramdb.models import MAX_METADATA_DEPTH, MemoryItem, content_hash, new_id, utcnow

NUL_ID = "01ab\x00cd"


def nested(depth: int, leaf: Any = 1) -> Any:
    """``{"a": {"a": ... leaf}}`` with ``depth`` objects, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def http(memory: Memory) -> Iterator[httpx.Client]:
    with serving(memory) as (url, secret), httpx.Client(base_url=url, headers={"X-API-Key": secret}) as client:
        yield client


def refused(response: httpx.Response, status: int = 400, code: str = "validation_error") -> str:
    """The error's message, after checking its status, its code and the one error shape."""
    body = response.json()
    assert (response.status_code, set(body), set(body["error"])) == (status, {"error"}, {"code", "message"}), body
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


# --- the library -------------------------------------------------------------------------


def test_get_all_refuses_filters_that_are_not_objects(memory: Memory) -> None:
    for filters in ([1], "x", 5):
        with pytest.raises(ValidationError, match="JSON object"):
            memory.get_all(user_id="u", filters=filters)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="JSON object"):
            memory.search("x", user_id="u", filters=filters)  # type: ignore[arg-type]


def test_filter_integers_must_fit_in_64_bits(memory: Memory) -> None:
    stored = memory.add("the largest number", user_id="u", metadata={"n": MAX_INTEGER, "m": MIN_INTEGER})
    found = memory.get_all(user_id="u", filters={"AND": [{"metadata.n": MAX_INTEGER}, {"metadata.m": MIN_INTEGER}]})
    assert [i.id for i in found.results] == [stored.results[0].id]
    too_big: list[dict[str, Any]] = [
        {"metadata.n": MAX_INTEGER + 1},
        {"metadata.m": {"gte": MIN_INTEGER - 1}},
        {"metadata.n": {"in": [1, 2**64]}},
        {"metadata.n": {"contains": -(2**70)}},
        {"importance": {"lt": 2**64}},
        {"importance": float("inf")},
    ]
    for filters in too_big:
        with pytest.raises(ValidationError, match=r"64 bits|finite"):
            memory.get_all(user_id="u", filters=filters)
        with pytest.raises(ValidationError, match=r"64 bits|finite"):
            memory.search("number", user_id="u", filters=filters)


def test_filter_size_is_capped_below_every_database_limit(memory: Memory) -> None:
    stored = memory.add("tagged", user_id="u", metadata={"n": MAX_IN_VALUES - 1, "tag": f"t{MAX_CLAUSES - 1}"})
    expected = [stored.results[0].id]
    at_the_limits: list[dict[str, Any]] = [
        {"metadata.n": {"in": list(range(MAX_IN_VALUES))}},  # one OR per value: deeper than SQLite parses flat
        {"OR": [{"metadata.tag": f"t{i}"} for i in range(MAX_CLAUSES)]},
        {"OR": [{"metadata.tag": {"contains": f"t{i}"}} for i in range(MAX_CLAUSES - 1, -1, -1)]},
    ]
    for filters in at_the_limits:
        assert [i.id for i in memory.get_all(user_id="u", filters=filters).results] == expected
        assert [h.id for h in memory.search("tagged", user_id="u", filters=filters).results] == expected
    over: list[dict[str, Any]] = [
        {"OR": [{"metadata.tag": f"t{i}"} for i in range(10_000)]},
        {"OR": [{"metadata.tag": f"t{i}"} for i in range(MAX_CLAUSES)] + [{"kind": "fact"}]},
        {"AND": [{"metadata.n": {"in": list(range(MAX_IN_VALUES))}}, {"metadata.tag": "t1"}]},
    ]
    for filters in over:
        with pytest.raises(ValidationError, match=f"more than {MAX_CLAUSES} conditions"):
            memory.get_all(user_id="u", filters=filters)
        with pytest.raises(ValidationError, match=f"more than {MAX_CLAUSES} conditions"):
            memory.search("tagged", user_id="u", filters=filters)
    deep: dict[str, Any] = {"kind": "fact"}
    for _ in range(MAX_DEPTH + 1):
        deep = {"NOT": deep}
    with pytest.raises(ValidationError, match=f"deeper than {MAX_DEPTH}"):
        memory.get_all(user_id="u", filters=deep)


def test_metadata_nested_too_deep_is_refused_and_nothing_written(memory: Memory) -> None:
    deepest = nested(MAX_METADATA_DEPTH)  # the outer object is the first level
    kept = memory.add("deep but allowed", user_id="u", metadata=deepest).results[0].id
    assert memory.get(kept).metadata == deepest
    for metadata in (nested(MAX_METADATA_DEPTH + 1), nested(5_000), {"a": nested(MAX_METADATA_DEPTH, [1])}):
        with pytest.raises(ValidationError, match=f"deeper than {MAX_METADATA_DEPTH} levels"):
            memory.add("too deep", user_id="u", metadata=metadata)
        with pytest.raises(ValidationError, match=f"deeper than {MAX_METADATA_DEPTH} levels"):
            memory.update(kept, metadata=metadata)
    now = utcnow()
    record = MemoryItem(id=new_id(), memory="imported", hash="", user_id="u", metadata=nested(MAX_METADATA_DEPTH + 1),
                        created_at=now, updated_at=now)  # fmt: skip
    with pytest.raises(ValidationError, match=f"deeper than {MAX_METADATA_DEPTH} levels"):
        memory.import_items([record.model_dump(mode="json")])
    assert memory.get_all(user_id="u").total == 1
    assert memory.get(kept).metadata == deepest and len(memory.history(kept)) == 1


def test_a_memory_id_with_nul_is_bad_input(memory: Memory) -> None:
    memory.add("something", user_id="u")
    for call in (memory.get, memory.delete, memory.history, lambda i: memory.update(i, "new text")):
        for memory_id in (NUL_ID, "01ab\ud800"):  # PostgreSQL's text holds neither a NUL nor a lone surrogate
            with pytest.raises(ValidationError, match="NUL"):
                call(memory_id)
    assert memory.get_all(user_id="u").total == 1


# --- over HTTP ---------------------------------------------------------------------------


def test_bad_filters_are_a_400_over_http(http: httpx.Client) -> None:
    deep = '{"kind": "fact"}'
    for _ in range(1_500):
        deep = '{"NOT":' + deep + "}"
    for filters in ("[1]", '"x"', "5", deep, json.dumps({"importance": 2**64}), json.dumps({"metadata.n": 2**63}),
                    "1" * 5_000):  # fmt: skip
        refused(http.get("/v1/memories", params={"user_id": "u", "filters": filters}))
    many = {"query": "x", "user_id": "u", "filters": {"OR": [{"metadata.n": i} for i in range(10_000)]}}
    assert f"more than {MAX_CLAUSES} conditions" in refused(http.post("/v1/search", json=many))
    assert http.get("/v1/memories", params={"user_id": "u", "filters": '{"metadata.n": 1}'}).status_code == 200


def test_a_nul_memory_id_is_a_400_over_http(http: httpx.Client) -> None:
    path = "/v1/memories/01ab%00cd"
    for response in (http.get(path), http.get(path + "/history"), http.delete(path),
                     http.put(path, json={"text": "new"}), http.get("/memories/01ab%00cd")):  # fmt: skip
        assert "NUL" in refused(response)


def test_metadata_too_deep_is_a_4xx_and_nothing_is_written(http: httpx.Client) -> None:
    as_json = {"content-type": "application/json"}
    body = {"messages": "deep", "user_id": "u", "metadata": nested(5_000)}  # too deep for the JSON parser
    refused(http.post("/v1/memories", content=_dump_deep(body), headers=as_json))
    kept = http.post("/v1/memories", json={"messages": "kept", "user_id": "u", "metadata": {"v": 1}}).json()
    kept_id = kept["results"][0]["id"]
    for depth in (MAX_METADATA_DEPTH + 1, 300):  # 300: stored, it would fail every later read (pydantic stops at 255)
        deep = {"messages": "deep", "user_id": "u", "metadata": nested(depth)}
        message = refused(http.post("/v1/memories", content=_dump_deep(deep), headers=as_json), 422, "invalid_request")
        assert f"deeper than {MAX_METADATA_DEPTH} levels" in message
        put = http.put(f"/v1/memories/{kept_id}", content=_dump_deep({"metadata": nested(depth)}), headers=as_json)
        refused(put, 422, "invalid_request")
    assert http.get("/v1/memories", params={"user_id": "u"}).json()["total"] == 1
    assert http.get(f"/v1/memories/{kept_id}").json()["metadata"] == {"v": 1}


def _dump_deep(body: dict[str, Any]) -> bytes:
    """JSON for a body whose metadata is too deep for ``json.dumps`` to recurse through."""
    depth, inner = 0, body["metadata"]
    while isinstance(inner, dict):
        depth, inner = depth + 1, inner["a"]
    head = json.dumps({k: v for k, v in body.items() if k != "metadata"})[:-1]
    head += ", " if len(body) > 1 else ""
    return (head + '"metadata": ' + '{"a": ' * depth + json.dumps(inner) + "}" * depth + "}").encode()


def test_import_refuses_a_body_that_is_not_utf8_or_too_deep(http: httpx.Client) -> None:
    now = utcnow()
    item = MemoryItem(id=new_id(), memory="café au lait", hash=content_hash("café au lait"), user_id="u",
                      created_at=now, updated_at=now)  # fmt: skip
    line = item.model_dump_json().encode() + b"\n"
    broken = line.replace("é".encode(), b"\xe9")  # Latin-1, not UTF-8
    assert "UTF-8" in refused(http.post("/v1/import", content=broken))
    assert "not JSON" in refused(http.post("/v1/import", content=b"[" * 5_000 + b"]" * 5_000 + b"\n" + line))
    refused(http.get(f"/v1/memories/{item.id}"), 404, "not_found")  # nothing was imported, not even altered text
    assert http.post("/v1/import", content=line).status_code == 200
    assert http.get(f"/v1/memories/{item.id}").json()["memory"] == "café au lait"
