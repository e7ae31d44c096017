"""An OpenAI-compatible proxy that gives an existing chat app memory with one URL change.

``engramdb proxy --upstream https://api.openai.com/v1`` listens for ``POST
/v1/chat/completions`` and ``POST /v1/responses`` (OpenAI's Responses API). For a request that
names a user (the ``X-Engram-User`` header, else the request's ``user`` field) it puts
engramdb's context block for the user's latest message into the system prompt (chat) or the
``instructions`` (responses: ``proxy_turns`` says why there), forwards the request, returns the
answer as it came (streamed or not), and records the turn, the user's message and the reply,
as memories — except a message that says nothing (``"ok"``, ``"Noted!"``, ``"thanks 👍"``:
``proxy_turns.contentless``), which is never recorded, so never recalled as a memory.
``X-Engram-Session`` scopes the turn to a session. Requests without a user, and every other
route, pass through unchanged.

Every request needs an engramdb API key, as for ``engramdb serve``: ``X-API-Key: egm_…``
(the caller's ``Authorization`` then goes upstream untouched) or ``Authorization: Bearer
egm_…`` (then nothing does). The memories are the key's tenant's, a key limited to some users
may only name those (403 otherwise), and no engramdb key is ever sent upstream. Without
``auth`` (``engramdb proxy --no-auth``, loopback only) the caller is trusted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from ..aio import AsyncMemory
from ..errors import EngramError, Forbidden, Unauthorized
from ..memory import Memory
from ..models import ApiKey, utcnow
from .access import check_user
from .auth import aauthenticate, carries_secret, presented_secret
from .proxy_turns import CHAT, RESPONSES, Wire, contentless, stream_text

log = logging.getLogger("engramdb.proxy")
_HOP = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding", "keep-alive"}
PREAMBLE = "What you remember about this user (cite nothing you do not see here):\n"


def create_proxy(memory: Memory, upstream: str, *, max_tokens: int = 1000, auth: bool = True) -> FastAPI:
    upstream = upstream.rstrip("/")
    client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0))
    open_key = ApiKey(id="local", tenant_id=memory.tenant_id, created_at=utcnow())
    shared = AsyncMemory.wrap(memory)

    async def principal(request: Request) -> ApiKey:
        if not auth:
            return open_key
        key = await aauthenticate(memory.store, presented_secret(request.headers),
                                  networked=memory.async_reads is not None)  # fmt: skip
        if key is None:
            raise Unauthorized("a valid engramdb API key is required (X-API-Key: <key>)")
        return key

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="engramdb proxy", docs_url=None, redoc_url=None, lifespan=lifespan)

    for refusal, kind in ((Unauthorized, "authentication_error"), (Forbidden, "permission_error")):
        app.add_exception_handler(refusal, _refused(refusal.http_status, kind))

    async def remembered(request: Request, wire: Wire) -> Response:
        """A turn of ``wire``'s API: context in, the answer relayed, the turn recorded."""
        key = await principal(request)
        try:
            body = json.loads(await request.body())
        except json.JSONDecodeError:
            return JSONResponse({"error": {"message": "the body is not JSON", "type": "invalid_request_error"}}, 400)
        named = body.get("user") if isinstance(body, dict) else None
        user = request.headers.get("x-engram-user") or (named if isinstance(named, str) else None)
        if user:
            check_user(key, user)
        m = shared.for_tenant(key.tenant_id)
        session = request.headers.get("x-engram-session")
        said = wire.said(body) if user else None
        if user and said:
            body = await _with_context(m, wire, body, said, user, session, max_tokens)
        upstream_request = client.build_request(
            "POST", upstream + wire.path, headers=_forwarded(request), content=json.dumps(body).encode()
        )
        try:
            reply = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            return _unreachable(upstream, exc)
        if reply.status_code != 200 or not user or not said:
            return await _passthrough(reply)
        if body.get("stream"):
            return _relay_stream(reply, wire, m, said, user, session)
        data = await reply.aread()
        await reply.aclose()
        try:
            answer = wire.answer(json.loads(data))
        except ValueError:  # not JSON after all: relayed as it came, the user's message still recorded
            answer = ""
        task = BackgroundTask(_record, m, said, answer, user, session)
        media = reply.headers.get("content-type", "application/json")
        return Response(data, status_code=200, media_type=media, background=task)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await remembered(request, CHAT)

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        return await remembered(request, RESPONSES)

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "DELETE"])
    async def other(path: str, request: Request) -> Response:
        await principal(request)
        forwarded = client.build_request(
            request.method, f"{upstream}/{path}", headers=_forwarded(request), content=await request.body(),
            params=request.query_params,
        )  # fmt: skip
        try:
            return await _passthrough(await client.send(forwarded, stream=True))
        except httpx.HTTPError as exc:
            return _unreachable(upstream, exc)

    return app


