"""An OpenAI-compatible chat client through the official SDK, made robust for extraction.

- Structured output: ``json_schema`` where the server supports it; a server that refuses it
  (HTTP 400 mentioning ``response_format``) is asked again in JSON mode, and remembered.
- Malformed output (prose around the JSON, code fences, a cut-off object): repaired when
  possible, otherwise asked once more with the error; then a ``ProviderError``.
- 429, 5xx, connection errors and timeouts: retried by the SDK with exponential backoff
  (``max_retries``), bounded by ``timeout_s`` per attempt.
- A 200 that is no chat completion (a captive portal's HTML page, an empty body, JSON a proxy
  cut off): a ``ProviderError`` carrying the body, like any other failed request. The SDK
  would hand back such a body as a string or raise ``ValueError`` from its JSON decoder.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..config import LLMConfig
from ..errors import ConfigurationError, ProviderError
from ..models import Usage
from .base import LLMReply

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
BODY_PREVIEW_CHARS = 500


def parse_json_object(text: str | None) -> dict[str, Any] | None:
    """The JSON object in a reply, tolerating fences and prose around it; None if there is none."""
    if not text:
        return None
    candidates = [text.strip(), _FENCE.sub("", text.strip())]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


class OpenAIChat:
    """``complete_json`` over ``POST {base_url}/chat/completions``."""

    def __init__(self, config: LLMConfig) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError("openai is not installed: pip install 'engramdb[openai]'") from exc
        self._openai = openai
        key = config.api_key.get_secret_value() if config.api_key else os.environ.get("OPENAI_API_KEY")
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=key or "not-needed",
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )
        self._config = config
        self._mode = "json_schema" if config.json_mode in ("auto", "json_schema") else "json_object"
        self.name = f"openai:{config.model}"

    def complete_json(self, system: str, user: str, *, schema_name: str, schema: dict[str, Any]) -> LLMReply:
        messages: list[dict[str, str]] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        usage = Usage()
        for attempt in range(2):
            text, spent = self._chat(messages, schema_name, schema)
            usage = usage + spent
            data = parse_json_object(text)
            if data is not None:
                return LLMReply(data=data, usage=usage)
            if attempt == 0:  # one repair round: show the model what it sent
                messages += [
                    {"role": "assistant", "content": text or ""},
                    {"role": "user", "content": "That was not a valid JSON object. Reply with the JSON object only."},
                ]
        raise ProviderError("the LLM returned malformed JSON twice", body=(text or "")[:BODY_PREVIEW_CHARS])

    def _chat(self, messages: list[dict[str, str]], schema_name: str, schema: dict[str, Any]) -> tuple[str, Usage]:
        try:
            raw = self._client.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
                model=self._config.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self._config.temperature,
                response_format=self._response_format(schema_name, schema),  # type: ignore[arg-type]
            )
        except self._openai.BadRequestError as exc:
            if self._mode == "json_schema" and self._config.json_mode == "auto" and "response_format" in str(exc):
                self._mode = "json_object"  # this server has no structured outputs: JSON mode from now on
                return self._chat(messages, schema_name, schema)
            raise ProviderError(f"LLM request refused (HTTP 400): {exc}", status=400, body=str(exc.body)) from exc
        except self._openai.APIStatusError as exc:
            raise ProviderError(
                f"LLM request failed with HTTP {exc.status_code}", status=exc.status_code, body=str(exc.body)
            ) from exc
        except self._openai.OpenAIError as exc:  # timeouts and connection errors, after the SDK's retries
            raise ProviderError(f"LLM request failed: {exc}") from exc
        return _completion(raw)

    def _response_format(self, schema_name: str, schema: dict[str, Any]) -> dict[str, Any]:
        if self._mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema}}
        return {"type": "json_object"}


def _completion(raw: Any) -> tuple[str, Usage]:
    """The text and token counts of a 200, whose body a captive portal or a proxy may have replaced.

    The SDK parses leniently: a body that is not JSON comes back as a string, JSON it cannot
    decode raises ``ValueError``, and an object without a completion's fields comes back
    with those fields missing. Each is the provider's failure, reported with the body.
    """
    from openai.types.chat import ChatCompletion

    try:
        response = raw.parse()
        if isinstance(response, str):
            raise TypeError("the body is not JSON")
        if not isinstance(response, ChatCompletion) or not isinstance(response.choices, list):
            raise TypeError("it has no list of choices")
        content = response.choices[0].message.content if response.choices else None
        if content is not None and not isinstance(content, str):
            raise TypeError("the message content is not text")
        tokens = response.usage
        usage = Usage(calls=1)
        if tokens is not None:
            prompt, completion = tokens.prompt_tokens or 0, tokens.completion_tokens or 0
            usage = Usage(calls=1, prompt_tokens=prompt, completion_tokens=completion)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        kind = raw.headers.get("content-type") or "no content type"
        raise ProviderError(
            f"the LLM answered HTTP {raw.status_code} with a body that is not a chat completion ({kind}): {exc}",
            status=raw.status_code,
            body=raw.text[:BODY_PREVIEW_CHARS],
        ) from exc
    return content or "", usage
