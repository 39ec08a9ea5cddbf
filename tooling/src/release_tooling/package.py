#!/usr/bin/env python3
"""Build the Lambda zips and manifest, and upload a release.

  release-tooling package [--out build] [--commit SHA] [--python-runtime python3.12]
      build/<lambda>.zip for every directory in lambdas/ except shared/ (pipeline zips also get
      the shared/ package; app functions, app_function_keys in terraform/names/main.tf, do not)
      and build/manifest.json. Zips are byte-identical for identical sources:
      sorted entries, 1980-01-01 timestamps, mode 0644, no __pycache__/tests.
      A lambdas/<name>/requirements.txt (exact == pins, hashes allowed) is installed into that zip
      for Lambda's platform (manylinux2014_x86_64, CPython of the python_runtime default in
      terraform/variables.tf unless --python-runtime says otherwise), wheels only, and cached in
      build/.deps-cache/ by the requirements' content, platform and Python version.

  release-tooling package upload --bucket B [--commit SHA] [--poll-interval 15] [--max-polls 80]
      Builds, then uploads s3://B/releases/<sha>/<app function>.zip (app.zip and one per other
      app function terraform/names/main.tf declares) and manifest.json (skipped when already
      there with the same sha256; refused when there with different bytes unless --force), and
      finally s3://B/pipeline/source.zip holding execution-input.json, which starts the release.

The commit defaults to `git rev-parse HEAD`.
"""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import contract, project

ROOT = project.ROOT
LAMBDAS = ROOT / "lambdas"
SHARED = "shared"
APP = contract.APP
HANDLER = "handler.handler"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
SKIP_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SOURCE_KEY = contract.SOURCE_KEY
# Both Terraform roots take the stack's names from this module, the app functions included.
NAMES_FILE = Path("terraform") / "names" / "main.tf"
APP_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
REQUIREMENTS = "requirements.txt"
# The platform of Lambda's x86_64 Python runtimes (Amazon Linux 2023, glibc 2.34): wheels tagged
# manylinux2014_x86_64 (glibc 2.17) or older, or pure Python, run there.
PLATFORM = "manylinux2014_x86_64"
RUNTIME_RE = re.compile(r"^python(3\.\d+)$")
DEPS_CACHE = ".deps-cache"
# Bumped when what goes into a cached dependency tree changes, so old trees are not reused.
DEPS_LAYOUT = "1"
# Files pip writes per installation, not per package: left out so a zip depends only on the wheels.
# (RECORD lists them and the install's own paths; INSTALLER/REQUESTED/direct_url.json record how
# pip was run.) bin/ holds console scripts whose #! line names the building machine's interpreter.
INSTALL_NOISE = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
# Lambda quotas ("Lambda quotas" page of the developer guide, Deployment package (.zip file
# archive) size): 50 MB zipped when uploaded directly, as terraform/lambda.tf does with
# `filename`, and 250 MB unzipped; AWS counts in MiB ("Unzipped size must be smaller than
# 262144000 bytes").
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
_PIN_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*"
    r"==\s*(?P<version>[^\s;,*]+)\s*(?:;.*)?$"
)
_NESTED_OPTIONS = ("-r", "-c", "-e", "--requirement", "--constraint", "--editable")


class PackagingError(Exception):
    """A build or upload problem with a message saying how to fix it."""


def iter_files(directory: Path) -> Iterator[Path]:
    # Symbolic links are refused, not followed: a link such as lambdas/app/x -> /proc/self/environ
    # would ship whatever it points at (in CI, the environment holding the role's keys).
    if directory.is_symlink():
        raise PackagingError(_symlink_message(directory))
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink():
            raise PackagingError(_symlink_message(path))
        if path.is_file() and not path.name.endswith(SKIP_SUFFIXES):
            yield path


