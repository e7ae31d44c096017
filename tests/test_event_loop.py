"""The server never blocks its event loop: long work of one client does not stall the others.

The embedding service here holds the import's batch until the test lets it go, so the
import is provably in flight (waiting on the network) while another client asks for
health and searches. Had the import run on the event loop, nothing else could be answered
until the batch came back; the check asks, then releases, and never times anything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_server import _start, _stop

from engramdb import Memory, MemoryItem
from engramdb.embedders import EmbedderOptions, resolve_embedder
from engramdb.models import content_hash, new_id, utcnow
from engramdb.server import create_key
from engramdb.testing import ScriptedOpenAIServer

RECORDS = 5_000
HELD_BATCH = 100  # an embedding request with more texts than this is the import's: held until released


@pytest.fixture
def embedding_service() -> Iterator[tuple[ScriptedOpenAIServer, threading.Event, threading.Event]]:
    """An OpenAI-compatible embedder that holds large batches: (server, batch arrived, release)."""
    arrived, release = threading.Event(), threading.Event()

    def gate(texts: list[str]) -> None:
        if len(texts) > HELD_BATCH:
            arrived.set()
            release.wait(120)

    with ScriptedOpenAIServer(dimension=32, embedding_gate=gate) as server:
        yield server, arrived, release
        release.set()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, embedding_service: tuple[ScriptedOpenAIServer, object, object]
) -> Iterator[tuple[str, str]]:
    base_url = embedding_service[0].base_url
    sqlite = request.param == "sqlite"
    store = f"sqlite:///{tmp_path / 'loop.db'}" if sqlite else str(request.getfixturevalue("postgres_url"))
    embedder = resolve_embedder("openai:scripted", EmbedderOptions(base_url=base_url, api_key="k"))
    with Memory(store, embedder=embedder) as m:
        secret, _ = create_key(m.store, "acme")
        m.for_tenant("acme").add("I keep bees on the roof", user_id="bob", infer=False)
    env = {"ENGRAMDB_EMBEDDER": "openai:scripted", "ENGRAMDB_EMBEDDER_BASE_URL": base_url}
    proc, url = _start(store, env=env)
    yield url, secret
    _stop(proc)


def _export() -> bytes:
    """An export of memories, as ``engramdb export`` writes it."""
    now = utcnow()
    texts = (f"note {i}: water the tomatoes" for i in range(RECORDS))
    items = (MemoryItem(id=new_id(), memory=t, hash=content_hash(t), kind="fact", user_id="alice", created_at=now,
                        updated_at=now) for t in texts)  # fmt: skip
    return "".join(item.model_dump_json(exclude_defaults=True) + "\n" for item in items).encode()


def test_health_and_search_answer_while_an_import_waits_on_its_embeddings(
    served: tuple[str, str], embedding_service: tuple[ScriptedOpenAIServer, threading.Event, threading.Event]
) -> None:
    url, secret = served
    _, arrived, release = embedding_service
    headers = {"Authorization": f"Bearer {secret}"}
    imported: list[httpx.Response] = []

    def import_all() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            imported.append(client.post("/v1/import", content=_export()))

    thread = threading.Thread(target=import_all)
    thread.start()
    try:
        assert arrived.wait(60), "the import never asked for its embeddings"
        with httpx.Client(base_url=url, headers=headers, timeout=10) as other:  # a blocked loop would time out
            assert other.get("/healthz").status_code == 200
            found = other.post("/v1/search", json={"query": "bees", "user_id": "bob", "limit": 1})
            assert found.status_code == 200, found.text
            assert found.json()["results"][0]["memory"] == "I keep bees on the roof"
        assert not imported, "the import finished before the batch was released"
    finally:
        release.set()
        thread.join(300)
    assert imported[0].status_code == 200, imported[0].text
    assert len(imported[0].json()["results"]) == RECORDS
