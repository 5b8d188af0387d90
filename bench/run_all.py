"""Run every benchmark in bench/ one after the other (``make bench``) and print what each reports.

Benchmarks are measurements, not tests: each prints its figures and the ratios against a baseline
measured in the same run. Run them on a quiet machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"run_all.py", "passthrough.py"}


def main() -> int:
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name in NOT_BENCHMARKS or script.name.startswith("_"):
            continue
        print(f"\n=== {script.name} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        failed += result.returncode != 0
        print(f"--- {script.name}: exit {result.returncode} in {time.monotonic() - started:.0f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
