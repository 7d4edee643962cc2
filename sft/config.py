"""The SFT recipe: one dataclass, loadable from a preset (``sft/configs/NAME.yaml``) or a YAML file.

Precedence: dataclass defaults < preset < ``--config`` file < explicit overrides (CLI flags).
``sft/configs/accelerate_*.yaml`` are ``accelerate launch`` configs, not presets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from sft.budget import Budget

CONFIG_DIR = Path(__file__).parent / "configs"
ACCELERATE_PREFIX = "accelerate_"


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith(ACCELERATE_PREFIX))


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the key or file."""


@dataclass
class BudgetConfig:
    max_frames: int = 64
    max_pixels: int = 256 * 28 * 28
    min_pixels: int | None = None
    max_tokens: int = 16384
    min_initial_frames: int = 4
    policy: Literal["reduce", "skip"] = "reduce"

    def budget(self) -> Budget:
        return Budget(**dataclasses.asdict(self))


@dataclass
class Recipe:
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    data: str = ""
    split: str = "train"
    eval_split: str | None = None
    output_dir: str = "runs/sft"
    # adapters
    lora: bool = True
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    freeze_vision: bool = True
    # optimisation
    learning_rate: float = 1e-4
    epochs: float = 3.0
    per_device_batch_size: int = 1
    grad_accum: int = 2
    max_steps: int | None = None
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool | None = None  # None: on when a GPU supports it
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None  # None: flash_attention_2 when installed on GPU, else sdpa
    # data
    num_workers: int = 2
    shuffle_buffer: int = 64
    seed: int = 0
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    # bookkeeping
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 2
    eval_steps: int | None = None
    resume: bool = False
    report_to: str = "auto"  # auto: tensorboard/wandb when installed, else none


def load_recipe(preset: str | None = None, config: Path | None = None, **overrides: Any) -> Recipe:
    """Defaults, then the preset, then the config file, then non-None overrides."""
    values: dict[str, Any] = {}
    if preset:
        if preset not in presets():
            raise RecipeError(f"unknown preset {preset!r}; choose one of {', '.join(presets())}")
        path = CONFIG_DIR / f"{preset}.yaml"
        values.update(_read(path))
    if config:
        values.update(_read(Path(config)))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return recipe_from_dict(values)


def recipe_from_dict(values: dict[str, Any]) -> Recipe:
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RecipeError(f"unknown recipe keys {unknown}; known: {', '.join(sorted(known))}")
    budget = values.pop("budget", None) or {}
    if isinstance(budget, dict):
        try:
            budget = BudgetConfig(**budget)
        except TypeError as exc:
            raise RecipeError(f"budget: {exc}") from exc
    return Recipe(**values, budget=budget)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path}: not valid YAML{line} ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of keys to values")
    return data
