"""Test-wide setup: no network, a throwaway HF cache, and shared fixture datasets."""

from __future__ import annotations

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="vt-hf-home-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from tests.fixtures.records import make_samples  # noqa: E402


@pytest.fixture(scope="session")
def fixture_samples():
    return make_samples(24)


@pytest.fixture(scope="session")
def written_dataset(tmp_path_factory, fixture_samples):
    """24 varied samples in >= 3 shards (small size-based rollover), plus the samples as written."""
    from dataset_builder.writer import ShardWriter

    out = tmp_path_factory.mktemp("dataset")
    with ShardWriter(out, max_shard_bytes=150_000) as writer:
        for record, frames in fixture_samples:
            writer.write(record, frames)
    return out, [(record.canonical(), frames) for record, frames in fixture_samples]
