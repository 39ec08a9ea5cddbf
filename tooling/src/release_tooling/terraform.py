#!/usr/bin/env python3
"""Run Terraform for both roots of this repository the same way locally and in CI.

Roots: terraform/ (the release pipeline, S3 backend) and terraform/bootstrap/ (state bucket and CI
roles, local state, applied once by an administrator).

  init [--backend]   init both roots without a backend (lint), or the main root with its S3 backend
  validate           init -backend=false + validate, both roots
  plan               main root: build/terraform.tfplan, plan.json, plan.txt, plan.exitcode
  apply              main root: apply build/terraform.tfplan (the reviewed plan, nothing else)
  drift              main root: like plan, into build/drift.*, for scheduled drift detection

Environment:
  TF_PROVIDER_MIRROR  filesystem provider mirror, passed as -plugin-dir (unset: the first mirror
                      holding hashicorp/aws among /opt/tf-plugins and Terraform's implied local
                      mirror directories, else the public registry; one line says which)
  TF_PROVIDER_MIRROR_SEARCH  os.pathsep list of directories searched instead of those defaults
  TF_STATE_BUCKET     state bucket (terraform/bootstrap output state_bucket) for the S3 backend
  AWS_REGION          region of the state bucket
  TF_STATE_KEY        state object key (default release-pipeline/terraform.tfstate)
  TF_STATE_KMS_KEY_ARN  state key (terraform/bootstrap output state_kms_key_arn), the backend's
                      kms_key_id: with encrypt=true and no key, S3 would store state with SSE-S3
  TF_VAR_FILES        extra -var-file paths for plan/drift, separated by os.pathsep (':' on Linux)
  TERRAFORM_BIN       terraform executable (default: terraform on PATH)

Exit codes follow `terraform plan -detailed-exitcode` for plan and drift: 0 no changes, 1 error,
2 changes. Every other command exits 0 on success and 1 on error.

Standard library only: this runs before any virtualenv exists (pre-commit, CI bootstrap).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import project

ROOT = project.ROOT
MAIN_ROOT = ROOT / "terraform"
BOOTSTRAP_ROOT = MAIN_ROOT / "bootstrap"
BUILD_DIR = ROOT / "build"

DEFAULT_STATE_KEY = "release-pipeline/terraform.tfstate"


class WrapperError(Exception):
    """A problem the user fixes (missing env var, missing file); printed as one line, exit 1."""


class TerraformFailed(Exception):
    """terraform exited with an error; its own output already explains why."""

    def __init__(self, command: Sequence[str], returncode: int) -> None:
        super().__init__(f"{' '.join(command)} exited with {returncode}")
        self.returncode = returncode


@dataclass(frozen=True)
class Settings:
    terraform: str
    plugin_dir: str | None
    var_files: tuple[Path, ...]
    env: Mapping[str, str]


def terraform_binary(env: Mapping[str, str]) -> str:
    """The terraform executable: TERRAFORM_BIN, else terraform, looked up on env's PATH."""
    terraform = env.get("TERRAFORM_BIN") or "terraform"
    resolved = shutil.which(terraform, path=env.get("PATH"))
    if resolved is None:
        raise WrapperError(
            f"terraform executable {terraform!r} not found on PATH; install Terraform >= 1.10 "
            "(https://developer.hashicorp.com/terraform/install) or set TERRAFORM_BIN"
        )
    return resolved


def settings_from(env: Mapping[str, str], cli_var_files: Sequence[str], *, say=None) -> Settings:
    """Binary, provider source and var files from the environment; `say` gets the line naming
    the provider source (default: printed on stderr)."""
    resolved = terraform_binary(env)
    mirror, said = provider_source(env)
    if say is None:
        print(said, file=sys.stderr, flush=True)
    else:
        say(said)
    return Settings(
        terraform=resolved,
        plugin_dir=mirror,
        var_files=var_files_from(env, cli_var_files),
        env=env,
    )


# Where provider mirrors are kept: the directory these machines and CI images carry, then the
# implied local mirror directories Terraform itself searches on Linux/macOS (CLI configuration
# docs, "Implied Local Mirror Directories").
MIRROR_CANDIDATES = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
AWS_PROVIDER_DIR = Path("registry.terraform.io") / "hashicorp" / "aws"
NO_PROVIDER_HINT = (
    "terraform could not get the AWS provider: no provider mirror was found and the public "
    "registry is unreachable; set TF_PROVIDER_MIRROR to a directory holding "
    "registry.terraform.io/hashicorp/aws (made with `terraform providers mirror DIR`)"
)


