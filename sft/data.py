"""Streamed training data: shards -> budget-filtered, resumable ``datasets.IterableDataset`` of plain rows.

Readers. The shards of a split are dealt to READERS, one per (rank, dataloader worker): balanced by the
index.json sample counts when there are at least as many shards as readers, else every reader reads every
shard and keeps every n-th sample. The reader list goes into ``gen_kwargs`` as a LIST of exactly
``world_size x max(1, num_workers)`` entries: Accelerate gives each rank its contiguous block
(``dispatch_batches=False``) and ``datasets`` gives each worker one entry of it, so each reader is read by
exactly one worker and the generator never splits again (splitting twice silently lost samples here).

Epochs. A training reader loops over its shards epoch after epoch (shard order and a sample buffer
reshuffled per epoch from the seed); the Trainer stops at ``max_steps``, which ``compute_max_steps`` derives
from the index counts. Every worker's stream is endless, so the dataloader's round robin never changes:
global batch ``b`` of a rank comes from worker ``b % W``.

Budgets. Each sample is checked with the collator's own decision (``Renderer.plan``: the same template,
tokenizer and ``BudgetPlanner``) BEFORE batching; an over-budget sample under policy ``skip`` (or one that
still does not fit after reducing) is not yielded, so no batch can come out empty. Skips are never silent:
each is attached to the next row yielded (``budget`` member), travels with the batch to the training loop,
which logs it with its key and reason and counts it (``sft.train``).

Resume. The stream is a pure function of (shards, seed, budget), so resuming at optimizer step ``s`` means
skipping, in each worker, the rows of the batches the rank consumed before (``s x grad_accum`` batches,
dealt round robin), and rotating the readers so the new dataloader's worker 0 continues the stream whose
turn is next (``resume_readers``). Skipped rows are read and budget-checked (cheap: frame headers and the
text) but not decoded or collated. The Trainer's own skip (``ignore_data_skip=False``) cannot do this for an iterable
dataset: it would count epochs of ``max_steps`` and collate every skipped batch.
"""

from __future__ import annotations

import io
import json
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from loaders.sample import Sample
from loaders.sources import resolve
from loaders.wds import iter_shard
from sft.collator import as_chat, sample_to_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig:
    """What every reader of a stream needs: the same in every worker, so passed whole (not split)."""

    seed: int = 0
    shuffle_buffer: int = 0
    repeat: bool = False  # loop over epochs (training) or make one pass (eval)
    model: str | None = None  # processor folder for the budget check; None: no check
    budget: dict[str, Any] | None = None  # sft.budget.Budget fields


def row_features():
    from datasets import Features, List, Value

    return Features({"key": Value("string"), "json": Value("string"), "frames": List(Value("binary")),
                     "shard": Value("string"), "budget": Value("string")})


def assign_readers(urls: list[str], counts: list[int] | None, readers: int) -> list[dict[str, Any]]:
    """Deal the shards to ``readers`` readers: ``{"index", "urls", "every", "offset", "skip"}`` each."""
    if not urls:
        raise ValueError("no shards to read")
    if len(urls) < readers:  # every reader reads everything and keeps every `readers`-th sample
        return [{"index": r, "urls": list(urls), "every": readers, "offset": r, "skip": 0} for r in range(readers)]
    counts = counts or [1] * len(urls)
    loads, members = [0] * readers, [[] for _ in range(readers)]
    for i in sorted(range(len(urls)), key=lambda i: (-counts[i], i)):  # largest shard to the lightest reader
        r = min(range(readers), key=lambda r: (loads[r], r))
        loads[r] += counts[i]
        members[r].append(i)
    return [{"index": r, "urls": [urls[i] for i in sorted(m)], "every": 1, "offset": 0, "skip": 0}
            for r, m in enumerate(members)]


def resume_readers(readers: list[dict[str, Any]], batches: int, batch_size: int,
                   workers: int) -> list[dict[str, Any]]:
    """The readers of a run resumed after each rank consumed ``batches`` batches of ``batch_size`` rows.

    Batch ``b`` of a rank came from its worker ``b % W``, which had then consumed ``len(range(w, b, W))``
    batches; a new dataloader starts its round robin at worker 0 again, so worker ``w`` of the resumed run
    must continue the stream of the old worker ``(batches + w) % W``: the rank's readers rotate.
    """
    out = []
    for start in range(0, len(readers), workers):
        block = readers[start:start + workers]
        for w in range(len(block)):
            old = (batches + w) % len(block)
            out.append({**block[old], "skip": len(range(old, batches, len(block))) * batch_size})
    return out