def _symlink_message(path: Path) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return (
        f"{shown} is a symbolic link (to {os.readlink(path)}); Lambda code is packaged from "
        "regular files only. Replace the link with a copy of the file or directory it points at."
    )


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """Zip (name, data) pairs so identical input gives identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr is read as a mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def lambda_entries(
    name: str,
    lambdas_dir: Path = LAMBDAS,
    python_runtime: str | None = None,
    deps_cache: Path | None = None,
    app_functions: Iterable[str] = (APP,),
) -> list[tuple[str, bytes]]:
    source = lambdas_dir / name
    entries = [(p.relative_to(source).as_posix(), p.read_bytes()) for p in iter_files(source)]
    site = dependencies_dir(name, lambdas_dir, python_runtime, deps_cache)
    if site is not None:
        ours = {n for n, _ in entries}
        for dep_name, data in dependency_entries(site):
            if dep_name in ours:
                raise PackagingError(
                    f"lambdas/{name}/{dep_name} is also installed by lambdas/{name}/{REQUIREMENTS};"
                    " rename your file or drop the requirement (one of them would be lost)"
                )
            entries.append((dep_name, data))
    if name not in app_functions:  # application functions carry only their own directory
        shared = lambdas_dir / SHARED
        entries += [
            (f"{SHARED}/{p.relative_to(shared).as_posix()}", p.read_bytes())
            for p in iter_files(shared)
        ]
    if not any(n == "handler.py" for n, _ in entries):
        raise PackagingError(f"lambdas/{name}/handler.py is missing; every Lambda needs one")
    return entries


def dependencies_dir(
    name: str,
    lambdas_dir: Path = LAMBDAS,
    python_runtime: str | None = None,
    deps_cache: Path | None = None,
) -> Path | None:
    """Where lambdas/<name>/requirements.txt is installed for Lambda (None without one): what the
    zip gets besides the sources, and what the app's unit tests import."""
    requirements = lambdas_dir / name / REQUIREMENTS
    if not requirements.is_file():
        return None
    runtime = python_runtime or project_python_runtime(lambdas_dir.parent)
    cache = deps_cache or lambdas_dir.parent / "build" / DEPS_CACHE
    return install_requirements(requirements, runtime_python_version(runtime), cache)


def lambda_names(lambdas_dir: Path = LAMBDAS) -> list[str]:
    return sorted(
        p.name
        for p in lambdas_dir.iterdir()
        if p.is_dir() and p.name != SHARED and not p.name.startswith((".", "_"))
    )


def names_file(lambdas_dir: Path = LAMBDAS) -> Path:
    return lambdas_dir.parent / NAMES_FILE


def _declared_keys(text: str, local: str, shown: str) -> list[str]:
    match = re.search(rf"^\s*{local}\s*=\s*\[([^\]]*)\]", text, re.MULTILINE)
    if not match:
        raise PackagingError(
            f'{shown} has no `{local} = ["...", ...]` list; restore it (it names the Lambda '
            "directories under lambdas/ the stack creates functions for)"
        )
    body = re.sub(r"(#|//).*$", "", match.group(1), flags=re.MULTILINE)
    return re.findall(r'"([^"]*)"', body)


