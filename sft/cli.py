"""``videothinker train``: the SFT recipe from the command line (registered in ``agent/cli.py``).

Heavy libraries are imported inside the command so ``--help`` stays fast. Bad input (a missing data
folder, an unknown model family, a bad recipe) prints one ``error: ...`` line and exits with status 2.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

log = logging.getLogger(__name__)


def train_command(
    data: str = typer.Option(..., "--data", help="Dataset folder, Hub repo id (org/name) or URL list file."),
    model: str = typer.Option(..., "--model", help="Hub id, local folder, or tiny:FAMILY (qwen2_5_vl, qwen3_vl, "
                              "smolvlm2, llava_onevision: random weights, built offline)."),
    preset: str | None = typer.Option(None, "--preset", help="Recipe preset: paper, qwen2_5_vl, qwen3_vl, "
                                      "smolvlm2, llava_onevision, tiny."),
    config: Path | None = typer.Option(None, "--config", help="Recipe YAML (overrides the preset)."),
    output_dir: Path = typer.Option(Path("runs/sft"), "--output-dir", help="Checkpoints and the final model."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Default: from index.json counts x epochs."),
    epochs: float | None = typer.Option(None, "--epochs"),
    learning_rate: float | None = typer.Option(None, "--lr"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Per device."),
    grad_accum: int | None = typer.Option(None, "--grad-accum"),
    lora: bool | None = typer.Option(None, "--lora/--full", help="LoRA adapters or full fine-tuning."),
    eval_split: str | None = typer.Option(None, "--eval-split", help="A held-out split of the data to evaluate."),
    num_workers: int | None = typer.Option(None, "--num-workers", help="Dataloader workers per rank."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in --output-dir."),
) -> None:
    """Fine-tune a VideoLLM on VideoThinker shards with TRL (also under ``accelerate launch``)."""
    recipe = _recipe_or_exit(data, model, preset, config, output_dir, max_steps=max_steps, epochs=epochs,
                             learning_rate=learning_rate, per_device_batch_size=batch_size, grad_accum=grad_accum,
                             lora=lora, eval_split=eval_split, num_workers=num_workers, resume=resume or None)
    from sft.train import train

    result = train(recipe)
    typer.echo(json.dumps({k: result[k] for k in ("global_step", "train_loss", "output_dir", "budget")}))


def _recipe_or_exit(data: str, model: str, preset: str | None, config: Path | None, output_dir: Path, **overrides):
    from sft.config import RecipeError, load_recipe

    try:
        _check_data(data)
        _check_model(model)
        return load_recipe(preset, config, data=data, model=model, output_dir=str(output_dir), **overrides)
    except (RecipeError, ValueError, OSError) as exc:
        _fail(str(exc).splitlines()[0])


def _check_data(data: str) -> None:
    from loaders.sources import resolve

    looks_local = data.startswith(("/", ".", "~")) or "/" not in data
    if looks_local and not Path(data).expanduser().exists():
        raise ValueError(f"--data {data}: no such dataset folder")
    resolve(data, "train")


def _check_model(model: str) -> None:
    from dataset_builder.tiny_models import FAMILIES, TINY_PREFIX, VISION_FAMILIES

    if model.startswith(TINY_PREFIX):
        family = model[len(TINY_PREFIX):]
        if family not in VISION_FAMILIES:
            choices = ", ".join(TINY_PREFIX + f for f in VISION_FAMILIES)
            known = "a text-only model" if family in FAMILIES else "unknown"
            raise ValueError(f"--model {model}: {known}; the SFT recipe trains {choices} or a Hub/local VLM")
        return
    from sft.families import family_of

    if Path(model).is_dir() or "/" in model:
        family_of(model)
    else:
        raise ValueError(f"--model {model}: not a local folder, a Hub id (org/name) or tiny:FAMILY")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
