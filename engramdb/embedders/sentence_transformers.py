"""sentence-transformers models by hub name or local path (extra: ``engramdb[sentence-transformers]``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigurationError, ProviderError
from .base import EmbedKind, normalize_rows


class SentenceTransformerEmbedder:
    def __init__(self, model: str, *, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigurationError(
                "sentence-transformers is not installed: pip install 'engramdb[sentence-transformers]'"
            ) from exc
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as exc:
            raise ConfigurationError(f"cannot load sentence-transformers model {model!r}: {exc}") from exc
        self.name = f"sentence-transformers:{model}"
        self.blocking = True  # a transformer forward pass takes tens of milliseconds on a CPU
        dimension = self._model.get_sentence_embedding_dimension()
        if dimension is None:
            raise ConfigurationError(f"model {model!r} does not declare its embedding dimension")
        self.dimension = int(dimension)

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        try:
            vectors = self._model.encode(list(texts), batch_size=64, show_progress_bar=False)
        except Exception as exc:
            raise ProviderError(f"sentence-transformers failed to embed: {exc}") from exc
        return normalize_rows(np.asarray(vectors))
