"""The SFT data collator: rows (Samples, chats or streamed rows) -> padded batch with labels.

Rows may be ``loaders.sample.Sample`` objects, chats from ``loaders.chat.to_chat``, or the rows the
training dataset streams (``{"key", "json", "frames", "budget"}``: plain types that cross ``datasets`` and
dataloader workers). Budgets are applied before the processor (``sft.budget``). The training stream has
already dropped over-budget rows (``sft.data``); used on its own, the collator drops them from the batch,
logs them and counts them in ``collator.stats``.

With ``meta=True`` (training) the batch also carries ``sample_keys`` and ``budget`` (what the stream skipped
or reduced before each row): plain lists the training loop pops before the forward pass (``sft.train``).
"""

from __future__ import annotations

import json
from typing import Any

from loaders.chat import to_chat
from loaders.sample import Sample
from sft.budget import Budget
from sft.families import Family
from sft.render import Renderer
from validation.record import TrajectoryRecord


def row_to_sample(row: dict[str, Any]) -> Sample:
    """A streamed row ``{"key", "json", "frames"}`` back to a Sample."""
    return Sample(key=row["key"], record=TrajectoryRecord.from_json(row["json"]), frames=list(row["frames"]),
                  shard=row.get("shard", ""))


def sample_to_row(sample: Sample, budget: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"key": sample.key, "json": sample.record.to_json(), "frames": list(sample.frames),
            "shard": sample.shard, "budget": json.dumps(budget or {})}


def as_chat(row: Any) -> dict[str, Any]:
    """A chat (``to_chat``) plus ``video_duration``, which SmolVLM's clip text states."""
    if isinstance(row, dict) and "messages" in row:
        return row
    if isinstance(row, dict) and "json" in row:
        row = row_to_sample(row)
    if isinstance(row, Sample):
        return {**to_chat(row), "video_duration": row.record.video.duration_s}
    raise TypeError(f"cannot collate a {type(row).__name__}: pass Samples, chats or {{key, json, frames}} rows")


class VideoThinkerCollator:
    """``collator(rows) -> {"input_ids", "attention_mask", "labels", "pixel_values", ...}``."""

    def __init__(self, processor: Any, family: Family, budget: Budget | None = None, meta: bool = False):
        self.renderer = Renderer(processor, family, budget)
        self.meta = meta

    @property
    def stats(self):
        return self.renderer.stats

    def __call__(self, rows: list[Any]) -> dict[str, Any]:
        if not self.meta:
            return self.renderer([as_chat(r) for r in rows])
        # training rows were budget-checked by the stream: one over budget here is an error, never a silent drop
        batch = self.renderer.encode([self.renderer.prepare(as_chat(r)) for r in rows])
        batch["sample_keys"] = [r["key"] for r in rows]
        batch["budget"] = [r.get("budget") or "{}" for r in rows]
        return batch
