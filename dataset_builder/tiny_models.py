"""Random-weight tiny models built offline, for tests and laptop smoke runs (``--model tiny:FAMILY``).

transformers ships no tokenizer files and the Hub is not always reachable, so a tiny model is built
from parts: a byte-level BPE trained in about a second on a small built-in corpus plus the family's
special tokens, the family's image/video processors constructed directly, and a 2-layer config with
random weights from a fixed seed. Both are saved with ``save_pretrained`` so ``AutoProcessor`` and
``AutoModelForImageTextToText`` (or ``AutoModelForCausalLM`` for text families) load the folder offline.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

TINY_PREFIX = "tiny:"
BUILDER_VERSION = "1"
SEED = 1234
VISION_FAMILIES = ("qwen2_5_vl", "qwen3_vl", "smolvlm2", "llava_onevision")
TEXT_FAMILIES = ("qwen2", "qwen3")
FAMILIES = VISION_FAMILIES + TEXT_FAMILIES

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
# Added but not special, as in the real Qwen tokenizers: decode keeps them.
ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]
# SmolVLM2 (SmolLM2 vocabulary + Idefics3 image tokens): turns end with <end_of_utterance>; no tool tokens.
SMOLVLM_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>",
                          "<end_of_utterance>", "<global-img>",
                          *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))]
# LLaVA-OneVision on a Qwen2 backbone: ChatML turns plus <image> and <video>; no tool tokens (Qwen2, not 2.5).
LLAVA_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]

_CORPUS = [
    "You are a video agent. Use tools to look at the video, then call Answer with the option letter.",
    "Question: what happens in the video? Options: A. a man runs B. a dog sleeps C. a car stops D. it rains",
    '{"name": "FrameZoom", "arguments": {"interval": [12.5, 40.25]}}',
    '{"name": "SpatialZoom", "arguments": {"time": 301.4, "box": [0.1, 0.2, 0.6, 0.7]}}',
    '{"name": "ClipRetrieval", "arguments": {"query": "a person opens the door", "top_k": 3}}',
    '{"name": "SubtitleRetrieval", "arguments": {"query": "what is said", "top_k": 5}}',
    '{"name": "Answer", "arguments": {"answer": "B"}}',
    '{"type": "function", "function": {"name": "x", "description": "y", "parameters": {"type": "object"}}}',
    "Step 0: I should look at the frames between 10 and 20 seconds. I am sure now. Done.",
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n",
    "<tools></tools> XML tags, return a json object with function name and arguments",
    "[10.0s-14.0s] a line of speech. The answer is C because the second clip shows it.",
    "0 1 2 3 4 5 6 7 8 9 10 25 50 100 0.5 1.25 seconds minutes frames video image crop",
    "the quick brown fox jumps over the lazy dog THE QUICK BROWN FOX 'quotes' \"double\" (parens)",
]


def build_tiny_model(family: str, out_dir: Path) -> Path:
    """Build the tiny ``family`` model (processor/tokenizer + weights) into ``out_dir``; return it."""
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny model family {family!r}; choose one of {', '.join(FAMILIES)}")
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    torch.manual_seed(SEED)
    builder = _BUILDERS[family]
    builder(tokenizer, out_dir)
    (out_dir / "tiny_model.json").write_text(json.dumps({"family": family, "builder_version": BUILDER_VERSION}))
    return out_dir


def resolve_model(name: str | Path, cache_dir: Path | None = None) -> str:
    """``tiny:FAMILY`` -> the path of the built tiny model (built once, cached); anything else unchanged."""
    text = str(name)
    if not text.startswith(TINY_PREFIX):
        return text
    family = text[len(TINY_PREFIX):]
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny model {text!r}; choose one of {', '.join(TINY_PREFIX + f for f in FAMILIES)}")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = root / f"{family}-v{BUILDER_VERSION}-{_env_hash()}"
    if not (path / "tiny_model.json").exists():
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        build_tiny_model(family, tmp)
        try:
            tmp.rename(path)
        except OSError:  # another process finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return str(path)


def default_cache_dir() -> Path:
    hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return Path(hf_home) / "videothinker" / "tiny"


def _env_hash() -> str:
    import transformers

    return hashlib.sha256(transformers.__version__.encode()).hexdigest()[:8]


def build_tokenizer(family: str) -> Any:
    """A byte-level BPE (vocab ~1k) with the family's special tokens, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special, added, names = SPECIAL_TOKENS, ADDED_TOKENS, {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    if family == "smolvlm2":
        special, added = SMOLVLM_SPECIAL_TOKENS, []
        names = {"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "pad_token": "<|im_end|>"}
    elif family == "llava_onevision":
        special, added = LLAVA_SPECIAL_TOKENS, []
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=None, model_max_length=32768, **names)
    if added:
        fast.add_tokens(added)
    fast.chat_template = _training_template(family)
    return fast


def _training_template(family: str) -> str:
    """The family's stock-like chat template (the SFT renderer uses its own tool-capable one)."""
    if family == "smolvlm2":
        from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

        return DEFAULT_CHAT_TEMPLATE
    if family == "llava_onevision":
        return _LLAVA_TEMPLATE
    import trl

    name = "qwen3_vl_training.jinja" if family in VISION_FAMILIES else "qwen3_training.jinja"
    path = Path(trl.__file__).parent / "chat_templates" / name
    return path.read_text() if path.exists() else ""


# The llava-hf LLaVA-OneVision template (images, then videos, then text per turn; no tools).
_LLAVA_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\\n' + content['text'] }}"
    "{% endfor %}{{'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return {"image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
            "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"]}


