"""Stream a tar shard into samples with bounded memory, never touching the filesystem.

Members are grouped by key; a sample's members must be adjacent. Sizes are checked before anything is
read, names are checked against the key pattern (no paths, no traversal), and only regular files are
accepted. Errors name the shard and the key.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import IO

from validation.shards import (
    MAX_FRAME_BYTES,
    MAX_RECORD_BYTES,
    RECORD_MEMBER,
    ShardFormatError,
    check_key,
    split_member_name,
)

MAX_MEMBER_BYTES = {RECORD_MEMBER: MAX_RECORD_BYTES}
DEFAULT_MAX_MEMBER_BYTES = MAX_FRAME_BYTES * 8  # a frames.msg of a few dozen large frames


def iter_tar_groups(stream: IO[bytes], shard: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {extension: bytes})`` per sample, in tar order."""
    key: str | None = None
    members: dict[str, bytes] = {}
    seen: set[str] = set()
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")  # plain tar only: no decompression bombs
        for info in tar:
            try:
                name_key, ext = _checked_name(info, shard)
            except ShardFormatError:
                if key is not None:
                    yield key, members  # the sample before a bad member is complete: hand it over
                    key = None
                raise
            if name_key != key:
                if key is not None:
                    yield key, members
                if name_key in seen:
                    raise ShardFormatError(f"{shard}: sample {name_key!r} has non-adjacent members ({info.name})")
                key, members = name_key, {}
                seen.add(name_key)
            if ext in members:
                raise ShardFormatError(f"{shard}: sample {key!r} has member {info.name!r} twice")
            limit = MAX_MEMBER_BYTES.get(ext, DEFAULT_MAX_MEMBER_BYTES)
            if info.size > limit:
                raise ShardFormatError(f"{shard}: member {info.name!r} declares {info.size} bytes (limit {limit})")
            fh = tar.extractfile(info)
            data = fh.read() if fh else b""
            if len(data) != info.size:
                raise ShardFormatError(f"{shard}: member {info.name!r} is truncated")
            members[ext] = data
    except tarfile.TarError as exc:
        raise ShardFormatError(f"{shard}: not a readable tar ({exc}); re-download or rebuild the shard") from exc
    except EOFError as exc:
        raise ShardFormatError(f"{shard}: tar ends early (truncated); re-download or rebuild the shard") from exc
    if key is not None:
        yield key, members


def _checked_name(info: tarfile.TarInfo, shard: str) -> tuple[str, str]:
    if not info.isfile():
        raise ShardFormatError(f"{shard}: member {info.name!r} is not a regular file")
    if "/" in info.name or "\\" in info.name or info.name.startswith("."):
        raise ShardFormatError(f"{shard}: member name {info.name!r} holds a path; only flat keys are allowed")
    key, ext = split_member_name(info.name)
    try:
        check_key(key)
    except ShardFormatError as exc:
        raise ShardFormatError(f"{shard}: {exc}") from None
    return key, ext
