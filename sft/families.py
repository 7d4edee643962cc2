"""Model families the SFT recipe renders for: vision geometry, token counts, clip text and processor inputs.

A family says, BEFORE the processor runs (so budgets can be checked first), how large each frame will be and
how many vision tokens images and clips cost; how a clip's real timestamps reach the model; which template,
turn tokens and placeholder tokens it uses; and how a batch is handed to its processor.

- Qwen2.5-VL encodes time in mRoPE through ``second_per_grid_ts`` (one rate per clip, from the mean frame
  spacing); Qwen3-VL writes ``<t seconds>`` text before each temporal patch, computed by the processor from
  ``video_metadata`` (``frames_indices / fps``), so real timestamps go in at millisecond precision.
- SmolVLM2 takes a video as its frames, one image tile each, after the text SmolVLM's processor writes for a
  video ("You are provided the following series of N frames ...", then "Frame from MM:SS:" per frame). The
  renderer writes that text itself from the REAL timestamps (the processor's own video path cannot share a
  batch with images: both fill ``pixel_values``), so the model sees exactly what its video path produces.
- LLaVA-OneVision encodes no time, so each frame's timestamp is written as text before it. Its video path
  (2x2-pooled tokens) stacks the clips of a batch into one tensor, so clips of different lengths cannot share
  a batch: every frame goes in as a one-frame video (the same pooled tokens, plus one newline token per
  frame). Crops go in as images (anyres for a sample's only image, the base tile when it has several).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from sft.labels import TurnTokens

QWEN3_TIME_FPS = 1000.0  # frames_indices = round(t * 1000): timestamps exact to the millisecond


class UnknownFamilyError(ValueError):
    """A model whose family has no renderer; the message lists the supported ones."""


def fit_size(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Sides rounded to multiples of ``factor`` with the area in [min_pixels, max_pixels] (Qwen smart_resize)."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


@dataclass(frozen=True)
class Family:
    """The Qwen-VL behaviour; other families override what differs."""

    name: str
    patch: int
    merge: int = 2
    temporal: int = 2
    timestamps_in_text: bool = False

    template: ClassVar[str] = "qwen_vl_tools.jinja"
    expands_clips: ClassVar[bool] = False  # True: the renderer writes each clip's text (``clip_text``)
    video_placeholder: ClassVar[str] = "<|video_pad|>"
    placeholders: ClassVar[tuple[str, ...]] = ("<|image_pad|>", "<|video_pad|>")  # expanded by the processor
    never_labelled: ClassVar[tuple[str, ...]] = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                                                 "<|video_pad|>", "<|vision_pad|>")

    def configure(self, processor: Any) -> Family:
        """This family with the sizes of a given checkpoint (tile sizes, tokens per tile) read from its processor."""
        return self

    # ------------------------------------------------------------------ geometry and token counts
    @property
    def factor(self) -> int:
        """Frame sides must be multiples of this (one merged vision token covers factor x factor pixels)."""
        return self.patch * self.merge

    @property
    def min_pixels(self) -> int:
        return 4 * self.factor ** 2

    def frame_size(self, height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        """The size a video frame is resized to (the processor then keeps it)."""
        return fit_size(height, width, self.factor, min_pixels, max_pixels)

    def image_size(self, height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        return fit_size(height, width, self.factor, min_pixels, max_pixels)

    def image_tokens(self, height: int, width: int) -> int:
        return (height // self.factor) * (width // self.factor)

    def images_tokens(self, sizes: list[tuple[int, int]]) -> int:
        """Vision tokens of all the images of one sample (some families depend on how many there are)."""
        return sum(self.image_tokens(h, w) for h, w in sizes)

    def video_groups(self, n_frames: int) -> int:
        return math.ceil(n_frames / self.temporal)

    def video_tokens(self, n_frames: int, height: int, width: int) -> int:
        """Tokens the processor puts in place of one clip, except text (``processor_texts``)."""
        tokens = self.video_groups(n_frames) * self.image_tokens(height, width)
        return tokens + (2 * self.video_groups(n_frames) if self.timestamps_in_text else 0)

    def processor_texts(self, timestamps: list[float]) -> list[str]:
        """Text the PROCESSOR inserts for a clip (Qwen3-VL: ``<t seconds>`` per temporal patch)."""
        if not self.timestamps_in_text:
            return []
        secs = [round(t * QWEN3_TIME_FPS) / QWEN3_TIME_FPS for t in timestamps]
        secs += [secs[-1]] * (-len(secs) % self.temporal)
        groups = [secs[i:i + self.temporal] for i in range(0, len(secs), self.temporal)]
        return [f"<{(g[0] + g[-1]) / 2:.1f} seconds>" for g in groups]

    def clip_text(self, timestamps: list[float], duration: float | None) -> str:
        """Text the RENDERER writes in place of a clip's placeholder (families with ``expands_clips``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ rendering
    def turn_tokens(self, tokenizer: Any) -> TurnTokens:
        return TurnTokens.chatml(tokenizer, self.never_labelled)

    def video_metadata(self, timestamps: list[float]) -> dict[str, Any]:
        """The ``video_metadata`` entry that makes the processor see these real timestamps."""
        n = len(timestamps)
        if self.timestamps_in_text:
            indices = [round(t * QWEN3_TIME_FPS) for t in timestamps]
            return {"total_num_frames": max(indices) + 1, "fps": QWEN3_TIME_FPS, "frames_indices": indices}
        span = timestamps[-1] - timestamps[0] if n > 1 else 0.0
        fps = (n - 1) / span if span > 0 else 1.0
        return {"total_num_frames": n, "fps": fps, "frames_indices": list(range(n))}

    def visuals(self, chat: dict[str, Any]) -> tuple[list[Any], list[list[Any]], list[dict[str, Any]]]:
        """(images, videos, video metadata) of a budgeted chat, as this family's processor takes them."""
        clips = [self._pad_clip(v.frames, v.timestamps) for v in chat["videos"]]
        return chat["images"], [f for f, _ in clips], [self.video_metadata(t) for _, t in clips]

    def _pad_clip(self, frames: list[Any], timestamps: list[float]) -> tuple[list[Any], list[float]]:
        """Qwen3-VL rejects clips shorter than one temporal patch: repeat the last frame (same tokens)."""
        short = self.temporal - len(frames) if self.timestamps_in_text else 0
        if short <= 0:
            return frames, timestamps
        return frames + [frames[-1]] * short, timestamps + [timestamps[-1]] * short

    def processor_inputs(self, prepared: list[Any]) -> dict[str, Any]:
        """Keyword arguments of the processor call for a batch of ``Prepared`` samples (besides the text)."""
        images = [im for p in prepared for im in p.images]
        videos = [v for p in prepared for v in p.videos]
        kwargs: dict[str, Any] = {"images": images or None, "images_kwargs": {"size": _KEEP_SIZE}}
        if videos:
            kwargs["videos"] = videos
            kwargs["video_metadata"] = [m for p in prepared for m in p.metadata]
            kwargs["videos_kwargs"] = {"size": _KEEP_SIZE, "do_sample_frames": False}
        return kwargs


