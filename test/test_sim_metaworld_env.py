"""MetaWorldEnv: observation contents, camera geometry consistent with depth and segmentation."""

import threading

import numpy as np
import pytest

from dts_planner.sim import MetaWorldEnv


def back_project(obs, mask):
    """World points (N, 3) of the masked pixels, from depth, K and cam_to_world."""
    rows, cols = np.nonzero(mask)
    depth = obs.depth[rows, cols].astype(np.float64)
    k = obs.intrinsics
    camera_points = np.stack([(cols - k[0, 2]) * depth / k[0, 0],
                              (rows - k[1, 2]) * depth / k[1, 1], depth, np.ones_like(depth)])
    return (obs.cam_to_world @ camera_points)[:3].T


def project(obs, point):
    """Pixel (u, v) of a world point."""
    camera_point = np.linalg.inv(obs.cam_to_world) @ np.append(point, 1.0)
    pixel = obs.intrinsics @ camera_point[:3]
    return pixel[:2] / pixel[2]


def test_observation_fields():
    with MetaWorldEnv("door-open", camera="corner", seed=0, resolution=64) as env:
        obs = env.reset()
        assert env.instruction == "door open"
        handle = [env.sim.model.geom("handle").id]
    assert obs.rgb.shape == (64, 64, 3) and obs.rgb.dtype == np.uint8 and obs.rgb.std() > 10
    assert obs.depth.shape == (64, 64) and obs.depth.dtype == np.float32
    assert 0.3 < obs.depth.min() < 3.0
    assert obs.segmentation.dtype == np.int32 and obs.object_mask.dtype == bool
    assert obs.object_mask.sum() > 5    # the handle (a grasp part), not the whole door
    assert np.isin(obs.segmentation[obs.object_mask], handle).all()
    assert obs.state.shape == (39,) and np.allclose(obs.hand_pos, obs.state[:3])
    rotation = obs.cam_to_world[:3, :3]
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    assert np.isclose(np.linalg.det(rotation), 1.0)
    # Upright: the camera's image "down" (+y) points down in the world.
    assert rotation[2, 1] < 0


@pytest.mark.parametrize("task", ["assembly", "basketball"])
def test_object_mask_covers_bodies_attached_to_the_movable_one(task):
    """The nut's and the ball's geoms hang under a jointed body that has none of its own."""
    with MetaWorldEnv(task, camera="corner", seed=0, resolution=64) as env:
        assert env.reset().object_mask.sum() >= 3


@pytest.mark.parametrize("camera", ["corner", "corner2", "corner3", "topview"])
def test_object_mask_back_projects_onto_object(camera):
    with MetaWorldEnv("push", camera=camera, seed=1, resolution=128) as env:
        obs = env.reset()
        puck = env.sim.data.body("obj").xpos.copy()
    assert obs.object_mask.sum() >= 3
    points = back_project(obs, obs.object_mask)
    # Visible surface points of a puck of radius 2 cm.
    assert np.linalg.norm(points - puck, axis=1).max() < 0.05
    u, v = np.round(project(obs, puck)).astype(int)
    near = obs.object_mask[max(v - 2, 0):v + 3, max(u - 2, 0):u + 3]
    assert near.any()


def test_segmentation_ids_are_geom_ids():
    with MetaWorldEnv("door-open", camera="corner3", seed=2, resolution=96) as env:
        obs = env.reset()
        handle = env.sim.model.geom("handle").id
        centre = env.sim.data.geom_xpos[handle].copy()
        size = np.linalg.norm(env.sim.model.geom_size[handle])
    mask = obs.segmentation == handle
    assert mask.sum() >= 3
    assert np.linalg.norm(back_project(obs, mask) - centre, axis=1).max() < size + 0.02


def test_expert_solves_reach_and_episode_ends():
    with MetaWorldEnv("reach", camera="corner2", seed=5, depth_views=False) as env:
        obs = env.reset()
        for _ in range(env.max_steps):
            result = env.step(env.expert_action(obs))
            obs = result.observation
            if result.done:
                break
        assert result.success and result.done and env.steps < 200
        with pytest.raises(RuntimeError):
            env.step(np.zeros(4))


def same_frames(a, b) -> bool:
    """Equal observations (a fresh renderer's first depth map may differ by 2e-6 m)."""
    return (all(np.array_equal(getattr(a, k), getattr(b, k))
                for k in ("state", "rgb", "segmentation"))
            and np.allclose(a.depth, b.depth, rtol=0.0, atol=1e-5))


def test_seeds_are_deterministic_and_distinct():
    """Same seed, same episode, whichever thread made the environment and in any draw order.

    The renderers share one GL context: ``b`` is made in another thread while ``a`` lives, and
    each must draw into its own framebuffer when the other drew last.
    """
    made = []
    with MetaWorldEnv("push", seed=7) as a:
        first = a.reset()
        thread = threading.Thread(target=lambda: made.append(MetaWorldEnv("push", seed=7)))
        thread.start()
        thread.join()
        with made[0] as b:
            assert same_frames(b.reset(), first)
            assert same_frames(a.reset(seed=7), first)
            assert not np.array_equal(b.reset(seed=8).state, first.state)
            assert same_frames(a.reset(seed=7), first)


def test_colour_only_observations_skip_the_depth_pass():
    with MetaWorldEnv("push", camera="corner", seed=1, depth_views=False) as env:
        colour = env.reset()
        env.depth_views = True
        full = env.observe()                  # the same state, with the depth pass
    assert colour.depth is None and colour.segmentation is None and colour.object_mask is None
    assert np.array_equal(colour.rgb, full.rgb) and np.array_equal(colour.state, full.state)
    assert full.depth.shape == (64, 64) and full.object_mask.any()


def test_bad_arguments_and_close():
    with pytest.raises(ValueError, match="unknown Meta-World task"):
        MetaWorldEnv("open-the-fridge")
    with pytest.raises(ValueError, match="unknown camera"):
        MetaWorldEnv("reach", camera="nope")
    env = MetaWorldEnv("reach")
    env.close()
    env.close()
    with pytest.raises(RuntimeError):
        env.reset()
