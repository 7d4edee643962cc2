"""A real TRL run on CPU with tiny offline models, streaming from shards written by ShardWriter."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from sft.config import load_recipe
from sft.data import compute_max_steps, streamed_dataset
from sft.train import train
from tests.sft_fixtures import train_dataset  # noqa: F401


def _losses(result) -> list[float]:
    return [h["loss"] for h in result["log_history"] if "loss" in h]


def _recipe(data, out, **kw):
    base = {"data": str(data), "output_dir": str(out), "report_to": "none", "num_workers": 2, "epochs": None}
    return load_recipe("tiny", **(base | kw))


@pytest.fixture(scope="module")
def first_run(train_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train(_recipe(train_dataset, out, max_steps=20, save_steps=10))


def test_loss_falls_on_a_small_repeated_set(first_run):
    _, result = first_run
    losses = _losses(result)
    assert result["global_step"] == 20 and len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_resume_continues_the_step_count(first_run, train_dataset):
    out, _ = first_run
    assert (out / "checkpoint-20").is_dir()
    result = train(_recipe(train_dataset, out, max_steps=24, save_steps=10, resume=True))
    steps = [h["step"] for h in result["log_history"] if "loss" in h]
    assert result["global_step"] == 24 and steps[-4:] == [21, 22, 23, 24]
    assert all(not torch.isnan(torch.tensor(v)) for v in _losses(result))


def test_two_workers_see_each_sample_once_per_epoch(train_dataset):
    ds, n = streamed_dataset(str(train_dataset), "train", shuffle_buffer=4, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    for epoch in range(2):
        ds.set_epoch(epoch)
        keys = Counter(row["key"] for row in loader)
        assert len(keys) == n == 8 and set(keys.values()) == {1}


def test_eval_split_and_max_steps_from_index(train_dataset):
    ds, n = streamed_dataset(str(train_dataset), "eval")
    assert n == 2 and all(row["key"].startswith("eval-") for row in ds)
    assert compute_max_steps(8, 3, 1, 2, 1) == 12 and compute_max_steps(8, 3, 1, 2, 4) == 3


def test_qwen3_vl_trains(train_dataset, tmp_path):
    result = train(_recipe(train_dataset, tmp_path, model="tiny:qwen3_vl", max_steps=6, save_steps=100,
                           num_workers=0))
    losses = _losses(result)
    assert result["global_step"] == 6 and sum(losses[-3:]) < sum(losses[:3]), losses


def _cli():
    import typer

    from sft.cli import train_command

    app = typer.Typer()
    app.command()(train_command)
    return app


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "/no/such/dir", "--model", "tiny:qwen2_5_vl"], "no such dataset folder"),
    (["--model", "tiny:llama"], "unknown"),
    (["--model", "tiny:qwen2_5_vl", "--preset", "nope"], "unknown preset"),
])
def test_cli_bad_input_is_one_error_line(train_dataset, args, message):
    from typer.testing import CliRunner

    if "--data" not in args:
        args = ["--data", str(train_dataset), *args]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
