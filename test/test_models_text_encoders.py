"""Text encoders: MiniLM is deterministic and cached; CLIP pads like AVDC or fails clearly."""

import json
import string

import pytest
import torch

from dts_planner.models.text_encoders import (
    ClipTextEncoder, make_text_encoder, MiniLMTextEncoder, TextEncoderUnavailable)


@pytest.fixture(scope="module")
def minilm():
    return make_text_encoder("minilm")


def test_minilm_embeds_one_unit_token_per_instruction(minilm):
    embeddings = minilm.encode(["door open", "drawer close"])
    assert embeddings.shape == (2, 1, 384) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2, 1))
    assert (embeddings[0] - embeddings[1]).abs().max() > 1e-2
    assert minilm.dim == 384


def test_minilm_is_deterministic_cached_and_batch_independent(minilm, monkeypatch):
    first = minilm.encode(["button press", "push"])
    calls = []
    embed = minilm._embed
    monkeypatch.setattr(minilm, "_embed", lambda *args: calls.append(args) or embed(*args))
    torch.testing.assert_close(minilm.encode(["push"])[0], first[1], rtol=0, atol=0)
    torch.testing.assert_close(minilm.encode(["button press", "push"]), first, rtol=0, atol=0)
    assert calls == []
    minilm.encode(["reach"])
    assert calls == [("reach", 1)]
    fresh = MiniLMTextEncoder()
    torch.testing.assert_close(fresh.encode(["button press"])[0], first[0], rtol=0, atol=1e-6)


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
