"""What a proxied turn says, in each OpenAI API's shapes, and whether it is worth remembering.

Two wire protocols carry a chat turn (the shapes are the ``openai`` package's types):

- **Chat Completions** (``POST /chat/completions``): the user's text is the last ``user``
  message of ``messages``; the reply is ``choices[0].message.content``, streamed as
  ``chat.completion.chunk`` events whose ``choices[0].delta.content`` are its pieces. The
  context goes into the system prompt (the first ``system``/``developer`` message, or a new one).
- **Responses** (``POST /responses``): the user's text is ``input`` (a string) or the last
  ``user`` message among its items (``content`` a string or ``input_text`` parts); the reply is
  the ``output_text`` parts of its ``message`` output items, streamed as
  ``response.output_text.delta`` events. The context goes into ``instructions``, after the
  caller's own. Not as an input item: with ``previous_response_id`` the input items become
  the stored conversation, so each turn's memories would pile up in every later turn, while
  ``instructions`` apply to the one response (the API does not carry them over), and the next
  turn gets the memories relevant to it.

``contentless`` decides which texts are not recorded at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..retrieval.lexical import STOPWORDS

TRIVIAL_WORDS = 6  # a text this short with no content word says nothing on its own
_FILLER = frozenset(  # acknowledgements, thanks, greetings and interjections (and a few in es, de, fr, pt, it)
    """ok okay k kk yes yeah yep yup ya no nope nah sure thanks thank thx ty cheers noted got gotcha great
    cool nice good fine perfect awesome alright right understood understand agreed agree exactly indeed
    absolutely definitely totally true lol haha hah hmm hm mhm uh um ah oh wow hi hello hey bye goodbye
    welcome please sorry np yw lot much glad sounds sound done will let know morning afternoon evening
    night day gracias vale sí si claro danke ja nein gut merci oui non obrigado obrigada sim grazie certo
    perfetto bene""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)  # "you're" is one word


def contentless(text: str) -> bool:
    """Whether a turn says nothing worth remembering: ``"Noted!"``, ``"ok"``, ``"thanks 👍"``.

    True for a text of at most ``TRIVIAL_WORDS`` words none of which is a content word (not a
    function word, not an acknowledgement, greeting or interjection; emoji and punctuation are
    no words). Recalled later, away from the conversation it answered, such a text tells a
    model nothing, yet it is found through the turns it was indexed with and takes a line of
    the context budget. One content word is enough to keep a text ("Lisbon" may answer
    "where do you live?"), and so is a number; a longer text is kept even of common words
    ("no, not that one, the one before") because enough of them can answer something.
    """
    found = [w.split("'")[0] for w in _WORD.findall(text.lower().replace("’", "'"))]
    if len(found) > TRIVIAL_WORDS:
        return False
    return all(w in STOPWORDS or w in _FILLER for w in found if w)


@dataclass(frozen=True)
class Wire:
    """One API's shapes: the upstream path, where the user's text and the reply are, where context goes."""

    path: str
    said: Callable[[Any], str | None]
    with_context: Callable[[dict[str, Any], str], dict[str, Any]]
    answer: Callable[[Any], str]
    pieces: Callable[[dict[str, Any]], str]  # the reply's text in one streamed event


def _text_of(content: Any, part_type: str) -> str | None:
    """A message's text: a string, or its text parts joined."""
    if isinstance(content, list):
        content = "\n".join(str(p.get("text", "")) for p in content
                            if isinstance(p, dict) and p.get("type", part_type) in (part_type, "text"))  # fmt: skip
    return (content.strip() or None) if isinstance(content, str) else None


def _last_user(items: Any, part_type: str) -> str | None:
    if not isinstance(items, list):
        return None
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            return _text_of(item.get("content"), part_type)
    return None


# --- Chat Completions ---------------------------------------------------------------------


def _chat_said(body: Any) -> str | None:
    return _last_user(body.get("messages"), "text") if isinstance(body, dict) else None


def _chat_with_context(body: dict[str, Any], block: str) -> dict[str, Any]:
    messages = list(body["messages"])
    if messages and isinstance(messages[0], dict) and messages[0].get("role") in ("system", "developer"):
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{block}".strip()
        messages[0] = first
    else:
        messages.insert(0, {"role": "system", "content": block})
    return {**body, "messages": messages}


def _chat_answer(payload: Any) -> str:
    try:
        return str(payload["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return ""


def _chat_piece(event: dict[str, Any]) -> str:
    try:
        return str(event["choices"][0].get("delta", {}).get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


CHAT = Wire("/chat/completions", _chat_said, _chat_with_context, _chat_answer, _chat_piece)


# --- Responses ----------------------------------------------------------------------------


def _responses_said(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    given = body.get("input")
    if isinstance(given, str):
        return given.strip() or None
    return _last_user(given, "input_text")


def _responses_with_context(body: dict[str, Any], block: str) -> dict[str, Any]:
    own = body.get("instructions")
    return {**body, "instructions": f"{own}\n\n{block}".strip() if isinstance(own, str) and own else block}


def _responses_answer(payload: Any) -> str:
    output = payload.get("output") if isinstance(payload, dict) else None
    if not isinstance(output, list):
        return ""
    return "".join(
        str(part.get("text") or "")
        for item in output if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or [] if isinstance(part, dict) and part.get("type") == "output_text"
    )  # fmt: skip


def _responses_piece(event: dict[str, Any]) -> str:
    return str(event.get("delta") or "") if event.get("type") == "response.output_text.delta" else ""


RESPONSES = Wire("/responses", _responses_said, _responses_with_context, _responses_answer, _responses_piece)


def stream_text(wire: Wire, lines: list[bytes]) -> list[str]:
    """The reply's pieces in complete server-sent-event lines (``data: {...}``; others skipped)."""
    out = []
    for line in lines:
        if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        if isinstance(event, dict):
            out.append(wire.pieces(event))
    return out


__all__ = ["CHAT", "RESPONSES", "TRIVIAL_WORDS", "Wire", "contentless", "stream_text"]
