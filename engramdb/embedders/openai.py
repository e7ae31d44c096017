"""Any OpenAI-compatible embeddings endpoint (OpenAI, Ollama, vLLM, LM Studio) via the official SDK."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigurationError, ProviderError
from .base import EmbedKind, normalize_rows


class OpenAIEmbedder:
    """Embeds through ``POST {base_url}/embeddings``.

    The dimension is learnt from one probe call unless given, so local servers with
    unusual models work without configuration. The API key falls back to OPENAI_API_KEY,
    then to a placeholder, because local servers accept any key.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        dimension: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError("openai is not installed: pip install 'engramdb[openai]'") from exc
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=timeout,
            max_retries=3,
        )
        self._model = model
        self.name = f"openai:{model}"
        self.blocking = True  # every call is an HTTP request
        self.dimension = dimension or int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        """Unit vectors in input order. A 200 that is not embeddings (a captive portal's HTML page,
        nothing, JSON cut off: the SDK fails to parse it or hands back a string) is a ProviderError."""
        try:
            response = self._client.embeddings.create(model=self._model, input=list(texts))
            rows = sorted(response.data, key=lambda d: d.index)
            vectors = np.array([r.embedding for r in rows], dtype=np.float32)
        except self._openai.APIStatusError as exc:
            raise ProviderError(
                f"embedding request failed with HTTP {exc.status_code}", status=exc.status_code, body=str(exc.body)
            ) from exc
        except self._openai.OpenAIError as exc:
            raise ProviderError(f"embedding request failed: {exc}") from exc
        except (AttributeError, TypeError, ValueError) as exc:
            raise ProviderError(f"the embedding service answered 200 with something else: {exc}", status=200) from None
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ProviderError(f"the embedding service returned {len(vectors)} vectors for {len(texts)} texts",
                                status=200)  # fmt: skip
        return normalize_rows(vectors)
