"""Remove what the chosen options turned off from the freshly generated project."""

from __future__ import annotations

import shutil
from pathlib import Path

MANUAL_APPROVAL = "{{ cookiecutter.manual_approval }}"

# Files that exist only for the manual approval gate before production.
APPROVAL_ONLY = (
    ".github/workflows/approve-release.yml",
    "lambdas/approval_notifier",
    "tests/test_approval_notifier.py",
)


def remove(relative_path: str) -> None:
    path = Path.cwd() / relative_path
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def main() -> None:
    if MANUAL_APPROVAL != "yes":
        for relative_path in APPROVAL_ONLY:
            remove(relative_path)


if __name__ == "__main__":
    main()
