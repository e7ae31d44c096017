"""The commands that run a server (serve, proxy, mcp --transport http), as real processes:
their startup line, log level and access log, and OpenTelemetry tracing."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from engramdb import Memory
from engramdb.cli.serving import masked, store_url
from engramdb.server import create_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(args: list[str], ready: str | None, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """A command as a process; its startup line, and (once it stops) the rest of what it wrote to stderr.

    ``ready``: a URL polled until it answers, before the body runs."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})  # fmt: skip
    assert proc.stderr is not None
    rest: list[str] = []
    try:
        first = proc.stderr.readline()  # written before the server binds: waiting for it is waiting for the start
        if ready is not None:
            _wait_for(ready, proc)
        yield first, rest
    finally:
        proc.terminate()
        proc.wait(30)
        rest.extend(proc.stderr.read().splitlines())
        proc.stderr.close()


def _wait_for(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def engramdb(*args: str) -> list[str]:
    return [sys.executable, "-m", "engramdb", *args]


def test_serve_says_where_it_listens_and_logs_only_warnings_by_default(tmp_path: Path) -> None:
    port, db = _free_port(), tmp_path / "s.db"
    with running(engramdb("serve", "--store", f"sqlite:///{db}", "--port", str(port)),
                 f"http://127.0.0.1:{port}/healthz") as (first, rest):  # fmt: skip
        assert httpx.get(f"http://127.0.0.1:{port}/v1/memories", timeout=10).status_code == 401
    assert first == (f"engramdb serve on http://127.0.0.1:{port} · store sqlite:///{db} · "
                     "auth: API keys (Bearer or X-API-Key) · 1 worker · rate 100/s per key and worker\n")  # fmt: skip
    assert not [line for line in rest if "GET /" in line]  # no access log at the default level


def test_log_level_info_writes_the_access_log_to_stderr(tmp_path: Path) -> None:
    port = _free_port()
    args = engramdb("serve", "--store", f"sqlite:///{tmp_path / 's.db'}", "--port", str(port), "--no-auth",
                    "--log-level", "info", "--rate", "5")  # fmt: skip
    with running(args, f"http://127.0.0.1:{port}/healthz") as (first, rest):
        assert httpx.get(f"http://127.0.0.1:{port}/v1/memories?user_id=ann", timeout=10).status_code == 200
    assert "auth: none (--no-auth, loopback only)" in first and "rate 5/s per key and worker" in first
    assert any('"GET /v1/memories?user_id=ann HTTP/1.1" 200' in line for line in rest), rest


def test_a_bad_log_level_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(engramdb("serve", "--log-level", "loud"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--log-level" in proc.stderr and "Traceback" not in proc.stderr


def test_the_startup_line_masks_the_store_password(postgres_url: str) -> None:
    secret = "hunter2-secret"
    user, rest_of_url = postgres_url.split("://", 1)[1].split(":", 1)
    with_password = f"postgresql://{user}:{secret}{rest_of_url[rest_of_url.index('@') :]}"
    with_password += ("&" if "?" in with_password else "?") + f"password={secret}"
    port = _free_port()
    with running(engramdb("serve", "--store", with_password, "--port", str(port)),
                 f"http://127.0.0.1:{port}/healthz") as (first, _):  # fmt: skip
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).json()["status"] == "ready"
    assert secret not in first and f"store postgresql://{user}:***@" in first and "password=***" in first


def test_proxy_and_mcp_say_where_they_listen(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'p.db'}"
    port = _free_port()
    upstream = "http://me:upstream-secret@127.0.0.1:9/v1"
    with running(engramdb("proxy", "--upstream", upstream, "--store", store, "--port", str(port)), None) as (line, _):
        assert line == (f"engramdb proxy on http://127.0.0.1:{port} · store {store} · auth: API keys (X-API-Key)"
                        " · upstream http://me:***@127.0.0.1:9/v1\n")  # fmt: skip
    port = _free_port()
    args = engramdb("mcp", "--transport", "http", "--store", store, "--port", str(port), "--user", "alice")
    with running(args, f"http://127.0.0.1:{port}/mcp") as (line, _):
        assert line == (f"engramdb mcp on http://127.0.0.1:{port} · store {store} · auth: API keys (Bearer or "
                        "X-API-Key) · MCP at /mcp · scope alice\n")  # fmt: skip


def test_store_urls_are_printed_without_secrets() -> None:
    assert masked("postgresql://u:pw@db:5432/m?sslmode=require&password=pw2") == \
        "postgresql://u:***@db:5432/m?sslmode=require&password=***"  # fmt: skip
    assert masked("postgresql://u@db/m") == "postgresql://u@db/m"
    assert store_url("/data/memory.db") == "sqlite:////data/memory.db" and store_url(":memory:") == ":memory:"


# A process that sets up OpenTelemetry's SDK as a deployment would (spans written to a file as
# they end), then runs the engramdb command line with the arguments it is given.
TRACED = textwrap.dedent("""
    import sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    spans = open(sys.argv[1], "w")
    one_line = lambda span: span.to_json(indent=None) + "\\n"
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=spans, formatter=one_line)))
    trace.set_tracer_provider(provider)
    from engramdb.cli import main
    sys.argv = ["engramdb", *sys.argv[2:]]
    main()
""")


def test_otel_traces_each_request_but_the_probes(tmp_path: Path) -> None:
    store, spans, port = f"sqlite:///{tmp_path / 't.db'}", tmp_path / "spans.jsonl", _free_port()
    with Memory(store) as m:
        key = create_key(m.store, "default")[0]
    args = [sys.executable, "-c", TRACED, str(spans), "serve", "--store", store, "--port", str(port), "--otel"]
    with running(args, f"http://127.0.0.1:{port}/healthz") as (first, _):
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/memories?user_id=ann", headers=headers, timeout=10).is_success
        assert httpx.post(f"http://127.0.0.1:{port}/v1/search", headers=headers, timeout=10,
                          json={"query": "tea", "user_id": "ann"}).is_success  # fmt: skip
    assert "tracing: OpenTelemetry" in first
    recorded = [json.loads(line) for line in spans.read_text().splitlines()]
    servers = [s for s in recorded if s["kind"] == "SpanKind.SERVER"]
    assert sorted(s["name"] for s in servers) == ["GET /v1/memories", "POST /v1/search"]  # /healthz: not traced
    search = next(s for s in servers if s["name"] == "POST /v1/search")
    assert search["attributes"]["http.route"] == "/v1/search"


class Collector:
    """An OTLP/HTTP trace receiver on loopback: what engramdb exports when it sets up the SDK itself."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    received.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever)

    def spans(self) -> list[tuple[str, dict[str, str], Any]]:
        """(service name, resource attributes, span) for every span received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    found += [(attrs.get("service.name", ""), attrs, span) for span in scope.spans]
        return found


def test_otel_exports_over_otlp_when_the_process_has_no_tracer(tmp_path: Path) -> None:
    collector = Collector()
    collector.thread.start()
    try:
        port = _free_port()
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"}
        args = engramdb("serve", "--store", f"sqlite:///{tmp_path / 'o.db'}", "--port", str(port), "--no-auth",
                        "--workers", "2")  # fmt: skip
        with running(args, f"http://127.0.0.1:{port}/healthz", env={**env, "ENGRAMDB_OTEL": "1"}):
            for _ in range(4):
                assert httpx.get(f"http://127.0.0.1:{port}/v1/memories?user_id=ann", timeout=10).is_success
        # each worker sends the spans it still holds as it stops (the app's shutdown, on SIGTERM)
    finally:
        collector.server.shutdown()
        collector.thread.join()
        collector.server.server_close()
    servers = [(name, attrs, span) for name, attrs, span in collector.spans() if span.kind == span.SPAN_KIND_SERVER]
    assert [span.name for _, _, span in servers] == ["GET /v1/memories"] * 4
    assert all(name == "engramdb" and attrs["deployment.environment"] == "test" for name, attrs, _ in servers)


@pytest.mark.parametrize("asked", [["--otel"], []])
def test_otel_without_the_instrumentation_says_what_to_install(tmp_path: Path, asked: list[str]) -> None:
    """The instrumentation's import fails as it does where it is not installed; asked for by the
    flag or by ENGRAMDB_OTEL, serve exits with one line naming the extra."""
    hidden = ("import sys; sys.modules['opentelemetry.instrumentation.fastapi'] = None; "
              "sys.argv = ['engramdb', *sys.argv[1:]]; from engramdb.cli import main; main()")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", hidden, "serve", "--store", f"sqlite:///{tmp_path / 'o.db'}", *asked],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "ENGRAMDB_OTEL": "1" if not asked else "0"})  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr == ("error: OpenTelemetry tracing needs opentelemetry-instrumentation-fastapi: "
                           "pip install 'engramdb[otel]'\n")  # fmt: skip
