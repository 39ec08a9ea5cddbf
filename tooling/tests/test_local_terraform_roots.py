"""The local rehearsal's Terraform runs through the shared runner (release_tooling.terraform)
with its local-only parts: an override per call (endpoint, credentials, local state), a TF_DATA_DIR
per root, and no AWS_* variable. A fake `terraform` records what it was given."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from release_tooling import local
from release_tooling import terraform as tf_runner
from release_tooling.local import terraform_roots

FAKE_TERRAFORM = """\
#!PYTHON
import json, os, stat, sys
from pathlib import Path

args = sys.argv[1:]
root = Path(next(a for a in args if a.startswith("-chdir=")).split("=", 1)[1])
override = root / "local_override.tf"
record = {
    "args": args,
    "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "TF_"))},
    "override": override.read_text() if override.exists() else None,
    "override_mode": stat.S_IMODE(override.stat().st_mode) if override.exists() else None,
}
with open(os.environ["FAKE_TF_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(record) + "\\n")
if "output" in args:
    print(json.dumps({"bucket": {"value": "b"}, "roles": {"value": ["x"]}}))
if "init" in args and os.environ.get("FAKE_TF_INIT_OUTPUT"):
    print(os.environ["FAKE_TF_INIT_OUTPUT"])
    sys.exit(1)
sys.exit(int(os.environ.get("FAKE_TF_EXIT", "0")))
"""
CREDENTIALS = {
    "aws_access_key_id": "AKIDLOCAL",
    "aws_secret_access_key": "secret-local",
    "aws_session_token": "token-local",
}
URL = "http://127.0.0.1:4599"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake terraform named by TERRAFORM_BIN, .local/ in tmp_path, a mirror; returns the log."""
    binary = tmp_path / "bin" / "fake-terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM.replace("PYTHON", sys.executable, 1), encoding="utf-8")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("TERRAFORM_BIN", str(binary))
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(mirror))
    monkeypatch.setenv("FAKE_TF_LOG", str(log))
    monkeypatch.setenv("AWS_PROFILE", "a-real-account")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    monkeypatch.setattr(terraform_roots, "STATE_DIR", state_dir)
    return log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_a_local_call_goes_through_the_shared_runner_with_its_override(
    fake: Path, tmp_path: Path
) -> None:
    root = local.Root(tmp_path / "tf", "main")
    root.path.mkdir()

    out = local.terraform_ok(["validate"], URL, CREDENTIALS, "validate", root)

    (call,) = calls(fake)
    assert call["args"] == [f"-chdir={root.path}", "validate"]
    # Endpoint, credentials and the state file of this root; readable by the user only.
    assert call["override_mode"] == 0o600
    assert f'path = "{tmp_path / "state" / "terraform.tfstate"}"' in call["override"]
    assert 'access_key                  = "AKIDLOCAL"' in call["override"]
    assert 'token                       = "token-local"' in call["override"]
    for service in terraform_roots.TF_ENDPOINTS:
        assert f'{service:<12} = "{URL}"' in call["override"]
    # Never a real account; a data dir of its own; never prompting.
    assert not [name for name in call["env"] if name.startswith("AWS_")]
    assert call["env"]["TF_DATA_DIR"] == str(tmp_path / "state" / "terraform-data")
    assert call["env"]["TF_INPUT"] == "0"
    assert not root.override.exists()  # it held credentials: gone once terraform exits
    assert out == ""
    assert "$ terraform validate  (main)" in (tmp_path / "state" / "terraform.log").read_text()


def test_init_uses_the_runners_provider_source(fake: Path, tmp_path: Path) -> None:
    root = local.Root(tmp_path / "tf", "bootstrap-other")
    root.path.mkdir()

    local.terraform_ok(terraform_roots.init_args(), URL, CREDENTIALS, "init", root)

    (call,) = calls(fake)
    mirror = str((tmp_path / "mirror").resolve())
    assert call["args"][1:] == [
        "init",
        "-input=false",
        f"-plugin-dir={mirror}",
        "-reconfigure",
        "-no-color",
    ]
    assert call["env"]["TF_DATA_DIR"] == str(tmp_path / "state" / "terraform-data-bootstrap-other")
    assert f'path = "{tmp_path / "state" / "bootstrap-other.tfstate"}"' in call["override"]


def test_outputs_are_read_as_values(fake: Path, tmp_path: Path) -> None:
    root = local.Root(tmp_path / "tf", "main")
    root.path.mkdir()
    assert local.terraform_outputs(URL, CREDENTIALS, root) == {"bucket": "b", "roles": ["x"]}


def test_a_failed_call_names_what_failed_and_keeps_no_override(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = local.Root(tmp_path / "tf", "main")
    root.path.mkdir()
    monkeypatch.setenv("FAKE_TF_EXIT", "1")
    with pytest.raises(local.LocalError, match="terraform apply failed against the local endpoint"):
        local.terraform_ok(["apply"], URL, CREDENTIALS, "apply", root)
    assert not root.override.exists()


def test_an_unreachable_registry_is_the_runners_one_line_hint(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = local.Root(tmp_path / "tf", "main")
    root.path.mkdir()
    monkeypatch.setenv("FAKE_TF_INIT_OUTPUT", "Error: Failed to query available provider packages")
    with pytest.raises(local.LocalError) as raised:
        local.terraform_ok(["init"], URL, CREDENTIALS, "init", root)
    assert str(raised.value) == tf_runner.NO_PROVIDER_HINT


def test_a_missing_terraform_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TERRAFORM_BIN", str(tmp_path / "no-such-terraform"))
    with pytest.raises(local.LocalError, match="not found on PATH.*TERRAFORM_BIN"):
        terraform_roots.init_args()


def test_the_bootstrap_override_leaves_out_only_the_state_buckets_configuration() -> None:
    text = local.override_text(URL, Path("/s/bootstrap.tfstate"), CREDENTIALS, local.BOOTSTRAP)
    left_out = sorted(line for line in text.splitlines() if line.startswith("resource "))
    assert left_out == [
        f'resource "aws_s3_bucket_{kind}" "state" {{'
        for kind in sorted(
            (
                "lifecycle_configuration",
                "notification",
                "ownership_controls",
                "policy",
                "public_access_block",
                "server_side_encryption_configuration",
                "versioning",
            )
        )
    ]
    assert text.count("count = 0") == len(left_out)
    main = local.override_text(URL, Path("/s/terraform.tfstate"), CREDENTIALS, local.MAIN)
    assert "count = 0" not in main
