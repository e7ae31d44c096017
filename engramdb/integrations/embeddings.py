"""Embeddings across the framework boundary, both ways, and framework model names mapped to ours.

A LangChain ``Embeddings`` object, or a function from texts to vectors (sync or async, as a
LangGraph ``index`` config takes them), becomes an engramdb ``Embedder`` (``FrameworkEmbedder``);
an engramdb embedder becomes a LangChain ``Embeddings`` (``EngramEmbeddings``), so a vector
store can hand its model to code that asks for one. A ``"provider:model"`` string in
LangChain's spelling (``init_embeddings``) is mapped to the engramdb embedder for the same
model where there is one (``embedder_for``); for the others the error says to pass the
framework's own object instead, since engramdb cannot load them.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ..config import MemoryConfig
from ..embedders import REGISTRY, EmbedderOptions, EmbedKind, normalize_rows, resolve_embedder
from ..embedders.base import Embedder
from ..errors import ConfigurationError, ProviderError
from ..memory import Memory

EmbedFunction = Callable[[Sequence[str]], "list[list[float]] | Awaitable[list[list[float]]]"]
# LangChain's provider names (init_embeddings) for the models engramdb embeds itself
_PROVIDERS = {"openai": "openai", "ollama": "ollama", "huggingface": "sentence-transformers"}
_PROBE = "dimension probe"


class FrameworkEmbedder:
    """An engramdb ``Embedder`` over a LangChain ``Embeddings`` or an embedding function.

    Vectors are normalised here (the store compares unit vectors), so a similarity is the
    cosine of the framework's own vectors. ``blocking``: a framework model is most often a
    network service, so code on an event loop calls it from a worker thread.

    Raises:
        ConfigurationError: the vectors' dimension is not the one declared (``dims``).
    """

    blocking = True

    def __init__(self, model: Embeddings | EmbedFunction, *, dimension: int | None = None) -> None:
        if not isinstance(model, Embeddings) and not callable(model):
            raise ConfigurationError(
                "embed must be a LangChain Embeddings, a function or a 'provider:model' string, "
                f"not {type(model).__name__}"
            )
        self.model = model
        self.name = _model_name(model)
        self.dimension = dimension or int(self._vectors([_PROBE], "document").shape[1])

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        vectors = self._vectors(list(texts), kind)
        if vectors.ndim != 2 or len(vectors) != len(texts) or vectors.shape[1] != self.dimension:
            raise ConfigurationError(
                f"{self.name} returned vectors of shape {vectors.shape} for {len(texts)} texts; "
                f"the index declares {self.dimension} dimensions"
            )
        return normalize_rows(vectors)

    def _vectors(self, texts: list[str], kind: EmbedKind) -> np.ndarray:
        try:
            if isinstance(self.model, Embeddings):
                rows = (self.model.embed_query(texts[0]) if kind == "query" and len(texts) == 1
                        else self.model.embed_documents(texts))  # fmt: skip
            else:
                rows = _resolved(self.model(texts))
        except ConfigurationError:
            raise
        except Exception as exc:  # the framework's model is a provider: its failure is a ProviderError
            raise ProviderError(f"{self.name} failed to embed: {type(exc).__name__}: {exc}") from exc
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)


class EngramEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` over an engramdb embedder (a vector store's ``embeddings``)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.embedder.embed(texts, kind="document")]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embedder.embed([text], kind="query")[0]]


def embedder_for(spec: Embeddings | EmbedFunction | str, *, dimension: int | None = None) -> Embedder:
    """The engramdb embedder for a framework's ``embed`` setting.

    ``"openai:text-embedding-3-small"``, ``"ollama:nomic-embed-text"`` and
    ``"huggingface:<model>"`` (LangChain's names) are engramdb's own ``openai``, ``ollama`` and
    ``sentence-transformers`` embedders; engramdb's names (``"model2vec:..."``, ``"hash:64"``)
    work too. A LangChain ``Embeddings`` or a function is wrapped (``FrameworkEmbedder``).

    Raises:
        ConfigurationError: a provider engramdb has no embedder for, a model it cannot load,
            or a dimension other than ``dimension``.
    """
    if not isinstance(spec, str):
        return FrameworkEmbedder(spec, dimension=dimension)
    provider, sep, model = spec.partition(":")
    ours = _PROVIDERS.get(provider, provider if provider in REGISTRY else None)
    if not sep or not model or ours is None:
        raise ConfigurationError(
            f"engramdb cannot load the embeddings {spec!r}: it embeds with "
            f"{', '.join(sorted({*REGISTRY, *_PROVIDERS}))} ('provider:model'); for another provider pass "
            "the framework's own object, e.g. langchain's init_embeddings(...), as embed"
        )
    options = EmbedderOptions(dimension=dimension) if ours == "openai" else None
    embedder = resolve_embedder(f"{ours}:{model}", options)
    if dimension is not None and embedder.dimension != dimension:
        raise ConfigurationError(f"{spec!r} embeds in {embedder.dimension} dimensions, not the {dimension} of dims")
    return embedder


def open_memory(memory: Memory | str | None, embedder: Embedder | None) -> tuple[Memory, bool]:
    """The Memory an adapter keeps its items in, and whether the adapter opened it (so closes it).

    Given a store URL (or None, the default file), it opens a Memory with ``embedder`` (the
    framework's embeddings; None: the bundled model). Given a Memory, the framework's
    embeddings must be the Memory's own: vectors of two models cannot share an index.

    Raises:
        ConfigurationError: embeddings other than the Memory's, or neither a Memory nor a URL.
    """
    if memory is not None and not isinstance(memory, (Memory, str)):
        raise ConfigurationError(f"expected a Memory or a store URL, not {type(memory).__name__}")
    if not isinstance(memory, Memory):
        return Memory(memory, embedder=embedder, config=MemoryConfig(infer=False)), True
    if embedder is not None and embedder.name != memory.embedder.name:
        raise ConfigurationError(
            f"the Memory embeds with {memory.embedder.name}, the framework with {embedder.name}: pass a store "
            "URL instead of a Memory, and it is opened with the framework's embeddings"
        )
    return memory, False


def _model_name(model: Any) -> str:
    """The name a store records for the model: its class (or function) and its model, if it names one."""
    kind = type(model) if isinstance(model, Embeddings) else model
    name = f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', type(model).__name__)}"
    detail = next((getattr(model, a) for a in ("model", "model_name", "size") if getattr(model, a, None)), None)
    return f"framework:{name}" + (f":{detail}" if detail is not None else "")


def _resolved(result: Any) -> Any:
    """An async embedding function's result, awaited on a loop of its own (never the caller's)."""
    if not inspect.isawaitable(result):
        return result

    async def wait() -> Any:
        return await result

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    out: list[Any] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            out.append(asyncio.run(wait()))
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=run, name="engramdb-embed")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return out[0]


__all__ = ["EngramEmbeddings", "FrameworkEmbedder", "embedder_for", "open_memory"]
