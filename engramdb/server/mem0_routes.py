"""mem0's REST routes, so mem0's clients work against ``engramdb serve`` unchanged.

Two sets:

- **mem0's platform API**, as its SDK (``MemoryClient``, ``AsyncMemoryClient``) calls it with
  ``host=`` pointing here: ``GET /v1/ping/``, ``POST /v3/memories/add/``, ``POST
  /v3/memories/`` (list), ``POST /v3/memories/search/``, ``GET|PUT|DELETE
  /v1/memories/{id}/``, ``GET /v1/memories/{id}/history/``, ``DELETE /v1/memories/``,
  ``GET /v1/entities/`` and ``DELETE /v2/entities/{type}/{name}/`` (``users``,
  ``delete_users``, ``reset``). The SDK always ends its paths with a slash; those exact
  paths are routes here (no redirect), beside engramdb's own ``/v1`` routes without one.
  Answers are in mem0's shapes (``compat.mem0_wire``), filters in mem0's language.
- **mem0's self-hosted REST server** (``/memories``, ``/search``, ``/reset``), answering
  engramdb's models, which carry the fields mem0's answers have (``results``, ``id``,
  ``memory``, ``event``, ``score``, ``message``).

A key reaches exactly what it reaches on ``/v1``: its tenant, and a key limited to some users
must name one of them (403) and sees another user's memory as not found (404).
"""

from __future__ import annotations

import ast
import json
from typing import Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response

from ..compat import mem0_wire as wire
from ..errors import ValidationError
from ..ingest import MAX_PAGE
from ..models import AddResult, DeleteResult, HistoryEntry, MemoryItem, Page, SearchResult
from .access import check_user, owned
from .mem0_schemas import (
    Mem0AddBody,
    Mem0Added,
    Mem0ListBody,
    Mem0Message,
    Mem0Page,
    Mem0Ping,
    Mem0Results,
    Mem0SearchBody,
    Mem0UpdateBody,
    Mem0Users,
    refuse,
    refuse_unsupported,
)
from .routes import Scoped, Tenant, _add, _delete, _history, _json, _search, _update
from .schemas import AddBody, SearchBody, UpdateBody

_ADD_REFUSED = ("custom_categories", "custom_instructions", "agent_custom_instructions", "structured_data_schema",
                "includes", "excludes", "immutable", "enable_graph")  # fmt: skip
Status = Literal["SUCCEEDED", "PENDING", "FAILED"]
_STATUS: dict[str, Status] = {"pending": "PENDING", "failed": "FAILED"}  # done, skipped, nothing to derive: SUCCEEDED
EntityType = Literal["user", "agent", "run", "app"]


def register_mem0(app: FastAPI, tenant: Tenant) -> None:
    """Both sets of mem0 routes (see the module docstring)."""
    register_mem0_server(app, tenant)
    register_mem0_platform(app, tenant)
    register_mem0_memory(app, tenant)
    register_mem0_entities(app, tenant)


def register_mem0_server(app: FastAPI, tenant: Tenant) -> None:
    """mem0's self-hosted REST server: its paths, engramdb's answers."""

    @app.post("/memories", response_model=AddResult, tags=["mem0"])
    async def add(body: AddBody, t: Scoped = Depends(tenant)) -> Response:
        return _json(await _add(*t, body))

    @app.get("/memories", response_model=Page, tags=["mem0"])
    async def list_memories(
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        t: Scoped = Depends(tenant),
    ) -> Page:  # fmt: skip
        m, key = t
        check_user(key, user_id)
        return await m.get_all(user_id=user_id, agent_id=agent_id, session_id=run_id, limit=MAX_PAGE)

    @app.delete("/memories", response_model=DeleteResult, tags=["mem0"])
    async def delete_scope(
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        t: Scoped = Depends(tenant),
    ) -> DeleteResult:  # fmt: skip
        m, key = t
        check_user(key, user_id)
        return await m.delete_all(user_id=user_id, agent_id=agent_id, session_id=run_id)

    @app.post("/reset", response_model=Mem0Message, response_model_exclude_none=True, tags=["mem0"])
    async def reset(t: Scoped = Depends(tenant)) -> Mem0Message:
        """Every memory of the key's tenant: a key limited to some users may not."""
        m, key = t
        check_user(key, None)
        await m.reset()
        return Mem0Message(message="All memories reset")

    @app.post("/search", response_model=SearchResult, tags=["mem0"])
    async def search(body: SearchBody, t: Scoped = Depends(tenant)) -> Response:
        return _json(await _search(*t, body))

    @app.get("/memories/{memory_id}", response_model=MemoryItem, tags=["mem0"])
    async def get(memory_id: str, t: Scoped = Depends(tenant)) -> MemoryItem:
        return await owned(*t, memory_id)

    @app.put("/memories/{memory_id}", response_model=MemoryItem, tags=["mem0"])
    async def update(memory_id: str, body: UpdateBody, t: Scoped = Depends(tenant)) -> MemoryItem:
        return await _update(*t, memory_id, body)

    @app.delete("/memories/{memory_id}", response_model=DeleteResult, tags=["mem0"])
    async def delete(memory_id: str, t: Scoped = Depends(tenant)) -> DeleteResult:
        return await _delete(*t, memory_id)

    @app.get("/memories/{memory_id}/history", response_model=list[HistoryEntry], tags=["mem0"])
    async def history(memory_id: str, t: Scoped = Depends(tenant)) -> list[HistoryEntry]:
        return await _history(*t, memory_id)


