"""Per-sample budgets, applied BEFORE the processor: frames, pixels per frame, tokens.

A sample over budget is either skipped (policy ``skip``) or reduced deterministically (policy
``reduce``): first fewer frames of the initial video (uniform subsampling, down to
``min_initial_frames``), then smaller frames (the per-frame pixel cap shrinks by 0.7 per step down to
``min_pixels``). Frames that answer a tool call are never dropped (that would need dropping the call's
turns too), and nothing is ever truncated, so no cut can fall inside a vision span. What still does not
fit is skipped. Every decision is counted in ``BudgetStats``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from PIL import Image

from sft.families import Family, fit_size

__all__ = ["Budget", "BudgetPlanner", "BudgetStats", "OverBudget", "Plan", "fit_size", "uniform_indices"]
# Tokens of a chat's text outside vision spans: a number, or a function of the frames kept per clip (for
# families whose clip text, written by the renderer, depends on which frames are kept).
TextTokens = int | Callable[[tuple[tuple[int, ...], ...]], int]

PIXEL_SHRINK = 0.7
FRAME_SHRINK = 0.75


@dataclass(frozen=True)
class Budget:
    max_frames: int = 64
    max_pixels: int = 256 * 28 * 28  # per frame
    min_pixels: int | None = None  # per frame; default the family's (4 vision tokens' worth on Qwen)
    max_tokens: int = 16384
    min_initial_frames: int = 4
    policy: Literal["reduce", "skip"] = "reduce"


class OverBudget(ValueError):
    """A sample that cannot be brought under budget; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class BudgetStats:
    seen: int = 0
    unchanged: int = 0
    reduced: int = 0
    skipped: Counter = field(default_factory=Counter)
    frames_dropped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "unchanged": self.unchanged, "reduced": self.reduced,
                "skipped": dict(self.skipped), "frames_dropped": self.frames_dropped}


@dataclass(frozen=True)
class Plan:
    """What the processor will get: frames kept per video, the per-frame pixel cap, the token count."""

    keep: tuple[tuple[int, ...], ...]  # per video, indices of the frames kept
    max_pixels: int
    tokens: int
    frames: int
    reduced: bool