def app_function_keys(lambdas_dir: Path = LAMBDAS) -> list[str]:
    """The application's functions, primary first: terraform/names/main.tf's app_function_keys
    (the one list both Terraform roots read), checked against the directories under lambdas/.

    Every directory under lambdas/ must be declared there (an app function) or be a pipeline
    function (pipeline_function_keys), and every declared app function must have its directory:
    otherwise Terraform would create a function without code, or a folder would never deploy.
    A lambdas/ tree without that file (not a service repository) has the one app function, app.
    """
    path = names_file(lambdas_dir)
    shown = NAMES_FILE.as_posix()
    if not path.is_file():
        # Not a service repository (a bare lambdas/ tree, as some tests build): no Terraform
        # declares functions there, so app is the only app function, as before the list existed.
        if APP not in lambda_names(lambdas_dir):
            raise PackagingError(
                f"{lambdas_dir / APP} is missing; it is the application being released"
            )
        return [APP]
    text = path.read_text(encoding="utf-8")
    apps = _declared_keys(text, "app_function_keys", shown)
    pipeline = set(_declared_keys(text, "pipeline_function_keys", shown))
    if not apps or apps[0] != APP:
        raise PackagingError(
            f'{shown}: app_function_keys must start with "{APP}" (the primary function, whose '
            f'{APP}.zip the release contract names), got {apps}; put "{APP}" first'
        )
    for key in apps:
        if not APP_KEY_RE.match(key) or key in pipeline or key == SHARED or apps.count(key) > 1:
            raise PackagingError(
                f"{shown}: app function {key!r} in app_function_keys is not a usable key: use "
                "lowercase letters, digits and _ (starting with a letter), once, and not the "
                f"name of a pipeline function ({', '.join(sorted(pipeline))}) or {SHARED}"
            )
    present = lambda_names(lambdas_dir)
    for key in apps:
        if key not in present:
            raise PackagingError(
                f"{shown} declares app function {key!r} but lambdas/{key}/ does not exist: "
                f"create it (handler.py and smoke_checks.json, README: Adding a function) or "
                f"remove {key!r} from app_function_keys"
            )
    for name in present:
        if name not in apps and name not in pipeline:
            raise PackagingError(
                f"lambdas/{name}/ is not a declared function: add {name!r} to app_function_keys "
                f"in {shown} (README: Adding a function), or remove the directory"
            )
    return apps


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; build outputs are shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def built_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds convention) pins the timestamp when set.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def working_tree_id(artifacts: dict[str, Any]) -> str:
    """A 40-hex id for sources that have no commit yet: the same sources always give the same id."""
    digest = hashlib.sha1(usedforsecurity=False)
    for name in sorted(artifacts):
        digest.update(f"{name}:{artifacts[name]['sha256']}\n".encode())
    return digest.hexdigest()


def project_python_runtime(root: Path = ROOT) -> str:
    """The python_runtime variable's default in terraform/variables.tf (what Terraform deploys)."""
    variables = root / "terraform" / "variables.tf"
    try:
        text = variables.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackagingError(
            f"cannot read {variables} ({exc.strerror}) for the python_runtime default that "
            f"{REQUIREMENTS} files are installed for; pass --python-runtime python3.12 (or 3.13)"
        ) from None
    block = re.search(r'variable\s+"python_runtime"\s*\{(.*?)\n\}', text, re.DOTALL)
    default = block and re.search(r'^\s*default\s*=\s*"([^"]*)"', block.group(1), re.MULTILINE)
    if not default:
        raise PackagingError(
            f'{variables} has no variable "python_runtime" with a default = "python3.X"; '
            "restore it or pass --python-runtime python3.12 (or 3.13)"
        )
    return default.group(1)


def runtime_python_version(runtime: str) -> str:
    match = RUNTIME_RE.match(runtime)
    if not match:
        raise PackagingError(
            f"python runtime {runtime!r} is not a Lambda Python runtime name such as python3.12"
        )
    return match.group(1)


def pinned_requirements(path: Path) -> dict[str, str]:
    """{normalised name: version} of a requirements file whose every requirement is pinned with ==.

    Options pip understands (--hash, --index-url...) pass through; nested files (-r, -c, -e) are
    refused: the cache key is this one file's bytes, so everything it installs must be in it.
    """
    shown = _shown(path)
    pins: dict[str, str] = {}
    logical = re.sub(r"\\\r?\n", " ", path.read_text(encoding="utf-8"))
    for raw in logical.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            if option in _NESTED_OPTIONS or option[:2] in ("-r", "-c", "-e"):
                raise PackagingError(
                    f"{shown}: {option} is not supported; list every requirement in this one "
                    "file, pinned with =="
                )
            continue
        requirement = re.sub(r"\s--hash[=\s]\S+", "", f" {line}").strip()
        match = _PIN_RE.match(requirement)
        if not match:
            raise PackagingError(
                f"{shown}: {requirement!r} is not pinned exactly; write "
                "NAME==VERSION (e.g. fastjsonschema==2.21.1) so every build installs the same code"
            )
        pins[_normalise(match["name"])] = match["version"]
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _shown(requirements: Path) -> str:
    return requirements.relative_to(requirements.parents[2]).as_posix()  # lambdas/<name>/...


