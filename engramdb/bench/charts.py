"""The PNG the recall benchmarks draw: recall@k per category, so a person sees the shape at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigurationError


def plot_recall(rows: dict[str, list[float]], ks: list[int], title: str, path: Path) -> None:
    """One line per row (its recall at each k); a row named ``overall…`` drawn bold."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigurationError("the chart needs matplotlib: pip install 'engramdb[bench]'") from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, values in rows.items():
        style: dict[str, Any] = {"linewidth": 3, "color": "black"} if name.startswith("overall") else {}
        ax.plot(ks, values, marker="o", label=name, **style)
    ax.set_xlabel("k")
    ax.set_ylabel("evidence recall@k")
    ax.set_ylim(0, 1)
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
