"""Where shards come from: a local dataset folder, a Hub dataset repo, or a list of URLs.

Every source resolves to an explicit, ordered list of shard URLs (never a glob at read time, so every
rank and worker sees the same list) and every URL opens through fsspec (local paths, http(s), hf://).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from validation.shards import INDEX_FILE, DatasetIndex

HUB_REPO_RE = re.compile(r"^(hf://datasets/)?(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(@(?P<rev>[\w./-]+))?$")


class SourceError(ValueError):
    """A dataset source that cannot be resolved; the message says what to pass instead."""


@dataclass(frozen=True)
class ShardList:
    urls: list[str]
    samples: int | None  # known from index.json, else None
    index: DatasetIndex | None = None


def resolve(source: str | Path | list[str], split: str = "train", revision: str | None = None) -> ShardList:
    """Resolve a folder, a Hub repo id (``org/name[@rev]``), a URL list file or a list of URLs."""
    if isinstance(source, list | tuple):
        return ShardList(urls=[str(u) for u in source], samples=None)
    text = str(source)
    path = Path(text)
    if path.is_dir():
        return _from_index(path.resolve().as_posix(), _local_index(path), split)
    if path.is_file() and path.suffix in {".txt", ".list"}:
        urls = [line.strip() for line in path.read_text().splitlines() if line.strip() and line[0] != "#"]
        return ShardList(urls=urls, samples=None)
    if path.is_file() and path.suffix == ".tar":
        return ShardList(urls=[path.resolve().as_posix()], samples=None)
    match = HUB_REPO_RE.match(text)
    if match and not path.exists():
        rev = revision or match.group("rev") or "main"
        base = f"hf://datasets/{match.group('repo')}@{rev}"
        return _from_index(base, _hub_index(match.group("repo"), rev), split)
    raise SourceError(
        f"{text}: not a dataset folder, a .tar shard, a URL list (.txt) or a Hub repo id (org/name); "
        "pass one of those"
    )


def _from_index(base: str, index: DatasetIndex, split: str) -> ShardList:
    if split not in index.splits:
        raise SourceError(f"{base}: no split {split!r} in index.json (splits: {', '.join(index.splits) or 'none'})")
    entries = index.splits[split]
    return ShardList(urls=[f"{base}/{e.path}" for e in entries], samples=index.samples(split), index=index)


def _local_index(folder: Path) -> DatasetIndex:
    if not (folder / INDEX_FILE).exists():
        raise SourceError(f"{folder}: no {INDEX_FILE}; is this a videothinker dataset folder (`videothinker build`)?")
    try:
        return DatasetIndex.load(folder)
    except ValueError as exc:
        raise SourceError(f"{folder / INDEX_FILE}: unreadable ({str(exc).splitlines()[0]})") from exc


def _hub_index(repo: str, revision: str) -> DatasetIndex:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo, INDEX_FILE, repo_type="dataset", revision=revision)
    return DatasetIndex.model_validate_json(Path(path).read_bytes())


def open_url(url: str, timeout_s: float = 60.0) -> IO[bytes]:
    """Open a shard for streaming reads: local path, http(s)://, hf:// or any other fsspec protocol."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme:
        return open(url, "rb")
    if scheme in ("http", "https"):
        return _open_http(url, timeout_s)
    if scheme == "hf":
        from huggingface_hub import HfFileSystem

        return HfFileSystem().open(url, "rb")
    import fsspec

    return fsspec.open(url, "rb").open()


def _open_http(url: str, timeout_s: float) -> IO[bytes]:
    """A streaming HTTP GET; the Hub token is sent to huggingface.co only, and never logged."""
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "videothinker-traj"})
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "huggingface.co" or host.endswith(".huggingface.co"):
        from huggingface_hub import get_token

        token = get_token()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
    return urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 - http(s) only, checked above
