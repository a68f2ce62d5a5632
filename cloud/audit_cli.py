"""``wayline audit``: the decision record from the command line.

``wayline audit replay DECISION_ID --db PATH`` re-runs a decision from its record and
shows whether it reproduces (exit 0) or not (exit 1, with the differences).
``wayline audit show DECISION_ID --db PATH`` prints the record; ``wayline audit list``
the latest decisions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cloud.decisions import replay
from cloud.errors import NotFoundError
from cloud.store import CloudStore
from sync import open_store

__all__ = ["configure", "run"]

EXIT_NOT_REPRODUCED = 1


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    p = sub.add_parser("replay", help="re-run a decision from its record; exit 1 if it differs")
    p.add_argument("decision_id", metavar="DECISION_ID")
    p.add_argument("--db", required=True, help="SQLite store of the coordinator")
    p.add_argument("--json", action="store_true", help="print the replay report as JSON")
    p = sub.add_parser("show", help="print a decision's record as JSON")
    p.add_argument("decision_id", metavar="DECISION_ID")
    p.add_argument("--db", required=True, help="SQLite store of the coordinator")
    p = sub.add_parser("list", help="list the latest decisions")
    p.add_argument("--db", required=True, help="SQLite store of the coordinator")
    p.add_argument("--kind", help="plan, rebalance, repair, reassign, handover, escalation")
    p.add_argument("--limit", type=int, default=20)


def run(args: argparse.Namespace) -> int:
    path = Path(args.db)
    if not path.exists():
        raise NotFoundError(f"no coordinator store at {path}")
    store = open_store(path)
    try:
        db = CloudStore(store)
        if args.audit_command == "list":
            for d in db.decisions(args.kind, args.limit):
                print(
                    f"{d['decision_id']}  {d['kind']:<10} {d['rule']:<15} "
                    f"{d['region'] or '-':<24} {d['status']:<10} by {d['approved_by']}"
                )
            return 0
        if args.audit_command == "show":
            d = db.decision(args.decision_id)
            if d is None:
                raise NotFoundError(f"no decision {args.decision_id!r}")
            print(json.dumps(d, indent=2, sort_keys=True))
            return 0
        report = replay(db, args.decision_id)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        verdict = "reproduced" if report["reproduced"] else "NOT reproduced"
        how = f"{report['solver']}, seed {report['seed']}" if report["solver"] else "rule"
        print(f"{report['decision_id']} ({report['kind']}, {report['rule']}, {how}): {verdict}")
        print(f"  recorded output sha256 {report['recorded_sha']}")
        print(f"  replayed output sha256 {report['replayed_sha']}")
        for line in report["differences"]:
            print(f"  differs: {line}", file=sys.stderr)
        if report["stopped_by"] == "time":
            print("  note: the recorded solve stopped on its time limit", file=sys.stderr)
    return 0 if report["reproduced"] else EXIT_NOT_REPRODUCED
