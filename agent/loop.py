"""The multi-turn tool loop on a real video, and the direct answer it can start from.

question + initial frames (a video part with the frames' real timestamps) + the video-space tool specs ->
reply -> ``parse_turn`` (the builder's parser) -> ``execute`` on the real video -> the observation goes
back as the trained model saw it in its data (FrameZoom frames as a video part, the SpatialZoom crop as an
image part, everything else as text) -> ... until an ``Answer`` call or a reply without a tool call.

Caps: ``max_steps`` tool turns (default 8), then a forced answer; ``max_frames`` frames in total (default
64, the initial frames included): a frame tool whose frames would pass the cap is not run, and its
observation says the frame budget is used up. Bad calls (unparseable, unknown tool, bad arguments, a
letter outside the options) get an error observation the model can recover from, and are counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agent.answers import AnswerMatch, answer_confidence, direct_prompt, extract_answer
from agent.models import AgentModel, Chat, Generation
from agent.video_tools import AgentTools, frames_payload
from dataset_builder.episodes import FORCE_ANSWER, question_prompt
from dataset_builder.executors import Observation, execute
from dataset_builder.grounding import STUDENT_SYSTEM
from dataset_builder.questions import Question
from dataset_builder.toolcall_parse import ParsedCall, parse_turn
from dataset_builder.tools import ANSWER, VIDEO_SPACE_TOOLS, ToolArgumentError, get_tool
from loaders.chat import VideoClip

TOOL_NAMES = tuple(t.name for t in VIDEO_SPACE_TOOLS)
FRAME_BUDGET = ("Frame budget used up: {used} of {cap} frames already seen, and {name} would add {cost}. "
                "It was not run. Use a text tool or call Answer.")
NO_CALL = "Error: {error}. Call one tool, or Answer with the option letter."


@dataclass
class Limits:
    max_steps: int = 8  # tool turns before the forced answer
    max_frames: int = 64  # frames shown in total, initial frames included
    max_new_tokens: int = 1024  # per agent turn


@dataclass
class Trajectory:
    answer: str | None = None
    how: str = ""  # how the answer was read: tool_call | phrase | bare | option_text | last_letter
    status: str = "no_answer"  # answered | forced | no_answer
    route: str = ""  # uniform | agent | direct | tools
    confidence: float | None = None  # of the direct answer (uniform, adaptive)
    steps: int = 0  # model turns in the tool loop
    tool_calls: int = 0
    invalid_calls: int = 0
    frames: int = 0  # frames shown in total
    initial: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def set_answer(self, match: AnswerMatch | None, status: str) -> None:
        self.answer = match.letter if match else None
        self.how = match.how if match else ""
        self.status = status if match else "no_answer"


class Conversation:
    """A chat being built (``loaders.chat`` form) and the frames it shows."""

    def __init__(self, tools: list[dict[str, Any]] | None = None):
        self.messages: list[dict[str, Any]] = []
        self.images: list[Any] = []
        self.videos: list[VideoClip] = []
        self.tools = tools
        self.frames = 0

    def chat(self) -> Chat:
        return {"messages": self.messages, "images": self.images, "videos": self.videos, "tools": self.tools}

    def video(self, clip: VideoClip) -> dict[str, Any]:
        self.videos.append(clip)
        self.frames += len(clip.frames)
        return {"type": "video"}

    def image(self, image: Any) -> dict[str, Any]:
        self.images.append(image)
        self.frames += 1
        return {"type": "image"}

    def add(self, role: str, parts: list[dict[str, Any]], **extra: Any) -> None:
        self.messages.append({"role": role, "content": parts, **extra})


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def visual_parts(conv: Conversation, clips: list[tuple[str | None, VideoClip]]) -> list[dict[str, Any]]:
    """Content parts for the initial clips: one video part each, after its label when it has one."""
    parts: list[dict[str, Any]] = []
    for label, clip in clips:
        if label:
            parts.append(text(label))
        parts.append(conv.video(clip))
    return parts


# ------------------------------------------------------------------------------------------ direct answer


def direct_conversation(clips: list[tuple[str | None, VideoClip]], question: str, options: list[str]) -> Conversation:
    """No tools: the initial frames and the Video-MME-style "answer with the letter" prompt."""
    conv = Conversation()
    conv.add("user", [*visual_parts(conv, clips), text("\n" + direct_prompt(question, options))])
    return conv


def answer_directly(model: AgentModel, conv: Conversation, options: list[str], max_tokens: int,
                    traj: Trajectory) -> float | None:
    """One reply with token log-probabilities; sets the answer and returns its confidence."""
    gen = model.generate(conv.chat(), max_tokens=max_tokens, logprobs=True)
    match = extract_answer(gen.text, options, gen.tool_calls)
    confidence = gen.confidence if gen.confidence is not None else answer_confidence(match, gen.tokens)
    traj.set_answer(match, "answered")
    traj.confidence = confidence
    traj.turns.append({"role": "assistant", "text": gen.text, "answer": traj.answer, "confidence": confidence,
                       "seconds": round(gen.seconds, 3)})
    return confidence


# ------------------------------------------------------------------------------------------- tool loop


def agent_conversation(clips: list[tuple[str | None, VideoClip]], question: str, options: list[str]) -> Conversation:
    """The training format: student system prompt, tools, the initial frames, then question and options."""
    conv = Conversation(tools=[t.openai() for t in VIDEO_SPACE_TOOLS])
    conv.add("system", [text(STUDENT_SYSTEM)])
    q = Question(id="q", video="", question=question, options=list(options), answer="A")
    conv.add("user", [*visual_parts(conv, clips), text(question_prompt(q, global_caption=None))])
    return conv


def run_tools(model: AgentModel, tools: AgentTools, conv: Conversation, options: list[str], limits: Limits,
              traj: Trajectory) -> Trajectory:
    """The multi-turn loop: at most ``limits.max_steps`` tool turns, then one forced-answer turn."""
    for step in range(limits.max_steps + 1):
        forced = step == limits.max_steps
        if forced:
            conv.add("user", [text(FORCE_ANSWER)])
            traj.turns.append({"role": "user", "text": FORCE_ANSWER})
        gen = model.generate(conv.chat(), max_tokens=limits.max_new_tokens)
        traj.steps += 1
        if _turn(gen, step, forced, tools, conv, options, limits, traj):
            break
    traj.frames = conv.frames
    return traj


def _turn(gen: Generation, step: int, forced: bool, tools: AgentTools, conv: Conversation, options: list[str],
          limits: Limits, traj: Trajectory) -> bool:
    """Append one assistant turn and its observations; True when the episode has ended."""
    parsed = parse_turn(gen.text, gen.tool_calls, gen.reasoning)
    ids = [f"call_{step}_{k}" for k in range(len(parsed.calls))]
    _assistant(conv, parsed.text, parsed.reasoning, parsed.calls, ids)
    traj.turns.append({"role": "assistant", "text": gen.text, "seconds": round(gen.seconds, 3),
                       "calls": [{"name": c.name, "arguments": c.arguments} for c in parsed.calls]})
    answer = _answer_call(parsed.calls, options)
    if answer is not None:
        traj.tool_calls += 1
        match = extract_answer(gen.text, options, gen.tool_calls) or AnswerMatch(answer, None, None, "tool_call")
        traj.set_answer(match, "forced" if forced else "answered")
        return True
    if forced or (not parsed.calls and not parsed.errors):  # a reply without a tool call is the final answer
        traj.set_answer(extract_answer(gen.text, options, gen.tool_calls), "forced" if forced else "answered")
        return True
    if not parsed.calls:
        traj.invalid_calls += 1
        message = NO_CALL.format(error="; ".join(parsed.errors))
        conv.add("user", [text(message)])
        traj.turns.append({"role": "user", "text": message})
        return False
    for call, call_id in zip(parsed.calls, ids):
        traj.tool_calls += 1
        _observe(call, call_id, tools, conv, options, limits, traj)
    return False


def _assistant(conv: Conversation, body: str, reasoning: str, calls: list[ParsedCall], ids: list[str]) -> None:
    extra: dict[str, Any] = {}
    if reasoning:
        extra["reasoning_content"] = reasoning
    if calls:
        extra["tool_calls"] = [{"id": i, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                               for c, i in zip(calls, ids)]
    conv.add("assistant", [text(body)] if body else [], **extra)


def _answer_call(calls: list[ParsedCall], options: list[str]) -> str | None:
    """The letter of a valid Answer call in this turn, if any."""
    for call in calls:
        if call.name != ANSWER.name:
            continue
        try:
            letter = ANSWER.validate(call.arguments)["answer"]
        except ToolArgumentError:
            continue
        if ord(letter) - ord("A") < len(options):
            return letter
    return None


def _observe(call: ParsedCall, call_id: str, tools: AgentTools, conv: Conversation, options: list[str],
             limits: Limits, traj: Trajectory) -> None:
    started = time.monotonic()
    try:
        observation = _execute(call, tools, conv, options, limits)
    except ToolArgumentError as exc:
        traj.invalid_calls += 1
        observation = Observation(text=f"Error: {exc}")
    log: dict[str, Any] = {"role": "tool", "name": call.name, "seconds": round(time.monotonic() - started, 3)}
    if observation.frames:
        parts = [conv.image(observation.frames[0].image)] if call.name == "SpatialZoom" else \
            [conv.video(VideoClip([f.image for f in observation.frames], list(observation.timestamps)))]
        log["frames"] = frames_payload(observation)
    else:
        parts = [text(observation.text)]
        log["text"] = observation.text
    conv.add("tool", parts, tool_call_id=call_id, name=call.name)
    traj.turns.append(log)


def _execute(call: ParsedCall, tools: AgentTools, conv: Conversation, options: list[str],
             limits: Limits) -> Observation:
    if call.name not in TOOL_NAMES:
        raise ToolArgumentError(f"unknown tool {call.name!r}; available: {', '.join(TOOL_NAMES)}")
    if call.name == ANSWER.name:
        valid = ", ".join(chr(65 + i) for i in range(len(options)))
        raise ToolArgumentError(f"Answer: give one of the letters {valid}")
    tool = get_tool(call.name)
    args = tool.validate(call.arguments)
    if tool.returns == "frames":
        cost = tools.services.zoom_frames if call.name == "FrameZoom" else 1
        if conv.frames + cost > limits.max_frames:
            return Observation(text=FRAME_BUDGET.format(used=conv.frames, cap=limits.max_frames, name=call.name,
                                                        cost=cost))
    return execute(tools, call.name, args)
