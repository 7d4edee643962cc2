"""Ranks x dataloader workers: every sample exactly once per epoch, however shards divide."""

from __future__ import annotations

import collections

import pytest
import torch

from loaders import wds
from loaders.wds import Partition


def _keys_per_consumer(folder, world_size: int, num_workers: int, **kw) -> list[str]:
    keys: list[str] = []
    for rank in range(world_size):
        for worker in range(num_workers):
            part = Partition(rank=rank, world_size=world_size, worker=worker, num_workers=num_workers)
            keys += [s.key for s in wds.samples(folder, partition=part, **kw)]
    return keys


@pytest.mark.parametrize("world_size,num_workers", [(2, 2), (1, 3), (4, 4)])
def test_every_sample_exactly_once(written_dataset, world_size, num_workers):
    folder, expected = written_dataset
    keys = _keys_per_consumer(folder, world_size, num_workers, shuffle=4, seed=1)
    counts = collections.Counter(keys)
    assert set(counts) == {r.id for r, _ in expected}
    assert set(counts.values()) == {1}


def test_two_real_dataloader_workers_per_simulated_rank(written_dataset, monkeypatch):
    folder, expected = written_dataset
    seen: list[str] = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        pipeline = wds.samples(folder)
        loader = torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=2,
                                             collate_fn=lambda s: s.key)
        seen += list(loader)
    assert sorted(seen) == sorted(r.id for r, _ in expected)


def test_epochs_reshuffle_shards_but_keep_the_set(written_dataset):
    folder, expected = written_dataset
    pipeline = wds.samples(folder, shuffle=1, seed=0)
    orders = []
    for epoch in range(4):
        pipeline.stream.set_epoch(epoch)
        orders.append([s.key for s in pipeline])
    assert all(sorted(order) == sorted(r.id for r, _ in expected) for order in orders)
    assert len({tuple(order) for order in orders}) > 1  # the shard order changes between epochs
    pipeline.stream.set_epoch(2)
    assert [s.key for s in pipeline] == orders[2]  # and is reproducible for a given epoch


def test_a_key_repeated_in_another_shard_is_reported_with_both_shards(written_dataset, tmp_path):
    import shutil

    from validation.shards import ShardFormatError

    folder, _ = written_dataset
    shards = sorted((folder / "data").glob("*.tar"))
    copy = tmp_path / "dup.tar"
    shutil.copy(shards[0], copy)
    urls = [str(shards[0]), str(copy)]
    with pytest.raises(ShardFormatError, match=r"dup.tar: sample 'sample-00000' was already read from .*000000.tar"):
        list(wds.samples(urls))
    warned = wds.samples(urls, on_error="warn")
    keys = [s.key for s in warned]
    assert len(keys) == len(set(keys)) and len(warned.stream.errors) == len(keys)
