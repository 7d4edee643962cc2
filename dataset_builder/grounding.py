"""Ground a caption-space episode back to video: captions become the frames they described.

The global caption becomes N frames sampled uniformly over the whole video in the first user turn;
each CaptionZoom observation becomes the FrameZoom frames of the same interval (the call is renamed
FrameZoom, its interval unchanged); each SpatialZoom caption becomes the crop; text tools keep their
text. Reasoning and calls stay as the teacher wrote them. The frame budget is met by thinning the
initial frames first; a sample that still does not fit is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataset_builder import video
from dataset_builder.episodes import Episode, question_prompt
from dataset_builder.executors import Services, VideoSpaceTools
from dataset_builder.questions import Question
from dataset_builder.tools import CAPTION_ZOOM, FRAME_ZOOM, tool_specs
from dataset_builder.video_index import VideoIndex
from validation.record import (
    FrameInfo,
    FunctionCall,
    ImagePart,
    Message,
    Provenance,
    TextPart,
    ToolCall,
    TrajectoryRecord,
    VideoInfo,
    VideoPart,
)
from validation.version import package_version

STUDENT_SYSTEM = (
    "You answer a multiple-choice question about a long video. You see frames sampled from it and can call "
    "tools to retrieve clips, read subtitles and zoom into intervals or regions. Think inside <think></think>, "
    "call one tool per turn, and call Answer with the option letter when you are sure."
)
MIN_INITIAL_FRAMES = 4


class GroundingError(ValueError):
    """A trajectory that cannot be grounded within the budget; counted as a drop reason."""


class _Frames:
    def __init__(self, encode: dict[str, Any]):
        self.blobs: list[bytes] = []
        self.infos: list[FrameInfo] = []
        self.encode = encode

    def add(self, frame: video.Frame, call_id: str | None, crop: list[int] | None = None) -> int:
        self.blobs.append(video.encode_image(frame.image, **self.encode))
        self.infos.append(FrameInfo(timestamp_s=round(frame.timestamp_s, 3), width=frame.image.width,
                                    height=frame.image.height, crop=crop, tool_call_id=call_id))
        return len(self.blobs) - 1

    def video_part(self, frames: list[video.Frame], call_id: str | None) -> VideoPart:
        indices = [self.add(f, call_id) for f in frames]
        return VideoPart(frames=indices, timestamps=[self.infos[i].timestamp_s for i in indices])


def frame_cost(episode: Episode, zoom_frames: int) -> int:
    """Frames the tool turns of a grounded episode will hold."""
    names = [c["function"]["name"] for m in episode.messages for c in m.get("tool_calls") or []]
    return sum(zoom_frames if n in (CAPTION_ZOOM.name, FRAME_ZOOM.name) else 1 if n == "SpatialZoom" else 0
               for n in names)


def initial_frame_count(episode: Episode, initial: int, zoom: int, max_frames: int) -> int:
    room = max_frames - frame_cost(episode, zoom)
    if room < MIN_INITIAL_FRAMES:
        raise GroundingError("over_frame_budget")
    return min(initial, room)


def ground(q: Question, episode: Episode, kept_because: str, index: VideoIndex, services: Services, *,
           initial_frames: int, max_frames: int, provenance: dict[str, Any], encode: dict[str, Any],
           license: str) -> tuple[TrajectoryRecord, list[bytes]]:
    tools = VideoSpaceTools(index, services)
    bag = _Frames(encode)
    n_initial = initial_frame_count(episode, initial_frames, services.zoom_frames, max_frames)
    times = video.uniform_timestamps(0.0, index.duration_s, n_initial)
    initial = video.frames_at(Path(index.path), times, max_pixels=services.max_pixels)
    messages = [
        Message(role="system", content=[TextPart(text=STUDENT_SYSTEM)]),
        Message(role="user", content=[bag.video_part(initial, None),
                                      TextPart(text=question_prompt(q, global_caption=None))]),
    ]
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for turn in episode.messages[2:]:
        if turn["role"] == "assistant":
            messages.append(_assistant(turn, calls))
        elif turn["role"] == "tool":
            messages.append(_observation(turn, calls[turn["tool_call_id"]], tools, bag))
    record = TrajectoryRecord(
        id=f"{q.key}-s{episode.sample}",
        video=VideoInfo(id=index.video_id, source=index.path, duration_s=round(index.duration_s, 3),
                        fps=round(index.fps, 3), width=index.width, height=index.height,
                        start_time_s=round(index.start_time_s, 3), license=license),
        question=q.question, options=q.options, answer=q.answer, messages=messages,
        tools=tool_specs(), frames=bag.infos,
        provenance=Provenance(**provenance, seeds=[episode.seed], package_version=package_version(),
                              space="video", kept_because=kept_because, question_source=q.source),
        stats={"steps": episode.steps, "tool_calls": len(calls), "frames": len(bag.blobs)},
    )
    return record, bag.blobs


def _assistant(turn: dict[str, Any], calls: dict[str, tuple[str, dict[str, Any]]]) -> Message:
    tool_calls = []
    for call in turn.get("tool_calls") or []:
        name = call["function"]["name"]
        name = FRAME_ZOOM.name if name == CAPTION_ZOOM.name else name
        arguments = call["function"]["arguments"]
        calls[call["id"]] = (name, arguments)
        tool_calls.append(ToolCall(id=call["id"], function=FunctionCall(name=name, arguments=arguments)))
    content = [TextPart(text=turn["content"])] if turn.get("content") else []
    return Message(role="assistant", content=content, reasoning=turn.get("reasoning") or None,
                   tool_calls=tool_calls or None)


def _observation(turn: dict[str, Any], call: tuple[str, dict[str, Any]], tools: VideoSpaceTools,
                 bag: _Frames) -> Message:
    call_id = turn["tool_call_id"]
    name, arguments = call
    message = Message(role="tool", tool_call_id=call_id, name=name)
    if name == FRAME_ZOOM.name:
        observation = tools.FrameZoom(**arguments)
        message.content = [bag.video_part(observation.frames, call_id)]
    elif name == "SpatialZoom":
        observation = tools.SpatialZoom(**arguments)
        message.content = [ImagePart(frame=bag.add(observation.frames[0], call_id, crop=observation.crop_box))]
    else:
        message.content = [TextPart(text=turn["content"])]
    return message
