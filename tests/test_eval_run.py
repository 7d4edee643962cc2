"""Running a benchmark with the scripted test double: scoring on known answers, resumable results, summary."""

from __future__ import annotations

import json

import pytest

from agent.benchmarks import read_benchmark
from agent.evaluate import EvalRun, read_results, run_eval
from agent.loop import Limits
from agent.policy import AgentConfig
from agent.scripted import ScriptedModel, ScriptedReply
from tests.agent_fixtures import eval_videos, lvb_subtitles, lvb_val, tool_call, tool_settings, videomme_official

CFG = AgentConfig(frames=4, limits=Limits(max_steps=3))


def videomme_run(tmp_path, mode="uniform", limit=None, out=None) -> tuple[list, EvalRun]:
    items = read_benchmark("videomme", videomme_official(tmp_path))
    videos = eval_videos(tmp_path, ["fFjv93ACGo8.mp4", "LongVid_01.mp4"])
    run = EvalRun(bench="videomme", videos=videos, out=out or tmp_path / "out" / "results.jsonl", mode=mode,
                  config=CFG, tools=tool_settings(tmp_path), limit=limit, progress=False)
    return items, run


def test_scores_known_answers_and_writes_the_summary(tmp_path):
    items, run = videomme_run(tmp_path)
    model = ScriptedModel(["The best answer is C.", "B", "<think>not A</think>D"])  # right, wrong, right
    summary = run_eval(model, items, run)
    results = [json.loads(line) for line in run.out.read_text().splitlines()]
    assert [(r["id"], r["prediction"], r["correct"]) for r in results] == [
        ("001-1", "C", True), ("001-2", "B", False), ("601-1", "D", True)]
    assert summary["score"] == pytest.approx(66.67) and summary["n"] == 3
    assert summary["groups"]["duration_category"] == {"short": {"accuracy": 50.0, "n": 2},
                                                      "long": {"accuracy": 100.0, "n": 1}}
    assert summary["protocol"]["mode"] == "uniform" and summary["protocol"]["frames"] == 4
    assert summary["protocol"]["subtitles"] is False and summary["seconds_per_question"] >= 0
    assert json.loads(run.summary_path.read_text()) == summary
    assert results[0]["duration_s"] == pytest.approx(6.0) and results[0]["frames"] == 4


def test_results_are_resumable(tmp_path):
    items, run = videomme_run(tmp_path, limit=1)
    run_eval(ScriptedModel(["C"]), items, run)
    assert len(run.out.read_text().splitlines()) == 1
    run.limit = None
    model = ScriptedModel(["A", "A"])  # only the two questions not yet answered reach the model
    summary = run_eval(model, items, run)
    assert len(model.chats) == 2
    assert [r["prediction"] for r in read_results(run.out).values()] == ["C", "A", "A"]
    assert summary["results"] == 3 and summary["score"] == pytest.approx(66.67)
    again = ScriptedModel(["B"])
    run_eval(again, items, run)
    assert again.chats == []  # nothing left to do


def test_a_killed_run_keeps_every_finished_line_and_errors_are_retried(tmp_path):
    items, run = videomme_run(tmp_path)

    class Killed(ScriptedModel):
        def generate(self, chat, **kw):
            if len(self.chats) == 1:
                raise KeyboardInterrupt
            return super().generate(chat, **kw)

    with pytest.raises(KeyboardInterrupt):
        run_eval(Killed(["C", "C"]), items, run)
    assert [r["id"] for r in read_results(run.out).values()] == ["001-1"]
    short = ScriptedModel(["A"])  # runs out on the last question: recorded as an error
    summary = run_eval(short, items, run)
    assert summary["errors"] == 1 and read_results(run.out)["601-1"]["error"].startswith("ScriptExhausted")
    summary = run_eval(ScriptedModel(["D"]), items, run)  # the error is retried; the last line wins
    assert summary["errors"] == 0 and read_results(run.out)["601-1"]["correct"] is True


def test_missing_videos_are_counted_not_scored(tmp_path):
    items, run = videomme_run(tmp_path)
    (run.videos / "LongVid_01.mp4").unlink()
    summary = run_eval(ScriptedModel(["C", "A"]), items, run)
    assert summary["missing_videos"] == 1 and summary["n"] == 2 and summary["score"] == 100.0


def test_agent_mode_on_longvideobench_with_benchmark_subtitles(tmp_path):
    items = read_benchmark("longvideobench", lvb_val(tmp_path))
    lvb_subtitles(tmp_path)
    videos = eval_videos(tmp_path, ["86CxyhFV9MI.mp4", "xyz.mp4"])
    run = EvalRun(bench="longvideobench", videos=videos, out=tmp_path / "lvb.jsonl", mode="agent", config=CFG,
                  tools=tool_settings(tmp_path), subtitle_dirs=[tmp_path / "subtitles"], progress=False)
    script = [tool_call("SubtitleZoom", interval=[2.5, 5.0]), tool_call("Answer", answer="C"),
              tool_call("FrameZoom", interval=[0.0, 2.0]), ScriptedReply("I think A.")]
    summary = run_eval(ScriptedModel(script), items, run)
    first, second = read_results(run.out).values()
    assert first["turns"][1]["text"] == "[3.0s-4.5s] a red car"
    assert (first["prediction"], first["correct"], first["subtitles"]) == ("C", True, "benchmark")
    assert (second["prediction"], second["tool_calls"], second["frames"]) == ("A", 1, 8)
    assert summary["groups"]["duration_group"] == {"15": {"accuracy": 100.0, "n": 1},
                                                   "3600": {"accuracy": 100.0, "n": 1}}
    assert summary["routes"] == {"agent": 2} and summary["mean_tool_calls"] == 1.5
