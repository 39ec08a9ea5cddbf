"""Has the template this repository was made from moved on? One issue says so, with the commands.

    release-tooling template-drift [--cruft-file .cruft.json] [--report FILE] [--issue]

A repository made with `cruft create` records its template (`template`, a git URL or path), the
template commit it matches (`commit`) and the branch or tag it follows (`checkout`, else the
template's default branch) in `.cruft.json`. This asks the template repository for the newest
commit of that ref (`git ls-remote`, as `cruft check` does by cloning) and compares. Behind: the
report gives the commands that preview and apply the update, and `--issue` opens one issue (or
updates the open one) with it, found again by its hidden marker.

A repository made with plain `cookiecutter` has no `.cruft.json`: nothing to compare, and the
report says how to link it (`cruft link`).

Exit codes: 0 up to date (or not linked), 2 the template has newer commits, 1 error (the template
cannot be reached, or `.cruft.json` is malformed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import github_api, project

MARKER = "<!-- template-update -->"
SHA = re.compile(r"^[0-9a-f]{40}$")


class TemplateDriftError(Exception):
    """The comparison could not run; the message says why and what to do."""


@dataclass(frozen=True)
class Link:
    template: str
    commit: str
    checkout: str | None


def read_link(path: Path) -> Link | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TemplateDriftError(f"{path} is not JSON ({exc}); restore it from git") from None
    template, commit = data.get("template"), data.get("commit")
    if not isinstance(template, str) or not template or not isinstance(commit, str):
        raise TemplateDriftError(
            f"{path} lacks `template` or `commit`; re-link with `cruft link <template url>`"
        )
    checkout = data.get("checkout")
    return Link(template, commit, checkout if isinstance(checkout, str) and checkout else None)


def latest_commit(link: Link, timeout: float = 60) -> str:
    ref = link.checkout or "HEAD"
    try:
        proc = subprocess.run(
            # The peeled pattern also lists an annotated tag's commit (refs/tags/<tag>^{}).
            ["git", "ls-remote", "--", link.template, ref, ref + "^{}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TemplateDriftError(f"cannot run git ls-remote {link.template}: {exc}") from None
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TemplateDriftError(
            f"cannot read {link.template} ({reason}); a private template needs credentials for "
            "git in this job"
        )
    # A peeled annotated tag names the commit itself; anything else is a commit already.
    found = None
    for line in proc.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if not SHA.match(sha):
            continue
        if name.endswith("^{}"):
            return sha
        found = found or sha
    if found:
        return found
    raise TemplateDriftError(
        f"{link.template} has no ref {ref!r}; fix `checkout` in .cruft.json or pass the branch"
    )


def report(link: Link, latest: str) -> tuple[int, str]:
    follows = f"`{link.checkout}`" if link.checkout else "its default branch"
    if latest == link.commit:
        return 0, f"The template ({link.template}, {follows}) is at {latest[:12]}: up to date."
    lines = [
        MARKER,
        "### The template has moved on",
        "",
        f"This repository matches template commit `{link.commit[:12]}`; {link.template} "
        f"({follows}) is now at `{latest[:12]}`.",
        "",
        "Preview and apply the update on a branch, then open a pull request (its plan comment "
        "shows what the update changes in AWS):",
        "",
        "```sh",
        "git switch -c template-update",
        "cruft diff          # what the template changed since this repository's commit",
        "cruft update        # apply it; resolve any *.rej files it leaves",
        "make setup && make lint && make test",
        "```",
        "",
        "Read the template's CHANGELOG first: a new release contract or tooling version is "
        "listed there with what to do.",
    ]
    return 2, "\n".join(lines)


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="release-tooling template-drift", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--cruft-file", type=Path, help="default: .cruft.json of the repository")
    parser.add_argument("--report", type=Path, help="also write the Markdown report here")
    parser.add_argument(
        "--issue", action="store_true", help="open or update the one template-update issue"
    )
    args = parser.parse_args(argv)
    env = dict(os.environ) if env is None else env
    path = args.cruft_file or project.ROOT / ".cruft.json"
    try:
        link = read_link(path)
        if link is None:
            print(
                f"No {path.name}: this repository was not made with cruft, so there is no "
                "template commit to compare. Link it once with `cruft link <template url>`."
            )
            return 0
        code, text = report(link, latest_commit(link))
    except TemplateDriftError as exc:
        print(f"release-tooling template-drift: {exc}", file=sys.stderr)
        return 1
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n", encoding="utf-8")
    if code == 2 and args.issue:
        client = github_api.GitHubClient.from_env(env)
        action, issue = client.upsert_issue(MARKER, "Template update available", text, ["template"])
        print(f"Template update issue {action}: {issue.get('html_url', issue.get('number'))}")
    return code


if __name__ == "__main__":
    sys.exit(main())
