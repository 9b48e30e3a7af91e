"""Text encoders: offline MiniLM is deterministic and cached; missing CLIP weights fail clearly."""

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


def test_unknown_encoder_name_is_a_clear_error():
    with pytest.raises(ValueError, match="minilm"):
        make_text_encoder("t5")
