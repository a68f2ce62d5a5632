"""The cloud coordinator: fleet state, planning, and the hub every device syncs with."""

from cloud.api import create_api
from cloud.coordinator import HUB_ID, CloudSettings, Coordinator
from cloud.errors import CloudError, ConflictError, InvalidError, NotFoundError
from cloud.store import CloudStore

__all__ = [
    "HUB_ID",
    "CloudError",
    "CloudSettings",
    "CloudStore",
    "ConflictError",
    "Coordinator",
    "InvalidError",
    "NotFoundError",
    "create_api",
]