def uniform_indices(n: int, k: int) -> tuple[int, ...]:
    """``k`` of ``n`` indices spread evenly, first and last included (deterministic)."""
    if k >= n:
        return tuple(range(n))
    if k == 1:
        return (n // 2,)
    return tuple(round(i * (n - 1) / (k - 1)) for i in range(k))


def initial_videos(chat: dict[str, Any]) -> list[bool]:
    """Per video of the chat: True when it is in a user turn (the initial frames), False in a tool turn."""
    out = []
    for message in chat["messages"]:
        for part in message["content"] if isinstance(message["content"], list) else []:
            if part.get("type") == "video":
                out.append(message["role"] == "user")
    return out


class BudgetPlanner:
    """Plans (and applies) one family's budget to chats from ``loaders.chat.to_chat``."""

    def __init__(self, family: Family, budget: Budget, count_text: Callable[[str], int] = len):
        self.family = family
        self.count_text = count_text
        self.budget = budget
        self.min_pixels = budget.min_pixels or family.min_pixels
        self.stats = BudgetStats()

    def plan(self, chat: dict[str, Any], text_tokens: TextTokens) -> Plan:
        """The plan for this chat (``text_tokens``: tokens outside vision spans); raises OverBudget."""
        self.stats.seen += 1
        try:
            plan = self._plan(chat, text_tokens)
        except OverBudget as exc:
            self.stats.skipped[exc.reason] += 1
            raise
        self.stats.reduced += plan.reduced
        self.stats.unchanged += not plan.reduced
        self.stats.frames_dropped += _n_frames(chat) - plan.frames
        return plan

    def _plan(self, chat: dict[str, Any], text_tokens: TextTokens) -> Plan:
        b = self.budget
        plan = self._cost(chat, text_tokens, tuple(tuple(range(len(v.frames))) for v in chat["videos"]),
                          b.max_pixels, reduced=False)
        if self._fits(plan):
            return plan
        if b.policy == "skip":
            raise OverBudget(self._reason(plan), f"{plan.frames} frames, {plan.tokens} tokens")
        plan = self._fewer_frames(chat, text_tokens, plan)
        while not self._fits(plan) and plan.max_pixels > self.min_pixels:
            plan = self._cost(chat, text_tokens, plan.keep,
                              max(self.min_pixels, int(plan.max_pixels * PIXEL_SHRINK)), reduced=True)
        if not self._fits(plan):
            raise OverBudget(self._reason(plan), f"still {plan.frames} frames, {plan.tokens} tokens after reducing")
        return plan

    def _fewer_frames(self, chat: dict[str, Any], text_tokens: TextTokens, plan: Plan) -> Plan:
        is_initial = initial_videos(chat)
        lengths = [len(v.frames) for v in chat["videos"]]
        n_init = sum(n for n, ini in zip(lengths, is_initial) if ini)
        floor = min(n_init, self.budget.min_initial_frames)
        target = max(floor, min(n_init, self.budget.max_frames - (plan.frames - n_init)))
        while True:
            keep = tuple(uniform_indices(n, max(1, round(n * target / n_init))) if ini else tuple(range(n))
                         for n, ini in zip(lengths, is_initial)) if n_init else plan.keep
            plan = self._cost(chat, text_tokens, keep, plan.max_pixels, reduced=True)
            if plan.tokens <= self.budget.max_tokens or target <= floor:
                return plan
            target = max(floor, int(target * FRAME_SHRINK))

    def _fits(self, plan: Plan) -> bool:
        return plan.frames <= self.budget.max_frames and plan.tokens <= self.budget.max_tokens

    def _reason(self, plan: Plan) -> str:
        return "too_many_frames" if plan.frames > self.budget.max_frames else "too_many_tokens"

    def _cost(self, chat: dict[str, Any], text_tokens: TextTokens, keep: tuple[tuple[int, ...], ...],
              max_pixels: int, reduced: bool) -> Plan:
        fam = self.family
        tokens = text_tokens(keep) if callable(text_tokens) else text_tokens
        tokens += fam.images_tokens([self._image_size(im, max_pixels) for im in chat["images"]])
        for video, kept in zip(chat["videos"], keep):
            tokens += fam.video_tokens(len(kept), *self._frame_size(video.frames[0], max_pixels))
            tokens += sum(self.count_text(t) for t in fam.processor_texts([video.timestamps[i] for i in kept]))
        frames = len(chat["images"]) + sum(len(k) for k in keep)
        return Plan(keep=keep, max_pixels=max_pixels, tokens=tokens, frames=frames, reduced=reduced)

    def _frame_size(self, image: Image.Image, max_pixels: int) -> tuple[int, int]:
        return self.family.frame_size(image.height, image.width, self.min_pixels, max_pixels)

    def _image_size(self, image: Image.Image, max_pixels: int) -> tuple[int, int]:
        return self.family.image_size(image.height, image.width, self.min_pixels, max_pixels)

    def apply(self, chat: dict[str, Any], plan: Plan) -> dict[str, Any]:
        """The chat with frames dropped and resized as planned (new lists; the input is not modified)."""
        videos = []
        for video, kept in zip(chat["videos"], plan.keep):
            size = self._frame_size(video.frames[0], plan.max_pixels)
            frames = [_resize(video.frames[i], size) for i in kept]
            videos.append(replace(video, frames=frames, timestamps=[video.timestamps[i] for i in kept]))
        images = [_resize(im, self._image_size(im, plan.max_pixels)) for im in chat["images"]]
        return {**chat, "images": images, "videos": videos}


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    h, w = size
    return image if (image.height, image.width) == (h, w) else image.resize((w, h), Image.Resampling.BICUBIC)


def _n_frames(chat: dict[str, Any]) -> int:
    return len(chat["images"]) + sum(len(v.frames) for v in chat["videos"])
