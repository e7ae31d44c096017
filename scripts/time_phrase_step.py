"""Time the phrase step of a search: ``find_time_range`` on English queries (and others), p50 and p90.

The search path calls it on every query, so what it costs a query that names no time is paid
by nearly every search. Run it before and after a change to the time phrases::

    python scripts/time_phrase_step.py [--repeat 2000]

Queries with a time phrase are resolved once before timing (the resolution is cached per
phrase and day, as it is in a running process), so the numbers are those of a warm process.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from datetime import datetime, timezone

from engramdb.retrieval.temporal import find_time_range

NO_TIME = [
    "what can alice eat?",
    "which snack should I buy for the party",
    "does bob have any pets or allergies",
    "remind me what my sister's husband does for a living",
    "what is the name of the restaurant we liked",
    "how do I configure the database connection pool size",
]
WITH_TIME = [
    "what did I do last week?",
    "where did we go yesterday",
    "what did she say two days ago about the trip",
    "what happened in March",
    "what did we do last summer",
]
OTHER_LANGUAGES = [  # resolved only since the phrase step reads them; before, nothing was found in them
    "¿qué hice la semana pasada?",
    "was habe ich vor zwei Tagen gesagt?",
    "où étions-nous l'été dernier ?",
    "o que aconteceu em março?",
    "cosa ho mangiato ieri?",
]
REFERENCE = datetime(2024, 5, 15, 12, tzinfo=timezone.utc)


def p50_p90(queries: list[str], repeat: int) -> tuple[float, float]:
    """Microseconds per call over every query, each call timed on its own."""
    for query in queries:
        find_time_range(query, REFERENCE)  # warm the caches and the compiled patterns
    samples = []
    for query in queries:
        timer = timeit.Timer(lambda q=query: find_time_range(q, REFERENCE))  # type: ignore[misc]
        samples.extend(t * 1e6 for t in timer.repeat(repeat=repeat, number=1))
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    groups = (("no time phrase", NO_TIME), ("a time phrase", WITH_TIME), ("es de fr pt it", OTHER_LANGUAGES))
    for label, queries in groups:
        p50, p90 = p50_p90(queries, args.repeat)
        print(f"{label:>15}: p50 {p50:6.1f} µs   p90 {p90:6.1f} µs   ({len(queries)} queries x {args.repeat})")


if __name__ == "__main__":
    main()
