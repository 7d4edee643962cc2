"""The dataset card: parses with huggingface_hub, its YAML alone loads the shards losslessly, every
statistic equals an independent recount from the tar files, the plots are real PNGs of the data, and the
model card parses too. The CLI is exercised through a throwaway typer app.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import msgpack
import pytest
import typer
from huggingface_hub import DatasetCard, ModelCard
from PIL import Image
from typer.testing import CliRunner

from cards.card import CardError, check_card, size_category, write_card, write_model_card
from cards.cli import card_command
from cards.plots import PLOT_FILES, write_plots
from cards.stats import collect_stats
from dataset_builder.writer import ShardWriter
from tests.fixtures.records import make_sample
from validation.shards import DatasetIndex, hub_yaml

DROPPED = {"wrong_answer": 41, "grounding_failed": 3, "over_budget": 2}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def carded(written_dataset, tmp_path_factory) -> Path:
    """A copy of the 24-sample dataset with a build report and a generated card."""
    folder = _copy(written_dataset[0], tmp_path_factory.mktemp("carded") / "ds")
    (folder / "build_report.json").write_text(json.dumps({"dropped": DROPPED, "elapsed_s": 12.5}))
    write_card(folder, repo="org/videothinker-traj")
    return folder


DURATIONS = {0: 600.0, 1: 1500.0, 2: 2700.0}  # video vid{i % 3}


@pytest.fixture(scope="module")
def two_splits(tmp_path_factory) -> Path:
    """10 samples: 7 in train, 3 in test (same 3 videos of different lengths in both), full provenance,
    one all-wrong fallback, no build report."""
    folder = tmp_path_factory.mktemp("two_splits")
    with ShardWriter(folder, max_shard_bytes=120_000) as writer:
        for i in range(10):
            record, frames = make_sample(i, n_initial=2 + i, duration=DURATIONS[i % 3])
            p = record.provenance
            p.models = {"teacher": "Qwen3-235B-A22B", "captioner": "Qwen2.5-VL-7B"}
            p.prompt_hashes = {"teacher": "sha256:ab12cd34"}
            p.package_version, p.preset, p.question_source = "0.1.0", "paper", f"CG-Bench part {i % 2}"
            p.created_at = f"2026-0{1 + i % 2}-15T10:00:00Z"
            p.kept_because = "all_wrong_fallback" if i == 4 else "correct"
            writer.write(record, frames, split="train" if i < 7 else "test")
    return folder


# -- an independent recount, straight from the tar members ------------------------------------------

def _records(folder: Path) -> list[tuple[str, dict, int]]:
    """(split, record as stored, number of frames) for every sample, read with tarfile + msgpack."""
    out = []
    for split, entries in json.loads((folder / "index.json").read_text())["splits"].items():
        for entry in entries:
            with tarfile.open(folder / entry["path"]) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
            for name, data in members.items():
                if name.endswith(".json"):
                    frames = msgpack.unpackb(members[name[:-5] + ".frames.msg"])
                    out.append((split, json.loads(data), len(frames)))
    return out


def _qwen_tokens(w: int, h: int) -> int:
    hh, ww = max(28, round(h / 28) * 28), max(28, round(w / 28) * 28)
    if hh * ww < 3136:
        beta = math.sqrt(3136 / (h * w))
        hh, ww = math.ceil(h * beta / 28) * 28, math.ceil(w * beta / 28) * 28
    assert hh * ww <= 16384 * 784  # fixture frames are small
    return hh * ww // 784


def _text_chars(r: dict) -> int:
    n = len(r["question"]) + sum(map(len, r["options"]))
    for m in r["messages"]:
        n += sum(len(p["text"]) for p in m["content"] if p["type"] == "text") + len(m.get("reasoning") or "")
        for c in m.get("tool_calls") or []:
            n += len(c["function"]["name"]) + len(json.dumps(c["function"]["arguments"], ensure_ascii=False))
    return n + len(json.dumps(r["tools"], ensure_ascii=False))


def _recount(folder: Path) -> dict:
    rows = _records(folder)
    videos = {r["video"]["id"]: r["video"]["duration_s"] for _, r, _ in rows}
    calls = [c["function"]["name"] for _, r, _ in rows for m in r["messages"] for c in m.get("tool_calls") or []]
    per_split = {}
    for split in dict.fromkeys(s for s, _, _ in rows):
        mine = [(r, n) for s, r, n in rows if s == split]
        vids = {r["video"]["id"]: r["video"]["duration_s"] for r, _ in mine}
        per_split[split] = {"trajectories": len(mine), "videos": len(vids), "hours": sum(vids.values()) / 3600,
                            "questions": len({(r["video"]["id"], r["question"], tuple(r["options"])) for r, _ in mine}),
                            "frames": sum(n for _, n in mine)}
    return {
        "rows": rows, "per_split": per_split, "videos": len(videos), "hours": sum(videos.values()) / 3600,
        "questions": len({(r["video"]["id"], r["question"], tuple(r["options"])) for _, r, _ in rows}),
        "kept": Counter(r["provenance"]["kept_because"] for _, r, _ in rows),
        "per_tool": Counter(calls),
        "per_trajectory": Counter(sum(1 for m in r["messages"] for c in m.get("tool_calls") or []
                                      if c["function"]["name"] != "Answer") for _, r, _ in rows),
        "frames": [n for _, _, n in rows],
        "tokens": [sum(_qwen_tokens(f["width"], f["height"]) for f in r["frames"]) + math.ceil(_text_chars(r) / 4)
                   for _, r, _ in rows],
        "licenses": Counter({r["video"]["id"]: r["video"]["license"] for _, r, _ in rows}.values()),
        "sources": Counter({(r["video"]["id"], r["question"], tuple(r["options"])): r["provenance"]["question_source"]
                            or "unknown" for _, r, _ in rows}.values()),
    }


# -- card ---------------------------------------------------------------------------------------------

def test_card_parses_with_huggingface_hub_and_declares_the_loading_yaml(carded):
    card = DatasetCard.load(carded / "README.md")
    data = card.data.to_dict()
    assert data["configs"] == hub_yaml(["train"])["configs"]
    assert data["dataset_info"] == hub_yaml(["train"])["dataset_info"]
    assert data["task_categories"] == ["video-text-to-text"]
    assert data["license"] == "cc-by-4.0"  # every fixture video is CC-BY-4.0
    assert data["language"] == ["en"] and data["size_categories"] == ["n<1K"]
    assert data["pretty_name"] and "videothinker" in data["tags"]
    check_card(card.content, ["train"])
    for heading in ("What the data is", "How it was built", "Sample format", "How to load", "Statistics",
                    "Licenses", "Limitations", "Citation"):
        assert f"## {heading}" in card.text
    assert "2601.15724" in card.text and 'load_dataset("org/videothinker-traj"' in card.text
    assert "streaming=True" in card.text and "loaders.wds import samples" in card.text
    assert "videothinker train" in card.text and "videothinker view" in card.text
    for png in PLOT_FILES.values():
        assert f"](assets/{png})" in card.text and (carded / "assets" / png).is_file()


def test_card_example_is_a_real_record(carded):
    text = (carded / "README.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)\n```", text, re.S).group(1))
    stored = {r["id"]: r for _, r, _ in _records(carded)}
    record = stored[example["id"]]
    assert example["question"] == record["question"] and example["answer"] == record["answer"]
    assert len(example["messages"]) == len(record["messages"])
    assert any(c["function"]["name"] in {"FrameZoom", "SpatialZoom"}
               for m in example["messages"] for c in m.get("tool_calls", []))


def test_check_card_rejects_changed_loading_yaml(carded):
    text = (carded / "README.md").read_text().replace("data/train-*.tar", "data/*.tar", 1)
    with pytest.raises(CardError, match="configs"):
        check_card(text, ["train"])


def test_card_yaml_alone_loads_losslessly(carded, tmp_path):
    from datasets import Image as HFImage
    from datasets import List, load_dataset

    folder = tmp_path / "only_yaml"
    shutil.copytree(carded / "data", folder / "data")
    shutil.copy(carded / "README.md", folder / "README.md")  # no index.json, no features= argument
    ds = load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))
    ds = ds.cast_column("frames.msg", List(HFImage(decode=False)))
    stored = {r["id"]: (r, n) for _, r, n in _records(carded)}
    assert len(ds) == len(stored) == 24
    from loaders.wds import Partition, samples

    by_key = {s.key: s for s in samples(carded, "train", partition=Partition())}
    for row in ds:
        key = row["json"]["id"]
        assert row["json"] == stored[key][0]  # every field, including ones absent from the first 5 samples
        assert [f["bytes"] for f in row["frames.msg"]] == by_key[key].frames
        assert by_key[key].record.model_dump() == by_key[key].record.model_validate(row["json"]).model_dump()
    stream = load_dataset(str(folder), split="train", streaming=True)
    first = next(iter(stream))
    assert first["json"] == stored[first["json"]["id"]][0]


# -- statistics -----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["carded", "two_splits"])
def test_every_statistic_equals_a_recount(which, request):
    folder = request.getfixturevalue(which)
    stats, want = collect_stats(folder), _recount(folder)
    assert list(stats.splits) == list(want["per_split"])
    for split, expected in want["per_split"].items():
        assert stats.splits[split].as_dict() == pytest.approx(expected)
    assert stats.total.trajectories == len(want["rows"]) and stats.total.videos == want["videos"]
    assert stats.total.hours == pytest.approx(want["hours"]) and stats.total.questions == want["questions"]
    assert stats.kept_because == want["kept"]
    assert stats.tool_calls_by_tool == want["per_tool"]
    assert stats.tool_calls_per_trajectory == want["per_trajectory"]
    assert sorted(stats.frames_per_sample) == sorted(want["frames"])
    assert sorted(stats.tokens_per_sample) == sorted(want["tokens"])
    assert stats.video_licenses == want["licenses"] and stats.question_sources == want["sources"]
    assert stats.dropped == (DROPPED if which == "carded" else None)


def test_card_text_reports_the_recount(carded):
    text, want = (carded / "README.md").read_text(), _recount(carded)
    s = want["per_split"]["train"]
    row = f"| train | {s['trajectories']} | {s['questions']} | {s['videos']} | {s['hours']:.2f} | {s['frames']} |"
    assert row in text
    for reason, count in DROPPED.items():
        assert f"| {reason} | {count} |" in text
    for tool, count in want["per_tool"].items():
        assert f"| `{tool}` | {count} |" in text
    for n, count in want["per_trajectory"].items():
        assert f"| {n} | {count} |" in text
    for reason, count in want["kept"].items():
        assert f"| {reason} | {count} |" in text
    mean_tokens = sum(want["tokens"]) / len(want["tokens"])
    assert f"{round(mean_tokens):,} on\naverage" in text and "an estimate" in text
    assert "| CC-BY-4.0 | 3 |" in text


def test_two_split_card_has_per_split_rows_and_unique_totals(two_splits, tmp_path):
    folder = _copy(two_splits, tmp_path / "ds")
    text = write_card(folder).read_text()
    card = DatasetCard(text)
    assert card.data.to_dict()["configs"] == hub_yaml(["train", "test"])["configs"]
    assert "| train | 7 |" in text and "| test | 3 |" in text
    hours = sum(DURATIONS.values()) / 3600
    assert f"| **all** (videos and questions unique across splits) | 10 | 10 | 3 | {hours:.2f} |" in text
    assert "holds no `build_report.json`" in text
    assert "| preset | paper (10) |" in text and "| model: teacher | Qwen3-235B-A22B |" in text
    assert "| prompt hash: teacher | sha256:ab12cd34 |" in text and "| created | 2026-01-15 to 2026-02-15 |" in text
    assert "| package | videothinker-traj 0.1.0 |" in text and "| all_wrong_fallback | 1 |" in text
    assert "| CG-Bench part 0 | 5 |" in text and "1 flagged `all_wrong_fallback`" in text


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 50_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


# -- plots ------------------------------------------------------------------------------------------

def test_plots_are_real_pngs_that_follow_the_data(carded, two_splits, tmp_path):
    a = {n: (carded / "assets" / f).read_bytes() for n, f in PLOT_FILES.items()}
    again = write_plots(tmp_path / "again", collect_stats(carded))
    b_dir = tmp_path / "b"
    write_plots(b_dir, collect_stats(two_splits))
    for name, data in a.items():
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            assert image.width >= 600 and image.height >= 300
        assert (tmp_path / "again" / again[name]).read_bytes() == data  # deterministic
        assert (b_dir / "assets" / PLOT_FILES[name]).read_bytes() != data  # other data, other picture


# -- model card -------------------------------------------------------------------------------------

def test_model_card_parses(tmp_path):
    path = write_model_card(
        tmp_path / "model", model_name="VideoThinker-7B repro", base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        dataset_repo="org/videothinker-traj", data_revision="v1.0", preset="paper",
        evaluation={"MLVU (test)": {"uniform frames": 48.0, "agent": 54.8}, "LVBench": {"agent": 48.9}},
        training={"LoRA": "r64, alpha 16, all linear", "epochs": 3})
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["base_model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and data["datasets"] == ["org/videothinker-traj"]
    assert data["pipeline_tag"] == "video-text-to-text" and data["library_name"] == "peft"
    assert "| benchmark | uniform frames | agent |" in card.text
    assert "| MLVU (test) | 48.0 | 54.8 |" in card.text and "| LVBench | – | 48.9 |" in card.text
    assert "revision `v1.0`" in card.text and "`paper`" in card.text


# -- CLI ---------------------------------------------------------------------------------------------

def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("card")(card_command)
    app.command("noop")(lambda: None)  # two commands: the subcommand name is required
    return app


def test_card_command(written_dataset, tmp_path):
    folder = _copy(written_dataset[0], tmp_path / "ds")
    result = CliRunner().invoke(_app(), ["card", str(folder), "--repo", "me/set"])
    assert result.exit_code == 0, result.output
    assert "me/set" in (folder / "README.md").read_text()
    assert DatasetIndex.load(folder).samples() == 24


@pytest.mark.parametrize("make", ["missing", "no_index"])
def test_card_command_user_errors_are_one_line(make, tmp_path):
    folder = tmp_path / "x"
    if make == "no_index":
        folder.mkdir()
    result = CliRunner().invoke(_app(), ["card", str(folder)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