def register_mem0_platform(app: FastAPI, tenant: Tenant) -> None:
    """mem0's platform API, as its SDK calls it: mem0's paths, filters and answers."""

    @app.get("/v1/ping/", response_model=Mem0Ping, tags=["mem0"])
    async def ping(t: Scoped = Depends(tenant)) -> Mem0Ping:
        """The SDK checks its key here when it is constructed."""
        return Mem0Ping(org_id=t[1].tenant_id, project_id=t[1].tenant_id)

    @app.post("/v3/memories/add/", response_model=Mem0Added, tags=["mem0"])
    async def add(body: Mem0AddBody, t: Scoped = Depends(tenant)) -> Response:
        m, key = t
        refuse_unsupported(body, *_ADD_REFUSED)
        query = body.translated()
        if query.filters is not None:
            raise ValidationError("an add names whose memories they are (user_id, agent_id, run_id), not a filter")
        check_user(key, query.user_id)
        expires = wire.expires_after(body.expiration_date) if body.expiration_date else None
        result = await m.add(
            body.messages, user_id=query.user_id, agent_id=query.agent_id, session_id=query.session_id,
            metadata=body.metadata, infer=body.infer, occurred_at=body.occurred_at(), expires_at=expires,
        )  # fmt: skip
        state = result.extraction.state if result.extraction else "skipped"
        status: Status = _STATUS.get(state, "SUCCEEDED")
        return _json(Mem0Added(
            results=wire.added(result), status=status,
            event_id=result.extraction.job_id if result.extraction else None,
            message="Memories stored; extraction queued" if status == "PENDING" else "Memories stored",
        ))  # fmt: skip

    @app.post("/v3/memories/", response_model=Mem0Page, tags=["mem0"])
    async def list_memories(
        request: Request, body: Mem0ListBody, page: int = Query(1, ge=1),
        page_size: int = Query(100, ge=1, le=MAX_PAGE), t: Scoped = Depends(tenant),
    ) -> Response:  # fmt: skip
        m, key = t
        refuse_unsupported(body, "categories")
        query = body.translated()
        check_user(key, query.user_id)
        options: dict[str, Any] = {**query.scope(), "filters": body.where(query),
                                   "include_inactive": body.include_invalid()}  # fmt: skip
        listed = await m.get_all(**options, limit=page_size)
        for _ in range(page - 1):  # mem0 numbers pages; engramdb pages by cursor, so earlier ones are walked
            if listed.next_cursor is None:
                listed = Page(results=[], total=listed.total)
                break
            listed = await m.get_all(**options, cursor=listed.next_cursor, limit=page_size)
        pages = -(-listed.total // page_size)
        link = request.url.include_query_params
        return _json(Mem0Page(
            count=listed.total, results=[wire.memory(i) for i in listed.results],
            next=str(link(page=page + 1, page_size=page_size)) if page < pages else None,
            previous=str(link(page=page - 1, page_size=page_size)) if page > 1 else None,
        ))  # fmt: skip

    @app.post("/v3/memories/search/", response_model=Mem0Results, tags=["mem0"])
    async def search(body: Mem0SearchBody, t: Scoped = Depends(tenant)) -> Response:
        m, key = t
        refuse_unsupported(body, "categories", "metadata")
        query = body.translated()
        check_user(key, query.user_id)
        found = await m.search(
            body.query, user_id=query.user_id, agent_id=query.agent_id, session_id=query.session_id,
            filters=query.filters, limit=body.count(), threshold=body.threshold or 0,
            include_invalid=body.include_invalid(), reference_date=body.reference(),
        )  # fmt: skip
        hits = [wire.memory(h).model_dump(mode="json") for h in found.results]
        if body.fields:
            hits = [{k: v for k, v in hit.items() if k in body.fields} for hit in hits]
        return Response(content=json.dumps({"results": hits}), media_type="application/json")


def register_mem0_memory(app: FastAPI, tenant: Tenant) -> None:
    """One memory by id, and a scope's memories deleted: mem0's ``/v1/memories/.../`` forms."""

    @app.get("/v1/memories/{memory_id}/", response_model=wire.Mem0Memory, tags=["mem0"])
    async def get(memory_id: str, t: Scoped = Depends(tenant)) -> Response:
        return _json(wire.memory(await owned(*t, memory_id)))

    @app.put("/v1/memories/{memory_id}/", response_model=wire.Mem0Memory, tags=["mem0"])
    async def update(memory_id: str, body: Mem0UpdateBody, t: Scoped = Depends(tenant)) -> Response:
        m, key = t
        for name in ("timestamp", "expiration_date"):
            if name in body.model_fields_set:  # even null: clearing an expiry is a change too
                refuse(name)
        await owned(m, key, memory_id)
        return _json(wire.memory(await m.update(memory_id, body.text, metadata=body.metadata)))

    @app.delete("/v1/memories/{memory_id}/", response_model=Mem0Message, tags=["mem0"])
    async def delete(memory_id: str, delete_linked: bool = Query(
        False, description="accepted: the versions a memory superseded are out of recall already (history keeps them)"
    ), t: Scoped = Depends(tenant)) -> Mem0Message:  # fmt: skip
        deleted = await _delete(*t, memory_id)
        return Mem0Message(message="Memory deleted successfully!", deleted=deleted.deleted)

    @app.get("/v1/memories/{memory_id}/history/", response_model=list[wire.Mem0HistoryEntry], tags=["mem0"])
    async def history(memory_id: str, t: Scoped = Depends(tenant)) -> list[wire.Mem0HistoryEntry]:
        m, key = t
        item = await owned(m, key, memory_id)
        return [wire.history(e, item) for e in await m.history(memory_id)]

    @app.delete("/v1/memories/", response_model=Mem0Message, tags=["mem0"])
    async def delete_scope(
        user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
        app_id: str | None = Query(None, description="refused: engramdb has no apps"),
        filters: str | None = Query(None, description="entity ids, as JSON or as mem0's SDK sends a dict"),
        t: Scoped = Depends(tenant),
    ) -> Mem0Message:  # fmt: skip
        m, key = t
        if app_id is not None:
            refuse("app_id")
        query = wire.translate(_query_filters(filters), user_id=user_id, agent_id=agent_id, run_id=run_id)
        if query.filters is not None:
            raise ValidationError("delete_all takes entity ids (user_id, agent_id, run_id), not other filters")
        check_user(key, query.user_id)
        deleted = await m.delete_all(user_id=query.user_id, agent_id=query.agent_id, session_id=query.session_id)
        return Mem0Message(message="Memories deleted successfully!", deleted=deleted.deleted)


def register_mem0_entities(app: FastAPI, tenant: Tenant) -> None:
    """Who memories are held for (``users``), and deleting one of them (``delete_users``, ``reset``)."""

    @app.get("/v1/entities/", response_model=Mem0Users, tags=["mem0"])
    async def users(t: Scoped = Depends(tenant)) -> Mem0Users:
        """A key limited to some users sees those users only: deleting an agent or a run it saw
        would reach other users' memories."""
        m, key = t
        if key.user_ids is None:
            found = wire.entities(await m.scopes(), key.tenant_id)
        else:
            counts = [c for user in key.user_ids for c in await m.scopes(user_id=user)]
            found = [e for e in wire.entities(counts, key.tenant_id) if e.type == "user"]
        return Mem0Users(count=len(found), results=found)

    @app.delete("/v2/entities/{entity_type}/{entity_id}/", response_model=Mem0Message, tags=["mem0"])
    async def delete_entity(entity_type: EntityType, entity_id: str, t: Scoped = Depends(tenant)) -> Mem0Message:
        """Every memory of the entity; none left is not an error (``reset`` deletes a user, then its agents)."""
        m, key = t
        if entity_type == "app":
            refuse("app_id")
        user = entity_id if entity_type == "user" else None
        check_user(key, user)  # a key limited to some users deletes one of them, never an agent or a run
        deleted = await m.delete_all(user_id=user, agent_id=entity_id if entity_type == "agent" else None,
                                     session_id=entity_id if entity_type == "run" else None)  # fmt: skip
        return Mem0Message(message="Entity deleted successfully!", deleted=deleted.deleted)


def _query_filters(text: str | None) -> dict[str, Any] | None:
    """``filters`` from a query string: JSON, or the ``str()`` of a dict that mem0's SDK puts there
    (``delete_all(filters={...})``), read as a literal (never evaluated)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise ValidationError(f"filters is neither JSON nor a literal dict: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError(f"filters must be an object, got {type(value).__name__}")
    return value
