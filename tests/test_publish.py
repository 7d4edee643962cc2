"""Publishing without the Hub: the plan (exact files, allowlist), the refusals (validator, no card, no
token), the upload code run through huggingface_hub down to its HTTP client (a mock transport that keeps
the pushed files, and a closed local port), and verify against a fake api reading a local folder.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import httpx2
import pytest
import typer
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import _http
from typer.testing import CliRunner

from cards.card import write_card
from cards.cli import publish_command
from cards.publish import (
    TOKEN_HELP,
    MissingToken,
    PublishError,
    PublishRefused,
    execute_plan,
    plan_upload,
    publish,
    verify_remote,
)
from validation.shards import DatasetIndex, sha256_file, stats_name
from validation.validator import validate_path

SECRET = "hf_test_secret_token_0123456789"
JUNK = [".x.tmp", "data/.train-000099.tar.tmp", "__pycache__/m.cpython-311.pyc", ".cache/huggingface/blob",
        "workdir/cache.sqlite", "build_report.json", "data/train-999999.tar", "assets/.tool_calls.png.tmp",
        "assets/notes.txt", ".hidden/secret.png", "README.md~"]


@pytest.fixture(scope="module")
def carded(written_dataset, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("publish") / "ds"
    shutil.copytree(written_dataset[0], folder)
    write_card(folder, repo="org/name")
    return folder


@pytest.fixture
def copy(carded, tmp_path) -> Path:
    return Path(shutil.copytree(carded, tmp_path / "ds"))


def _expected_paths(folder: Path) -> list[str]:
    index = DatasetIndex.load(folder)
    shards = [p for es in index.splits.values() for e in es for p in (e.path, stats_name(e.path))]
    assets = ["assets/frames_per_sample.png", "assets/tool_calls.png", "assets/video_length.png"]
    return shards + assets + ["index.json", "README.md"]


# -- plan --------------------------------------------------------------------------------------------

def test_plan_is_the_exact_allowlist(copy):
    for rel in JUNK:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes(b"junk")
    plan = plan_upload(copy, "org/name", tag="v1.0")
    assert [p for _, p in plan.pairs()] == _expected_paths(copy)
    assert all(local == copy / rel for local, rel in plan.pairs())
    assert all(f.size == f.local.stat().st_size for f in plan.files)
    assert sorted(plan.skipped) == sorted(JUNK)
    assert plan.method == "create_commit" and plan.tag == "v1.0"
    ops = plan.operations()
    assert ops[0].startswith("create_repo org/name") and ops[1].startswith("create_commit")
    assert ops[2].startswith("create_tag v1.0") and ops[3].startswith("verify")


def test_big_sets_use_the_resumable_upload(copy):
    plan = plan_upload(copy, "org/name", large_bytes=1000)
    assert plan.method in {"upload_large_folder", "upload_folder"}
    assert plan_upload(copy, "org/name", large_files=3).method == plan.method


def test_plan_refuses_bad_input(copy):
    with pytest.raises(PublishError, match="ORG/NAME"):
        plan_upload(copy, "no-slash")
    with pytest.raises(PublishError, match="--tag"):
        plan_upload(copy, "org/name", tag="bad tag")
    (copy / "README.md").write_text("---\nlicense: mit\n---\n# minimal\n")
    with pytest.raises(PublishRefused, match="videothinker card"):
        plan_upload(copy, "org/name")


def test_dry_run_prints_every_path_and_sends_nothing(copy, hub):
    lines: list[str] = []
    publish(copy, "org/name", tag="v1", dry_run=True, echo=lines.append)
    text = "\n".join(lines)
    for rel in _expected_paths(copy):
        assert f"{copy / rel} -> {rel} (" in text
    assert "create_tag v1" in text and hub.requests == []


# -- refusals ------------------------------------------------------------------------------------------

def _corrupt_a_shard(folder: Path) -> None:
    shard = folder / DatasetIndex.load(folder).splits["train"][1].path
    data = bytearray(shard.read_bytes())
    data[700:720] = b"\x00" * 20  # inside the first member's data: the sha256 no longer matches
    shard.write_bytes(bytes(data))


def test_invalid_folder_is_refused_with_the_validator_summary(copy, hub):
    _corrupt_a_shard(copy)
    with pytest.raises(PublishRefused) as caught:
        publish(copy, "org/name", api=HfApi(endpoint="https://hub.test", token=SECRET))
    assert caught.value.details == validate_path(copy).summary()
    assert caught.value.details.startswith("FAILED") and hub.requests == []


def test_cli_refusal_prints_summary_and_one_error_line(copy):
    _corrupt_a_shard(copy)
    result = CliRunner().invoke(_app(), ["publish", str(copy), "--repo", "org/name", "--dry-run"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert validate_path(copy).summary() in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "refusing to publish" in result.stderr


def test_missing_token_is_one_line(copy, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(MissingToken):
        publish(copy, "org/name")
    result = CliRunner().invoke(_app(), ["publish", str(copy), "--repo", "org/name"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {TOKEN_HELP}"]
    assert "hf auth login" in TOKEN_HELP and "HF_TOKEN" in TOKEN_HELP


# -- upload through huggingface_hub's HTTP client --------------------------------------------------------

class FakeHub:
    """Answers the Hub endpoints publish uses, keeping the committed files; records every request."""

    def __init__(self, files: dict[str, bytes] | None = None):
        self.files = dict(files or {})
        self.requests: list[tuple[str, str, str]] = []
        self.tags: dict[str, str] = {}
        self.commits: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append((request.method, request.url.path, request.headers.get("authorization", "")))
        path = request.url.path
        for marker, handler in (("/api/repos/create", self.create), ("/api/validate-yaml", self.ok),
                                ("/preupload/", self.preupload), ("/commit/", self.commit), ("/tag/", self.tag),
                                ("/tree/", self.tree), ("/paths-info/", self.paths_info)):
            if marker in path:
                return handler(request)
        return httpx2.Response(404, json={"error": f"not faked: {path}"})

    def ok(self, request):
        return httpx2.Response(200, json={"errors": [], "warnings": []})

    def create(self, request):
        return httpx2.Response(200, json={"url": "https://hub.test/datasets/org/name", "name": "org/name"})

    def preupload(self, request):
        files = json.loads(request.content)["files"]
        return httpx2.Response(200, json={"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})

    def commit(self, request):
        lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
        self.commits.append(lines)
        for line in lines:
            if line["key"] == "file":
                self.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] == "deletedFile":
                self.files.pop(line["value"]["path"])
        oid = f"{len(self.commits):040x}"
        return httpx2.Response(200, json={"commitUrl": f"https://hub.test/c/{oid}", "commitOid": oid})

    def tag(self, request):
        self.tags[json.loads(request.content)["tag"]] = request.url.path.rsplit("/", 1)[-1]
        return httpx2.Response(200, json={})

    def _entry(self, path: str) -> dict[str, Any]:
        return {"type": "file", "path": path, "size": len(self.files[path]), "oid": "0" * 40}

    def tree(self, request):
        sub = request.url.path.split("/tree/", 1)[1].partition("/")[2]
        return httpx2.Response(200, json=[self._entry(p) for p in sorted(self.files)
                                          if not sub or p.startswith(sub.rstrip("/") + "/")])

    def paths_info(self, request):
        wanted = [v for k, v in httpx2.QueryParams(request.content.decode()).multi_items() if k == "paths"]
        return httpx2.Response(200, json=[self._entry(p) for p in wanted if p in self.files])


@pytest.fixture
def hub():
    fake = FakeHub({".gitattributes": b"*.tar filter=lfs\n", "data/train-000099.tar": b"old release",
                    "assets/old.png": b"old", "notes.md": b"kept"})
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    _http.set_client_factory(_http.default_client_factory)


def test_upload_runs_through_huggingface_hub_to_http(copy, hub):
    lines: list[str] = []
    plan = publish(copy, "org/name", tag="v1.0", private=True,
                   api=HfApi(endpoint="https://hub.test", token=SECRET), echo=lines.append)
    calls = [(m, p.replace("/api/datasets/org/name", "")) for m, p, _ in hub.requests
             if p != "/api/agent-harnesses"]
    assert calls == [("POST", "/api/repos/create"), ("GET", "/tree/main"), ("POST", "/api/validate-yaml"),
                     ("POST", "/preupload/main"), ("POST", "/commit/main"), ("POST", f"/tag/{1:040x}"),
                     ("POST", "/paths-info/v1.0"), ("GET", "/tree/v1.0/data")]
    assert all(auth == f"Bearer {SECRET}" for m, p, auth in hub.requests if p != "/api/agent-harnesses")
    (commit,) = hub.commits
    assert sorted(c["value"]["path"] for c in commit if c["key"] == "deletedFile") == [
        "assets/old.png", "data/train-000099.tar"]
    for local, rel in plan.pairs():
        assert hub.files[rel] == local.read_bytes()
    assert set(hub.files) == {rel for _, rel in plan.pairs()} | {".gitattributes", "notes.md"}
    assert hub.tags == {"v1.0": f"{1:040x}"}
    assert lines[-1].startswith("verified") and not any(SECRET in line for line in lines)


def test_big_sets_go_through_the_resumable_upload_then_delete_stale_files(copy, hub):
    plan = plan_upload(copy, "org/name", tag="v1", large_bytes=1000)
    execute_plan(HfApi(endpoint="https://hub.test", token=SECRET), plan, echo=lambda _: None)
    upload, cleanup = hub.commits
    assert sorted(c["value"]["path"] for c in upload if c["key"] == "file") == sorted(_expected_paths(copy))
    assert sorted(c["value"]["path"] for c in cleanup if c["key"] == "deletedFile") == [
        "assets/old.png", "data/train-000099.tar"]
    assert hub.tags == {"v1": f"{2:040x}"}  # the tag covers the final state


def test_cli_publish_takes_the_token_from_env_and_never_prints_it(copy, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "https://hub.test")
    result = CliRunner().invoke(_app(), ["publish", str(copy), "--repo", "org/name", "--tag", "v2"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "verified" in result.output
    assert any(auth == f"Bearer {SECRET}" for _, _, auth in hub.requests)
    assert not any(SECRET.encode() in p.read_bytes() for p in copy.rglob("*") if p.is_file())


def test_connection_refused_at_the_http_layer_is_one_line(copy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave the block
    _http.set_client_factory(lambda: httpx2.Client(timeout=5))  # a real transport, no offline guard
    try:
        plan = plan_upload(copy, "org/name")
        with pytest.raises(PublishError) as caught:
            execute_plan(HfApi(endpoint=f"http://127.0.0.1:{port}", token=SECRET), plan, echo=lambda _: None)
    finally:
        _http.set_client_factory(_http.default_client_factory)
    message = str(caught.value)
    assert "\n" not in message and "ConnectError" in message and SECRET not in message


# -- verify against a fake api reading a local folder ----------------------------------------------------

class LocalFolderApi:
    """``list_repo_tree`` / ``get_paths_info`` over a local folder, shaped like the Hub's answers."""

    def __init__(self, root: Path):
        self.root = root

    def _file(self, rel: str) -> RepoFile:
        path = self.root / rel
        lfs = None
        if rel.endswith(".tar"):
            lfs = {"size": path.stat().st_size, "oid": sha256_file(path), "pointerSize": 134}
        return RepoFile(path=rel, size=path.stat().st_size, oid="0" * 40, lfs=lfs)

    def list_repo_tree(self, repo_id, path_in_repo=None, *, recursive=False, repo_type=None, revision=None):
        base = self.root / (path_in_repo or "")
        found = base.rglob("*") if recursive else base.iterdir()
        return [self._file(p.relative_to(self.root).as_posix()) for p in sorted(found) if p.is_file()]

    def get_paths_info(self, repo_id, paths, *, repo_type=None, revision=None):
        return [self._file(p) for p in paths if (self.root / p).is_file()]


