"""LangChain: the retriever and the vector store pass langchain-tests' standard suites; the history
drives a real chain; the vector store scores by cosine similarity and filters on metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from engramdb import Memory, MemoryConfig
from engramdb.errors import ConfigurationError, ValidationError
from engramdb.integrations.langchain import EngramChatMessageHistory, EngramRetriever, EngramVectorStore
from engramdb.testing import Reply, ScriptedOpenAIServer

FACTS = [
    "Alice is vegetarian", "Alice is allergic to peanuts", "Alice loves Thai food", "Alice lives in Lisbon",
    "Alice has a dog named Biscuit", "Alice works as a nurse",
]  # fmt: skip


class TestEngramRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _memory(self, tmp_path: Path) -> Any:
        self.store = Memory(f"sqlite:///{tmp_path / 'lc.db'}", config=MemoryConfig(infer=False))
        self.store.add(FACTS, user_id="alice")
        yield
        self.store.close()

    @property
    def retriever_constructor(self) -> type[EngramRetriever]:
        return EngramRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.store, "user_id": "alice"}

    @property
    def retriever_query_example(self) -> str:
        return "what food does alice like?"


class TestEngramVectorStoreStandard(VectorStoreIntegrationTests):
    """langchain-tests' vector store suite, unmodified, on SQLite and on PostgreSQL."""

    @pytest.fixture
    def vectorstore(self, store_url: str) -> Iterator[EngramVectorStore]:  # type: ignore[override]
        store = EngramVectorStore(store_url, embedding=self.get_embeddings())
        try:
            yield store
        finally:
            store.close()


def test_vector_store_scores_are_cosine_similarities(memory: Memory) -> None:
    store = EngramVectorStore(memory, user_id="alice")
    store.add_texts(FACTS, metadatas=[{"topic": "food" if i < 3 else "life", "n": i} for i in range(6)],
                    ids=[f"f{i}" for i in range(6)])  # fmt: skip
    scored = store.similarity_search_with_score("what can alice eat?", k=6)
    query = memory.embedder.embed(["what can alice eat?"], kind="query")[0]
    for doc, score in scored:
        expected = float(memory.embedder.embed([doc.page_content])[0] @ query)
        assert score == pytest.approx(expected, abs=1e-5) and -1 <= score <= 1
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
    relevance = store.similarity_search_with_relevance_scores("what can alice eat?", k=2)
    assert [r for _, r in relevance] == pytest.approx([(1 + s) / 2 for _, s in scored[:2]])
    assert {d.id for d in store.similarity_search("alice", k=6, filter={"topic": "food"})} == {"f0", "f1", "f2"}
    assert {d.id for d in store.similarity_search("alice", k=6, filter={"n": {"$gte": 4}})} == {"f4", "f5"}
    either = {"$or": [{"n": 0}, {"topic": {"$eq": "life"}, "n": {"$in": [3, 5]}}]}
    assert {d.id for d in store.similarity_search("alice", k=6, filter=either)} == {"f0", "f3", "f5"}
    assert store.get_by_ids(["f3", "missing"])[0].metadata == {"topic": "life", "n": 3}
    hits = memory.search("allergic", user_id="alice").results  # the documents are memories of alice
    assert hits[0].memory == "Alice is allergic to peanuts" and hits[0].metadata["lc_id"] == "f1"


def test_vector_store_retrievers_and_the_retriever_memory_pattern(memory: Memory) -> None:
    store = EngramVectorStore.from_texts(FACTS, DeterministicFakeEmbedding(size=16), ids=[str(i) for i in range(6)])
    assert len(store.as_retriever(search_kwargs={"k": 3}).invoke("Alice lives in Lisbon")) == 3
    assert store.as_retriever(search_kwargs={"k": 1}).invoke("Alice lives in Lisbon")[0].id == "3"
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 6}).invoke("Alice lives in Lisbon")
    assert mmr[0].id == "3" and len({d.id for d in mmr}) == 3
    store.close()
    # VectorStoreRetrieverMemory: each exchange saved as a document, the relevant ones loaded back
    saved = EngramVectorStore(memory, collection="chat", user_id="bob")
    for said, answer in [("My favourite sport is soccer", "Nice!"), ("I don't like the Celtics", "Ok."),
                         ("I live in Boston", "Great city.")]:  # fmt: skip
        saved.add_documents([Document(page_content=f"input: {said}\noutput: {answer}")])
    loaded = saved.as_retriever(search_kwargs={"k": 1}).invoke("what sport should I watch?")
    assert loaded[0].page_content == "input: My favourite sport is soccer\noutput: Nice!"
    assert saved.delete() is True and saved.similarity_search("sport") == []


