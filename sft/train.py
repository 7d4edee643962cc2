"""The SFT trainer recipe: TRL ``SFTTrainer`` + our collator over streamed shards, LoRA or full FT.

``train(recipe)`` resolves the model (``tiny:FAMILY`` builds a random-weight model offline), streams the
shards (``sft.data``: budget-checked before batching, endless per worker, resumable at the exact data
position), computes ``max_steps`` from index.json counts, and runs. Works the same under
``accelerate launch`` (see ``sft/configs/accelerate_*.yaml`` and ``sft/README.md``).

What was trained on is recorded by the training loop itself, in the main process of each rank: every batch
carries its sample keys and what the stream's budget check skipped or reduced before it; the trainer pops
them before the forward pass, logs each skipped sample (key and reason), appends
``{"step", "keys", "skipped"}`` to ``OUTPUT_DIR/trained_samples.rank{R}.jsonl`` and counts them into the
``budget`` report ``train()`` returns (summed over ranks).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from sft.config import Recipe
from sft.data import compute_max_steps, streamed_dataset

log = logging.getLogger(__name__)
# LoRA targets: the attention and MLP projections of the language model (Qwen-VL and LLaVA-OneVision:
# ``language_model``; SmolVLM: ``text_model``), never the vision tower.
LM_LINEAR = r".*(language_model|text_model).*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
VISION_TOWERS = (".visual.", ".vision_model.", ".vision_tower.")
STREAM_FILE = "data_stream.json"


class TrainSetupError(ValueError):
    """Bad input for training (data, model, recipe); the message says what to fix."""


def train(recipe: Recipe) -> dict[str, Any]:
    """Run the recipe; returns {"global_step", "train_loss", "log_history", "output_dir", "budget"}."""
    import torch

    from dataset_builder.tiny_models import resolve_model
    from sft.collator import VideoThinkerCollator
    from sft.families import family_of
    from sft.processors import load_processor

    model_path = resolve_model(recipe.model)
    family = family_of(model_path)
    processor = load_processor(model_path)
    model = _load_model(model_path, recipe)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    checkpoint = _resume_point(recipe)
    stream = _stream_layout(recipe, world)
    resume_batches = _resume_batches(checkpoint, recipe, stream)
    common = {"workers": recipe.num_workers, "world_size": world, "model": model_path,
              "budget": dataclasses.asdict(recipe.budget)}
    train_ds, n_train = streamed_dataset(recipe.data, recipe.split, shuffle_buffer=recipe.shuffle_buffer,
                                         seed=recipe.seed, repeat=True, resume_batches=resume_batches,
                                         batch_size=recipe.per_device_batch_size, **common)
    eval_ds = streamed_dataset(recipe.data, recipe.eval_split, **common)[0] if recipe.eval_split else None
    max_steps = recipe.max_steps or compute_max_steps(_need(n_train), recipe.epochs, recipe.per_device_batch_size,
                                                      recipe.grad_accum, world)
    collator = VideoThinkerCollator(processor, family, recipe.budget.budget(), meta=True)
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / STREAM_FILE).write_text(json.dumps(stream, indent=1))
    data_log = DataLog(out / f"trained_samples.rank{rank}.jsonl")
    trainer = _trainer(model, processor, collator, train_ds, eval_ds, recipe, max_steps, torch.cuda.is_available())
    trainer.data_log = data_log
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        data_log.close()
    trainer.save_model(recipe.output_dir)
    processor.save_pretrained(recipe.output_dir)
    return {"global_step": trainer.state.global_step, "train_loss": result.training_loss,
            "log_history": trainer.state.log_history, "output_dir": recipe.output_dir,
            "budget": _all_ranks(trainer, data_log.stats()) | {"policy": recipe.budget.policy},
            "samples_log": str(data_log.path)}


class DataLog:
    """The samples the training loop consumed on this rank, and what the budget did before them."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("a")
        self.samples = self.reduced = self.frames_dropped = 0
        self.skipped: Counter = Counter()
        self.skipped_keys: dict[str, set[str]] = {}

    def record(self, step: int, keys: list[str], budgets: list[str] | None) -> None:
        events = [json.loads(b or "{}") for b in budgets or []]
        skipped = [s for e in events for s in e.get("skipped", [])]
        for key, reason in skipped:
            log.warning("budget: skipped sample %s (%s)", key, reason)
            self.skipped[reason] += 1
            self.skipped_keys.setdefault(reason, set()).add(key)
        self.samples += len(keys)
        self.reduced += sum(bool(e.get("reduced")) for e in events)
        self.frames_dropped += sum(e.get("frames_dropped", 0) for e in events)
        self._file.write(json.dumps({"step": step, "keys": keys, "skipped": skipped}) + "\n")
        self._file.flush()

    def stats(self) -> dict[str, Any]:
        """Counts in the shape of ``BudgetStats.as_dict`` plus the skipped keys (each skip counted per epoch)."""
        return {"seen": self.samples + sum(self.skipped.values()), "unchanged": self.samples - self.reduced,
                "reduced": self.reduced, "skipped": dict(self.skipped), "frames_dropped": self.frames_dropped,
                "skipped_keys": {r: sorted(k) for r, k in self.skipped_keys.items()}}

    def close(self) -> None:
        self._file.close()