def test_verify_passes_on_an_identical_copy(copy, tmp_path):
    remote = Path(shutil.copytree(copy, tmp_path / "remote"))
    index = DatasetIndex.load(copy)
    extra = {rel: local.stat().st_size for local, rel in plan_upload(copy, "org/name").pairs()}
    assert verify_remote(LocalFolderApi(remote), "org/name", index, extra=extra) == []


def test_verify_names_each_difference(copy, tmp_path):
    remote = Path(shutil.copytree(copy, tmp_path / "remote"))
    entries = DatasetIndex.load(copy).splits["train"]
    (remote / entries[0].path).unlink()
    (remote / entries[1].path).write_bytes((remote / entries[1].path).read_bytes()[:-512])
    same_size = bytearray((remote / entries[2].path).read_bytes())
    same_size[600] ^= 0xFF
    (remote / entries[2].path).write_bytes(bytes(same_size))
    (remote / "data" / "train-000777.tar").write_bytes(b"stale")
    (remote / "README.md").write_text("changed")
    extra = {"README.md": (copy / "README.md").stat().st_size}
    problems = verify_remote(LocalFolderApi(remote), "org/name", DatasetIndex.load(copy), extra=extra)
    assert problems == [
        "README.md: 7 bytes on the Hub, {} expected".format(extra["README.md"]),
        f"{entries[0].path}: missing on the Hub",
        f"{entries[1].path}: {entries[1].bytes - 512} bytes on the Hub, {entries[1].bytes} expected",
        f"{entries[2].path}: sha256 on the Hub differs from index.json",
        "data/train-000777.tar: on the Hub but not in index.json (the data_files glob would load it)",
    ]


# -- CLI ---------------------------------------------------------------------------------------------

def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("publish")(publish_command)
    app.command("noop")(lambda: None)
    return app


def test_cli_dry_run_and_bad_repo(copy, hub):
    result = CliRunner().invoke(_app(), ["publish", str(copy), "--repo", "org/name", "--dry-run"])
    assert result.exit_code == 0 and "-> data/train-000000.tar (" in result.output and hub.requests == []
    result = CliRunner().invoke(_app(), ["publish", str(copy), "--repo", "bad", "--dry-run"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
