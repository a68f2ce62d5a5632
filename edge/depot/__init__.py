"""The depot agent: sort plan, scan flow, load release and the sorter's terminal."""

from edge.depot.agent import DEFAULT_CONTAINERS, DepotAgent, DepotSettings
from edge.depot.sort_plan import OVERFLOW, ContainerSpec

__all__ = ["DEFAULT_CONTAINERS", "OVERFLOW", "ContainerSpec", "DepotAgent", "DepotSettings"]