def _text_kwargs(tokenizer: Any) -> dict[str, Any]:
    return {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            "pad_token_id": tokenizer.pad_token_id}


def _vision_size(patch: int) -> dict[str, int]:
    factor = patch * 2
    return {"shortest_edge": factor * factor, "longest_edge": factor * factor * 256}


def _build_qwen2_5_vl(tokenizer: Any, out_dir: Path) -> None:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    text = _text_kwargs(tokenizer) | {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                          "mrope_section": [2, 3, 3]}}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
              "fullatt_block_indexes": [1], "tokens_per_second": 2}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **_token_ids(tokenizer))
    size = _vision_size(14)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, patch_size=14, merge_size=2, temporal_patch_size=2),
        video_processor=Qwen2VLVideoProcessor(size=size, patch_size=14, merge_size=2, temporal_patch_size=2,
                                              do_sample_frames=False, cap_pixels_per_frame=False),
        tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    _save(Qwen2_5_VLForConditionalGeneration(config), processor, out_dir)


def _build_qwen3_vl(tokenizer: Any, out_dir: Path) -> None:
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    text = _text_kwargs(tokenizer) | {"head_dim": 16, "rope_parameters": {
        "rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2], "mrope_interleaved": True}}
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
              "num_position_embeddings": 256, "deepstack_visual_indexes": [0]}
    config = Qwen3VLConfig(text_config=text, vision_config=vision, **_token_ids(tokenizer))
    size = _vision_size(16)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, patch_size=16, merge_size=2, temporal_patch_size=2),
        video_processor=Qwen3VLVideoProcessor(size=size, patch_size=16, merge_size=2, temporal_patch_size=2,
                                              do_sample_frames=False, cap_pixels_per_frame=False),
        tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    _save(Qwen3VLForConditionalGeneration(config), processor, out_dir)


SMOLVLM_TILE = 64  # frame side: (64 / 16)^2 patches, pixel-shuffled by 2 -> 4 vision tokens per frame
LLAVA_TILE = 56  # frame side: (56 / 14)^2 = 16 vision tokens per image tile, 2x2-pooled to 4 per video frame


def _build_smolvlm2(tokenizer: Any, out_dir: Path) -> None:
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    ids = tokenizer.convert_tokens_to_ids
    text = _text_kwargs(tokenizer) | {"model_type": "llama", "head_dim": 16, "rope_theta": 10000.0,
                                      "bos_token_id": ids("<|im_start|>"), "eos_token_id": ids("<end_of_utterance>"),
                                      "pad_token_id": tokenizer.pad_token_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "image_size": SMOLVLM_TILE, "patch_size": 16}
    config = SmolVLMConfig(text_config=text, vision_config=vision, scale_factor=2, image_token_id=ids("<image>"),
                           pad_token_id=tokenizer.pad_token_id)
    tile = {"longest_edge": SMOLVLM_TILE}
    sampling = {"fps": 1, "max_frames": 64, "video_size": {"longest_edge": SMOLVLM_TILE}}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size={"longest_edge": 4 * SMOLVLM_TILE}, max_image_size=tile,
                                              do_image_splitting=True),
        video_processor=SmolVLMVideoProcessor(size=tile, max_image_size=tile, video_sampling=sampling),
        tokenizer=tokenizer, image_seq_len=(SMOLVLM_TILE // 16) ** 2 // 4, chat_template=tokenizer.chat_template)
    _save(SmolVLMForConditionalGeneration(config), processor, out_dir)


def _build_llava_onevision(tokenizer: Any, out_dir: Path) -> None:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    ids = tokenizer.convert_tokens_to_ids
    text = _text_kwargs(tokenizer) | {"model_type": "qwen2", "rope_theta": 10000.0}
    vision = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": LLAVA_TILE, "patch_size": 14,
              "vision_use_head": False}
    pinpoints = [[LLAVA_TILE * h, LLAVA_TILE * w] for h in (1, 2, 3) for w in (1, 2, 3)]
    config = LlavaOnevisionConfig(text_config=text, vision_config=vision, image_token_index=ids("<image>"),
                                  video_token_index=ids("<video>"), image_grid_pinpoints=pinpoints,
                                  vision_feature_select_strategy="full", vision_feature_layer=-1,
                                  vision_aspect_ratio="anyres_max_9")
    size = {"height": LLAVA_TILE, "width": LLAVA_TILE}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer, num_image_tokens=(LLAVA_TILE // 14) ** 2, vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9", chat_template=tokenizer.chat_template)
    _save(LlavaOnevisionForConditionalGeneration(config), processor, out_dir)


def _build_text(family: str) -> Callable[[Any, Path], None]:
    def build(tokenizer: Any, out_dir: Path) -> None:
        from transformers import AutoModelForCausalLM, Qwen2Config, Qwen3Config

        kwargs = _text_kwargs(tokenizer) | {"tie_word_embeddings": True}
        config = Qwen2Config(**kwargs) if family == "qwen2" else Qwen3Config(head_dim=16, **kwargs)
        _save(AutoModelForCausalLM.from_config(config), tokenizer, out_dir)

    return build


def _save(model: Any, processor: Any, out_dir: Path) -> None:
    model.generation_config.pad_token_id = processor_tokenizer(processor).pad_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def processor_tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


_BUILDERS: dict[str, Callable[[Any, Path], None]] = {
    "qwen2_5_vl": _build_qwen2_5_vl,
    "qwen3_vl": _build_qwen3_vl,
    "smolvlm2": _build_smolvlm2,
    "llava_onevision": _build_llava_onevision,
    "qwen2": _build_text("qwen2"),
    "qwen3": _build_text("qwen3"),
}
