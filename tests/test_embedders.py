"""Embedders: the registry, the bundled model, the cache, and OpenAI-compatible HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from engramdb import ConfigurationError, Memory, ProviderError
from engramdb.embedders import CachedEmbedder, Embedder, EmbedderOptions, resolve_embedder
from engramdb.testing import ScriptedOpenAIServer


def test_default_is_the_bundled_offline_model(default_embedder: Embedder) -> None:
    assert default_embedder.name == "model2vec:minilm-static"
    vectors = default_embedder.embed(["I am vegetarian", "I don't eat meat", "the train leaves at nine"])
    assert vectors.shape == (3, default_embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_static_embedder_loads_a_model_by_path(default_embedder: Embedder) -> None:
    from engramdb.embedders.static import BUNDLED_PATH

    by_path = resolve_embedder(f"model2vec:{BUNDLED_PATH}")
    assert np.allclose(by_path.embed(["hello"]), default_embedder.embed(["hello"]))


def test_hash_embedder_is_deterministic() -> None:
    a, b = resolve_embedder("hash:32"), resolve_embedder("hash:32")
    assert np.array_equal(a.embed(["same text"]), b.embed(["same text"]))
    assert a.dimension == 32 and a.name == "hash:32"


@pytest.mark.parametrize("name", ["unknown:x", "hash:abc", "hash:2", "model2vec:/no/such/model"])
def test_bad_embedder_names_are_configuration_errors(name: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_embedder(name)


class CountingEmbedder:
    name = "counting:1"
    dimension = 4
    blocking = False

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts, *, kind="document"):  # type: ignore[no-untyped-def]
        self.calls.append(list(texts))
        return np.tile(np.array([1, 0, 0, 0], dtype=np.float32), (len(texts), 1))


def test_cache_embeds_each_distinct_text_once() -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, batch_size=2)
    cached.embed(["a", "b", "a", "c"])
    cached.embed(["a", "c", "d"])
    assert inner.calls == [["a", "b"], ["c"], ["d"]]
    cached.embed(["a"], kind="query")  # queries and documents are cached apart
    assert inner.calls[-1] == ["a"]


def test_openai_compatible_endpoint_over_real_http(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ScriptedOpenAIServer(dimension=48) as server:
        options = EmbedderOptions(base_url=server.base_url, api_key="test-key")
        embedder = resolve_embedder("openai:text-embedding-3-small", options)
        assert embedder.dimension == 48 and embedder.name == "openai:text-embedding-3-small"
        with Memory(f"sqlite:///{tmp_path / 'o.db'}", embedder=embedder) as m:
            m.add(["the cat sat on the mat", "stock prices fell sharply"], user_id="u")
            hits = m.search("cat on a mat", user_id="u", options={"lexical_weight": 0}).results
            assert hits[0].memory == "the cat sat on the mat"
        paths = [r["path"] for r in server.requests]
        assert paths.count("/v1/embeddings") >= 3
        assert server.requests[1]["body"]["model"] == "text-embedding-3-small"


def test_openai_endpoint_failure_is_a_provider_error() -> None:
    with ScriptedOpenAIServer() as server, pytest.raises((ProviderError, ConfigurationError)):
        resolve_embedder("openai:m", EmbedderOptions(base_url=server.base_url.replace("/v1", "/nope")))


@pytest.mark.parametrize("body", ["html", "empty", "truncated"])
def test_a_200_that_is_not_embeddings_is_a_provider_error(body: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A captive portal answering 200: no AttributeError, no vector, nothing stored."""
    with ScriptedOpenAIServer(dimension=16) as server:
        embedder = resolve_embedder("openai:m", EmbedderOptions(base_url=server.base_url, api_key="k"))
        server.embedding_body = body  # type: ignore[assignment]
        with pytest.raises(ProviderError) as raised:
            embedder.embed(["where do I live?"])
        assert raised.value.status == 200
        with Memory(f"sqlite:///{tmp_path / 'e.db'}", embedder=embedder) as m:
            with pytest.raises(ProviderError):
                m.add("I live in Berlin", user_id="u")
            assert m.get_all(user_id="u").total == 0


def test_fast_folder_loader_matches_model2vec(default_embedder: Embedder) -> None:
    from model2vec import StaticModel

    from engramdb.embedders.static import BUNDLED_PATH

    reference = StaticModel.from_pretrained(str(BUNDLED_PATH))
    texts = ["Hello there, how are you?", "I ran the Boston marathon in 2023 — ünïcode", "word " * 1000]
    expected = reference.encode(texts, use_multiprocessing=False)
    expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(default_embedder.embed(texts), expected, atol=1e-3)


class RendezvousEmbedder:
    """Returns only once two calls are inside it at the same time."""

    name = "rendezvous:1"
    dimension = 4
    blocking = True

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)

    def embed(self, texts, *, kind="document"):  # type: ignore[no-untyped-def]
        self.barrier.wait()
        return np.tile(np.array([0, 1, 0, 0], dtype=np.float32), (len(texts), 1))


def test_cache_misses_reach_the_model_side_by_side() -> None:
    """Two threads missing the cache call the model at once: the cache's lock is not held over it."""
    cached = CachedEmbedder(RendezvousEmbedder())
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(cached.embed, [text]) for text in ("a", "b")]
        rows = [f.result(timeout=30) for f in futures]
    assert all(r.shape == (1, 4) for r in rows)
    assert cached.blocking is True


def test_the_onnx_tier_embeds_offline_in_order_and_finds_meaning(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 int8 on onnxruntime (``[onnx]``): unit rows, a batch equal to texts one
    by one whatever their lengths, related texts closer than unrelated ones, usable by a store."""
    embedder = resolve_embedder("onnx:minilm-int8")
    assert (embedder.name, embedder.dimension, embedder.blocking) == ("onnx:minilm-int8", 384, False)
    texts = ["I keep bees on the roof", "honey and hives", "My sister lives in Porto with her two cats " * 20]
    batch = embedder.embed(texts)
    assert batch.shape == (3, 384) and np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(batch, alone, atol=1e-4)  # padding in a batch changes nothing
    assert batch[0] @ batch[1] > batch[0] @ batch[2] + 0.2
    with Memory(str(tmp_path / "onnx.db"), embedder="onnx:minilm-int8") as m:
        m.add("I keep bees on the roof", user_id="u", infer=False)
        m.add("My sister lives in Porto", user_id="u", infer=False)
        hits = m.search("where are the hives?", user_id="u", options={"lexical_weight": 0}, threshold=0).results
        assert hits[0].memory == "I keep bees on the roof"
    with pytest.raises(ConfigurationError):
        resolve_embedder("onnx:no-such-model")
