"""Configuration: ``MemoryConfig`` for the library (``settings.Settings`` is read at the edge).

Library code never reads the environment. The CLI and the server build ``Settings`` from
``ENGRAMDB_*`` variables and a TOML file (``engramdb.settings``), then pass a ``MemoryConfig`` down.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator

from .embedders import EmbedderOptions

ABSTAIN_BELOW = 0.2
"""The default ``SearchOptions.threshold``: on the development sets, the value where most questions
asked in a scope that never spoke of them get no answer while recall in the right scope stays
(docs/benchmarks.md shows the whole trade-off)."""


class SearchOptions(BaseModel):
    """Knobs of hybrid recall; every one can be set per call or in config.

    Scores: ``score = fused × recency_factor × importance_factor × speaker_factor × when_factor``, each
    factor in [0, 1], where ``fused`` is normalised weighted RRF (see ``retrieval.fusion``): it orders
    one search's hits. ``relevance`` is absolute (``retrieval.relevance``), and ``threshold`` cuts on it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    candidates: int = Field(50, ge=1, le=1000, description="candidates taken from each retriever")
    rrf_k: int = Field(10, ge=1, le=1000, description="small: the first ranks of each retriever dominate")
    dense_weight: float = Field(1.0, ge=0)
    lexical_weight: float = Field(2.0, ge=0, description="BM25 outranks the static embedder (docs/benchmarks.md)")
    recency_weight: float = Field(0.0, ge=0, le=1, description="0 ignores age; 1 ranks by recency alone")
    recency_half_life_days: float = Field(30.0, gt=0)
    importance_weight: float = Field(0.0, ge=0, le=1)
    speaker_weight: float = Field(
        0.5, ge=0, le=1, description="a query naming a speaker ('what does alice eat?'): others' memories × (1 − w)"
    )
    time_weight: float = Field(
        0.5, ge=0, le=1, description="a time expression in the query ('last week'): out-of-range memories × (1 − w)"
    )
    outdated_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a message whose derived memories were all superseded or invalidated "
        "('I live in Paris', after 'I moved to Berlin'): × (1 − w), below what holds now",
    )
    dedupe: bool = Field(
        True,
        description="a message and a memory derived from it take one slot: the derived one, with the "
        "better score of the two (retrieval/dedupe.py)",
    )
    dense_without_speakers: bool = Field(
        False,
        description="the dense retriever embeds the query without the names of the scope's speakers (a message's "
        "vector holds no name); BM25 and the factors keep the whole query (retrieval/speakers.py). Off: with the "
        "bundled static model it lowers LoCoMo dev R@10 by 0.002; with a transformer (onnx:minilm-int8) it "
        "raises it by 0.02 (docs/benchmarks.md)",
    )
    when_weight: float = Field(
        0.5, ge=0, le=1, description="a question asking when ('when did…'): memories that name no time × (1 − w)"
    )
    threshold: float = Field(
        ABSTAIN_BELOW,
        ge=0,
        le=1,
        description="a search whose best hit's relevance is below this returns nothing (a question about "
        "something never said); 0 always fills the limit (retrieval/relevance.py)",
    )


class LLMConfig(BaseModel):
    """Any OpenAI-compatible chat endpoint: OpenAI, Ollama, vLLM, LM Studio, llama.cpp's server.

    Nothing is sent anywhere unless this is configured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(..., min_length=1)
    base_url: str | None = Field(None, description="e.g. http://localhost:11434/v1 for Ollama; None is OpenAI")
    api_key: SecretStr | None = Field(None, description="falls back to OPENAI_API_KEY; local servers take any")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10, description="retries with backoff on 429, 5xx and timeouts")
    json_mode: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="auto: json_schema, falling back to JSON mode if the server refuses it"
    )
    temperature: float = Field(0.0, ge=0, le=2)
    prompts: dict[str, str] = Field(default_factory=dict, description="override prompts by name (llm.prompts)")


Durability = Literal["full", "normal"]
DURABILITY = (
    "full: an acknowledged write survives power loss (each commit is synced to the disk); "
    "normal: it survives any crash of the process, and the last commits may be lost if the "
    "machine loses power (SQLite WAL synchronous=NORMAL, PostgreSQL synchronous_commit=off)"
)

CONTEXT_WORDS = 250
"""At most this many words index a message with the turns before it, its own counted first:
a short reply takes what it answers, a long turn stands alone. 250 leaves every LoCoMo turn
its context (identical recall there) and lifts LongMemEval pooled turn R@10 from 0.762 to
0.800, whose assistant turns run to hundreds of words; 200 and 300 give 0.803 and 0.793, and
150 starts to cut LoCoMo's (docs/benchmarks.md)."""


def lower_choice(value: Any) -> Any:
    """``durability`` was once ``synchronous="FULL"``: the old spelling is still accepted."""
    return value.lower() if isinstance(value, str) else value


class MemoryConfig(BaseModel):
    """Everything a ``Memory`` needs; immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str | None = Field(None, description="':memory:', 'sqlite:///path.db', a path, or None for the default file")
    embedder: str | None = Field(None, description="'provider:model'; None is the bundled offline model")
    embedder_options: EmbedderOptions = EmbedderOptions()
    tenant_id: str = Field("default", min_length=1, max_length=128)
    max_text_chars: int = Field(32_000, ge=1)
    max_batch: int = Field(1_000, ge=1)
    max_metadata_bytes: int = Field(16_384, ge=2)
    durability: Durability = Field(
        "full", validation_alias=AliasChoices("durability", "synchronous"), description=DURABILITY
    )
    context_turns: int = Field(2, ge=0, le=8, description="preceding messages of the session indexed with each one")
    context_words: int = Field(
        CONTEXT_WORDS, ge=0, le=100_000,
        description="words a message and its preceding messages are indexed with at most, its own counted first",
    )  # fmt: skip
    search: SearchOptions = SearchOptions()
    blas_threads: int | None = Field(
        1, ge=1, le=256, description="threads numpy's BLAS/OpenMP pools may use in this process; None: unchanged"
    )
    parallel_search: bool = Field(
        True,
        description="run the dense and lexical retrievers side by side: lower latency on an idle machine; "
        "a server under load gains throughput without the thread hand-off (engramdb serve turns it off)",
    )
    llm: LLMConfig | None = Field(None, description="None: the rule-based extractor, no network")
    infer: bool = Field(True, description="derive facts and preferences on add (LLM if configured, else rules)")
    background: bool = Field(False, description="run LLM extraction in a worker thread by default (wait=False)")
    extraction_attempts: int = Field(5, ge=1, le=100, description="tries before an extraction job is failed")

    @field_validator("durability", mode="before")
    @classmethod
    def _old_spelling(cls, value: Any) -> Any:
        return lower_choice(value)


PER_CALL_SETTINGS = frozenset(
    ("search", "parallel_search", "infer", "background", "context_turns", "context_words", "max_text_chars",
     "max_batch", "max_metadata_bytes")
)  # fmt: skip
"""The ``MemoryConfig`` fields read on every call, which a view (``Memory.with_config``) may change."""
