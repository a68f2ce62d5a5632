"""The repository carries the benchmark data its tests and benchmarks read (data/README.md)."""

from __future__ import annotations

import csv
import re

from routing import read_instance
from tests.helpers import DATA_DIR, REPO_ROOT


def test_the_data_lives_in_the_repository() -> None:
    assert DATA_DIR.resolve().is_relative_to(REPO_ROOT.resolve())
    assert (DATA_DIR / "README.md").read_text().count("Citations") == 1


def test_every_instance_with_a_best_known_solution_is_present_and_reads() -> None:
    with (DATA_DIR / "bks.csv").open() as f:
        names = [row[0] for row in csv.reader(f)][1:]
    assert len(names) == 68
    for name in names:
        size = re.match(r"^[A-Z]+\d_(\d+)_", name)
        folder = f"homberger/{int(size.group(1)) * 100}" if size else "solomon"
        inst = read_instance(DATA_DIR / folder / f"{name}.txt")
        assert inst.size == (int(size.group(1)) * 100 if size else 100), name


def test_no_source_reads_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|parent\s*/\s*\"shared\"")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in (
            "protocol",
            "sync",
            "routing",
            "edge",
            "cloud",
            "firmware_sim",
            "wayline",
            "bench",
            "tests",
        )
        for path in (REPO_ROOT / folder).rglob("*.py")
        if outside.search(path.read_text()) and path.name != "test_data.py"
    ]
    assert offenders == []
