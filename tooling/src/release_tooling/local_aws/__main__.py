"""`python -m release_tooling.local_aws serve --state-dir DIR [--port N] [--minute-seconds S]
[--restore FILE] [--account ID ...]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .accounts import AccountError, validate_accounts
from .iam_enforcement import MODES
from .server import DEFAULT_ACCOUNT, DEFAULT_MINUTE_SECONDS, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m release_tooling.local_aws",
        description="Embedded AWS endpoint for the local pipeline.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "serve", help="serve until SIGTERM; writes STATE_DIR/endpoint.json when ready"
    )
    run.add_argument("--state-dir", type=Path, required=True)
    run.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    run.add_argument(
        "--minute-seconds",
        type=float,
        default=DEFAULT_MINUTE_SECONDS,
        help="real seconds per CodeDeploy minute (traffic shifting and hook timeouts use it)",
    )
    run.add_argument(
        "--iam",
        choices=MODES,
        default=os.environ.get("LOCAL_IAM") or "enforce",
        help="IAM evaluation: enforce (default; LOCAL_IAM), audit (log, deny nothing) or off",
    )
    run.add_argument(
        "--restore",
        type=Path,
        help="start with the state a snapshot saved (exit 3, saying why, if it does not load)",
    )
    run.add_argument(
        "--account",
        dest="accounts",
        action="append",
        default=[],
        metavar="ID",
        help="serve this extra AWS account too, with its own administrator (repeatable); "
        f"the default account {DEFAULT_ACCOUNT} is always served",
    )
    args = parser.parse_args(argv)
    if args.minute_seconds <= 0:
        parser.error("--minute-seconds must be positive")
    try:
        validate_accounts(args.accounts, DEFAULT_ACCOUNT)
    except AccountError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return serve(
        args.state_dir, args.port, args.minute_seconds, args.iam, args.restore, args.accounts
    )


if __name__ == "__main__":
    sys.exit(main())
