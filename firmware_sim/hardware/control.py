"""The simulator's control API on a gateway's HTTP port, for the demo's world and tests.

``GET /sim/state``      the van's physical state and every hardware counter
``POST /sim/van``       set van fields: ``{"ignition": false}``, ``{"traffic_factor": 1.8}``,
                        ``{"broken": true}``, ``{"lat": .., "lon": ..}``, ``{"doors": 8}``
``POST /sim/modem``     ``{"online": false}`` holds the modem offline, ``true`` online,
                        ``null`` gives it back to the coverage map
``POST /sim/gnss``      ``{"plugged": false}`` unplugs the GNSS receiver's serial line,
                        ``true`` plugs it back (a pty rig only)

Real gateways have no such API: it stands for the physical world around the van.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException

from firmware_sim.hardware.rig import HardwareRig

__all__ = ["sim_router"]


def sim_router(rig: HardwareRig) -> APIRouter:
    router = APIRouter(prefix="/sim", tags=["simulation"])

    @router.get("/state")
    def state() -> dict[str, Any]:
        return {"van": rig.van.snapshot(), **rig.stats()}

    @router.post("/van")
    def set_van(fields: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        try:
            return rig.van.update(**fields)
        except (TypeError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None

    @router.post("/modem")
    def set_modem(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        if rig.modem is None:
            raise HTTPException(409, "this gateway runs without a broker")
        online = body.get("online")
        if (online is not None and not isinstance(online, bool)) or set(body) - {"online"}:
            raise HTTPException(422, 'expected {"online": true | false | null}')
        rig.modem.force(online)
        return rig.modem.stats()

    @router.post("/gnss")
    def set_gnss(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        port = rig.gnss_sim.serial if rig.gnss_sim is not None else None
        if port is None:
            raise HTTPException(409, "this gateway's GNSS is not on a serial line")
        plugged = body.get("plugged")
        if not isinstance(plugged, bool) or set(body) - {"plugged"}:
            raise HTTPException(422, 'expected {"plugged": true | false}')
        if plugged:
            port.plug()
        else:
            port.unplug()
        return {"plugged": port.plugged, "plugs": port.plugs, "device": port.device}

    return router
