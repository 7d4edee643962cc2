"""The dataset card (README.md) and the model card, rendered from jinja2 templates.

``write_card(folder)`` recounts the statistics from the shards, draws the plots into ``assets/``, picks
one real record as the example, renders ``templates/dataset_card.md`` and checks the result with
``huggingface_hub``'s card classes: the YAML must parse, and its ``configs`` and ``dataset_info`` must be
exactly ``validation.shards.hub_yaml(splits)`` (what makes ``load_dataset(folder)`` lossless).
``write_model_card(...)`` does the same for a model trained with the recipe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

from cards.stats import DatasetStats, collect_stats, describe, iter_split_samples, n_tool_calls
from validation.record import FRAME_TOOLS, TrajectoryRecord
from validation.shards import DatasetIndex, atomic_write_text, hub_yaml
from validation.version import package_version

TEMPLATES = Path(__file__).parent / "templates"
CARD_MARKER = "Written by `videothinker card`"
TAGS = ["video", "long-video", "video-question-answering", "tool-use", "agent", "reasoning",
        "multiple-choice", "webdataset", "videothinker"]
KNOWN_LICENSES = {"apache-2.0", "mit", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0",
                  "cc-by-nc-sa-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-4.0", "cc-by-3.0", "cc-by-sa-3.0",
                  "odc-by", "pddl", "openrail"}
SIZE_BOUNDS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
               (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
EXAMPLE_SCAN = 64  # samples looked at to pick a representative example


class CardError(ValueError):
    """The card could not be written or does not check; the message says why."""


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)
    env.filters.update(md=md, num=lambda n: f"{n:,}", num0=lambda x: f"{round(x):,}",
                       dec=lambda x: f"{x:.2f}", hours=lambda h: f"{h:,.2f}",
                       minutes=lambda s: f"{s / 60:.1f}")
    return env


def md(value: Any) -> str:
    """Text safe inside a markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def size_category(n: int) -> str:
    return next((label for bound, label in SIZE_BOUNDS if n < bound), "n>1B")


def card_license(stats: DatasetStats) -> str:
    """The sources' license when they all share one known license id, else ``other``."""
    names = {str(n).strip().lower() for n in stats.video_licenses}
    return names.pop() if len(names) == 1 and names <= KNOWN_LICENSES else "other"


def card_metadata(stats: DatasetStats, splits: list[str], *, license: str, language: Sequence[str],
                  pretty_name: str) -> DatasetCardData:
    """The YAML header: Hub metadata plus the exact loading YAML of ``validation.shards.hub_yaml``."""
    loading = hub_yaml(splits)
    return DatasetCardData(license=license, language=list(language), task_categories=["video-text-to-text"],
                           size_categories=[size_category(stats.total.trajectories)], tags=TAGS,
                           pretty_name=pretty_name, configs=loading["configs"],
                           dataset_info=loading["dataset_info"])


def _trim(value: Any, max_str: int = 160, max_list: int = 6) -> Any:
    if isinstance(value, str) and len(value) > max_str:
        return value[:max_str] + f"... [+{len(value) - max_str} chars]"
    if isinstance(value, list):
        items = [_trim(v, max_str, max_list) for v in value[:max_list]]
        return items + ([f"... {len(value) - max_list} more"] if len(value) > max_list else [])
    if isinstance(value, dict):
        return {k: _trim(v, max_str, max_list) for k, v in value.items() if v is not None}
    return value


def example_json(record: TrajectoryRecord) -> str:
    """The stored record, readable: long strings/lists cut, nulls dropped, tool specs as names."""
    data = json.loads(record.to_json())
    messages = [_trim(m) for m in data.pop("messages")]
    tools = [t["function"]["name"] for t in data.pop("tools")]
    trimmed = _trim(data)
    trimmed["messages"] = messages
    trimmed["tools"] = f"<{len(tools)} tool specs: {', '.join(tools)}>"
    order = list(json.loads(record.to_json()))
    return compact_json({k: trimmed[k] for k in order if k in trimmed})


