"""Crash safety: SIGKILL `videothinker build` at 10 seeded points across its stages, then rerun.

Kill points use the test-only hook ``VIDEOTHINKER_KILL_AT="EVENT:N"`` (dataset_builder/cache.py): the
build SIGKILLs itself right after the N-th cache row (probe/caption/index/teacher calls), tar member,
shard rename, or just before index.json. Points are drawn with a fixed seed, stratified over the stages.
Five chains each kill a first run, then kill its rerun at a shard-writing point, then rerun to the end.

After every kill: each file under a final shard name is byte-identical to the uninterrupted build's shard
of that name (no partial shard is ever visible). After every completed rerun: the same shards (names,
sha256), the same keys with no duplicate and none lost, a clean `validate`, no temporary files left.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dataset_builder.writer import ShardWriter
from loaders import wds
from tests.fixtures.records import make_samples
from tests.fixtures.videos import cfr_video, vfr_video
from validation.shards import DatasetIndex, sha256_file
from validation.validator import validate_path

SEED = 20260121
REPO = Path(__file__).resolve().parents[1]


def _inputs(root: Path) -> Path:
    videos = root / "videos"
    videos.mkdir(parents=True)
    shutil.copy(cfr_video().path, videos / "cfr.mp4")
    shutil.copy(vfr_video().path, videos / "vfr.mp4")
    questions = [{"id": f"q{i}", "video": ("cfr.mp4", "vfr.mp4")[i % 2], "question": f"What is shown ({i})?",
                  "options": ["black and white blocks", "people", "a river"], "answer": "A"} for i in range(4)]
    (root / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (root / "build.yaml").write_text("samples_per_question: 2\nmax_pixels: 9216\nmax_shard_bytes: 40000\n")
    return root


def _run(inputs: Path, run_dir: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VIDEOTHINKER_KILL_AT"}
    if kill_at:
        env["VIDEOTHINKER_KILL_AT"] = kill_at
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"  # two builds share the 2 CPUs without thrashing
    cmd = [sys.executable, "-m", "agent.cli", "build", "--videos", str(inputs / "videos"),
           "--questions", str(inputs / "questions.jsonl"), "--out", str(run_dir / "out"), "--preset", "tiny",
           "--config", str(inputs / "build.yaml"), "--no-progress", "--workdir", str(run_dir / "work"),
           "--keep-wrong-when-all-fail"]
    return subprocess.run(cmd, env=env, cwd=run_dir, capture_output=True, text=True, timeout=240)


def _cache_rows(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "work" / "cache.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0]


def _shards(out: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted((out / "data").glob("*.tar"))}


def _keys(out: Path) -> list[str]:
    return [s.key for s in wds.samples(out)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    inputs = _inputs(root / "inputs")
    ref = root / "reference"
    ref.mkdir()
    done = _run(inputs, ref)
    assert done.returncode == 0, done.stderr[-2000:]
    out = ref / "out"
    index = DatasetIndex.load(out)
    assert len(index.splits["train"]) >= 3, "the test needs several shards to kill between"
    counts = {"cache_put": _cache_rows(ref), "shard_member": 2 * index.samples("train"),
              "shard_renamed": len(index.splits["train"])}
    return root, inputs, _shards(out), _keys(out), counts


def _points(counts: dict[str, int]) -> list[tuple[str, str]]:
    """Five chains (first-run kill, rerun kill): cache rows stratified in quarters, writer events in thirds."""
    rng = random.Random(SEED)
    puts, members, shards = counts["cache_put"], counts["shard_member"], counts["shard_renamed"]

    def within(n: int, part: int, parts: int) -> int:
        lo, hi = n * part // parts + 1, max(n * (part + 1) // parts, n * part // parts + 1)
        return rng.randint(lo, hi)

    mid_sample = 2 * rng.randint(1, members // 2 - 1) + 1  # after a .json, before its .frames.msg
    return [
        (f"cache_put:{within(puts, 0, 4)}", f"shard_member:{within(members, 0, 3)}"),
        (f"cache_put:{within(puts, 1, 4)}", f"shard_renamed:{rng.randint(1, shards)}"),
        (f"cache_put:{within(puts, 2, 4)}", "before_index:1"),
        (f"cache_put:{within(puts, 3, 4)}", f"shard_member:{mid_sample}"),
        (f"shard_member:{within(members, 2, 3)}", f"shard_renamed:{rng.randint(1, shards)}"),
    ]


def _chain(root: Path, inputs: Path, n: int, chain: tuple[str, str], ref_shards: dict[str, str]) -> dict:
    run_dir = root / f"chain{n}"
    run_dir.mkdir()
    seen = []
    for point in chain:
        killed = _run(inputs, run_dir, kill_at=point)
        assert killed.returncode == -signal.SIGKILL, f"{point}: not killed (rc {killed.returncode})"
        visible = _shards(run_dir / "out") if (run_dir / "out" / "data").exists() else {}
        partial = {name for name, sha in visible.items() if ref_shards.get(name) != sha}
        assert not partial, f"after a kill at {point}: partial shards visible under final names: {partial}"
        seen.append((point, len(visible)))
    done = _run(inputs, run_dir)
    assert done.returncode == 0, f"rerun after {chain}: {done.stderr[-2000:]}"
    return {"dir": run_dir, "seen": seen, "report": json.loads((run_dir / "out" / "build_report.json").read_text())}


def test_sigkill_at_ten_seeded_points_then_rerun_gives_identical_shards(reference):
    root, inputs, ref_shards, ref_keys, counts = reference
    chains = _points(counts)
    assert len({p for chain in chains for p in chain}) == 10
    with ThreadPoolExecutor(max_workers=2) as pool:  # two builds at a time on the 2-CPU CI machine
        results = list(pool.map(lambda nc: _chain(root, inputs, nc[0], nc[1], ref_shards), enumerate(chains)))
    assert any(count for r in results for _, count in r["seen"]), "no kill landed after a shard was final"
    for chain, result in zip(chains, results):
        out = result["dir"] / "out"
        assert _shards(out) == ref_shards, f"chain {chain}: shards differ from the uninterrupted build"
        assert DatasetIndex.load(out).model_dump()["splits"] == DatasetIndex.load(
            root / "reference" / "out").model_dump()["splits"]
        keys = _keys(out)
        assert keys == ref_keys and len(set(keys)) == len(keys), f"chain {chain}: samples lost or duplicated"
        assert not list(out.rglob("*.tmp")), f"chain {chain}: temporary files left behind"
        report = validate_path(out)
        assert report.ok, report.summary()
        if chain[1] == "before_index:1":  # every model call was cached before that kill
            assert result["report"]["cache"]["misses"] == 0


def test_a_rebuild_with_fewer_shards_leaves_no_stale_shard(tmp_path):
    samples = make_samples(8)
    with ShardWriter(tmp_path, max_shard_bytes=30_000) as writer:
        for record, frames in samples:
            writer.write(record, frames)
    many = len(list((tmp_path / "data").glob("*.tar")))
    (tmp_path / "data" / ".train-000009.tar.tmp").write_bytes(b"left by a killed build")
    with ShardWriter(tmp_path) as writer:  # one big shard now
        for record, frames in samples:
            writer.write(record, frames)
    assert many > 1
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["train-000000.tar", "train-000000_stats.json"]
    assert validate_path(tmp_path).ok
    assert len(_keys(tmp_path)) == 8


def test_the_kill_hook_is_off_by_default():
    from dataset_builder import cache

    assert "VIDEOTHINKER_KILL_AT" not in os.environ
    assert cache._KILL_AT == ""
    cache.crash_point("cache_put")  # a no-op: this process is still alive
