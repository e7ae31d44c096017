"""The memory inspector at ``/ui``: static files shipped in the package (``server/ui/``).

The page is HTML, one stylesheet and a few ES modules, with no build step and nothing fetched
from elsewhere. It holds no privilege of its own: it asks the person for an API key and calls
the ``/v1`` routes with it, so the key's tenant and users confine everything it shows, exactly
as they confine any other client. Its answers carry a Content-Security-Policy that allows
only the server's own scripts and styles (no inline script), so text from memories, drawn
with ``textContent`` only, can never run as code beside a key held in sessionStorage.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI_PATH = "/ui"
ASSETS = Path(__file__).with_name("ui")
POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


class _Assets(StaticFiles):
    """StaticFiles with the inspector's security headers on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-cache"  # a new version of the package is seen at once
        return response


def mount_inspector(app: FastAPI) -> None:
    """Serve the inspector at ``/ui/`` (``/ui`` redirects there, so relative module paths resolve)."""

    @app.get(UI_PATH, include_in_schema=False)
    def inspector() -> RedirectResponse:
        return RedirectResponse(UI_PATH + "/", status_code=307)

    app.mount(UI_PATH, _Assets(directory=ASSETS, html=True), name="ui")
