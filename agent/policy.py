"""Answering one question on one video: the three modes, and the paper's adaptive policy.

- ``uniform``: ``frames`` frames uniformly over the video, answer at once (the usual VideoLLM baseline).
- ``agent``: the same frames, then always the multi-turn tool loop (``agent.loop``).
- ``adaptive`` (PAPER.md "Inference"): a video shorter than ``short_video_s`` (600 s) gets ``frames`` (32)
  uniform frames; a longer one gets the frames of the ``top_k`` clips ClipRetrieval finds for the question
  (``frames // top_k`` per clip, in time order). The model answers at once; the confidence is the geometric
  mean of the probabilities of the answer tokens. At or above ``gamma`` (0.7) that answer stands; below it
  (or with no readable answer) the model starts over in the tool loop from the same frames, which count
  once against ``max_frames``.

Every threshold is a field of ``AgentConfig`` (and a CLI flag).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.loop import (
    Limits,
    Trajectory,
    agent_conversation,
    answer_directly,
    direct_conversation,
    run_tools,
)
from agent.models import AgentModel
from agent.video_tools import AgentTools
from dataset_builder import video
from loaders.chat import VideoClip

MODES = ("uniform", "agent", "adaptive")


class PolicyError(ValueError):
    """A setting that cannot work (unknown mode, non-positive caps)."""


@dataclass
class AgentConfig:
    frames: int = 32  # uniform frames: uniform mode, the agent's first turn, adaptive on short videos
    gamma: float = 0.7  # adaptive: confidence below this switches to the tool loop
    short_video_s: float = 600.0  # adaptive: shorter videos get uniform frames, longer ones retrieved clips
    top_k: int = 4  # adaptive: clips retrieved for long videos
    answer_tokens: int = 32  # new tokens for a direct answer
    limits: Limits = field(default_factory=Limits)

    def check(self, mode: str) -> None:
        if mode not in MODES:
            raise PolicyError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        for name, value in (("frames", self.frames), ("top_k", self.top_k), ("max_frames", self.limits.max_frames)):
            if value < 1:
                raise PolicyError(f"{name} must be >= 1, got {value}")
        if self.limits.max_steps < 0:
            raise PolicyError(f"max_steps must be >= 0, got {self.limits.max_steps}")
        if not 0.0 <= self.gamma <= 1.0:
            raise PolicyError(f"gamma must be in [0, 1], got {self.gamma}")

    def protocol(self, mode: str) -> dict[str, Any]:
        """The settings a score must be reported with."""
        out: dict[str, Any] = {"mode": mode, "frames": self.frames, "max_frames": self.limits.max_frames}
        if mode != "uniform":
            out |= {"max_steps": self.limits.max_steps}
        if mode == "adaptive":
            out |= {"gamma": self.gamma, "short_video_s": self.short_video_s, "top_k": self.top_k}
        return out


def answer_question(model: AgentModel, tools: AgentTools, question: str, options: list[str], mode: str,
                    config: AgentConfig | None = None) -> Trajectory:
    """Run ``mode`` on one question; the trajectory holds the answer, the route taken and every turn."""
    config = config or AgentConfig()
    config.check(mode)
    started = time.monotonic()
    traj = Trajectory(route=mode)
    n_initial = min(config.frames, config.limits.max_frames)
    if mode == "adaptive" and tools.index.duration_s >= config.short_video_s:
        clips = retrieved_clips(tools, question, config.top_k, n_initial, tools.services.max_pixels)
        traj.initial = {"kind": "retrieved", "clips": [c.timestamps for _, c in clips]}
    else:
        clips = [(None, uniform_clip(tools, n_initial))]
        traj.initial = {"kind": "uniform"}
    traj.initial["frames"] = sum(len(c.frames) for _, c in clips)
    if mode == "agent":
        run_tools(model, tools, agent_conversation(clips, question, options), options, config.limits, traj)
    else:
        _direct_then_tools(model, tools, clips, question, options, mode, config, traj)
    traj.seconds = time.monotonic() - started
    return traj


def _direct_then_tools(model: AgentModel, tools: AgentTools, clips: list[tuple[str | None, VideoClip]],
                       question: str, options: list[str], mode: str, config: AgentConfig, traj: Trajectory) -> None:
    conv = direct_conversation(clips, question, options)
    confidence = answer_directly(model, conv, options, config.answer_tokens, traj)
    traj.frames = conv.frames
    if mode == "uniform":
        return
    if traj.answer is not None and confidence is not None and confidence >= config.gamma:
        traj.route = "direct"
        return
    traj.route = "tools"
    run_tools(model, tools, agent_conversation(clips, question, options), options, config.limits, traj)


def uniform_clip(tools: AgentTools, n: int) -> VideoClip:
    """``n`` frames at the centres of ``n`` equal bins of the whole video, with their timestamps."""
    times = video.uniform_timestamps(0.0, tools.index.duration_s, n)
    frames = video.frames_at(Path(tools.index.path), times, max_pixels=tools.services.max_pixels)
    return VideoClip([f.image for f in frames], times)


def retrieved_clips(tools: AgentTools, query: str, top_k: int, n_frames: int,
                    max_pixels: int) -> list[tuple[str | None, VideoClip]]:
    """Frames of the ``top_k`` clips most similar to ``query``, one labelled video part per clip, in time order."""
    hits = sorted(tools.retrieve(query, top_k), key=lambda hit: hit[0][0])
    per_clip = max(1, n_frames // max(1, len(hits)))
    out: list[tuple[str | None, VideoClip]] = []
    for (start, end), _ in hits:
        times = video.uniform_timestamps(start, end, per_clip)
        frames = video.frames_at(Path(tools.index.path), times, max_pixels=max_pixels)
        out.append((f"Clip [{start:.1f}s, {end:.1f}s]:", VideoClip([f.image for f in frames], times)))
    return out
