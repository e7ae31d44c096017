"""How many threads numpy's BLAS and OpenMP pools may use in this process (``blas_threads``).

A search is a matrix-vector product over one scope and a few small array operations: work
of a few milliseconds that one thread does faster than a pool of them. With the libraries'
default pool (one thread per core) the threads hand the work around and, on a loaded
2-core machine, wait for each other: search was 3-4 times slower (12.0 vs 2.7-4.2 ms p50)
and burned 1.8 times the CPU on a quiet one. ``Memory`` therefore limits the pools when it
opens (0.2 ms; every pool loaded by then, the embedder's included). ``blas_threads=None``
leaves them as they are, for a program that does heavy linear algebra of its own.
"""

from __future__ import annotations


def limit_blas_threads(threads: int | None) -> None:
    """Limit every BLAS and OpenMP pool loaded in the process to ``threads`` (None: no change)."""
    if threads is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
