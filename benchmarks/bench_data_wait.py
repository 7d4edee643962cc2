"""Share of step time spent waiting for data: tiny Qwen2.5-VL, 2 dataloader workers, streamed shards.

A TrainerCallback times the gap between one step's end and the next step's start (the dataloader +
collator wait seen by the training loop) against the whole step. Prints figures; no asserts.
Run: ``python benchmarks/bench_data_wait.py [steps]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="vt-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(steps: int = 40, workers: int = 2) -> None:
    from transformers import TrainerCallback

    import sft.train as train_mod
    from dataset_builder.writer import ShardWriter
    from sft.config import load_recipe
    from tests.fixtures.records import make_sample

    root = Path(tempfile.mkdtemp(prefix="vt-bench-data-"))
    with ShardWriter(root / "data", max_shard_bytes=50_000) as writer:
        for i in range(16):
            writer.write(*make_sample(i, n_initial=8))

    class Timer(TrainerCallback):
        def __init__(self):
            self.last_end, self.waits, self.steps = None, [], []

        def on_step_begin(self, args, state, control, **kw):
            self.begin = time.perf_counter()
            if self.last_end is not None:
                self.waits.append(self.begin - self.last_end)

        def on_step_end(self, args, state, control, **kw):
            self.last_end = time.perf_counter()
            self.steps.append(self.last_end - self.begin)

    timer = Timer()
    original = train_mod._trainer

    def with_timer(*a, **kw):
        trainer = original(*a, **kw)
        trainer.add_callback(timer)
        return trainer

    train_mod._trainer = with_timer
    recipe = load_recipe("tiny", data=str(root / "data"), output_dir=str(root / "run"), max_steps=steps,
                         num_workers=workers, report_to="none", save_steps=10_000, logging_steps=10_000)
    train_mod.train(recipe)
    waits, compute = timer.waits[5:], timer.steps[6:]  # skip warm-up (worker start)
    total = sum(waits) + sum(compute)
    print(f"tiny qwen2_5_vl, {workers} workers, batch 2, 8-frame samples: step {total / len(compute) * 1000:.0f} ms, "
          f"data wait {sum(waits) / total * 100:.1f}% of step time (target < 5%)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
