"""Tables the runs of `make soak` in one page: `python tests/faults/soak_runs.py OUT` reads every
`OUT/soak/run-*/soak.json` (written by `soak.py`, one per run) and writes `OUT/soak.md`.

One passing run does not show the criterion holds (issue 28): the page gives every run's figures, not only the
last one's, and says how many passed. Exit status 1 when any run failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def render(runs: list[tuple[str, dict]]) -> str:
    passed = sum(1 for _, run in runs if run["passed"])
    rows = []
    for name, run in runs:
        ledger = run["ledger"]
        recoveries = [recovery for _, recovery in run["kills"]]
        life = run["restart_life"]
        spanning = (
            f"pid {life['pid']}, minutes {life['from_minute']}-{life['to_minute']}: RSS {life['rss_mb'][0]} -> "
            f"{life['rss_mb'][1]} MB ({life['rss_mb'][1] / life['rss_mb'][0] - 1:+.1%}), fds {life['fds'][0]} -> "
            f"{life['fds'][1]} ({life['fds'][1] / life['fds'][0] - 1:+.1%}), producers replaced "
            f"{life['producers_replaced']}"
            if life
            else "-"
        )
        rows.append(
            f"| [{name}](soak/{name}/soak.md) | {run['finished']} | {run['commit'] or '-'} "
            f"| in {ledger['in']:,}, lost {ledger['lost']}, duplicates {ledger['duplicates']} "
            f"| {len(recoveries)}, slowest recovery {max(recoveries, default=0):.1f} s | {run['broker_restart']} "
            f"| {spanning} | {run['growth']} | {'PASS' if run['passed'] else 'FAIL'} |"
        )
    return f"""# Soak: every run of `make soak`

{passed} of {len(runs)} runs passed. Each run is `tests/faults/soak.py` ({runs[0][1]["minutes"]:g} minutes at
{runs[0][1]["rate"]} login events/s, exactly-once, on three brokers): a converter kill -9 every 5 minutes, and the
broker coordinating the converter's group restarted, after which one converter process lives 10 minutes. What
passing means is in that file's docstring: an exact ledger, and after warm-up, resident memory and open descriptors
within 5% inside each process's life and across lives. The column "life through the restart" is the process that
lived through the broker restart, from its first sample after warm-up to its last.

| run | finished | commit | ledger | kills | broker restart | life through the restart | growth | verdict |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Each run's page has its samples minute by minute, its chart and its Kafka clients' statistics.
"""


def main(out: Path) -> int:
    found = sorted((out / "soak").glob("run-*/soak.json"), key=lambda path: int(path.parent.name.split("-")[1]))
    if not found:
        print(f"no soak run under {out / 'soak'}", file=sys.stderr)
        return 1
    runs = [(path.parent.name, json.loads(path.read_text())) for path in found]
    (out / "soak.md").write_text(render(runs))
    failed = [name for name, run in runs if not run["passed"]]
    which = f": failed {', '.join(failed)}" if failed else ""
    print(f"[soak] {len(runs) - len(failed)} of {len(runs)} runs passed{which}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
