"""LlamaIndex: engramdb as a long-term memory block of its Memory class, and as a retriever."""

import asyncio
import tempfile
from pathlib import Path

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory as ChatMemory

from engramdb import Memory
from engramdb.integrations.llamaindex import EngramMemoryBlock, EngramRetriever
from engramdb.testing import count_tokens


async def main(memory: Memory) -> None:
    memory.add("I'm allergic to peanuts", user_id="alice")
    chat = ChatMemory.from_defaults(
        session_id="s1", token_limit=2000, tokenizer_fn=lambda text: [0] * count_tokens(text),
        memory_blocks=[EngramMemoryBlock(name="long_term", memory=memory, user_id="alice", threshold=0)],  # any turn
    )  # fmt: skip
    await chat.aput(ChatMessage(role="user", content="Any snack ideas without nuts?"))
    for message in await chat.aget():
        print(f"{message.role.value}: {message.content}")
    await chat.sql_store._async_engine.dispose()


with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{Path(tmp) / 'li.db'}") as memory:
    asyncio.run(main(memory))
    nodes = EngramRetriever(memory, user_id="alice", k=2).retrieve("what is alice allergic to?")
    for node in nodes:
        print(f"retrieved {node.score:.2f}: {node.node.get_content()}")
    assert any("peanuts" in node.node.get_content() for node in nodes)
