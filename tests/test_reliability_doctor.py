"""`videothinker doctor`: every check runs, secrets are never printed, failures exit non-zero with a fix."""

from __future__ import annotations

import json
import sys

import pytest
import typer
from typer.testing import CliRunner

from agent import doctor
from tests.fake_openai_server import FakeOpenAIServer

SECRET = "hf_doctorSENTINEL0123456789"


@pytest.fixture
def cli():
    app = typer.Typer()
    app.command()(doctor.doctor_command)
    return app


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-doctorSENTINEL")
    return monkeypatch


def test_healthy_environment_passes_and_never_prints_tokens(cli, env, tmp_path):
    with FakeOpenAIServer(model="Qwen/Qwen3-235B-A22B") as server:
        result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "--endpoint", server.url])
        posts = server.posts
    assert result.exit_code == 0, result.output
    for name in ("python", "torch", "pyav", "decord", "ffmpeg", "disk", "hub", "hub-token", "endpoint"):
        assert f" {name}" in result.output, name
    assert "Qwen/Qwen3-235B-A22B" in result.output
    assert "HF_HUB_OFFLINE=1" in result.output and "WARN  hub" in result.output  # offline: a warning only
    assert "from HF_TOKEN; not shown" in result.output
    assert SECRET not in result.output and "sk-doctorSENTINEL" not in result.output
    assert posts == 0  # doctor only reads /v1/models; it never runs a completion


def test_json_output(cli, env, tmp_path):
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"python", "torch", "pyav", "disk", "hub", "hub-token"}
    assert SECRET not in result.output


def test_unreachable_endpoint_fails_with_a_fix(cli, env, tmp_path):
    with FakeOpenAIServer() as server:
        url = server.url
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "--endpoint", url])  # server is gone
    assert result.exit_code == 1
    assert f"FAIL  endpoint {url}" in result.output
    assert "What to fix:" in result.output and "vllm serve" in result.output


def test_endpoint_urls_and_a_closed_port():
    assert doctor.check_endpoint("http://127.0.0.1:1/v1").status == doctor.FAIL  # nothing listens on port 1
    assert doctor.models_url("http://h:8000/v1/") == "http://h:8000/v1/models"
    assert doctor.models_url("http://h:8000") == "http://h:8000/v1/models"


def test_missing_required_pieces_fail(cli, env, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 << 20})())
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL  pyav" in result.output and "FAIL  disk" in result.output
    assert "pip install av" in result.output


def test_hub_reachability_uses_a_short_timeout(env, monkeypatch):
    """With HF_HUB_OFFLINE unset the Hub is contacted (here: HF_ENDPOINT on 127.0.0.1, nothing else)."""
    env.delenv("HF_HUB_OFFLINE")
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.port}")
        check = doctor.check_hub()
    assert check.status == doctor.OK and "HTTP 404" in check.detail  # reachable; the route does not matter
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    assert doctor.check_hub().status == doctor.WARN


def test_no_token_is_a_warning(env, monkeypatch):
    env.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", "/nonexistent/token")
    assert doctor.check_token().status == doctor.WARN
