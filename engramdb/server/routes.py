"""Route handlers: thin — check the key's users, await the tenant's AsyncMemory, return its models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..aio import AsyncMemory
from ..context import Context
from ..errors import Forbidden, NotFoundError, ValidationError
from ..ingest import MAX_PAGE
from ..maintenance import ConsolidateResult, PruneResult
from ..models import (
    AddResult,
    ApiKey,
    DeleteResult,
    HistoryEntry,
    MemoryItem,
    Page,
    ScopeCount,
    SearchResult,
    SessionEpisode,
)
from .access import check_user, owned
from .auth import ALL_TENANTS, create_key, manages
from .schemas import (
    AddBody,
    ContextBody,
    NDJSONResponse,
    PruneBody,
    ScopeBody,
    SearchBody,
    SummaryBody,
    UpdateBody,
)

Tenant = Callable[..., Any]
Scoped = tuple[AsyncMemory, ApiKey]  # the tenant's memory and the key that asked


def _json(model: BaseModel) -> Response:
    """Serialise once: the model is already validated, so skip FastAPI's response re-validation."""
    return Response(content=model.model_dump_json(), media_type="application/json")


async def _add(m: AsyncMemory, key: ApiKey, body: AddBody) -> AddResult:
    check_user(key, body.user_id)
    return await m.add(
        body.messages, user_id=body.user_id, agent_id=body.agent_id, session_id=body.session, metadata=body.metadata,
        kind=body.kind, infer=body.infer, occurred_at=body.occurred_at, expires_at=body.expires_at,
        importance=body.importance,
    )  # fmt: skip


async def _search(m: AsyncMemory, key: ApiKey, body: SearchBody) -> SearchResult:
    check_user(key, body.user_id)
    return await m.search(
        body.query, user_id=body.user_id, agent_id=body.agent_id, session_id=body.session, filters=body.filters,
        limit=body.limit, threshold=body.threshold, include_invalid=body.include_invalid, as_of=body.as_of,
        time_range=body.time_range, reference_date=body.reference_date, explain=body.explain, options=body.options,
    )  # fmt: skip


async def _delete(m: AsyncMemory, key: ApiKey, memory_id: str) -> DeleteResult:
    await owned(m, key, memory_id)
    return await m.delete(memory_id)


async def _update(m: AsyncMemory, key: ApiKey, memory_id: str, body: UpdateBody) -> MemoryItem:
    await owned(m, key, memory_id)
    return await m.update(memory_id, body.text or body.memory or body.data, metadata=body.metadata)


async def _history(m: AsyncMemory, key: ApiKey, memory_id: str) -> list[HistoryEntry]:
    await owned(m, key, memory_id)
    return await m.history(memory_id)


