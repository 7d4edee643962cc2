"""Render chats to model inputs for a family: template text with tools, budgets, processor call, labels.

``Renderer(processor, family)`` takes chats from ``loaders.chat.to_chat`` (messages with image/video
parts, ``reasoning_content``, ``tool_calls``, tool turns) and returns the processor's padded batch plus
``labels``. The initial frames and FrameZoom frames go in as VIDEO with their real timestamps (see
``sft.families``); SpatialZoom crops go in as images. Frames are resized here, to sizes the processor
keeps as they are, so the vision-token count is known before the processor runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sft.budget import Budget, BudgetPlanner, OverBudget, Plan
from sft.families import Family
from sft.labels import TurnTokens, assistant_labels

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES = {"qwen2_vl": "qwen_vl_tools.jinja", "qwen2_5_vl": "qwen_vl_tools.jinja", "qwen3_vl": "qwen_vl_tools.jinja"}
# Passed at call time so the processor keeps our sizes (we resized already) and our frames (no sampling).
_KEEP_SIZE = {"shortest_edge": 1, "longest_edge": 1 << 40}


@functools.cache
def chat_template(family: str) -> str:
    return (TEMPLATE_DIR / TEMPLATES[family]).read_text()


@dataclass
class Prepared:
    """One chat after budgets: its text and the visual inputs in template order."""

    text: str
    images: list[Any]
    videos: list[list[Any]]
    metadata: list[dict[str, Any]]
    plan: Plan


class Renderer:
    """Chats -> padded processor batch with assistant-only labels, for one model family."""

    def __init__(self, processor: Any, family: Family, budget: Budget | None = None):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.family = family
        self.template = chat_template(family.name)
        self.planner = BudgetPlanner(family, budget or Budget(), count_text=self._count_text)
        self.tokens = TurnTokens.from_tokenizer(self.tokenizer)
        self._vision_ids = [self.tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")]

    @property
    def stats(self):
        return self.planner.stats

    def text(self, chat: dict[str, Any]) -> str:
        """The chat rendered by the family template with the record's tools (placeholders unexpanded)."""
        return self.processor.apply_chat_template(chat["messages"], tools=chat.get("tools") or None,
                                                  chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=False)

    def prepare(self, chat: dict[str, Any]) -> Prepared:
        """Render and apply the budget; raises ``OverBudget`` for a sample to skip."""
        text = self.text(chat)
        plan = self.planner.plan(chat, self._text_tokens(text))
        fitted = self.planner.apply(chat, plan)
        videos = [self._pad_clip(v.frames, v.timestamps) for v in fitted["videos"]]
        return Prepared(text=text, images=fitted["images"], videos=[f for f, _ in videos],
                        metadata=[self.family.video_metadata(t) for _, t in videos], plan=plan)

    def _pad_clip(self, frames: list[Any], timestamps: list[float]) -> tuple[list[Any], list[float]]:
        """Qwen3-VL rejects clips shorter than one temporal patch: repeat the last frame (same tokens)."""
        short = self.family.temporal - len(frames) if self.family.timestamps_in_text else 0
        if short <= 0:
            return frames, timestamps
        return frames + [frames[-1]] * short, timestamps + [timestamps[-1]] * short

    def encode(self, prepared: list[Prepared]) -> dict[str, Any]:
        """One processor call for the batch (right padding), then labels."""
        images = [im for p in prepared for im in p.images]
        videos = [v for p in prepared for v in p.videos]
        metadata = [m for p in prepared for m in p.metadata]
        kwargs: dict[str, Any] = {"images_kwargs": {"size": _KEEP_SIZE}}
        if videos:
            kwargs["videos"] = videos
            kwargs["video_metadata"] = metadata
            kwargs["videos_kwargs"] = {"size": _KEEP_SIZE, "do_sample_frames": False}
        self.tokenizer.padding_side = "right"
        batch = self.processor(text=[p.text for p in prepared], images=images or None, padding=True,
                               return_tensors="pt", **kwargs)
        batch.pop("video_metadata", None)
        batch["labels"] = assistant_labels(batch["input_ids"], batch.get("attention_mask"), self.tokens)
        return dict(batch)

    def __call__(self, chats: list[dict[str, Any]]) -> dict[str, Any]:
        prepared = []
        for chat in chats:
            try:
                prepared.append(self.prepare(chat))
            except OverBudget:
                continue
        if not prepared:
            raise OverBudget("empty_batch", "every sample of the batch was over budget")
        return self.encode(prepared)

    def _count_text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _text_tokens(self, text: str) -> int:
        """Tokens of the rendered text, not counting the image/video placeholder tokens themselves."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return sum(1 for i in ids if i not in self._vision_ids)
