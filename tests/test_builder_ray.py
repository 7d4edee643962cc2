"""`--engine ray` (an actor pool on a local 2-CPU Ray) gives the same shards and counts as the local engine."""

from __future__ import annotations

import pytest
import ray

from dataset_builder.config import load_config
from dataset_builder.inputs import list_videos, make_jobs
from dataset_builder.pipeline import run_build
from dataset_builder.questions import read_questions
from tests.builder_fixtures import make_build_inputs
from validation.shards import DatasetIndex


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_engine_matches_local_engine(tmp_path, local_ray):
    videos, questions, config_file = make_build_inputs(tmp_path)
    config = load_config("tiny", config_file)
    jobs, missing = make_jobs(list_videos(videos), read_questions(questions), videos)
    jobs = jobs[:2]  # two videos: one Ray task each on the 2 CPUs
    assert not missing
    local = run_build(jobs, config, tmp_path / "local", tmp_path / "work-local", "local", progress=False)
    distributed = run_build(jobs, config, tmp_path / "ray", tmp_path / "work-ray", "ray", progress=False)
    assert local["kept"] == distributed["kept"] > 0
    assert local["model_calls"] == distributed["model_calls"] > 0  # counted inside the actors too
    assert DatasetIndex.load(tmp_path / "local").splits == DatasetIndex.load(tmp_path / "ray").splits
