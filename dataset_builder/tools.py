"""The VideoThinker tools: one spec per tool, in OpenAI function format, with argument validation.

Synthesis (caption space), grounding, the chat templates' ``tools=`` argument and the inference agent
all read these specs. Executors (what a tool returns in caption space and in video space) live with
the builder and the agent; this module only says what each tool is and what arguments it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jsonschema

from validation.record import FunctionSpec, ToolSpecRecord

_INTERVAL = {
    "type": "array",
    "items": {"type": "number", "minimum": 0},
    "minItems": 2,
    "maxItems": 2,
    "description": "[start, end] in seconds from the start of the video, start < end.",
}
_QUERY = {"type": "string", "minLength": 1, "description": "What to look for, in natural language."}
_TOP_K = {"type": "integer", "minimum": 1, "maximum": 20, "default": 5, "description": "How many results."}


class ToolArgumentError(ValueError):
    """Arguments that do not fit a tool's spec; the message says which argument and why."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    # What the video-space execution returns: text, or frames (images/video for the model to look at).
    returns: Literal["text", "frames"] = "text"
    # Tools that exist only while the teacher works on captions.
    caption_space_only: bool = False

    def spec(self) -> ToolSpecRecord:
        return ToolSpecRecord(function=FunctionSpec(name=self.name, description=self.description,
                                                    parameters=self.parameters))

    def openai(self) -> dict[str, Any]:
        return self.spec().model_dump()

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Return the arguments (with defaults filled) or raise ToolArgumentError with a useful message."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object, got {type(arguments).__name__}")
        validator = jsonschema.Draft202012Validator(self.parameters)
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "arguments"
            raise ToolArgumentError(f"{self.name}: {where}: {error.message}")
        interval = arguments.get("interval")
        if interval is not None and interval[0] >= interval[1]:
            raise ToolArgumentError(f"{self.name}: interval [{interval[0]}, {interval[1]}] must have start < end")
        box = arguments.get("box")
        if box is not None and not (box[0] < box[2] and box[1] < box[3]):
            raise ToolArgumentError(f"{self.name}: box {box} must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        defaults = {k: v["default"] for k, v in self.parameters["properties"].items() if "default" in v}
        return {**defaults, **arguments}


def _params(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


CLIP_RETRIEVAL = Tool(
    "ClipRetrieval",
    "Find the 10-second clips of the video that best match a text query. Returns their time intervals, "
    "most similar first. Use it to locate where something happens before zooming in.",
    _params(["query"], query=_QUERY, top_k=_TOP_K),
)
SUBTITLE_RETRIEVAL = Tool(
    "SubtitleRetrieval",
    "Find the subtitle lines most relevant to a query. Returns each line with its time interval.",
    _params(["query"], query=_QUERY, top_k=_TOP_K),
)
SUBTITLE_SUMMARY = Tool(
    "SubtitleSummary",
    "Summarize the whole subtitle track with a focus on the query. Returns a short text.",
    _params(["query"], query=_QUERY),
)
FRAME_ZOOM = Tool(
    "FrameZoom",
    "Look closely at a time interval: returns frames sampled uniformly inside [start, end] seconds.",
    _params(["interval"], interval=_INTERVAL),
    returns="frames",
)
SUBTITLE_ZOOM = Tool(
    "SubtitleZoom",
    "Read the subtitles spoken inside [start, end] seconds, with their timestamps.",
    _params(["interval"], interval=_INTERVAL),
)
CAPTION_ZOOM = Tool(
    "CaptionZoom",
    "Get a detailed description of what is visible inside [start, end] seconds.",
    _params(["interval"], interval=_INTERVAL),
    caption_space_only=True,
)
SPATIAL_ZOOM = Tool(
    "SpatialZoom",
    "Look at a region of the frame shown at a given time, at higher resolution. The box is "
    "[x0, y0, x1, y1] as fractions of the frame width and height (0..1).",
    _params(
        ["time", "box"],
        time={"type": "number", "minimum": 0, "description": "Seconds from the start of the video."},
        box={"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 4,
             "maxItems": 4, "description": "[x0, y0, x1, y1], fractions of width and height."},
    ),
    returns="frames",
)
ANSWER = Tool(
    "Answer",
    "Give the final answer: the letter of the chosen option. This ends the episode.",
    _params(["answer"], answer={"type": "string", "pattern": "^[A-Z]$", "description": "Option letter."}),
)

ALL_TOOLS: tuple[Tool, ...] = (
    CLIP_RETRIEVAL, SUBTITLE_RETRIEVAL, SUBTITLE_SUMMARY, FRAME_ZOOM, SUBTITLE_ZOOM, CAPTION_ZOOM,
    SPATIAL_ZOOM, ANSWER,
)
TOOLS_BY_NAME: dict[str, Tool] = {t.name: t for t in ALL_TOOLS}
CAPTION_SPACE_TOOLS = tuple(t for t in ALL_TOOLS if t.name != FRAME_ZOOM.name)
VIDEO_SPACE_TOOLS = tuple(t for t in ALL_TOOLS if not t.caption_space_only)


def get_tool(name: str) -> Tool:
    try:
        return TOOLS_BY_NAME[name]
    except KeyError:
        raise ToolArgumentError(f"unknown tool {name!r}; known tools: {', '.join(TOOLS_BY_NAME)}") from None


def tool_specs(tools: tuple[Tool, ...] = VIDEO_SPACE_TOOLS) -> list[ToolSpecRecord]:
    return [t.spec() for t in tools]