def _unreachable(upstream: str, exc: httpx.HTTPError) -> JSONResponse:
    message = f"the upstream {upstream} did not answer: {type(exc).__name__}"
    return JSONResponse({"error": {"message": message, "type": "upstream_error"}}, status_code=502)


def _refused(status: int, kind: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A refused key, in OpenAI's error shape (so OpenAI clients raise their own 401/403 error)."""

    async def handler(request: Request, exc: Exception) -> Response:
        code = exc.code if isinstance(exc, EngramError) else "refused"
        return JSONResponse({"error": {"message": str(exc), "type": kind, "code": code}}, status)

    return handler


def _forwarded(request: Request) -> dict[str, str]:
    """The caller's headers for the upstream: no hop-by-hop ones, no X-Engram-*, no engramdb key."""
    return {
        k: v for k, v in request.headers.items()
        if k.lower() not in _HOP and not k.lower().startswith("x-engram") and not carries_secret(k, v)
    }  # fmt: skip


async def _passthrough(reply: httpx.Response) -> Response:
    data = await reply.aread()
    await reply.aclose()
    media = reply.headers.get("content-type", "application/json")
    return Response(data, status_code=reply.status_code, media_type=media)


async def _with_context(memory: AsyncMemory, wire: Wire, body: dict[str, Any], said: str, user: str,
                        session: str | None, max_tokens: int) -> dict[str, Any]:  # fmt: skip
    """The request with the context block where ``wire`` puts it (nothing added when there is none)."""
    try:
        context = await memory.context(said, user_id=user, session_id=session, max_tokens=max_tokens)
    except EngramError as exc:  # memory must never break the chat: answer without it
        log.warning("no context for user %r: %s", user, exc)
        return body
    if not context.text.strip():
        return body
    return wire.with_context(body, PREAMBLE + context.text)


def _relay_stream(
    reply: httpx.Response, wire: Wire, memory: AsyncMemory, said: str, user: str, session: str | None
) -> Response:
    """Send each event on as it arrives; record the turn once the stream has ended."""
    parts: list[str] = []

    async def events() -> AsyncIterator[bytes]:
        buffer = b""
        try:
            async for chunk in reply.aiter_raw():
                yield chunk
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                parts.extend(stream_text(wire, lines))
        finally:
            await reply.aclose()

    async def record() -> None:
        await _record(memory, said, "".join(parts), user, session)

    task = BackgroundTask(record)
    return StreamingResponse(events(), media_type="text/event-stream", background=task)


async def _record(memory: AsyncMemory, said: str, answer: str, user: str, session: str | None) -> None:
    """The turn's messages as memories, but those that say nothing (``contentless``)."""
    turn = [{"role": role, "content": text} for role, text in (("user", said), ("assistant", answer))
            if text.strip() and not contentless(text)]  # fmt: skip
    if not turn:
        return
    try:
        await memory.add(turn, user_id=user, session_id=session)
    except EngramError as exc:
        log.warning("could not record the turn for user %r: %s", user, exc)


__all__ = ["create_proxy"]
