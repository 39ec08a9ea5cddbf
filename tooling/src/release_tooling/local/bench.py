"""`local bench`: cold and warm up, releases, zip sizes and import times, measured in a scratch
copy (so the working tree, its snapshots and an environment already up are untouched).

Timed steps run `--runs` times (cold up `--cold-runs` times: about 100 s each) and each row is the
median. Cold up is `up --cold` (it also saves the snapshot); warm up restores that snapshot, from
a snapshot directory of the scratch copy's own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import snapshot
from .common import REGION_FALLBACK, LocalError, ScratchCopy, say


def cmd_bench(args) -> int:
    runs, cold_runs = getattr(args, "runs", 3), getattr(args, "cold_runs", 1)
    copy = ScratchCopy("local-bench-")
    copy.environ[snapshot.SNAPSHOT_ENV] = str(copy.scratch / "snapshots")
    rows: list[tuple[str, str]] = []

    def step(label: str, *cmd: str) -> tuple[float, str]:
        t = time.monotonic()
        proc = copy.local(*cmd)
        took = time.monotonic() - t
        if proc.returncode != 0:
            raise LocalError(
                f"bench step {label!r} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
            )
        return took, proc.stdout

    def median(label: str, times: list[float]) -> None:
        rows.append((label, f"{statistics.median(times):.1f} s (median of {len(times)})"))

    def up(label: str, *flags: str, warm: bool) -> float:
        took, out = step(label, "up", *flags)
        if warm != ("from snapshot" in out):
            raise LocalError(
                f"bench step {label!r} did not take the {'warm' if warm else 'cold'} "
                f"path:\n{out[-1500:]}"
            )
        return took

    def one_line_change(n: int) -> None:
        copy.handler.write_text(
            copy.handler.read_text(encoding="utf-8") + f"\n# bench: one-line change {n}\n",
            encoding="utf-8",
        )

    try:
        cold = []
        for _ in range(cold_runs):
            cold.append(up("cold up (local-up --cold)", "--cold", warm=False))
            step("down", "down")
        median("cold up (local-up --cold)", cold)
        warm = []
        for n in range(runs):
            if n:
                step("down", "down")
            warm.append(up("warm up (local-up, snapshot)", warm=True))
        median("warm up (local-up, snapshot)", warm)
        # The environment is up (warm). A release of the same tree, then of a changed one.
        median("release", [step("release", "release")[0] for _ in range(runs)])
        changed = []
        for n in range(runs):
            one_line_change(n)
            changed.append(step("release after a one-line change", "release")[0])
        median("release after a one-line change", changed)
        status = json.loads(copy.local("status", "--json").stdout)
        outputs = copy.outputs()
        sfn = copy.admin_client("stepfunctions")
        last = status["executions"][0]["name"]
        ex = next(
            e
            for e in sfn.list_executions(stateMachineArn=outputs["state_machine_arn"])["executions"]
            if e["name"] == last
        )
        desc = sfn.describe_execution(executionArn=ex["executionArn"])
        rows.append(
            (
                "execution alone (last release)",
                f"{(desc['stopDate'] - desc['startDate']).total_seconds():.1f} s",
            )
        )
        history = sfn.get_execution_history(executionArn=ex["executionArn"], maxResults=1000)[
            "events"
        ]
        rows.append(
            (
                "state transitions per successful release",
                str(sum(e["type"].endswith("StateEntered") for e in history)),
            )
        )
        manifest = json.loads((copy.path / "build" / "manifest.json").read_text(encoding="utf-8"))
        for name, entry in sorted(manifest["artifacts"].items()):
            rows.append((f"zip {name}", f"{entry['size'] / 1024:.1f} KiB"))
            rows.append(
                (
                    f"import {name}.handler",
                    f"{import_time(copy.path / 'build' / entry['file']) * 1000:.0f} ms",
                )
            )
    finally:
        copy.remove()
    width = max(len(label) for label, _ in rows)
    say(f"{'measure':<{width}}  value")
    iam_mode = os.environ.get("LOCAL_IAM") or "enforce"
    say(f"{'-' * width}  -----")
    for label, value in rows:
        say(f"{label:<{width}}  {value}")
    say(
        "\nTargets on a 2-core machine (issues #8, #14): cold local-up <= 75 s, warm local-up "
        "<= 10 s, a release <= 5 s, every pipeline Lambda zip <= 64 KiB. Measured with "
        f"LOCAL_IAM={iam_mode}."
    )
    return 0


def import_time(zip_path: Path) -> float:
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(zip_path).extractall(tmp)
        code = (
            "import sys,time;sys.path.insert(0,sys.argv[1]);t=time.perf_counter();"
            "import handler;print(time.perf_counter()-t)"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_DEFAULT_REGION": REGION_FALLBACK,
        }
        proc = subprocess.run(
            [sys.executable, "-I", "-c", code, tmp],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        return float(proc.stdout.strip() or "nan")