def generate_rows(readers: list[dict[str, Any]], config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rows of the readers this worker was given (one when set up by ``streamed_dataset``)."""
    cfg = StreamConfig(**config)
    if cfg.repeat and len(readers) != 1:
        raise ValueError(f"an endless stream needs one reader per worker, got {len(readers)}")
    for reader in readers:
        yield from reader_rows(reader, cfg)


def reader_rows(reader: dict[str, Any], cfg: StreamConfig) -> Iterator[dict[str, Any]]:
    """One reader's rows: epochs of (shuffled) samples that fit the budget, after its first ``skip`` rows."""
    renderer = _budget_renderer(cfg.model, json.dumps(cfg.budget, sort_keys=True)) if cfg.model else None
    pending: list[list[str]] = []  # [key, reason] of samples skipped since the last row
    position, epoch = 0, 0
    while True:
        yielded = 0
        for sample, plan in _shuffled(_kept(reader, cfg, epoch, renderer, pending), cfg, reader, epoch):
            yielded += 1
            if position >= reader["skip"]:
                yield sample_to_row(sample, budget={"skipped": pending[:], **plan})
            pending.clear()
            position += 1
        if not cfg.repeat:
            if pending:
                log.warning("budget: skipped at the end of the stream, not counted in a batch: %s", pending)
            return
        if not yielded:
            raise ValueError(f"reader {reader['index']}: no sample of {len(reader['urls'])} shard(s) fits the budget")
        epoch += 1


def _kept(reader: dict[str, Any], cfg: StreamConfig, epoch: int, renderer: Any,
          pending: list[list[str]]) -> Iterator[tuple[Sample, dict[str, Any]]]:
    """(sample, budget plan summary) of one epoch in shard order; over-budget ones noted in ``pending``."""
    urls = list(reader["urls"])
    if cfg.shuffle_buffer > 0:  # the same order in every reader sharing the urls (every > 1)
        random.Random(f"{cfg.seed}:{epoch}:shards:{reader['index'] if reader['every'] == 1 else 'all'}").shuffle(urls)
    position = 0
    for url in urls:
        for sample in iter_shard(url):
            position += 1
            if (position - 1) % reader["every"] != reader["offset"]:
                continue
            plan = _budget_plan(renderer, sample)
            if "skip" in plan:
                pending.append([sample.key, plan["skip"]])
                continue
            yield sample, plan


def _shuffled(items: Iterator[Any], cfg: StreamConfig, reader: dict[str, Any], epoch: int) -> Iterator[Any]:
    if cfg.shuffle_buffer <= 0:
        yield from items
        return
    rng = random.Random(f"{cfg.seed}:{epoch}:buffer:{reader['index']}")
    buffer: list[Any] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= cfg.shuffle_buffer:
            i = rng.randrange(len(buffer))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


def _budget_plan(renderer: Any, sample: Sample) -> dict[str, Any]:
    """``{"skip": reason}`` for a sample over budget, else what the budget does to it."""
    if renderer is None:
        return {}
    from sft.budget import OverBudget

    lazy = Sample(key=sample.key, record=sample.record, frames=sample.frames, shard=sample.shard,
                  _images=[Image.open(io.BytesIO(f)) for f in sample.frames])  # sizes only: no decoding
    try:
        plan = renderer.plan(as_chat(lazy))
    except OverBudget as exc:
        return {"skip": exc.reason}
    return {"reduced": plan.reduced, "frames_dropped": len(sample.frames) - plan.frames}


_RENDERERS: dict[tuple[str, str], Any] = {}


def _budget_renderer(model: str, budget_json: str) -> Any:
    """The collator's renderer for the budget check, built once per process."""
    if (model, budget_json) not in _RENDERERS:
        from sft.budget import Budget
        from sft.families import family_of
        from sft.processors import load_processor
        from sft.render import Renderer

        _RENDERERS[model, budget_json] = Renderer(load_processor(model), family_of(model),
                                                  Budget(**json.loads(budget_json)))
    return _RENDERERS[model, budget_json]


def streamed_dataset(source: str, split: str = "train", *, shuffle_buffer: int = 0, seed: int = 0,
                     repeat: bool = False, workers: int = 0, world_size: int = 1, model: str | None = None,
                     budget: dict[str, Any] | None = None, resume_batches: int = 0, batch_size: int = 1):
    """(IterableDataset, number of samples from index.json or None).

    ``workers``/``world_size`` must be the dataloader workers per rank and the number of ranks that will
    read it (one reader each); ``model`` + ``budget`` turn on the budget check; ``resume_batches`` (per rank,
    of ``batch_size`` rows) is where a resumed run starts.
    """
    from datasets import IterableDataset

    shards = resolve(source, split)
    per_rank = max(1, workers)
    counts = [e.samples for e in shards.index.splits[split]] if shards.index else None
    readers = assign_readers(list(shards.urls), counts, per_rank * world_size)
    if resume_batches:
        readers = resume_readers(readers, resume_batches, batch_size, per_rank)
    config = StreamConfig(seed=seed, shuffle_buffer=shuffle_buffer, repeat=repeat, model=model, budget=budget)
    ds = IterableDataset.from_generator(generate_rows, features=row_features(),
                                        gen_kwargs={"readers": readers, "config": config.__dict__})
    return ds, shards.samples


def compute_max_steps(n_samples: int, epochs: float, batch_size: int, grad_accum: int, world_size: int) -> int:
    """Optimizer steps for ``epochs`` passes over ``n_samples`` (at least 1)."""
    per_step = batch_size * grad_accum * world_size
    return max(1, math.ceil(n_samples * epochs / per_step))
