"""The template's `make bench` measures and prints; it asserts nothing about time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench.py"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), "--no-project", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_prints_every_run_and_their_median():
    run = bench("--runs", "3", "--suite", f"{sys.executable} -c pass")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("run ") == 3
    assert "(median of 3: " in run.stdout
    assert "| step | time |" in run.stdout


def test_a_failing_suite_is_no_number():
    run = bench("--runs", "2", "--suite", f"{sys.executable} -c 'raise SystemExit(3)'")
    assert run.returncode != 0
    assert "failed after" in run.stderr
    assert "median" not in run.stdout


def test_bad_runs_are_refused_with_the_fix():
    run = bench("--runs", "0")
    assert run.returncode == 2
    assert "--runs must be at least 1, got 0" in run.stderr
