from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engramdb import Memory, MemoryConfig
from engramdb.embedders import Embedder, resolve_embedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def default_embedder() -> Embedder:
    """The real bundled model, loaded once per test session."""
    return resolve_embedder()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def memory(db_path: Path, default_embedder: Embedder) -> Iterator[Memory]:
    """The raw memory layer: messages stored verbatim, no derived facts (tests of those use ``smart``)."""
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        yield m


@pytest.fixture
def smart(db_path: Path, default_embedder: Embedder) -> Iterator[Memory]:
    """The default configuration: rule-based extraction on every add."""
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as m:
        yield m


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every ENGRAMDB_* setting and the config file at the test's own folder."""
    for key in list(os.environ):
        if key.startswith("ENGRAMDB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ENGRAMDB_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("ENGRAMDB_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path
