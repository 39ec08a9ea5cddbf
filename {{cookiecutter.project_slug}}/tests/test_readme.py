"""README.md's table of make targets lists every documented Makefile target, word for word."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_LINE = re.compile(r"^(?P<target>[a-zA-Z_-]+):.*?## (?P<description>.+)$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| `make (?P<target>[a-zA-Z_-]+)` \| (?P<description>.+) \|$", re.M)


def test_readme_lists_every_make_target_with_its_description():
    makefile_text = (ROOT / "Makefile").read_text(encoding="utf-8")
    readme_text = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = {m["target"]: m["description"] for m in TARGET_LINE.finditer(makefile_text)}
    readme = {m["target"]: m["description"] for m in TABLE_ROW.finditer(readme_text)}

    assert makefile, "no documented targets found in the Makefile"
    assert readme == makefile
