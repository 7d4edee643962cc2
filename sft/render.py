"""Render chats to model inputs for a family: template text with tools, budgets, processor call, labels.

``Renderer(processor, family)`` takes chats from ``loaders.chat.to_chat`` (messages with image/video
parts, ``reasoning_content``, ``tool_calls``, tool turns) and returns the processor's padded batch plus
``labels``. The initial frames and FrameZoom frames go in as video with their real timestamps (how, per
family: ``sft.families``); SpatialZoom crops go in as images. Frames are resized here, to sizes the
processor keeps as they are, so the vision-token count is known before the processor runs.

The budget decision has ONE definition, ``Renderer.plan`` (template text -> ``BudgetPlanner``): the training
data stream calls it to drop over-budget samples before batching, the collator calls it again (same
inputs, same plan) to fit what it encodes.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sft.budget import Budget, BudgetPlanner, OverBudget, Plan
from sft.families import Family
from sft.labels import assistant_labels

log = logging.getLogger(__name__)
TEMPLATE_DIR = Path(__file__).parent / "templates"


@functools.cache
def chat_template(name: str) -> str:
    """A template of ``sft/templates`` by file name (or by family name, for the Qwen families)."""
    from sft.families import FAMILIES

    if name in FAMILIES:
        name = FAMILIES[name].template
    return (TEMPLATE_DIR / name).read_text()


@dataclass
class Prepared:
    """One chat after budgets: its text and the visual inputs in the family's processor layout."""

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
        self.family = family.configure(processor)
        self.template = chat_template(self.family.template)
        self.planner = BudgetPlanner(self.family, budget or Budget(), count_text=self._count_text)
        self.tokens = self.family.turn_tokens(self.tokenizer)
        self._placeholder_ids = {self.tokenizer.convert_tokens_to_ids(t) for t in self.family.placeholders}

    @property
    def stats(self):
        return self.planner.stats

    def text(self, chat: dict[str, Any]) -> str:
        """The chat rendered by the family template with the record's tools (placeholders unexpanded)."""
        return self.processor.apply_chat_template(chat["messages"], tools=chat.get("tools") or None,
                                                  chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=False)

    def plan(self, chat: dict[str, Any], text: str | None = None) -> Plan:
        """The budget decision for a chat: the plan, or ``OverBudget`` for a sample to skip."""
        text = self.text(chat) if text is None else text
        if not self.family.expands_clips:
            return self.planner.plan(chat, self._text_tokens(text))

        @functools.cache
        def text_tokens(keep: tuple[tuple[int, ...], ...]) -> int:
            return self._text_tokens(self.expand(text, chat, keep))

        return self.planner.plan(chat, text_tokens)

    def prepare(self, chat: dict[str, Any]) -> Prepared:
        """Render and apply the budget; raises ``OverBudget`` for a sample to skip."""
        text = self.text(chat)
        plan = self.plan(chat, text)
        fitted = self.planner.apply(chat, plan)
        if self.family.expands_clips:
            text = self.expand(text, chat, plan.keep)
        images, videos, metadata = self.family.visuals(fitted)
        return Prepared(text=text, images=images, videos=videos, metadata=metadata, plan=plan)

    def expand(self, text: str, chat: dict[str, Any], keep: tuple[tuple[int, ...], ...]) -> str:
        """The text with each clip placeholder replaced by the family's clip text for the frames kept."""
        pieces = text.split(self.family.video_placeholder)
        if len(pieces) != len(chat["videos"]) + 1:
            raise ValueError(f"{chat.get('id', 'chat')}: {len(pieces) - 1} {self.family.video_placeholder} in the "
                             f"text for {len(chat['videos'])} clips (a message text contains the placeholder?)")
        duration = chat.get("video_duration")
        out = [pieces[0]]
        for video, kept, rest in zip(chat["videos"], keep, pieces[1:]):
            out.append(self.family.clip_text([video.timestamps[i] for i in kept], duration))
            out.append(rest)
        return "".join(out)

    def encode(self, prepared: list[Prepared]) -> dict[str, Any]:
        """One processor call for the batch (right padding), then labels."""
        self.tokenizer.padding_side = "right"
        batch = self.processor(text=[p.text for p in prepared], padding=True, return_tensors="pt",
                               **self.family.processor_inputs(prepared))
        batch.pop("video_metadata", None)
        batch["labels"] = assistant_labels(batch["input_ids"], batch.get("attention_mask"), self.tokens)
        return dict(batch)

    def __call__(self, chats: list[dict[str, Any]]) -> dict[str, Any]:
        prepared = []
        for chat in chats:
            try:
                prepared.append(self.prepare(chat))
            except OverBudget as exc:
                log.warning("budget: dropped %s from its batch (%s)", chat.get("id", "?"), exc)
        if not prepared:
            raise OverBudget("empty_batch", "every sample of the batch was over budget")
        return self.encode(prepared)

    def _count_text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _text_tokens(self, text: str) -> int:
        """Tokens of the rendered text, not counting the placeholder tokens the processor expands."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return sum(1 for i in ids if i not in self._placeholder_ids)

