"""The tables of docs/results.md, from the runs' metrics and console logs.

    python docs/results/summarise.py docs/results

reads ``<dir>/<run>/metrics.jsonl`` (one row per epoch, then the test row) and the ``=== ...``,
``wall_s=...`` lines of ``<dir>/fmnist.log`` and ``<dir>/digits.log``, and prints one markdown
table per experiment: per run, and the mean +- standard deviation over the seeds per rule.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path


def runs_of_log(log: Path) -> dict[str, dict]:
    """Run name -> wall seconds, peak RSS and the load averages, from a log's last try of it."""
    out, current = {}, None
    for line in log.read_text().splitlines():
        if m := re.match(r"=== (\w+) seed (\d) start \S+ load (\S+) (\S+) (\S+)", line):
            current = {"rule": m[1], "seed": int(m[2]), "load_start": m[3]}
        elif (m := re.match(r"wall_s=(\S+) max_rss_kb=(\d+)", line)) and current:
            current.update(wall_s=float(m[1]), rss_gb=int(m[2]) / 2**20)
        elif (m := re.match(r"=== \w+ seed \d end \S+ load (\S+)", line)) and current:
            current["load_end"] = m[1]
            out[f"{current['rule']}-seed{current['seed']}"] = current
            current = None
    return out


def table(folder: Path, prefix: str, log: Path) -> str:
    info = runs_of_log(log)
    rows = [
        "| rule | seed | val acc (last epoch) | test acc | median epoch (s) | train (s) | wall (s) "
        "| peak RSS (GB) | load avg start/end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    per_rule: dict[str, list[tuple[float, float, float]]] = {}
    for name, run in sorted(info.items(), key=lambda kv: (kv[1]["rule"], kv[1]["seed"])):
        lines = [json.loads(x) for x in (folder / f"{prefix}-{name}" / "metrics.jsonl").open()]
        epochs = [x for x in lines if "epoch" in x]
        test = next(x["test_accuracy"] for x in lines if "test_accuracy" in x)
        epoch_s = [x["epoch_s"] for x in epochs]
        val = epochs[-1]["val_accuracy"]
        per_rule.setdefault(run["rule"], []).append(
            (test, statistics.median(epoch_s), run["wall_s"])
        )
        rows.append(
            f"| {run['rule']} | {run['seed']} | {100 * val:.1f} % | {100 * test:.1f} % "
            f"| {statistics.median(epoch_s):.3g} | {sum(epoch_s):.0f} | {run['wall_s']:.0f} "
            f"| {run['rss_gb']:.2f} | {run['load_start']} / {run['load_end']} |"
        )
    rows += [
        "",
        "| rule | test accuracy, mean +- sd (3 seeds) | median epoch (s), median of seeds "
        "| wall (s), median |",
        "|---|---|---|---|",
    ]
    for rule, vals in per_rule.items():
        acc = [100 * v[0] for v in vals]
        epoch = statistics.median(v[1] for v in vals)
        wall = statistics.median(v[2] for v in vals)
        rows.append(
            f"| {rule} | {statistics.mean(acc):.1f} +- {statistics.stdev(acc):.1f} % "
            f"| {epoch:.3g} | {wall:.0f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results")
    for prefix, log in (("fmnist", "fmnist.log"), ("digits", "digits.log")):
        if (folder / log).exists():
            print(f"## {prefix}\n\n{table(folder, prefix, folder / log)}\n")
