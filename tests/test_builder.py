"""`videothinker build --preset tiny` end to end: real videos decoded, a real random-weight captioner,
the stand-in teacher, grounding, shards that validate and load, and reruns that give the same shards."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from dataset_builder.build import build_command
from loaders import wds
from tests.builder_fixtures import make_build_inputs
from tests.fixtures.videos import cfr_video, read_index, vfr_video
from validation.shards import DatasetIndex, sha256_file
from validation.validator import validate_path

app = typer.Typer()
app.command()(build_command)


def _build(videos: Path, questions: Path, config: Path, out: Path, *extra: str):
    args = ["--videos", str(videos), "--questions", str(questions), "--out", str(out), "--preset", "tiny",
            "--config", str(config), "--no-progress", "--workdir", str(out.parent / f"work-{out.name}"), *extra]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    videos, questions, config = make_build_inputs(root, corrupt=True)
    result = _build(videos, questions, config, root / "out")
    assert result.exit_code == 0, result.output
    return root, videos, questions, config, root / "out", result.output


def test_build_writes_valid_loadable_shards(built):
    *_, out, output = built
    report = validate_path(out)
    assert report.ok, report.summary()
    samples = list(wds.samples(out))
    assert samples, output
    assert DatasetIndex.load(out).samples("train") == len(samples)


def test_every_question_is_accounted_for(built):
    *_, out, _ = built
    report = json.loads((out / "build_report.json").read_text())
    k = 4
    episodes_total = report["episodes"] + report["dropped"].get("video_rejected", 0)
    assert episodes_total == 5 * k  # 4 good questions + 1 on the corrupt video
    assert report["kept"] + sum(report["dropped"].values()) == episodes_total
    assert report["rejected_videos"], "the text file named .mp4 is rejected with a reason"


def test_grounded_frames_are_the_frames_displayed_at_their_timestamps(built):
    *_, out, _ = built
    truth = {"cfr": cfr_video(), "vfr": vfr_video()}
    checked = 0
    for sample in wds.samples(out):
        video = truth.get(sample.record.video.id)
        if video is None:
            continue
        for info, blob in zip(sample.record.frames, sample.frames):
            if info.crop is None:
                assert read_index(Image.open(io.BytesIO(blob)).convert("RGB")) == video.index_at(info.timestamp_s)
                checked += 1
    assert checked > 0


def test_captions_are_replaced_by_frames(built):
    *_, out, _ = built
    for sample in wds.samples(out):
        record = sample.record
        first_user = record.messages[1]
        assert first_user.content[0].type == "video"
        assert "Global caption" not in first_user.text()
        names = [c.function.name for c in record.tool_calls()]
        assert "CaptionZoom" not in names
        for msg in record.messages:
            if msg.role == "tool" and msg.name == "FrameZoom":
                assert [p.type for p in msg.content] == ["video"]
                call = next(c for c in record.tool_calls() if c.id == msg.tool_call_id)
                start, end = call.function.arguments["interval"]
                assert all(start <= t <= end for t in msg.content[0].timestamps)


def test_rerun_is_served_from_cache_and_gives_identical_shards(built):
    root, videos, questions, config, out, _ = built
    again = root / "out"
    before = DatasetIndex.load(out).model_dump()
    result = _build(videos, questions, config, again)
    assert result.exit_code == 0, result.output
    report = json.loads((again / "build_report.json").read_text())
    assert report["cache"]["misses"] == 0
    assert DatasetIndex.load(again).model_dump() == before


def test_killed_build_resumes_to_the_same_shards(built, tmp_path):
    root, videos, questions, config, out, _ = built
    target = tmp_path / "out"
    cmd = [sys.executable, "-m", "agent.cli", "build", "--videos", str(videos), "--questions", str(questions),
           "--out", str(target), "--preset", "tiny", "--config", str(config), "--no-progress",
           "--workdir", str(tmp_path / "work")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    cache = tmp_path / "work" / "cache.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and _cached_rows(cache) < 6:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    final_shas = {e.sha256 for e in DatasetIndex.load(out).splits["train"]}
    for shard in target.glob("data/*.tar"):  # anything under a final name is a complete, final shard
        assert sha256_file(shard) in final_shas
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert DatasetIndex.load(target).model_dump()["splits"] == DatasetIndex.load(out).model_dump()["splits"]


def _cached_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_bad_questions_file_is_a_one_line_error(tmp_path):
    videos, _, config = make_build_inputs(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "video": "cfr.mp4", "question": "?", "options": ["a", "b"],
                               "answer": "Z is not an option"}) + "\n")
    result = _build(videos, bad, config, tmp_path / "out")
    assert result.exit_code == 2
    assert "bad.jsonl: line 1" in result.output and "matches no option" in result.output
    assert "Traceback" not in result.output


def test_bad_question_items_are_skipped_counted_and_the_build_completes(tmp_path):
    videos, questions, config = make_build_inputs(tmp_path)
    lines = questions.read_text().splitlines()
    extra = [json.loads(lines[2]), {"id": "no-answer", "video": "cfr.mp4", "question": "?", "options": ["a", "b"],
                                    "answer": "c"}, {"id": "ghost", "video": "ghost.mp4", "question": "?",
                                                     "options": ["a", "b"], "answer": "A"}]
    questions.write_text("\n".join([*lines[2:3], "{not json", *(json.dumps(e) for e in extra)]) + "\n")
    result = _build(videos, questions, config, tmp_path / "out")
    assert result.exit_code in (0, 1), result.output  # 1 only when nothing was kept
    assert "line 2 is not valid JSON" in result.output and "duplicate question id" in result.output
    report = json.loads((tmp_path / "out" / "build_report.json").read_text())
    assert report["dropped"]["question_invalid"] == 3
    assert report["dropped"]["video_missing"] == 1
    assert report["questions"] == 1


def test_missing_videos_folder_is_a_one_line_error(tmp_path):
    _, questions, config = make_build_inputs(tmp_path)
    result = _build(tmp_path / "nope", questions, config, tmp_path / "out")
    assert result.exit_code == 2
    assert "nope: no such folder" in result.output


def test_generated_questions_are_built_and_marked(tmp_path):
    videos, _, config = make_build_inputs(tmp_path)
    for extra in ("cfr.mp4", "vfr.mp4"):
        (videos / extra).unlink()
    out = tmp_path / "gen"
    args = ["--videos", str(videos), "--out", str(out), "--preset", "tiny", "--config", str(config),
            "--no-progress", "--workdir", str(tmp_path / "work-gen"), "--generate-questions", "2",
            "--keep-wrong-when-all-fail"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "build_report.json").read_text())
    assert report["generated_questions"] + sum(report["generated_invalid"].values()) == 2
    assert report["questions"] == report["generated_questions"] > 0
    assert validate_path(out).ok
    records = [s.record for s in wds.samples(out)]
    assert records and all(r.provenance.question_source == "generated" for r in records)


def test_questions_or_generation_is_required(tmp_path):
    videos, _, config = make_build_inputs(tmp_path)
    result = CliRunner().invoke(app, ["--videos", str(videos), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--generate-questions" in result.output


@pytest.mark.parametrize("text, message", [
    ("teacher: [1\n", "not valid YAML at line 2"),
    ("teacher: 5\n", "'teacher' must be a mapping"),
    ("teacher: {backend: nope}\n", "unknown backend 'nope'"),
    ("teacher: {backend: openai, modle: x}\n", "known keys"),
    ("max_stpes: 3\n", "unknown build settings ['max_stpes']"),
    ("- a list\n", "a build config is a YAML mapping"),
])
def test_bad_build_config_is_a_one_line_error_naming_the_file(tmp_path, text, message):
    videos, questions, _ = make_build_inputs(tmp_path)
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = _build(videos, questions, config, tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: {config}:" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_an_output_folder_that_cannot_be_created_is_a_one_line_error(tmp_path):
    videos, questions, config = make_build_inputs(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _build(videos, questions, config, blocker / "out")
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output


def test_a_grounded_record_the_writer_refuses_is_counted_not_a_crash(tmp_path, monkeypatch):
    from dataset_builder import pipeline
    from dataset_builder.config import load_config
    from dataset_builder.inputs import list_videos, make_jobs
    from dataset_builder.questions import read_questions
    from tests.fixtures.records import make_sample

    def broken_ground(*args, **kwargs):
        record, frames = make_sample(1)
        return record, [*frames, frames[0]]  # one frame more than the record describes

    monkeypatch.setattr(pipeline, "ground", broken_ground)
    videos, questions, config = make_build_inputs(tmp_path)
    jobs, _ = make_jobs(list_videos(videos), read_questions(questions), videos)
    report = pipeline.run_build(jobs[:1], load_config("tiny", config, keep_wrong_when_all_fail=True),
                                tmp_path / "out", tmp_path / "work", progress=False)
    assert report["kept"] == 0 and report["dropped"]["rejected_by_writer"] >= 1
