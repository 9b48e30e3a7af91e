"""AVDC U-Net: AVDC's exact parameter names, shapes and counts; golden forward values."""

import math

import pytest
import torch

from dts_planner.models import (AVDC_BRIDGE, AVDC_METAWORLD, AVDC_THOR, DEFAULT_WEIGHTS,
                                load_video_model, UNetConfig, UNetModel)
from dts_planner.models.nn_blocks import PseudoConv3d, timestep_embedding

# Keys, shapes and totals read off AVDC's own UNetModel (flow-diffusion/AVDC 176fbe1) built
# with UnetMW / UnetThor / UnetBridge arguments.
AVDC_REFERENCE = {
    "mw": (AVDC_METAWORLD, 565, 201_087_649, {
        "input_blocks.0.0.spatial_conv.weight": (128, 6, 3, 3),
        "input_blocks.0.0.temporal_conv.weight": (128, 128, 3),
        "input_blocks.3.0.op.spatial_conv.weight": (128, 128, 3, 3),
        "input_blocks.4.0.skip_connection.spatial_conv.weight": (256, 128, 1, 1),
        "input_blocks.10.1.qkv.weight": (1536, 512, 1),
        "input_blocks.14.0.in_layers.2.spatial_conv.weight": (640, 640, 3, 3),
        "middle_block.1.proj_out.weight": (640, 640, 1),
        "output_blocks.0.0.in_layers.0.weight": (1280,),
        "output_blocks.2.2.conv.temporal_conv.weight": (640, 640, 3),
        "output_blocks.11.1.conv.spatial_conv.weight": (256, 256, 3, 3),
        "output_blocks.14.0.skip_connection.spatial_conv.weight": (128, 256, 1, 1),
        "out.2.spatial_conv.weight": (3, 128, 3, 3),
        "time_embed.2.weight": (512, 512),
        "task_attnpool.1.weight": (512, 512),
    }),
    "thor": (AVDC_THOR, 465, 108_837_665, {
        "input_blocks.0.0.spatial_conv.weight": (128, 6, 3, 3),
        "input_blocks.4.0.op.spatial_conv.weight": (128, 128, 3, 3),
        "input_blocks.9.1.norm.weight": (512,),
        "middle_block.0.emb_layers.1.weight": (512, 512),
        "output_blocks.0.1.qkv.weight": (1536, 512, 1),
        "output_blocks.3.2.conv.spatial_conv.weight": (512, 512, 3, 3),
        "output_blocks.11.0.skip_connection.spatial_conv.weight": (128, 256, 1, 1),
        "out.2.temporal_conv.bias": (3,),
        "task_attnpool.0.latents": (64, 512),
        "task_attnpool.0.pos_emb.weight": (512, 512),
        "task_attnpool.0.to_latents_from_mean_pooled_seq.1.weight": (2048, 512),
        "task_attnpool.0.layers.1.0.to_kv.weight": (1024, 512),
        "task_attnpool.0.layers.0.0.q_scale": (64,),
        "task_attnpool.0.layers.1.1.3.g": (2048,),
        "task_attnpool.0.layers.0.0.to_out.1.bias": (512,),
    }),
    "bridge": (AVDC_BRIDGE, 465, 165_638_177, {
        "input_blocks.0.0.spatial_conv.weight": (160, 6, 3, 3),
        "time_embed.0.weight": (640, 160),
        "input_blocks.9.1.qkv.weight": (1920, 640, 1),
        "middle_block.2.out_layers.3.spatial_conv.weight": (640, 640, 3, 3),
        "output_blocks.7.1.conv.temporal_conv.weight": (320, 320, 3),
        "out.0.weight": (160,),
        "task_attnpool.1.weight": (640, 512),
        "task_attnpool.0.layers.0.1.4.weight": (512, 2048),
    }),
}


@pytest.mark.parametrize("name", sorted(AVDC_REFERENCE))
def test_presets_match_avdc_parameter_names_and_shapes(name):
    config, num_keys, num_params, shapes = AVDC_REFERENCE[name]
    with torch.device("meta"):
        unet = UNetModel.from_config(config.unet, in_channels=6, out_channels=3)
    state = unet.state_dict()
    assert len(state) == num_keys
    assert sum(p.numel() for p in unet.parameters()) == num_params
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key


