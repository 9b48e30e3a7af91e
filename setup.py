"""Install the dts_planner ament_python package."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = "dts_planner"


def _files(pattern: str) -> list[str]:
    """Return the files (not directories) matching a glob pattern, sorted."""
    return sorted(p for p in glob(pattern) if os.path.isfile(p))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["weights/*", "weights/**/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", _files("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="dts_planner maintainers",
    maintainer_email="dts-planner@example.com",
    description="Video-generation robot policy sampled with Draft-and-Target Sampling.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "planner_node = dts_planner.ros.planner_node:main",
            "action_predictor_node = dts_planner.ros.action_predictor_node:main",
            "metaworld_bridge_node = dts_planner.ros.metaworld_bridge_node:main",
            "dts-demo = dts_planner.ros.demo:main",
        ],
    },
)
