"""Collator samples/s per family vs the bare processor call on the same inputs (tiny offline models).

Baseline: the processor alone on pre-rendered text with frames already resized (what any collator must
pay). Ours: Sample -> chat -> template -> budget -> resize -> processor -> labels. Prints figures and the
same-run ratio; no asserts.  Run: ``python benchmarks/bench_collator.py``.
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


def main(n: int = 32, batch: int = 4, repeats: int = 3) -> None:
    from dataset_builder.tiny_models import VISION_FAMILIES, resolve_model
    from loaders.sample import Sample
    from sft.budget import Budget
    from sft.collator import VideoThinkerCollator, as_chat
    from sft.families import family_of
    from sft.processors import load_processor
    from tests.fixtures.records import make_sample

    samples = [Sample(key=r.id, record=r, frames=f) for r, f in (make_sample(i, n_initial=8) for i in range(n))]
    for family in VISION_FAMILIES:
        path = resolve_model(f"tiny:{family}")
        processor = load_processor(path)
        collator = VideoThinkerCollator(processor, family_of(path), Budget(max_pixels=56 * 56))
        renderer = collator.renderer
        prepared = [renderer.prepare(as_chat(s)) for s in samples]
        batches = [samples[i:i + batch] for i in range(0, n, batch)]
        pbatches = [prepared[i:i + batch] for i in range(0, n, batch)]
        ours = _rate(lambda c=collator, bs=batches: [c([Sample(s.key, s.record, s.frames) for s in b]) for b in bs],
                     n, repeats)
        bare = _rate(lambda r=renderer, ps=pbatches: [r.encode(p) for p in ps], n, repeats)
        print(f"{family}: collator {ours:.1f} samples/s, bare processor {bare:.1f} samples/s, "
              f"ratio {ours / bare:.2f} (batch {batch}, 8 initial frames + tool frames, 56x56 or the tile)")


def _rate(fn, n: int, repeats: int) -> float:
    fn()  # warm up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


if __name__ == "__main__":
    main()