def install_requirements(requirements: Path, python_version: str, cache: Path) -> Path:
    """The directory holding requirements installed for Lambda's platform, from the cache when
    the same file was installed for the same platform and Python before (no pip run then)."""
    pins = pinned_requirements(requirements)
    key = hashlib.sha256(
        "\n".join([DEPS_LAYOUT, PLATFORM, "cp", python_version, ""]).encode()
        + requirements.read_bytes()
    ).hexdigest()[:32]
    target = cache / key
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=cache))
    try:
        _pip_install(requirements, python_version, staging)
        _strip_install_noise(staging)
        _check_all_pinned(requirements, staging, pins)
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():  # else a concurrent build installed the same tree first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pip_install(requirements: Path, python_version: str, target: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",  # bytecode is per-interpreter noise; Lambda compiles on import
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    # A user's pip configuration may say where to install (PIP_USER, PIP_TARGET...): not here.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_REQUIRE_VIRTUALENV")
    }
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise PackagingError(_pip_failure(requirements, python_version, proc))


def _pip_failure(
    requirements: Path, python_version: str, proc: subprocess.CompletedProcess[str]
) -> str:
    shown = _shown(requirements)
    output = f"{proc.stdout}\n{proc.stderr}"
    missing = re.search(r"No matching distribution found for (\S+)", output)
    if missing:
        found = re.search(
            rf"requirement {re.escape(missing.group(1))} \(from versions: ([^)]*)\)", output
        )
        versions = found.group(1).strip() if found else "none"
        return (
            f"{shown}: no wheel of {missing.group(1)} for Lambda's platform ({PLATFORM}, CPython "
            f"{python_version}); versions with a usable wheel: {versions or 'none'}. Pin one of "
            "those, or replace the package with one that publishes manylinux or pure-Python wheels"
        )
    if "DO NOT MATCH THE HASHES" in output:
        bad = re.search(r"^\s+(\S+) from ", output, re.MULTILINE)
        what = bad.group(1) if bad else "a package"
        return (
            f"{shown}: the download of {what} does not match its --hash; fix the hash (take it "
            "from PyPI) or the pinned version"
        )
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    reason = errors[0] if errors else (output.strip().splitlines() or ["no output"])[-1]
    return f"{shown}: pip could not install it (exit {proc.returncode}): {reason}"


def _strip_install_noise(site: Path) -> None:
    shutil.rmtree(site / "bin", ignore_errors=True)
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.is_file() and (
            path.name.endswith(SKIP_SUFFIXES)
            or (path.parent.name.endswith(".dist-info") and path.name in INSTALL_NOISE)
        ):
            path.unlink()


def _check_all_pinned(requirements: Path, site: Path, pins: dict[str, str]) -> None:
    """Everything pip installed is pinned in the file: a dependency of a dependency left to the
    resolver could come out newer next time, and two builds of one commit would differ."""
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        fields = dict(
            line.split(": ", 1)
            for line in metadata.read_text(encoding="utf-8").split("\n\n", 1)[0].splitlines()
            if ": " in line and not line.startswith(" ")
        )
        name, version = fields.get("Name", metadata.parent.name), fields.get("Version", "?")
        if _normalise(name) not in pins:
            raise PackagingError(
                f"{_shown(requirements)}: {name}=={version} is installed as a dependency of "
                f"another requirement but is not pinned; add the line {name}=={version} "
                "so every build installs the same version"
            )


