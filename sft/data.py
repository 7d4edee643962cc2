"""Streamed training data: shards -> ``datasets.IterableDataset`` of plain rows for TRL.

The shard URL list goes into ``gen_kwargs`` as a LIST: ``datasets`` gives each dataloader worker its own
sublist and Accelerate gives each rank its own shards (``dispatch_batches=False``), so the generator reads
exactly the shards it is handed and never splits again (splitting twice silently lost samples here).
Shuffling is ``datasets``' own (shard order + a sample buffer, reseeded per epoch by ``set_epoch``).
"""

from __future__ import annotations

import math
from typing import Any

from loaders.sources import resolve
from loaders.wds import Partition, samples
from sft.collator import sample_to_row

ROW_FEATURES = {"key": "string", "json": "string", "frames": "binary_list", "shard": "string"}


def row_features():
    from datasets import Features, List, Value

    return Features({"key": Value("string"), "json": Value("string"), "frames": List(Value("binary")),
                     "shard": Value("string")})


def generate_rows(urls: list[str]):
    """Every sample of ``urls`` in order, as rows (no rank/worker split here: it happened already)."""
    stream = samples(list(urls), shuffle=0, split_by_node=False, split_by_worker=False, partition=Partition())
    for sample in stream:
        yield sample_to_row(sample)


def streamed_dataset(source: str, split: str = "train", *, shuffle_buffer: int = 0, seed: int = 0):
    """(IterableDataset, number of samples from index.json or None)."""
    from datasets import IterableDataset

    shards = resolve(source, split)
    ds = IterableDataset.from_generator(generate_rows, gen_kwargs={"urls": list(shards.urls)},
                                        features=row_features())
    if shuffle_buffer > 0:
        ds = ds.shuffle(seed=seed, buffer_size=shuffle_buffer)
    return ds, shards.samples


def compute_max_steps(n_samples: int, epochs: float, batch_size: int, grad_accum: int, world_size: int) -> int:
    """Optimizer steps for ``epochs`` passes over ``n_samples`` (at least 1)."""
    per_step = batch_size * grad_accum * world_size
    return max(1, math.ceil(n_samples * epochs / per_step))


def n_shards(source: str, split: str) -> int:
    return len(resolve(source, split).urls)


def describe(source: str, split: str) -> dict[str, Any]:
    shards = resolve(source, split)
    return {"shards": len(shards.urls), "samples": shards.samples}
