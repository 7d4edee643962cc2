"""Golden mask tests per family with tiny offline models: labels cover exactly the assistant turns."""

from __future__ import annotations

import json
import math

import pytest
import torch

from loaders.chat import to_chat
from loaders.sample import Sample
from sft.budget import Budget
from sft.families import family_of
from sft.labels import IGNORE_INDEX
from sft.render import Renderer
from tests.sft_fixtures import FAMILIES, small_samples, tiny_model_dir, tiny_processor  # noqa: F401


def expected_turns(record) -> list[str]:
    """The assistant turns as the template must render them, written out independently."""
    turns = []
    for m in record.messages:
        if m.role != "assistant":
            continue
        text = (f"<think>\n{m.reasoning}\n</think>\n\n" if m.reasoning else "") + m.text()
        for k, call in enumerate(m.tool_calls or []):
            sep = "\n" if (k or m.text()) else ""
            args = json.dumps(call.function.arguments, ensure_ascii=False)
            text += f'{sep}<tool_call>\n{{"name": "{call.function.name}", "arguments": {args}}}\n</tool_call>'
        turns.append(text + "<|im_end|>")
    return turns


def labelled_spans(labels: torch.Tensor) -> list[tuple[int, int]]:
    on = (labels != IGNORE_INDEX).tolist() + [False]
    spans, start = [], None
    for i, flag in enumerate(on):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append((start, i))
            start = None
    return spans


@pytest.fixture(scope="module")
def rendered(tiny_processor):
    samples = [Sample(key=r.id, record=r, frames=f) for r, f in small_samples(8, start=4, n_initial=3)]
    out = {}
    for family in FAMILIES:
        renderer = Renderer(tiny_processor(family), family_of(family), Budget(max_pixels=56 * 56 * 2))
        out[family] = (renderer, samples, renderer([to_chat(s) for s in samples]))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_decode_to_exactly_the_assistant_turns(rendered, family):
    renderer, samples, batch = rendered[family]
    tok = renderer.tokenizer
    for row, sample in enumerate(samples):
        labels, ids = batch["labels"][row], batch["input_ids"][row]
        turns = expected_turns(sample.record)
        spans = labelled_spans(labels)
        assert [tok.decode(ids[a:b]) for a, b in spans] == turns
        assert ids[spans[-1][1] - 1].item() == tok.convert_tokens_to_ids("<|im_end|>")
        # every reasoning is there, not just the last turn's (PITFALLS 25)
        for m in sample.record.messages:
            if m.reasoning:
                assert m.reasoning in tok.decode(ids[labels != IGNORE_INDEX])


@pytest.mark.parametrize("family", FAMILIES)
def test_nothing_else_is_labelled(rendered, family):
    renderer, samples, batch = rendered[family]
    tok = renderer.tokenizer
    labels, ids = batch["labels"], batch["input_ids"]
    never = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<tool_response>",
             "</tool_response>", "<|im_start|>", "<|endoftext|>"]
    for token in never:
        assert not ((ids == tok.convert_tokens_to_ids(token)) & (labels != IGNORE_INDEX)).any(), token
    assert (labels[batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    for row in range(len(samples)):
        labelled_text = tok.decode(ids[row][labels[row] != IGNORE_INDEX])
        assert "tool_response" not in labelled_text and "Question" not in labelled_text
        assert "a line of speech" not in labelled_text and "# Tools" not in labelled_text


@pytest.mark.parametrize("family", FAMILIES)
def test_vision_tokens_match_the_frames_given(rendered, family):
    renderer, samples, batch = rendered[family]
    fam, tok = renderer.family, renderer.tokenizer
    video_tokens = image_tokens = 0
    for sample in samples:
        chat = renderer.planner.apply(to_chat(sample), renderer.prepare(to_chat(sample)).plan)
        assert len(chat["videos"]) == sum(1 for m in sample.record.messages for p in m.content if p.type == "video")
        for clip in chat["videos"]:
            h, w = clip.frames[0].height, clip.frames[0].width
            video_tokens += math.ceil(len(clip.frames) / 2) * (h // fam.factor) * (w // fam.factor)
        image_tokens += sum((im.height // fam.factor) * (im.width // fam.factor) for im in chat["images"])
    assert (batch["input_ids"] == tok.convert_tokens_to_ids("<|video_pad|>")).sum().item() == video_tokens
    assert (batch["input_ids"] == tok.convert_tokens_to_ids("<|image_pad|>")).sum().item() == image_tokens
    assert int(batch["video_grid_thw"].prod(-1).sum()) // 4 == video_tokens


@pytest.mark.parametrize("family", FAMILIES)
def test_token_estimate_before_the_processor_is_exact(rendered, family):
    renderer, samples, batch = rendered[family]
    for row, sample in enumerate(samples):
        plan = renderer.prepare(to_chat(sample)).plan
        assert plan.tokens == int(batch["attention_mask"][row].sum())


def test_real_timestamps_reach_the_model(rendered):
    renderer, samples, batch = rendered["qwen3_vl"]
    sample = samples[0]
    text = renderer.tokenizer.decode(batch["input_ids"][0])
    ts = sample.record.messages[1].content[0].timestamps  # 3 initial frames: groups (t0, t1), (t2, t2)
    assert f"<{(ts[0] + ts[1]) / 2:.1f} seconds>" in text and f"<{ts[2]:.1f} seconds>" in text
    renderer25, _, batch25 = rendered["qwen2_5_vl"]
    spacing = (ts[-1] - ts[0]) / (len(ts) - 1)
    assert batch25["second_per_grid_ts"][0].item() == pytest.approx(2 * spacing, rel=1e-4)
