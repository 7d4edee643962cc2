"""Secrets: HF_TOKEN and the API key never appear in logs, reports, caches, cards or shards.

Sentinel values are set in the environment of real `videothinker` subprocesses (debug logging on): a
build whose teacher is the fake OpenAI server (so the key is really used, in the Authorization header),
then `card`, `validate` and `publish --dry-run`. Every byte they print and every file they write
(the SQLite cache decompressed row by row) is scanned for the sentinels and their base64 forms.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import zstandard

from tests.fake_openai_server import FakeOpenAIServer
from tests.fixtures.videos import cfr_video
from tests.reliability_fixtures import good_teacher

HF_SENTINEL = "hf_SENTINELtokenDoNotLeak4242"
API_SENTINEL = "sk-SENTINELkeyDoNotLeak4242"
REPO = Path(__file__).resolve().parents[1]


def _needles() -> list[bytes]:
    out = []
    for secret in (HF_SENTINEL, API_SENTINEL):
        out += [secret.encode(), base64.b64encode(secret.encode()), secret[3:].encode()]  # also without prefix
    return out


def _videothinker(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", "-v", *args], env=env, cwd=cwd, capture_output=True,
                          timeout=300)


def _scan_file(path: Path) -> list[str]:
    blobs = [path.read_bytes()]
    if path.suffix in {".sqlite", ".sqlite-wal"} or path.name.endswith(".sqlite"):
        with sqlite3.connect(path) as conn:
            for key, value in conn.execute("SELECT key, value FROM kv"):
                blobs += [key.encode(), zstandard.ZstdDecompressor().decompress(value)]
    return [f"{path}: {needle[:12]!r}" for blob in blobs for needle in _needles() if needle in blob]


def test_no_secret_reaches_any_output(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(cfr_video().path, videos / "cfr.mp4")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "video": "cfr.mp4", "question": "What is shown on screen?",
                                     "options": ["black and white blocks", "people"], "answer": "A"}) + "\n")
    env = {**os.environ, "HF_TOKEN": HF_SENTINEL, "OPENAI_API_KEY": API_SENTINEL,
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("VIDEOTHINKER_KILL_AT", None)
    out = tmp_path / "out"
    with FakeOpenAIServer(good_teacher("A")) as server:
        config = tmp_path / "build.yaml"
        config.write_text(f"samples_per_question: 1\nmax_pixels: 9216\n"
                          f"teacher: {{backend: openai, model: {server.model}, base_url: '{server.url}'}}\n")
        runs = [_videothinker("build", "--videos", str(videos), "--questions", str(questions), "--out", str(out),
                              "--preset", "tiny", "--config", str(config), "--workdir", str(tmp_path / "work"),
                              env=env, cwd=tmp_path)]
        auth = {r["headers"].get("authorization") for r in server.requests}
    assert runs[0].returncode == 0, runs[0].stderr.decode()[-3000:]
    assert auth == {f"Bearer {API_SENTINEL}"}, "the key was not used: the scan would prove nothing"
    runs.append(_videothinker("card", str(out), "--repo", "org/name", env=env, cwd=tmp_path))
    runs.append(_videothinker("validate", str(out), env=env, cwd=tmp_path))
    runs.append(_videothinker("validate", str(out), "--json", env=env, cwd=tmp_path))
    runs.append(_videothinker("publish", str(out), "--repo", "org/name", "--dry-run", env=env, cwd=tmp_path))
    for run in runs:
        assert run.returncode == 0, (run.args, run.stderr.decode()[-2000:])
    leaks = [f"{run.args[3]} output: {needle[:12]!r}" for run in runs for stream in (run.stdout, run.stderr)
             for needle in _needles() if needle in stream]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".tar" for p in files) and any(p.name == "build_report.json" for p in files)
    leaks += [leak for path in files for leak in _scan_file(path)]
    assert not leaks, leaks
