"""LlamaIndex: a memory block for its ``Memory`` class, and a retriever over engramdb recall.

``pip install "engramdb[llamaindex]"``. The block puts the memories relevant to the latest
messages into the agent's context and records the messages that leave short-term memory
(or every message, with ``accept_short_term_memory``) as engramdb episodes, from which
facts are derived (rules offline, or the configured LLM).
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory import BaseMemoryBlock
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import Field

from ..models import SearchHit

_ROLES = {MessageRole.USER: "user", MessageRole.ASSISTANT: "assistant"}


def to_node(hit: SearchHit) -> NodeWithScore:
    metadata = {"kind": hit.kind, "created_at": hit.created_at.isoformat(), **hit.metadata}
    if hit.occurred_at is not None:
        metadata["occurred_at"] = hit.occurred_at.isoformat()
    return NodeWithScore(node=TextNode(id_=hit.id, text=hit.memory, metadata=metadata), score=hit.score)


class EngramMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memories for LlamaIndex's ``Memory``: recalled per turn, recorded as they age out."""

    memory: Any = Field(description="an engramdb Memory or Client")
    user_id: str | None = None
    agent_id: str | None = None
    k: int = Field(default=5, ge=1, le=100)
    context_window: int = Field(default=2, ge=1, description="latest messages that form the query")
    threshold: float | None = Field(default=None, description="Memory.search's; None: the configured default")

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        query = "\n".join(m.content or "" for m in (messages or [])[-self.context_window :]).strip()
        if not query:
            return ""
        result = await asyncio.to_thread(
            self.memory.search,
            query,
            user_id=self.user_id,
            agent_id=self.agent_id,
            limit=self.k,
            threshold=self.threshold,
        )
        return "\n".join(f"- {h.memory} ({(h.occurred_at or h.created_at).date()})" for h in result.results)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        batch = [
            {"role": _ROLES[m.role], "content": m.content}
            for m in messages
            if m.role in _ROLES and (m.content or "").strip()
        ]
        session = next((m.additional_kwargs.get("session_id") for m in messages), None)
        if batch:
            await asyncio.to_thread(
                self.memory.add, batch, user_id=self.user_id, agent_id=self.agent_id, session_id=session
            )


class EngramRetriever(BaseRetriever):
    """engramdb's hybrid recall as a LlamaIndex retriever (``NodeWithScore`` per memory)."""

    def __init__(self, memory: Any, *, user_id: str | None = None, agent_id: str | None = None,
                 session_id: str | None = None, k: int = 5, filters: dict[str, Any] | None = None,
                 threshold: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self._memory, self._k, self._filters, self._threshold = memory, k, filters, threshold
        self._scope = {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._memory.search(
            query_bundle.query_str, **self._scope, limit=self._k, filters=self._filters, threshold=self._threshold
        )
        return [to_node(h) for h in hits.results]


__all__ = ["EngramMemoryBlock", "EngramRetriever", "to_node"]
