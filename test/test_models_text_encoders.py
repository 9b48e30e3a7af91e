"""Text encoders: MiniLM is deterministic and cached; CLIP pads like AVDC or fails clearly."""

import json
import string

import pytest
import torch

from dts_planner.models.text_encoders import (
    CachedTextEncoder, ClipTextEncoder, DEFAULT_CACHE_SIZE, make_text_encoder, MiniLMTextEncoder,
    shared_text_encoder, TextEncoderUnavailable)


@pytest.fixture(scope="module")
def minilm():
    return make_text_encoder("minilm")


def test_minilm_embeds_one_unit_token_per_instruction(minilm):
    embeddings = minilm.encode(["door open", "drawer close"])
    assert embeddings.shape == (2, 1, 384) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2, 1))
    assert (embeddings[0] - embeddings[1]).abs().max() > 1e-2
    assert minilm.dim == 384


def test_minilm_is_deterministic_cached_and_batch_independent(minilm, monkeypatch, capfd):
    from transformers.utils.logging import is_progress_bar_enabled   # 0.3 s: not at collection

    first = minilm.encode(["button press", "push"])
    calls = []
    embed = minilm._embed
    monkeypatch.setattr(minilm, "_embed", lambda *args: calls.append(args) or embed(*args))
    torch.testing.assert_close(minilm.encode(["push"])[0], first[1], rtol=0, atol=0)
    torch.testing.assert_close(minilm.encode(["button press", "push"]), first, rtol=0, atol=0)
    assert calls == []
    minilm.encode(["reach"])
    assert calls == [("reach", 1)]
    capfd.readouterr()
    fresh = MiniLMTextEncoder()
    assert "Loading weights" not in capfd.readouterr().err   # no progress bar in a node's log
    assert is_progress_bar_enabled()                          # and the process's setting kept
    torch.testing.assert_close(fresh.encode(["button press"])[0], first[0], rtol=0, atol=1e-6)


def test_the_shared_encoder_is_built_once_per_name_and_device():
    encoder = shared_text_encoder("minilm", "cpu")
    assert isinstance(encoder, MiniLMTextEncoder)
    assert shared_text_encoder("minilm", "cpu") is encoder
    assert shared_text_encoder("minilm", "cpu:0") is not encoder


def test_encode_rejects_a_bare_string(minilm):
    with pytest.raises(TypeError, match="sequence of strings"):
        minilm.encode("door open")


def test_clip_without_local_weights_is_a_clear_error(tmp_path):
    with pytest.raises(TextEncoderUnavailable, match="local Hugging Face cache"):
        ClipTextEncoder(cache_dir=str(tmp_path))


def tiny_clip_dir(path):
    """Save a randomly initialised 1-layer CLIP text model with a letters-only BPE vocabulary."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    letters = list(string.ascii_lowercase)
    tokens = ["<|startoftext|>", "<|endoftext|>"] + letters + [c + "</w>" for c in letters]
    (path / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (path / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt")).save_pretrained(path)
    config = CLIPTextConfig(vocab_size=len(tokens), hidden_size=512, intermediate_size=64,
                            num_hidden_layers=1, num_attention_heads=8, bos_token_id=0,
                            eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    CLIPTextModel(config).save_pretrained(path)
    return str(path)


def test_clip_gives_last_hidden_state_padded_like_avdc(tmp_path):
    clip = ClipTextEncoder(tiny_clip_dir(tmp_path))
    alone = clip.encode(["ab"])
    assert alone.shape == (1, 4, 512)           # start, a, b, end
    batch = clip.encode(["ab", "abcd ef"])
    assert batch.shape == (2, 8, 512)
    torch.testing.assert_close(batch[0, :4], alone[0])    # padding never changes real tokens
    torch.testing.assert_close(clip.encode(["abcd ef"])[0], batch[1])


def test_unknown_encoder_name_is_a_clear_error():
    with pytest.raises(ValueError, match="minilm"):
        make_text_encoder("t5")


class CountingEncoder(CachedTextEncoder):
    """A cached encoder whose embedding is a constant row; counts the ``_embed`` calls."""

    dim = 4

    def __init__(self, cache_size=DEFAULT_CACHE_SIZE):
        """Count embeddings; keep ``cache_size`` of them."""
        super().__init__(cache_size=cache_size)
        self.embedded = []

    def _batch_length(self, texts):
        return 1

    def _embed(self, text, length):
        self.embedded.append(text)
        return torch.full((length, self.dim), float(len(text)))


def test_the_embedding_cache_is_a_bounded_lru():
    # issue 13: the cache kept every instruction (800 distinct 64 kB ones grew RSS by 86 MiB)
    assert CountingEncoder().cache_size == DEFAULT_CACHE_SIZE == 64
    encoder = CountingEncoder(cache_size=3)
    long_texts = [f"{i} " + "x" * 65536 for i in range(800)]
    for text in long_texts:
        encoder.encode([text])
    assert len(encoder._cache) == 3 and len(encoder.embedded) == 800
    encoder.embedded.clear()
    encoder.encode([long_texts[797]])                  # a hit refreshes its entry ...
    encoder.encode(["new"])                            # ... so 798 is the one evicted
    encoder.encode([long_texts[797], long_texts[799]])
    assert encoder.embedded == ["new"]
    encoder.encode([long_texts[798]])
    assert encoder.embedded == ["new", long_texts[798]]
    assert encoder.encode(["ab", "ab"]).tolist() == [[[2.0] * 4]] * 2
    uncached = CountingEncoder(cache_size=0)
    uncached.encode(["a", "a"])
    assert uncached.embedded == ["a", "a"] and not uncached._cache
