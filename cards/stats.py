"""Dataset statistics, recounted from the shards themselves (never from what a build claims).

``collect_stats(folder)`` reads every sample of every split listed in ``index.json`` and counts:
videos, hours (the sum of the durations of the unique videos), questions, trajectories per split, why
each trajectory was kept, tool calls per trajectory and per tool, frames per sample, and an estimate of
Qwen2.5-VL tokens per sample. Drops by reason come from the build's ``build_report.json`` when the folder
holds one (``{"dropped": {reason: count}, ...}``); the shards cannot know what was dropped.

Token estimate (an ESTIMATE, not a tokenizer count), per sample::

    tokens ~= sum over frames of vision_tokens(width, height) + ceil(text_chars / 4)
    vision_tokens(w, h) = h' * w' / (28 * 28), with (h', w') = Qwen2.5-VL's smart_resize(h, w):
        both sides rounded to multiples of 28, then scaled (keeping the aspect ratio) into
        [min_pixels, max_pixels] = [4 * 28 * 28, 16384 * 28 * 28] (the processor's defaults)

Frame sizes are the record's ``frames[i].width/height``. Each frame is counted as one image; fed as
Qwen2.5-VL *video* input, two consecutive frames share one temporal patch, which roughly halves the
vision part. ``text_chars`` counts the question, the options, every text part, reasoning, tool-call
names and JSON arguments, and the JSON of the tool specs; special tokens and the chat template are not
counted.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sft.budget import fit_size  # Qwen's smart_resize: one definition, shared with the collator
from validation.record import ANSWER_TOOL, TrajectoryRecord
from validation.shards import DatasetIndex

BUILD_REPORT = "build_report.json"

QWEN_PATCH = 28  # 14 px ViT patches merged 2x2: one LLM token per 28x28 pixels
QWEN_MIN_PIXELS = 4 * QWEN_PATCH * QWEN_PATCH
QWEN_MAX_PIXELS = 16384 * QWEN_PATCH * QWEN_PATCH
CHARS_PER_TOKEN = 4


def vision_tokens(width: int, height: int) -> int:
    """Qwen2.5-VL LLM tokens for one frame shown as an image."""
    h, w = fit_size(height, width, QWEN_PATCH, QWEN_MIN_PIXELS, QWEN_MAX_PIXELS)
    return h * w // (QWEN_PATCH * QWEN_PATCH)


def text_chars(record: TrajectoryRecord) -> int:
    """Characters of text a chat template would render for this record (approximate)."""
    n = len(record.question) + sum(len(o) for o in record.options)
    for m in record.messages:
        n += len(m.text()) + len(m.reasoning or "")
        for call in m.tool_calls or []:
            n += len(call.function.name) + len(json.dumps(call.function.arguments, ensure_ascii=False))
    return n + len(json.dumps([t.model_dump(mode="json") for t in record.tools], ensure_ascii=False))


def estimate_tokens(record: TrajectoryRecord) -> int:
    """Estimated Qwen2.5-VL tokens of one sample (see the module docstring for the formula)."""
    vision = sum(vision_tokens(f.width, f.height) for f in record.frames)
    return vision + math.ceil(text_chars(record) / CHARS_PER_TOKEN)


def n_tool_calls(record: TrajectoryRecord) -> int:
    """Tool calls of a trajectory, not counting the terminal ``Answer``."""
    return sum(1 for c in record.tool_calls() if c.function.name != ANSWER_TOOL)


def describe(values: Iterable[float]) -> dict[str, float]:
    """min / mean / median / max (zeros for no values)."""
    data = list(values)
    if not data:
        return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {"min": min(data), "mean": statistics.fmean(data), "median": statistics.median(data),
            "max": max(data)}


@dataclass
class SplitStats:
    """Counts of one split (or of the whole dataset: videos and questions are unique across splits)."""

    trajectories: int = 0
    frames: int = 0
    video_durations: dict[str, float] = field(default_factory=dict)
    question_keys: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)

    def add(self, record: TrajectoryRecord, n_frames: int) -> None:
        self.trajectories += 1
        self.frames += n_frames
        self.video_durations[record.video.id] = record.video.duration_s
        self.question_keys.add(question_key(record))

    @property
    def questions(self) -> int:
        return len(self.question_keys)

    @property
    def videos(self) -> int:
        return len(self.video_durations)

    @property
    def hours(self) -> float:
        return sum(self.video_durations.values()) / 3600

    def as_dict(self) -> dict[str, Any]:
        return {"trajectories": self.trajectories, "questions": self.questions, "videos": self.videos,
                "hours": self.hours, "frames": self.frames}


def question_key(record: TrajectoryRecord) -> tuple[str, str, tuple[str, ...]]:
    """A question is its video, its text and its options."""
    return record.video.id, record.question, tuple(record.options)


@dataclass
class DatasetStats:
    """Everything the card reports, recounted from the shards."""

    splits: dict[str, SplitStats] = field(default_factory=dict)
    total: SplitStats = field(default_factory=SplitStats)
    kept_because: Counter = field(default_factory=Counter)
    tool_calls_per_trajectory: Counter = field(default_factory=Counter)
    tool_calls_by_tool: Counter = field(default_factory=Counter)
    frames_per_sample: list[int] = field(default_factory=list)
    tokens_per_sample: list[int] = field(default_factory=list)
    video_licenses: Counter = field(default_factory=Counter)
    question_sources: Counter = field(default_factory=Counter)
    presets: Counter = field(default_factory=Counter)
    models: dict[str, set[str]] = field(default_factory=dict)
    prompt_hashes: dict[str, set[str]] = field(default_factory=dict)
    package_versions: set[str] = field(default_factory=set)
    created_at: list[str] = field(default_factory=list)
    build_report: dict[str, Any] | None = None

    @property
    def dropped(self) -> dict[str, int] | None:
        if self.build_report is None:
            return None
        return {str(k): int(v) for k, v in (self.build_report.get("dropped") or {}).items()}

    @property
    def video_durations(self) -> dict[str, float]:
        return self.total.video_durations

    def add(self, split: str, record: TrajectoryRecord, n_frames: int) -> None:
        new_video = record.video.id not in self.total.video_durations
        new_question = question_key(record) not in self.total.question_keys
        self.splits.setdefault(split, SplitStats()).add(record, n_frames)
        self.total.add(record, n_frames)
        self._add_sample(record, n_frames)
        self._add_provenance(record)
        if new_video:
            self.video_licenses[record.video.license] += 1
        if new_question:
            self.question_sources[record.provenance.question_source or "unknown"] += 1

    def _add_sample(self, record: TrajectoryRecord, n_frames: int) -> None:
        self.kept_because[record.provenance.kept_because] += 1
        self.tool_calls_per_trajectory[n_tool_calls(record)] += 1
        self.tool_calls_by_tool.update(c.function.name for c in record.tool_calls())
        self.frames_per_sample.append(n_frames)
        self.tokens_per_sample.append(estimate_tokens(record))

    def _add_provenance(self, record: TrajectoryRecord) -> None:
        p = record.provenance
        self.presets[p.preset or "unknown"] += 1
        for role, name in p.models.items():
            self.models.setdefault(role, set()).add(name)
        for name, digest in p.prompt_hashes.items():
            self.prompt_hashes.setdefault(name, set()).add(digest)
        if p.package_version:
            self.package_versions.add(p.package_version)
        if p.created_at:
            self.created_at.append(p.created_at)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary (histogram keys become strings in JSON)."""
        return {
            "splits": {s: st.as_dict() for s, st in self.splits.items()},
            "total": self.total.as_dict(),
            "kept_because": dict(self.kept_because),
            "dropped": self.dropped,
            "tool_calls_per_trajectory": dict(sorted(self.tool_calls_per_trajectory.items())),
            "tool_calls_per_trajectory_summary": describe(self._calls_list()),
            "tool_calls_by_tool": dict(self.tool_calls_by_tool.most_common()),
            "frames_per_sample": describe(self.frames_per_sample),
            "tokens_per_sample_estimate": describe(self.tokens_per_sample),
            "video_licenses": dict(self.video_licenses.most_common()),
            "question_sources": dict(self.question_sources.most_common()),
        }

    def _calls_list(self) -> list[int]:
        return [n for n, c in self.tool_calls_per_trajectory.items() for _ in range(c)]


def read_build_report(folder: Path) -> dict[str, Any] | None:
    """The build's report if the folder holds one; a malformed one is an error naming the file."""
    path = Path(folder) / BUILD_REPORT
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("dropped", {}), dict):
        raise ValueError(f"{path}: expected an object with 'dropped': {{reason: count}}")
    return report


def iter_split_samples(folder: Path, split: str) -> Iterable:
    """Every sample of a split in index order, in this process (no rank/worker partitioning)."""
    from loaders.wds import Partition, samples

    return samples(Path(folder), split, shuffle=0, partition=Partition())


def collect_stats(folder: Path | str) -> DatasetStats:
    """Read every sample of every split and count."""
    folder = Path(folder)
    index = DatasetIndex.load(folder)
    stats = DatasetStats(build_report=read_build_report(folder))
    for split in index.splits:
        stats.splits.setdefault(split, SplitStats())
        for sample in iter_split_samples(folder, split):
            stats.add(split, sample.record, len(sample.frames))
    return stats
