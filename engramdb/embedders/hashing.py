"""A deterministic hashing embedder: no model, no network, stable across machines.

Meant for tests and demos of the plumbing. Texts sharing words get similar vectors
(a bag of hashed words and character trigrams), which is enough to exercise ranking.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .base import EmbedKind, normalize_rows

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    def __init__(self, dimension: int = 64) -> None:
        if dimension < 8 or dimension > 4096:
            from ..errors import ConfigurationError

            raise ConfigurationError("hash embedder dimension must be between 8 and 4096")
        self.dimension = dimension
        self.name = f"hash:{dimension}"
        self.blocking = False

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, 1.0 if (value >> 40) & 1 else -1.0

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                index, sign = self._bucket("w:" + word)
                out[row, index] += sign
                padded = f"#{word}#"
                for i in range(len(padded) - 2):
                    index, sign = self._bucket("t:" + padded[i : i + 3])
                    out[row, index] += 0.3 * sign
        return normalize_rows(out)
