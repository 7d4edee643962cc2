"""The sample every reader yields: the typed record plus its frames, kept as bytes until decoded."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

from validation.record import TrajectoryRecord
from validation.shards import FRAMES_MEMBER, RECORD_MEMBER, ShardFormatError, load_json_bytes, unpack_frames


@dataclass
class Sample:
    key: str
    record: TrajectoryRecord
    frames: list[bytes]
    shard: str = ""
    _images: list[Image.Image] | None = field(default=None, repr=False)

    def images(self) -> list[Image.Image]:
        """Frames decoded to RGB PIL images (cached)."""
        if self._images is None:
            self._images = [decode_frame(f, where=f"{self.shard}:{self.key}") for f in self.frames]
        return self._images

    @classmethod
    def from_members(cls, key: str, members: dict[str, bytes], shard: str = "") -> Sample:
        """Build a sample from raw tar members; only the allowlisted members are decoded."""
        where = f"{shard}: sample {key!r}"
        unknown = sorted(set(members) - {RECORD_MEMBER, FRAMES_MEMBER})
        if unknown:
            raise ShardFormatError(f"{where}: unexpected members {unknown} (only .json and .frames.msg are read)")
        missing = [m for m in (RECORD_MEMBER, FRAMES_MEMBER) if m not in members]
        if missing:
            raise ShardFormatError(f"{where}: missing members {missing}")
        try:
            record = TrajectoryRecord.model_validate(load_json_bytes(members[RECORD_MEMBER], where=where))
        except ValueError as exc:
            if isinstance(exc, ShardFormatError):
                raise
            raise ShardFormatError(f"{where}: record does not match the schema: {_first_line(exc)}") from exc
        frames = unpack_frames(members[FRAMES_MEMBER], where=where)
        if record.id != key:
            raise ShardFormatError(f"{where}: record id {record.id!r} differs from its key")
        return cls(key=key, record=record, frames=frames, shard=shard)


def decode_frame(data: bytes, where: str = "") -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except Exception as exc:  # PIL raises many types on corrupt data
        raise ShardFormatError(f"{where}: a frame does not decode as an image ({exc})") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[:3]) if text else type(exc).__name__
