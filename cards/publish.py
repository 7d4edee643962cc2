"""Publish a dataset folder to the Hugging Face Hub: validate, plan, upload, tag, verify.

``plan_upload(folder, repo)`` lists exactly what goes where: ``README.md``, ``index.json``, every shard
listed in ``index.json`` with its ``_stats.json`` marker, and ``assets/*.png``. It is an allowlist:
temp files (``.x.tmp``), caches, build workdirs, hidden files, ``build_report.json`` and shards that
``index.json`` does not list are never uploaded (a stray ``data/train-*.tar`` would be read by the card's
``data_files`` glob).

``publish(...)`` refuses a folder that fails the validator (with its summary) or has no generated card,
takes the token from ``HF_TOKEN`` or the login cache (``huggingface_hub.get_token()``; it is handed to
``HfApi`` and never printed or written), then: ``create_repo(exist_ok=True)``; small sets go up in one
``create_commit`` of ``CommitOperationAdd`` (with deletes of remote ``data/``/``assets/`` files this
release no longer has); big sets go through ``upload_large_folder`` where the installed huggingface_hub
has it, else ``upload_folder``, which in huggingface_hub 2.x is the resumable multi-commit Xet pipeline
that replaced it; then ``create_tag``; then ``verify_remote`` compares the remote files and sizes (and
LFS sha256) against ``index.json``.

First real upload (see cards/README.md)::

    hf auth login   # or export HF_TOKEN=...
    videothinker publish DIR --repo ORG/NAME --tag v1.0 --dry-run   # read the plan
    videothinker publish DIR --repo ORG/NAME --tag v1.0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from validation.shards import DATA_DIR, INDEX_FILE, DatasetIndex, stats_name
from validation.version import package_version

REPO_TYPE = "dataset"
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
TAG_RE = re.compile(r"^[A-Za-z0-9][\w.-]*$")
LARGE_BYTES = 2 * 1024**3  # above this (or LARGE_FILES files) use the resumable multi-commit upload
LARGE_FILES = 200
ASSETS_DIR = "assets"
STALE_DIRS = (DATA_DIR, ASSETS_DIR)  # remote files here that this release lacks are deleted
TOKEN_HELP = "no Hugging Face token: run `hf auth login` or set HF_TOKEN"


class PublishError(Exception):
    """A user-facing failure; ``str()`` is one line (``details`` may hold more, e.g. a validator summary)."""

    def __init__(self, message: str, details: str = "", exit_code: int = 1):
        super().__init__(message)
        self.details = details
        self.exit_code = exit_code


class PublishRefused(PublishError):
    """The folder must not be published as it is (fails validation, no card)."""


class MissingToken(PublishError):
    """No token in HF_TOKEN or the login cache."""


@dataclass(frozen=True)
class PlannedFile:
    local: Path
    path_in_repo: str
    size: int


@dataclass
class UploadPlan:
    """Everything ``publish`` will do, decided before any network call."""

    folder: Path
    repo: str
    private: bool
    tag: str | None
    files: list[PlannedFile]
    method: Literal["create_commit", "upload_large_folder", "upload_folder"]
    skipped: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def pairs(self) -> list[tuple[Path, str]]:
        """(local path, path in repo) for every file, in upload order."""
        return [(f.local, f.path_in_repo) for f in self.files]

    def operations(self) -> list[str]:
        visibility = "private" if self.private else "public"
        ops = [f"create_repo {self.repo} (repo_type={REPO_TYPE}, {visibility}, exist_ok=True)"]
        size = f"{len(self.files)} files, {self.total_bytes:,} bytes"
        stale = f"remote {'/, '.join(STALE_DIRS)}/ files not in this plan"
        if self.method == "create_commit":
            ops.append(f"create_commit: {size} as CommitOperationAdd in one commit, plus deletes of {stale}")
        else:
            ops.append(f"{self.method}: {size} (resumable, several workers/commits, allow_patterns = exactly "
                       f"these paths), then one commit deleting {stale}")
        if self.tag:
            ops.append(f"create_tag {self.tag} on the uploaded revision")
        ops.append(f"verify: remote files, sizes and LFS sha256 against {INDEX_FILE}; no stray remote shards")
        return ops

    def describe(self) -> str:
        lines = [f"publish {self.folder} -> https://huggingface.co/datasets/{self.repo}"]
        lines += [f"  {i}. {op}" for i, op in enumerate(self.operations(), 1)]
        lines.append("files (local -> path in repo, bytes):")
        lines += [f"  {f.local} -> {f.path_in_repo} ({f.size:,})" for f in self.files]
        if self.skipped:
            lines.append(f"not uploaded ({len(self.skipped)}): " + ", ".join(self.skipped[:20])
                         + (" ..." if len(self.skipped) > 20 else ""))
        return "\n".join(lines)


def _safe_rel(rel: str) -> bool:
    path = PurePosixPath(rel)
    return (bool(rel) and "\\" not in rel and not path.is_absolute() and ".." not in path.parts
            and not any(p.startswith(".") for p in path.parts))


def _planned(folder: Path, rel: str) -> PlannedFile:
    path = folder / rel
    if not _safe_rel(rel) or not path.is_file():
        raise PublishRefused(f"{folder}: {rel} is listed for upload but is not a regular file in the folder; "
                             "re-run `videothinker validate`")
    return PlannedFile(local=path, path_in_repo=rel, size=path.stat().st_size)


def _allowlist(folder: Path, index: DatasetIndex) -> list[str]:
    """Shards and markers first, README.md last: a multi-commit upload exposes the card only when complete."""
    rels = [rel for entries in index.splits.values() for e in entries for rel in (e.path, stats_name(e.path))]
    assets = folder / ASSETS_DIR
    if assets.is_dir():
        rels += sorted(f"{ASSETS_DIR}/{p.name}" for p in assets.iterdir()
                       if p.suffix == ".png" and p.is_file() and not p.name.startswith("."))
    return rels + [INDEX_FILE, "README.md"]


def _skipped(folder: Path, planned: set[str]) -> list[str]:
    rels = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(r for r in rels if r not in planned)


def check_repo_id(repo: str) -> str:
    if not REPO_RE.match(repo):
        raise PublishError(f"--repo {repo!r}: expected ORG/NAME (letters, digits, '-', '_', '.')",
                           exit_code=2)
    return repo


def plan_upload(folder: Path | str, repo: str, *, private: bool = False, tag: str | None = None,
                large_bytes: int = LARGE_BYTES, large_files: int = LARGE_FILES) -> UploadPlan:
    """The exact files (allowlist, see the module docstring) and operations; nothing is sent."""
    from cards.card import is_generated_card

    folder = Path(folder)
    check_repo_id(repo)
    if tag is not None and not TAG_RE.match(tag):
        raise PublishError(f"--tag {tag!r}: use letters, digits, '.', '-', '_' (e.g. v1.0)", exit_code=2)
    if not (folder / INDEX_FILE).is_file():
        raise PublishRefused(f"{folder}: no {INDEX_FILE}; is this a dataset folder (`videothinker build`)?")
    if not is_generated_card(folder):
        raise PublishRefused(f"{folder}: README.md is not a generated dataset card; run `videothinker card "
                             f"{folder}` first")
    files = [_planned(folder, rel) for rel in _allowlist(folder, DatasetIndex.load(folder))]
    large = sum(f.size for f in files) > large_bytes or len(files) > large_files
    method = "create_commit"
    if large:
        from huggingface_hub import HfApi

        method = "upload_large_folder" if hasattr(HfApi, "upload_large_folder") else "upload_folder"
    return UploadPlan(folder=folder, repo=repo, private=private, tag=tag, files=files, method=method,
                      skipped=_skipped(folder, {f.path_in_repo for f in files}))


def refuse_if_invalid(folder: Path | str) -> None:
    """Run the validator; a failing folder is refused with the validator's summary as details."""
    from validation.validator import validate_path

    if not Path(folder).exists():
        raise PublishRefused(f"{folder}: does not exist", exit_code=2)
    report = validate_path(folder)
    if not report.ok:
        raise PublishRefused(f"{folder}: refusing to publish: `videothinker validate` found "
                             f"{len(report.problems)} problem(s)", details=report.summary())


