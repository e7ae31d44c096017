"""An MCP server (official ``mcp`` SDK): memory tools for any MCP-speaking agent, stdio or HTTP.

The scope can be fixed by configuration (``engramdb mcp --user alice``): the tools then act
for that user only and a call naming another is refused, so one agent cannot read another
user's memories through the model.

Over HTTP every request needs an API key, as for ``engramdb serve`` (``Authorization: Bearer``
or ``X-API-Key``), checked by an ASGI middleware in front of the SDK's streamable HTTP app.
The key rides in the request's scope to each tool call, which then acts in the key's tenant
and for its users only: a key limited to one user acts for that user when a call names none,
like ``--user``; a call naming a user the key does not reach is a tool error (``forbidden``),
and another user's memory is not found. Over stdio the caller is the local process that
started the server: the flags alone fix the scope.

Every failure is a tool error (``isError: true``) whose text is ``{"error": {"code", "message"}}``
with the codes of the REST API: engramdb's own errors, arguments that do not match a tool's
schema (``invalid_request``), an unknown tool (``not_found``) and an unexpected fault
(``internal_error``, logged here with its traceback, never sent). Each tool declares what it
does to the store (``ToolAnnotations``: read-only, destructive, idempotent), and the server
reports engramdb's version to the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, cast, get_args

import pydantic
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from ..aio import AsyncMemory
from ..errors import EngramError, Unauthorized, ValidationError
from ..memory import Memory
from ..models import ApiKey, MemoryItem
from .access import check_user, owned
from .auth import aauthenticate, presented_secret
from .openapi import error_body

Result = Annotated[CallToolResult, dict[str, Any]]
KEY = "engramdb.key"  # where KeyAuth puts the request's key in the ASGI scope
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
log = logging.getLogger("engramdb.server")

# What each tool does to the store, for clients that confirm or retry by it. No tool reaches
# outside the store (openWorld false). A search counts its hits' accesses, which changes no memory.
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
"""add: the same text again in the same scope is a NOOP; a superseded fact stays in history."""
UPDATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
"""update: the old version stays in history, and each call adds a version."""
DELETES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
"""delete: the memory leaves recall; deleting it again finds nothing to delete."""


class ScopeGuard:
    """What one tool call may act on: the scope fixed by the flags and, over HTTP, the key's users."""

    def __init__(self, user_id: str | None, agent_id: str | None, key: ApiKey | None = None) -> None:
        self.user_id, self.agent_id, self.key = user_id, agent_id, key

    def scope(self, user_id: str | None, agent_id: str | None) -> tuple[str | None, str | None]:
        for fixed, asked, what in ((self.user_id, user_id, "user_id"), (self.agent_id, agent_id, "agent_id")):
            if fixed is not None and asked not in (None, fixed):
                raise ValidationError(f"this server is configured for {what}={fixed!r}")
        user = self.user_id or user_id
        if self.key is not None:
            if user is None and self.key.user_ids is not None and len(self.key.user_ids) == 1:
                user = self.key.user_ids[0]  # the key's one user, bound like --user
            check_user(self.key, user)
        return user, self.agent_id or agent_id

    async def item(self, memory: AsyncMemory, memory_id: str) -> MemoryItem:
        """The memory, if this call may see it (another user's is not found)."""
        item = await (memory.get(memory_id) if self.key is None else owned(memory, self.key, memory_id))
        if (self.user_id and item.user_id != self.user_id) or (self.agent_id and item.agent_id != self.agent_id):
            raise ValidationError("no such memory in this server's scope")
        return item


def tool_error(code: str, message: str) -> CallToolResult:
    """A failure as the model and the client see it: ``isError`` and the server's error JSON."""
    return CallToolResult(is_error=True, content=[TextContent(type="text", text=json.dumps(error_body(code, message)))])


async def _safe(call: Callable[[], Awaitable[Any]]) -> Result:
    """Tool results are JSON; engramdb errors become a tool error the model can read."""
    try:
        result = await call()
    except EngramError as exc:
        return tool_error(exc.code, str(exc))
    data = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data, indent=2))], structured_content=data)


class EngramMCP(MCPServer[Any]):
    """The SDK's server, with the failures it answers itself put in engramdb's error shape.

    The SDK answers arguments that fail a tool's schema, an unknown tool and a crash with a
    plain-text tool error (pydantic's message, a link to its docs, or the tool's name), which
    a client cannot tell apart from each other by code. ``call_tool`` is the SDK's public
    method that raises them; here it answers them instead.
    """

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            log.exception("MCP tool %r failed unexpectedly", name)
            return tool_error("internal_error", f"the tool {name} failed unexpectedly; the server logged why")
        except ToolError as exc:
            invalid = _validation_cause(exc)
            if invalid is not None:
                first = invalid.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                return tool_error("invalid_request", f"{where}: {first['msg']}")
            if name not in {tool.name for tool in await self.list_tools()}:
                return tool_error("not_found", f"no tool named {name!r}")
            return tool_error("validation_error", str(exc))


