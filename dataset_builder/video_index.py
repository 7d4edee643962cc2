"""What the builder knows about one video: probe, clips, captions, subtitles; cached per file content."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder.subtitles import SubtitleLine


@dataclass
class VideoIndex:
    video_id: str
    path: str
    fingerprint: str
    duration_s: float
    fps: float
    width: int
    height: int
    start_time_s: float
    clips: list[list[float]] = field(default_factory=list)
    clip_captions: list[str] = field(default_factory=list)
    global_caption: str = ""
    subtitles: list[SubtitleLine] = field(default_factory=list)
    subtitle_source: str = "none"  # sidecar | asr | none

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoIndex:
        subs = [SubtitleLine(**s) for s in data.get("subtitles", [])]
        return cls(**{**data, "subtitles": subs})


def segment(duration_s: float, clip_seconds: float) -> list[list[float]]:
    """Consecutive clips of ``clip_seconds`` covering [0, duration]; the last one may be shorter."""
    clips, start = [], 0.0
    while start < duration_s - 1e-6:
        end = min(duration_s, start + clip_seconds)
        clips.append([round(start, 3), round(end, 3)])
        start = end
    return clips


def fingerprint(path: Path, chunk: int = 4 << 20) -> str:
    """A content hash of the file's size, head and tail: cheap on hour-long videos, changes with the file."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(chunk))
        if size > chunk:
            fh.seek(max(chunk, size - chunk))
            digest.update(fh.read(chunk))
    return digest.hexdigest()[:32]