TINY = dict(model_channels=32, num_res_blocks=1, channel_mult=(1, 2), attention_resolutions=(2,),
            task_token_channels=32)


# Golden outputs of fixed-seed tiny U-Nets with nonzero output layers (float64 sums of the
# output, and every 997th element), recorded when the time embedding moved to diffusers'
# get_timestep_embedding (bit-identical before and after). A change of attention order, GroupNorm
# casting, the sin/cos order or frequencies of the time embedding shows up here.
GOLDEN = {
    3: ((2, 6, 4, 16, 16), 248.4833777682652, 2888.368905160649,
        [-0.2673942744731903, 0.14608047902584076, 0.5728492736816406, 0.17431284487247467,
         -0.5477059483528137, -0.08283969759941101]),
    2: ((2, 15, 16, 24), 58.51783127617091, 973.546138077043,
        [0.25043827295303345, -0.19748343527317047, 0.15322530269622803]),
}
#: The shipped default model on a fixed input (every 4999th output element, sums).
SHIPPED = (6750.255935966503, 29768.88959098002,
           [-0.6332075595855713, -0.6976693868637085, -0.4936808943748474, -0.07945811748504639,
            -0.17694343626499176, 0.5284401178359985])


def assert_golden(out, total, absolute, elements, step):
    out = out.double()
    assert out.sum().item() == pytest.approx(total, rel=1e-5)
    assert out.abs().sum().item() == pytest.approx(absolute, rel=1e-5)
    torch.testing.assert_close(out.flatten()[::step][:len(elements)],
                               torch.tensor(elements, dtype=torch.float64), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dims", [3, 2])
def test_forward_matches_golden_values_and_keeps_frames(dims):
    shape, total, absolute, elements = GOLDEN[dims]
    torch.manual_seed(0)
    unet = UNetModel(shape[1], 3, dims=dims, **TINY).eval()
    with torch.no_grad():
        for parameter in unet.parameters():           # re-draw the zero-initialised layers
            if parameter.dim() > 1 and not parameter.any():
                parameter.normal_(0.0, parameter[0].numel() ** -0.5)
        generator = torch.Generator().manual_seed(1)
        task = unet.embed_task(torch.randn(2, 5, 32, generator=generator))
        out = unet(torch.randn(shape, generator=generator), torch.tensor([0, 99]), task)
    assert task.shape == (2, 128) and out.shape == (shape[0], 3, *shape[2:])
    assert_golden(out, total, absolute, elements, 997)


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="no shipped weights")
def test_shipped_weights_give_their_golden_output():
    model = load_video_model(None)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        x_t = torch.randn(model.noise_shape(1), generator=generator)
        cond = model.make_cond(torch.rand(1, 3, *model.config.image_size, generator=generator),
                               torch.randn(1, 1, model.config.text_dim, generator=generator))
        out = model(x_t, torch.tensor([37]), cond)
    assert_golden(out, *SHIPPED, 4999)


def test_time_embedding_is_guided_diffusions_cos_then_sin():
    t = torch.tensor([0, 7, 99])
    half = torch.arange(4) / 4
    angles = t[:, None].double() * torch.exp(-math.log(10000.0) * half)[None]
    expected = torch.cat([angles.cos(), angles.sin()], dim=-1).float()
    torch.testing.assert_close(timestep_embedding(t, 8), expected)


def test_pseudo_conv3d_temporal_conv_starts_as_identity_and_never_strides_frames():
    conv = PseudoConv3d(32, 32, 3, spatial_stride=2)
    x = torch.randn(1, 32, 5, 8, 8)
    out = conv(x)
    assert out.shape == (1, 32, 5, 4, 4)
    per_frame = conv.spatial_conv(x[:, :, 2])
    torch.testing.assert_close(out[:, :, 2], per_frame)


def test_unet_config_fields_match_constructor():
    config = UNetConfig(32, 1, (1, 2), (2,), dims=2, task_token_channels=32)
    unet = UNetModel.from_config(config, 9, 6)
    assert unet.input_blocks[0][0].weight.shape == (32, 9, 3, 3)
    assert unet.out[2].weight.shape == (6, 32, 3, 3)
