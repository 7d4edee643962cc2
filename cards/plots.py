"""PNG plots of a dataset's statistics, for the card (``assets/*.png``).

Drawn with matplotlib's object API on the Agg canvas (no pyplot global state, no display needed).
PNGs carry no software/date metadata, so the same data gives the same bytes on every run.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cards.stats import DatasetStats

ASSETS_DIR = "assets"
PLOT_FILES = {
    "tool_calls": "tool_calls.png",
    "video_length": "video_length.png",
    "frames_per_sample": "frames_per_sample.png",
}
_COLOR = "#3b6ea8"


def _figure(ncols: int = 1, width: float = 6.4):
    fig = Figure(figsize=(width, 3.4), dpi=100, layout="constrained")
    return fig, fig.subplots(1, ncols)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _counts_axis(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _int_bars(ax, counts: dict[int, int], xlabel: str, ylabel: str) -> None:
    xs = sorted(counts)
    ax.bar(xs, [counts[x] for x in xs], color=_COLOR, width=0.8)
    _counts_axis(ax, xlabel, ylabel)
    if xs and xs[-1] - xs[0] <= 20:
        ax.set_xticks(range(xs[0], xs[-1] + 1))


def _hist(ax, values: Iterable[float], xlabel: str, ylabel: str, bins: int = 30) -> None:
    data = list(values)
    if data:
        ax.hist(data, bins=min(bins, max(1, len(set(data)))), color=_COLOR, edgecolor="white")
    _counts_axis(ax, xlabel, ylabel)


def tool_calls_png(stats: DatasetStats) -> bytes:
    """Left: tool calls per trajectory (Answer not counted). Right: calls per tool."""
    fig, (left, right) = _figure(2, width=9.6)
    _int_bars(left, dict(stats.tool_calls_per_trajectory), "tool calls per trajectory (Answer excluded)",
              "trajectories")
    left.set_title("Tool calls per trajectory")
    tools = stats.tool_calls_by_tool.most_common()[::-1]
    right.barh([t for t, _ in tools], [c for _, c in tools], color=_COLOR)
    right.set_xlabel("calls")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title("Calls per tool")
    return _png(fig)


def video_length_png(stats: DatasetStats) -> bytes:
    fig, ax = _figure()
    _hist(ax, [d / 60 for d in stats.video_durations.values()], "video length (minutes)", "videos")
    ax.set_title(f"Video length ({stats.total.videos} unique videos)")
    return _png(fig)


def frames_per_sample_png(stats: DatasetStats) -> bytes:
    fig, ax = _figure()
    _hist(ax, stats.frames_per_sample, "frames per sample", "samples")
    ax.set_title(f"Frames per sample ({stats.total.trajectories} samples)")
    return _png(fig)


def write_plots(folder: Path | str, stats: DatasetStats) -> dict[str, str]:
    """Write the PNGs under ``folder/assets``; returns {plot name: path relative to the folder}."""
    out = Path(folder) / ASSETS_DIR
    out.mkdir(parents=True, exist_ok=True)
    makers = {"tool_calls": tool_calls_png, "video_length": video_length_png,
              "frames_per_sample": frames_per_sample_png}
    written = {}
    for name, make in makers.items():
        path = out / PLOT_FILES[name]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(make(stats))
        tmp.replace(path)
        written[name] = f"{ASSETS_DIR}/{PLOT_FILES[name]}"
    return written
