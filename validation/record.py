"""The trajectory record: the one typed definition of a VideoThinker sample.

The writer, the validator, the loaders and the SFT collators all use these models; the JSON Schema
in ``validation/schemas/`` is generated from them (``python -m validation.schema``) and versioned by
``SCHEMA_VERSION``. Frames are stored next to the record (``{key}.frames.msg``) and referenced from
messages by index.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
KEY_PATTERN = r"^[A-Za-z0-9_-]+$"
KEY_RE = re.compile(KEY_PATTERN)

# Tools whose video-space observation is frames (grounded tool turns hold no caption text).
FRAME_TOOLS = frozenset({"FrameZoom", "SpatialZoom"})
# Tools that only exist in caption space; a grounded record never calls them.
CAPTION_ONLY_TOOLS = frozenset({"CaptionZoom"})
ANSWER_TOOL = "Answer"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class VideoInfo(_Model):
    id: str
    source: str = Field(description="Where the video came from: a path relative to the videos folder or a URL.")
    duration_s: float = Field(ge=0)
    fps: float = Field(ge=0, description="Average frame rate.")
    width: int = Field(ge=1, description="Display width (after rotation).")
    height: int = Field(ge=1, description="Display height (after rotation).")
    start_time_s: float = Field(default=0.0, description="Container start time of the source file.")
    license: str = "unknown"


class TextPart(_Model):
    type: Literal["text"] = "text"
    text: str


class ImagePart(_Model):
    type: Literal["image"] = "image"
    frame: int = Field(ge=0, description="Index into the sample's frames.")


class VideoPart(_Model):
    type: Literal["video"] = "video"
    frames: list[int] = Field(min_length=1, description="Indices into the sample's frames, in time order.")
    timestamps: list[float] = Field(min_length=1, description="Seconds in the source video, one per frame.")


ContentPart = Annotated[TextPart | ImagePart | VideoPart, Field(discriminator="type")]


class FunctionCall(_Model):
    name: str
    arguments: dict[str, Any]


class ToolCall(_Model):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Model):
    role: Literal["system", "user", "assistant", "tool"]
    content: list[ContentPart] = Field(default_factory=list)
    reasoning: str | None = Field(default=None, description="The assistant's thinking before its action.")
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = Field(default=None, description="For tool turns: the tool's name.")

    def text(self) -> str:
        """All text parts joined, in order."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class FunctionSpec(_Model):
    name: str
    description: str
    parameters: dict[str, Any]


class ToolSpecRecord(_Model):
    """A tool in OpenAI function format, as passed to chat templates (``tools=``)."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class FrameInfo(_Model):
    timestamp_s: float = Field(ge=0, description="Presentation time in the source video, from its start.")
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    crop: list[int] | None = Field(
        default=None, min_length=4, max_length=4, description="[x0, y0, x1, y1] in source display pixels."
    )
    tool_call_id: str | None = Field(default=None, description="The tool call this frame answers; None: initial.")


class Provenance(_Model):
    models: dict[str, str] = Field(default_factory=dict)
    prompt_hashes: dict[str, str] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=list)
    package_version: str = ""
    preset: str = ""
    space: Literal["video", "caption"] = "video"
    kept_because: Literal["correct", "all_wrong_fallback", "fixture", "generated"] = "correct"
    question_source: str = ""
    created_at: str = ""


class TrajectoryRecord(_Model):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    id: str = Field(pattern=KEY_PATTERN)
    video: VideoInfo
    question: str
    options: list[str] = Field(min_length=2)
    answer: str = Field(description="The gold option letter, 'A' for options[0].")
    messages: list[Message] = Field(min_length=2)
    tools: list[ToolSpecRecord] = Field(default_factory=list)
    frames: list[FrameInfo] = Field(default_factory=list)
    provenance: Provenance = Field(default_factory=Provenance)
    stats: dict[str, Any] = Field(default_factory=dict)

    def tool_calls(self) -> list[ToolCall]:
        return [c for m in self.messages if m.role == "assistant" for c in (m.tool_calls or [])]

    def to_json(self) -> str:
        """The stored form: floats canonicalized (see ``canonical_floats``), keys in field order."""
        return json.dumps(canonical_floats(self.model_dump(mode="json")), ensure_ascii=False,
                          separators=(",", ":"))

    def canonical(self) -> TrajectoryRecord:
        """This record exactly as every reader will return it after a write."""
        return TrajectoryRecord.model_validate(canonical_floats(self.model_dump(mode="json")))

    @classmethod
    def from_json(cls, data: str | bytes) -> TrajectoryRecord:
        return cls.model_validate_json(data)


def canonical_floats(value: Any) -> Any:
    """Replace each float by the value `datasets`' ``Json`` feature returns for it.

    ``datasets`` stores Json columns with pandas' ujson, which writes 10 significant digits and parses
    imprecisely (0.6 comes back as 0.6000000000000001). Storing the fixed point of that round trip
    makes ``load_dataset`` and the webdataset reader return bit-identical records.
    """
    if isinstance(value, float):
        return _json_feature_round_trip(value)
    if isinstance(value, dict):
        return {k: canonical_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical_floats(v) for v in value]
    return value


@functools.lru_cache(maxsize=65536)
def _json_feature_round_trip(x: float) -> float:
    if not math.isfinite(x):
        return x
    from pandas.io.json import ujson_dumps, ujson_loads  # what datasets.utils.json calls

    y = float(ujson_loads(ujson_dumps(x)))
    return y if float(ujson_loads(ujson_dumps(y))) == y else x


def option_letter(index: int) -> str:
    return chr(ord("A") + index)


def letter_index(letter: str) -> int:
    return ord(letter.strip().upper()[:1] or "?") - ord("A")
