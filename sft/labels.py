"""Assistant-only labels: exactly the assistant turns, everything else -100.

Scans token ids for ``<|im_start|>assistant\\n`` ... ``<|im_end|>``: the label span starts right after
the ``assistant\\n`` header and ends WITH the ``<|im_end|>`` token (the model must learn to stop, PITFALLS
24). System, user and tool turns, vision tokens and padding are never labelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TurnTokens:
    im_start: int
    im_end: int
    assistant_header: tuple[int, ...]  # tokens of "assistant\n" after <|im_start|>
    vision: frozenset[int]  # never labelled, wherever they appear
    pad: int | None

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TurnTokens:
        ids = tokenizer.convert_tokens_to_ids
        header = tuple(tokenizer("assistant\n", add_special_tokens=False).input_ids)
        vision = {ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
                                   "<|vision_pad|>")}
        return cls(ids("<|im_start|>"), ids("<|im_end|>"), header, frozenset(vision), tokenizer.pad_token_id)


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
    """[start, end) spans: after ``<|im_start|>assistant\\n`` up to and including ``<|im_end|>``."""
    spans, header, i = [], tokens.assistant_header, 0
    while i < len(ids):
        if ids[i] == tokens.im_start and tuple(ids[i + 1:i + 1 + len(header)]) == header:
            start = i + 1 + len(header)
            end = start
            while end < len(ids) and ids[end] != tokens.im_end:
                end += 1
            end = min(end + 1, len(ids))  # include <|im_end|> (a truncated turn keeps what it has)
            spans.append((start, end))
            i = end
        else:
            i += 1
    return spans
