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
from typing import Any

import numpy as np

from ..errors import ConfigurationError, ProviderError
from .base import EmbedKind, normalize_rows

BUNDLED_PATH = Path(__file__).parent / "assets" / "minilm-static"
BUNDLED_NAME = "model2vec:minilm-static"


class StaticEmbedder:
    """A model2vec static model, from the bundled folder, a local path or a hub name.

    A local folder is read directly with safetensors and tokenizers (what model2vec itself
    uses), because importing model2vec's persistence layer costs ~0.5 s, half of the budget
    for a fresh CLI process to answer. Hub names go through ``model2vec.StaticModel``.
    The two paths give identical vectors (tested).
    """

    def __init__(self, model: str = "minilm-static") -> None:
        source = BUNDLED_PATH if model == "minilm-static" else Path(model).expanduser()
        try:
            if (source / "model.safetensors").is_file():
                self._table, self._tokenizer = _load_folder(source)
            else:
                self._table, self._tokenizer = _load_hub(model)
        except Exception as exc:
            raise ConfigurationError(f"cannot load model2vec model {model!r}: {exc}") from exc
        self._unk = self._tokenizer.token_to_id("[UNK]")
        self.name = f"model2vec:{model}"
        self.blocking = False  # a table lookup and a mean: well under a millisecond
        self.dimension = int(self._table.shape[1])
        self._lock = threading.Lock()  # the Rust tokenizer refuses concurrent use ("Already borrowed")

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        """Mean of the token vectors (unknown tokens dropped), L2-normalised."""
        try:
            with self._lock:
                encodings = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        except Exception as exc:
            raise ProviderError(f"tokenizer failed: {exc}") from exc
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids = [i for i in encoding.ids if i != self._unk]
            if ids:
                out[row] = self._table[ids].mean(axis=0, dtype=np.float32)
        return normalize_rows(out)


MAX_TOKENS = 512


def _load_folder(folder: Path) -> tuple[np.ndarray, Any]:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    table = load_file(str(folder / "model.safetensors"))["embeddings"].astype(np.float32)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return table, tokenizer


def _load_hub(name: str) -> tuple[np.ndarray, Any]:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(name)
    model.tokenizer.no_padding()
    model.tokenizer.enable_truncation(MAX_TOKENS)
    return np.asarray(model.embedding, dtype=np.float32), model.tokenizer
