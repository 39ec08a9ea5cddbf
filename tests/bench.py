"""`make bench`: how long the template's own `make test` takes, and a baked project's `make bench`.

Prints one table: the median (and every run) of the template's whole `make test`, then the baked
defaults project's local numbers (cold and warm `local up`, a release, a release after a one-line
change, zip sizes and import times, each the median of several runs). Measures and prints only;
it asserts nothing about time. Run it on a quiet machine: other load shows up in every number.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds `command` took; exits with its output when it fails (a failed suite is no number)."""
    started = time.monotonic()
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        sys.exit(f"bench: `{shlex.join(command)}` failed after {took:.0f} s:\n{tail}")
    return took


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def suite_rows(
    command: list[str], runs: int, env: dict[str, str]
) -> list[tuple[str, str]]:
    times = []
    for n in range(1, runs + 1):
        took = timed(command, TEMPLATE_ROOT, env)
        print(
            f"  run {n}/{runs} of `{shlex.join(command)}`: {minutes(took)}", flush=True
        )
        times.append(took)
    shown = ", ".join(minutes(t) for t in times)
    return [
        (
            f"`{shlex.join(command)}`",
            f"{minutes(statistics.median(times))} (median of {runs}: {shown})",
        )
    ]


def project_bench(env: dict[str, str]) -> str:
    """The baked defaults project's own `make bench` table, baked into a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="template-bench-") as scratch:
        cookiecutter = Path(sys.executable).with_name("cookiecutter")
        timed(
            [str(cookiecutter), "--no-input", "-o", scratch, str(TEMPLATE_ROOT)],
            TEMPLATE_ROOT,
            env,
        )
        (project,) = [p for p in Path(scratch).iterdir() if p.is_dir()]
        for step in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"]):
            timed(step, project, env)
        timed(["make", "setup"], project, env)
        proc = subprocess.run(
            ["make", "bench"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(
                f"bench: the baked project's `make bench` failed:\n{proc.stdout[-3000:]}"
            )
        return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of the suite (median printed)"
    )
    parser.add_argument(
        "--suite",
        default="make test",
        help="the command timed as the suite (default: make test)",
    )
    parser.add_argument(
        "--no-project",
        action="store_true",
        help="skip the baked project's `make bench`",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    command = shlex.split(args.suite)
    if not command:
        parser.error("--suite must name a command")
    # The release tooling from this checkout, as `make demo` installs it (offline, uncommitted).
    env = {**os.environ, "RELEASE_TOOLING_PATH": str(TEMPLATE_ROOT / "tooling")}
    print(
        f"Timing `{args.suite}` {args.runs} time(s) on {os.cpu_count()} cores...",
        flush=True,
    )
    rows = suite_rows(command, args.runs, env)
    print("\n| step | time |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")
    if not args.no_project:
        print("\nThe baked defaults project's `make bench`:\n", flush=True)
        print(project_bench(env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
