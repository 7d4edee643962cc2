"""Sample -> ``{"messages", "images", "videos", "tools"}``: the chat form the SFT collators render.

Messages follow the Hugging Face multimodal chat convention: content parts ``{"type": "text"}``,
``{"type": "image"}`` and ``{"type": "video"}`` appear in order, and the i-th image/video part of the
conversation is ``images[i]`` / ``videos[i]``. Each video is its frames with their real timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from loaders.sample import Sample
from validation.record import ImagePart, Message, TextPart, VideoPart


@dataclass
class VideoClip:
    frames: list[Image.Image]
    timestamps: list[float]


def to_chat(sample: Sample) -> dict[str, Any]:
    images = sample.images()
    out_images: list[Image.Image] = []
    out_videos: list[VideoClip] = []
    messages = [_message(m, images, out_images, out_videos) for m in sample.record.messages]
    return {
        "messages": messages,
        "images": out_images,
        "videos": out_videos,
        "tools": [t.model_dump() for t in sample.record.tools],
        "id": sample.key,
    }


def _message(msg: Message, images: list[Image.Image], out_images: list, out_videos: list) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for part in msg.content:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            out_images.append(images[part.frame])
            content.append({"type": "image"})
        elif isinstance(part, VideoPart):
            out_videos.append(VideoClip([images[i] for i in part.frames], list(part.timestamps)))
            content.append({"type": "video"})
    out: dict[str, Any] = {"role": msg.role, "content": content}
    if msg.reasoning:
        out["reasoning_content"] = msg.reasoning
    if msg.tool_calls:
        out["tool_calls"] = [c.model_dump() for c in msg.tool_calls]
    if msg.tool_call_id:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name:
        out["name"] = msg.name
    return out
