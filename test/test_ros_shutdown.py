"""Node processes stop cleanly: SIGINT (twice, as Ctrl-C under `ros2 launch`) and SIGTERM.

Each node runs as its own process, as `ros2 launch` starts it; a planner is in the middle of a
long plan when the signal comes. Every process must end within 2 s, with exit code 0 and no
traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from dts_msgs.msg import Instruction
from dts_msgs.srv import RequestPlan
import pytest
from rclpy.parameter import Parameter
from ros_helpers import camera_image

from dts_planner.ros.parameters import ParameterError
from dts_planner.ros.planner_node import PlannerNode
from dts_planner.ros.qos import latched_qos, make_qos

PLANNER = ["-p", "device:=cpu", "-p", "model_preset:=default", "-p", "image_size:=64",
           "-p", "sampler:=ddpm", "-p", "warmup_runs:=0", "-p", "replan_policy:=on_demand",
           "-p", "diagnostics_period_s:=0.1"]


def start(module: str, namespace: str, params: list[str]) -> subprocess.Popen:
    """Start `python -m module` in `namespace` (its own process, like ros2 launch)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, "--ros-args", "-r", f"__ns:={namespace}", *params],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})


def stop(process: subprocess.Popen, signals: tuple[int, ...]) -> tuple[float, int, str]:
    """Send `signals` (50 ms apart); return (seconds to exit, exit code, output)."""
    started = time.monotonic()
    for number in signals:
        process.send_signal(number)
        time.sleep(0.05)
    try:
        output, _ = process.communicate(timeout=10.0)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return time.monotonic() - started, process.returncode, output


@pytest.mark.long_running
def test_nodes_stop_within_two_seconds_with_code_0(ros) -> None:
    """Each node gets its own signals: the planner (mid-plan) all that `ros2 launch` may send.

    Ctrl-C under `ros2 launch` delivers SIGINT twice (terminal and launch), then launch escalates
    to SIGTERM; both signals share one handler (spin.StopRequest), and the predictor's stop by
    SIGTERM alone covers a SIGTERM that comes first.
    """
    planner = start("dts_planner.ros.planner_node", "/p", PLANNER)
    bridge = start("dts_planner.ros.metaworld_bridge_node", "/sim",
                   ["-p", "sim.resolution:=32", "-p", "sim.wait_for_actions:=false",
                    "-p", "sim.rate_hz:=5.0"])
    predictor = start("dts_planner.ros.action_predictor_node", "/sim",   # torch: the planner's
                      ["-p", "predictor.type:=optical_flow"])
    processes = [planner, bridge, predictor]
    try:
        probe = ros.node("shutdown_probe")
        in_flight: list[float] = []      # the planner's plan_in_flight_s (/diagnostics)
        probe.create_subscription(DiagnosticArray, "/diagnostics", lambda msg: in_flight.extend(
            float(value.value) for status in msg.status if status.name.startswith("/p/planner")
            for value in status.values if value.key == "plan_in_flight_s"), 10)
        image = probe.create_publisher(type(camera_image(probe)), "/p/image",
                                       make_qos("reliable", 1))
        probe.create_publisher(Instruction, "/p/instruction", latched_qos()).publish(
            Instruction(text="open the door"))
        client = probe.create_client(RequestPlan, "/p/request_plan")
        assert ros.wait_for(client.service_is_ready, 120.0), [p.poll() for p in processes]
        assert client.call(RequestPlan.Request(), timeout_sec=10.0).accepted

        def ready() -> bool:
            # the planner is mid-plan (100 DDPM steps at 64 px: seconds), the bridge publishes
            # the camera and the predictor (active) reads it
            return bool(in_flight and in_flight[-1] > 0 and probe.count_publishers("/sim/image")
                        and probe.count_subscribers("/sim/image"))
        for _ in range(200):    # frames at 10 Hz, as a camera: one sent before the planner's
            image.publish(camera_image(probe))        # subscription matched it is lost
            if ros.wait_for(ready, 0.1):
                break
        assert ready(), in_flight
        for process in processes:
            assert process.poll() is None, process.communicate()[0]
        outcomes = {
            "planner, SIGINT twice then SIGTERM": stop(
                planner, (signal.SIGINT, signal.SIGINT, signal.SIGTERM)),
            "bridge, SIGINT twice": stop(bridge, (signal.SIGINT,) * 2),
            "predictor, SIGTERM": stop(predictor, (signal.SIGTERM,)),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for what, (seconds, code, output) in outcomes.items():
        assert code == 0 and seconds < 2.0, (what, seconds, code, output[-2000:])
        assert "Traceback" not in output and "terminate called" not in output, (what, output)


def test_a_bad_start_up_value_is_one_clear_line(ros) -> None:
    """A refused start-up value ends the process with code 1 and one line naming it.

    Every node's process turns the ParameterError its constructor raises into that line
    (spin.run_nodes): the torch-free bridge shows it (under a second), and the planner's
    constructor raises it for `-p dts.threshold:=-2.0`, a setting generated from the sampler
    registry (a planner process would spend 2.5 s importing torch first).
    """
    result = subprocess.run(
        [sys.executable, "-m", "dts_planner.ros.metaworld_bridge_node", "--ros-args",
         "-p", "sim.rate_hz:=-1.0"], capture_output=True, text=True, timeout=60.0)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "sim.rate_hz=-1.0 refused" in errors[0], output
    assert "[0.1, 1000]" in errors[0] and "restart" in errors[0]
    with pytest.raises(ParameterError) as refused:
        PlannerNode(context=ros.context, parameter_overrides=[Parameter("dts.threshold",
                                                                        value=-2.0)])
    message = str(refused.value)
    assert "\n" not in message and "dts.threshold=-2.0 refused" in message
    assert "[-1, 1e+09]" in message and "restart" in message
