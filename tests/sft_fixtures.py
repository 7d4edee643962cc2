"""Fixtures for the SFT tests: tiny offline models (built once per session) and small fixture shards."""

from __future__ import annotations

import pytest

from dataset_builder.tiny_models import VISION_FAMILIES, resolve_model
from tests.fixtures.records import make_sample


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``family -> folder`` of the tiny random-weight model, built into a session cache."""
    cache = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, str] = {}

    def get(family: str) -> str:
        if family not in built:
            built[family] = resolve_model(f"tiny:{family}", cache_dir=cache)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_processor(tiny_model_dir):
    from sft.processors import load_processor

    return lambda family: load_processor(tiny_model_dir(family))


def small_samples(n: int, start: int = 0, n_initial: int = 4):
    """``n`` fixture samples (every tool, reasoning from i >= 5) with few small frames."""
    return [make_sample(i, n_initial=n_initial) for i in range(start, start + n)]


@pytest.fixture(scope="session")
def train_dataset(tmp_path_factory):
    """8 small samples in 8 shards (train) + 2 in an eval split, written by ShardWriter."""
    from dataset_builder.writer import ShardWriter

    out = tmp_path_factory.mktemp("sft-data")
    with ShardWriter(out, max_shard_bytes=12_000) as writer:
        for record, frames in small_samples(8, start=4, n_initial=2):
            writer.write(record, frames)
        for record, frames in small_samples(2, start=20, n_initial=2):
            writer.write(record.model_copy(update={"id": f"eval-{record.id}"}), frames, split="eval")
    return out


def long_question(record, words: int):
    """The record with a user question of ``words`` words (over a token budget, not a frame budget)."""
    from validation.record import TextPart

    messages = list(record.messages)
    user = messages[1]
    text = TextPart(text=user.content[1].text + " and" * words)
    messages[1] = user.model_copy(update={"content": [user.content[0], text]})
    return record.model_copy(update={"messages": messages})


@pytest.fixture(scope="session")
def over_budget_dataset(tmp_path_factory):
    """One sample per shard: 2 with 20 initial frames (over 12 frames), 1 with a long question (over 4096
    tokens), then 4 small ones; two readers get shards 30, 32, 5, 7 and 31, 4, 6 (skips before rows)."""
    from dataset_builder.writer import ShardWriter
    from tests.fixtures.records import make_sample

    out = tmp_path_factory.mktemp("sft-over-budget")
    with ShardWriter(out, max_shard_bytes=12_000) as writer:
        for i in (30, 31):
            writer.write(*make_sample(i, n_initial=20))
        record, frames = make_sample(32, n_initial=2)
        writer.write(long_question(record, 3000), frames)
        for record, frames in small_samples(4, start=4, n_initial=2):
            writer.write(record, frames)
    return out


OVER_BUDGET = {"max_frames": 12, "max_pixels": 6272, "max_tokens": 4096, "policy": "skip"}
FAMILIES = list(VISION_FAMILIES)
QWEN_FAMILIES = ["qwen2_5_vl", "qwen3_vl"]
