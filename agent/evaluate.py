"""Run a benchmark: items -> one result line per question in ``results.jsonl`` (resumable) -> a summary.

Each question's result is appended and flushed as soon as it is known, so a killed run loses at most the
question in flight; a re-run skips every id already in the file (except results that recorded an error,
which are tried again; the last line of an id wins). The summary (``<out stem>.summary.json``) has the
benchmark's metric overall and per group, time per question, routes taken, and the protocol the score was
made under (mode, frames, caps, thresholds, subtitles yes/no, model): report it with the score.
A video that is not found is skipped and counted (``missing_videos``), never scored.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.benchmarks import EvalItem, VideoResolver, find_subtitles, read_subtitles
from agent.loop import Trajectory
from agent.metrics import benchmark_metric
from agent.models import AgentModel, ModelSummarizer
from agent.policy import AgentConfig, answer_question
from agent.video_tools import AgentTools, Encoders, ToolSettings, open_video
from dataset_builder.embedder import TextEmbedder

log = logging.getLogger(__name__)


@dataclass
class EvalRun:
    """What one evaluation needs besides the model and the items."""

    bench: str
    videos: Path
    out: Path
    mode: str = "adaptive"
    config: AgentConfig = field(default_factory=AgentConfig)
    tools: ToolSettings = field(default_factory=ToolSettings)
    limit: int | None = None
    subtitle_dirs: list[Path] = field(default_factory=list)
    progress: bool = True

    @property
    def summary_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".summary.json")


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """Results already in ``path``, the last line of each id (a torn last line is ignored)."""
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "id" in record:
            out[str(record["id"])] = record
    return out


def run_eval(model: AgentModel, items: list[EvalItem], run: EvalRun) -> dict[str, Any]:
    """Answer every item not yet in ``run.out``, append results, write and return the summary."""
    run.config.check(run.mode)
    items = items[:run.limit] if run.limit is not None else items
    done = {k for k, r in read_results(run.out).items() if not r.get("error")}
    todo = [item for item in items if item.id not in done]
    log.info("%s: %d questions, %d already done, %d to run", run.bench, len(items), len(items) - len(todo), len(todo))
    run.out.parent.mkdir(parents=True, exist_ok=True)
    missing = _answer_all(model, todo, run)
    results = read_results(run.out)
    summary = summarize([results[i.id] for i in items if i.id in results], run, model.name, len(items), missing)
    run.summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _answer_all(model: AgentModel, items: list[EvalItem], run: EvalRun) -> list[str]:
    resolver, opener, missing = VideoResolver(run.videos), _Opener(model, run), []
    with open(run.out, "a", encoding="utf-8") as sink:
        for item in _progress(items, run):
            path = resolver.find(item.video)
            if path is None:
                log.warning("%s: video %r not found under %s; skipped", item.id, item.video, run.videos)
                missing.append(item.id)
                continue
            sink.write(json.dumps(_answer(model, item, path, opener, run)) + "\n")
            sink.flush()
    return missing


def _progress(items: list[EvalItem], run: EvalRun) -> Iterable[EvalItem]:
    if not run.progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"{run.bench} ({run.mode})", unit="q")


def _answer(model: AgentModel, item: EvalItem, path: Path, opener: _Opener, run: EvalRun) -> dict[str, Any]:
    record = _base_record(item, run, model.name)
    try:
        tools = opener.open(item, path)
        traj = answer_question(model, tools, item.question, list(item.options), run.mode, run.config)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one failed question is recorded and retried on resume
        log.warning("%s: %s: %s", item.id, type(exc).__name__, exc)
        log.debug("traceback", exc_info=True)
        return record | {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", "correct": False}
    return record | _trajectory_fields(traj, item) | {"duration_s": round(tools.index.duration_s, 3),
                                                      "subtitles": tools.index.subtitle_source}


def _base_record(item: EvalItem, run: EvalRun, model: str) -> dict[str, Any]:
    return {"id": item.id, "benchmark": run.bench, "video": item.video, "question": item.question,
            "options": list(item.options), "gold": item.answer_letter, "prediction": None, "correct": False,
            "task_type": item.task_type, "duration_category": item.duration_category,
            "duration_group": item.duration_group, "mode": run.mode, "model": model}


def _trajectory_fields(traj: Trajectory, item: EvalItem) -> dict[str, Any]:
    return {"prediction": traj.answer, "correct": traj.answer is not None and traj.answer == item.answer_letter,
            "how": traj.how, "status": traj.status, "route": traj.route, "confidence": traj.confidence,
            "steps": traj.steps, "tool_calls": traj.tool_calls, "invalid_calls": traj.invalid_calls,
            "frames": traj.frames, "seconds": round(traj.seconds, 3), "initial": traj.initial, "turns": traj.turns}


class _Opener:
    """Opens each video's tools once while its questions are consecutive; shares encoders and the embedder."""

    def __init__(self, model: AgentModel, run: EvalRun):
        self.run = run
        self.summarizer = getattr(model, "summarizer", None) or ModelSummarizer(model)
        self.encoders = Encoders()
        self.embedder = TextEmbedder(run.tools.embedder)
        self._current: tuple[tuple[Path, str | None], AgentTools] | None = None

    def open(self, item: EvalItem, path: Path) -> AgentTools:
        key = (path, item.subtitles)
        if self._current is None or self._current[0] != key:
            tools = open_video(path, summarizer=self.summarizer, settings=self.run.tools, encoders=self.encoders,
                               subtitles=self._subtitles(item, path), video_id=item.video, embedder=self.embedder)
            self._current = (key, tools)
        return self._current[1]

    def _subtitles(self, item: EvalItem, path: Path) -> list[Any] | None:
        if not self.run.tools.subtitles:
            return None
        found = find_subtitles(item, path, self.run.subtitle_dirs)
        return read_subtitles(found, item.subtitle_offset_s) if found is not None else None


def summarize(results: list[dict[str, Any]], run: EvalRun, model: str, n_items: int,
              missing: list[str]) -> dict[str, Any]:
    """The benchmark metric, time per question, routes, and the protocol of the run."""
    answered = [r for r in results if not r.get("error")]
    seconds = [r["seconds"] for r in answered if "seconds" in r]
    subtitle_sources = Counter(r.get("subtitles", "none") for r in answered)
    return {
        "benchmark": run.bench, "model": model, "mode": run.mode, **benchmark_metric(run.bench, results),
        "questions": n_items, "results": len(results), "errors": len(results) - len(answered),
        "missing_videos": len(missing), "no_answer": sum(r.get("prediction") is None for r in answered),
        "routes": dict(Counter(r.get("route", "") for r in answered)),
        "seconds_per_question": round(statistics.fmean(seconds), 3) if seconds else None,
        "mean_frames": _mean(answered, "frames"), "mean_tool_calls": _mean(answered, "tool_calls"),
        "protocol": run.config.protocol(run.mode) | {
            "max_pixels": run.tools.max_pixels, "zoom_frames": run.tools.zoom_frames,
            "clip_encoder": run.tools.clip_encoder, "asr": run.tools.asr,
            "subtitles": run.tools.subtitles and run.mode != "uniform",
            "subtitle_sources": dict(subtitle_sources)},
        "results_file": str(run.out),
    }


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return round(statistics.fmean(values), 2) if values else None
