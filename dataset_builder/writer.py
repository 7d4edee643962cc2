"""Shard writer: grounded samples -> size-rolled WebDataset tars laid out like a Hub dataset repo.

Each sample becomes two adjacent members, ``{key}.json`` and ``{key}.frames.msg``. A shard is written
under a temporary name and renamed when complete, then its ``_stats.json`` completion marker is
written; ``close()`` writes ``index.json`` and a README.md whose YAML declares ``configs`` and
``dataset_info.features`` so ``datasets.load_dataset(folder)`` never guesses. Output is byte-for-byte
deterministic for the same samples in the same order.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dataset_builder.cache import crash_point
from validation.record import TrajectoryRecord
from validation.semantics import record_problems
from validation.shards import (
    FRAMES_MEMBER,
    RECORD_MEMBER,
    DatasetIndex,
    ShardEntry,
    atomic_write_text,
    check_key,
    pack_frames,
    shard_name,
    stats_name,
    write_minimal_readme,
)
from validation.version import package_version

DEFAULT_MAX_SHARD_BYTES = 1_000_000_000


class SampleRejected(ValueError):
    """A sample that would break the contract; the message names the sample and the problem."""


class _HashingFile:
    """A write-only file that hashes what passes through, so a shard is never read back to hash it."""

    def __init__(self, path: Path):
        self._fh = open(path, "wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


@dataclass
class _OpenShard:
    path: Path
    tmp_path: Path
    file: _HashingFile
    tar: tarfile.TarFile
    samples: int = 0
    frames: int = 0
    tools: Counter = field(default_factory=Counter)


class ShardWriter:
    """Write samples of one or more splits into ``out_dir/data/{split}-NNNNNN.tar``."""

    def __init__(self, out_dir: Path | str, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, check: bool = True):
        self.out_dir = Path(out_dir)
        self.max_shard_bytes = max_shard_bytes
        self.check = check
        self.index = DatasetIndex(schema_version=TrajectoryRecord.model_fields["schema_version"].default,
                                  package_version=package_version())
        self._open: dict[str, _OpenShard] = {}
        self._keys: set[str] = set()
        (self.out_dir / "data").mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, record: TrajectoryRecord, frames: list[bytes], split: str = "train") -> None:
        key = check_key(record.id)
        if key in self._keys:
            raise SampleRejected(f"sample {key!r}: duplicate key (keys must be unique across the dataset)")
        if self.check and (problems := record_problems(record, n_frames=len(frames))):
            raise SampleRejected(f"sample {key!r}: {problems[0]}")
        record_bytes = record.to_json().encode("utf-8")
        frames_bytes = pack_frames(frames)
        shard = self._shard_for(split, len(record_bytes) + len(frames_bytes))
        _add_member(shard.tar, f"{key}.{RECORD_MEMBER}", record_bytes)
        _add_member(shard.tar, f"{key}.{FRAMES_MEMBER}", frames_bytes)
        shard.samples += 1
        shard.frames += len(frames)
        shard.tools.update(c.function.name for c in record.tool_calls())
        self._keys.add(key)

    def _shard_for(self, split: str, incoming: int) -> _OpenShard:
        shard = self._open.get(split)
        if shard and shard.samples and shard.file.tell() + incoming > self.max_shard_bytes:
            self._finish(split)
            shard = None
        if shard is None:
            rel = shard_name(split, len(self.index.splits.get(split, [])))
            path = self.out_dir / rel
            tmp = path.with_name(f".{path.name}.tmp")
            file = _HashingFile(tmp)
            shard = _OpenShard(path, tmp, file, tarfile.open(fileobj=file, mode="w", format=tarfile.USTAR_FORMAT))
            self._open[split] = shard
        return shard

    def _finish(self, split: str) -> None:
        shard = self._open.pop(split)
        shard.tar.close()
        shard.file.close()
        shard.tmp_path.replace(shard.path)
        crash_point("shard_renamed")
        rel = shard.path.relative_to(self.out_dir).as_posix()
        entry = ShardEntry(path=rel, samples=shard.samples, frames=shard.frames,
                           bytes=shard.file.size, sha256=shard.file.sha256.hexdigest())
        self.index.splits.setdefault(split, []).append(entry)
        stats = {**entry.model_dump(), "split": split, "tool_calls": dict(sorted(shard.tools.items()))}
        atomic_write_text(self.out_dir / stats_name(rel), json.dumps(stats, indent=2) + "\n")

    def close(self) -> DatasetIndex:
        for split in list(self._open):
            self._finish(split)
        crash_point("before_index")
        self.index.save(self.out_dir)
        write_minimal_readme(self.out_dir, sorted(self.index.splits))
        self._remove_stale()
        return self.index

    def _remove_stale(self) -> None:
        """Shards an earlier build left in this folder beyond the ones just written (it rolled more shards)
        would be read by the README's ``data/{split}-*.tar`` glob: remove them, their markers and temp files."""
        keep = {e.path for entries in self.index.splits.values() for e in entries}
        data = self.out_dir / "data"
        for split in self.index.splits:
            for path in [*data.glob(f"{split}-*.tar"), *data.glob(f".{split}-*.tar.tmp")]:
                rel = path.relative_to(self.out_dir).as_posix()
                if rel not in keep:
                    path.unlink(missing_ok=True)
                    (self.out_dir / stats_name(rel)).unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop unfinished shards: a temp file is never visible under a final name."""
        for shard in self._open.values():
            shard.tar.close()
            shard.file.close()
            shard.tmp_path.unlink(missing_ok=True)
        self._open.clear()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))
    crash_point("shard_member")
