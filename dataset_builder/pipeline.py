"""The build pipeline: small steps over an iterator of per-video work, and the engines that run them.

    probe -> index (segment, captions, subtitles) -> episodes (teacher, k per question) -> filter
          -> ground -> write shards

Each step is a class with one ``run()`` over an iterator and its own counters (datatrove style). The
unit of parallel work is one video (``process_video``): the local engine runs videos in order in this
process; the Ray engine runs the same function as Ray tasks and writes the results in the same order,
so both produce identical shards. Every model call goes through the content-addressed cache in the
workdir: a killed build resumes where it stopped and writes the same shards.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataset_builder import video
from dataset_builder.backends import CachedBackend, ChatBackend, OpenAIBackend, TransformersBackend
from dataset_builder.cache import Cache, content_key
from dataset_builder.config import BuildConfig, ModelConfig
from dataset_builder.embedder import TextEmbedder
from dataset_builder.episodes import TEACHER_SYSTEM, Episode, filter_episodes, run_episode
from dataset_builder.executors import CAPTION_PROMPT, CaptionSpaceTools, Services, caption_clips, caption_interval
from dataset_builder.grounding import GroundingError, ground
from dataset_builder.inputs import VideoJob
from dataset_builder.questions import Question
from dataset_builder.subtitles import load_subtitles, sidecar_subtitles
from dataset_builder.video_index import VideoIndex, fingerprint, segment
from dataset_builder.writer import SampleRejected, ShardWriter

log = logging.getLogger(__name__)


@dataclass
class VideoResult:
    video_id: str
    samples: list[tuple[Any, list[bytes]]] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)


def make_backend(cfg: ModelConfig) -> ChatBackend:
    if cfg.backend == "openai":
        return OpenAIBackend(cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env, timeout_s=cfg.timeout_s,
                             max_retries=cfg.max_retries)
    if cfg.backend == "transformers":
        return TransformersBackend(cfg.model)
    if cfg.backend == "standin":
        from dataset_builder.standin import StandinSummarizer, StandinTeacher

        return StandinTeacher() if "teacher" in cfg.model else StandinSummarizer()
    raise ValueError(f"unknown backend {cfg.backend!r}; choose transformers, openai or standin")


@dataclass
class Runtime:
    """What every step needs: the config, the cached backends and the tool services."""

    config: BuildConfig
    cache: Cache
    teacher: ChatBackend
    services: Services

    @classmethod
    def create(cls, config: BuildConfig, workdir: Path) -> Runtime:
        cache = Cache(workdir / "cache.sqlite")
        cached = {name: CachedBackend(make_backend(getattr(config, name)), cache)
                  for name in ("captioner", "teacher", "summarizer")}
        services = Services(captioner=cached["captioner"], summarizer=cached["summarizer"],
                            embedder=TextEmbedder(config.embedder), caption_frames=config.caption_frames,
                            zoom_frames=config.zoom_frames, max_pixels=config.max_pixels,
                            max_tokens=config.captioner.max_tokens)
        return cls(config, cache, cached["teacher"], services)

    def provenance(self) -> dict[str, Any]:
        c = self.config
        models = {"captioner": c.captioner.model, "teacher": c.teacher.model, "summarizer": c.summarizer.model,
                  "embedder": c.embedder}
        prompts = {"teacher_system": TEACHER_SYSTEM, "caption": CAPTION_PROMPT}
        return {"models": models, "preset": c.preset,
                "prompt_hashes": {k: content_key(v)[:16] for k, v in prompts.items()}}


class IndexStep:
    """Probe, segment, subtitles and captions of one video (cached by file content and settings)."""

    name = "index"

    def __init__(self, rt: Runtime):
        self.rt = rt

    def run(self, job: VideoJob) -> VideoIndex:
        cfg = self.rt.config
        key = content_key("index", fingerprint(job.path), cfg.clip_seconds, cfg.caption_frames,
                          cfg.global_caption_frames, cfg.max_pixels, cfg.captioner.model, cfg.asr,
                          _subtitle_stamp(job.path))
        cached = self.rt.cache.get(key)
        if cached is not None:
            return VideoIndex.from_dict(cached)
        index = self._build(job)
        self.rt.cache.put(key, index.to_dict())
        return index

    def _build(self, job: VideoJob) -> VideoIndex:
        cfg, services = self.rt.config, self.rt.services
        info = video.probe(job.path)
        index = VideoIndex(video_id=job.video_id, path=str(job.path), fingerprint=fingerprint(job.path),
                           duration_s=info.duration_s, fps=info.fps, width=info.display_width,
                           height=info.display_height, start_time_s=info.start_time_s)
        index.clips = segment(info.duration_s, cfg.clip_seconds)
        sidecar = sidecar_subtitles(job.path)
        if sidecar is not None:
            index.subtitles, index.subtitle_source = load_subtitles(sidecar), "sidecar"
        elif cfg.asr:
            from dataset_builder.asr import transcribe

            index.subtitles, index.subtitle_source = transcribe(job.path, cfg.asr), "asr"
        index.global_caption = caption_interval(services, index, 0.0, info.duration_s, cfg.global_caption_frames)
        index.clip_captions = caption_clips(services, index, cfg.caption_frames)
        return index


class EpisodeStep:
    """k teacher episodes per question in caption space, then the filter.

    ``start`` submits the episodes of all of a video's questions to one bounded thread pool (``workers``
    concurrent model calls for endpoint backends; one for in-process models), so a slow question never
    idles the endpoint; ``run`` then takes each question's episodes in order.
    """

    name = "episodes"

    def __init__(self, rt: Runtime):
        self.rt = rt
        # An in-process teacher generates one reply at a time; an in-process captioner serializes its own calls.
        in_process = rt.config.teacher.backend == "transformers"
        self.pool = ThreadPoolExecutor(max_workers=1 if in_process else rt.config.workers,
                                       thread_name_prefix="episodes")
        self.futures: dict[tuple[str, int], Future] = {}

    def start(self, questions: list[Question], index: VideoIndex) -> None:
        cfg = self.rt.config
        tools = CaptionSpaceTools(index, self.rt.services)
        for q in questions:
            for k in range(cfg.samples_per_question):
                self.futures[q.id, k] = self.pool.submit(
                    run_episode, q, tools, self.rt.teacher, sample=k, max_steps=cfg.max_steps,
                    temperature=cfg.temperature, seed=content_int(cfg.seed, q.id, k), max_tokens=cfg.teacher.max_tokens)

    def run(self, q: Question, index: VideoIndex, stats: Counter) -> list[tuple[Episode, str]]:
        cfg = self.rt.config
        if (q.id, 0) not in self.futures:
            self.start([q], index)
        futures = [self.futures.pop((q.id, k)) for k in range(cfg.samples_per_question)]
        episodes = [f.result() for f in futures]  # a VideoError from a tool propagates to the caller
        stats["episodes"] += len(episodes)
        stats["invalid_tool_calls"] += sum(e.invalid_calls for e in episodes)
        result = filter_episodes(q, episodes, cfg.keep_wrong_when_all_fail)
        for reason, n in result.dropped.items():
            stats[f"dropped:{reason}"] += n
        return result.kept

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True)


def _reason_kind(reason: str) -> str:
    """A rejection reason without its per-file numbers, so the report groups like with like."""
    return re.sub(r"\d+(\.\d+)?", "N", reason.split(";")[0]).strip()[:100]


def content_int(*parts: Any) -> int:
    return int(content_key(*parts)[:8], 16)


def _subtitle_stamp(path: Path) -> str:
    sidecar = sidecar_subtitles(path)
    return fingerprint(sidecar) if sidecar else ""


def process_video(job: VideoJob, rt: Runtime) -> VideoResult:
    """All questions of one video -> grounded samples, in question order; never raises for bad input."""
    hits, misses = rt.cache.hits, rt.cache.misses
    result = _process_video(job, rt)
    result.stats["cache_hits"] += rt.cache.hits - hits
    result.stats["model_calls"] += rt.cache.misses - misses
    return result


def _process_video(job: VideoJob, rt: Runtime) -> VideoResult:
    result = VideoResult(job.video_id)
    try:
        index = IndexStep(rt).run(job)
    except video.VideoError as exc:
        log.warning("rejected video: %s", exc)
        result.stats[f"rejected_video:{_reason_kind(exc.reason)}"] += 1
        result.stats["dropped:video_rejected"] += len(job.questions) * rt.config.samples_per_question
        return result
    result.stats["videos"] += 1
    result.stats["hours"] += index.duration_s / 3600
    questions = list(job.questions)
    if job.generate_questions:
        from dataset_builder.question_writer import generate_questions

        questions += generate_questions(index, rt.teacher, job.generate_questions, content_int(rt.config.seed,
                                        index.fingerprint), result.stats, rt.config.teacher.max_tokens)
    episodes = EpisodeStep(rt)
    episodes.start(questions, index)
    try:
        for q in questions:
            result.stats["questions"] += 1
            try:  # a file that probes fine can still fail to decode where a tool looks (corrupt or truncated)
                kept = episodes.run(q, index, result.stats)
            except video.VideoError as exc:
                log.warning("question %s: video failed during episodes: %s", q.id, exc)
                result.stats["dropped:video_error"] += rt.config.samples_per_question
                continue
            result.samples += _ground_kept(q, kept, index, rt, result.stats)
    finally:
        episodes.close()
    return result


def _ground_kept(q: Question, kept: list[tuple[Episode, str]], index: VideoIndex, rt: Runtime,
                 stats: Counter) -> list[tuple[Any, list[bytes]]]:
    samples = []
    for episode, kept_because in kept:
        try:
            samples.append(ground(q, episode, kept_because, index, rt.services,
                                  initial_frames=rt.config.initial_frames, max_frames=rt.config.max_frames,
                                  provenance=rt.provenance(), license=rt.config.license,
                                  encode={"format": rt.config.image_format, "quality": rt.config.image_quality}))
        except GroundingError as exc:
            stats[f"dropped:{exc}"] += 1
        except video.VideoError as exc:
            log.warning("question %s: video failed during grounding: %s", q.id, exc)
            stats["dropped:video_error"] += 1
    return samples


class LocalEngine:
    def map(self, jobs: list[VideoJob], rt: Runtime) -> Iterator[VideoResult]:
        for job in jobs:
            yield process_video(job, rt)


class RayEngine:
    """The same ``process_video`` on a pool of Ray actors; results are consumed in job order (identical shards).

    Each actor builds its Runtime (models, embedder, cache connection) once and serves many videos, so a
    captioner VLM loads once per actor, not once per video. ``actors`` defaults to the cluster's CPUs;
    ``num_gpus`` per actor puts in-process models on GPUs.
    """

    def __init__(self, address: str | None = None, actors: int | None = None, num_gpus: float = 0.0):
        self.address = address
        self.actors = actors
        self.num_gpus = num_gpus

    def map(self, jobs: list[VideoJob], rt: Runtime) -> Iterator[VideoResult]:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError as exc:
            raise RuntimeError("the Ray engine needs ray: pip install 'videothinker-traj[ray]'") from exc
        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        n = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        worker = ray.remote(num_cpus=1, num_gpus=self.num_gpus)(_VideoWorker)
        pool = ActorPool([worker.remote(rt.config, rt.cache.path.parent) for _ in range(min(n, len(jobs)) or 1)])
        yield from pool.map(lambda actor, job: actor.process.remote(job), jobs)


class _VideoWorker:
    def __init__(self, config: BuildConfig, workdir: Path):
        self.rt = Runtime.create(config, workdir)

    def process(self, job: VideoJob) -> VideoResult:
        return process_video(job, self.rt)


def run_build(jobs: list[VideoJob], config: BuildConfig, out: Path, workdir: Path, engine: str = "local",
              progress: bool = True, input_drops: dict[str, int] | None = None) -> dict[str, Any]:
    """Run the pipeline and write shards, index.json, README.md and build_report.json; return the report."""
    started = time.monotonic()
    rt = Runtime.create(config, workdir)
    runner = RayEngine() if engine == "ray" else LocalEngine()
    stats: Counter = Counter({f"dropped:{k}": n for k, n in (input_drops or {}).items() if n})
    results = runner.map(jobs, rt)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(jobs), desc="videos", unit="video")
    with ShardWriter(out, max_shard_bytes=config.max_shard_bytes) as writer:
        for result in results:
            stats.update(result.stats)
            for record, frames in result.samples:
                try:
                    writer.write(record, frames)
                except SampleRejected as exc:  # a grounded record that breaks the contract: counted, never kept
                    log.warning("not written: %s", exc)
                    stats["dropped:rejected_by_writer"] += 1
                    continue
                stats["kept"] += 1
                stats["frames"] += len(frames)
    report = _report(stats, config, time.monotonic() - started)
    (out / "build_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _report(stats: Counter, config: BuildConfig, seconds: float) -> dict[str, Any]:
    dropped = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("dropped:")}
    rejected = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected_video:")}
    invalid_generated = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("generated_invalid:")}
    return {
        "preset": config.preset,
        "videos": stats["videos"], "rejected_videos": rejected, "hours": round(stats["hours"], 4),
        "questions": stats["questions"], "episodes": stats["episodes"], "kept": stats["kept"],
        "generated_questions": stats["generated_questions"], "generated_invalid": invalid_generated,
        "dropped": dict(sorted(dropped.items())), "invalid_tool_calls": stats["invalid_tool_calls"],
        "frames": stats["frames"], "seconds": round(seconds, 2),
        "trajectories_per_s": round(stats["kept"] / seconds, 4) if seconds else 0.0,
        "model_calls": stats["model_calls"], "cache": {"hits": stats["cache_hits"], "misses": stats["model_calls"]},
    }
