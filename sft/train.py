"""The SFT trainer recipe: TRL ``SFTTrainer`` + our collator over streamed shards, LoRA or full FT.

``train(recipe)`` resolves the model (``tiny:FAMILY`` builds a random-weight model offline), streams the
shards, computes ``max_steps`` from index.json counts, and runs. Works the same under
``accelerate launch`` (see ``sft/configs/accelerate_*.yaml``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from sft.config import Recipe
from sft.data import compute_max_steps, streamed_dataset

log = logging.getLogger(__name__)
LM_LINEAR = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class TrainSetupError(ValueError):
    """Bad input for training (data, model, recipe); the message says what to fix."""


def train(recipe: Recipe) -> dict[str, Any]:
    """Run the recipe; returns {"global_step", "train_loss", "log_history", "output_dir", "budget"}."""
    import torch

    from dataset_builder.tiny_models import resolve_model
    from sft.collator import VideoThinkerCollator
    from sft.families import family_of

    model_path = resolve_model(recipe.model)
    family = family_of(model_path)
    processor = _load_processor(model_path)
    model = _load_model(model_path, recipe)
    train_ds, n_train = streamed_dataset(recipe.data, recipe.split, shuffle_buffer=recipe.shuffle_buffer,
                                         seed=recipe.seed)
    eval_ds = streamed_dataset(recipe.data, recipe.eval_split)[0] if recipe.eval_split else None
    world = int(os.environ.get("WORLD_SIZE", "1"))
    max_steps = recipe.max_steps or compute_max_steps(_need(n_train), recipe.epochs, recipe.per_device_batch_size,
                                                      recipe.grad_accum, world)
    collator = VideoThinkerCollator(processor, family, recipe.budget.budget())
    trainer = _trainer(model, processor, collator, train_ds, eval_ds, recipe, max_steps, torch.cuda.is_available())
    result = trainer.train(resume_from_checkpoint=_resume_point(recipe))
    trainer.save_model(recipe.output_dir)
    processor.save_pretrained(recipe.output_dir)
    return {"global_step": trainer.state.global_step, "train_loss": result.training_loss,
            "log_history": trainer.state.log_history, "output_dir": recipe.output_dir,
            "budget": collator.stats.as_dict()}


def _need(n: int | None) -> int:
    if n is None:
        raise TrainSetupError("the data has no index.json sample counts; pass --max-steps")
    return n


def _load_processor(model_path: str) -> Any:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_path)


def _load_model(model_path: str, recipe: Recipe) -> Any:
    import torch
    from transformers import AutoModelForImageTextToText

    bf16 = _use_bf16(recipe)
    model = AutoModelForImageTextToText.from_pretrained(
        model_path, dtype=torch.bfloat16 if bf16 else torch.float32, attn_implementation=_attn(recipe))
    if recipe.freeze_vision:
        for name, param in model.named_parameters():
            if ".visual." in f".{name}":
                param.requires_grad_(False)
    if recipe.lora:
        model = _with_lora(model, recipe)
    return model


def _with_lora(model: Any, recipe: Recipe) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                        target_modules=LM_LINEAR, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _use_bf16(recipe: Recipe) -> bool:
    import torch

    if recipe.bf16 is not None:
        return recipe.bf16 and torch.cuda.is_available()
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _attn(recipe: Recipe) -> str:
    import torch

    if recipe.attn_implementation:
        return recipe.attn_implementation
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return "sdpa"


def _report_to(recipe: Recipe) -> list[str]:
    if recipe.report_to != "auto":
        return [] if recipe.report_to == "none" else [recipe.report_to]
    return [name for name, mod in (("tensorboard", "tensorboard"), ("wandb", "wandb"))
            if importlib.util.find_spec(mod) and (name != "wandb" or os.environ.get("WANDB_API_KEY"))]


def _resume_point(recipe: Recipe) -> bool | str | None:
    if not recipe.resume:
        return None
    out = Path(recipe.output_dir)
    return True if any(out.glob("checkpoint-*")) else None


def _trainer(model: Any, processor: Any, collator: Any, train_ds: Any, eval_ds: Any, recipe: Recipe,
             max_steps: int, cuda: bool) -> Any:
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=recipe.output_dir, max_steps=max_steps, per_device_train_batch_size=recipe.per_device_batch_size,
        per_device_eval_batch_size=recipe.per_device_batch_size, gradient_accumulation_steps=recipe.grad_accum,
        learning_rate=recipe.learning_rate, lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=round(recipe.warmup_ratio * max_steps),
        weight_decay=recipe.weight_decay, max_grad_norm=recipe.max_grad_norm, bf16=_use_bf16(recipe),
        use_cpu=not cuda, activation_checkpointing=recipe.gradient_checkpointing, seed=recipe.seed,
        logging_steps=recipe.logging_steps, save_steps=recipe.save_steps, save_total_limit=recipe.save_total_limit,
        eval_strategy="steps" if eval_ds is not None else "no", eval_steps=recipe.eval_steps or recipe.save_steps,
        dataloader_num_workers=recipe.num_workers, remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True}, accelerator_config={"dispatch_batches": False},
        report_to=_report_to(recipe), max_length=None, disable_tqdm=True,
    )
    return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=collator, processing_class=processor)
