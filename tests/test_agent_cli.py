"""``agent`` and ``eval`` commands through typer's CliRunner on a throwaway app."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from agent.commands import agent_command, eval_command
from tests.agent_fixtures import eval_videos, tool_call, videomme_official
from tests.fixtures.videos import cfr_video

app = typer.Typer()
app.command("agent")(agent_command)
app.command("eval")(eval_command)
runner = CliRunner()


def script_file(tmp_path, replies) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def agent_args(tmp_path, model: str, *extra: str) -> list[str]:
    return ["agent", "--model", model, "--video", str(cfr_video().path), "--question", "What is shown?",
            "--options", "A. a dog", "--options", "B. blocks", "--options", "(C) rain", "--frames", "4",
            "--zoom-frames", "2", "--max-pixels", "36864", "--cache-dir", str(tmp_path / "cache"), *extra]


def test_agent_prints_the_trajectory_and_the_answer(tmp_path):
    model = script_file(tmp_path, [tool_call("FrameZoom", interval=[1.0, 2.0]), tool_call("Answer", answer="B")])
    result = runner.invoke(app, agent_args(tmp_path, model))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "[tool FrameZoom] 2 frame(s) at 1.2, 1.8 s"
    assert lines[-1] == "answer: B. blocks"
    assert "route: agent; 2 tool turns, 2 tool calls, 6 frames" in result.stdout


def test_agent_json_and_adaptive_mode(tmp_path):
    model = script_file(tmp_path, [{"text": "C", "confidence": 0.9}])
    result = runner.invoke(app, agent_args(tmp_path, model, "--mode", "adaptive", "--json"))
    assert result.exit_code == 0, result.output
    traj = json.loads(result.stdout)
    assert (traj["answer"], traj["route"], traj["confidence"]) == ("C", "direct", 0.9)


def test_eval_writes_results_and_summary(tmp_path):
    annotations = videomme_official(tmp_path)
    videos = eval_videos(tmp_path, ["fFjv93ACGo8.mp4", "LongVid_01.mp4"])
    out = tmp_path / "res" / "results.jsonl"
    model = script_file(tmp_path, ["C", "A"])
    result = runner.invoke(app, ["eval", "--model", model, "--bench", "videomme", "--annotations", str(annotations),
                                 "--videos", str(videos), "--mode", "uniform", "--limit", "2", "--out", str(out),
                                 "--frames", "4", "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "videomme accuracy = 100.00 on 2 scored questions (mode uniform" in result.stdout
    assert "duration_category: short 100.0" in result.stdout
    summary = json.loads((tmp_path / "res" / "results.summary.json").read_text())
    assert summary["n"] == 2 and summary["protocol"]["frames"] == 4
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize("args,message", [
    (["agent", "--model", "m", "--video", "/nope.mp4", "--question", "q", "--options", "a", "--options", "b"],
     "/nope.mp4: video file does not exist"),
    (["agent", "--model", "m", "--video", "{video}", "--question", "q", "--options", "a"], "at least two --options"),
    (["agent", "--model", "m", "--video", "{video}", "--question", "q", "--options", "a", "--options", "b",
      "--mode", "always"], "unknown mode 'always'"),
    (["agent", "--model", "{tmp}/no-model", "--video", "{video}", "--question", "q", "--options", "a", "--options",
      "b"], "model folder"),
    (["agent", "--model", "nosuch/model", "--video", "{video}", "--question", "q", "--options", "a", "--options",
      "b"], "cannot load model 'nosuch/model'"),
    (["eval", "--model", "m", "--bench", "nextqa", "--annotations", "a.json", "--videos", "{tmp}"],
     "unknown benchmark 'nextqa'"),
    (["eval", "--model", "m", "--bench", "mlvu", "--annotations", "{tmp}/none.json", "--videos", "{tmp}"],
     "none.json: annotation file does not exist"),
    (["eval", "--model", "m", "--bench", "mlvu", "--annotations", "a.json", "--videos", "{tmp}/novideos"],
     "videos folder does not exist"),
    (["eval", "--model", "scripted:{tmp}/none.json", "--bench", "videomme", "--annotations", "{ann}", "--videos",
      "{tmp}"], "cannot read the script"),
])
def test_bad_input_is_one_line_error_and_exit_2(tmp_path, args, message):
    ann = videomme_official(tmp_path)
    args = [a.format(tmp=tmp_path, video=cfr_video().path, ann=ann) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
