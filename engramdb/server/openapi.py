"""The OpenAPI document made true: each route lists every error status it can answer.

FastAPI documents a 200 and, for routes with parameters, a 422 in its own ``{"detail"}``
shape. The server answers more (a bad key, a body too large, a rate limit, a store down...)
and always as ``{"error": {"code", "message"}}``; ``document_errors`` rewrites the generated
document from the table below, so schema-driven clients and fuzzers see what really happens.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

REF = "#/components/schemas/"


class ErrorDetail(BaseModel):
    code: str = Field(description="stable and machine-readable, e.g. validation_error, not_found")
    message: str = Field(description="for people: what was wrong")


class ErrorResponse(BaseModel):
    """The body of every error answer, whatever its status."""

    error: ErrorDetail


def error_body(code: str, message: str) -> dict[str, Any]:
    """An error answer's body, for every part of the server that writes one (handlers, middleware, MCP)."""
    return ErrorResponse(error=ErrorDetail(code=code, message=message)).model_dump()


STATUSES: dict[int, str] = {
    400: "invalid input, or a body that is not UTF-8 JSON (validation_error)",
    401: "no valid API key (unauthorized)",
    403: "the key may not act for this user, or manage keys (forbidden)",
    404: "no such memory, session, job or key (not_found)",
    413: "the body is over the size limit (body_too_large)",
    422: "the request does not match its schema, or its JSON is malformed (invalid_request)",
    429: "the key's rate limit is exceeded (rate_limited)",
    500: "an unexpected fault, or a server configured wrongly (internal_error, configuration_error)",
    502: "an embedding or LLM provider failed (provider_error)",
    503: "the store failed; retrying later may succeed (store_error)",
}
EVERY_ROUTE = (413, 500, 503)
WITH_KEYS = (401, 429)  # only when keys are required: without them every caller is the local admin (never a 403)
UNLISTED = (400, 403, 404, 422, 502)  # a route missing from ROUTE_ERRORS might answer any of these

_EMBEDS = (400, 403, 422, 502)  # a body naming a user, read by a provider (an embedder, an LLM)
_SCOPED = (400, 403, 422)  # parameters naming a user
_BY_ID, _UPDATE = (400, 404), (400, 404, 422, 502)  # another user's memory is not found, not forbidden
ROUTE_ERRORS: dict[str, tuple[int, ...]] = {
    "POST /v1/memories": _EMBEDS,
    "GET /v1/memories": _SCOPED,
    "GET /v1/scopes": _SCOPED,  # include_inactive must be a boolean
    "DELETE /v1/memories": _SCOPED,
    "POST /v1/search": _EMBEDS,
    "GET /v1/memories/{memory_id}": _BY_ID,
    "PUT /v1/memories/{memory_id}": _UPDATE,
    "DELETE /v1/memories/{memory_id}": _BY_ID,
    "GET /v1/memories/{memory_id}/history": _BY_ID,
    "GET /v1/memories/{memory_id}/sources": _BY_ID,
    "POST /v1/context": _EMBEDS,
    "GET /v1/sessions": (400, 403),  # two optional strings: nothing to fail a schema
    "GET /v1/sessions/{session_id}/turns": _SCOPED,
    "POST /v1/sessions/{session_id}/summary": (*_EMBEDS, 404),
    "POST /v1/consolidate": _EMBEDS,
    "POST /v1/prune": _SCOPED,
    "GET /v1/export": (),
    "POST /v1/import": (400, 403, 502),
    "POST /v1/keys": (400, 403, 422),
    "GET /v1/keys": (403,),
    "DELETE /v1/keys/{key_id}": (403, 404),
    "GET /v1/jobs": _SCOPED,  # a state out of the list, a bad cursor or limit
    "GET /v1/jobs/{job_id}": _BY_ID,  # another user's job is not found, not forbidden
    "POST /v1/jobs/{job_id}/retry": _BY_ID,  # the LLM failing again is the job's new error, not a 502
    # mem0's self-hosted server (mem0_routes)
    "POST /memories": _EMBEDS,
    "GET /memories": (400, 403),  # three optional strings
    "DELETE /memories": (400, 403),
    "POST /reset": (403,),
    "POST /search": _EMBEDS,
    "GET /memories/{memory_id}": _BY_ID,
    "PUT /memories/{memory_id}": _UPDATE,
    "DELETE /memories/{memory_id}": _BY_ID,
    "GET /memories/{memory_id}/history": _BY_ID,
    # mem0's platform API, as its SDK calls it (mem0_routes): a 400 also names an option engramdb cannot honour
    "GET /v1/ping/": (),
    "POST /v3/memories/add/": _EMBEDS,
    "POST /v3/memories/": _SCOPED,
    "POST /v3/memories/search/": _EMBEDS,
    "GET /v1/memories/{memory_id}/": _BY_ID,
    "PUT /v1/memories/{memory_id}/": _UPDATE,
    "DELETE /v1/memories/{memory_id}/": (*_BY_ID, 422),  # delete_linked must be a boolean
    "GET /v1/memories/{memory_id}/history/": _BY_ID,
    "DELETE /v1/memories/": (400, 403),  # optional strings
    "GET /v1/entities/": (),
    "DELETE /v2/entities/{entity_type}/{entity_id}/": (400, 403, 422),  # the type is one of four words
}


def route_statuses(operation: str, *, auth: bool) -> list[int]:
    """The error statuses one operation (``"METHOD /path"``) can answer, sorted."""
    statuses = set(EVERY_ROUTE) | set(ROUTE_ERRORS.get(operation, UNLISTED))
    if auth:
        statuses |= set(WITH_KEYS)
    else:
        statuses.discard(403)
    return sorted(statuses)


def document_errors(app: FastAPI, *, auth: bool) -> None:
    """Make ``app.openapi()`` return the generated document with its errors rewritten."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:  # built once, on the first request for it
            return app.openapi_schema
        spec = generate()
        _rewrite(spec, auth=auth)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _rewrite(spec: dict[str, Any], *, auth: bool) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's {"detail"} shape, never sent
        schemas.pop(unused, None)
    error = ErrorResponse.model_json_schema(ref_template=REF + "{model}")
    schemas.update(error.pop("$defs", {}))
    schemas[ErrorResponse.__name__] = error
    content = {"application/json": {"schema": {"$ref": REF + ErrorResponse.__name__}}}
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in route_statuses(f"{method.upper()} {path}", auth=auth):
                responses[str(status)] = {"description": STATUSES[status], "content": content}
