"""Terraform against the embedded endpoint: what is local-only, in one place.

The terraform process itself, the binary and the provider source come from the runner CI uses
(release_tooling.terraform). Local-only: a `local_override.tf` per root pointing the AWS provider
at the endpoint with the caller's credentials and keeping state in a local file under .local/, a
TF_DATA_DIR per root (so the real .terraform/ is untouched), and no AWS_* variable ever reaching
terraform (never a real account).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import terraform as tf_runner
from .common import BOOTSTRAP_DIR, STATE_DIR, TF_DIR, LocalError

OVERRIDE_FILE = "local_override.tf"
# Left out of the local bootstrap: the state bucket's configuration (terraform/ keeps its state in a
# local file here), whose lifecycle rule alone costs the AWS provider about a minute of waiting. The
# bucket and its key stay, as the CI roles' policies name them.
BOOTSTRAP_LEFT_OUT_FILE = "state.tf"
BOOTSTRAP_LEFT_OUT_TYPE = re.compile(r"aws_s3_bucket_\w+")
# Every service terraform/ uses; the provider sends all of them to the embedded endpoint.
TF_ENDPOINTS = (
    "cloudwatch",
    "codedeploy",
    "codepipeline",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "s3",
    "sfn",
    "sns",
    "sqs",
    "sts",
)

# Written as <root>/local_override.tf while local terraform runs (Terraform merges *_override.tf
# files over the configuration, "Override Files" in the Terraform language docs; they are
# git-ignored). The main configuration stays the one and only description of the infrastructure.
OVERRIDE_TEMPLATE = """# Written by release-tooling local; deleted when terraform exits.
terraform {
  backend "local" {
    path = "@STATE@"
  }
}

provider "aws" {
  access_key                  = "@ACCESS_KEY@"
  secret_key                  = "@SECRET_KEY@"
  token                       = "@TOKEN@"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
@ENDPOINTS@
  }
}
"""


@dataclass(frozen=True)
class Root:
    """A Terraform root as the local environment runs it: its own state file and data dir."""

    path: Path
    name: str

    @property
    def state(self) -> Path:
        return STATE_DIR / ("terraform.tfstate" if self.name == "main" else f"{self.name}.tfstate")

    @property
    def data_dir(self) -> Path:
        return STATE_DIR / (
            "terraform-data" if self.name == "main" else f"terraform-data-{self.name}"
        )

    @property
    def override(self) -> Path:
        return self.path / OVERRIDE_FILE


MAIN = Root(TF_DIR, "main")
BOOTSTRAP = Root(BOOTSTRAP_DIR, "bootstrap")


def override_text(
    endpoint_url: str, state_file: Path, credentials: dict[str, str], root: Root = MAIN
) -> str:
    lines = "\n".join(f'    {name:<12} = "{endpoint_url}"' for name in TF_ENDPOINTS)
    text = (
        OVERRIDE_TEMPLATE.replace("@STATE@", state_file.as_posix())
        .replace("@ENDPOINTS@", lines)
        .replace("@ACCESS_KEY@", credentials["aws_access_key_id"])
        .replace("@SECRET_KEY@", credentials["aws_secret_access_key"])
        .replace("@TOKEN@", credentials.get("aws_session_token", ""))
    )
    if root.path == BOOTSTRAP_DIR:
        text += bootstrap_left_out_text()
    return text


def bootstrap_left_out_text() -> str:
    """count = 0 for the state bucket's configuration resources (an override may set count).

    A whole-root apply with these left out records every output, which a -target apply would not.
    """
    blocks = []
    source = (BOOTSTRAP_DIR / BOOTSTRAP_LEFT_OUT_FILE).read_text(encoding="utf-8")
    for kind, name in re.findall(r'^resource\s+"([^"]+)"\s+"([^"]+)"', source, re.M):
        if BOOTSTRAP_LEFT_OUT_TYPE.fullmatch(kind):
            blocks.append(f'\nresource "{kind}" "{name}" ' + "{\n  count = 0\n}\n")
    return "".join(blocks)


def settings(root: Root = MAIN, environ=None) -> tf_runner.Settings:
    """The shared runner's settings for one local root: its TF_DATA_DIR, and no AWS_* variable."""
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if not k.startswith("AWS_")}  # never a real account
    env["TF_DATA_DIR"] = str(root.data_dir)  # keeps the real .terraform/ untouched
    env["TF_IN_AUTOMATION"] = "1"
    try:
        binary = tf_runner.terraform_binary(env)
        mirror, _ = tf_runner.provider_source(env)
    except tf_runner.WrapperError as exc:
        raise LocalError(str(exc)) from None
    return tf_runner.Settings(terraform=binary, plugin_dir=mirror, var_files=(), env=env)


def provider_line() -> str:
    """The runner's line naming where providers come from (mirror or registry)."""
    try:
        return tf_runner.provider_source(os.environ)[1]
    except tf_runner.WrapperError as exc:
        raise LocalError(str(exc)) from None


def init_args() -> list[str]:
    """terraform init for a local root: its local backend chosen afresh, the runner's providers."""
    return tf_runner.init_args(settings(), "-reconfigure", "-no-color")


def terraform(
    args: list[str],
    endpoint_url: str,
    credentials: dict[str, str],
    capture: bool = False,
    root: Root = MAIN,
):
    """terraform <args> in a root, with its override written for the call (and only the call)."""
    run_settings = settings(root)
    fd = os.open(root.override, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # credentials
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(override_text(endpoint_url, root.state, credentials, root))
    try:
        return tf_runner.execute(run_settings, root.path, args, capture=capture)
    finally:
        root.override.unlink(missing_ok=True)


def terraform_ok(
    args: list[str], endpoint_url: str, credentials: dict[str, str], what: str, root: Root = MAIN
) -> str:
    proc = terraform(args, endpoint_url, credentials, capture=True, root=root)
    log = STATE_DIR / "terraform.log"
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ terraform {' '.join(args)}  ({root.name})\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        if args[0] == "init" and tf_runner.init_failure(proc) is not None:
            raise LocalError(tf_runner.NO_PROVIDER_HINT)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise LocalError(
            f"terraform {what} failed against the local endpoint:\n{tail}\n(full output: {log})"
        )
    return proc.stdout


def terraform_outputs(endpoint_url: str, credentials: dict[str, str], root: Root) -> dict:
    text = terraform_ok(["output", "-json", "-no-color"], endpoint_url, credentials, "output", root)
    return {k: v["value"] for k, v in json.loads(text).items()}


def remove_overrides() -> None:
    """Overrides left by a terraform that was killed mid-call (they hold credentials)."""
    for root in (MAIN, BOOTSTRAP):
        root.override.unlink(missing_ok=True)
