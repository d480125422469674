"""Is the working tree's flow slower than a commit's? The throughput benchmark on both, in turns.

    .venv/bin/python benchmarks/compare.py REV [--rounds 3] [--days 20] [--server-db postgres]

Checks REV out into a temporary git worktree, then runs `benchmarks/flow_throughput.py` on the
working tree and on REV alternately (the order swapped every round, so a machine growing busier
does not favour one side), and prints each round's orchestration per trading day and flow/plain
ratio, their medians, and the ratio of the medians (tree / REV): above 1 ms a day means the tree
orchestrates slower. Both sides run with this virtualenv; each side's own code comes first on its
path (the script and the servers it starts run from that side's folder).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {
    "ms_per_day": re.compile(r"orchestration per day\s+([\d.]+) ms"),
    "flow_over_plain": re.compile(r"ratio flow / plain\s+([\d.]+)"),
}


def run_side(folder: Path, days: int, server_db: str) -> dict[str, float]:
    """One throughput run from `folder`'s code: its orchestration per day and flow/plain ratio."""
    script = folder / "benchmarks" / "flow_throughput.py"
    if not script.is_file():
        raise SystemExit(f"{folder} has no benchmarks/flow_throughput.py to compare")
    command = [sys.executable, str(script), "--skip-ephemeral", "--days", str(days)]
    done = subprocess.run(
        [*command, "--server-db", server_db], cwd=folder, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"the benchmark failed in {folder}:\n{done.stdout}{done.stderr}")
    figures = {}
    for name, pattern in FIGURES.items():
        found = pattern.search(done.stdout)
        if found is None:
            raise SystemExit(f"no {name} in the output of {folder}:\n{done.stdout}")
        figures[name] = float(found.group(1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the commit to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--server-db", choices=["sqlite", "postgres"], default="sqlite")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitrader-compare-") as tmp:
        other = Path(tmp) / "rev"
        add = ["git", "worktree", "add", "--detach", "--quiet", str(other), arguments.rev]
        subprocess.run(add, cwd=ROOT, check=True)
        try:
            results = compare(other, arguments)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT)
    report(results, arguments.rev)


def compare(other: Path, arguments: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """Each side's figures, round by round, the order of the sides swapped every round."""
    sides = {"tree": ROOT, "rev": other}
    results: dict[str, list[dict[str, float]]] = {"tree": [], "rev": []}
    for number in range(arguments.rounds):
        order = ["tree", "rev"] if number % 2 == 0 else ["rev", "tree"]
        for side in order:
            figures = run_side(sides[side], arguments.days, arguments.server_db)
            results[side].append(figures)
            print(
                f"round {number + 1} {side:4}  {figures['ms_per_day']:6.0f} ms/day"
                f"  flow/plain {figures['flow_over_plain']:.2f}",
                flush=True,
            )
    return results


def report(results: dict[str, list[dict[str, float]]], rev: str) -> None:
    medians = {
        side: {name: statistics.median(r[name] for r in rounds) for name in FIGURES}
        for side, rounds in results.items()
    }
    for side, figures in medians.items():
        label = "working tree" if side == "tree" else rev
        print(
            f"median {label:>12}  {figures['ms_per_day']:6.0f} ms/day"
            f"  flow/plain {figures['flow_over_plain']:.2f}"
        )
    ratio = medians["tree"]["ms_per_day"] / medians["rev"]["ms_per_day"]
    print(f"orchestration per day, tree / {rev}: {ratio:.2f}  (above 1: the tree is slower)")


if __name__ == "__main__":
    main()
