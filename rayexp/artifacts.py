"""The files results are written as: PNG figures, Parquet row files and markdown tables, each written atomically.
A leaf module: every report, evaluation and family imports it, it imports nothing of rayexp."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def save_figure(fig, out: Path) -> Path:
    """Write a matplotlib figure as PNG atomically (temp file, then rename) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def write_rows(df: pd.DataFrame, path: Path, keep_other: str | None = None) -> pd.DataFrame:
    """Write ``df`` to the parquet file ``path`` atomically and return what was written. ``keep_other``: a column;
    earlier rows in ``path`` whose value there is not among ``df``'s are kept (re-evaluating one method or team
    replaces only its rows)."""
    if keep_other is not None and path.exists():
        earlier = pd.read_parquet(path)
        df = pd.concat([earlier[~earlier[keep_other].isin(df[keep_other].unique())], df], ignore_index=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return df


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
