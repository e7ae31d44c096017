"""Embedders by name: ``"provider:model"``, resolved by lazy factories.

Built-ins and third-party providers go through the same door: the ``REGISTRY`` dict here,
extended by the ``engramdb.embedders`` entry-point group (an entry point named ``acme``
pointing at a factory ``(model: str, options: EmbedderOptions) -> Embedder``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from pydantic import BaseModel, ConfigDict, SecretStr

from ..errors import ConfigurationError
from .base import CachedEmbedder, Embedder, EmbedKind, normalize_rows

DEFAULT_EMBEDDER = "model2vec:minilm-static"


class EmbedderOptions(BaseModel):
    """Provider settings that do not fit in the name (endpoint, key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    api_key: SecretStr | None = None
    dimension: int | None = None
    device: str = "cpu"


Factory = Callable[[str, EmbedderOptions], Embedder]


def _model2vec(model: str, options: EmbedderOptions) -> Embedder:
    from .static import StaticEmbedder

    return StaticEmbedder(model or "minilm-static")


def _sentence_transformers(model: str, options: EmbedderOptions) -> Embedder:
    from .sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model, device=options.device)


def _openai(model: str, options: EmbedderOptions) -> Embedder:
    from .openai import OpenAIEmbedder

    key = options.api_key.get_secret_value() if options.api_key else None
    return OpenAIEmbedder(model, base_url=options.base_url, api_key=key, dimension=options.dimension)


def _onnx(model: str, options: EmbedderOptions) -> Embedder:
    from .onnx import OnnxEmbedder

    return OnnxEmbedder(model or "minilm-int8")


def _hash(model: str, options: EmbedderOptions) -> Embedder:
    from .hashing import HashEmbedder

    try:
        dimension = int(model) if model else 64
    except ValueError as exc:
        raise ConfigurationError(f"hash embedder takes a dimension, e.g. 'hash:64', not {model!r}") from exc
    return HashEmbedder(dimension)


REGISTRY: dict[str, Factory] = {
    "model2vec": _model2vec,
    "sentence-transformers": _sentence_transformers,
    "openai": _openai,
    "ollama": _openai,
    "hash": _hash,
    "onnx": _onnx,
}


def _plugin(provider: str) -> Factory | None:
    for ep in entry_points(group="engramdb.embedders"):
        if ep.name == provider:
            factory: Factory = ep.load()
            return factory
    return None


def resolve_embedder(name: str | None = None, options: EmbedderOptions | None = None) -> Embedder:
    """Build an embedder from ``"provider:model"`` (``None`` means the bundled default).

    Raises:
        ConfigurationError: unknown provider, or a model that cannot be loaded.
    """
    name = name or DEFAULT_EMBEDDER
    provider, _, model = name.partition(":")
    factory = REGISTRY.get(provider) or _plugin(provider)
    if factory is None:
        raise ConfigurationError(
            f"unknown embedder provider {provider!r} in {name!r}: use one of {', '.join(sorted(REGISTRY))}"
        )
    if provider == "ollama" and options is None:
        options = EmbedderOptions(base_url="http://localhost:11434/v1")
    embedder = factory(model, options or EmbedderOptions())
    if not isinstance(embedder, Embedder):
        raise ConfigurationError(f"embedder {name!r} does not implement the Embedder protocol")
    return embedder


__all__ = [
    "DEFAULT_EMBEDDER",
    "REGISTRY",
    "CachedEmbedder",
    "EmbedKind",
    "Embedder",
    "EmbedderOptions",
    "normalize_rows",
    "resolve_embedder",
]
