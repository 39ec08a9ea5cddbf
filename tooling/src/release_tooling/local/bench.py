"""`local bench`: up, releases, zip sizes and import times, measured in a scratch copy (so the
working tree and an environment already up are untouched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import REGION_FALLBACK, LocalError, ScratchCopy, say


def cmd_bench(args) -> int:
    copy = ScratchCopy("local-bench-")
    rows: list[tuple[str, str]] = []

    def timed(label: str, *cmd: str) -> float:
        t = time.monotonic()
        proc = copy.local(*cmd)
        took = time.monotonic() - t
        if proc.returncode != 0:
            raise LocalError(
                f"bench step {label!r} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
            )
        rows.append((label, f"{took:.1f} s"))
        return took

    try:
        timed("cold start (local-up)", "up")
        timed("release", "release")
        copy.handler.write_text(
            copy.handler.read_text(encoding="utf-8") + "\n# bench: one-line change\n",
            encoding="utf-8",
        )
        timed("release after a one-line change", "release")
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
        "\nTargets on a 2-core machine (issue #8): local-up <= 75 s, a release <= 5 s, every "
        f"pipeline Lambda zip <= 64 KiB. Measured with LOCAL_IAM={iam_mode}."
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