def _validation_cause(exc: BaseException) -> pydantic.ValidationError | None:
    """The pydantic error behind an SDK error, if any (the SDK may wrap it more than once)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, pydantic.ValidationError):
            return seen
        seen = seen.__cause__
    return None


def build_mcp(
    memory: Memory | AsyncMemory, *, user_id: str | None = None, agent_id: str | None = None,
    log_level: str = "WARNING",
) -> EngramMCP:  # fmt: skip
    """The tools, awaiting one ``AsyncMemory`` (the key's tenant view of it over HTTP).

    ``log_level``: the SDK sets up the process's logging (to stderr) when the server is built;
    at the default only warnings and errors are written, as for ``engramdb serve``.
    """
    from .. import __version__

    if log_level.upper() not in LOG_LEVELS:
        raise ValidationError(f"log_level is one of {', '.join(LOG_LEVELS)}")
    shared = memory if isinstance(memory, AsyncMemory) else AsyncMemory.wrap(memory)
    server = EngramMCP("engramdb", version=__version__, log_level=cast(LogLevel, log_level.upper()),
                       instructions="Long-term memory: add what matters, search before answering.")  # fmt: skip

    def bound(ctx: Context) -> tuple[AsyncMemory, ScopeGuard]:
        """The call's memory (the key's tenant) and guard; the request is None over stdio."""
        request = ctx.request_context.request
        key: ApiKey | None = request.scope.get(KEY) if request is not None else None
        return (shared if key is None else shared.for_tenant(key.tenant_id)), ScopeGuard(user_id, agent_id, key)

    @server.tool(
        title="Add a memory",
        annotations=ADDS,
        description="Remember a text (or chat messages) for a user; facts are derived from it.",
    )
    async def add_memory(
        text: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        async def add() -> Any:
            m, guard = bound(ctx)
            user, agent = guard.scope(user_id, agent_id)
            return await m.add(text, user_id=user, agent_id=agent, session_id=session_id, metadata=metadata)

        return await _safe(add)

    @server.tool(title="Search memories", annotations=READS,
                 description="The memories most relevant to a query, best first, with scores and dates. "
                             "as_of (ISO 8601) answers as things stood then; include_history adds superseded "
                             "memories ('where did she live before?'); reference_date (ISO 8601 with the user's "
                             "UTC offset, default now) is what 'last week' in the query counts from. Nothing "
                             "comes back when no memory's relevance reaches threshold (default: the server's; "
                             "0 always returns the closest).")  # fmt: skip
    async def search_memory(query: str, ctx: Context, user_id: str | None = None, agent_id: str | None = None,
                      limit: int = 5, as_of: str | None = None, include_history: bool = False,
                      reference_date: str | None = None, threshold: float | None = None) -> Result:  # fmt: skip
        async def search() -> Any:
            m, guard = bound(ctx)
            user, agent = guard.scope(user_id, agent_id)
            return await m.search(query, user_id=user, agent_id=agent, limit=limit, as_of=as_of, threshold=threshold,
                            include_invalid=include_history, reference_date=reference_date)  # fmt: skip

        return await _safe(search)

    @server.tool(title="Get a memory", annotations=READS, description="One memory by id.")
    async def get_memory(memory_id: str, ctx: Context) -> Result:
        async def get() -> Any:
            m, guard = bound(ctx)
            return await guard.item(m, memory_id)

        return await _safe(get)

    @server.tool(title="List memories", annotations=READS, description="A page of memories (cursor pagination).")
    async def list_memories(ctx: Context, user_id: str | None = None, agent_id: str | None = None,
                      cursor: str | None = None, limit: int = 50) -> Result:  # fmt: skip
        async def page() -> Any:
            m, guard = bound(ctx)
            user, agent = guard.scope(user_id, agent_id)
            return await m.get_all(user_id=user, agent_id=agent, cursor=cursor, limit=limit)

        return await _safe(page)

    @server.tool(
        title="Update a memory",
        annotations=UPDATES,
        description="Change a memory's text and/or metadata (the old version stays in history).",
    )
    async def update_memory(memory_id: str, ctx: Context, text: str | None = None,
                      metadata: dict[str, Any] | None = None) -> Result:  # fmt: skip
        async def update() -> Any:
            m, guard = bound(ctx)
            await guard.item(m, memory_id)
            return await m.update(memory_id, text, metadata=metadata)

        return await _safe(update)

    @server.tool(title="Delete a memory", annotations=DELETES, description="Delete a memory.")
    async def delete_memory(memory_id: str, ctx: Context) -> Result:
        async def delete() -> Any:
            m, guard = bound(ctx)
            await guard.item(m, memory_id)
            return await m.delete(memory_id)

        return await _safe(delete)

    @server.tool(title="Get context", annotations=READS,
                 description="A prompt-ready block: facts about the user, relevant memories, recent turns. "
                             "reference_date (ISO 8601 with the user's UTC offset, default now) is what 'last "
                             "week' counts from, and the dates shown are in its offset.")  # fmt: skip
    async def get_context(query: str, ctx: Context, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None, max_tokens: int = 1500,
                    reference_date: str | None = None) -> Result:  # fmt: skip
        async def context() -> Any:
            m, guard = bound(ctx)
            user, agent = guard.scope(user_id, agent_id)
            return await m.context(query, user_id=user, agent_id=agent, session_id=session_id, max_tokens=max_tokens,
                             reference_date=reference_date)  # fmt: skip

        return await _safe(context)

    return server


class KeyAuth:
    """ASGI: an HTTP request without a valid API key is answered 401; with one, the key is put
    in the scope, where the tool calls of that request find it."""

    def __init__(self, app: Any, memory: Memory) -> None:
        self.app, self.memory = app, memory

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            key = await aauthenticate(self.memory.store, presented_secret(Headers(scope=scope)),
                                      networked=self.memory.async_reads is not None)  # fmt: skip
            if key is None:
                message = "a valid API key is required (Authorization: Bearer <key> or X-API-Key)"
                body = error_body(Unauthorized.code, message)
                await JSONResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
            scope = {**scope, KEY: key}
        await self.app(scope, receive, send)


def http_app(server: MCPServer, memory: Memory, *, host: str = "127.0.0.1", auth: bool = True) -> Any:
    """The SDK's streamable HTTP app at ``/mcp``, behind ``KeyAuth`` unless ``auth`` is off."""
    app = server.streamable_http_app(host=host)
    return KeyAuth(app, memory) if auth else app
