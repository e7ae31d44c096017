"""LangChain: a retriever over engramdb's hybrid recall, a chat history, and a vector store.

``pip install "engramdb[langchain]"``. The retriever and the history take a ``Memory`` or a
remote ``Client`` (same methods), so a chain can move from an embedded store to a server
without changes. ``EngramVectorStore`` (``langchain_vectors``) is LangChain's ``VectorStore``
over a ``Memory``, for code written against one (``VectorStoreRetrieverMemory``, ``as_retriever``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ..models import MemoryItem, SearchHit
from .langchain_vectors import EngramVectorStore

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def to_document(item: MemoryItem | SearchHit) -> Document:
    """A memory as a Document: its text, and id, kind, score, dates and scope as metadata."""
    metadata: dict[str, Any] = {
        "id": item.id, "kind": item.kind, "user_id": item.user_id, "agent_id": item.agent_id,
        "session_id": item.session_id, "created_at": item.created_at.isoformat(),
        "occurred_at": item.occurred_at.isoformat() if item.occurred_at else None,
        **({"score": item.score} if isinstance(item, SearchHit) else {}), **item.metadata,
    }  # fmt: skip
    return Document(page_content=item.memory, metadata=metadata, id=item.id)


class EngramRetriever(BaseRetriever):
    """Relevant memories for a query, within a scope.

    Example::

        retriever = EngramRetriever(memory=Memory(), user_id="alice", k=5)
        retriever.invoke("what can alice eat?")          # -> list[Document]
        retriever.invoke("what can alice eat?", k=2)     # per call
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    k: int = 4
    filters: dict[str, Any] | None = None
    search_options: dict[str, Any] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        hits = self.memory.search(
            query, user_id=kwargs.get("user_id", self.user_id), agent_id=kwargs.get("agent_id", self.agent_id),
            session_id=kwargs.get("session_id", self.session_id), limit=kwargs.get("k", self.k),
            filters=kwargs.get("filters", self.filters), options=self.search_options,
        )  # fmt: skip
        return [to_document(hit) for hit in hits.results]


class EngramChatMessageHistory(BaseChatMessageHistory):
    """A session's turns kept in engramdb: every message is a searchable episode.

    Use it with ``RunnableWithMessageHistory``. System messages are instructions, not
    memories: they are not stored. ``infer=True`` also derives facts and preferences from
    the turns (rules offline, or the configured LLM). A message repeated word for word in
    the same session is kept once (engramdb's exact-duplicate rule).
    """

    def __init__(
        self,
        memory: Any,
        session_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        infer: bool | None = None,
        max_messages: int = 100,
    ) -> None:
        self.memory, self.session_id, self.user_id, self.agent_id = memory, session_id, user_id, agent_id
        self.infer, self.max_messages = infer, max_messages

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        scope = {"session_id": self.session_id, "user_id": self.user_id, "agent_id": self.agent_id}
        if hasattr(self.memory, "recent_turns"):
            turns = self.memory.recent_turns(**scope, limit=self.max_messages)
        else:  # a remote Client: the session's episodes in order
            turns = self.memory.get_all(**scope, kind="episode", limit=self.max_messages).results
        return [_to_message(turn) for turn in turns]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = [
            {"role": _ROLES.get(m.type, "user"), "content": m.text, **({"name": m.name} if m.name else {})}
            for m in messages
            if m.type != "system" and m.text.strip()
        ]
        if batch:
            self.memory.add(batch, user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id,
                            infer=self.infer)  # fmt: skip

    def clear(self) -> None:
        self.memory.delete_all(user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id)


def _to_message(item: MemoryItem) -> BaseMessage:
    role, name = item.provenance.role, item.provenance.name
    if role == "assistant":
        return AIMessage(content=item.memory, id=item.id, name=name)
    if role == "system":
        return SystemMessage(content=item.memory, id=item.id)
    return HumanMessage(content=item.memory, id=item.id, name=name)


__all__ = ["EngramChatMessageHistory", "EngramRetriever", "EngramVectorStore", "to_document"]