def dependency_entries(site: Path) -> list[tuple[str, bytes]]:
    return [
        (p.relative_to(site).as_posix(), p.read_bytes())
        for p in sorted(site.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]


def check_size(name: str, zipped: bytes, unzipped_bytes: int) -> None:
    def mib(n: int) -> str:
        return f"{n / 1024 / 1024:.1f} MiB"

    if len(zipped) > MAX_ZIPPED_BYTES:
        raise PackagingError(
            f"lambdas/{name} zips to {mib(len(zipped))} ({len(zipped)} bytes), over Lambda's "
            f"{mib(MAX_ZIPPED_BYTES)} limit for a .zip package uploaded directly; drop "
            f"dependencies from lambdas/{name}/{REQUIREMENTS} or move them to a layer"
        )
    if unzipped_bytes > MAX_UNZIPPED_BYTES:
        raise PackagingError(
            f"lambdas/{name} holds {mib(unzipped_bytes)} ({unzipped_bytes} bytes) unzipped, "
            f"over Lambda's {mib(MAX_UNZIPPED_BYTES)} limit for a function's code; drop "
            f"dependencies from lambdas/{name}/{REQUIREMENTS}"
        )


def build(
    out: Path,
    commit: str | None,
    lambdas_dir: Path = LAMBDAS,
    python_runtime: str | None = None,
    deps_cache: Path | None = None,
) -> dict[str, Any]:
    """Zip every Lambda into ``out`` with a manifest; ``commit=None`` records a working-tree id.

    ``python_runtime`` (say "python3.12") picks the CPython whose wheels requirements.txt files
    get; by default the python_runtime default in terraform/variables.tf, read only when some
    Lambda has a requirements.txt.
    """
    artifacts: dict[str, Any] = {}
    apps = app_function_keys(lambdas_dir)
    for name in lambda_names(lambdas_dir):
        entries = lambda_entries(name, lambdas_dir, python_runtime, deps_cache, apps)
        data = deterministic_zip(entries)
        check_size(name, data, sum(len(d) for _, d in entries))
        atomic_write(out / f"{name}.zip", data)
        artifacts[name] = {
            "file": f"{name}.zip",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "handler": HANDLER,
        }
    if commit is None:
        commit = working_tree_id(artifacts)
    manifest = {
        "commit": commit,
        "built_at": built_at(),
        "artifacts": artifacts,
        # What a release deploys (the primary first); every other zip is a pipeline function.
        "app_functions": apps,
    }
    atomic_write(
        out / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    )
    return manifest


def git_commit(cwd: Path = ROOT) -> str:
    try:
        proc = subprocess.run(  # noqa: S603
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH is intended
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise PackagingError("git is not installed; pass --commit SHA") from None
    if proc.returncode != 0:
        raise PackagingError(
            "cannot read the commit with git rev-parse HEAD "
            f"({(proc.stderr.strip().splitlines() or ['not a git repository'])[0]}); "
            "run inside a git repository with at least one commit, or pass --commit SHA"
        )
    return proc.stdout.strip()


def resolve_commit(commit: str | None) -> str:
    commit = commit if commit is not None else git_commit()
    if not COMMIT_RE.match(commit):
        raise PackagingError(f"commit {commit!r} is not a full 40-character lowercase hex SHA")
    return commit


execution_input = contract.execution_input


def source_zip(payload: dict[str, Any]) -> bytes:
    return deterministic_zip(
        [(contract.INPUT_FILE, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())]
    )


def _put(
    s3: Any, bucket: str, key: str, data: bytes, commit: str, *, force: bool, immutable: bool
) -> str:
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(data).hexdigest()
    if immutable:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
        else:
            existing = head.get("Metadata", {}).get("sha256")
            if existing == digest:
                return "unchanged"
            if not force:
                raise PackagingError(
                    f"s3://{bucket}/{key} already exists with sha256 {existing}, not {digest}; "
                    "release artifacts are immutable (pass --force to overwrite)"
                )
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=data,
        ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
        Metadata={"sha256": digest, "commit": commit},
        ContentType="application/zip" if key.endswith(".zip") else "application/json",
    )
    return "uploaded"


def upload(
    bucket: str,
    commit: str,
    out: Path,
    *,
    poll_interval: int,
    max_polls: int,
    force: bool = False,
    s3: Any = None,
    before_trigger: Any = None,
    python_runtime: str | None = None,
    manifest: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload the release, pipeline/source.zip last. before_trigger (local fault injection only)
    runs after the artifacts are up and before the object that starts the pipeline. `manifest`:
    the zips in `out` were built for this commit already (one build per release). `review`: the
    reviewed plan the execution input carries (read_review)."""
    if review is not None:
        try:
            review = contract.review_record(review)
        except contract.ContractError as exc:
            raise PackagingError(str(exc)) from None
    if manifest is None:
        manifest = build(out, commit, python_runtime=python_runtime)
    elif manifest["commit"] != commit:
        raise PackagingError(f"the zips in {out} were built for {manifest['commit']}, not {commit}")
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    # Every app function's zip (app.zip first, the one the execution input names), then the
    # manifest, then the object that starts the pipeline.
    results = {
        contract.artifact_key(commit, name): _put(
            s3,
            bucket,
            contract.artifact_key(commit, name),
            (out / f"{name}.zip").read_bytes(),
            commit,
            force=force,
            immutable=True,
        )
        for name in manifest.get("app_functions", [APP])
    }
    results.update(
        {
            # The manifest carries built_at, so compare the artifact, not the manifest bytes.
            contract.manifest_key(commit): _put(
                s3,
                bucket,
                contract.manifest_key(commit),
                (out / "manifest.json").read_bytes(),
                commit,
                force=True,
                immutable=False,
            ),
        }
    )
    if before_trigger is not None:
        before_trigger()
    # Last, because creating this object starts the pipeline.
    payload = execution_input(bucket, commit, poll_interval, max_polls, review)
    results[SOURCE_KEY] = _put(
        s3, bucket, SOURCE_KEY, source_zip(payload), commit, force=True, immutable=False
    )
    return {
        "commit": commit,
        "bucket": bucket,
        "objects": results,
        "app_sha256": manifest["artifacts"][APP]["sha256"],
    }


def read_review(path: Path) -> dict[str, Any]:
    """The reviewed plan from the file `plan-review check --provenance-out` wrote (--reviewed)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackagingError(
            f"cannot read --reviewed {path}: {exc.strerror}; pass the file "
            "release-tooling plan-review check --provenance-out wrote"
        ) from None
    except ValueError as exc:
        raise PackagingError(f"--reviewed {path} is not JSON ({exc})") from None
    try:
        return contract.review_record(data, f"--reviewed {path}")
    except contract.ContractError as exc:
        raise PackagingError(str(exc)) from None


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--out", type=Path, default=ROOT / "build", help="output directory (default build/)"
    )
    common.add_argument("--commit", help="40-hex commit SHA (default: git rev-parse HEAD)")
    common.add_argument(
        "--python-runtime",
        help="Lambda runtime whose wheels requirements.txt files get, e.g. python3.13 "
        "(default: python_runtime's default in terraform/variables.tf)",
    )
    sub.add_parser("build", parents=[common], help="build zips and manifest (default)")
    up = sub.add_parser("upload", parents=[common], help="build and upload a release")
    up.add_argument("--bucket", required=True, help="artifact bucket name")
    up.add_argument(
        "--poll-interval", type=positive_int, default=15, help="seconds between deployment polls"
    )
    up.add_argument(
        "--max-polls", type=positive_int, default=80, help="polls before a deployment times out"
    )
    up.add_argument(
        "--force", action="store_true", help="overwrite a release whose app.zip differs"
    )
    up.add_argument(
        "--reviewed",
        type=Path,
        help="the reviewed plan this release applied (the file plan-review check "
        "--provenance-out wrote): its digest and pull request go into the execution input and "
        "the release notification",
    )
    if not argv or argv[0] not in ("build", "upload", "-h", "--help"):
        argv = ["build", *argv]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "upload":
            commit = resolve_commit(args.commit)
            review = read_review(args.reviewed) if args.reviewed else None
            result = upload(
                args.bucket,
                commit,
                args.out,
                poll_interval=args.poll_interval,
                max_polls=args.max_polls,
                force=args.force,
                python_runtime=args.python_runtime,
                review=review,
            )
            print(json.dumps(result, indent=2))
        else:
            # A build needs no commit (a fresh repository has none): the manifest then records
            # an id derived from the zips. Releases always name a real commit.
            try:
                commit = resolve_commit(args.commit)
            except PackagingError as exc:
                if args.commit is not None:
                    raise
                note = f"package.py: note: {exc}; recording a working-tree id instead"
                print(note, file=sys.stderr)
                commit = None
            manifest = build(args.out, commit, python_runtime=args.python_runtime)
            for name, entry in manifest["artifacts"].items():
                path = args.out / entry["file"]
                print(f"{path}  {entry['size']:>7} bytes  sha256 {entry['sha256']}  ({name})")
    except PackagingError as exc:
        print(f"package.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
