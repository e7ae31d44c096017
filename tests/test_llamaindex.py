"""LlamaIndex: the memory block inside its Memory class, and the retriever."""

from __future__ import annotations

import asyncio

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory as LlamaMemory
from llama_index.core.schema import NodeWithScore

from engramdb import Memory
from engramdb.integrations.llamaindex import EngramMemoryBlock, EngramRetriever
from engramdb.testing import count_tokens


def test_memory_block_recalls_and_records(memory: Memory) -> None:
    memory.add("I'm allergic to peanuts", user_id="alice")
    block = EngramMemoryBlock(name="engramdb", memory=memory, user_id="alice", k=3, threshold=0)  # "nuts": other words
    chat = LlamaMemory.from_defaults(
        session_id="s1", token_limit=4000, memory_blocks=[block], tokenizer_fn=lambda t: [0] * count_tokens(t),
        chat_history_token_ratio=0.001, token_flush_size=1, insert_method="user",
    )  # fmt: skip

    async def turn() -> list[ChatMessage]:
        await chat.aput_messages([
            ChatMessage(role="user", content="Can you suggest a snack without nuts?"),
            ChatMessage(role="assistant", content="Try hummus with carrots."),
            ChatMessage(role="user", content="And something sweet?"),
            ChatMessage(role="assistant", content="Dates or a ripe mango."),
        ])  # fmt: skip
        messages = await chat.aget()
        await chat.sql_store._async_engine.dispose()  # close LlamaIndex's own aiosqlite connection in this loop
        return messages

    messages = asyncio.run(turn())
    assert "I'm allergic to peanuts" in "\n".join(m.content or "" for m in messages)  # recalled into the context
    stored = {i.memory for i in memory.get_all(user_id="alice").results}
    assert "Try hummus with carrots." in stored  # flushed from short-term memory into engramdb


def test_retriever_returns_scored_nodes(memory: Memory) -> None:
    memory.add(["Alice is vegetarian", "Alice lives in Lisbon", "Alice has a dog"], user_id="alice")
    memory.add("Bob is vegetarian", user_id="bob")
    nodes = EngramRetriever(memory, user_id="alice", k=2).retrieve("is alice a vegetarian?")
    assert all(isinstance(n, NodeWithScore) for n in nodes) and len(nodes) == 2
    assert nodes[0].node.get_content() == "Alice is vegetarian" and nodes[0].score is not None
    assert nodes[0].node.node_id == memory.get_all(user_id="alice").results[0].id
