"""Static (model2vec) embedders, including the bundled offline default.

The default is a model2vec model distilled from all-MiniLM-L6-v2 and shipped inside the
package (``assets/minilm-static``; rebuilt by ``scripts/build_default_embedder.py``). A
static model is a token-embedding table plus mean pooling: a query embeds in well under a
millisecond on one core, it loads in a fraction of a second with numpy alone (no torch),
and on conversational recall it does better than the transformer it came from.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError, ProviderError
from .base import EmbedKind, normalize_rows

BUNDLED_PATH = Path(__file__).parent / "assets" / "minilm-static"
BUNDLED_NAME = "model2vec:minilm-static"


class StaticEmbedder:
    """A model2vec static model, from the bundled folder, a local path or a hub name."""

    def __init__(self, model: str = "minilm-static") -> None:
        try:
            from model2vec import StaticModel
        except ImportError as exc:  # pragma: no cover - model2vec is a core dependency
            raise ConfigurationError("model2vec is missing: pip install engramdb") from exc
        source = str(BUNDLED_PATH) if model == "minilm-static" else model
        try:
            self._model = StaticModel.from_pretrained(source)
        except Exception as exc:
            raise ConfigurationError(f"cannot load model2vec model {model!r}: {exc}") from exc
        self.name = f"model2vec:{model}"
        self.dimension = int(self._model.embedding.shape[1])
        self._lock = threading.Lock()  # the Rust tokenizer refuses concurrent use ("Already borrowed")

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        try:
            with self._lock:
                vectors = self._model.encode(list(texts), use_multiprocessing=False)
        except Exception as exc:
            raise ProviderError(f"model2vec failed to embed: {exc}") from exc
        return normalize_rows(vectors)