def _all_ranks(trainer: Any, stats: dict[str, Any]) -> dict[str, Any]:
    if trainer.accelerator.num_processes == 1:
        return stats
    from accelerate.utils import gather_object

    everyone = gather_object([stats])
    total = {k: sum(s[k] for s in everyone) for k in ("seen", "unchanged", "reduced", "frames_dropped")}
    total["skipped"] = dict(sum((Counter(s["skipped"]) for s in everyone), Counter()))
    total["skipped_keys"] = {r: sorted({k for s in everyone for k in s["skipped_keys"].get(r, [])})
                             for r in total["skipped"]}
    return total


def _stream_layout(recipe: Recipe, world: int) -> dict[str, Any]:
    """What the data position of a checkpoint depends on (a resumed run must match it)."""
    return {"data": recipe.data, "split": recipe.split, "world_size": world, "num_workers": recipe.num_workers,
            "batch_size": recipe.per_device_batch_size, "grad_accum": recipe.grad_accum, "seed": recipe.seed,
            "shuffle_buffer": recipe.shuffle_buffer, "budget": dataclasses.asdict(recipe.budget)}


def _resume_batches(checkpoint: str | None, recipe: Recipe, stream: dict[str, Any]) -> int:
    """Batches each rank consumed before ``checkpoint``: the data position to resume at."""
    if checkpoint is None:
        return 0
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    saved = Path(recipe.output_dir) / STREAM_FILE
    before = json.loads(saved.read_text()) if saved.exists() else None
    if before is not None and before != stream:
        changed = sorted(k for k in stream if before.get(k) != stream[k])
        log.warning("resuming with a different data layout (%s): the data position is not the one the "
                    "checkpoint stopped at", ", ".join(changed))
    return int(state["global_step"]) * recipe.grad_accum


def _need(n: int | None) -> int:
    if n is None:
        raise TrainSetupError("the data has no index.json sample counts; pass --max-steps")
    return n


def _load_model(model_path: str, recipe: Recipe) -> Any:
    import torch
    from transformers import AutoModelForImageTextToText

    bf16 = _use_bf16(recipe)
    model = AutoModelForImageTextToText.from_pretrained(
        model_path, dtype=torch.bfloat16 if bf16 else torch.float32, attn_implementation=_attn(recipe))
    if recipe.freeze_vision:
        for name, param in model.named_parameters():
            if any(tower in f".{name}" for tower in VISION_TOWERS):
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


def _resume_point(recipe: Recipe) -> str | None:
    """The last checkpoint in the output folder when resuming, else None."""
    if not recipe.resume or not Path(recipe.output_dir).is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(recipe.output_dir)


def _trainer_class() -> type:
    from trl import SFTTrainer

    class VideoThinkerTrainer(SFTTrainer):
        """SFTTrainer that takes the batch's sample keys and budget notes out before the forward pass."""

        data_log: DataLog | None = None

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            keys, budgets = inputs.pop("sample_keys", None), inputs.pop("budget", None)
            if keys is not None and self.data_log is not None and self.model.training:
                self.data_log.record(self.state.global_step + 1, keys, budgets)
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            """Full-model checkpoints through ``from_pretrained``: it maps the saved key layout back.

            ``save_pretrained`` writes VLM weights in their legacy layout (``visual.*``, ``model.layers.*``);
            Trainer's resume loads them with a raw ``load_state_dict(strict=False)`` that matches none of
            the model's keys (``model.visual.*``, ``model.language_model.*``) and only warns, so a resumed
            full fine-tune would silently restart from the initial weights.
            """
            target = model if model is not None else self.model
            if self.is_deepspeed_enabled or self.is_fsdp_enabled or not _saved_in_other_layout(
                    target, resume_from_checkpoint):
                return super()._load_from_checkpoint(resume_from_checkpoint, model)
            saved = type(target).from_pretrained(resume_from_checkpoint, dtype=next(target.parameters()).dtype)
            target.load_state_dict(saved.state_dict(), strict=True)
            log.info("loaded the model weights of %s", resume_from_checkpoint)

    return VideoThinkerTrainer


def _saved_in_other_layout(model: Any, checkpoint: str) -> bool:
    """True when a full-model checkpoint's tensor names are not the model's own (PEFT adapters: False)."""
    path = Path(checkpoint)
    if (path / "model.safetensors").exists():
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), "pt") as f:
            saved = set(f.keys())
    elif (path / "model.safetensors.index.json").exists():
        saved = set(json.loads((path / "model.safetensors.index.json").read_text())["weight_map"])
    else:
        return False
    return not saved <= set(model.state_dict())


def _trainer(model: Any, processor: Any, collator: Any, train_ds: Any, eval_ds: Any, recipe: Recipe,
             max_steps: int, cuda: bool) -> Any:
    from trl import SFTConfig

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
        ignore_data_skip=True,  # sft.data resumes the stream at the checkpoint's data position itself
        report_to=_report_to(recipe), max_length=None, disable_tqdm=True,
    )
    return _trainer_class()(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                            data_collator=collator, processing_class=processor)