def register(app: FastAPI, tenant: Tenant) -> None:
    @app.post("/v1/memories", response_model=AddResult, tags=["memories"])
    async def add(body: AddBody, t: Scoped = Depends(tenant)) -> Response:
        return _json(await _add(*t, body))

    @app.post("/v1/search", response_model=SearchResult, tags=["memories"])
    async def search(body: SearchBody, t: Scoped = Depends(tenant)) -> Response:
        return _json(await _search(*t, body))

    @app.get("/v1/memories", response_model=Page, tags=["memories"])
    async def list_memories(
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        kind: str | None = None,
        filters: str | None = Query(None, description="a filter as JSON"),
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        include_inactive: bool = Query(False, description="also superseded, invalidated and forgotten memories"),
        t: Scoped = Depends(tenant),
    ) -> Page:
        m, key = t
        check_user(key, user_id)
        try:
            where = json.loads(filters) if filters else None
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise ValidationError(f"filters is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise ValidationError("filters nests too deeply") from exc
        if where is not None and not isinstance(where, dict):
            raise ValidationError(f"filters must be a JSON object, got {type(where).__name__}")
        return await m.get_all(user_id=user_id, agent_id=agent_id, session_id=session_id, kind=kind, filters=where,
                         cursor=cursor, limit=limit, include_inactive=include_inactive)  # fmt: skip

    @app.get("/v1/scopes", response_model=list[ScopeCount], tags=["memories"])
    async def scopes(
        user_id: str | None = None,
        agent_id: str | None = None,
        include_inactive: bool = Query(False, description="also scopes holding only memories out of recall"),
        t: Scoped = Depends(tenant),
    ) -> list[ScopeCount]:
        """Who the tenant holds memories for, and how many. A key limited to some users sees only
        those users' scopes: listing every scope would name users it may not reach."""
        m, key = t
        users: list[str | None] = [user_id]
        if key.user_ids is not None and user_id is None:
            users = list(key.user_ids)
        else:
            check_user(key, user_id)
        found = [await m.scopes(user_id=user, agent_id=agent_id, include_inactive=include_inactive) for user in users]
        return [count for counts in found for count in counts]

    @app.get("/v1/memories/{memory_id}", response_model=MemoryItem, tags=["memories"])
    async def get(memory_id: str, t: Scoped = Depends(tenant)) -> MemoryItem:
        return await owned(*t, memory_id)

    @app.put("/v1/memories/{memory_id}", response_model=MemoryItem, tags=["memories"])
    async def update(memory_id: str, body: UpdateBody, t: Scoped = Depends(tenant)) -> MemoryItem:
        return await _update(*t, memory_id, body)

    @app.delete("/v1/memories/{memory_id}", response_model=DeleteResult, tags=["memories"])
    async def delete(memory_id: str, t: Scoped = Depends(tenant)) -> DeleteResult:
        return await _delete(*t, memory_id)

    @app.delete("/v1/memories", response_model=DeleteResult, tags=["memories"])
    async def delete_scope(
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        hard: bool = False,
        t: Scoped = Depends(tenant),
    ) -> DeleteResult:
        m, key = t
        check_user(key, user_id)
        return await m.delete_all(user_id=user_id, agent_id=agent_id, session_id=session_id, hard=hard)

    @app.get("/v1/memories/{memory_id}/history", response_model=list[HistoryEntry], tags=["memories"])
    async def history(memory_id: str, t: Scoped = Depends(tenant)) -> list[HistoryEntry]:
        return await _history(*t, memory_id)

    @app.post("/v1/context", response_model=Context, tags=["context"])
    async def context(body: ContextBody, t: Scoped = Depends(tenant)) -> Context:
        m, key = t
        check_user(key, body.user_id)
        return await m.context(
            body.query,
            user_id=body.user_id,
            agent_id=body.agent_id,
            session_id=body.session,
            max_tokens=body.max_tokens,
            recent_turns=body.recent_turns,
            relevant=body.relevant,
            profile=body.profile,
            reference_date=body.reference_date,
            encoding=body.encoding,
        )

    register_sessions(app, tenant)

    @app.post("/v1/consolidate", response_model=ConsolidateResult, tags=["maintenance"])
    async def consolidate(body: ScopeBody, t: Scoped = Depends(tenant)) -> ConsolidateResult:
        m, key = t
        check_user(key, body.user_id)
        return await m.consolidate(user_id=body.user_id, agent_id=body.agent_id, session_id=body.session)

    @app.post("/v1/prune", response_model=PruneResult, tags=["maintenance"])
    async def prune(body: PruneBody, t: Scoped = Depends(tenant)) -> PruneResult:
        m, key = t
        check_user(key, body.user_id)
        return await m.prune(
            user_id=body.user_id, agent_id=body.agent_id, session_id=body.session, policy=body.policy, hard=body.hard
        )

    @app.get("/v1/export", tags=["maintenance"], response_class=NDJSONResponse, responses={
        200: {"description": "every memory, one JSON object per line",
              "content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/MemoryItem"}}}},
    })  # fmt: skip
    async def export(t: Scoped = Depends(tenant)) -> StreamingResponse:
        m, key = t

        async def lines() -> AsyncIterator[str]:
            async for item in m.export():
                if key.user_ids is None or item.user_id in key.user_ids:
                    yield item.model_dump_json() + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/v1/import", response_model=AddResult, tags=["maintenance"], openapi_extra={"requestBody": {
        "description": "memories as /v1/export writes them, one JSON object per line (empty: nothing to import)",
        "content": {media: {"schema": {"type": "string"}} for media in ("application/x-ndjson", "text/plain")},
    }})  # fmt: skip
    async def import_(request: Request, t: Scoped = Depends(tenant)) -> AddResult:
        m, key = t
        try:  # refused like any other body that is not UTF-8, never altered
            lines = (await request.body()).decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ValidationError(f"the import body is not valid UTF-8 (byte {exc.start})") from exc
        try:
            records: list[Any] = [json.loads(line) for line in lines if line.strip()]
        except (ValueError, RecursionError) as exc:  # not JSON, an integer of 4,300 digits, nesting too deep
            raise ValidationError(f"line is not JSON: {exc}") from exc
        for record in records:
            check_user(key, record.get("user_id") if isinstance(record, dict) else None)
        return await m.import_items(records)  # embeds the whole batch: on a worker thread


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[str] | None = Field(
        None, description="None: every user of the tenant; a key limited to some users can only give some of them"
    )
    admin: bool = False
    name: str | None = None
    tenant_id: str | None = Field(None, description="the new key's tenant (default: the caller's); another tenant "
                                                    "only for an admin key of the tenant '*'")  # fmt: skip


