"""engramdb's REST app on a real loopback socket, for tests that talk HTTP to it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from engramdb import Memory
from engramdb.server import ServerSettings, create_app, create_key


@contextmanager
def serving(memory: Memory, *, auth: bool = True) -> Iterator[tuple[str, str]]:
    """The app served by uvicorn on a thread, and a real key for the memory's tenant.

    The socket is bound and listening before the server starts: the first requests wait in
    its backlog until it accepts them, so there is nothing to poll.
    """
    secret, _ = create_key(memory.store, memory.tenant_id)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    app = create_app(memory, ServerSettings(auth=auth))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", ws="none", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", secret
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
