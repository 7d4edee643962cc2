"""Read a dataset through Hugging Face ``datasets`` (folder or Hub repo, streaming or not).

The shards' README declares the features, so plain ``load_dataset(path)`` works; this module passes
the same features explicitly (so an old or hand-edited README cannot make the loader guess) and turns
rows into typed ``Sample`` objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loaders.sample import Sample
from loaders.sources import resolve
from validation.record import TrajectoryRecord
from validation.shards import FRAMES_MEMBER, RECORD_MEMBER, hf_features


def load(source: str | Path, split: str = "train", *, streaming: bool = False, revision: str | None = None,
         decode_frames: bool = False, **kwargs: Any):
    """``datasets.load_dataset`` on our shards with the declared features.

    With ``decode_frames=False`` (the default here) frames stay as their stored bytes, which is lossless
    and cheap; ``Sample.images()`` decodes them on demand.
    """
    import datasets

    features = hf_features()
    if not decode_frames:
        features[FRAMES_MEMBER] = datasets.List(datasets.Image(decode=False))
    shards = resolve(source, split, revision=revision)
    return datasets.load_dataset("webdataset", data_files={split: shards.urls}, split=split,
                                 streaming=streaming, features=features, **kwargs)


def row_to_sample(row: dict[str, Any]) -> Sample:
    record = TrajectoryRecord.model_validate(row[RECORD_MEMBER])
    frames = [f["bytes"] if isinstance(f, dict) else _encode(f) for f in row[FRAMES_MEMBER]]
    return Sample(key=record.id, record=record, frames=frames)


def iter_samples(source: str | Path, split: str = "train", *, streaming: bool = True,
                 revision: str | None = None) -> Iterator[Sample]:
    for row in load(source, split, streaming=streaming, revision=revision):
        yield row_to_sample(row)


def _encode(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format=image.format or "PNG")
    return buf.getvalue()
