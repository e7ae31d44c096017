"""A search with ``explain`` says which time range it resolved to: the one its words name
(against ``reference_date``) or the ``time_range`` given, on both stores, sync and async, in the
library and over REST; without ``explain`` (or with no time in the query) there is none."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from live import serving

from engramdb import AsyncMemory, Client, Memory
from engramdb.embedders import Embedder

ASKED = "what did I do last Friday"
TUESDAY = "2024-05-14T12:00:00Z"
FRIDAY = (datetime(2024, 5, 10, tzinfo=timezone.utc), datetime(2024, 5, 11, tzinfo=timezone.utc))


def seeded(url: str, embedder: Embedder) -> Memory:
    m = Memory(url, embedder=embedder)
    m.add("I went hiking", user_id="ana", occurred_at="2024-05-10T10:00:00Z", infer=False)
    return m


def test_the_library_reports_the_range_on_both_stores(store_url: str, default_embedder: Embedder) -> None:
    with seeded(store_url, default_embedder) as m:
        read = m.search(ASKED, user_id="ana", explain=True, reference_date=TUESDAY).time_range
        assert read is not None and (read.start, read.end) == FRIDAY
        assert (read.expression, read.source) == ("last Friday", "query")
        given = m.search("hiking", user_id="ana", explain=True, time_range=("2024-05-01T00:00:00Z", None))
        assert given.time_range is not None and given.time_range.source == "time_range"
        assert (given.time_range.start, given.time_range.end) == (datetime(2024, 5, 1, tzinfo=timezone.utc), None)
        assert m.search(ASKED, user_id="ana", reference_date=TUESDAY).time_range is None  # without explain
        assert m.search("hiking", user_id="ana", explain=True).time_range is None  # no time named


def test_async_memory_reports_it_too(store_url: str, default_embedder: Embedder) -> None:
    async def ask() -> object:
        async with AsyncMemory.wrap(seeded(store_url, default_embedder)) as m:  # natively awaited on PostgreSQL
            return (await m.search(ASKED, user_id="ana", explain=True, reference_date=TUESDAY)).time_range

    read = asyncio.run(ask())
    assert read is not None and (read.start, read.end, read.source) == (*FRIDAY, "query")  # type: ignore[attr-defined]


def test_rest_and_the_client_report_it(default_embedder: Embedder) -> None:
    with seeded(":memory:", default_embedder) as m, serving(m) as (url, secret), Client(url, secret) as client:
        read = client.search(ASKED, user_id="ana", explain=True, reference_date=TUESDAY).time_range
        assert read is not None and (read.start, read.end, read.expression) == (*FRIDAY, "last Friday")
        assert client.search(ASKED, user_id="ana", reference_date=TUESDAY).time_range is None