def compact_json(value: Any, indent: int = 0, width: int = 100) -> str:
    """Indented JSON that keeps any container fitting in ``width`` columns on one line."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or indent + len(flat) <= width:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {compact_json(v, indent + 2, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{compact_json(v, indent + 2, width)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _example_score(record: TrajectoryRecord) -> tuple[int, int]:
    """Prefer a trajectory that calls a frame tool and stays short: it shows the format best."""
    names = {c.function.name for c in record.tool_calls()}
    return (0 if names & FRAME_TOOLS else 1, abs(n_tool_calls(record) - 2) + len(record.messages) // 8)


def pick_example(folder: Path, split: str) -> tuple[TrajectoryRecord, int]:
    """One real record of ``split`` (and its frame count), chosen among the first samples."""
    best = None
    for i, sample in enumerate(iter_split_samples(folder, split)):
        if best is None or _example_score(sample.record) < _example_score(best[0]):
            best = (sample.record, len(sample.frames))
        if i + 1 >= EXAMPLE_SCAN:
            break
    if best is None:
        raise CardError(f"{folder}: split {split!r} holds no samples; nothing to describe")
    return best


def _joined(values: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    return [(k, ", ".join(sorted(v))) for k, v in sorted(values.items())]


def _build_context(stats: DatasetStats, index: DatasetIndex) -> dict[str, Any]:
    dates = sorted(d[:10] for d in stats.created_at)
    versions = sorted(stats.package_versions) or [index.package_version or "unknown"]
    return {
        "presets": ", ".join(f"{p} ({n:,})" for p, n in stats.presets.most_common()) or "unknown",
        "models": _joined(stats.models),
        "prompt_hashes": _joined(stats.prompt_hashes),
        "package_versions": ", ".join(versions),
        "created": _date_range(dates),
        "kept_because": stats.kept_because.most_common(),
        "fallback": stats.kept_because.get("all_wrong_fallback", 0),
        "dropped": None if stats.dropped is None else sorted(stats.dropped.items(), key=lambda kv: -kv[1]),
    }


def _date_range(dates: list[str]) -> str:
    if not dates:
        return "unknown"
    return dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"


def _stats_context(stats: DatasetStats) -> dict[str, Any]:
    calls = [n for n, c in stats.tool_calls_per_trajectory.items() for _ in range(c)]
    return {
        "splits": [(name, s.as_dict()) for name, s in stats.splits.items()],
        "total": stats.total.as_dict(),
        "calls": describe(calls),
        "calls_hist": sorted(stats.tool_calls_per_trajectory.items()),
        "by_tool": stats.tool_calls_by_tool.most_common(),
        "durations": describe(stats.video_durations.values()),
        "frames": describe(stats.frames_per_sample),
        "tokens": describe(stats.tokens_per_sample),
        "video_licenses": stats.video_licenses.most_common(),
        "question_sources": stats.question_sources.most_common(),
    }


def render_card(folder: Path | str, stats: DatasetStats, plots: Mapping[str, str], *, repo: str | None = None,
                license: str | None = None, language: Sequence[str] = ("en",),
                pretty_name: str = "VideoThinker trajectories") -> str:
    """The full README.md text for ``folder`` (nothing is written)."""
    folder = Path(folder)
    index = DatasetIndex.load(folder)
    splits = list(index.splits)
    if not splits or not stats.total.trajectories:
        raise CardError(f"{folder}: index.json lists no samples; build the dataset first")
    first = next(s for s in splits if index.samples(s))
    record, n_frames = pick_example(folder, first)
    license = license or card_license(stats)
    meta = card_metadata(stats, splits, license=license, language=language, pretty_name=pretty_name)
    context = {
        "yaml": meta.to_yaml() + "\n", "pretty_name": pretty_name, "generator_version": package_version(),
        "schema_version": index.schema_version, "n_shards": sum(len(v) for v in index.splits.values()),
        "repo": repo or "ORG/NAME", "first_split": first, "license": license, "plots": dict(plots),
        "example": {"key": record.id, "n_frames": n_frames, "json": example_json(record)},
        **_build_context(stats, index), **_stats_context(stats),
    }
    return _env().get_template("dataset_card.md").render(**context)


def check_card(text: str, splits: list[str]) -> DatasetCard:
    """Parse with ``huggingface_hub`` and require the loading YAML to be exactly ``hub_yaml(splits)``."""
    try:
        card = DatasetCard(text)
    except Exception as exc:  # huggingface_hub raises ValueError or yaml errors
        raise CardError(f"the card does not parse: {exc}") from exc
    data = card.data.to_dict()
    expected = hub_yaml(splits)
    for key in ("configs", "dataset_info"):
        if data.get(key) != expected[key]:
            raise CardError(f"the card's `{key}` differs from validation.shards.hub_yaml: {data.get(key)!r}")
    if "video-text-to-text" not in (data.get("task_categories") or []):
        raise CardError("the card's task_categories lack video-text-to-text")
    return card


def write_card(folder: Path | str, *, repo: str | None = None, license: str | None = None,
               language: Sequence[str] = ("en",), pretty_name: str = "VideoThinker trajectories",
               stats: DatasetStats | None = None) -> Path:
    """Recount, plot, render, check and write ``folder/README.md``; returns its path."""
    from cards.plots import write_plots

    folder = Path(folder)
    stats = stats or collect_stats(folder)
    plots = write_plots(folder, stats)
    text = render_card(folder, stats, plots, repo=repo, license=license, language=language,
                       pretty_name=pretty_name)
    check_card(text, list(DatasetIndex.load(folder).splits))
    atomic_write_text(folder / "README.md", text)
    return folder / "README.md"


def is_generated_card(folder: Path | str) -> bool:
    """Whether ``folder/README.md`` is a full card from ``write_card`` (not the writer's minimal one)."""
    path = Path(folder) / "README.md"
    return path.is_file() and CARD_MARKER in path.read_text(errors="replace")


def _eval_columns(evaluation: Mapping[str, Mapping[str, float]]) -> list[str]:
    return list(dict.fromkeys(setting for row in evaluation.values() for setting in row))


def render_model_card(*, model_name: str, base_model: str, dataset_repo: str, data_revision: str, preset: str,
                      evaluation: Mapping[str, Mapping[str, float]], license: str = "apache-2.0",
                      lora: bool = True, training: Mapping[str, Any] | None = None) -> str:
    """The model README. ``evaluation``: benchmark -> {setting ('uniform frames', 'agent'): accuracy %}."""
    columns = _eval_columns(evaluation)
    rows = [(bench, [_fmt_acc(scores.get(c)) for c in columns]) for bench, scores in evaluation.items()]
    meta = ModelCardData(license=license, base_model=base_model, datasets=[dataset_repo],
                         pipeline_tag="video-text-to-text", library_name="peft" if lora else "transformers",
                         tags=["videothinker", "video", "long-video", "tool-use", "agent", "trl", "sft"])
    context = {"yaml": meta.to_yaml() + "\n", "model_name": model_name, "base_model": base_model,
               "dataset_repo": dataset_repo, "data_revision": data_revision, "preset": preset, "lora": lora,
               "training": list((training or {}).items()), "columns": columns, "rows": rows,
               "generator_version": package_version()}
    return _env().get_template("model_card.md").render(**context)


def _fmt_acc(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def write_model_card(out_dir: Path | str, **kwargs: Any) -> Path:
    """Render, parse with ``ModelCard`` and write ``out_dir/README.md`` (arguments: ``render_model_card``)."""
    text = render_model_card(**kwargs)
    card = ModelCard(text)
    if card.data.to_dict().get("base_model") != kwargs["base_model"]:
        raise CardError("the model card's base_model did not survive parsing")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "README.md", text)
    return out / "README.md"
