"""Benchmark of the wire codec: encode and decode rate per message kind, and payload sizes.

    .venv/bin/python -m bench.codec [--repeats 5] [--min-time 0.2]

The messages are the fixed envelopes behind the golden files (``tests/golden/``), one per
kind plus a failed stop event, and a 200-stop ``route_plan`` (one parcel and a window per
stop: a busy van's day). For each, ``encode`` (model → msgpack bytes) and ``decode`` (bytes →
validated model, the strict path every receiver takes) are timed with ``timeit``: each
repeat runs long enough to last ``--min-time`` seconds, and the best repeat is reported as
µs per message and messages per second. Sizes compare the msgpack payload with compact JSON
of the same dump (``model_dump(mode="json")``, no spaces). Prints a Markdown table; never
fails on a time.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import timeit
from collections.abc import Callable

import msgpack
import pydantic

from protocol import (
    DEFAULT_MAX_BYTES,
    Envelope,
    Location,
    Parcel,
    PlannedStop,
    RoutePlan,
    TimeWindow,
    decode,
    encode,
    make_envelope,
)
from tests.test_protocol_golden import SAMPLES, T0_MS, T0_S


def big_plan(stops: int = 200) -> Envelope:
    """A ``route_plan`` of ``stops`` stops, each with an address, a window and one parcel."""
    return make_envelope(
        src="cloud",
        seq=6,
        lc=400,
        ts=T0_MS,
        msg_id="0" * 31 + "b",
        body=RoutePlan(
            route_id="r-2026-09-14-0042",
            vehicle_id="van-0042",
            version=4,
            day="2026-09-14",
            depot=Location(lat=52.3105, lon=4.9392, address="Hoogoorddreef 60, Amsterdam"),
            start_at=T0_S,
            end_at=T0_S + 10 * 3600,
            capacity_kg=1200.0,
            stops=tuple(
                PlannedStop(
                    stop_id=f"s-{i:04d}",
                    order_id=f"o-{880_000 + i}",
                    location=Location(
                        lat=52.30 + i * 1e-4,
                        lon=4.85 + i * 2e-4,
                        address=f"Keizersgracht {100 + i}, 1015 CS Amsterdam",
                    ),
                    window=TimeWindow(start=T0_S + 3600, end=T0_S + 5 * 3600),
                    service_s=150,
                    parcels=(
                        Parcel(
                            parcel_id=f"p-{i:05d}",
                            barcode=f"JVGL06{i:08d}",
                            weight_kg=2.5,
                            volume_l=12.0,
                            load_position=i + 1,
                        ),
                    ),
                )
                for i in range(stops)
            ),
        ),
    )


def best_seconds(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    """Seconds per call of ``fn``: the best of ``repeats`` runs of at least ``min_time`` s."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * min_time / 0.2))
    return min(timer.repeat(repeat=repeats, number=number)) / number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="one short repeat of each")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.min_time = 1, 0.05

    messages: dict[str, Envelope] = {**SAMPLES, "route_plan (200 stops)": big_plan(200)}
    print(
        f"Python {platform.python_version()}, pydantic {pydantic.VERSION}, "
        f"msgpack {'.'.join(map(str, msgpack.version))}; best of {args.repeats}, "
        f"each ≥ {args.min_time} s"
    )
    print()
    print(
        "| message | msgpack B | JSON B | msgpack/JSON | encode µs | encode msg/s "
        "| decode µs | decode msg/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    total_mp = total_json = 0
    for name, env in messages.items():
        data = encode(env)
        assert decode(data, max_bytes=1 << 24) == env
        as_json = json.dumps(env.model_dump(mode="json"), separators=(",", ":")).encode()
        enc = best_seconds(functools.partial(encode, env), args.repeats, args.min_time)
        dec = best_seconds(
            functools.partial(decode, data, max_bytes=1 << 24), args.repeats, args.min_time
        )
        if name in SAMPLES:
            total_mp += len(data)
            total_json += len(as_json)
        print(
            f"| {name} | {len(data):,} | {len(as_json):,} | {len(data) / len(as_json):.2f} "
            f"| {enc * 1e6:,.1f} | {1 / enc:,.0f} | {dec * 1e6:,.1f} | {1 / dec:,.0f} |"
        )
    print()
    print(
        f"Golden messages together: msgpack {total_mp:,} B, JSON {total_json:,} B "
        f"({total_mp / total_json:.0%}). Default decode limit {DEFAULT_MAX_BYTES:,} B."
    )


if __name__ == "__main__":
    main()
