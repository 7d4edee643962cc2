"""Processor loading shared by every process of the recipe (main, dataloader workers) and by the agent."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def load_processor(path: str) -> Any:
    """``AutoProcessor.from_pretrained(path)``, cached per process (dataloader workers load it once)."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(path)
