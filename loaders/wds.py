"""A webdataset pipeline over shards: local folders, URL lists and Hub repos -> typed samples.

Stages, each a small generator: shard list -> split across ranks and dataloader workers (applied
exactly once, here) -> tar groups (bounded, allowlisted members only; never pickle) -> Sample ->
optional shuffle buffer. The result is a ``webdataset.DataPipeline`` (a torch IterableDataset).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import webdataset as wds

from loaders.sample import Sample
from loaders.sources import open_url, resolve
from validation.shards import ShardFormatError
from validation.tarstream import iter_tar_groups

log = logging.getLogger(__name__)


@dataclass
class Partition:
    """Who this consumer is: rank among nodes/processes, worker among a rank's dataloader workers."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @classmethod
    def current(cls, split_by_node: bool = True, split_by_worker: bool = True) -> Partition:
        rank, world, worker, workers = wds.utils.pytorch_worker_info()
        return cls(rank if split_by_node else 0, world if split_by_node else 1,
                   worker if split_by_worker else 0, workers if split_by_worker else 1)

    @property
    def consumers(self) -> int:
        return self.world_size * self.num_workers

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker


@dataclass
class _ShardTask:
    url: str
    keep_every: int = 1  # sample-level split when there are fewer shards than consumers
    keep_offset: int = 0


class ShardSampleStream(wds.PipelineStage):
    """Iterable of Samples for one partition of the shards; ``set_epoch`` reshuffles shards."""

    def __init__(self, urls: list[str], *, seed: int = 0, shuffle_shards: bool = True,
                 split_by_node: bool = True, split_by_worker: bool = True,
                 partition: Partition | None = None,
                 on_error: Literal["raise", "warn"] = "raise"):
        self.urls = list(urls)
        self.seed = seed
        self.shuffle_shards = shuffle_shards
        self.split_by_node = split_by_node
        self.split_by_worker = split_by_worker
        self.partition = partition
        self.on_error = on_error
        self.epoch = 0
        self.errors: list[str] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def tasks(self) -> list[_ShardTask]:
        part = self.partition or Partition.current(self.split_by_node, self.split_by_worker)
        urls = list(self.urls)
        if self.shuffle_shards:
            random.Random(self.seed + self.epoch).shuffle(urls)  # same order on every rank and worker
        if len(urls) >= part.consumers:
            return [_ShardTask(u) for i, u in enumerate(urls) if i % part.consumers == part.index]
        return [_ShardTask(u, part.consumers, part.index) for u in urls]

    def run(self) -> Iterator[Sample]:
        return iter(self)

    def __iter__(self) -> Iterator[Sample]:
        position = 0
        seen: dict[str, str] = {}  # key -> shard, per pass: a key in two shards would be trained on twice
        for task in self.tasks():
            for sample in self._read(task.url):
                if sample.key in seen:
                    self._fail(ShardFormatError(f"{task.url}: sample {sample.key!r} was already read from "
                                                f"{seen[sample.key]}; keys must be unique across the dataset"))
                    continue
                seen[sample.key] = task.url
                if position % task.keep_every == task.keep_offset:
                    yield sample
                position += 1

    def _read(self, url: str) -> Iterator[Sample]:
        try:
            with open_url(url) as stream:
                for key, members in iter_tar_groups(stream, url):
                    try:
                        yield Sample.from_members(key, members, shard=url)
                    except ShardFormatError as exc:
                        self._fail(exc)
        except (ShardFormatError, OSError) as exc:
            self._fail(exc if isinstance(exc, ShardFormatError) else ShardFormatError(f"{url}: {exc}"))

    def _fail(self, exc: ShardFormatError) -> None:
        if self.on_error == "raise":
            raise exc
        self.errors.append(str(exc))
        log.warning("skipped: %s", exc)


def samples(source: str | Path | list[str], split: str = "train", *, shuffle: int = 0, seed: int = 0,
            split_by_node: bool = True, split_by_worker: bool = True, partition: Partition | None = None,
            on_error: Literal["raise", "warn"] = "raise", revision: str | None = None) -> wds.DataPipeline:
    """The webdataset pipeline yielding ``Sample`` objects; ``shuffle`` is the sample buffer size."""
    shards = resolve(source, split, revision=revision)
    stream = ShardSampleStream(shards.urls, seed=seed, shuffle_shards=shuffle > 0, split_by_node=split_by_node,
                               split_by_worker=split_by_worker, partition=partition, on_error=on_error)
    stages: list = [stream]
    if shuffle > 0:
        stages.append(wds.shuffle(shuffle, initial=min(shuffle, 100), seed=seed))
    pipeline = wds.DataPipeline(*stages)
    pipeline.stream = stream  # for set_epoch and error counts
    if shards.samples is not None:
        pipeline = pipeline.with_length(shards.samples, silent=True)
    return pipeline


def iter_shard(url: str) -> Iterable[Sample]:
    """Every sample of one shard, in order, raising on the first problem."""
    return ShardSampleStream([url], shuffle_shards=False, partition=Partition())
