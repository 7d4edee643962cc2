"""Speech to timestamped subtitles for videos without a sidecar file (Whisper through transformers)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from dataset_builder.subtitles import SubtitleLine

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000


def decode_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """The first audio stream as mono float32 at ``sample_rate``; None when the file has no audio."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = [r.to_ndarray().reshape(-1) for frame in container.decode(stream) for r in resampler.resample(frame)]
        chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def _pipeline(model: str):
    from transformers import pipeline

    from dataset_builder.tiny_models import resolve_model

    return pipeline("automatic-speech-recognition", model=resolve_model(model), chunk_length_s=30)


def transcribe(path: Path, model: str) -> list[SubtitleLine]:
    """Timestamped lines of speech; an empty list for silent videos or videos without audio."""
    audio = decode_audio(path)
    if audio is None or not audio.size or float(np.abs(audio).max()) < 1e-4:
        return []
    result = _pipeline(model)({"raw": audio, "sampling_rate": SAMPLE_RATE}, return_timestamps=True)
    lines = []
    for chunk in result.get("chunks", []):
        start, end = chunk.get("timestamp", (None, None))
        text = chunk.get("text", "").strip()
        if text and start is not None:
            lines.append(SubtitleLine(float(start), float(end if end is not None else start), text))
    return lines
