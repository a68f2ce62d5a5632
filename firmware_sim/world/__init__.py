"""The simulated world a demo day runs in: a seeded city, its orders, fleets and troubles.

:func:`load_scenario` reads a TOML scenario (``calm``, ``disrupted`` or a path);
:class:`World` builds its city, order book and vehicles from the seed; :class:`TravelModel`
gives the planner's estimate and the truth; :func:`simulate_work` plays a plain day into
completed work; :func:`learn` and :func:`hygiene_report` learn travel factors and service
times from it with disrupted periods kept out. :class:`SimClock` is accelerated time.
"""

from firmware_sim.world.city import Customer, Order, Vehicle, World, hashed_rng
from firmware_sim.world.clock import SimClock
from firmware_sim.world.errors import ScenarioError, WorldError
from firmware_sim.world.learning import LearnedTimes, eta_error, hygiene_report, learn
from firmware_sim.world.scenario import (
    EVENT_KINDS,
    FLEET_KINDS,
    SCENARIO_DIR,
    Depot,
    Event,
    Fleet,
    Scenario,
    load_scenario,
    parse_scenario,
)
from firmware_sim.world.travel import TravelModel
from firmware_sim.world.work import CompletedWork, LegRecord, ServiceRecord, simulate_work

__all__ = [
    "EVENT_KINDS",
    "FLEET_KINDS",
    "SCENARIO_DIR",
    "CompletedWork",
    "Customer",
    "Depot",
    "Event",
    "Fleet",
    "LearnedTimes",
    "LegRecord",
    "Order",
    "Scenario",
    "ScenarioError",
    "ServiceRecord",
    "SimClock",
    "TravelModel",
    "Vehicle",
    "World",
    "WorldError",
    "eta_error",
    "hashed_rng",
    "hygiene_report",
    "learn",
    "load_scenario",
    "parse_scenario",
    "simulate_work",
]
