"""``videothinker agent`` and ``videothinker eval``: plain functions; the root CLI (``agent.cli``) registers them.

Bad input (a missing file, an unknown benchmark or mode, an unloadable model) ends with one line
``error: ...`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import Option

from agent.benchmarks import BENCHMARKS, BenchmarkError, read_benchmark
from agent.loop import Limits, Trajectory
from agent.models import AgentModel, ModelError, load_model
from agent.policy import AgentConfig, PolicyError
from agent.retrieval import DEFAULT_ENCODER, TINY_ENCODER
from agent.video_tools import ToolSettings

log = logging.getLogger(__name__)
_INPUT_ERRORS = (BenchmarkError, ModelError, PolicyError)
MODEL_HELP = "Model folder, Hub id, tiny:FAMILY, or the served model's name with --base-url."


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def default_cache_dir() -> Path:
    hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(hf_home) / "videothinker" / "agent"


def _encoder(name: str, model: str) -> str:
    if name != "auto":
        return name
    return TINY_ENCODER if model.startswith(("tiny:", "scripted:")) else DEFAULT_ENCODER


def _settings(model: str, zoom_frames: int, max_pixels: int, clip_encoder: str, subtitles: bool, asr: str | None,
              cache_dir: Path | None) -> ToolSettings:
    return ToolSettings(zoom_frames=zoom_frames, max_pixels=max_pixels, clip_encoder=_encoder(clip_encoder, model),
                        cache_dir=cache_dir or default_cache_dir(), asr=asr, subtitles=subtitles)


def _config(frames: int, max_steps: int, max_frames: int, gamma: float, short_video_s: float, top_k: int,
            max_new_tokens: int, mode: str) -> AgentConfig:
    config = AgentConfig(frames=frames, gamma=gamma, short_video_s=short_video_s, top_k=top_k,
                         limits=Limits(max_steps=max_steps, max_frames=max_frames, max_new_tokens=max_new_tokens))
    config.check(mode)
    return config


# Options shared by `agent` and `eval` (one definition each).
ModelOpt = Annotated[str, Option("--model", help=MODEL_HELP)]
BaseUrlOpt = Annotated[str | None, Option("--base-url", help="OpenAI-compatible server (vLLM, SGLang, ...).")]
DeviceOpt = Annotated[str | None, Option("--device", help="Torch device for in-process models (default: cuda if any).")]
FramesOpt = Annotated[int, Option("--frames", help="Uniform frames (uniform mode, first turn, adaptive on "
                                                   "short videos).")]
MaxStepsOpt = Annotated[int, Option("--max-steps", help="Tool turns before the forced answer.")]
MaxFramesOpt = Annotated[int, Option("--max-frames", help="Frames shown in total, initial frames included.")]
GammaOpt = Annotated[float, Option("--gamma", help="Adaptive: answer confidence below this switches to tools.")]
ShortVideoSOpt = Annotated[float, Option("--short-video-s", help="Adaptive: shorter videos get uniform frames.")]
TopKOpt = Annotated[int, Option("--top-k", help="Adaptive: clips retrieved for longer videos.")]
ZoomFramesOpt = Annotated[int, Option("--zoom-frames", help="Frames one FrameZoom returns.")]
MaxPixelsOpt = Annotated[int, Option("--max-pixels", help="Pixels per frame.")]
MaxNewTokensOpt = Annotated[int, Option("--max-new-tokens", help="New tokens per agent turn.")]
ClipEncoderOpt = Annotated[str, Option("--clip-encoder", help=f"ClipRetrieval encoder (auto: {DEFAULT_ENCODER}).")]
SubtitlesOpt = Annotated[bool, Option("--subtitles/--no-subtitles", help="Give the subtitle tools the subtitles.")]
AsrOpt = Annotated[str | None, Option("--asr", help="Whisper model for videos without subtitle files.")]
CacheDirOpt = Annotated[Path | None, Option("--cache-dir", help="Clip embeddings and transcripts cache.")]


def _model(model: str, base_url: str | None, device: str | None, max_pixels: int, max_frames: int) -> AgentModel:
    return load_model(model, base_url=base_url, device=device, max_pixels=max_pixels, max_frames=max_frames)


def agent_command(
    model: ModelOpt,
    video: Path = Option(..., "--video", help="The video file."),
    question: str = Option(..., "--question", help="The question."),
    options: list[str] = Option(..., "--options", help="An answer option; repeat for each (A, B, C, ... in order)."),
    mode: str = Option("agent", "--mode", help="uniform | agent | adaptive."),
    base_url: BaseUrlOpt = None,
    device: DeviceOpt = None,
    frames: FramesOpt = 32,
    max_steps: MaxStepsOpt = 8,
    max_frames: MaxFramesOpt = 64,
    gamma: GammaOpt = 0.7,
    short_video_s: ShortVideoSOpt = 600.0,
    top_k: TopKOpt = 4,
    zoom_frames: ZoomFramesOpt = 8,
    max_pixels: MaxPixelsOpt = 32768,
    max_new_tokens: MaxNewTokensOpt = 1024,
    clip_encoder: ClipEncoderOpt = "auto",
    subtitles: SubtitlesOpt = True,
    asr: AsrOpt = None,
    cache_dir: CacheDirOpt = None,
    as_json: bool = Option(False, "--json", help="Print the trajectory as one JSON object."),
) -> None:
    """Answer one multiple-choice question about one video; print the trajectory and the answer."""
    from agent.benchmarks import strip_option
    from agent.policy import answer_question
    from agent.video_tools import Encoders, open_video
    from dataset_builder.video import VideoError
    from sft.budget import OverBudget

    if not video.is_file():
        _fail(f"{video}: video file does not exist")
    if len(options) < 2:
        _fail(f"give at least two --options (got {len(options)})")
    options = [strip_option(o) for o in options]
    try:
        config = _config(frames, max_steps, max_frames, gamma, short_video_s, top_k, max_new_tokens, mode)
        settings = _settings(model, zoom_frames, max_pixels, clip_encoder, subtitles, asr, cache_dir)
        agent_model = _model(model, base_url, device, max_pixels, max_frames)
        summarizer = _summarizer(agent_model)
        tools = open_video(video, summarizer=summarizer, settings=settings, encoders=Encoders())
        traj = answer_question(agent_model, tools, question, list(options), mode, config)
    except (*_INPUT_ERRORS, VideoError, OverBudget) as exc:
        _fail(str(exc))
    _print_trajectory(traj, list(options), as_json)


def _summarizer(model: AgentModel) -> Any:
    from agent.models import ModelSummarizer

    return getattr(model, "summarizer", None) or ModelSummarizer(model)


def _print_trajectory(traj: Trajectory, options: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(traj.__dict__, default=str))
        return
    for turn in traj.turns:
        typer.echo(_turn_line(turn))
    chosen = options[ord(traj.answer) - 65] if traj.answer else ""
    conf = f", confidence {traj.confidence:.3f}" if traj.confidence is not None else ""
    typer.echo(f"route: {traj.route}; {traj.steps} tool turns, {traj.tool_calls} tool calls, {traj.frames} frames"
               f"{conf}; {traj.seconds:.1f} s")
    typer.echo(f"answer: {traj.answer}. {chosen}" if traj.answer else "answer: none (no readable answer)")


def _turn_line(turn: dict[str, Any]) -> str:
    if turn["role"] == "tool":
        if "frames" in turn:
            times = ", ".join(f"{t:.1f}" for t in turn["frames"]["timestamps"])
            return f"[tool {turn['name']}] {len(turn['frames']['timestamps'])} frame(s) at {times} s"
        return f"[tool {turn['name']}] {' '.join(turn['text'].split())}"
    return f"[{turn['role']}] {' '.join(turn['text'].split())}"


def eval_command(
    model: ModelOpt,
    bench: str = Option(..., "--bench", help="mlvu | lvbench | videomme | longvideobench."),
    annotations: Path = Option(..., "--annotations", help="The benchmark's annotation file (MLVU: also a folder)."),
    videos: Path = Option(..., "--videos", help="Folder with the benchmark's videos (searched recursively)."),
    mode: str = Option("adaptive", "--mode", help="uniform | agent | adaptive (the paper's policy)."),
    limit: int | None = Option(None, "--limit", help="Only the first N questions."),
    out: Path = Option(Path("results.jsonl"), "--out", help="Per-question results (resumable); summary beside it."),
    base_url: BaseUrlOpt = None,
    device: DeviceOpt = None,
    frames: FramesOpt = 32,
    max_steps: MaxStepsOpt = 8,
    max_frames: MaxFramesOpt = 64,
    gamma: GammaOpt = 0.7,
    short_video_s: ShortVideoSOpt = 600.0,
    top_k: TopKOpt = 4,
    zoom_frames: ZoomFramesOpt = 8,
    max_pixels: MaxPixelsOpt = 32768,
    max_new_tokens: MaxNewTokensOpt = 1024,
    clip_encoder: ClipEncoderOpt = "auto",
    subtitles: SubtitlesOpt = True,
    subtitles_dir: Path | None = Option(None, "--subtitles-dir", help="Folder of subtitle files (.srt/.vtt/.json)."),
    asr: AsrOpt = None,
    cache_dir: CacheDirOpt = None,
    progress: bool = Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Run a long-video benchmark: per-question results (resumable) and a summary with the protocol."""
    from agent.evaluate import EvalRun, run_eval

    if bench not in BENCHMARKS:
        _fail(f"unknown benchmark {bench!r}; choose one of {', '.join(BENCHMARKS)}")
    if not videos.is_dir():
        _fail(f"{videos}: videos folder does not exist")
    if limit is not None and limit < 1:
        _fail(f"--limit must be >= 1, got {limit}")
    try:
        items = read_benchmark(bench, annotations)
        config = _config(frames, max_steps, max_frames, gamma, short_video_s, top_k, max_new_tokens, mode)
        settings = _settings(model, zoom_frames, max_pixels, clip_encoder, subtitles, asr, cache_dir)
        agent_model = _model(model, base_url, device, max_pixels, max_frames)
    except _INPUT_ERRORS as exc:
        _fail(str(exc))
    run = EvalRun(bench=bench, videos=videos, out=out, mode=mode, config=config, tools=settings, limit=limit,
                  subtitle_dirs=_subtitle_dirs(annotations, videos, subtitles_dir), progress=progress)
    try:
        summary = run_eval(agent_model, items, run)
    except OSError as exc:  # e.g. an unwritable --out
        _fail(f"{exc.filename or out}: {exc.strerror or exc}")
    typer.echo(_summary_line(summary))
    typer.echo(f"results: {out}; summary: {run.summary_path}")


def _subtitle_dirs(annotations: Path, videos: Path, extra: Path | None) -> list[Path]:
    root = annotations if annotations.is_dir() else annotations.parent
    dirs = [root / "subtitles", root / "subtitle", videos / "subtitles", videos.parent / "subtitles",
            videos.parent / "subtitle"]
    return ([extra] if extra else []) + dirs


def _summary_line(summary: dict[str, Any]) -> str:
    groups = []
    for name, values in (summary.get("groups") or {}).items():
        if name != "task_type" or summary["benchmark"] == "mlvu":
            groups.append(f"{name}: " + ", ".join(f"{k} {v['accuracy']}" for k, v in values.items()))
    score = "n/a" if summary["score"] is None else f"{summary['score']:.2f}"
    line = (f"{summary['benchmark']} {summary['metric']} = {score} on {summary['n']} scored questions "
            f"(mode {summary['mode']}, {summary['seconds_per_question']} s/question")
    return line + (f"; {'; '.join(groups)})" if groups else ")")
