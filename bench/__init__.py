"""Wayline's benchmarks: commands that print figures (``python -m bench.NAME``).

Benchmarks run coordinators on loopback with development secrets; the processes they start
inherit this. Anywhere else, an unset ``WAYLINE_ENV`` means production.
"""

import os

os.environ.setdefault("WAYLINE_ENV", "development")
