"""LangChain: the retriever passes langchain-tests' standard suite; the history drives a real chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_tests.integration_tests import RetrieversIntegrationTests

from engramdb import Memory, MemoryConfig
from engramdb.integrations.langchain import EngramChatMessageHistory, EngramRetriever
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


def test_retriever_documents_carry_ids_scores_and_scope(memory: Memory) -> None:
    memory.add(FACTS, user_id="alice", metadata={"topic": "profile"})
    memory.add("Bob is vegetarian too", user_id="bob")
    docs = EngramRetriever(memory=memory, user_id="alice", k=2).invoke("what can alice eat?")
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 2
    assert {"Alice is vegetarian", "Alice is allergic to peanuts"} & {d.page_content for d in docs}
    assert all(d.metadata["user_id"] == "alice" and d.metadata["topic"] == "profile" for d in docs)
    assert docs[0].metadata["score"] >= docs[1].metadata["score"] and docs[0].id == docs[0].metadata["id"]
    assert EngramRetriever(memory=memory, user_id="bob").invoke("diet")[0].page_content == "Bob is vegetarian too"


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
