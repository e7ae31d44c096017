"""LangChain: the classic VectorStoreRetrieverMemory pattern, on engramdb's VectorStore.

Each exchange is saved as a document ("input: ... / output: ..."), and before each new turn
the most relevant earlier ones are fetched back with ``as_retriever`` (what
VectorStoreRetrieverMemory did on Chroma or FAISS). The documents are engramdb memories of the
user, so engramdb's own search and context see them as well.
"""

import tempfile
from pathlib import Path

from engramdb import Memory
from engramdb.integrations.langchain import EngramVectorStore

with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{Path(tmp) / 'docs.db'}") as memory:
    store = EngramVectorStore(memory, collection="chat-memory", user_id="alice")
    for said, answer in [("My favourite sport is soccer", "Nice, who do you support?"),
                         ("I don't like the Celtics", "Fair enough."),
                         ("I live in Lisbon with my dog Biscuit", "Lisbon is lovely.")]:  # fmt: skip
        store.add_texts([f"input: {said}\noutput: {answer}"], metadatas=[{"kind": "exchange"}])

    retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"kind": "exchange"}})
    relevant = retriever.invoke("which sport should I watch tonight?")
    print("relevant history:", relevant[0].page_content.splitlines()[0])
    assert relevant[0].page_content.startswith("input: My favourite sport is soccer")

    for doc, score in store.similarity_search_with_score("tell me about Biscuit", k=3):
        print(f"  {score:+.3f}  {doc.page_content.splitlines()[0]}")  # cosine similarity, best first
    # a VectorStore ranks by the vectors alone; engramdb's own search adds BM25 to them
    hybrid = memory.search("where do I live?", user_id="alice", limit=1).results[0]
    print("engramdb's search:", hybrid.memory.splitlines()[0])
    assert "Lisbon" in hybrid.memory
