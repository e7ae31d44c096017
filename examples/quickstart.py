"""Remember and recall, offline: the bundled embedder and a throwaway SQLite file."""

import tempfile
from pathlib import Path

from engramdb import Memory

with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{Path(tmp) / 'demo.db'}") as memory:
    memory.add("I'm vegetarian and allergic to peanuts", user_id="alice")
    memory.add(
        [
            {"role": "user", "name": "Alice", "content": "Book me a window seat on the flight to Lisbon"},
            {"role": "assistant", "content": "Done: seat 14A."},
        ],
        user_id="alice",
        session_id="trip-1",
    )
    memory.add("My sister Maya lives in Porto", user_id="alice")
    expected = {"what is alice allergic to?": "peanuts", "what seat did alice book?": "window seat"}
    for question, answer in expected.items():
        print(f"\n{question}")
        hits = memory.search(question, user_id="alice", limit=3).results
        for hit in hits:
            print(f"  {hit.score:.3f}  {hit.memory}")
        assert any(answer in hit.memory for hit in hits), f"{question!r} did not recall {answer!r}"
