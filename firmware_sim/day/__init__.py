"""The demo day: real processes on simulated hardware, a seeded world, baselines, a report.

:func:`run_day` starts the broker, the cloud, the depot sorter and one gateway process per
own van, plays the scenario at accelerated time and collects what happened;
:func:`summarize` compares it with the two baselines and reads the stores;
:func:`write_report` writes ``summary.json``, the plots and ``report.html``.
"""

from firmware_sim.day.report import write_report
from firmware_sim.day.runner import DayOptions, DayResult, build_world, run_day
from firmware_sim.day.summary import summarize

__all__ = ["DayOptions", "DayResult", "build_world", "run_day", "summarize", "write_report"]