def test_vector_store_refuses_what_it_cannot_honour(memory: Memory) -> None:
    store = EngramVectorStore(memory)
    with pytest.raises(ConfigurationError, match="pass a store URL"):
        EngramVectorStore(memory, embedding=DeterministicFakeEmbedding(size=8))
    with pytest.raises(ValidationError, match="no option"):
        store.similarity_search("x", k=1, fetch_everything=True)
    with pytest.raises(ValidationError, match="lc_id"):
        store.add_texts(["x"], metadatas=[{"lc_id": "mine"}])
    with pytest.raises(ValidationError, match="give one each"):
        store.add_texts(["x", "y"], ids=["1"])
    with pytest.raises(ValidationError, match="operator"):
        store.similarity_search("x", filter={"n": {"$regex": "x"}})
    with pytest.raises(ValidationError, match="k must"):
        store.similarity_search("x", k=0)
    with pytest.raises(ValidationError):
        store.add_texts([""])
    assert store.similarity_search("x") == []  # nothing was written


def test_retriever_documents_carry_ids_scores_and_scope(memory: Memory) -> None:
    memory.add(FACTS, user_id="alice", metadata={"topic": "profile"})
    memory.add("Bob is vegetarian too", user_id="bob")
    retriever = EngramRetriever(memory=memory, user_id="alice", k=2, search_options={"threshold": 0})
    docs = retriever.invoke("what can alice eat?")
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 2
    assert {"Alice is vegetarian", "Alice is allergic to peanuts"} & {d.page_content for d in docs}
    assert all(d.metadata["user_id"] == "alice" and d.metadata["topic"] == "profile" for d in docs)
    assert docs[0].metadata["score"] >= docs[1].metadata["score"] and docs[0].id == docs[0].metadata["id"]
    bob = EngramRetriever(memory=memory, user_id="bob", search_options={"threshold": 0})  # "diet": no word said
    assert bob.invoke("diet")[0].page_content == "Bob is vegetarian too"


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_history_records_turns_and_feeds_a_chain(memory: Memory) -> None:
    """The classic ConversationChain pattern on today's LangChain, with a real OpenAI-protocol model."""
    from langchain_openai import ChatOpenAI

    with ScriptedOpenAIServer() as server:
        server.script(Reply(content="Nice to meet you, Alice!"), Reply(content="You told me you live in Lisbon."))
        model = ChatOpenAI(base_url=server.base_url, api_key="test", model="scripted")  # type: ignore[arg-type]
        prompt = ChatPromptTemplate.from_messages(
            [("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{input}")]
        )
        chain = RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: EngramChatMessageHistory(memory, session_id, user_id="alice"),
            input_messages_key="input",
            history_messages_key="history",
        )
        config = {"configurable": {"session_id": "chat-1"}}
        chain.invoke({"input": "Hi, I'm Alice and I live in Lisbon"}, config=config)  # type: ignore[arg-type]
        answer = chain.invoke({"input": "Where do I live?"}, config=config)  # type: ignore[arg-type]
        assert answer.content == "You told me you live in Lisbon."
        second_call = server.requests[-1]["body"]["messages"]
        earlier = [m["content"] for m in second_call[1:3]]
        assert earlier == ["Hi, I'm Alice and I live in Lisbon", "Nice to meet you, Alice!"]

    history = EngramChatMessageHistory(memory, "chat-1", user_id="alice")
    assert [type(m) for m in history.messages] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    hits = memory.search("Lisbon", user_id="alice", limit=2).results
    assert "Hi, I'm Alice and I live in Lisbon" in [h.memory for h in hits]  # the turns are searchable memories
    history.add_messages([SystemMessage(content="not a memory")])
    assert len(history.messages) == 4
    history.clear()
    assert history.messages == []
