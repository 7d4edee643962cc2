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
    from transformers import AutoProcessor

    cache: dict[str, object] = {}

    def get(family: str):
        if family not in cache:
            cache[family] = AutoProcessor.from_pretrained(tiny_model_dir(family))
        return cache[family]

    return get


def small_samples(n: int, start: int = 0, n_initial: int = 4):
    """``n`` fixture samples (every tool, reasoning from i >= 5) with few small frames."""
    return [make_sample(i, n_initial=n_initial) for i in range(start, start + n)]


@pytest.fixture(scope="session")
def train_dataset(tmp_path_factory):
    """8 small samples in 4 shards (train) + 2 in an eval split, written by ShardWriter."""
    from dataset_builder.writer import ShardWriter

    out = tmp_path_factory.mktemp("sft-data")
    with ShardWriter(out, max_shard_bytes=12_000) as writer:
        for record, frames in small_samples(8, start=4, n_initial=2):
            writer.write(record, frames)
        for record, frames in small_samples(2, start=20, n_initial=2):
            writer.write(record.model_copy(update={"id": f"eval-{record.id}"}), frames, split="eval")
    return out


FAMILIES = list(VISION_FAMILIES)
