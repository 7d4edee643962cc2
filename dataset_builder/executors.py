"""Tool executors: the same tool specs executed in caption space (synthesis) and video space (agent, grounding).

Caption space returns text only: CaptionZoom and SpatialZoom return captions of frames. Video space
returns frames for FrameZoom (and CaptionZoom, which grounds to FrameZoom) and the crop for SpatialZoom.
Text tools (retrieval, subtitles) behave the same in both spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder import video
from dataset_builder.backends import ChatBackend
from dataset_builder.embedder import TextEmbedder
from dataset_builder.subtitles import in_interval
from dataset_builder.tools import get_tool
from dataset_builder.video_index import VideoIndex

CAPTION_PROMPT = ("Describe in detail what is visible in these frames from {start:.1f}s to {end:.1f}s of a video: "
                  "people, objects, actions, text on screen, scene changes.")
CROP_PROMPT = "Describe in detail this region of a frame at {time:.1f}s: objects, text, people, colors."
SUMMARY_PROMPT = "Summarize these subtitles, focusing on what is relevant to: {query}\n\n{subtitles}"


@dataclass
class Observation:
    text: str = ""
    frames: list[video.Frame] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    crop_box: list[int] | None = None


@dataclass
class Services:
    captioner: ChatBackend
    summarizer: ChatBackend
    embedder: TextEmbedder
    caption_frames: int = 8
    zoom_frames: int = 8
    max_pixels: int = 448 * 448
    max_tokens: int = 256


def caption_interval(services: Services, index: VideoIndex, start: float, end: float, n: int) -> str:
    frames = video.sample_uniform(Path(index.path), start, end, n, max_pixels=services.max_pixels)
    return caption_frames(services, frames, start, end)


def caption_clips(services: Services, index: VideoIndex, n: int, batch: int = 32) -> list[str]:
    """Captions of every clip; frames are decoded in one pass per batch of clips (bounded memory)."""
    captions: list[str] = []
    for first in range(0, len(index.clips), batch):
        clips = index.clips[first:first + batch]
        times = [video.uniform_timestamps(a, b, n) for a, b in clips]
        frames = video.frames_at(Path(index.path), [t for ts in times for t in ts], max_pixels=services.max_pixels)
        for k, (a, b) in enumerate(clips):
            captions.append(caption_frames(services, frames[k * n:(k + 1) * n], a, b))
    return captions


def caption_frames(services: Services, frames: list[video.Frame], start: float, end: float) -> str:
    images = [video.encode_image(f.image) for f in frames]
    prompt = CAPTION_PROMPT.format(start=start, end=end)
    reply = services.captioner.chat([{"role": "user", "content": prompt}], images=images,
                                    max_tokens=services.max_tokens)
    return reply.content.strip()


def pixel_box(box: list[float], width: int, height: int) -> list[int]:
    x0, y0, x1, y1 = box
    return [round(x0 * width), round(y0 * height), max(round(x1 * width), round(x0 * width) + 1),
            max(round(y1 * height), round(y0 * height) + 1)]


class TextTools:
    """The tools whose result is text in both spaces."""

    def __init__(self, index: VideoIndex, services: Services):
        self.index = index
        self.services = services

    def ClipRetrieval(self, query: str, top_k: int = 5) -> Observation:  # noqa: N802 - tool names
        hits = self.services.embedder.top_k(query, self.index.clip_captions, top_k)
        lines = [f"{rank + 1}. [{self.index.clips[i][0]:.1f}s, {self.index.clips[i][1]:.1f}s] (score {s:.2f})"
                 for rank, (i, s) in enumerate(hits)]
        return Observation(text="Most relevant clips:\n" + "\n".join(lines) if lines else "No clips.")

    def SubtitleRetrieval(self, query: str, top_k: int = 5) -> Observation:  # noqa: N802
        subs = self.index.subtitles
        hits = self.services.embedder.top_k(query, [s.text for s in subs], top_k)
        if not hits:
            return Observation(text="This video has no subtitles.")
        return Observation(text="\n".join(subs[i].render() for i, _ in sorted(hits)))

    def SubtitleZoom(self, interval: list[float]) -> Observation:  # noqa: N802
        lines = in_interval(self.index.subtitles, *interval)
        return Observation(text="\n".join(s.render() for s in lines) or "No subtitles in this interval.")

    def SubtitleSummary(self, query: str) -> Observation:  # noqa: N802
        if not self.index.subtitles:
            return Observation(text="This video has no subtitles.")
        text = "\n".join(s.render() for s in self.index.subtitles)[:20000]
        reply = self.services.summarizer.chat([{"role": "user", "content": SUMMARY_PROMPT.format(
            query=query, subtitles=text)}], max_tokens=self.services.max_tokens)
        return Observation(text=reply.content.strip())


class CaptionSpaceTools(TextTools):
    """Execution during synthesis: the teacher sees text only."""

    def CaptionZoom(self, interval: list[float]) -> Observation:  # noqa: N802
        start, end = interval
        return Observation(text=caption_interval(self.services, self.index, start, end,
                                                 self.services.caption_frames))

    def SpatialZoom(self, time: float, box: list[float]) -> Observation:  # noqa: N802
        frame = video.frames_at(Path(self.index.path), [time])[0]
        region = video.crop(frame.image, pixel_box(box, frame.image.width, frame.image.height))
        region = video.resize_to_budget(region, self.services.max_pixels)
        reply = self.services.captioner.chat([{"role": "user", "content": CROP_PROMPT.format(time=time)}],
                                             images=[video.encode_image(region)],
                                             max_tokens=self.services.max_tokens)
        return Observation(text=reply.content.strip())


class VideoSpaceTools(TextTools):
    """Execution on the real video: frames where the teacher had captions."""

    def FrameZoom(self, interval: list[float]) -> Observation:  # noqa: N802
        start, end = interval
        times = video.uniform_timestamps(start, end, self.services.zoom_frames)
        frames = video.frames_at(Path(self.index.path), times, max_pixels=self.services.max_pixels)
        return Observation(frames=frames, timestamps=times)

    CaptionZoom = FrameZoom  # grounding: a caption of an interval becomes its frames

    def SpatialZoom(self, time: float, box: list[float]) -> Observation:  # noqa: N802
        frame = video.frames_at(Path(self.index.path), [time])[0]
        pixels = pixel_box(box, frame.image.width, frame.image.height)
        region = video.resize_to_budget(video.crop(frame.image, pixels), self.services.max_pixels)
        return Observation(frames=[video.Frame(timestamp_s=time, pts_s=frame.pts_s, image=region)],
                           timestamps=[time], crop_box=pixels)


def execute(tools: TextTools, name: str, arguments: dict[str, Any]) -> Observation:
    """Validate the arguments against the tool's spec, then run it (raises ToolArgumentError)."""
    args = get_tool(name).validate(arguments)
    method = getattr(tools, name, None)
    if method is None:
        from dataset_builder.tools import ToolArgumentError

        raise ToolArgumentError(f"{name} is not available here")
    _check_times(tools.index, name, args)
    return method(**args)


def _check_times(index: VideoIndex, name: str, args: dict[str, Any]) -> None:
    from dataset_builder.tools import ToolArgumentError

    if "interval" in args and args["interval"][1] > index.duration_s + 0.5:
        raise ToolArgumentError(f"{name}: interval ends after the video ({index.duration_s:.1f}s)")
    if "time" in args and args["time"] > index.duration_s:
        raise ToolArgumentError(f"{name}: time {args['time']}s is after the end of the video ({index.duration_s:.1f}s)")
