"""The OpenAPI document tells the truth, every error has one shape, and schemathesis agrees.

The server runs on a real socket (uvicorn on a thread) with a real API key; schemathesis
runs as its own process against it, with every check it has.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from live import serving

from engramdb import Memory, MemoryConfig
from engramdb.embedders import Embedder
from engramdb.embedders.base import EmbedKind
from engramdb.server.openapi import ROUTE_ERRORS
from engramdb.testing import HashEmbedder

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
WITH_KEYS = {"401", "413", "429", "500", "503"}
# Statuses a schema cannot promise against: the library validates meaning (an empty text, no scope, an unknown
# kind) that JSON Schema does not express, and generated ids name nothing. Each is a documented error.
SCHEMATHESIS_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "429"]
"""


@pytest.fixture
def local(tmp_path: Path, default_embedder: Embedder) -> Iterator[Memory]:
    """The document and the error shapes do not depend on the store: one SQLite file."""
    with Memory(f"sqlite:///{tmp_path / 'api.db'}", embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        yield m


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{method.upper()} {path}": op for path, item in spec["paths"].items() for method, op in item.items()}


def test_unreadable_bodies_unknown_routes_and_wrong_methods_answer_the_error_shape(local: Memory) -> None:
    with serving(local) as (url, secret), httpx.Client(base_url=url, headers={"X-API-Key": secret}) as raw:
        as_json = {"content-type": "application/json"}
        answers = [
            (raw.post("/v1/search", content=b'{"query": ', headers=as_json), 422, "invalid_request"),
            (raw.post("/v1/memories", content=b'{"messages": "caf\xe9", "user_id": "u"}', headers=as_json), 400,
             "validation_error"),
            (raw.post("/v1/search", content=b'{"query": "x", "limit": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                      headers=as_json), 400, "validation_error"),
            (raw.get("/v1/nowhere"), 404, "not_found"),
            (raw.patch("/v1/memories"), 405, "method_not_allowed"),
            (raw.request("OPTIONS", "/v1/memories/01ABC"), 405, "method_not_allowed"),
        ]  # fmt: skip
        for response, status, code in answers:
            body = response.json()
            assert response.status_code == status and set(body) == {"error"}, (status, response.text)
            assert set(body["error"]) == {"code", "message"} and body["error"]["code"] == code, response.text
        # Allow names every method of the path, not only those of the first route that matched it
        assert answers[-2][0].headers["allow"] == "DELETE, GET, POST"
        assert answers[-1][0].headers["allow"] == "DELETE, GET, PUT"
        assert raw.get("/v1/memories", params={"user_id": "u"}).status_code == 200


def test_the_document_names_every_error_the_auth_schemes_and_ndjson(local: Memory) -> None:
    with serving(local) as (url, _):
        text = httpx.get(url + "/openapi.json").text
    spec = json.loads(text)
    assert "HTTPValidationError" not in text  # FastAPI's {"detail"} shape is never sent, so never documented
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == (
        "apiKey", "header", "X-API-Key",
    )  # fmt: skip
    # mem0's clients send "Authorization: Token <key>"
    assert (schemes["token"]["type"], schemes["token"]["in"], schemes["token"]["name"]) == (
        "apiKey", "header", "Authorization",
    )  # fmt: skip
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    assert set(spec["components"]["schemas"]["ErrorDetail"]["required"]) == {"code", "message"}
    ops = operations(spec)
    assert set(ops) == set(ROUTE_ERRORS)  # the table of errors covers exactly the routes there are
    for name, op in ops.items():
        assert sorted(op["security"], key=str) == [{"apiKey": []}, {"bearer": []}, {"token": []}], name
        errors = {status: r for status, r in op["responses"].items() if status != "200"}
        assert set(errors) >= WITH_KEYS, name
        assert all(r["content"] == {"application/json": {"schema": ERROR_REF}} for r in errors.values()), name
    memories = ops["GET /v1/memories"]["responses"]
    assert {"400", "403", "422"} <= set(memories) and "404" not in memories
    by_id = ops["GET /v1/memories/{memory_id}"]["responses"]
    assert {"400", "404"} <= set(by_id) and "422" not in by_id  # a string in the path cannot fail its schema
    mem0_by_id = ops["GET /v1/memories/{memory_id}/"]["responses"]  # mem0's form of the path: its own route
    assert {"400", "404"} <= set(mem0_by_id) and "403" not in mem0_by_id
    assert mem0_by_id["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Mem0Memory"}
    assert {"400", "403", "422"} <= set(ops["DELETE /v2/entities/{entity_type}/{entity_id}/"]["responses"])
    assert {"400", "403", "422", "502"} <= set(ops["POST /v3/memories/search/"]["responses"])
    assert set(ops["GET /v1/export"]["responses"]["200"]["content"]) == {"application/x-ndjson"}
    assert "application/x-ndjson" in ops["POST /v1/import"]["requestBody"]["content"]


def test_without_keys_the_document_promises_no_auth(local: Memory) -> None:
    with serving(local, auth=False) as (url, _):
        spec = httpx.get(url + "/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})
    for name, op in operations(spec).items():
        assert "security" not in op and not {"401", "403", "429"} & set(op["responses"]), name


class FaultyEmbedder(HashEmbedder):
    """An embedder with a bug, as a plugin's code can have: it fails on one word."""

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        if any("explode" in t for t in texts):
            raise RuntimeError("a bug outside engramdb")
        return super().embed(texts, kind=kind)


def test_a_keep_alive_connection_survives_an_unexpected_error(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'f.db'}"
    with Memory(store, embedder=FaultyEmbedder(), config=MemoryConfig(infer=False)) as m, serving(m) as (url, key):
        address = urlsplit(url)
        conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        try:
            conn.request("POST", "/v1/memories", json.dumps({"messages": "explode", "user_id": "u"}), headers)
            failed = conn.getresponse()
            assert failed.status == 500 and failed.getheader("connection") != "close"
            assert json.loads(failed.read()) == {"error": {"code": "internal_error", "message": "internal error"}}
            assert conn.sock is not None
            socket_name = conn.sock.getsockname()
            conn.request("POST", "/v1/memories", json.dumps({"messages": "fine", "user_id": "u"}), headers)
            fine = conn.getresponse()
            assert fine.status == 200 and json.loads(fine.read())["results"][0]["memory"] == "fine"
            assert conn.sock is not None and conn.sock.getsockname() == socket_name  # the same connection
        finally:
            conn.close()


def test_schemathesis_finds_no_server_error_and_no_undocumented_status(memory: Memory, tmp_path: Path) -> None:
    """Every check, the coverage and fuzzing phases, a few examples per operation, on each store."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    with serving(memory) as (url, secret):
        count = len(operations(httpx.get(url + "/openapi.json").json()))
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config),
             "run", url + "/openapi.json", "-H", f"Authorization: Bearer {secret}", "--checks", "all",
             "--phases", "coverage,fuzzing", "--max-examples", "5", "--seed", "7"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested is not None and int(tested.group(1)) == count, result.stdout[-3000:]
