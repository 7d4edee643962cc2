"""Assistant-only labels: exactly the assistant turns, everything else -100.

Scans token ids for a family's assistant-turn opener (``<|im_start|>assistant\\n`` on ChatML families;
``Assistant:`` after ``<end_of_utterance>\\n`` or the leading ``<|im_start|>`` on SmolVLM): the label span
starts right after the opener and ends WITH the turn's end token (``<|im_end|>`` / ``<end_of_utterance>``;
the model must learn to stop, PITFALLS 24). System, user and tool turns, vision tokens and padding are
never labelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100
QWEN_VISION = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>")


@dataclass(frozen=True)
class TurnTokens:
    openers: tuple[tuple[int, ...], ...]  # token sequences right before an assistant turn's first labelled token
    end: int  # the end-of-turn token, labelled
    vision: frozenset[int]  # never labelled, wherever they appear
    pad: int | None

    @classmethod
    def chatml(cls, tokenizer: Any, never: Iterable[str] = QWEN_VISION) -> TurnTokens:
        """``<|im_start|>assistant\\n`` ... ``<|im_end|>`` (Qwen-VL, LLaVA-OneVision on Qwen2)."""
        ids = tokenizer.convert_tokens_to_ids
        header = tuple(tokenizer("assistant\n", add_special_tokens=False).input_ids)
        return cls(((ids("<|im_start|>"), *header),), ids("<|im_end|>"), _ids(tokenizer, never),
                   tokenizer.pad_token_id)

    from_tokenizer = chatml  # the Qwen default

    @classmethod
    def smolvlm(cls, tokenizer: Any, never: Iterable[str]) -> TurnTokens:
        """``Assistant:`` ... ``<end_of_utterance>``; a turn opens after ``<end_of_utterance>\\n`` (or first)."""
        ids = tokenizer.convert_tokens_to_ids
        end = ids("<end_of_utterance>")
        header = tuple(tokenizer("Assistant:", add_special_tokens=False).input_ids)
        after_turn = tuple(tokenizer("\nAssistant:", add_special_tokens=False).input_ids)
        return cls(((ids("<|im_start|>"), *header), (end, *after_turn)), end, _ids(tokenizer, never),
                   tokenizer.pad_token_id)


def _ids(tokenizer: Any, tokens: Iterable[str]) -> frozenset[int]:
    out = {tokenizer.convert_tokens_to_ids(t) for t in tokens}
    return frozenset(i for i in out if i is not None and i != tokenizer.unk_token_id)


def assistant_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, tokens: TurnTokens) -> torch.Tensor:
    """Labels for a batch (B, T): copies of the assistant-turn ids, -100 elsewhere."""
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row in range(input_ids.shape[0]):
        for start, end in assistant_spans(input_ids[row].tolist(), tokens):
            labels[row, start:end] = input_ids[row, start:end]
    vision = torch.tensor(sorted(tokens.vision), dtype=input_ids.dtype)
    labels[torch.isin(input_ids, vision)] = IGNORE_INDEX
    if attention_mask is not None:
        labels[attention_mask == 0] = IGNORE_INDEX
    return labels


def assistant_spans(ids: list[int], tokens: TurnTokens) -> list[tuple[int, int]]:
    """[start, end) spans: after an assistant-turn opener up to and including the end-of-turn token."""
    spans, i = [], 0
    while i < len(ids):
        opener = next((o for o in tokens.openers if tuple(ids[i:i + len(o)]) == o), None)
        if opener is None:
            i += 1
            continue
        start = end = i + len(opener)
        while end < len(ids) and ids[end] != tokens.end:
            end += 1
        end = min(end + 1, len(ids))  # include the end token (a truncated turn keeps what it has)
        spans.append((start, end))
        i = max(end - 1, start)  # the end token may itself begin the next opener (SmolVLM)
    return spans
