"""Model families the SFT recipe renders for: vision geometry, token counts and video timestamps.

A family says how many vision tokens an image or a video of a given size costs (before running the
processor, so budgets can be checked first) and how a clip's real timestamps reach the model:
Qwen2.5-VL encodes time in mRoPE through ``second_per_grid_ts`` (one rate per clip, from the mean frame
spacing); Qwen3-VL writes ``<t seconds>`` text before each temporal patch, computed by the processor from
``video_metadata`` (``frames_indices / fps``), so the frames' real timestamps go in at millisecond precision.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QWEN3_TIME_FPS = 1000.0  # frames_indices = round(t * 1000): timestamps exact to the millisecond


class UnknownFamilyError(ValueError):
    """A model whose family has no renderer; the message lists the supported ones."""


@dataclass(frozen=True)
class Family:
    name: str
    patch: int
    merge: int = 2
    temporal: int = 2
    timestamps_in_text: bool = False

    @property
    def factor(self) -> int:
        """Frame sides must be multiples of this (one merged vision token covers factor x factor pixels)."""
        return self.patch * self.merge

    def image_tokens(self, height: int, width: int) -> int:
        return (height // self.factor) * (width // self.factor)

    def video_groups(self, n_frames: int) -> int:
        return math.ceil(n_frames / self.temporal)

    def video_tokens(self, n_frames: int, height: int, width: int) -> int:
        return self.video_groups(n_frames) * self.image_tokens(height, width)

    def video_metadata(self, timestamps: list[float]) -> dict[str, Any]:
        """The ``video_metadata`` entry that makes the processor see these real timestamps."""
        n = len(timestamps)
        if self.timestamps_in_text:
            indices = [round(t * QWEN3_TIME_FPS) for t in timestamps]
            return {"total_num_frames": max(indices) + 1, "fps": QWEN3_TIME_FPS, "frames_indices": indices}
        span = timestamps[-1] - timestamps[0] if n > 1 else 0.0
        fps = (n - 1) / span if span > 0 else 1.0
        return {"total_num_frames": n, "fps": fps, "frames_indices": list(range(n))}

    def timestamp_texts(self, timestamps: list[float]) -> list[str]:
        """The time text the processor inserts per temporal patch (Qwen3-VL), else nothing."""
        if not self.timestamps_in_text:
            return []
        secs = [round(t * QWEN3_TIME_FPS) / QWEN3_TIME_FPS for t in timestamps]
        secs += [secs[-1]] * (-len(secs) % self.temporal)
        groups = [secs[i:i + self.temporal] for i in range(0, len(secs), self.temporal)]
        return [f"<{(g[0] + g[-1]) / 2:.1f} seconds>" for g in groups]

    def video_extra_special_tokens(self, n_frames: int) -> int:
        """Qwen3-VL wraps each temporal patch in its own vision start/end tokens."""
        return 2 * self.video_groups(n_frames) if self.timestamps_in_text else 0


FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("qwen2_vl", patch=14),
    "qwen2_5_vl": Family("qwen2_5_vl", patch=14),
    "qwen3_vl": Family("qwen3_vl", patch=16, timestamps_in_text=True),
}


def family_of(model: str | Path | Any) -> Family:
    """The family of a model folder (its config.json ``model_type``), a config object or a family name."""
    model_type = _model_type(model)
    if model_type not in FAMILIES:
        raise UnknownFamilyError(f"model type {model_type!r} has no SFT renderer yet; supported: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def _model_type(model: str | Path | Any) -> str:
    if hasattr(model, "model_type"):
        return model.model_type
    text = str(model)
    if text in FAMILIES:
        return text
    config = Path(text) / "config.json"
    if config.exists():
        return json.loads(config.read_text()).get("model_type", "")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(text).model_type
