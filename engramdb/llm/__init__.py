"""Chat LLMs for extraction and reconciliation: one Protocol, one OpenAI-compatible client."""

from .base import LLM, LLMReply
from .openai_chat import OpenAIChat, parse_json_object

__all__ = ["LLM", "LLMReply", "OpenAIChat", "parse_json_object"]
