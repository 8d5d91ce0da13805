"""How fast `kagg --help` and `kagg --version` start, next to a bare `python -c pass`.

Run: python benchmarks/bench_startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from _common import ROOT, median_seconds, print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    env = {"PYTHONPATH": str(ROOT)}

    def timer(argv):
        return median_seconds(lambda: subprocess.run([sys.executable, *argv], capture_output=True, check=True,
                                                     env=env), args.repeat)

    reference = timer(["-c", "pass"])
    rows = [["python -c pass (reference)", f"{reference * 1000:.1f}", "1.00"]]
    for label, argv in (("kagg --help", ["-m", "kagg", "--help"]), ("kagg --version", ["-m", "kagg", "--version"])):
        t = timer(argv)
        rows.append([label, f"{t * 1000:.1f}", f"{t / reference:.2f}"])
    print_table(f"Start-up time, median of {args.repeat} runs", ["command", "ms", "x python"], rows)


if __name__ == "__main__":
    main()
