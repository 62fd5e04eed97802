"""The crash test (scripts/crash_test.py): SIGKILL a dispatcher worker 20 times, never send twice.

N is 2,000 customers so the test stays well under 3 minutes on 2 cores; the script runs any N
(`scripts/crash_test.py run --customers 10000`), see docs/benchmarks.md for the 10,000 run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "crash_test.py"
CUSTOMERS = 2_000
KILLS = 20


def test_killed_workers_never_send_twice_nor_lose_an_outcome(tmp_path: Path) -> None:
    command = [sys.executable, str(SCRIPT), "run", "--customers", str(CUSTOMERS)]
    command += ["--kills", str(KILLS), "--seed", "1", "--folder", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["kills"] == KILLS
    assert result["rows"] == result["planned"] == CUSTOMERS
    assert result["duplicates"] == 0
    assert result["not_final"] == 0
    assert result["lost_outcomes"] == 0
    assert result["done_without_outcome"] == 0
    assert result["done_not_logged"] == 0
    assert result["logged_without_row"] == 0
    states = result["states"]
    assert states.get("done", 0) + states.get("failed", 0) == CUSTOMERS
    assert states.get("failed", 0) == result["interrupted"]
    assert result["contacts_logged"] == states.get("done", 0) + result["interrupted_logged"]
    assert result["ok"]
