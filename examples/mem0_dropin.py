"""mem0 code on engramdb: only the import changes (mem0's configuration included)."""

import tempfile
from pathlib import Path

from engramdb.compat.mem0 import Memory  # was: from mem0 import Memory

with tempfile.TemporaryDirectory() as tmp:
    # mem0's own configuration: its local vector store's path is where engramdb's file goes
    config = {"vector_store": {"provider": "qdrant", "config": {"path": tmp, "collection_name": "mem0"}}}
    with Memory.from_config(config) as m:
        print(m.add([{"role": "user", "content": "I'm vegetarian and I live in Paris"}], user_id="alice"))
        results = m.search("where does alice live?", filters={"user_id": "alice"}, top_k=3)["results"]
        for r in results:
            print(f"{r['score']:.2f}  {r['memory']}")
        fact = next(r for r in m.get_all(filters={"user_id": "alice"})["results"] if "Paris" in r["memory"])
        m.update(fact["id"], text="The user lives in Lyon")
        events = [h["event"] for h in m.history(fact["id"])]
        print(events)
        assert events == ["ADD", "UPDATE"], events
    assert (Path(tmp) / "engramdb.db").is_file()
