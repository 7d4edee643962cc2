"""Every field and every frame written comes back, through `datasets` (streaming and not) and webdataset."""

from __future__ import annotations

import io
import math

import datasets
import numpy as np
import pytest
from PIL import Image

from loaders import hf, wds
from loaders.chat import to_chat
from validation.shards import DatasetIndex


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_fixture_spans_the_shapes_that_break_naive_loading(written_dataset):
    folder, expected = written_dataset
    index = DatasetIndex.load(folder)
    assert len(index.splits["train"]) >= 3
    counts = [len(frames) for _, frames in expected]
    assert min(counts) == 1 and max(counts) >= 40
    first_five = [r.model_dump() for r, _ in expected[:5]]
    assert not any(m.get("reasoning") for r in first_five for m in r["messages"])
    assert any(m.reasoning for r, _ in expected[5:] for m in r.messages)
    assert not any("late_stat" in r["stats"] for r in first_five)


@pytest.mark.parametrize("streaming", [False, True])
def test_plain_load_dataset_reads_every_field_and_frame(written_dataset, streaming):
    folder, expected = written_dataset
    rows = list(datasets.load_dataset(str(folder), split="train", streaming=streaming))
    assert [r["json"]["id"] for r in rows] == [r.id for r, _ in expected]
    for row, (record, frames) in zip(rows, expected):
        assert row["json"] == record.model_dump(mode="json")  # every field, bit-identical floats
        assert len(row["frames.msg"]) == len(frames)
        for image, data in zip(row["frames.msg"], frames):
            assert np.array_equal(np.asarray(image.convert("RGB")), _pixels(data))


@pytest.mark.parametrize("streaming", [False, True])
def test_typed_hf_reader_is_lossless(written_dataset, streaming):
    folder, expected = written_dataset
    samples = list(hf.iter_samples(folder, streaming=streaming))
    assert [(s.record, s.frames) for s in samples] == expected


def test_webdataset_reader_is_lossless(written_dataset):
    folder, expected = written_dataset
    samples = list(wds.samples(folder))
    assert [(s.record, s.frames) for s in samples] == expected
    assert all(np.array_equal(np.asarray(img), _pixels(data))
               for s in samples[:3] for img, data in zip(s.images(), s.frames))


def test_canonical_floats_stay_within_a_nanosecond(fixture_samples, written_dataset):
    _, expected = written_dataset
    for (original, _), (stored, _) in zip(fixture_samples, expected):
        for a, b in zip(original.frames, stored.frames):
            assert math.isclose(a.timestamp_s, b.timestamp_s, abs_tol=1e-9)


def test_shuffle_buffer_keeps_every_sample_once(written_dataset):
    folder, expected = written_dataset
    keys = [s.key for s in wds.samples(folder, shuffle=8, seed=3)]
    assert sorted(keys) == sorted(r.id for r, _ in expected)
    assert keys != [r.id for r, _ in expected]


def test_chat_conversion_maps_parts_to_media_in_order(written_dataset):
    folder, expected = written_dataset
    for sample in wds.samples(folder):
        chat = to_chat(sample)
        parts = [p["type"] for m in chat["messages"] for p in m["content"]]
        assert parts.count("image") == len(chat["images"])
        assert parts.count("video") == len(chat["videos"])
        shown = sum(len(v.frames) for v in chat["videos"]) + len(chat["images"])
        assert shown == len(sample.frames)  # every stored frame is shown exactly once
        for clip in chat["videos"]:
            assert len(clip.frames) == len(clip.timestamps)
        calls = [c for m in chat["messages"] for c in m.get("tool_calls", [])]
        assert all(isinstance(c["function"]["arguments"], dict) for c in calls)
        assert calls[-1]["function"]["name"] == "Answer"
