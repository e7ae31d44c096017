"""Memory for an existing OpenAI app with a new URL and a key: engramdb proxy in front of the model.

Here the upstream is the scripted server from engramdb.testing and the proxy runs in a thread;
in production: `engramdb proxy --upstream https://api.openai.com/v1` and point the app at it,
with an engramdb key (`engramdb keys create --tenant acme`) in its X-API-Key header.
"""

import socket
import tempfile
import threading
import time
from pathlib import Path

import openai
import uvicorn

from engramdb import Memory
from engramdb.server import create_key
from engramdb.server.proxy import create_proxy
from engramdb.testing import Reply, ScriptedOpenAIServer

with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{Path(tmp) / 'proxy.db'}") as memory, \
        ScriptedOpenAIServer() as upstream:  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_proxy(memory, upstream.base_url), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    key, _ = create_key(memory.store, memory.tenant_id)  # the proxy's callers need an engramdb key
    app = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-your-key",  # the URL changes,
                        default_headers={"X-API-Key": key})  # and the app sends its key  # fmt: skip
    upstream.script(Reply(content="Got it!"), Reply(content="How about a peanut-free granola bar?"))
    for said in ("I'm allergic to peanuts.", "Suggest a snack for my hike."):
        answer = app.chat.completions.create(model="gpt-4.1-mini", user="alice",
                                             messages=[{"role": "user", "content": said}])  # fmt: skip
        print(f"user: {said}\nassistant: {answer.choices[0].message.content}")
        time.sleep(0.2)  # the turn is recorded just after the answer is sent
    seen = upstream.requests[-1]["body"]["messages"][0]["content"]
    print("\nwhat the model saw on the second turn:\n" + seen)
    assert "allergic to peanuts" in seen, "the second turn should carry the first one's memory"
    server.should_exit = True
