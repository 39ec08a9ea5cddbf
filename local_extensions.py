"""Checks cookiecutter runs before the pre-generation hook can (loaded via ``_extensions``).

cookiecutter 2.7.1 (generate.py, generate_files) renders the project directory name
``{{cookiecutter.project_slug}}`` and creates it -- parents included -- before it runs
hooks/pre_gen_project.py. A slug such as ``../x`` or ``a/b`` would therefore create directories
outside (or beside) the output directory before any validation, and a failed hook only removes the
last one. cookiecutter puts the template root on sys.path while it generates, so this module is
importable as ``local_extensions``; its preprocess step turns that one directory-name template into
``{{ cookiecutter.project_slug | project_directory }}``, and the filter refuses anything that is not
a plain slug before a single directory exists.

It also turns a Jinja syntax error in an answer (cookiecutter renders every answer as a template)
into one line instead of a traceback. Both errors subclass an exception cookiecutter's command line
prints as a single line and exits 1 on.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment, TemplateSyntaxError
from jinja2.ext import Extension

# Same rule as hooks/pre_gen_project.py SLUG_PATTERN (which explains it in full).
SLUG_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PROJECT_DIR_TEMPLATE = re.compile(r"\{\{\s*cookiecutter\.project_slug\s*\}\}")


class InvalidAnswer(FailedHookException):
    """An answer cookiecutter cannot use; the message is the single line the user sees."""


def project_directory(slug: object) -> str:
    text = str(slug)
    if not SLUG_PATTERN.fullmatch(text):
        raise InvalidAnswer(
            f"ERROR: project_slug: {text!r} is not a valid slug (it names the project directory); "
            "use lowercase letters, digits and single hyphens, starting with a letter and not "
            "ending with a hyphen (e.g. 'orders-service'). Nothing was created."
        )
    return text


def template_checkout() -> Path:
    """The checkout being rendered now.

    cookiecutter renders the project's files from inside the template's project directory
    (generate_files works in `{{cookiecutter.project_slug}}/`), so its parent is the checkout. This
    module is imported once per process, and cruft update renders two checkouts (old and new
    commit) in one process: its own path would name the first one for both.
    """
    rendering = Path.cwd().parent
    if (rendering / "tooling" / "pyproject.toml").is_file():
        return rendering
    return Path(__file__).resolve().parent


def tooling_git_source() -> str:
    """pip's requirement for the release tooling at the commit a project is generated from.

    The template checkout's remote when it has one (cookiecutter and cruft clone a git URL), else
    the local checkout itself; empty when the template is not a git checkout (then `make setup`
    needs the package index or RELEASE_TOOLING_PATH, and says so).
    """
    checkout = template_checkout()

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(checkout), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return ""
    url = git("remote", "get-url", "origin") or str(checkout)
    if Path(url).is_absolute():  # a clone of a local checkout (cruft does that): pip wants a URL
        url = Path(url).as_uri()
    return f"git+{url}@{commit}#subdirectory=tooling"


def tooling_release() -> dict[str, str]:
    """The release tooling's version and release contract, read from its source (one place)."""
    source = (template_checkout() / "tooling" / "src" / "release_tooling" / "__init__.py").read_text(
        encoding="utf-8"
    )
    values = dict(re.findall(r'^(__version__|SCHEMA_VERSION) = "?([^"\n]+)"?$', source, re.M))
    return {"version": values["__version__"], "schema": values["SCHEMA_VERSION"]}


class SafeProjectDirectoryExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["project_directory"] = project_directory
        environment.globals["tooling_git_source"] = tooling_git_source
        environment.globals["tooling_release"] = tooling_release
        # A plain environment, only to parse answers without recursing into this preprocess.
        self._parser = Environment()

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if name is not None:  # template files: parsed and reported by cookiecutter itself
            return source
        if PROJECT_DIR_TEMPLATE.fullmatch(source):
            return "{{ cookiecutter.project_slug | project_directory }}"
        try:
            self._parser.parse(source)
        except TemplateSyntaxError as err:
            raise InvalidAnswer(
                f"ERROR: the answer {source!r} is not valid: cookiecutter reads '{{{{', '{{%' and "
                f"'{{#' in any answer as Jinja template syntax ({err.message}); remove them, or "
                "write a literal brace pair as {{ '{{' }}. Nothing was created."
            ) from None
        return source
