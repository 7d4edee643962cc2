"""Golden mask tests per family with tiny offline models: labels cover exactly the assistant turns."""

from __future__ import annotations

import json
import math

import pytest
import torch

from loaders.sample import Sample
from sft.budget import Budget
from sft.collator import as_chat
from sft.families import family_of
from sft.labels import IGNORE_INDEX
from sft.render import Renderer
from tests.sft_fixtures import FAMILIES, QWEN_FAMILIES, small_samples, tiny_model_dir, tiny_processor  # noqa: F401

END = {"qwen2_5_vl": "<|im_end|>", "qwen3_vl": "<|im_end|>", "llava_onevision": "<|im_end|>",
       "smolvlm2": "<end_of_utterance>"}
# tokens that must never be labelled, per family (vision, turn openers, tool observations, padding)
NEVER = {
    "qwen2_5_vl": ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_start|>",
                   "<tool_response>", "</tool_response>", "<|endoftext|>"],
    "smolvlm2": ["<image>", "<fake_token_around_image>", "<global-img>", "<|im_start|>", "<|im_end|>"],
    "llava_onevision": ["<image>", "<video>", "<|im_start|>", "<|endoftext|>"],
}
NEVER["qwen3_vl"] = NEVER["qwen2_5_vl"]


def expected_turns(record, family: str) -> list[str]:
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
        turns.append((" " if family == "smolvlm2" else "") + text + END[family])  # SmolVLM: "Assistant: ..."
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
        chats = [as_chat(s) for s in samples]
        out[family] = (renderer, samples, chats, renderer(chats))
    return out


def _id(renderer, token: str) -> int:
    return renderer.tokenizer.convert_tokens_to_ids(token)


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_decode_to_exactly_the_assistant_turns(rendered, family):
    renderer, samples, _, batch = rendered[family]
    tok = renderer.tokenizer
    for row, sample in enumerate(samples):
        labels, ids = batch["labels"][row], batch["input_ids"][row]
        spans = labelled_spans(labels)
        assert [tok.decode(ids[a:b]) for a, b in spans] == expected_turns(sample.record, family)
        assert all(ids[b - 1].item() == _id(renderer, END[family]) for _, b in spans)  # each turn ends labelled
        # every reasoning is there, not just the last turn's (PITFALLS 25)
        for m in sample.record.messages:
            if m.reasoning:
                assert m.reasoning in tok.decode(ids[labels != IGNORE_INDEX])


