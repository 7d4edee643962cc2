"""The on-disk layout of a dataset: tar members per sample, shard names, index.json, _stats.json.

One sample is two adjacent tar members, ``{key}.json`` (the record) and ``{key}.frames.msg`` (a msgpack
list of encoded JPEG/WebP frames). A dataset folder is laid out like a Hub dataset repo::

    README.md                 card with `configs` and `dataset_info.features`
    index.json                per split, per shard: samples, bytes, sha256
    data/{split}-000000.tar
    data/{split}-000000_stats.json

Everything here is pure format: the writer (dataset_builder), the readers (loaders) and the
validator share it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgpack
from pydantic import BaseModel, Field

from validation.record import KEY_RE

RECORD_MEMBER = "json"
FRAMES_MEMBER = "frames.msg"
SAMPLE_MEMBERS = (RECORD_MEMBER, FRAMES_MEMBER)
INDEX_FILE = "index.json"
DATA_DIR = "data"
STATS_SUFFIX = "_stats.json"

# Limits that keep a hostile shard from exhausting memory.
MAX_FRAMES_PER_SAMPLE = 4096
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_RECORD_BYTES = 16 * 1024 * 1024


class ShardFormatError(ValueError):
    """A shard or member does not follow the layout; the message names the shard and the key."""


def shard_name(split: str, index: int) -> str:
    return f"{DATA_DIR}/{split}-{index:06d}.tar"


def stats_name(shard_path: str) -> str:
    return shard_path.removesuffix(".tar") + STATS_SUFFIX


def split_member_name(name: str) -> tuple[str, str]:
    """``"abc.frames.msg"`` -> ``("abc", "frames.msg")``: the key never holds a dot."""
    base = name.rsplit("/", 1)[-1]
    key, dot, ext = base.partition(".")
    if not dot:
        raise ShardFormatError(f"member {name!r} has no extension")
    return key, ext


def check_key(key: str) -> str:
    if not KEY_RE.match(key):
        raise ShardFormatError(f"sample key {key!r} must match [A-Za-z0-9_-]+ (no dots or slashes)")
    return key


def pack_frames(frames: list[bytes]) -> bytes:
    return msgpack.packb([bytes(f) for f in frames], use_bin_type=True)


def unpack_frames(data: bytes, *, where: str = "") -> list[bytes]:
    """Decode a ``frames.msg`` member with bounded sizes; never anything but a list of bytes."""
    try:
        frames = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_bin_len=MAX_FRAME_BYTES,
            max_str_len=1024,
            max_array_len=MAX_FRAMES_PER_SAMPLE,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ShardFormatError(f"{where}: frames.msg is not a valid msgpack list ({exc})") from exc
    if not isinstance(frames, list) or not all(isinstance(f, bytes) for f in frames):
        raise ShardFormatError(f"{where}: frames.msg must be a msgpack list of binary frames")
    return frames


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ShardEntry(BaseModel):
    path: str
    samples: int = Field(ge=0)
    frames: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str


class DatasetIndex(BaseModel):
    schema_version: str
    package_version: str = ""
    splits: dict[str, list[ShardEntry]] = Field(default_factory=dict)

    def samples(self, split: str | None = None) -> int:
        splits = [split] if split else list(self.splits)
        return sum(e.samples for s in splits for e in self.splits.get(s, []))

    @classmethod
    def load(cls, folder: Path) -> DatasetIndex:
        return cls.model_validate_json((Path(folder) / INDEX_FILE).read_bytes())

    def save(self, folder: Path) -> None:
        atomic_write_text(Path(folder) / INDEX_FILE, self.model_dump_json(indent=2) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def hf_features() -> Any:
    """The features every consumer of a shard should use (also declared in the dataset README)."""
    from datasets import Features, Image, Json, List

    return Features({RECORD_MEMBER: Json(), FRAMES_MEMBER: List(Image())})


def hf_features_yaml() -> list[dict[str, Any]]:
    """``hf_features()`` as the README YAML declares it (written out so writing never imports `datasets`)."""
    return [{"name": RECORD_MEMBER, "dtype": "json"}, {"name": FRAMES_MEMBER, "list": "image"}]


def hf_configs_yaml(splits: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.tar"} for s in splits],
        }
    ]


def load_json_bytes(data: bytes, *, where: str) -> Any:
    if len(data) > MAX_RECORD_BYTES:
        raise ShardFormatError(f"{where}: record is {len(data)} bytes, over the {MAX_RECORD_BYTES} limit")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ShardFormatError(f"{where}: record is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ShardFormatError(f"{where}: record is not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def hub_yaml(splits: list[str]) -> dict[str, Any]:
    """The README YAML that makes `load_dataset(folder_or_repo)` load the shards losslessly."""
    return {"configs": hf_configs_yaml(splits), "dataset_info": {"features": hf_features_yaml()}}


def write_minimal_readme(folder: Path, splits: list[str]) -> None:
    """A README holding only the loading YAML; `videothinker card` replaces it with the full card."""
    import yaml

    front = yaml.safe_dump(hub_yaml(splits), sort_keys=False)
    body = "# VideoThinker trajectories\n\nRun `videothinker card` on this folder to write the full dataset card.\n"
    atomic_write_text(Path(folder) / "README.md", f"---\n{front}---\n\n{body}")
