"""``videothinker build``: raw videos + questions -> grounded trajectory shards (see pipeline.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dataset_builder.backends import BackendError
from dataset_builder.config import load_config
from dataset_builder.inputs import InputError, list_videos, make_jobs
from dataset_builder.questions import QuestionError, read_questions


def build_command(
    videos: Path = typer.Option(..., "--videos", help="A folder of videos or a .txt list of video paths."),
    questions: Path | None = typer.Option(None, "--questions", help="Questions: our JSONL, or cgbench/videomme/"
                                          "mlvu/longvideobench annotation files (see --layout)."),
    out: Path = typer.Option(..., "--out", help="Output dataset folder (laid out like a Hub dataset repo)."),
    preset: str = typer.Option("local", "--preset", help="local (in-process models), paper (OpenAI-compatible "
                               "endpoints), tiny (random-weight models + stand-in teacher; tests only)."),
    config: Path | None = typer.Option(None, "--config", help="A build.yaml overriding the preset."),
    engine: str = typer.Option("local", "--engine", help="local or ray."),
    workdir: Path | None = typer.Option(None, "--workdir", help="Cache folder (default: OUT/../.videothinker-work)."),
    layout: str = typer.Option("auto", "--layout", help="Questions layout: auto, jsonl, cgbench, videomme, mlvu, "
                               "longvideobench."),
    max_shard_bytes: int | None = typer.Option(None, "--max-shard-bytes", help="Roll shards at this size."),
    samples_per_question: int | None = typer.Option(None, "--samples-per-question", help="k teacher samples."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Teacher tool steps before a forced answer."),
    keep_wrong_when_all_fail: bool = typer.Option(False, "--keep-wrong-when-all-fail",
                                                  help="The paper's fallback: keep one wrong trajectory (flagged)."),
    license: str | None = typer.Option(None, "--license", help="License of the source videos (SPDX id), recorded "
                                       "in every record and the card."),
    generate_questions: int = typer.Option(0, "--generate-questions", help="The teacher writes N questions "
                                           "from the captions of every video that has none (marked in provenance)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Build trajectory shards from your own videos and multiple-choice questions."""
    from dataset_builder.pipeline import run_build

    try:
        cfg = load_config(preset, config, max_shard_bytes=max_shard_bytes, samples_per_question=samples_per_question,
                          max_steps=max_steps, keep_wrong_when_all_fail=keep_wrong_when_all_fail or None,
                          license=license)
        if engine not in ("local", "ray"):
            raise InputError(f"--engine {engine!r}: choose local or ray")
        if questions is None and not generate_questions:
            raise InputError("give --questions FILE, or --generate-questions N to have the teacher write them")
        video_map = list_videos(videos)
        skipped: list[str] = []
        items = read_questions(questions, layout, skipped) if questions is not None else []
        jobs, missing = make_jobs(video_map, items, videos if videos.is_dir() else videos.parent, generate_questions)
    except (InputError, QuestionError, ValueError, OSError) as exc:
        _fail(str(exc).splitlines()[0])
    for problem in skipped:
        print(f"warning: skipped {problem}", file=sys.stderr)
    for name, n in missing.items():
        print(f"warning: {n} question(s) reference video {name!r}, which is not among --videos", file=sys.stderr)
    if not jobs:
        _fail(f"{questions}: no usable question matches a video in {videos}" + (f" ({len(skipped)} skipped, "
              f"first: {skipped[0]})" if skipped else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
        report = run_build(jobs, cfg, out, workdir or out.parent / ".videothinker-work" / out.name, engine, progress,
                           input_drops={"video_missing": sum(missing.values()), "question_invalid": len(skipped)})
    except (BackendError, OSError) as exc:  # an unreachable endpoint after retries, a full or read-only disk
        _fail(f"{exc}; the cache keeps finished work: fix this and rerun the same command")
    _print_report(report, out)
    if report["kept"] == 0:
        raise typer.Exit(1)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _print_report(report: dict, out: Path) -> None:
    print(f"built {out}: {report['kept']} trajectories from {report['questions']} questions on "
          f"{report['videos']} videos ({report['hours']:.2f} h), {report['frames']} frames, {report['seconds']:.1f} s")
    for reason, n in report["dropped"].items():
        if n:
            print(f"  dropped {n} by {reason}")
    for reason, n in report["rejected_videos"].items():
        print(f"  rejected {n} video(s): {reason}")
    print(f"  {report['model_calls']} model calls, {report['cache']['hits']} served from the cache; "
          f"{report['trajectories_per_s']:.3f} trajectories/s; report: {out / 'build_report.json'}")