def _admin(key: ApiKey) -> None:
    if not key.admin:
        raise Forbidden("managing keys needs an admin key")


def _managed(m: AsyncMemory, key: ApiKey) -> list[ApiKey]:
    """The keys this admin key may see and revoke (those reaching no further than itself)."""
    _admin(key)
    every = m.sync.store.list_keys(None if key.tenant_id == ALL_TENANTS else key.tenant_id)
    return [k for k in every if manages(key, k.tenant_id, k.user_ids)]


def register_keys(app: FastAPI, tenant: Tenant) -> None:
    """An admin key manages the keys of its own tenant (of every tenant for the tenant ``*``);
    one limited to some users only keys limited to some of them (see ``auth.manages``)."""

    @app.post("/v1/keys", tags=["keys"])
    def create(body: KeyBody, t: Scoped = Depends(tenant)) -> dict[str, Any]:
        m, key = t
        _admin(key)
        tenant_id = key.tenant_id if body.tenant_id is None else body.tenant_id
        if not manages(key, tenant_id, body.user_ids):
            users = "every user" if key.user_ids is None else "some of users " + ", ".join(key.user_ids)
            raise Forbidden(f"this admin key may only create keys of tenant {key.tenant_id!r} for {users}")
        secret, made = create_key(m.sync.store, tenant_id, user_ids=body.user_ids, admin=body.admin, name=body.name)
        return {"secret": secret, **made.model_dump(mode="json")}

    @app.get("/v1/keys", response_model=list[ApiKey], tags=["keys"])
    def list_keys(t: Scoped = Depends(tenant)) -> list[ApiKey]:
        return _managed(*t)

    @app.delete("/v1/keys/{key_id}", response_model=ApiKey, tags=["keys"])
    def revoke(key_id: str, t: Scoped = Depends(tenant)) -> ApiKey:
        m, key = t
        if key_id not in {k.id for k in _managed(m, key)}:
            raise NotFoundError(f"no API key with id {key_id!r}")
        return m.sync.store.revoke_key(key_id)


def register_sessions(app: FastAPI, tenant: Tenant) -> None:
    """Episodes over HTTP: a user's sessions, a session's last turns, its summary, a memory's sources."""

    @app.get("/v1/sessions", response_model=list[SessionEpisode], tags=["sessions"])
    async def sessions(
        user_id: str | None = None, agent_id: str | None = None, t: Scoped = Depends(tenant)
    ) -> list[SessionEpisode]:
        m, key = t
        check_user(key, user_id)
        return await m.sessions(user_id=user_id, agent_id=agent_id)

    @app.get("/v1/sessions/{session_id:path}/turns", response_model=list[MemoryItem], tags=["sessions"])
    async def recent_turns(
        session_id: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        max_tokens: int | None = Query(None, ge=0),
        t: Scoped = Depends(tenant),
    ) -> list[MemoryItem]:
        m, key = t
        check_user(key, user_id)
        return await m.recent_turns(session_id=session_id, user_id=user_id, agent_id=agent_id, limit=limit,
                              max_tokens=max_tokens)  # fmt: skip

    @app.post("/v1/sessions/{session_id:path}/summary", response_model=MemoryItem, tags=["sessions"])
    async def summarize_session(session_id: str, body: SummaryBody, t: Scoped = Depends(tenant)) -> MemoryItem:
        m, key = t
        check_user(key, body.user_id)
        return await m.summarize_session(
            session_id, user_id=body.user_id, agent_id=body.agent_id, sentences=body.sentences
        )

    @app.get("/v1/memories/{memory_id}/sources", response_model=list[MemoryItem], tags=["sessions"])
    async def expand(memory_id: str, t: Scoped = Depends(tenant)) -> list[MemoryItem]:
        m, key = t
        await owned(m, key, memory_id)
        return [s for s in await m.expand(memory_id) if key.user_ids is None or s.user_id in key.user_ids]
