"""A real TRL run on CPU with tiny offline models, streaming from shards written by ShardWriter."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
import torch

from sft.config import load_recipe
from sft.data import assign_readers, compute_max_steps, streamed_dataset
from sft.train import STREAM_FILE, train
from tests.sft_fixtures import OVER_BUDGET, over_budget_dataset, train_dataset  # noqa: F401


def _losses(result) -> list[float]:
    return [h["loss"] for h in result["log_history"] if "loss" in h]


def _recipe(data, out, **kw):
    base = {"data": str(data), "output_dir": str(out), "report_to": "none", "num_workers": 2, "epochs": None}
    return load_recipe("tiny", **(base | kw))


def _trained(result) -> dict[int, list[str]]:
    """step -> sample keys, as the training loop consumed them."""
    lines = [json.loads(line) for line in open(result["samples_log"])]
    return {line["step"]: line["keys"] for line in lines}


@pytest.fixture(scope="module")
def first_run(train_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train(_recipe(train_dataset, out, max_steps=20, save_steps=5))


def test_loss_falls_on_a_small_repeated_set(first_run):
    _, result = first_run
    losses = _losses(result)
    assert result["global_step"] == 20 and len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
    seen = _trained(result)
    assert sorted(seen) == list(range(1, 21))
    for first in range(1, 21, 4):  # 8 samples, batch 2, 2 workers: every 4 steps is an epoch, each sample once
        keys = [k for step in range(first, first + 4) for k in seen[step]]
        assert sorted(keys) == [f"sample-{i:05d}" for i in range(4, 12)], (first, keys)
    assert result["budget"]["seen"] == 40 and result["budget"]["skipped"] == {}


def test_resume_continues_the_step_count_and_the_data_position(first_run, train_dataset, tmp_path):
    """Resume from step 15 (mid-epoch, odd: worker 1's turn; two workers, shuffled): steps 16..19 train on
    exactly what steps 16..19 of the uninterrupted run did, from the same weights."""
    out, first = first_run
    shutil.copytree(out / "checkpoint-15", tmp_path / "checkpoint-15")
    shutil.copy(out / STREAM_FILE, tmp_path / STREAM_FILE)
    result = train(_recipe(train_dataset, tmp_path, max_steps=19, save_steps=100, resume=True))
    logged = {h["step"]: h["loss"] for h in result["log_history"] if "loss" in h}  # 1..15 come from the state
    assert result["global_step"] == 19 and sorted(logged)[-4:] == [16, 17, 18, 19]
    # the same weights, optimizer state and data as the uninterrupted run: the same losses
    assert [logged[s] for s in (16, 17, 18, 19)] == pytest.approx(_losses(first)[15:19], rel=1e-3)
    before, after = _trained(first), _trained(result)
    assert sorted(after) == [16, 17, 18, 19]
    assert [after[s] for s in after] == [before[s] for s in (16, 17, 18, 19)]
    assert [after[s] for s in after] != [before[s] for s in (1, 2, 3, 4)]  # not a restart of the stream


def test_skip_policy_filters_before_batching_and_counts(over_budget_dataset, tmp_path):
    """Batch size 1, skip policy, two workers: over-budget samples never reach a batch and are all counted."""
    result = train(_recipe(over_budget_dataset, tmp_path, max_steps=4, save_steps=100, per_device_batch_size=1,
                           shuffle_buffer=0, budget=OVER_BUDGET))
    assert result["global_step"] == 4  # one epoch of the 4 samples that fit
    budget = result["budget"]
    assert budget["skipped"] == {"too_many_frames": 2, "too_many_tokens": 1}
    assert budget["skipped_keys"] == {"too_many_frames": ["sample-00030", "sample-00031"],
                                      "too_many_tokens": ["sample-00032"]}
    assert budget["seen"] == 7 and budget["unchanged"] == 4 and budget["policy"] == "skip"
    trained = [k for keys in _trained(result).values() for k in keys]
    assert sorted(trained) == [f"sample-{i:05d}" for i in range(4, 8)]


def test_stream_resumes_at_a_batch_position(train_dataset):
    """Two workers, batch 2, shuffled: the stream resumed after 5 batches yields batches 5.. of the full one."""
    kw = {"shuffle_buffer": 4, "seed": 3, "repeat": True, "workers": 2, "batch_size": 2}

    def batches(resume: int, n: int) -> list[list[str]]:
        ds, _ = streamed_dataset(str(train_dataset), "train", resume_batches=resume, **kw)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=lambda rows: rows)
        out = []
        for batch in loader:
            out.append([row["key"] for row in batch])
            if len(out) == n:
                return out
        return out

    full = batches(0, 12)
    assert batches(5, 7) == full[5:]
    epoch = Counter(k for b in full[:4] for k in b)  # 8 samples: 4 batches of 2 are one epoch, once each
    assert len(epoch) == 8 and set(epoch.values()) == {1}
    assert Counter(k for b in full[4:8] for k in b) == epoch


def test_readers_are_balanced_and_cover_every_shard():
    urls = [f"s{i}" for i in range(7)]
    readers = assign_readers(urls, [5, 1, 1, 4, 2, 2, 1], 3)
    assert sorted(u for r in readers for u in r["urls"]) == urls
    assert sorted(sum([5, 1, 1, 4, 2, 2, 1][int(u[1:])] for u in r["urls"]) for r in readers) == [5, 5, 6]
    few = assign_readers(urls[:2], None, 4)  # fewer shards than readers: every reader keeps every 4th sample
    assert [(r["every"], r["offset"]) for r in few] == [(4, 0), (4, 1), (4, 2), (4, 3)]


def test_eval_split_and_max_steps_from_index(train_dataset):
    ds, n = streamed_dataset(str(train_dataset), "eval")
    assert n == 2 and [row["key"] for row in ds] == ["eval-sample-00020", "eval-sample-00021"]
    assert compute_max_steps(8, 3, 1, 2, 1) == 12 and compute_max_steps(8, 3, 1, 2, 4) == 3


def test_qwen3_vl_trains(train_dataset, tmp_path):
    result = train(_recipe(train_dataset, tmp_path, model="tiny:qwen3_vl", max_steps=4, save_steps=100,
                           num_workers=0))
    losses = _losses(result)
    assert result["global_step"] == 4 and sum(losses[-2:]) < sum(losses[:2]), losses


@pytest.mark.parametrize("family", ["smolvlm2", "llava_onevision"])
def test_new_families_train_with_lora(train_dataset, tmp_path, family):
    """LoRA on the language model only (SmolVLM: ``text_model``; LLaVA-OV: ``language_model``), loss falls."""
    from safetensors import safe_open

    result = train(_recipe(train_dataset, tmp_path, model=f"tiny:{family}", max_steps=3, save_steps=100,
                           num_workers=0, lora=True, lora_r=8, learning_rate=1e-2))
    losses = _losses(result)
    assert result["global_step"] == 3 and losses[-1] < losses[0], losses
    with safe_open(str(tmp_path / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    lm = "text_model" if family == "smolvlm2" else "language_model"
    assert keys and all("lora_" in k and lm in k for k in keys)
    assert {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in keys} == {"q_proj", "k_proj", "v_proj", "o_proj",
                                                                        "gate_proj", "up_proj", "down_proj"}


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
