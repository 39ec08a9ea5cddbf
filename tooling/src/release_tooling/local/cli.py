"""release-tooling local: run the real delivery pipeline on an embedded AWS endpoint, no account.

  up [--cold]        start the endpoint (background), terraform init + apply terraform/; an
                     unchanged tree restores the snapshot the last cold up saved (seconds, not
                     minutes); --cold applies from scratch regardless
  apply              apply what changed in both Terraform roots to the running environment
                     (a new function, a changed policy), keeping its releases
  release [--fail F] package the working tree, upload it like the deploy workflow, run the release
                     state machine and stream its progress; exit 0 only when production got the
                     release
  status [--json]    aliases and the last executions
  drift              the drift job's alias check, as the plan role: exit 2 when an alias serves
                     something else than the last successful release left
  plan [--var K=V]   terraform plan of terraform/ against the running endpoint; exit code as
                     -detailed-exitcode: 0 no changes, 2 changes, 1 error (plan files in
                     .local/plan/)
  down [--purge]     stop the endpoint and delete .local/ (snapshots kept; --purge deletes them)
  run [--fail F]     up, release, down in one go
  bench [--runs N]   measure cold and warm up, releases, zip sizes and import times (medians of
                     N runs, in a scratch copy)
  demo               up, a good release, a deliberately broken release that is rolled back, down
                     (in a scratch copy); prints where each alias ended

Faults (--fail) are injected by the harness and the endpoint, never inside Lambda code:
  validate           the uploaded app.zip is corrupted after upload (manifest checksum mismatch)
  deploy-staging     the deploy function fails when called for staging
  smoke-tests        the app behind the staging alias fails, so the smoke tests fail
  smoke-timeout      the app behind the staging alias hangs once: Lambda times it out in the
                     smoke tests
  deploy-production  the deploy function fails when called for production
  alarm-production   the production error alarm fires as soon as CodeDeploy shifts traffic
  rollback           smoke tests fail and the Lambda service rejects the first two rollback calls
                     (Step Functions' Retry has to recover)
"""

from __future__ import annotations

import argparse

from ..local_aws import process
from .bench import cmd_bench
from .common import LocalError, say
from .demo import cmd_demo
from .drift import cmd_drift
from .environment import cmd_apply, cmd_down, cmd_plan, cmd_up
from .release import FAULTS, cmd_release
from .status import cmd_status

PROG = "release-tooling local"


def cmd_run(args) -> int:
    cmd_up(args)
    try:
        return cmd_release(args)
    finally:
        cmd_down(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    clock = argparse.ArgumentParser(add_help=False)
    clock.add_argument(
        "--minute-seconds",
        type=float,
        default=0.2,
        help="real seconds per CodeDeploy minute (default 0.2)",
    )
    rel = argparse.ArgumentParser(add_help=False)
    rel.add_argument("--fail", choices=FAULTS, help="inject a fault (see above)")
    rel.add_argument(
        "--commit", help="release id to use instead of the git commit / derived id (40 hex)"
    )
    rel.add_argument(
        "--max-polls",
        type=int,
        default=60,
        help="deployment status polls before giving up (1 s apart)",
    )
    rel.add_argument(
        "--approval",
        choices=["approve", "reject"],
        default="approve",
        help="answer to the ApproveProduction gate, when the project has one (default approve)",
    )
    rel.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds to follow the execution before giving up (default 900)",
    )
    up = sub.add_parser("up", parents=[clock], help="start the endpoint and apply terraform/")
    up.add_argument(
        "--cold",
        action="store_true",
        help="apply both Terraform roots even when a snapshot of this tree exists",
    )
    sub.add_parser("apply", help="apply changes of both roots to the running environment")
    sub.add_parser("release", parents=[rel], help="package, upload and run a release")
    st = sub.add_parser("status", help="aliases and last executions")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--last", type=int, default=10, help="how many executions to show")
    sub.add_parser("drift", help="aliases against the last successful release (exit 2 = drift)")
    pl = sub.add_parser(
        "plan",
        help="terraform plan against the running endpoint (exit 0 no changes, 2 changes, 1 error)",
    )
    pl.add_argument(
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="a Terraform variable for this plan (repeatable), e.g. notification_email=a@b.example",
    )
    down = sub.add_parser("down", help="stop and clean up (snapshots are kept)")
    down.add_argument(
        "--purge", action="store_true", help="also delete the snapshots (the next up is cold)"
    )
    sub.add_parser("run", parents=[clock, rel], help="up, release, down")
    bench = sub.add_parser("bench", help="benchmark in a scratch copy")
    bench.add_argument(
        "--runs",
        type=int,
        default=3,
        help="runs of warm up and of each release; each row is their median (default 3)",
    )
    bench.add_argument(
        "--cold-runs",
        type=int,
        default=1,
        help="runs of cold up (about 100 s each; default 1)",
    )
    sub.add_parser("demo", parents=[clock], help="good release, broken release rolled back, down")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "commit", None) and not (
        len(args.commit) == 40 and all(c in "0123456789abcdef" for c in args.commit)
    ):
        say(f"{PROG}: --commit must be 40 lowercase hex characters, got {args.commit!r}")
        return 2
    handlers = {
        "up": cmd_up,
        "apply": cmd_apply,
        "release": cmd_release,
        "status": cmd_status,
        "drift": cmd_drift,
        "plan": cmd_plan,
        "down": cmd_down,
        "run": cmd_run,
        "bench": cmd_bench,
        "demo": cmd_demo,
    }
    if args.command == "bench" and (args.runs < 1 or args.cold_runs < 1):
        say(f"{PROG} bench: --runs and --cold-runs must be at least 1")
        return 2
    # plan and drift keep -detailed-exitcode's meaning (2 = drift/changes), so failures exit 1.
    failed = 1 if args.command in ("plan", "drift") else 2
    try:
        return handlers[args.command](args)
    except (LocalError, process.EndpointError) as exc:
        say(f"{PROG} {args.command}: {exc}")
        return failed
    except Exception as exc:  # noqa: BLE001 - AWS SDK errors: one clear line, not a traceback
        if type(exc).__module__.startswith("botocore"):
            say(f"{PROG} {args.command}: AWS call to the local endpoint failed: {exc}")
            return failed
        raise
    except KeyboardInterrupt:
        say(f"{PROG} {args.command}: interrupted")
        return 130