def resolve_token() -> str:
    """The token from HF_TOKEN or the login cache; never printed."""
    import huggingface_hub

    token = huggingface_hub.get_token()
    if not token:
        raise MissingToken(TOKEN_HELP)
    return token


class HubApi(Protocol):
    """The ``HfApi`` methods ``verify_remote`` needs (a fake reading a local folder implements them too)."""

    def list_repo_tree(self, repo_id: str, path_in_repo: str | None = None, *, recursive: bool = False,
                       repo_type: str | None = None, revision: str | None = None) -> Iterable[Any]: ...

    def get_paths_info(self, repo_id: str, paths: list[str], *, repo_type: str | None = None,
                       revision: str | None = None) -> list[Any]: ...


def _expected_sizes(index: DatasetIndex, extra: dict[str, int] | None) -> dict[str, tuple[int, str | None]]:
    expected = {e.path: (e.bytes, e.sha256) for entries in index.splits.values() for e in entries}
    for path, size in (extra or {}).items():
        expected.setdefault(path, (size, None))
    return expected


def verify_remote(api: HubApi, repo: str, index: DatasetIndex, *, revision: str | None = None,
                  extra: dict[str, int] | None = None) -> list[str]:
    """Problems found comparing the remote repo with ``index.json`` (and ``extra`` {path: size}); [] = OK."""
    expected = _expected_sizes(index, extra)
    infos = api.get_paths_info(repo, sorted(expected), repo_type=REPO_TYPE, revision=revision)
    found = {f.path: f for f in infos}
    problems = []
    for path, (size, sha256) in sorted(expected.items()):
        remote = found.get(path)
        if remote is None:
            problems.append(f"{path}: missing on the Hub")
        elif getattr(remote, "size", None) != size:
            problems.append(f"{path}: {getattr(remote, 'size', None)} bytes on the Hub, {size} expected")
        elif sha256 and getattr(remote, "lfs", None) is not None and remote.lfs.sha256 != sha256:
            problems.append(f"{path}: sha256 on the Hub differs from {INDEX_FILE}")
    tree = api.list_repo_tree(repo, DATA_DIR, recursive=True, repo_type=REPO_TYPE, revision=revision)
    for item in tree:
        path = getattr(item, "path", "")
        if path.endswith(".tar") and path not in expected:
            problems.append(f"{path}: on the Hub but not in {INDEX_FILE} (the data_files glob would load it)")
    return problems


