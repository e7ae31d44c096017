"""Copy a whole store to another backend (SQLite ⇄ PostgreSQL) and prove the copy is whole.

Every table moves as it is: ids, tenants, vectors (no re-embedding), history, derived-memory
sources, extraction jobs and API keys. The target must be empty. The source is read from one
snapshot, so a store that is being written to is copied as it was at one moment, every table
agreeing with the others. After the copy the target is read again in key order and each
table's row count and SHA-256 over a canonical row form must match the snapshot's, or the
migration fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from .errors import ConfigurationError, StoreError
from .stores import Store, open_store
from .stores.portable import TABLES, Checksum, Snapshots, Table, TableReader

Progress = Callable[[str, int, int], None]  # table, rows done, rows in the table


class TableReport(BaseModel):
    table: str
    source_rows: int
    target_rows: int
    source_sha256: str
    target_sha256: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sha256 == self.target_sha256


class MigrationReport(BaseModel):
    source: str
    target: str
    embedder: str | None
    tables: list[TableReport]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


def migrate_store(source_url: str, target_url: str, *, progress: Progress | None = None) -> MigrationReport:
    """Copy ``source_url`` into the empty store at ``target_url``, then verify counts and checksums.

    Raises:
        ConfigurationError: the target is not empty, or source and target are the same.
        StoreError: the verification found a difference.
    """
    if source_url == target_url:
        raise ConfigurationError("source and target are the same store")
    source, target = open_store(source_url), open_store(target_url)
    try:
        return _copy(source, target, progress or (lambda table, done, total: None))
    finally:
        source.close()
        target.close()


def _copy(source: Store, target: Store, progress: Progress) -> MigrationReport:
    busy = [t.name for t in TABLES if target.count_rows(t.name)]
    if busy:
        raise ConfigurationError(f"the target store is not empty ({', '.join(busy)}); migrate into a new one")
    if not isinstance(source, Snapshots):
        raise ConfigurationError(f"{source.location} cannot be read in one snapshot, so it cannot be copied whole")
    with source.snapshot() as reader:
        # read after the snapshot began: a binding is never changed once made, and any memory the
        # snapshot holds was written after it, so the copy's vectors always come with their embedder
        binding = source.binding()
        if binding is not None:
            target.bind_embedder(*binding)
        copies = [_copy_table(reader, target, table, progress) for table in TABLES]
    reports = []
    for table, copied in zip(TABLES, copies, strict=True):
        check = Checksum()
        for rows in target.iter_rows(table.name):
            check.update(table, rows)
        reports.append(TableReport(table=table.name, source_rows=copied.count, target_rows=check.count,
                                   source_sha256=copied.digest, target_sha256=check.digest))  # fmt: skip
    report = MigrationReport(source=source.location, target=target.location,
                             embedder=binding[0] if binding else None, tables=reports)  # fmt: skip
    if not report.ok:
        bad = ", ".join(t.table for t in report.tables if not t.ok)
        raise StoreError(f"verification failed: {bad} differ between source and target")
    return report


def _copy_table(source: TableReader, target: Store, table: Table, progress: Progress) -> Checksum:
    total, check = source.count_rows(table.name), Checksum()
    progress(table.name, 0, total)
    for rows in source.iter_rows(table.name):
        target.write_rows(table.name, rows)
        check.update(table, rows)
        progress(table.name, check.count, total)
    return check
