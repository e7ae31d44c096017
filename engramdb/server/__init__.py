"""engramdb as a service: a FastAPI app over one Memory, API keys confined to a tenant."""

from .app import ServerSettings, create_app
from .auth import create_key

__all__ = ["ServerSettings", "create_app", "create_key"]