@pytest.mark.parametrize("family", FAMILIES)
def test_nothing_else_is_labelled(rendered, family):
    renderer, samples, _, batch = rendered[family]
    tok = renderer.tokenizer
    labels, ids = batch["labels"], batch["input_ids"]
    for token in NEVER[family]:
        assert not ((ids == _id(renderer, token)) & (labels != IGNORE_INDEX)).any(), token
    assert (labels[batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    for row in range(len(samples)):
        labelled_text = tok.decode(ids[row][labels[row] != IGNORE_INDEX])
        assert "tool_response" not in labelled_text and "Question" not in labelled_text
        assert "a line of speech" not in labelled_text and "# Tools" not in labelled_text
        assert "Frame " not in labelled_text and "seconds>" not in labelled_text  # clip time text


@pytest.mark.parametrize("family", FAMILIES)
def test_token_estimate_before_the_processor_is_exact(rendered, family):
    renderer, _, chats, batch = rendered[family]
    for row, chat in enumerate(chats):
        assert renderer.prepare(chat).plan.tokens == int(batch["attention_mask"][row].sum())


def _budgeted(renderer, chats):
    return [renderer.planner.apply(chat, renderer.plan(chat)) for chat in chats]


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_vision_tokens_match_the_frames_given_qwen(rendered, family):
    renderer, samples, chats, batch = rendered[family]
    fam = renderer.family
    video_tokens = image_tokens = 0
    for sample, chat in zip(samples, _budgeted(renderer, chats)):
        assert len(chat["videos"]) == sum(1 for m in sample.record.messages for p in m.content if p.type == "video")
        for clip in chat["videos"]:
            h, w = clip.frames[0].height, clip.frames[0].width
            video_tokens += math.ceil(len(clip.frames) / 2) * (h // fam.factor) * (w // fam.factor)
        image_tokens += sum((im.height // fam.factor) * (im.width // fam.factor) for im in chat["images"])
    assert (batch["input_ids"] == _id(renderer, "<|video_pad|>")).sum().item() == video_tokens
    assert (batch["input_ids"] == _id(renderer, "<|image_pad|>")).sum().item() == image_tokens
    assert int(batch["video_grid_thw"].prod(-1).sum()) // 4 == video_tokens


def test_vision_tokens_match_the_frames_given_smolvlm2(rendered):
    """One 64x64 tile per frame and per crop: 4 <image> tokens each, in one <global-img> block each."""
    renderer, _, chats, batch = rendered["smolvlm2"]
    fitted = _budgeted(renderer, chats)
    visuals = [len(c["images"]) + sum(len(v.frames) for v in c["videos"]) for c in fitted]
    ids = batch["input_ids"]
    assert (ids == _id(renderer, "<global-img>")).sum(-1).tolist() == visuals
    assert (ids == _id(renderer, "<image>")).sum(-1).tolist() == [4 * n for n in visuals]
    real = (batch["pixel_values"] != 0).flatten(2).any(-1)  # padding images are all zeros
    assert real.sum(-1).tolist() == visuals and batch["pixel_values"].shape[-2:] == (64, 64)


def test_vision_tokens_match_the_frames_given_llava_onevision(rendered):
    """Each frame is a one-frame video: 2x2-pooled 4x4 patches + newline = 5 <video> tokens; crops anyres."""
    renderer, _, chats, batch = rendered["llava_onevision"]
    fitted = _budgeted(renderer, chats)
    frames = [sum(len(v.frames) for v in c["videos"]) for c in fitted]
    ids = batch["input_ids"]
    assert (ids == _id(renderer, "<video>")).sum(-1).tolist() == [5 * n for n in frames]
    assert batch["pixel_values_videos"].shape[:2] == (sum(frames), 1)
    crops = [[(im.height, im.width) for im in c["images"]] for c in fitted]
    expected = [renderer.family.images_tokens(sizes) for sizes in crops]
    assert (ids == _id(renderer, "<image>")).sum(-1).tolist() == expected
    assert batch["batch_num_images"].tolist() == [len(c) for c in crops if c]
    single = next(sizes for sizes in crops if len(sizes) == 1)  # anyres: the base tile and the grid
    assert renderer.family.images_tokens(single) > renderer.family.tile_tokens


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - set(QWEN_FAMILIES)))  # Qwen: test_sft_train
def test_the_tiny_model_trains_on_the_batch(rendered, tiny_model_dir, family):
    """The processor output fits the model: finite loss, gradients reach the language model."""
    from transformers import AutoModelForImageTextToText

    renderer, _, chats, _ = rendered[family]
    batch = renderer([chats[1], chats[3]])  # a crop alone (anyres on LLaVA-OV); a crop and a FrameZoom clip
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir(family))
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss) and model.get_output_embeddings().weight.grad.abs().sum() > 0


def test_real_timestamps_reach_the_model(rendered):
    """Per family: the frames' real times, in the form the model reads them."""
    renderer, samples, _, batch = rendered["qwen3_vl"]
    ts = samples[0].record.messages[1].content[0].timestamps  # 3 initial frames: groups (t0, t1), (t2, t2)
    text = renderer.tokenizer.decode(batch["input_ids"][0])
    assert f"<{(ts[0] + ts[1]) / 2:.1f} seconds>" in text and f"<{ts[2]:.1f} seconds>" in text
    _, _, _, batch25 = rendered["qwen2_5_vl"]
    spacing = (ts[-1] - ts[0]) / (len(ts) - 1)
    assert batch25["second_per_grid_ts"][0].item() == pytest.approx(2 * spacing, rel=1e-4)
    smol, _, _, batch_smol = rendered["smolvlm2"]
    text = smol.tokenizer.decode(batch_smol["input_ids"][0])
    assert "series of three frames from a 0:10:00 [H:MM:SS] video" in text
    assert all(f"Frame from {int(t // 60):02d}:{int(t % 60):02d}:<fake_token_around_image>" in text for t in ts)
    llava, _, _, batch_llava = rendered["llava_onevision"]
    text = llava.tokenizer.decode(batch_llava["input_ids"][0])
    assert all(f"Frame at {t:.1f}s: <video>" in text for t in ts)