# Passed at call time so the Qwen processors keep our sizes (we resized already) and our frames (no sampling).
_KEEP_SIZE = {"shortest_edge": 1, "longest_edge": 1 << 40}


@dataclass(frozen=True)
class SmolVLMFamily(Family):
    """SmolVLM2: every frame and crop is ONE square tile (image splitting off, as SmolVLM2 does for video)."""

    tile: int = 512
    tile_tokens: int = 64  # image_seq_len

    template: ClassVar[str] = "smolvlm_tools.jinja"
    expands_clips: ClassVar[bool] = True
    video_placeholder: ClassVar[str] = "<video>"
    placeholders: ClassVar[tuple[str, ...]] = ("<image>",)
    never_labelled: ClassVar[tuple[str, ...]] = ("<image>", "<fake_token_around_image>", "<global-img>",
                                                 *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)))

    def configure(self, processor: Any) -> Family:
        return dataclasses.replace(self, tile=processor.image_processor.max_image_size["longest_edge"],
                                   tile_tokens=processor.image_seq_len)

    @property
    def factor(self) -> int:
        return self.tile

    @property
    def min_pixels(self) -> int:
        return self.tile ** 2

    def frame_size(self, height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        return self.tile, self.tile  # what the processor makes of any frame: one square tile

    image_size = frame_size

    def image_tokens(self, height: int, width: int) -> int:
        return self.tile_tokens + 3  # <fake_token_around_image><global-img><image>*n<fake_token_around_image>

    def video_tokens(self, n_frames: int, height: int, width: int) -> int:
        return n_frames * self.image_tokens(height, width)

    def processor_texts(self, timestamps: list[float]) -> list[str]:
        return []

    def clip_text(self, timestamps: list[float], duration: float | None) -> str:
        """SmolVLM's own video prompt (``SmolVLMProcessor.replace_video_token``) with one ``<image>`` per frame."""
        from num2words import num2words

        seconds = int(duration if duration is not None else math.ceil(timestamps[-1]))
        text = (f"You are provided the following series of {num2words(len(timestamps))} frames from a "
                f"{timedelta(seconds=seconds)} [H:MM:SS] video.\n")
        for t in timestamps:
            text += f"\nFrame from {int(t // 60):02d}:{int(t % 60):02d}:<image>"
        return text + "\n\n"

    def turn_tokens(self, tokenizer: Any) -> TurnTokens:
        return TurnTokens.smolvlm(tokenizer, self.never_labelled)

    def visuals(self, chat: dict[str, Any]) -> tuple[list[Any], list[list[Any]], list[dict[str, Any]]]:
        """Every image-like input in text order: crops and clip frames interleaved as the parts come."""
        images, clips, out = iter(chat["images"]), iter(chat["videos"]), []
        for message in chat["messages"]:
            for part in message["content"] if isinstance(message["content"], list) else []:
                if part.get("type") == "image":
                    out.append(next(images))
                elif part.get("type") == "video":
                    out.extend(next(clips).frames)
        return out, [], []

    def processor_inputs(self, prepared: list[Any]) -> dict[str, Any]:
        nested = [list(p.images) for p in prepared]
        return {"images": nested if any(nested) else None,
                "images_kwargs": {"do_image_splitting": False, "size": {"longest_edge": self.tile}}}


@dataclass(frozen=True)
class LlavaOnevisionFamily(Family):
    """LLaVA-OneVision (Qwen2 backbone): frames as one-frame videos with their timestamps as text."""

    tile: int = 384
    tile_tokens: int = 729  # num_image_tokens: (384 / 14)^2
    pinpoints: tuple[tuple[int, int], ...] = ()
    max_patches: int = 9  # vision_aspect_ratio anyres_max_9
    drop_cls: bool = False  # vision_feature_select_strategy == "default"

    template: ClassVar[str] = "llava_onevision_tools.jinja"
    expands_clips: ClassVar[bool] = True
    video_placeholder: ClassVar[str] = "<video>"
    placeholders: ClassVar[tuple[str, ...]] = ("<image>", "<video>")
    never_labelled: ClassVar[tuple[str, ...]] = ("<image>", "<video>")

    def configure(self, processor: Any) -> Family:
        size = processor.image_processor.size
        return dataclasses.replace(
            self, tile=size["height"] if "height" in size else size["shortest_edge"],
            tile_tokens=processor.num_image_tokens,
            pinpoints=tuple(tuple(p) for p in processor.image_processor.image_grid_pinpoints),
            max_patches=int(processor.vision_aspect_ratio.removeprefix("anyres_max_")),
            drop_cls=processor.vision_feature_select_strategy == "default")

    @property
    def factor(self) -> int:
        return self.patch

    def frame_size(self, height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        return self.tile, self.tile  # the video processor squares every frame to the tile

    def image_size(self, height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
        return fit_size(height, width, self.patch, min_pixels, max_pixels)

    @property
    def frame_tokens(self) -> int:
        side = math.ceil(math.isqrt(self.tile_tokens) / 2)  # 2x2 bilinear pooling
        return side * side + 1  # + the newline token of its one-frame video

    def video_tokens(self, n_frames: int, height: int, width: int) -> int:
        return n_frames * self.frame_tokens

    def images_tokens(self, sizes: list[tuple[int, int]]) -> int:
        if len(sizes) == 1:  # a sample's only image is tiled (anyres)
            return self.anyres_tokens(*sizes[0]) - self.drop_cls
        return len(sizes) * (self.tile_tokens + 1 - self.drop_cls)  # several: base tile + newline each

    def anyres_tokens(self, height: int, width: int) -> int:
        """``LlavaOnevisionProcessor._get_number_of_features`` for an image of this size."""
        from transformers.image_processing_utils import select_best_resolution

        best_h, best_w = select_best_resolution([height, width], [list(p) for p in self.pinpoints])
        side = math.isqrt(self.tile_tokens)
        cur_h, cur_w = side * (best_h // self.tile), side * (best_w // self.tile)
        if width / height > cur_w / cur_h:
            cur_h -= 2 * ((cur_h - int(round(height * (cur_w / width), 7))) // 2)
        else:
            cur_w -= 2 * ((cur_w - int(round(width * (cur_h / height), 7))) // 2)
        unpadded, newlines = cur_h * cur_w, cur_h
        ratio = math.sqrt(cur_h * cur_w / (self.max_patches * side ** 2))
        if ratio > 1.1:
            unpadded, newlines = int(cur_h // ratio) * int(cur_w // ratio), int(cur_h // ratio)
        return unpadded + newlines + self.tile_tokens

    def processor_texts(self, timestamps: list[float]) -> list[str]:
        return []

    def clip_text(self, timestamps: list[float], duration: float | None) -> str:
        return "".join(f"Frame at {t:.1f}s: <video>\n" for t in timestamps)

    def visuals(self, chat: dict[str, Any]) -> tuple[list[Any], list[list[Any]], list[dict[str, Any]]]:
        return chat["images"], [[f] for v in chat["videos"] for f in v.frames], []

    def processor_inputs(self, prepared: list[Any]) -> dict[str, Any]:
        nested = [list(p.images) for p in prepared]
        videos = [v for p in prepared for v in p.videos]
        return {"images": nested if any(nested) else None, "videos": videos or None}


FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("qwen2_vl", patch=14),
    "qwen2_5_vl": Family("qwen2_5_vl", patch=14),
    "qwen3_vl": Family("qwen3_vl", patch=16, timestamps_in_text=True),
    "smolvlm": SmolVLMFamily("smolvlm", patch=16),
    "llava_onevision": LlavaOnevisionFamily("llava_onevision", patch=14),
}
ALIASES = {"smolvlm2": "smolvlm"}  # the tiny model's name -> the model_type


def family_of(model: str | Path | Any) -> Family:
    """The family of a model folder (its config.json ``model_type``), a config object or a family name."""
    model_type = _model_type(model)
    model_type = ALIASES.get(model_type, model_type)
    if model_type not in FAMILIES:
        raise UnknownFamilyError(f"model type {model_type!r} has no SFT renderer yet; supported: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def _model_type(model: str | Path | Any) -> str:
    if hasattr(model, "model_type"):
        return model.model_type
    text = str(model)
    if text in FAMILIES or text in ALIASES:
        return text
    config = Path(text) / "config.json"
    if config.exists():
        return json.loads(config.read_text()).get("model_type", "")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(text).model_type