def provider_source(env: Mapping[str, str]) -> tuple[str | None, str]:
    """The -plugin-dir to use (None: the public registry) and one line saying which."""
    explicit = env.get("TF_PROVIDER_MIRROR") or None
    if explicit is not None:
        if not Path(explicit).is_dir():
            raise WrapperError(
                f"TF_PROVIDER_MIRROR={explicit!r} is not a directory; point it at a provider "
                "mirror (e.g. made with `terraform providers mirror`) or unset it to use the "
                "public registry"
            )
        path = str(Path(explicit).resolve())
        return path, f"terraform providers: mirror {path} (TF_PROVIDER_MIRROR)"
    home = env.get("HOME") or os.path.expanduser("~")
    searched = env.get("TF_PROVIDER_MIRROR_SEARCH")  # os.pathsep list replacing the defaults
    candidates = searched.split(os.pathsep) if searched else MIRROR_CANDIDATES
    for candidate in filter(None, candidates):
        path = Path(candidate.replace("~", home, 1))
        if (path / AWS_PROVIDER_DIR).is_dir():
            resolved = str(path.resolve())
            return (
                resolved,
                f"terraform providers: mirror {resolved} (found; TF_PROVIDER_MIRROR overrides)",
            )
    return (
        None,
        "terraform providers: public registry (no mirror found; TF_PROVIDER_MIRROR sets one)",
    )


def provider_unreachable(output: str) -> bool:
    """terraform init's output when neither a mirror nor the registry could serve a provider."""
    return "Failed to query available provider packages" in output or (
        "could not connect to registry" in output.lower()
    )


def var_files_from(env: Mapping[str, str], cli_var_files: Sequence[str]) -> tuple[Path, ...]:
    """--var-file options first, then TF_VAR_FILES; relative paths start at the working dir."""
    from_env = [part for part in env.get("TF_VAR_FILES", "").split(os.pathsep) if part.strip()]
    files = []
    for raw in [*cli_var_files, *from_env]:
        path = Path(raw).expanduser().resolve()
        if not path.is_file():
            source = "--var-file" if raw in cli_var_files else "TF_VAR_FILES"
            raise WrapperError(f"var file {raw!r} (from {source}) does not exist")
        files.append(path)
    return tuple(files)


def backend_config(env: Mapping[str, str]) -> list[str]:
    """-backend-config arguments for the main root's partial `backend "s3" {}` block."""
    missing = [name for name in ("TF_STATE_BUCKET", "AWS_REGION") if not env.get(name, "").strip()]
    kms_key = env.get("TF_STATE_KMS_KEY_ARN", "").strip()
    if not missing and not kms_key:
        # encrypt=true without kms_key_id sends SSE-S3 (AES256), overriding the bucket's default
        # SSE-KMS key (Terraform S3 backend docs, "kms_key_id"; Amazon S3 User Guide, "Setting
        # default server-side encryption behavior": a request's own SSE header wins).
        raise WrapperError(
            "TF_STATE_KMS_KEY_ARN is not set; the S3 backend needs the state key's ARN "
            "(terraform/bootstrap output state_kms_key_arn, e.g. "
            "arn:aws:kms:us-east-2:123456789012:key/...) so state is encrypted with it"
        )
    if kms_key and not kms_key.startswith("arn:"):
        raise WrapperError(
            f"TF_STATE_KMS_KEY_ARN={kms_key!r} is not a KMS key ARN; use terraform/bootstrap's "
            "output state_kms_key_arn (arn:aws:kms:<region>:<account>:key/<id>)"
        )
    if missing:
        raise WrapperError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; "
            "the S3 backend needs TF_STATE_BUCKET (terraform/bootstrap output state_bucket, "
            "e.g. orders-service-tfstate-123456789012) and AWS_REGION (the bucket's region, "
            "e.g. us-east-2)"
        )
    settings = {
        "bucket": env["TF_STATE_BUCKET"].strip(),
        "key": env.get("TF_STATE_KEY", "").strip() or DEFAULT_STATE_KEY,
        "region": env["AWS_REGION"].strip(),
        "use_lockfile": "true",
        "encrypt": "true",
        "kms_key_id": kms_key,
    }
    return [f"-backend-config={name}={value}" for name, value in settings.items()]


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def execute(
    settings: Settings,
    root: Path,
    args: Sequence[str],
    *,
    capture: bool = False,
    stdout_to: Path | None = None,
) -> subprocess.CompletedProcess:
    """terraform -chdir=<root> <args> with the settings' environment (never prompting).

    capture: stdout and stderr come back as text; stdout_to: stdout goes to that file. The one
    place a terraform process is started, for CI's roots and the local rehearsal's alike.
    """
    command = [settings.terraform, f"-chdir={root}", *args]
    env = {**settings.env, "TF_INPUT": "0"}
    if stdout_to is not None:
        with stdout_to.open("wb") as handle:
            return subprocess.run(command, env=env, stdout=handle, check=False)
    return subprocess.run(command, env=env, capture_output=capture, text=True, check=False)


