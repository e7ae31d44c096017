"""The in-memory vector index: int8 pre-selection, snapshots beside the file, catching up."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engramdb import Memory
from engramdb.embedders import Embedder
from engramdb.models import Scope
from engramdb.stores import rowid_search, vectors
from engramdb.stores.vectors import IndexRow, VectorIndex, read_arrays, write_arrays


def _rows(n: int, dim: int, seed: int = 0) -> tuple[list[IndexRow], np.ndarray]:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    rows = [IndexRow(i + 1, f"m{i}", "t", f"u{i % 3}", None, None, True, float("inf"), matrix[i]) for i in range(n)]
    return rows, matrix


def _exact_top(matrix: np.ndarray, query: np.ndarray, allowed: np.ndarray, k: int) -> list[str]:
    sims = np.where(allowed, matrix @ query, -np.inf)
    return [f"m{i}" for i in np.argsort(-sims, kind="stable")[:k]]


@pytest.mark.parametrize("user", [None, "u1"])
def test_int8_preselection_returns_the_exact_top_k(monkeypatch: pytest.MonkeyPatch, user: str | None) -> None:
    monkeypatch.setattr(vectors, "COARSE_MIN_ROWS", 100)
    rows, matrix = _rows(6_000, 64)
    index = VectorIndex(64)
    index.upsert(rows)
    users = np.array([r.user_id for r in rows])
    allowed = np.ones(len(rows), bool) if user is None else users == user
    rng = np.random.default_rng(1)
    for _ in range(20):
        query = matrix[rng.integers(len(rows))] + 0.5 * rng.standard_normal(64).astype(np.float32)
        query /= np.linalg.norm(query)
        got = index.search(query, index.select("t", user, None, None, include_inactive=False, now=0), 10)
        assert [i for i, _ in got] == _exact_top(matrix, query, allowed, 10)
        assert np.allclose([s for _, s in got], [matrix[int(i[1:])] @ query for i, _ in got], atol=1e-6)


def test_array_file_round_trip(tmp_path: Path) -> None:
    arrays = {"a": np.arange(7, dtype=np.int64), "b": np.ones((3, 5), np.float32), "ids": np.array(["x", "yz"])}
    write_arrays(tmp_path / "f", {"seq": 3}, arrays)
    header, back = read_arrays(tmp_path / "f")
    assert header == {"seq": 3}
    for name, array in arrays.items():
        assert np.array_equal(back[name], array)
    back["a"][0] = 99  # copy-on-write: the file is not changed
    assert read_arrays(tmp_path / "f")[1]["a"][0] == 0


def _fill(memory: Memory, n: int) -> None:
    texts = [f"memory number {i} about topic {i % 17} and colour {i % 5}" for i in range(n)]
    for start in range(0, n, 1000):
        memory.add(texts[start : start + 1000], user_id="u")


def test_a_new_process_loads_the_snapshot_and_catches_up(
    db_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engramdb.stores.sqlite.mirror.SNAPSHOT_MIN_ROWS", 50)
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        _fill(memory, 300)
        before = memory.search("topic 3 colour 1", user_id="u", limit=5)
    snapshot = Path(f"{db_path}-vectors")
    assert snapshot.exists()  # written on the first (full) index build
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as writer:  # changes after the snapshot
        gone = writer.get_all(user_id="u", limit=10).results
        for item in gone:
            writer.delete(item.id)
        added = writer.add("a brand new memory about zebras", user_id="u").results[0].id
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as reader:
        index = reader.store._vectors.synced()  # type: ignore[attr-defined]
        assert len(index) == 291
        assert reader.search("zebras", user_id="u", limit=1).results[0].id == added
        after = reader.search("topic 3 colour 1", user_id="u", limit=5).results
        assert not {g.id for g in gone} & {h.id for h in after}
        assert [h.id for h in after if h.id in {b.id for b in before.results}]


def test_a_snapshot_from_another_file_is_ignored(
    tmp_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engramdb.stores.sqlite.mirror.SNAPSHOT_MIN_ROWS", 50)
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    with Memory(f"sqlite:///{first}", embedder=default_embedder) as memory:
        _fill(memory, 100)
        memory.search("topic", user_id="u")
    with Memory(f"sqlite:///{second}", embedder=default_embedder) as memory:
        memory.add("only this one", user_id="u")
    Path(f"{second}-vectors").write_bytes(Path(f"{first}-vectors").read_bytes())
    with Memory(f"sqlite:///{second}", embedder=default_embedder) as memory:
        hits = memory.search("topic", user_id="u", limit=10, threshold=0).results  # whatever it holds
        assert [h.memory for h in hits] == ["only this one"]


def test_a_damaged_snapshot_costs_only_a_rebuild(
    db_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engramdb.stores.sqlite.mirror.SNAPSHOT_MIN_ROWS", 50)
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        _fill(memory, 100)
        memory.search("topic", user_id="u")
    snapshot = Path(f"{db_path}-vectors")
    snapshot.write_bytes(snapshot.read_bytes()[:500])
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        assert len(memory.search("topic 4", user_id="u", limit=10).results) == 10
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_saved_index_keeps_no_id_of_a_scope_it_no_longer_holds(tmp_path: Path) -> None:
    rows, matrix = _rows(30, 16)
    index = VectorIndex(16)
    index.upsert(rows)
    index.remove(r.rowid for r in rows if r.user_id == "u1")  # every row of user u1
    index.seq = 7
    index.save(tmp_path / "snap", identity={"store_uid": "x"})
    _, arrays = read_arrays(tmp_path / "snap")
    assert "u1" not in arrays["codes"].tolist() and "u2" in arrays["codes"].tolist()
    loaded = VectorIndex.load(tmp_path / "snap", identity={"store_uid": "x"}, max_seq=7)
    assert loaded is not None
    for user in ("u0", "u2"):
        slots = loaded.select("t", user, None, None, include_inactive=False, now=0)
        ids = sorted(i for i, _ in loaded.search(matrix[0], slots, 30))
        assert ids == sorted(r.id for r in rows if r.user_id == user)
    assert loaded.search(matrix[0], loaded.select("t", "u1", None, None, include_inactive=False, now=0), 30) == []


def test_a_scoped_selection_is_exactly_the_scopes_visible_rows(tmp_path: Path) -> None:
    """Selecting from a scope's own slot list gives what a pass over every row gives: after
    single and batched upserts, removals, compaction and a snapshot round trip."""
    rng = np.random.default_rng(3)
    scopes = [
        (t, u, a, s) for t in ("t1", "t2") for u in ("u0", "u1", None) for a in ("a0", None) for s in ("s0", "s1")
    ]
    one = np.ones(4, np.float32)
    rows = [IndexRow(i + 1, f"m{i}", *scopes[int(rng.integers(len(scopes)))], bool(rng.random() > 0.1),
                     float("inf") if rng.random() > 0.1 else 5.0, one) for i in range(9_000)]  # fmt: skip

    def expected(
        index: VectorIndex, live: list[IndexRow], t: str, u: str | None, a: str | None, s: str | None
    ) -> list[int]:
        keep = [r for r in live if r.tenant_id == t and (u is None or r.user_id == u) and (a is None or r.agent_id == a)
                and (s is None or r.session_id == s) and r.active and r.expires > 10.0]  # fmt: skip
        return sorted(index._slot[r.rowid] for r in keep)

    def check(index: VectorIndex, live: list[IndexRow]) -> None:
        for t in ("t1", "t2", "t3"):
            for u in ("u0", "u1", None, "nobody"):
                for a, s in (("a0", None), (None, "s1"), (None, None), ("a0", "s0")):
                    got = index.select(t, u, a, s, include_inactive=False, now=10.0).tolist()
                    assert got == expected(index, live, t, u, a, s), (t, u, a, s)

    index = VectorIndex(4)
    for row in rows[:40]:  # one at a time, as a catching-up index gets them
        index.upsert([row])
    index.upsert(rows[40:])  # and in batches
    check(index, rows)
    removed = {r.rowid for r in rows if r.rowid % 3}
    index.remove(removed)  # two thirds: the slots are compacted
    live = [r for r in rows if r.rowid not in removed]
    check(index, live)
    index.seq = 1
    index.save(tmp_path / "snap", identity={"store_uid": "x"})
    loaded = VectorIndex.load(tmp_path / "snap", identity={"store_uid": "x"}, max_seq=1)
    assert loaded is not None
    check(loaded, live)


def test_rows_caught_up_a_few_at_a_time_grow_the_arrays_geometrically() -> None:
    """A chat's adds catch the index up by a row or two each: the arrays must grow by
    doubling, or every add copies the whole index."""
    rows, _ = _rows(3_000, 16)
    index = VectorIndex(16)
    capacities = set()
    for row in rows:
        index.upsert([row])
        capacities.add(len(index._active))
    assert len(index) == 3_000 and len(capacities) <= 3  # 1,024 → 2,048 → 4,096


def test_a_loaded_snapshot_answers_before_it_maps_its_rows(tmp_path: Path) -> None:
    """The rowid map and the id list of a loaded snapshot are built on first need (a removal,
    a filtered search, many updates), not by the first search nor by catching up new rows and
    a few updated ones: at 1M rows they cost a third of a second."""
    rows, matrix = _rows(50, 16)
    index = VectorIndex(16)
    index.upsert(rows)
    index.seq = 3
    index.save(tmp_path / "snap", identity={"store_uid": "x"})
    loaded = VectorIndex.load(tmp_path / "snap", identity={"store_uid": "x"}, max_seq=3)
    assert loaded is not None

    def top(vector: np.ndarray, k: int = 1) -> list[str]:
        return [
            i for i, _ in loaded.search(vector, loaded.select("t", "u0", None, None, include_inactive=False, now=0), k)
        ]

    assert top(matrix[0]) == ["m0"] and loaded._slot_map is None and len(loaded) == 50
    loaded.remove([])  # a catch-up with nothing gone
    loaded.upsert([IndexRow(99, "m99", "t", "u0", None, None, True, float("inf"), -matrix[0])])  # a new row
    loaded.upsert([IndexRow(4, "m3", "t", "u0", None, None, True, float("inf"), matrix[0])])  # m3 now points at m0's
    loaded.upsert([IndexRow(99, "m99", "t", "u0", None, None, True, float("inf"), matrix[5])])  # the new row changed
    assert loaded._slot_map is None and loaded._id_list is None and len(loaded) == 51
    assert set(top(matrix[0], 2)) == {"m0", "m3"} and top(-matrix[0], 51)[-1] in {"m0", "m3"}
    assert "m99" in top(matrix[5], 3)
    loaded.remove([1])  # m0's row: now the map is needed, and it holds the appended row too
    assert loaded._slot_map is not None and len(loaded) == 50 and loaded._slot[99] == 50
    assert top(matrix[0]) == ["m3"] and "m0" not in top(matrix[0], 51)
    assert loaded._ids[50] == "m99" and loaded._ids[0] is None


def test_a_loaded_snapshot_takes_as_many_rows_again_in_place(tmp_path: Path) -> None:
    """Rows written after a snapshot go into its spare rows, a hole in the file: no copy of the
    mapped index (which doubled a large index's memory), and no disk blocks for the room."""
    rows, _ = _rows(10_000, 64)
    index = VectorIndex(64)
    index.upsert(rows[:5_000])
    index.seq = 1
    index.save(tmp_path / "snap", identity={})
    stat = (tmp_path / "snap").stat()
    assert stat.st_blocks * 512 < 0.75 * stat.st_size  # the spare half is not on disk
    loaded = VectorIndex.load(tmp_path / "snap", identity={}, max_seq=1)
    assert loaded is not None
    loaded.upsert(rows[5_000:])
    assert isinstance(loaded._matrix.base, np.memmap) and len(loaded) == 10_000  # the mapped file, not a copy
    slots = loaded.select("t", None, None, None, include_inactive=False, now=0)
    assert loaded.search(rows[9_999].vector, slots, 1)[0][0] == "m9999"


def test_saving_removes_the_copies_of_savers_that_died(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, live = tmp_path / f"snap.{int(dead.stdout)}.tmp", tmp_path / f"snap.{os.getppid()}.tmp"
    stale.write_bytes(b"half a snapshot")
    live.write_bytes(b"another process saving now")
    rows, _ = _rows(10, 8)
    index = VectorIndex(8)
    index.upsert(rows)
    index.seq = 1
    index.save(tmp_path / "snap", identity={})
    assert not stale.exists() and live.exists()
    assert VectorIndex.load(tmp_path / "snap", identity={}, max_seq=10) is not None


def _add_unindexed(url: str, embedder: Embedder, n: int, start: int) -> None:
    """Rows written by a process that never built its index, so it leaves no snapshot behind:
    the next process must catch them up, as after a writer was killed."""
    with Memory(url, embedder=embedder) as writer:
        writer.add([f"later memory {i} about topic {i % 7}" for i in range(start, start + n)], user_id="u", infer=False)


@pytest.mark.parametrize(("later", "rewritten"), [(100, True), (10, False)])
def test_a_long_catch_up_rewrites_the_snapshot(
    db_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch, later: int, rewritten: bool
) -> None:
    monkeypatch.setattr("engramdb.stores.sqlite.mirror.SNAPSHOT_MIN_ROWS", 50)
    url = f"sqlite:///{db_path}"
    with Memory(url, embedder=default_embedder) as memory:
        _fill(memory, 300)
        memory.search("topic", user_id="u")
    first = read_arrays(Path(f"{db_path}-vectors"))[0]["seq"]
    _add_unindexed(url, default_embedder, later, 0)
    reader = Memory(url, embedder=default_embedder)
    assert reader.search("later memory", user_id="u", limit=1).results[0].memory.startswith("later memory")
    saving = reader.store._vectors._saving  # type: ignore[attr-defined]
    if saving is not None:
        saving.join()
    seq = read_arrays(Path(f"{db_path}-vectors"))[0]["seq"]
    assert (seq > first) is rewritten  # a tenth of the index re-read: the next process is spared it
    reader.store._vectors._closed = True  # type: ignore[attr-defined]  # leave as a killed reader would
    reader.store.close()


def test_a_derived_memorys_neighbours_are_found_in_the_index_alone(db_path: Path, default_embedder: Embedder) -> None:
    """Reconciling a derived memory searches the scope without its messages: the index knows
    which rows are messages, so that search reads no row of the file (it read every row of the
    scope, cold from disk on a large file), and finds what the same filter finds through SQL."""
    from engramdb.filters import NOT_EPISODES, parse_filter
    from engramdb.stores.base import Query

    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        memory.add("I love hiking in the Alps and my dog is called Rex", user_id="u", session_id="s")
        memory.add("I work as a nurse in Lyon", user_id="u", session_id="s")
        memory.add("hiking notes", user_id="u", kind="fact", infer=False)
        store = memory.store
        vector = default_embedder.embed(["hiking with my dog"], kind="query")[0]
        by_sql = parse_filter({"AND": [{"kind": {"ne": "episode"}}, {"importance": {"gte": 0}}]})
        seen: list[str] = []
        store._conn.set_trace_callback(seen.append)  # type: ignore[attr-defined]
        fast = store.dense_search(Query(tenant_id="default", scope=Scope(user_id="u"), where=NOT_EPISODES), vector, 10)
        rows_read = [s for s in seen if "FROM memories m" in s]
        store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
        slow = store.dense_search(Query(tenant_id="default", scope=Scope(user_id="u"), where=by_sql), vector, 10)
        assert not rows_read
        assert [(h.id, round(h.score, 6)) for h in fast] == [(h.id, round(h.score, 6)) for h in slow]
        kinds = {item.id: item.kind for item in memory.get_all(user_id="u", limit=50).results}
        assert len(fast) >= 2 and all(kinds[h.id] != "episode" for h in fast)
        everything = store.dense_search(Query(tenant_id="default", scope=Scope(user_id="u")), vector, 10)
        assert any(kinds[h.id] == "episode" for h in everything)


def _saved_and_loaded(rows: list[IndexRow], dim: int, folder: Path) -> VectorIndex:
    """An index of ``rows`` at sequence 1, saved to a snapshot and loaded back (mapped)."""
    index = VectorIndex(dim)
    index.upsert(rows)
    index.seq = 1
    index.save(folder / "snap", identity={})
    loaded = VectorIndex.load(folder / "snap", identity={}, max_seq=1)
    assert loaded is not None
    return loaded


def test_which_rows_are_messages_survives_a_snapshot(tmp_path: Path) -> None:
    rows, _ = _rows(40, 8)
    rows = [IndexRow(*(getattr(r, f) for f in ("rowid", "id", "tenant_id", "user_id", "agent_id", "session_id",
                                                 "active", "expires", "vector")), episode=r.rowid % 2 == 0)
            for r in rows]  # fmt: skip
    loaded = _saved_and_loaded(rows, 8, tmp_path)
    derived = loaded.select("t", None, None, None, include_inactive=False, now=0, episodes=False)
    assert {loaded._id_of(int(s)) for s in derived} == {r.id for r in rows if not r.episode}


def test_rows_rewritten_after_a_snapshot_take_only_what_changed(tmp_path: Path) -> None:
    """A catch-up rewrites held rows in place, only the values that changed (a loaded
    snapshot's pages are copied on their first write): a row superseded, a row re-embedded,
    one given an expiry and one unchanged each read back as written."""
    rows, matrix = _rows(6_000, 32)
    loaded = _saved_and_loaded(rows, 32, tmp_path)
    fresh = -matrix[20]
    rewritten = [
        IndexRow(11, "m10", "t", "u1", None, None, False, float("inf"), matrix[10]),  # superseded
        IndexRow(21, "m20", "t", "u2", None, None, True, float("inf"), fresh),  # its text changed
        IndexRow(31, "m30", "t", "u0", None, None, True, 5.0, matrix[30]),  # expires at 5
        rows[40],  # unchanged
    ]
    loaded.upsert(rewritten + rows[-1:])
    assert len(loaded) == 6_000
    visible = {loaded._id_of(int(s)) for s in loaded.select("t", None, None, None, include_inactive=False, now=10)}
    assert "m10" not in visible and "m30" not in visible and {"m20", "m40"} <= visible
    assert "m30" in {loaded._id_of(int(s)) for s in loaded.select("t", None, None, None, include_inactive=False, now=1)}
    everyone = loaded.select("t", None, None, None, include_inactive=False, now=0)
    (best, similarity), *_ = loaded.search(fresh, everyone, 1)
    assert best == "m20" and similarity == pytest.approx(1.0, abs=1e-5)
    assert loaded.search(matrix[40], everyone, 1)[0][0] == "m40"
    slot = loaded._slot[21]
    q8, scale = vectors.quantize(fresh[None, :])
    assert (loaded._q8[slot] == q8[0]).all() and loaded._scale[slot] == scale[0]


def test_a_loaded_snapshot_finds_rewritten_rows_without_building_its_map(tmp_path: Path) -> None:
    """Rows rewritten after a reopen are found by rowid in the mapped column (a binary search
    over its sorted prefix, a scan of the rest), whether they lie in the prefix or after a
    rowid that arrived out of order; none is appended twice, and no rowid map is built."""
    rows, matrix = _rows(6_000, 16)
    late = IndexRow(3, "late", "t", "u0", None, None, True, float("inf"), matrix[2])  # a reused rowid
    loaded = _saved_and_loaded([r for r in rows if r.rowid != 3] + [late], 16, tmp_path)
    assert rowid_search.sorted_prefix(loaded._rowid[: loaded._size]) == 5_999
    gone = [IndexRow(r.rowid, r.id, "t", r.user_id, None, None, False, float("inf"), r.vector) for r in rows[100:110]]
    loaded.upsert([*gone, IndexRow(3, "late", "t", "u0", None, None, False, float("inf"), matrix[2]), rows[-1]])
    assert loaded._slot_map is None and loaded._size == 6_000
    visible = {loaded._id_of(int(s)) for s in loaded.select("t", None, None, None, include_inactive=False, now=0)}
    assert not visible & {"late", *(r.id for r in gone)} and len(visible) == 6_000 - 11
    loaded.upsert(_rows(6_100, 16, seed=1)[0][6_000:])  # after the reused rowid: the prefix stays
    assert loaded._sorted_upto == 5_999 and loaded._size == 6_100 and loaded._slot_map is None
    again = _saved_and_loaded(rows[:5_000], 16, tmp_path)
    again.upsert([rows[10], *rows[5_000:]])  # rows above every rowid held: the prefix grows with them
    assert again._sorted_upto == 6_000 and again._slot_map is None


def test_rowids_are_found_in_a_sorted_prefix_and_an_unsorted_rest() -> None:
    column = np.array([2, 5, 9, 12, 4, 30, 1], dtype=np.int64)
    prefix = rowid_search.sorted_prefix(column)
    assert prefix == 4
    assert rowid_search.find(column, prefix, [9, 4, 1, 7, 30, 2]) == {9: 2, 4: 4, 1: 6, 30: 5, 2: 0}
    assert rowid_search.extends(12, [13, 20]) and not rowid_search.extends(12, [13, 13])
    assert not rowid_search.extends(12, [11]) and rowid_search.extends(-1, [])
