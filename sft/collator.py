"""The SFT data collator: rows (Samples, chats or streamed rows) -> padded batch with labels.

Rows may be ``loaders.sample.Sample`` objects, chats from ``loaders.chat.to_chat``, or the rows the
training dataset streams (``{"key", "json", "frames"}``: plain types that cross ``datasets`` and
dataloader workers). Budgets are applied before the processor (``sft.budget``); a row over budget is
dropped from its batch and counted in ``collator.stats``.
"""

from __future__ import annotations

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


def sample_to_row(sample: Sample) -> dict[str, Any]:
    return {"key": sample.key, "json": sample.record.to_json(), "frames": list(sample.frames),
            "shard": sample.shard}


def as_chat(row: Any) -> dict[str, Any]:
    if isinstance(row, Sample):
        return to_chat(row)
    if isinstance(row, dict) and "messages" in row:
        return row
    if isinstance(row, dict) and "json" in row:
        return to_chat(row_to_sample(row))
    raise TypeError(f"cannot collate a {type(row).__name__}: pass Samples, chats or {{key, json, frames}} rows")


class VideoThinkerCollator:
    """``collator(rows) -> {"input_ids", "attention_mask", "labels", "pixel_values", ...}``."""

    def __init__(self, processor: Any, family: Family, budget: Budget | None = None):
        self.renderer = Renderer(processor, family, budget)

    @property
    def stats(self):
        return self.renderer.stats

    def __call__(self, rows: list[Any]) -> dict[str, Any]:
        return self.renderer([as_chat(r) for r in rows])