def init_args(settings: Settings, *extra: str) -> list[str]:
    """terraform init's arguments: never prompting, providers from the mirror when there is one."""
    args = ["init", "-input=false"]
    if settings.plugin_dir:
        args.append(f"-plugin-dir={settings.plugin_dir}")
    return [*args, *extra]


def init_failure(proc: subprocess.CompletedProcess) -> WrapperError | None:
    """The one-line error for an init that failed for want of a provider, else None."""
    if proc.returncode != 0 and provider_unreachable((proc.stdout or "") + (proc.stderr or "")):
        return WrapperError(NO_PROVIDER_HINT)
    return None


def run(
    settings: Settings,
    root: Path,
    args: Sequence[str],
    *,
    stdout_to: Path | None = None,
    ok: Sequence[int] = (0,),
) -> int:
    shown = ["terraform", f"-chdir={relative(root)}", *args]
    print(
        "+ " + " ".join(shown) + (f" > {relative(stdout_to)}" if stdout_to else ""),
        file=sys.stderr,
        flush=True,
    )
    returncode = execute(settings, root, args, stdout_to=stdout_to).returncode
    if returncode not in ok:
        raise TerraformFailed(shown, returncode)
    return returncode


def init(settings: Settings, root: Path, *, with_backend: bool) -> None:
    if with_backend:
        # -reconfigure: the environment decides the backend; never prompt to migrate state.
        args = init_args(settings, "-reconfigure", *backend_config(settings.env))
    else:
        args = init_args(settings, "-backend=false")
    print("+ terraform " + " ".join([f"-chdir={relative(root)}", *args]), file=sys.stderr)
    proc = execute(settings, root, args, capture=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        failure = init_failure(proc)
        if failure is not None:
            raise failure
        sys.stderr.write(proc.stderr)
        raise TerraformFailed(["terraform", *args], proc.returncode)


def package(settings: Settings, *, only_if_missing: bool) -> None:
    """Build the Lambda zips the main root hashes (filebase64sha256 fails on a missing file).

    validate only needs the files to exist; plan always rebuilds so the plan reflects the
    checked-out sources and never a stale build/ from another commit.
    """
    if only_if_missing and builds_present():
        return
    from . import package as packager  # in-process: one build, no second interpreter

    print(
        f"+ release-tooling package build --out {relative(BUILD_DIR)}", file=sys.stderr, flush=True
    )
    if packager.main(["build", "--out", str(BUILD_DIR)]) != 0:
        raise WrapperError("packaging the Lambdas failed; fix the packaging error above")


def builds_present() -> bool:
    manifest = BUILD_DIR / "manifest.json"
    try:
        artifacts = json.loads(manifest.read_text(encoding="utf-8"))["artifacts"]
        return all((BUILD_DIR / entry["file"]).is_file() for entry in artifacts.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def var_file_args(settings: Settings) -> list[str]:
    return [f"-var-file={path}" for path in settings.var_files]


def plan_outputs(name: str) -> dict[str, Path]:
    return {
        "plan": BUILD_DIR / ("terraform.tfplan" if name == "plan" else f"{name}.tfplan"),
        "json": BUILD_DIR / f"{name}.json",
        "text": BUILD_DIR / f"{name}.txt",
        "exitcode": BUILD_DIR / f"{name}.exitcode",
    }


def plan(settings: Settings, *, name: str, skip_init: bool, extra: Sequence[str]) -> int:
    """terraform plan -detailed-exitcode, saved with its JSON and text renderings under build/."""
    outputs = plan_outputs(name)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # An old plan must never be applied or commented on after a failed run.
    for path in outputs.values():
        path.unlink(missing_ok=True)
    try:
        if not skip_init:
            init(settings, MAIN_ROOT, with_backend=True)
        package(settings, only_if_missing=False)
        code = run(
            settings,
            MAIN_ROOT,
            [
                "plan",
                "-input=false",
                "-detailed-exitcode",
                f"-out={outputs['plan']}",
                *var_file_args(settings),
                *extra,
            ],
            ok=(0, 2),
        )
        run(settings, MAIN_ROOT, ["show", "-json", str(outputs["plan"])], stdout_to=outputs["json"])
        run(
            settings,
            MAIN_ROOT,
            ["show", "-no-color", str(outputs["plan"])],
            stdout_to=outputs["text"],
        )
    except (WrapperError, TerraformFailed):
        outputs["exitcode"].write_text("1\n", encoding="utf-8")
        raise
    outputs["exitcode"].write_text(f"{code}\n", encoding="utf-8")
    summary = "no changes" if code == 0 else "changes"
    print(
        f"{name}: {summary} (exit {code}); "
        f"wrote {', '.join(relative(path) for path in outputs.values())}",
        file=sys.stderr,
    )
    return code


def apply(settings: Settings, *, skip_init: bool) -> int:
    plan_file = plan_outputs("plan")["plan"]
    if not plan_file.is_file():
        raise WrapperError(
            f"no saved plan at {relative(plan_file)}; run `make plan` first "
            "(apply only ever applies the plan that was reviewed)"
        )
    if not skip_init:
        init(settings, MAIN_ROOT, with_backend=True)
    # Terraform itself refuses the plan if the state changed since it was made.
    run(settings, MAIN_ROOT, ["apply", "-input=false", str(plan_file)])
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="release-tooling terraform",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Environment: TF_PROVIDER_MIRROR, TF_STATE_BUCKET, AWS_REGION, TF_STATE_KEY, "
        "TF_VAR_FILES, TERRAFORM_BIN (see the module docstring).",
    )
    parser.add_argument(
        "--var-file",
        action="append",
        default=[],
        metavar="FILE",
        help="extra -var-file for plan/drift (repeatable; TF_VAR_FILES adds more)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init_parser = commands.add_parser(
        "init", help="init both roots without backend, or the main root with --backend"
    )
    init_parser.add_argument(
        "--backend",
        action="store_true",
        help="init terraform/ with the S3 backend from TF_STATE_BUCKET/AWS_REGION",
    )
    commands.add_parser(
        "validate", help="init -backend=false and validate both roots (builds zips if missing)"
    )
    for name, help_text in (
        (
            "plan",
            "plan the main root into build/terraform.tfplan (+ plan.json, plan.txt, plan.exitcode)",
        ),
        ("drift", "plan the main root into build/drift.* to detect changes made outside Terraform"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument(
            "--skip-init",
            action="store_true",
            help="the root is already initialised (e.g. a local backend)",
        )
        sub.add_argument(
            "extra", nargs="*", metavar="-- ARG", help="extra terraform plan arguments after --"
        )
    apply_parser = commands.add_parser("apply", help="apply build/terraform.tfplan")
    apply_parser.add_argument(
        "--skip-init", action="store_true", help="the root is already initialised"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from(os.environ if env is None else env, args.var_file)
        if args.command == "init":
            if args.backend:
                init(settings, MAIN_ROOT, with_backend=True)
            else:
                for root in (MAIN_ROOT, BOOTSTRAP_ROOT):
                    init(settings, root, with_backend=False)
            return 0
        if args.command == "validate":
            package(settings, only_if_missing=True)
            for root in (MAIN_ROOT, BOOTSTRAP_ROOT):
                init(settings, root, with_backend=False)
                run(settings, root, ["validate"])
            return 0
        if args.command in ("plan", "drift"):
            return plan(settings, name=args.command, skip_init=args.skip_init, extra=args.extra)
        return apply(settings, skip_init=args.skip_init)
    except WrapperError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except TerraformFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
