"""``Client`` and ``AsyncClient``: the server's API with Memory's method names and result types.

Code written against ``Memory`` switches to a remote store by constructing a client
instead. Each method is described once (``_requests``); the two clients only differ in how
they send it, so they cannot drift apart. Server errors come back as the same typed
exceptions the library raises.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from .context import Context
from .errors import ConfigurationError, EngramError, ProviderError, for_status
from .maintenance import ConsolidateResult, PruneResult
from .models import AddResult, DeleteResult, HistoryEntry, MemoryItem, Page, ScopeCount, SearchResult, SessionEpisode

T = TypeVar("T")
P = ParamSpec("P")


@dataclass
class _Request(Generic[T]):
    """One HTTP request and how to read its answer as ``T``."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in values.items() if v is not None}


def _json(value: Any) -> Any:
    """A value as JSON carries it: datetimes in ISO 8601 (message timestamps too), models as their fields."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _scope(user_id: str | None, agent_id: str | None, session_id: str | None) -> dict[str, Any]:
    return _clean({"user_id": user_id, "agent_id": agent_id, "session_id": session_id})


class _requests:
    """One builder per method: the HTTP request and how to read its answer."""

    @staticmethod
    def add(messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            session_id: str | None = None, **options: Any) -> _Request[AddResult]:  # fmt: skip
        body = {"messages": _json(messages), **_scope(user_id, agent_id, session_id), **_clean(options)}
        return _Request("POST", "/v1/memories", AddResult.model_validate, json=body)

    @staticmethod
    def search(query: str, *, user_id: str | None = None, agent_id: str | None = None,
               session_id: str | None = None, **options: Any) -> _Request[SearchResult]:  # fmt: skip
        body = {"query": query, **_scope(user_id, agent_id, session_id), **_clean(options)}
        return _Request("POST", "/v1/search", SearchResult.model_validate, json=body)

    @staticmethod
    def get(memory_id: str) -> _Request[MemoryItem]:
        return _Request("GET", f"/v1/memories/{memory_id}", MemoryItem.model_validate)

    @staticmethod
    def get_all(*, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
                kind: str | None = None, cursor: str | None = None, limit: int = 100,
                include_inactive: bool = False) -> _Request[Page]:  # fmt: skip
        params = {**_scope(user_id, agent_id, session_id), **_clean({"kind": kind, "cursor": cursor}), "limit": limit,
                  "include_inactive": include_inactive}  # fmt: skip
        return _Request("GET", "/v1/memories", Page.model_validate, params=params)

    @staticmethod
    def scopes(
        *, user_id: str | None = None, agent_id: str | None = None, include_inactive: bool = False
    ) -> _Request[list[ScopeCount]]:
        adapter = TypeAdapter(list[ScopeCount])
        params: dict[str, Any] = {
            **_scope(user_id, agent_id, None),
            **({"include_inactive": "true"} if include_inactive else {}),
        }
        return _Request("GET", "/v1/scopes", adapter.validate_python, params=params)

    @staticmethod
    def update(
        memory_id: str, text: str | None = None, *, metadata: dict[str, Any] | None = None
    ) -> _Request[MemoryItem]:
        body = _clean({"text": text, "metadata": metadata})
        return _Request("PUT", f"/v1/memories/{memory_id}", MemoryItem.model_validate, json=body)

    @staticmethod
    def delete(memory_id: str) -> _Request[DeleteResult]:
        return _Request("DELETE", f"/v1/memories/{memory_id}", DeleteResult.model_validate)

    @staticmethod
    def delete_all(*, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
                   hard: bool = False) -> _Request[DeleteResult]:  # fmt: skip
        params = {**_scope(user_id, agent_id, session_id), "hard": hard}
        return _Request("DELETE", "/v1/memories", DeleteResult.model_validate, params=params)

    @staticmethod
    def history(memory_id: str) -> _Request[list[HistoryEntry]]:
        adapter = TypeAdapter(list[HistoryEntry])
        return _Request("GET", f"/v1/memories/{memory_id}/history", adapter.validate_python)

    @staticmethod
    def context(query: str, *, user_id: str | None = None, agent_id: str | None = None,
                session_id: str | None = None, **options: Any) -> _Request[Context]:  # fmt: skip
        body = {"query": query, **_scope(user_id, agent_id, session_id), **_clean(options)}
        return _Request("POST", "/v1/context", Context.model_validate, json=body)

    @staticmethod
    def sessions(*, user_id: str | None = None, agent_id: str | None = None) -> _Request[list[SessionEpisode]]:
        adapter = TypeAdapter(list[SessionEpisode])
        return _Request("GET", "/v1/sessions", adapter.validate_python, params=_scope(user_id, agent_id, None))

    @staticmethod
    def recent_turns(*, session_id: str, user_id: str | None = None, agent_id: str | None = None, limit: int = 20,
                     max_tokens: int | None = None) -> _Request[list[MemoryItem]]:  # fmt: skip
        params = {**_scope(user_id, agent_id, None), **_clean({"max_tokens": max_tokens}), "limit": limit}
        adapter = TypeAdapter(list[MemoryItem])
        return _Request("GET", f"/v1/sessions/{quote(session_id, safe='')}/turns", adapter.validate_python,
                        params=params)  # fmt: skip

    @staticmethod
    def summarize_session(session_id: str, *, user_id: str | None = None, agent_id: str | None = None,
                          sentences: int = 3) -> _Request[MemoryItem]:  # fmt: skip
        body = {**_scope(user_id, agent_id, None), "sentences": sentences}
        return _Request("POST", f"/v1/sessions/{quote(session_id, safe='')}/summary", MemoryItem.model_validate,
                        json=body)  # fmt: skip

    @staticmethod
    def expand(memory_id: str) -> _Request[list[MemoryItem]]:
        adapter = TypeAdapter(list[MemoryItem])
        return _Request("GET", f"/v1/memories/{memory_id}/sources", adapter.validate_python)

    @staticmethod
    def consolidate(*, user_id: str | None = None, agent_id: str | None = None,
                    session_id: str | None = None) -> _Request[ConsolidateResult]:  # fmt: skip
        return _Request("POST", "/v1/consolidate", ConsolidateResult.model_validate,
                        json=_scope(user_id, agent_id, session_id))  # fmt: skip

    @staticmethod
    def prune(*, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
              policy: dict[str, Any] | None = None, hard: bool = False) -> _Request[PruneResult]:  # fmt: skip
        body = {**_scope(user_id, agent_id, session_id), **_clean({"policy": policy}), "hard": hard}
        return _Request("POST", "/v1/prune", PruneResult.model_validate, json=body)


def _answer(request: _Request[T], response: httpx.Response) -> T:
    if response.status_code < 400:
        return request.parse(response.json())
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    status = response.status_code
    error = for_status(status, code)  # the table the server answered from
    if issubclass(error, ProviderError):
        raise error(f"server answered HTTP {status}: {message}", status=status, body=response.text[:2000])
    if issubclass(error, ConfigurationError):
        raise error(f"{message} ({code})")
    raise error(message)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _sync(build: Callable[P, _Request[T]]) -> Callable[Concatenate[Client, P], T]:
    """A ``Client`` method from its request builder: the signature a type checker sees is the builder's."""

    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._send(build(*args, **kwargs))

    method.__name__ = method.__qualname__ = build.__name__
    method.__doc__ = f"See ``Memory.{build.__name__}``."
    return method