def _stale_deletes(api: Any, plan: UploadPlan) -> list[Any]:
    from huggingface_hub import CommitOperationDelete

    wanted = {f.path_in_repo for f in plan.files}
    remote = api.list_repo_files(plan.repo, repo_type=REPO_TYPE)
    return [CommitOperationDelete(path_in_repo=p) for p in remote
            if p.split("/", 1)[0] in STALE_DIRS and p not in wanted]


def _message(plan: UploadPlan) -> str:
    return f"Upload {len(plan.files)} files with videothinker-traj {package_version()}"


def _upload(api: Any, plan: UploadPlan) -> str | None:
    """Upload the plan's files; returns the commit to tag (None: the branch head)."""
    from huggingface_hub import CommitOperationAdd

    deletes = _stale_deletes(api, plan)
    if plan.method == "create_commit":
        adds = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local))
                for f in plan.files]
        return api.create_commit(plan.repo, deletes + adds, commit_message=_message(plan),
                                 repo_type=REPO_TYPE).oid
    patterns = [f.path_in_repo for f in plan.files]
    if plan.method == "upload_large_folder":
        api.upload_large_folder(repo_id=plan.repo, folder_path=plan.folder, repo_type=REPO_TYPE,
                                allow_patterns=patterns, private=plan.private)
        oid = None
    else:
        oid = api.upload_folder(repo_id=plan.repo, folder_path=plan.folder, repo_type=REPO_TYPE,
                                allow_patterns=patterns, commit_message=_message(plan)).oid
    if deletes:
        oid = api.create_commit(plan.repo, deletes, commit_message="Remove files of an earlier release",
                                repo_type=REPO_TYPE).oid
    return oid


def execute_plan(api: Any, plan: UploadPlan, echo: Callable[[str], None] = print) -> str | None:
    """Create the repo, upload, tag, verify. Returns the uploaded commit (None: branch head)."""
    try:
        url = api.create_repo(plan.repo, repo_type=REPO_TYPE, private=plan.private, exist_ok=True)
        echo(f"repo: {url}")
        oid = _upload(api, plan)
        echo(f"uploaded {len(plan.files)} files ({plan.total_bytes:,} bytes)" + (f" in {oid}" if oid else ""))
        if plan.tag:
            api.create_tag(plan.repo, tag=plan.tag, repo_type=REPO_TYPE, revision=oid)
            echo(f"tagged {plan.tag}")
        extra = {f.path_in_repo: f.size for f in plan.files}
        problems = verify_remote(api, plan.repo, DatasetIndex.load(plan.folder), revision=plan.tag or oid,
                                 extra=extra)
    except PublishError:
        raise
    except Exception as exc:  # HTTP, connection, offline-mode and Hub errors all end here
        raise PublishError(f"upload to {plan.repo} failed: {_one_line(exc)}") from exc
    if problems:
        raise PublishError(f"uploaded, but the Hub copy of {plan.repo} differs: {problems[0]}",
                           details="\n".join(problems))
    echo(f"verified: {len(plan.files)} files match {INDEX_FILE} and the local sizes")
    return oid


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def publish(folder: Path | str, repo: str, *, private: bool = False, tag: str | None = None,
            dry_run: bool = False, api: Any = None, echo: Callable[[str], None] = print) -> UploadPlan:
    """Validate, plan and (unless ``dry_run``) upload, tag and verify. Raises ``PublishError``."""
    from huggingface_hub import HfApi

    check_repo_id(repo)
    refuse_if_invalid(folder)
    plan = plan_upload(folder, repo, private=private, tag=tag)
    if dry_run:
        echo(plan.describe())
        return plan
    if api is None:
        api = HfApi(token=resolve_token())
    execute_plan(api, plan, echo=echo)
    return plan
