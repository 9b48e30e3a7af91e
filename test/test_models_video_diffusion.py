"""VideoDiffusionModel: Denoiser conventions, layouts, per-sample steps, guidance."""

import numpy as np
import pytest
import torch

from dts_planner.diffusion.schedule import NoiseSchedule
from dts_planner.models import (
    frames_to_model_space, image_to_cond, UNetConfig, VideoDiffusionModel, VideoModelConfig)


def tiny_config(dims: int, guidance_scale: float = 0.0) -> VideoModelConfig:
    unet = UNetConfig(model_channels=32, num_res_blocks=1, channel_mult=(1, 2),
                      attention_resolutions=(2,), dims=dims, task_token_channels=32)
    return VideoModelConfig(image_size=(16, 24), num_frames=3, unet=unet, text_encoder="minilm",
                            guidance_scale=guidance_scale)


def randomised(model: VideoDiffusionModel) -> VideoDiffusionModel:
    """Give zero-initialised output layers weights so the prediction depends on the inputs."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def inputs(model: VideoDiffusionModel, batch: int):
    torch.manual_seed(2)
    x_t = torch.randn(model.noise_shape(batch))
    cond = model.make_cond(torch.rand(batch, 3, 16, 24), torch.randn(batch, 4, 32))
    return x_t, cond


@pytest.mark.parametrize("dims", [2, 3])
def test_denoiser_contract_and_per_sample_steps(dims):
    model = randomised(VideoDiffusionModel(tiny_config(dims)))
    assert model.prediction_type == "v_prediction"
    assert isinstance(model.schedule, NoiseSchedule) and model.schedule.num_train_timesteps == 100
    assert model.noise_shape(2) == (2, 9, 16, 24)
    x_t, cond = inputs(model, 2)
    t = torch.tensor([7, 93])
    with torch.no_grad():
        together = model(x_t, t, cond)
        alone = [model(x_t[i:i + 1], t[i:i + 1], {k: v[i:i + 1] for k, v in cond.items()})
                 for i in range(2)]
        tokens_only = model(x_t, t, {"image": cond["image"], "task_embed": cond["task_embed"]})
    assert together.shape == x_t.shape
    torch.testing.assert_close(together, torch.cat(alone), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(tokens_only, together)
    assert not torch.allclose(together[0], together[1])


def test_three_d_output_is_frame_major_f_c_layout():
    """Output channel f*3+c is colour c of frame f (AVDC's "b (f c) h w")."""
    model = VideoDiffusionModel(tiny_config(3)).eval()
    x_t, cond = inputs(model, 1)
    with torch.no_grad():      # a zeroed U-Net outputs its last bias: colour c -> c + 1
        for parameter in model.unet.parameters():
            parameter.zero_()
        model.unet.out[2].temporal_conv.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
        out = model(x_t, torch.tensor([5]), cond)
    assert out[0, :, 0, 0].tolist() == [1.0, 2.0, 3.0] * 3


def test_guidance_combines_text_and_zero_text_predictions():
    plain = randomised(VideoDiffusionModel(tiny_config(2)))
    guided = VideoDiffusionModel(tiny_config(2, guidance_scale=2.0)).eval()
    guided.load_state_dict(plain.state_dict())
    x_t, cond = inputs(guided, 2)
    t = torch.tensor([10, 60])
    no_text = dict(cond, task=cond["task_uncond"])
    with torch.no_grad():
        expected = 3.0 * plain(x_t, t, cond) - 2.0 * plain(x_t, t, no_text)
        torch.testing.assert_close(guided(x_t, t, cond), expected, atol=1e-5, rtol=1e-4)
        tokens_only = {"image": cond["image"], "task_embed": cond["task_embed"]}
        torch.testing.assert_close(guided(x_t, t, tokens_only), expected, atol=1e-5, rtol=1e-4)


def test_uint8_conversion_clamps_and_inverts_layout():
    frames = torch.randint(0, 256, (2, 3, 16, 24, 3), dtype=torch.uint8)
    video = frames_to_model_space(frames)
    assert video.shape == (2, 9, 16, 24) and video.min() >= -1 and video.max() <= 1
    np.testing.assert_array_equal(VideoDiffusionModel.to_uint8_frames(video), frames.numpy())
    wild = VideoDiffusionModel.to_uint8_frames(torch.tensor([-3.0, 5.0, 0.0]).view(1, 3, 1, 1))
    assert wild.tolist() == [[[[[0, 255, 128]]]]]
    cond = image_to_cond(frames[:, 0])
    assert cond.shape == (2, 3, 16, 24) and 0 <= cond.min() and cond.max() <= 1


def test_make_cond_rejects_wrong_shapes_with_a_clear_message():
    model = VideoDiffusionModel(tiny_config(2))
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 24\)"):
        model.make_cond(torch.rand(1, 3, 32, 32), torch.randn(1, 4, 32))
    with pytest.raises(ValueError, match="minilm"):
        model.make_cond(torch.rand(1, 3, 16, 24), torch.randn(1, 4, 512))
