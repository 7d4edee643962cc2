"""The three uses in one line: build shards from real videos, load them with `datasets`, train on them.

videothinker build (tiny preset) -> datasets.load_dataset(folder) -> videothinker train (tiny Qwen2.5-VL, TRL)
-> videothinker agent with the tuned weights on a real video.
"""

from __future__ import annotations

import datasets
import typer
from typer.testing import CliRunner

from agent.commands import agent_command
from dataset_builder.build import build_command
from sft.cli import train_command
from tests.builder_fixtures import make_build_inputs
from validation.validator import validate_path


def _app(command) -> typer.Typer:
    app = typer.Typer()
    app.command()(command)
    return app


def test_build_load_train_and_run_the_agent(tmp_path):
    videos, questions, config = make_build_inputs(tmp_path)
    out = tmp_path / "dataset"
    built = CliRunner().invoke(_app(build_command), [
        "--videos", str(videos), "--questions", str(questions), "--out", str(out), "--preset", "tiny",
        "--config", str(config), "--no-progress", "--keep-wrong-when-all-fail", "--workdir", str(tmp_path / "w")])
    assert built.exit_code == 0, built.output
    assert validate_path(out).ok

    rows = list(datasets.load_dataset(str(out), split="train", streaming=True))
    assert rows and all(len(r["frames.msg"]) == len(r["json"]["frames"]) for r in rows)

    run = tmp_path / "run"
    trained = CliRunner().invoke(_app(train_command), [
        "--data", str(out), "--model", "tiny:qwen2_5_vl", "--preset", "tiny", "--max-steps", "3",
        "--output-dir", str(run), "--num-workers", "0"])
    assert trained.exit_code == 0, trained.output
    assert (run / "config.json").exists() or (run / "adapter_config.json").exists()

    answered = CliRunner().invoke(_app(agent_command), [
        "--model", str(run), "--video", str(videos / "cfr.mp4"), "--question", "What is shown?",
        "--options", "blocks", "--options", "people", "--mode", "agent", "--max-steps", "1",
        "--max-new-tokens", "8", "--frames", "4"])
    assert answered.exit_code == 0, answered.output
    assert "answer:" in answered.output
