"""The routing core shared by the edge re-sequencer and the cloud planner: instances,
distances and route checks. No I/O beyond reading an instance file; no solver imports."""

from routing.instance import (
    Customer,
    Instance,
    InstanceError,
    RouteCheck,
    check_route,
    read_instance,
    route_distance,
)

__all__ = [
    "Customer",
    "Instance",
    "InstanceError",
    "RouteCheck",
    "check_route",
    "read_instance",
    "route_distance",
]
