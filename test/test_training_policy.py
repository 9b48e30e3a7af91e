"""Policy training: exact resume, EMA weights the predictor loads, no default shipped writes."""

import json

import pytest
import torch

from dts_planner.predictors.diffusion_policy import load_policy
from dts_planner.training.train_policy import parse_args, train

TINY = {"image_size": 16, "encoder_channels": [8], "keypoints": 4, "feature_dim": 8,
        "down_dims": [16, 32], "groups": 4, "step_embed_dim": 16, "use_obs_image": False,
        "use_gripper": True, "aux_goal_state": True, "encoder_pool": True,
        "encoder_strides": [1]}


def test_defaults_never_touch_the_shipped_weights():
    args = parse_args([])
    assert args.export is None and "weights" not in args.out


@pytest.mark.long_running
def test_policy_training_resumes_exactly_and_exports(tmp_path, reach_shards):
    options = ["--data", str(reach_shards), "--config", json.dumps(TINY), "--batch-size", "4",
               "--threads", "2", "--steps", "3", "--warmup", "1", "--holdout", "0",
               "--eval-samples", "0", "--goal-offset", "2", "8", "--goal-noise", "0.05",
               "--save-every", "1"]
    train(parse_args(options + ["--out", str(tmp_path / "whole")]))
    resumed = tmp_path / "resumed"
    train(parse_args(options + ["--out", str(resumed), "--chunk-steps", "2"]))
    assert torch.load(resumed / "checkpoint.pt", weights_only=True)["step"] == 2
    export = tmp_path / "shipped" / "policy.pt"
    summary = train(parse_args(options + ["--out", str(resumed), "--export", str(export)]))
    assert summary["steps"] == 3
    assert torch.get_num_threads() == 1, "train() set the process's threads (--threads 2)"

    expected = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    got = torch.load(resumed / "checkpoint.pt", weights_only=True)
    for name, value in expected["model"].items():
        torch.testing.assert_close(got["model"][name], value, rtol=0, atol=0, msg=name)
    for a, b in zip(expected["ema"]["shadow_params"], got["ema"]["shadow_params"]):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    assert got["ema"]["optimization_step"] == 3
    for index, state in expected["opt"]["state"].items():
        torch.testing.assert_close(got["opt"]["state"][index]["exp_avg"], state["exp_avg"],
                                   rtol=0, atol=0)

    policy, shipped = load_policy(str(resumed / "policy.pt")), load_policy(str(export))
    assert policy.config.use_gripper and not policy.config.use_obs_image
    for name, value in policy.state_dict().items():
        torch.testing.assert_close(shipped.state_dict()[name], value, msg=name)
    assert not list(export.parent.glob("*.partial"))
