"""Test doubles that engramdb ships for its own tests and for users testing their agents.

- ``HashEmbedder``: deterministic vectors, no model.
- ``ScriptedOpenAIServer``: a real HTTP server speaking the OpenAI wire protocol
  (``/v1/embeddings``, ``/v1/chat/completions``, ``/v1/models``) on loopback, whose chat
  replies are scripted. Drive it with the official ``openai`` client, like a real provider.
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
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
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


def _usage(reply: Reply, body: dict[str, Any]) -> dict[str, int]:
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = sum(count_tokens(str(m.get("content", ""))) + 4 for m in body.get("messages", []))
    completion = reply.completion_tokens if reply.completion_tokens is not None else count_tokens(reply.content)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


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

        def _answer(self, status: int, payload: dict[str, Any], body: Body, stream: bool) -> None:
            """The completion as the protocol sends it, or the broken body scripted in its place."""
            if body == "html":
                self._write(200, PORTAL_PAGE.encode(), "text/html; charset=utf-8")
            elif body == "empty":
                self._write(200, b"", "application/json")
            elif body == "truncated":
                data = json.dumps(payload).encode()
                self._write(200, data[: len(data) // 2], "application/json")
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
            else:
                self._send(404, {"error": {"message": "not found"}})

    return Handler


__all__ = ["Body", "HashEmbedder", "Reply", "ScriptedOpenAIServer"]
