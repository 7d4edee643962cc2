"""``videothinker doctor``: check the environment a build, a training run or the agent needs, and say what to fix.

Checks Python, torch and CUDA, PyAV (and the FFmpeg it bundles), decord, a system ``ffmpeg``, free disk in
the workdir, the Hugging Face Hub (reachability with a short timeout, token presence: never its value) and
each ``--endpoint`` (an OpenAI-compatible server: ``GET /v1/models``). Exit status 1 when something required
is missing or broken; warnings (no GPU, offline Hub, no system ffmpeg) do not fail.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

OK, WARN, FAIL = "ok", "warn", "fail"
HTTP_TIMEOUT_S = 3.0
MIN_FREE_BYTES = 1 << 30  # below this a build cannot even cache its captions
LOW_FREE_BYTES = 20 << 30


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def check_python() -> Check:
    version = platform.python_version()
    if (3, 10) <= sys.version_info[:2] < (3, 13):
        return Check("python", OK, f"Python {version} ({sys.executable})")
    return Check("python", FAIL, f"Python {version} is not supported", "use Python 3.10, 3.11 or 3.12")


def check_torch() -> Check:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install raises more than ImportError
        return Check("torch", FAIL, f"torch does not import ({type(exc).__name__}: {exc})",
                     "pip install torch==2.14.1 torchvision==0.29.1")
    try:
        import torchvision  # noqa: F401 - Qwen-VL video processors need it
    except Exception as exc:  # noqa: BLE001
        return Check("torch", FAIL, f"torch {torch.__version__}, but torchvision does not import ({exc})",
                     "pip install torchvision==0.29.1 (matching torch 2.14.1)")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("torch", OK, f"torch {torch.__version__}, CUDA {torch.version.cuda}: {names}")
    return Check("torch", WARN, f"torch {torch.__version__}, no CUDA device (CPU only)",
                 "fine for the tiny preset and small models; training real models needs a GPU")


def check_pyav() -> Check:
    try:
        import av
    except Exception as exc:  # noqa: BLE001
        return Check("pyav", FAIL, f"PyAV does not import ({exc}); every video access needs it", "pip install av")
    libs = getattr(av, "library_versions", {})
    libavcodec = ".".join(map(str, libs.get("libavcodec", ()))) or "?"
    decoders = {"h264", "hevc", "vp9"} - set(getattr(av, "codecs_available", ()))
    detail = f"PyAV {av.__version__}, bundled FFmpeg libavcodec {libavcodec}"
    if "h264" in decoders:
        return Check("pyav", FAIL, detail + ": no H.264 decoder", "reinstall the PyAV wheel (it bundles FFmpeg)")
    if decoders:
        return Check("pyav", WARN, detail + f": no decoder for {', '.join(sorted(decoders))}",
                     "reinstall the PyAV wheel (it bundles FFmpeg with these codecs)")
    return Check("pyav", OK, detail)


def check_decord() -> Check:
    try:
        import decord
    except Exception as exc:  # noqa: BLE001
        return Check("decord", WARN, f"decord does not import ({type(exc).__name__}); PyAV serves all frames",
                     "optional: pip install decord==0.6.0 (never together with decord2)")
    return Check("decord", OK, f"decord {getattr(decord, '__version__', '?')} (used in a worker, PyAV by default)")


def check_ffmpeg() -> Check:
    path = shutil.which("ffmpeg")
    if path:
        return Check("ffmpeg", OK, f"system ffmpeg at {path}")
    return Check("ffmpeg", WARN, "no system ffmpeg on PATH (PyAV's bundled FFmpeg is used for decoding)",
                 "optional: apt-get install ffmpeg (needed only by torchcodec / datasets' Video decoding)")


def check_disk(workdir: Path) -> Check:
    target = workdir if workdir.exists() else next((p for p in workdir.parents if p.exists()), Path("."))
    free = shutil.disk_usage(target).free
    detail = f"{free / 2**30:.1f} GiB free in {target.resolve()}"
    if free < MIN_FREE_BYTES:
        return Check("disk", FAIL, detail, "free some space or pass --workdir on a larger disk")
    if free < LOW_FREE_BYTES:
        return Check("disk", WARN, detail, "a paper-scale build caches captions and writes GBs of shards")
    return Check("disk", OK, detail)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def check_hub() -> Check:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if _truthy("HF_HUB_OFFLINE"):
        return Check("hub", WARN, "HF_HUB_OFFLINE=1: the Hub is not contacted (models must be cached locally)",
                     "unset HF_HUB_OFFLINE to download models or publish datasets")
    try:
        with urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=HTTP_TIMEOUT_S) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("hub", WARN, f"{endpoint} is not reachable ({reason})",
                     "check the network or proxy, or set HF_HUB_OFFLINE=1 and use cached models")
    if code >= 500:
        return Check("hub", WARN, f"{endpoint} answered HTTP {code}", "try again later")
    return Check("hub", OK, f"{endpoint} reachable (HTTP {code})")


def check_token() -> Check:
    source = next((name for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN") if os.environ.get(name)), None)
    if source is None:
        try:
            from huggingface_hub import get_token

            source = "the huggingface_hub token file" if get_token() else None
        except Exception:  # noqa: BLE001 - no hub library is not a token problem
            source = None
    if source:
        return Check("hub-token", OK, f"a Hub token is set (from {source}; not shown)")
    return Check("hub-token", WARN, "no Hub token: public models download, but `publish` and gated models need one",
                 "hf auth login, or export HF_TOKEN")


def models_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    if base.endswith("/models"):
        return base
    return f"{base}/models" if base.endswith("/v1") else f"{base}/v1/models"


def check_endpoint(endpoint: str, api_key_env: str = "OPENAI_API_KEY") -> Check:
    url = models_url(endpoint)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if os.environ.get(api_key_env):
        request.add_header("Authorization", f"Bearer {os.environ[api_key_env]}")
    name = f"endpoint {endpoint}"
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            body = json.loads(response.read(1 << 20).decode("utf-8"))
    except urllib.error.HTTPError as exc:
        fix = f"set {api_key_env}" if exc.code in (401, 403) else "check the URL (it should serve /v1/models)"
        return Check(name, FAIL, f"GET {url}: HTTP {exc.code}", fix)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(name, FAIL, f"GET {url}: {reason}",
                     "start the server (e.g. vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes) "
                     "or fix the URL")
    ids = [m.get("id", "?") for m in body.get("data", []) if isinstance(m, dict)] if isinstance(body, dict) else []
    if not ids:
        return Check(name, WARN, f"GET {url}: the server lists no model", "check the server's --served-model-name")
    return Check(name, OK, f"serves {', '.join(map(str, ids[:5]))}" + (" ..." if len(ids) > 5 else ""))


def run_checks(workdir: Path, endpoints: list[str]) -> list[Check]:
    checks = [check_python(), check_torch(), check_pyav(), check_decord(), check_ffmpeg(), check_disk(workdir),
              check_hub(), check_token()]
    return checks + [check_endpoint(e) for e in endpoints]


def doctor_command(
    workdir: Path = typer.Option(Path("."), "--workdir", help="Where builds cache and write (free disk is checked)."),
    endpoint: list[str] = typer.Option([], "--endpoint", help="An OpenAI-compatible server to check "
                                       "(e.g. http://localhost:8000/v1); repeatable."),
    json_out: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check Python, torch/CUDA, PyAV/FFmpeg, decord, disk, the Hub and model endpoints; say what to fix."""
    checks = run_checks(workdir, list(endpoint))
    failed = [c for c in checks if c.status == FAIL]
    if json_out:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for c in checks:
            print(f"{c.status.upper():4s}  {c.name}: {c.detail}")
        fixes = [c for c in checks if c.fix and c.status != OK]
        if fixes:
            print("\nWhat to fix:" if failed else "\nNotes:")
            for c in fixes:
                print(f"  - {c.name}: {c.fix}" + ("" if c.status == FAIL else " (optional)"))
        print(f"\n{len(failed)} problem(s)" if failed else "\nall required checks passed")
    if failed:
        raise typer.Exit(1)
