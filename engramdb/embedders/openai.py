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
        try:
            response = self._client.embeddings.create(model=self._model, input=list(texts))
        except self._openai.APIStatusError as exc:
            raise ProviderError(
                f"embedding request failed with HTTP {exc.status_code}", status=exc.status_code, body=str(exc.body)
            ) from exc
        except self._openai.OpenAIError as exc:
            raise ProviderError(f"embedding request failed: {exc}") from exc
        except (AttributeError, TypeError, ValueError) as exc:  # the SDK's own parsing of a body that is not JSON
            raise ProviderError(f"the embedding service answered 200 with something else: {exc}", status=200) from None
        return _vectors(response, len(texts))


def _vectors(response: object, count: int) -> np.ndarray:
    """The rows of an embeddings response, in input order; anything else a 200 carries is a ProviderError.

    A captive portal or a broken proxy answers 200 with an HTML page, nothing, or JSON cut
    off: the SDK then hands back a string or fails to decode, and no vector must come of it.
    """
    try:
        rows = sorted(response.data, key=lambda d: d.index)  # type: ignore[attr-defined]
        vectors = np.array([r.embedding for r in rows], dtype=np.float32)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProviderError(f"the embedding service answered with something that is not embeddings: {exc}",
                            status=200, body=str(response)) from None  # fmt: skip
    if vectors.ndim != 2 or len(vectors) != count:
        raise ProviderError(f"the embedding service returned {len(vectors)} vectors for {count} texts", status=200)
    return normalize_rows(vectors)
