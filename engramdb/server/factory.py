"""The app factory uvicorn calls in each worker process (``engramdb serve --workers N``).

Every worker opens the same store (SQLite is shared safely between processes; each maps
the vector snapshot) with the configuration the parent passed in the environment.
"""

from __future__ import annotations

import json
import os

from fastapi import FastAPI

from ..memory import Memory
from ..settings import load_settings
from .app import ServerSettings, create_app

ENV = "ENGRAMDB_SERVE"


def make_app() -> FastAPI:
    """Read the parent's choices (``ENGRAMDB_SERVE``: JSON) and the usual ENGRAMDB_* settings."""
    options = json.loads(os.environ.get(ENV, "{}"))
    overrides = {k: v for k, v in options.pop("memory", {}).items() if v is not None}
    memory = Memory(config=load_settings(**overrides).memory_config())
    return create_app(memory, ServerSettings(**options))
