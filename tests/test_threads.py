"""numpy's thread pools are limited when a Memory opens (``blas_threads``), or left alone."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from engramdb import Memory, MemoryConfig
from engramdb.embedders import Embedder


def _threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info()}


def test_a_memory_limits_the_pools_to_its_setting(default_embedder: Embedder) -> None:
    with threadpool_limits(limits=2):  # restored afterwards, for the other tests of this process
        assert _threads() == {2}
        with Memory(":memory:", embedder=default_embedder):
            assert _threads() == {1}  # the default
        with Memory(":memory:", embedder=default_embedder, config=MemoryConfig(blas_threads=None)):
            assert _threads() == {1}  # None changes nothing
        threadpool_limits(limits=2)
        with Memory(":memory:", embedder=default_embedder, config=MemoryConfig(blas_threads=None)):
            assert _threads() == {2}
