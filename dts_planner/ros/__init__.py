"""rclpy nodes over the ROS-free core: planner, action predictor, Meta-World bridge, demo.

Interface (topics, services, parameters, QoS): docs/ros_interface.md.
"""
