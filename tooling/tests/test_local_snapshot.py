"""Warm `local up` (issue #14): the snapshot key, its refusals, what `down` keeps and `--purge`
removes, the endpoint state's round trip, and which path `up` takes. End to end (down, warm up, a
plan with no changes, a release) runs in the generated repository's rehearsal."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from release_tooling.local import common, environment, snapshot
from release_tooling.local_aws import backend_state

MANIFEST = {"artifacts": {"app": {"sha256": "a" * 64}, "deploy": {"sha256": "b" * 64}}}


@pytest.fixture
def tf_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the baked repository's terraform/ (both roots), and a fixed Terraform version."""
    target = tmp_path / "terraform"
    shutil.copytree(common.TF_DIR, target, ignore=shutil.ignore_patterns(".terraform"))
    monkeypatch.setattr(snapshot, "terraform_version", lambda environ=None: "1.11.4")
    return target


def key(tf_dir: Path, manifest: dict = MANIFEST, environ: dict | None = None) -> str:
    return snapshot.key_of(snapshot.inputs(manifest, environ or {}, tf_dir))


def test_the_key_changes_with_every_input(tf_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = key(tf_dir)
    assert key(tf_dir) == base  # stable

    def changed_file(relative: str) -> str:
        path = tf_dir / relative
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        try:
            return key(tf_dir)
        finally:
            path.write_bytes(original)

    keys = {
        "main .tf": changed_file("lambda.tf"),
        "bootstrap .tf": changed_file("bootstrap/iam.tf"),
        "variables": changed_file("variables.tf"),
    }
    for root in ("", "bootstrap/"):
        lock = tf_dir / f"{root}.terraform.lock.hcl"
        if lock.exists():
            keys[f"the lock file of {root or 'terraform/'}"] = changed_file(f"{root}{lock.name}")
        else:
            lock.write_text('provider "registry.terraform.io/hashicorp/aws" {}\n', "utf-8")
            keys[f"the lock file of {root or 'terraform/'}"] = key(tf_dir)
            lock.unlink()
    keys["a TF_VAR_ variable"] = key(tf_dir, environ={"TF_VAR_notification_email": "a@b.example"})
    zips = json.loads(json.dumps(MANIFEST))
    zips["artifacts"]["deploy"]["sha256"] = "c" * 64
    keys["a Lambda zip"] = key(tf_dir, manifest=zips)
    monkeypatch.setattr(snapshot, "terraform_version", lambda environ=None: "1.12.0")
    keys["the Terraform version"] = key(tf_dir)
    monkeypatch.setattr(snapshot, "terraform_version", lambda environ=None: "1.11.4")

    assert base not in keys.values(), keys
    assert len(set(keys.values())) == len(keys), keys
    assert key(tf_dir) == base  # every change undone: the same key again


def test_what_the_local_run_writes_into_terraform_is_not_an_input(tf_dir: Path) -> None:
    base = key(tf_dir)
    (tf_dir / "local_override.tf").write_text("# written per call\n", encoding="utf-8")
    (tf_dir / ".terraform").mkdir()
    (tf_dir / ".terraform" / "terraform.tfstate").write_text("{}", encoding="utf-8")
    (tf_dir / "bootstrap" / "terraform.tfstate").write_text("{}", encoding="utf-8")
    (tf_dir / "plan.tfplan").write_bytes(b"plan")
    assert key(tf_dir) == base
    # Environment variables other than TF_VAR_* do not count either.
    assert key(tf_dir, environ={"HOME": "/elsewhere", "LOCAL_IAM": "audit"}) == base


def fake_snapshot(directory: Path, name: str, versions: dict | None = None) -> Path:
    path = directory / name
    path.mkdir(parents=True)
    files = {}
    for file_name in (snapshot.STATE_FILE, "terraform.tfstate"):
        (path / file_name).write_bytes(b"state of " + file_name.encode())
        files[file_name] = snapshot._sha256(path / file_name)
    meta = {
        "key": name,
        "versions": versions or backend_state.versions(),
        "created": "2026-12-01T00:00:00Z",
        "files": files,
    }
    (path / snapshot.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return path


def test_a_snapshot_of_another_tooling_or_moto_is_refused_in_one_line(tmp_path: Path) -> None:
    assert snapshot.lookup("k" * 64, tmp_path) is None  # none yet
    fake_snapshot(tmp_path, "k" * 64)
    assert snapshot.lookup("k" * 64, tmp_path).path == tmp_path / ("k" * 64)

    for field, old in (("moto", "5.0.0"), ("tooling", "0.0.1+000000000000")):
        other = {**backend_state.versions(), field: old}
        name = field[0] * 64
        fake_snapshot(tmp_path, name, other)
        with pytest.raises(snapshot.SnapshotRefused) as refused:
            snapshot.lookup(name, tmp_path)
        message = str(refused.value)
        assert "\n" not in message
        assert f"{field} {old} (now {backend_state.versions()[field]})" in message


def test_a_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    path = fake_snapshot(tmp_path, "d" * 64)
    (path / "terraform.tfstate").write_bytes(b"tampered")
    found = snapshot.lookup("d" * 64, tmp_path)
    with pytest.raises(snapshot.SnapshotRefused, match="terraform.tfstate does not match"):
        snapshot.verify(found)
    (path / snapshot.STATE_FILE).unlink()
    with pytest.raises(snapshot.SnapshotRefused, match="incomplete"):
        snapshot.lookup("d" * 64, tmp_path)


class FakeEndpoint:
    """The endpoint's side of a save: busy `busy` times, then it writes the state file."""

    def __init__(self, busy: int) -> None:
        self.busy, self.calls = busy, 0

    def control(self, method: str, path: str, body: dict, timeout: float) -> dict:
        from release_tooling.local_aws import process

        self.calls += 1
        assert (method, path) == ("POST", "snapshot")
        if self.calls <= self.busy:
            raise process.EndpointError("POST snapshot: the endpoint is not idle (execution x)")
        Path(body["path"]).write_bytes(b"endpoint state")
        return {"bytes": 14, "backends": ["moto.iam.models:iam_backends"]}


def test_a_save_waits_for_the_endpoint_to_settle_and_lands_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot.time, "sleep", lambda seconds: None)
    state = tmp_path / "terraform.tfstate"
    state.write_text('{"version": 4}', encoding="utf-8")
    endpoint = FakeEndpoint(busy=2)

    saved = snapshot.save(endpoint, "f" * 64, {"inputs": 1}, {"terraform.tfstate": state}, tmp_path)

    assert endpoint.calls == 3
    assert saved.path == tmp_path / ("f" * 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f" * 64, "terraform.tfstate"]  # no temp
    assert snapshot.lookup("f" * 64, tmp_path) == saved
    snapshot.verify(saved)
    assert saved.meta["inputs"] == {"inputs": 1}
    assert saved.file(snapshot.STATE_FILE).read_bytes() == b"endpoint state"


def test_a_save_that_cannot_finish_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    from release_tooling.local_aws import process

    monkeypatch.setattr(snapshot, "IDLE_WAIT_SECONDS", 0)
    with pytest.raises(process.EndpointError, match="not idle"):
        snapshot.save(FakeEndpoint(busy=99), "f" * 64, {}, {}, tmp_path / "snaps")
    assert list((tmp_path / "snaps").iterdir()) == []


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    for n in range(snapshot.KEEP + 2):
        fake_snapshot(tmp_path, f"{n}" * 64)
        os.utime(tmp_path / (f"{n}" * 64) / snapshot.META_FILE, (1000 + n, 1000 + n))
    snapshot.prune(tmp_path, keep="0" * 64)  # the oldest, but the one just saved
    kept = sorted(p.name[0] for p in tmp_path.iterdir())
    assert kept == ["0", *[str(n) for n in range(snapshot.KEEP + 2)][-(snapshot.KEEP - 1) :]]


def test_down_keeps_the_snapshots_and_down_purge_removes_them(tmp_path: Path) -> None:
    copy = common.ScratchCopy("snapshot-down-")
    try:
        copy.environ[snapshot.SNAPSHOT_ENV] = str(tmp_path / "snapshots")
        fake_snapshot(tmp_path / "snapshots", "e" * 64)
        (copy.path / ".local").mkdir()

        down = copy.local("down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not (copy.path / ".local").exists()
        assert (tmp_path / "snapshots" / ("e" * 64) / snapshot.META_FILE).is_file()
        assert "Kept the snapshots" in down.stdout

        purged = copy.local("down", "--purge")
        assert purged.returncode == 0, purged.stdout + purged.stderr
        assert not (tmp_path / "snapshots").exists()
        assert "Purged 1 snapshot(s)" in purged.stdout
    finally:
        copy.remove()


def test_the_snapshot_directory_is_git_ignored_and_shared_by_scratch_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ignored = (common.ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"{snapshot.DIR_NAME}/" in ignored
    # A copy does not carry the snapshots along: it uses the source's directory in place.
    assert snapshot.DIR_NAME in common.SCRATCH_EXCLUDE(str(common.ROOT), [snapshot.DIR_NAME])
    monkeypatch.delenv(snapshot.SNAPSHOT_ENV, raising=False)
    copy = common.ScratchCopy("snapshot-shared-")
    try:
        assert copy.environ[snapshot.SNAPSHOT_ENV] == str(common.ROOT / snapshot.DIR_NAME)
    finally:
        copy.remove()


# -- the endpoint's state ---------------------------------------------------------------------


@pytest.fixture
def moto_state(aws):
    """moto's live backends (in-process, under mock_aws), emptied before and after."""
    from moto.core.base_backend import BackendDict

    BackendDict.reset()
    yield
    BackendDict.reset()


def zipped_handler() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_the_state_round_trips_through_a_fresh_set_of_backends(tmp_path: Path, moto_state) -> None:
    import boto3
    from moto.core.base_backend import BackendDict
    from moto.iam.models import iam_backends

    iam = boto3.client("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="snapshot-bucket")
    # moto keeps the object's body in a temporary file, which pickle cannot carry as such
    s3.put_object(Bucket="snapshot-bucket", Key="k", Body=b"object body")
    kms = boto3.client("kms")
    rsa = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
    sign = {"KeyId": rsa, "Message": b"message", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}
    signature = kms.sign(**sign)["Signature"]
    lam = boto3.client("lambda")
    fn = lam.create_function(
        FunctionName="f",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": zipped_handler()},
    )["FunctionArn"]
    done = threading.Event()
    done.set()
    adapter = {"events": [done, threading.Event()], "lock": threading.Lock(), "n": 1}

    summary = backend_state.dump(tmp_path / "state", adapter)
    assert "moto.iam.models:iam_backends" in summary["backends"]
    BackendDict.reset()
    assert iam.list_roles()["Roles"] == []

    restored = backend_state.load(tmp_path / "state")

    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["r"]
    assert s3.get_object(Bucket="snapshot-bucket", Key="k")["Body"].read() == b"object body"
    assert kms.verify(**sign, Signature=signature)["SignatureValid"]  # the same private key
    assert lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"] == fn  # by ARN
    assert [e.is_set() for e in restored["events"]] == [True, False]
    assert restored["lock"].acquire(blocking=False)  # a fresh, free lock
    assert restored["n"] == 1
    # The live BackendDicts were filled, not replaced: every module holding one sees the state.
    assert iam_backends in BackendDict._instances


def test_a_thread_in_the_state_stops_the_snapshot_naming_it(tmp_path: Path, moto_state) -> None:
    worker = threading.Thread(target=lambda: None, name="busy-worker")
    with pytest.raises(backend_state.SnapshotStateError, match="busy-worker"):
        backend_state.dump(tmp_path / "state", {"worker": worker})
    assert not (tmp_path / "state").exists()  # nothing half-written


def test_a_state_of_another_version_is_not_loaded(tmp_path: Path, moto_state, monkeypatch) -> None:
    backend_state.dump(tmp_path / "state", {})
    other = {**backend_state.versions(), "moto": "0"}
    monkeypatch.setattr(backend_state, "versions", lambda: other)
    with pytest.raises(backend_state.SnapshotStateError, match="this endpoint is"):
        backend_state.load(tmp_path / "state")
    (tmp_path / "garbage").write_bytes(b"not a pickle")
    with pytest.raises(backend_state.SnapshotStateError, match="does not load"):
        backend_state.load(tmp_path / "garbage")


def test_an_endpoint_that_cannot_load_a_state_exits_saying_why_in_one_line(tmp_path: Path) -> None:
    from release_tooling.local_aws import process

    (tmp_path / "damaged").write_bytes(b"not a pickle")
    with pytest.raises(process.EndpointError) as failed:
        process.start(tmp_path / "state", restore=tmp_path / "damaged", iam="off")
    message = str(failed.value)
    assert message.startswith("restore failed: the saved state does not load"), message
    assert "\n" not in message
    assert process.find(tmp_path / "state") is None  # nothing left running


# -- the path up takes ---------------------------------------------------------------------------
# The end to end proof (cold up, down, warm up, a plan with no changes, a release) runs in every
# generated repository's rehearsal (tests/local_pipeline/test_warm_up.py), on the environment the
# rehearsal has already applied, instead of two more cold applies here.


def test_up_restores_a_known_tree_and_cold_applies_regardless(monkeypatch, capsys) -> None:
    taken: list[str] = []
    endpoint = SimpleNamespace(url="http://127.0.0.1:1", pid=1)

    class Packaging:
        PackagingError = RuntimeError

        def build(self, out, commit):
            return {"artifacts": {"app": {}}}

    monkeypatch.setattr(environment.process, "find", lambda state_dir: None)
    monkeypatch.setattr(environment.process, "stop", lambda state_dir: None)
    monkeypatch.setattr(environment, "init_args", lambda: ["init"])
    monkeypatch.setattr(environment, "_clear_applied_state", lambda: None)
    monkeypatch.setattr(environment, "package_module", Packaging)
    monkeypatch.setattr(environment.snapshot, "inputs", lambda manifest: {"tree": 1})
    monkeypatch.setattr(environment.snapshot, "key_of", lambda described: "a" * 64)
    monkeypatch.setattr(environment.snapshot, "lookup", lambda key: "the snapshot")
    monkeypatch.setattr(
        environment.snapshot, "save", lambda *a: SimpleNamespace(meta={"save_seconds": 0.01})
    )
    monkeypatch.setattr(environment, "warm_up", lambda found, *a: taken.append(found) or endpoint)
    monkeypatch.setattr(environment, "cold_up", lambda *a: taken.append("cold") or endpoint)

    assert environment.cmd_up(SimpleNamespace(cold=False, minute_seconds=0.2)) == 0
    assert environment.cmd_up(SimpleNamespace(cold=True, minute_seconds=0.2)) == 0
    assert taken == ["the snapshot", "cold"]
    out = capsys.readouterr().out
    assert "(warm;" in out and "--cold: applying both Terraform roots" in out
