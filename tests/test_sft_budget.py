"""Budgets before the processor: a 200-frame 1080p sample is reduced or skipped, deterministically, counted."""

from __future__ import annotations

import pytest
from PIL import Image

from loaders.chat import VideoClip
from sft.budget import Budget, BudgetPlanner, OverBudget, fit_size, uniform_indices
from sft.families import FAMILIES


def big_chat(n_initial: int = 200, tool_frames: int = 6) -> dict:
    """A chat with a 200-frame 1080p initial video, a FrameZoom clip and a crop (frames shared: cheap)."""
    frame = Image.new("RGB", (1920, 1080), (10, 20, 30))
    initial = VideoClip([frame] * n_initial, [i * 3.0 for i in range(n_initial)])
    zoom = VideoClip([frame] * tool_frames, [100.0 + i for i in range(tool_frames)])
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]},
        {"role": "assistant", "content": [], "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": [{"type": "video"}], "tool_call_id": "c1"},
        {"role": "assistant", "content": [], "tool_calls": [{"id": "c2"}]},
        {"role": "tool", "content": [{"type": "image"}], "tool_call_id": "c2"},
    ]
    return {"messages": messages, "images": [frame], "videos": [initial, zoom], "tools": []}


BUDGET = Budget(max_frames=32, max_pixels=448 * 448, max_tokens=4096)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_reduce_is_deterministic_keeps_tool_frames_and_fits(family):
    planner = BudgetPlanner(FAMILIES[family], BUDGET)
    chat = big_chat()
    plan = planner.plan(chat, text_tokens=300)
    assert plan == BudgetPlanner(FAMILIES[family], BUDGET).plan(big_chat(), text_tokens=300)
    assert plan.reduced and plan.frames <= 32 and plan.tokens <= 4096
    assert plan.keep[1] == tuple(range(6))  # tool-call frames never dropped
    assert plan.keep[0][0] == 0 and plan.keep[0][-1] == 199  # uniform over the whole video
    fitted = planner.apply(chat, plan)
    factor = FAMILIES[family].factor
    for im in [*fitted["images"], *(f for v in fitted["videos"] for f in v.frames)]:
        assert im.width % factor == 0 and im.height % factor == 0 and im.width * im.height <= 448 * 448
    assert fitted["videos"][0].timestamps == [i * 3.0 for i in plan.keep[0]]
    assert planner.stats.as_dict() == {"seen": 1, "unchanged": 0, "reduced": 1, "skipped": {},
                                       "frames_dropped": 207 - plan.frames}


def test_tight_token_budget_shrinks_frames_then_pixels():
    planner = BudgetPlanner(FAMILIES["qwen2_5_vl"], Budget(max_frames=64, max_pixels=1280 * 28 * 28,
                                                           max_tokens=2000, min_initial_frames=4))
    plan = planner.plan(big_chat(), text_tokens=300)
    assert len(plan.keep[0]) == 4 and plan.max_pixels < 1280 * 28 * 28 and plan.tokens <= 2000


def test_skip_policy_skips_and_counts():
    planner = BudgetPlanner(FAMILIES["qwen3_vl"], Budget(max_frames=32, policy="skip"))
    with pytest.raises(OverBudget) as err:
        planner.plan(big_chat(), text_tokens=300)
    assert err.value.reason == "too_many_frames"
    planner.plan(big_chat(n_initial=8), text_tokens=300)
    assert planner.stats.as_dict()["skipped"] == {"too_many_frames": 1}
    assert planner.stats.seen == 2 and planner.stats.unchanged == 1


def test_tool_frames_alone_over_budget_are_skipped_not_cut():
    planner = BudgetPlanner(FAMILIES["qwen2_5_vl"], Budget(max_frames=8))
    with pytest.raises(OverBudget):
        planner.plan(big_chat(n_initial=10, tool_frames=12), text_tokens=100)
    assert planner.stats.skipped["too_many_frames"] == 1


def test_within_budget_is_untouched():
    planner = BudgetPlanner(FAMILIES["qwen2_5_vl"], Budget())
    chat = big_chat(n_initial=4)
    plan = planner.plan(chat, text_tokens=100)
    assert not plan.reduced and plan.keep[0] == (0, 1, 2, 3)


def test_helpers():
    assert uniform_indices(10, 3) == (0, 4, 9) and uniform_indices(3, 5) == (0, 1, 2)
    assert fit_size(1080, 1920, 28, 3136, 448 * 448) == (336, 588)
    assert fit_size(10, 10, 28, 3136, 10**6) == (56, 56)