def _async(build: Callable[P, _Request[T]]) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """An ``AsyncClient`` coroutine method from the same builder as ``Client``'s."""

    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._send(build(*args, **kwargs))

    method.__name__ = method.__qualname__ = build.__name__
    method.__doc__ = f"See ``Memory.{build.__name__}``."
    return method


class Client:
    """Talks to ``engramdb serve``: ``Client("http://127.0.0.1:8420", api_key="egm_…")``."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=_headers(api_key), timeout=timeout)

    def _send(self, request: _Request[T]) -> T:
        try:
            response = self._http.request(request.method, request.path, json=request.json, params=request.params)
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach the engramdb server: {exc}") from exc
        return _answer(request, response)

    add = _sync(_requests.add)
    search = _sync(_requests.search)
    get = _sync(_requests.get)
    get_all = _sync(_requests.get_all)
    update = _sync(_requests.update)
    delete = _sync(_requests.delete)
    delete_all = _sync(_requests.delete_all)
    history = _sync(_requests.history)
    context = _sync(_requests.context)
    scopes = _sync(_requests.scopes)
    sessions = _sync(_requests.sessions)
    recent_turns = _sync(_requests.recent_turns)
    summarize_session = _sync(_requests.summarize_session)
    expand = _sync(_requests.expand)
    consolidate = _sync(_requests.consolidate)
    prune = _sync(_requests.prune)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same methods as ``Client``, as coroutines."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=_headers(api_key), timeout=timeout)

    async def _send(self, request: _Request[T]) -> T:
        try:
            response = await self._http.request(request.method, request.path, json=request.json, params=request.params)
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach the engramdb server: {exc}") from exc
        return _answer(request, response)

    add = _async(_requests.add)
    search = _async(_requests.search)
    get = _async(_requests.get)
    get_all = _async(_requests.get_all)
    update = _async(_requests.update)
    delete = _async(_requests.delete)
    delete_all = _async(_requests.delete_all)
    history = _async(_requests.history)
    context = _async(_requests.context)
    scopes = _async(_requests.scopes)
    sessions = _async(_requests.sessions)
    recent_turns = _async(_requests.recent_turns)
    summarize_session = _async(_requests.summarize_session)
    expand = _async(_requests.expand)
    consolidate = _async(_requests.consolidate)
    prune = _async(_requests.prune)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["AsyncClient", "Client", "EngramError"]
