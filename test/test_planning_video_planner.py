"""VideoPlanner with a random-weight default-size model, real MiniLM text and DDIM-2."""

import numpy as np
import pytest
import torch

from dts_planner.diffusion import DDIMSampler, NonFiniteOutputError
from dts_planner.models import DEFAULT_CONFIG, shared_text_encoder, VideoDiffusionModel
from dts_planner.models.preprocessing import prepare_image
from dts_planner.planning import VideoPlanner


@pytest.fixture(scope="module")
def planner():
    torch.manual_seed(0)
    model = VideoDiffusionModel(DEFAULT_CONFIG)
    with torch.no_grad():   # random weights everywhere, so plans depend on the inputs
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return VideoPlanner(model, shared_text_encoder("minilm", "cpu"), DDIMSampler(2))


def camera_image(height=240, width=320, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_plan_has_future_frames_at_model_resolution(planner):
    plan = planner.plan(camera_image(), "door open", seed=3)
    assert plan.frames.shape == (7, *DEFAULT_CONFIG.image_size, 3)
    assert plan.frames.dtype == np.uint8
    assert plan.stats.nfe == 2 and plan.sampling_time_s > 0
    again = planner.plan(camera_image(), "door open", seed=3)
    np.testing.assert_array_equal(plan.frames, again.frames)
    other = planner.plan(camera_image(), "door open", seed=4)
    assert not np.array_equal(plan.frames, other.frames)


def test_sampler_can_be_swapped_between_plans(planner):
    previous = planner.sampler
    planner.sampler = DDIMSampler(3)
    try:
        assert planner.plan(camera_image(64, 64), "push", seed=0).stats.nfe == 3
    finally:
        planner.sampler = previous


def test_nan_model_output_raises_a_clear_error():
    model = VideoDiffusionModel(DEFAULT_CONFIG)
    with torch.no_grad():
        model.unet.out[2].bias.fill_(float("nan"))
    planner = VideoPlanner(model, shared_text_encoder("minilm", "cpu"), DDIMSampler(2))
    with pytest.raises(NonFiniteOutputError, match="NaN"):
        planner.plan(camera_image(64, 64), "reach", seed=0)


def test_bad_inputs_and_devices_fail_clearly(planner):
    with pytest.raises(ValueError, match="uint8"):
        planner.plan(camera_image().astype(np.float32), "reach")
    with pytest.raises(ValueError, match="instruction"):
        planner.plan(camera_image(), "  ")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    with pytest.raises(ValueError, match="cuda:0"):
        VideoPlanner(planner.model, planner.text_encoder, planner.sampler, device="cuda:0")
    with pytest.warns(RuntimeWarning, match="falling back to CPU"):
        fallback = VideoPlanner(planner.model, planner.text_encoder, planner.sampler,
                                device="cuda:0", allow_cpu_fallback=True)
    assert fallback.device == torch.device("cpu")


def test_prepare_image_modes():
    image = camera_image(240, 320)
    np.testing.assert_array_equal(prepare_image(image, (128, 128), "center_crop"),
                                  image[56:184, 96:224])
    assert prepare_image(image, (64, 64), "crop_resize").shape == (64, 64, 3)
    assert prepare_image(image, (48, 64), "resize").shape == (48, 64, 3)
    assert prepare_image(camera_image(32, 32), (64, 64), "center_crop").shape == (64, 64, 3)
    flat = np.full((240, 320, 3), 7, dtype=np.uint8)
    assert (prepare_image(flat, (64, 64)) == 7).all()
