"""Test doubles that engramdb ships for its own tests and for users testing their agents.

- ``HashEmbedder``: deterministic vectors, no model.
- ``ScriptedOpenAIServer``: a real HTTP server speaking the OpenAI wire protocol
  (``/v1/embeddings``, ``/v1/chat/completions``, ``/v1/responses``, ``/v1/models``) on
  loopback, whose replies are scripted (one script for both chat APIs). Drive it with the
  official ``openai`` client, like a real provider: a response streams as OpenAI's events do
  (chat: ``chat.completion.chunk`` deltas, then ``[DONE]``; responses: ``response.created``
  through ``response.completed``, a word per ``response.output_text.delta``).
  A step can also answer as a broken network path does: 200 with an HTML page (a captive
  portal), an empty body, or the completion's JSON cut off (a proxy that dropped the rest).

Example::

    with ScriptedOpenAIServer() as server:
        server.script(Reply(content='{"memories": []}'), Reply(status=429))
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from .embedders.hashing import HashEmbedder

Body = Literal["completion", "html", "empty", "truncated"]
PORTAL_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in to the network</title></head>"
    "<body><h1>Welcome</h1><p>Accept the terms to continue.</p></body></html>"
)


@dataclass
class Reply:
    """One scripted chat reply: content, or an HTTP error status, optionally after a delay.

    Token counts default to the real cl100k count of the request's messages and of the reply.
    ``body`` is what a 200 carries: the chat completion, or what a captive portal or a broken
    proxy puts in its place — an HTML page (``html``), nothing (``empty``), or the completion's
    JSON cut off halfway (``truncated``), each with a consistent ``Content-Length``.
    """

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    body: Body = "completion"


@functools.cache
def _cl100k() -> Any:
    import warnings

    with warnings.catch_warnings():  # it reads its data with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        encoding = bpe_openai.get_encoding("cl100k_base")
        encoding.encode("load")  # the data loads on first use
        return encoding


def count_tokens(text: str) -> int:
    """cl100k_base tokens, counted offline (bpe-openai ships the encoding)."""
    return len(_cl100k().encode(text))


@dataclass
class ScriptedOpenAIServer:
    dimension: int = 64
    requests: list[dict[str, Any]] = field(default_factory=list)
    responder: Callable[[dict[str, Any]], Reply] | None = None  # answers when no scripted reply is left
    embedding_body: Body = "completion"  # what a 200 from /v1/embeddings carries (see Reply.body)
    embedding_gate: Callable[[list[str]], None] | None = None  # called before answering: may hold a request

    def __post_init__(self) -> None:
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._embedder = HashEmbedder(self.dimension)
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return Reply(status=500, content="no scripted reply left")

    def start(self) -> ScriptedOpenAIServer:
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return 400, {
                "error": {"message": "input must be a string or a list of strings", "type": "invalid_request_error"}
            }
        if self.embedding_gate is not None:
            self.embedding_gate(inputs)
        vectors = self._embedder.embed(inputs)
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": sum(len(t.split()) for t in inputs), "total_tokens": 0}
        return 200, {"object": "list", "data": data, "model": body.get("model", ""), "usage": usage}

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], Body]:
        """The status and payload of the next scripted reply, and what its body should carry."""
        reply = self._next_reply(body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            error = {"error": {"message": reply.content or "scripted error", "type": "server_error"}}
            return reply.status, error, "completion"
        completion = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply.content}}
            ],
            "usage": _usage(reply, body),
        }
        return 200, completion, reply.body

    def response(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], Body]:
        """The next scripted reply as a Responses API ``response`` object (``/v1/responses``)."""
        reply = self._next_reply(body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            error = {"message": reply.content or "scripted error", "type": "server_error", "param": None, "code": None}
            return reply.status, {"error": error}, "completion"
        number = len(self.requests)
        text = {"type": "output_text", "text": reply.content, "annotations": [], "logprobs": []}
        message = {"id": f"msg_{number}", "type": "message", "status": "completed", "role": "assistant",
                   "content": [text]}  # fmt: skip
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = count_tokens(str(body.get("instructions") or "")) + count_tokens(json.dumps(body.get("input", "")))
        completion = reply.completion_tokens if reply.completion_tokens is not None else count_tokens(reply.content)
        usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                 "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": prompt + completion}  # fmt: skip
        response = {
            "id": f"resp_{number}", "object": "response", "created_at": int(time.time()), "status": "completed",
            "completed_at": int(time.time()), "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model", "scripted"), "output": [message], "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": body.get("user"), "metadata": body.get("metadata") or {},
        }  # fmt: skip
        return 200, response, reply.body


def _response_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """A response as the Responses API streams it: created, in progress, the message's item and text
    part opened, a word per delta, each closed, completed; every event numbered in order."""
    message = response["output"][0]
    text = message["content"][0]["text"]
    pending = {**response, "status": "in_progress", "output": [], "usage": None, "completed_at": None}
    item = {**message, "status": "in_progress", "content": []}
    empty_part = {"type": "output_text", "text": "", "annotations": []}
    at = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    words = text.split(" ")
    deltas = [{"type": "response.output_text.delta", **at, "delta": w + (" " if i < len(words) - 1 else ""),
               "logprobs": []} for i, w in enumerate(words)]  # fmt: skip
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **at, "part": empty_part},
        *deltas,
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": response},
    ]
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = sum(count_tokens(str(m.get("content", ""))) + 4 for m in body.get("messages", []))
    completion = reply.completion_tokens if reply.completion_tokens is not None else count_tokens(reply.content)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _QuietServer(ThreadingHTTPServer):
    """A client that hung up before its answer (a timeout being tested) is no error of the
    server's: it prints nothing, where ``socketserver`` prints a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler(server: ScriptedOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            self._write(status, json.dumps(payload).encode(), "application/json")

        def _write(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(
            self, status: int, payload: dict[str, Any], body: Body, stream: bool, *, events: bool = False
        ) -> None:
            """The reply as the protocol sends it (``events``: the Responses API's stream), or the
            broken body scripted in its place."""
            if body == "html":
                self._write(200, PORTAL_PAGE.encode(), "text/html; charset=utf-8")
            elif body == "empty":
                self._write(200, b"", "application/json")
            elif body == "truncated":
                data = json.dumps(payload).encode()
                self._write(200, data[: len(data) // 2], "application/json")
            elif stream and events:
                self._stream_events(status, payload)
            elif stream:
                self._stream(status, payload)
            else:
                self._send(status, payload)

        def _stream(self, status: int, payload: dict[str, Any]) -> None:
            """The reply as server-sent events, a word per chunk, as OpenAI streams it."""
            if status != 200:
                self._send(status, payload)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            text = payload["choices"][0]["message"]["content"]
            pieces = [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]
            base = {"id": payload["id"], "object": "chat.completion.chunk", "created": payload["created"],
                    "model": payload["model"]}  # fmt: skip
            for i, piece in enumerate(pieces):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())

        def _stream_events(self, status: int, payload: dict[str, Any]) -> None:
            """A response as the Responses API's named server-sent events (no ``[DONE]`` after them)."""
            if status != 200:
                self._send(status, payload)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in _response_events(payload):
                self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "body is not JSON"}})
                return
            server.requests.append({"path": self.path, "body": body})
            if self.path == "/v1/embeddings":
                self._answer(*server.embeddings(body), server.embedding_body, stream=False)
            elif self.path == "/v1/chat/completions":
                self._answer(*server.chat(body), stream=bool(body.get("stream")))
            elif self.path == "/v1/responses":
                self._answer(*server.response(body), stream=bool(body.get("stream")), events=True)
            else:
                self._send(404, {"error": {"message": "not found"}})

    return Handler


__all__ = ["Body", "HashEmbedder", "Reply", "ScriptedOpenAIServer"]
