"""ClipRetrieval in video space: video-text embeddings of 10-second clips, cached per video.

The paper embeds clips with a video-text model (LanguageBind-Video). Here a clip is embedded by an
image-text dual encoder (CLIP, SigLIP, SigLIP 2: anything ``transformers`` loads with
``get_image_features``/``get_text_features``) as the normalized mean of the embeddings of a few frames
sampled inside it; a query is embedded as text and clips rank by cosine similarity.

Why not the builder's index (ClipRetrieval over clip CAPTIONS with a text embedder): at evaluation it would
caption every 10 s of every video with a VLM (360 captioner calls for one hour), which costs more than
the agent itself and puts a second model's opinions into the benchmark. A dual encoder sees the pixels,
embeds an hour of video in a minute on one GPU, and its index is cached next to the results (``.npz``
named by the video's content fingerprint and the settings), so each video is embedded once.

``tiny:clip`` builds a random-weight 1-layer CLIP offline (tests and smoke runs only: its rankings mean
nothing). The default for real runs is ``google/siglip-base-patch16-224``; pass any other with
``--clip-encoder``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataset_builder import video
from dataset_builder.cache import content_key
from dataset_builder.video_index import fingerprint, segment

log = logging.getLogger(__name__)
DEFAULT_ENCODER = "google/siglip-base-patch16-224"
TINY_ENCODER = "tiny:clip"
INDEX_VERSION = "1"


class ClipEncoder:
    """An image-text dual encoder: L2-normalized embeddings of images and of texts in one space."""

    def __init__(self, name: str, model: Any, image_inputs: Any, text_inputs: Any):
        self.name = name
        self.model = model
        self._image_inputs = image_inputs  # list[PIL] -> dict of tensors
        self._text_inputs = text_inputs  # list[str] -> dict of tensors

    @classmethod
    def load(cls, name: str, device: str | None = None) -> ClipEncoder:
        if name == TINY_ENCODER:
            return tiny_clip_encoder()
        import torch
        from transformers import AutoModel, AutoProcessor

        processor = AutoProcessor.from_pretrained(name)
        model = AutoModel.from_pretrained(name).eval()
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        padding = "max_length" if "siglip" in model.config.model_type else True
        return cls(name, model, lambda ims: processor(images=ims, return_tensors="pt"),
                   lambda texts: processor(text=texts, padding=padding, truncation=True, return_tensors="pt"))

    def embed_images(self, images: list[Any], batch: int = 64) -> np.ndarray:
        chunks = [self._features(self.model.get_image_features, self._image_inputs(images[i:i + batch]))
                  for i in range(0, len(images), batch)]
        return np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self._features(self.model.get_text_features, self._text_inputs(texts))

    def _features(self, fn: Any, inputs: Any) -> np.ndarray:
        import torch

        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = fn(**{k: v.to(device) for k, v in dict(inputs).items()})
        feats = out if torch.is_tensor(out) else out.pooler_output
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy()


def tiny_clip_encoder(seed: int = 0) -> ClipEncoder:
    """A random-weight CLIP (1 layer, 32x32 images) with the tiny models' byte-level BPE; built in memory."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from dataset_builder.tiny_models import build_tokenizer

    tokenizer = build_tokenizer("qwen2")
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 64, "bos_token_id": eos, "eos_token_id": eos,
            "pad_token_id": eos}
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 2}
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()

    def images(ims: list[Any]) -> dict[str, Any]:
        arrays = [np.asarray(im.convert("RGB").resize((32, 32)), np.float32) / 127.5 - 1.0 for im in ims]
        return {"pixel_values": torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()}

    def texts(strings: list[str]) -> dict[str, Any]:
        ids = [tokenizer(s, add_special_tokens=False).input_ids[:62] + [eos] for s in strings]
        width = max(len(i) for i in ids)
        padded = [i + [eos] * (width - len(i)) for i in ids]
        mask = [[1] * len(i) + [0] * (width - len(i)) for i in ids]
        return {"input_ids": torch.tensor(padded), "attention_mask": torch.tensor(mask)}

    return ClipEncoder(TINY_ENCODER, model, images, texts)


@dataclass
class ClipIndex:
    """Embeddings of a video's clips: ``clips[i]`` = [start, end] seconds, ``embeddings[i]`` unit vectors."""

    clips: list[list[float]]
    embeddings: np.ndarray
    encoder: ClipEncoder

    def top_k(self, query: str, k: int) -> list[tuple[list[float], float]]:
        if not self.clips:
            return []
        scores = self.embeddings @ self.encoder.embed_texts([query])[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.clips[int(i)], float(scores[i])) for i in order]


def build_clip_index(path: Path, duration_s: float, encoder: ClipEncoder, *, clip_seconds: float = 10.0,
                     frames_per_clip: int = 4, max_pixels: int = 224 * 224, cache_dir: Path | None = None,
                     chunk: int = 256) -> ClipIndex:
    """Embed every clip of the video (or load the cached embeddings of this file and these settings)."""
    clips = segment(duration_s, clip_seconds)
    cache = _cache_path(path, encoder.name, clip_seconds, frames_per_clip, max_pixels, cache_dir)
    if cache is not None and cache.exists():
        return ClipIndex(clips, np.load(cache)["embeddings"], encoder)
    times = [t for a, b in clips for t in video.uniform_timestamps(a, b, frames_per_clip)]
    info = video.probe(path)
    parts = []
    for i in range(0, len(times), chunk):
        frames = video.frames_at(path, times[i:i + chunk], max_pixels=max_pixels, probe=info)
        parts.append(encoder.embed_images([f.image for f in frames]))
    per_frame = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    pooled = per_frame.reshape(len(clips), frames_per_clip, -1).mean(axis=1) if clips else per_frame
    pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, embeddings=pooled.astype(np.float32))
        tmp.replace(cache)
    log.info("embedded %d clips of %s with %s", len(clips), path.name, encoder.name)
    return ClipIndex(clips, pooled, encoder)


def _cache_path(path: Path, encoder: str, clip_seconds: float, frames_per_clip: int, max_pixels: int,
                cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    key = content_key("clip-index", INDEX_VERSION, encoder, clip_seconds, frames_per_clip, max_pixels)[:16]
    return Path(cache_dir) / "clip_index" / f"{fingerprint(path)}-{key}.npz"
