"""An MCP server (official ``mcp`` SDK): memory tools for any MCP-speaking agent, stdio or HTTP.

The scope can be fixed by configuration (``engramdb mcp --user alice``): the tools then act
for that user only and a call naming another is refused, so one agent cannot read another
user's memories through the model.
"""

from __future__ import annotations

from typing import Any

from ..errors import EngramError, ValidationError
from ..memory import Memory


class ScopeGuard:
    def __init__(self, user_id: str | None, agent_id: str | None) -> None:
        self.user_id, self.agent_id = user_id, agent_id

    def scope(self, user_id: str | None, agent_id: str | None) -> tuple[str | None, str | None]:
        for fixed, asked, what in ((self.user_id, user_id, "user_id"), (self.agent_id, agent_id, "agent_id")):
            if fixed is not None and asked not in (None, fixed):
                raise ValidationError(f"this server is configured for {what}={fixed!r}")
        return self.user_id or user_id, self.agent_id or agent_id

    def check(self, item_user: str | None, item_agent: str | None) -> None:
        if (self.user_id and item_user != self.user_id) or (self.agent_id and item_agent != self.agent_id):
            raise ValidationError("no such memory in this server's scope")


def _safe(call: Any) -> dict[str, Any]:
    """Tool results are JSON; engramdb errors become an error object the model can read."""
    try:
        result = call()
    except EngramError as exc:
        return {"error": {"code": exc.code, "message": str(exc)}}
    return result.model_dump(mode="json") if hasattr(result, "model_dump") else result  # type: ignore[no-any-return]


def build_mcp(memory: Memory, *, user_id: str | None = None, agent_id: str | None = None) -> Any:
    from mcp.server.mcpserver import MCPServer

    guard = ScopeGuard(user_id, agent_id)
    server = MCPServer("engramdb", instructions="Long-term memory: add what matters, search before answering.")

    @server.tool(description="Remember a text (or chat messages) for a user; facts are derived from it.")
    def add_memory(
        text: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        def add() -> Any:
            user, agent = guard.scope(user_id, agent_id)
            return memory.add(text, user_id=user, agent_id=agent, session_id=session_id, metadata=metadata)

        return _safe(add)

    @server.tool(description="The memories most relevant to a query, best first, with scores and dates. "
                             "as_of (ISO 8601) answers as things stood then; include_history adds superseded "
                             "memories ('where did she live before?'); reference_date (ISO 8601 with the user's "
                             "UTC offset, default now) is what 'last week' in the query counts from.")  # fmt: skip
    def search_memory(query: str, user_id: str | None = None, agent_id: str | None = None, limit: int = 5,
                      as_of: str | None = None, include_history: bool = False,
                      reference_date: str | None = None) -> dict[str, Any]:  # fmt: skip
        def search() -> Any:
            user, agent = guard.scope(user_id, agent_id)
            return memory.search(query, user_id=user, agent_id=agent, limit=limit, as_of=as_of,
                                 include_invalid=include_history, reference_date=reference_date)  # fmt: skip

        return _safe(search)

    @server.tool(description="One memory by id.")
    def get_memory(memory_id: str) -> dict[str, Any]:
        def get() -> Any:
            item = memory.get(memory_id)
            guard.check(item.user_id, item.agent_id)
            return item

        return _safe(get)

    @server.tool(description="A page of memories (cursor pagination).")
    def list_memories(user_id: str | None = None, agent_id: str | None = None, cursor: str | None = None,
                      limit: int = 50) -> dict[str, Any]:  # fmt: skip
        def page() -> Any:
            user, agent = guard.scope(user_id, agent_id)
            return memory.get_all(user_id=user, agent_id=agent, cursor=cursor, limit=limit)

        return _safe(page)

    @server.tool(description="Change a memory's text and/or metadata (the old version stays in history).")
    def update_memory(
        memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        def update() -> Any:
            get_memory_checked(memory_id)
            return memory.update(memory_id, text, metadata=metadata)

        return _safe(update)

    @server.tool(description="Delete a memory.")
    def delete_memory(memory_id: str) -> dict[str, Any]:
        def delete() -> Any:
            get_memory_checked(memory_id)
            return memory.delete(memory_id)

        return _safe(delete)

    @server.tool(description="A prompt-ready block: facts about the user, relevant memories, recent turns. "
                             "reference_date (ISO 8601 with the user's UTC offset, default now) is what 'last "
                             "week' counts from, and the dates shown are in its offset.")  # fmt: skip
    def get_context(query: str, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None, max_tokens: int = 1500,
                    reference_date: str | None = None) -> dict[str, Any]:  # fmt: skip
        def context() -> Any:
            user, agent = guard.scope(user_id, agent_id)
            return memory.context(query, user_id=user, agent_id=agent, session_id=session_id, max_tokens=max_tokens,
                                  reference_date=reference_date)  # fmt: skip

        return _safe(context)

    def get_memory_checked(memory_id: str) -> None:
        item = memory.get(memory_id)
        guard.check(item.user_id, item.agent_id)

    return server
