import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import boto3
import pytest

from release_tooling import SCHEMA_VERSION, package
from release_tooling import project as project_paths

COMMIT = "f" * 40
ROOT = project_paths.ROOT
NAMES = package.NAMES_FILE


@pytest.fixture(scope="session")
def warm_deps_cache(tmp_path_factory):
    """lambdas/app/requirements.txt installed once for the session (one pip run)."""
    cache = tmp_path_factory.mktemp("deps-cache")
    package.dependencies_dir("app", deps_cache=cache)
    return cache


@pytest.fixture
def lambdas(tmp_path, warm_deps_cache):
    """A copy of lambdas/ we can litter with caches without touching the repo, with the
    terraform/variables.tf that names the runtime and a copy of the warm dependency cache."""
    copy = tmp_path / "lambdas"
    shutil.copytree(ROOT / "lambdas", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "terraform" / "names").mkdir(parents=True)
    shutil.copy(ROOT / "terraform" / "variables.tf", tmp_path / "terraform" / "variables.tf")
    shutil.copy(ROOT / NAMES, tmp_path / NAMES)
    shutil.copytree(warm_deps_cache, tmp_path / "build" / package.DEPS_CACHE)
    return copy


def build(out, lambdas):
    return package.build(out, COMMIT, lambdas_dir=lambdas)


def declare(lambdas, *keys):
    """Declare more app functions in the copy's terraform/names/main.tf, as the README says."""
    names = lambdas.parent / NAMES
    text = names.read_text(encoding="utf-8")
    listed = ", ".join(f'"{key}"' for key in ("app", *keys))
    assert 'app_function_keys = ["app"]' in text
    names.write_text(text.replace('app_function_keys = ["app"]', f"app_function_keys = [{listed}]"))


def add_function(lambdas, key, checks=b'{"checks": []}'):
    (lambdas / key).mkdir()
    (lambdas / key / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    (lambdas / key / "smoke_checks.json").write_bytes(checks)


def test_a_declared_second_function_is_packaged_like_the_app(tmp_path, lambdas):
    declare(lambdas, "worker")
    add_function(lambdas, "worker")
    manifest = build(tmp_path, lambdas)
    assert manifest["app_functions"] == ["app", "worker"]
    names = zipfile.ZipFile(tmp_path / "worker.zip").namelist()
    assert names == ["handler.py", "smoke_checks.json"]  # its own folder only, no shared/
    assert manifest["artifacts"]["worker"]["handler"] == "handler.handler"


def test_an_undeclared_folder_is_refused_naming_the_fix(tmp_path, lambdas):
    add_function(lambdas, "worker")
    with pytest.raises(package.PackagingError) as err:
        build(tmp_path, lambdas)
    assert str(err.value) == (
        "lambdas/worker/ is not a declared function: add 'worker' to app_function_keys in "
        "terraform/names/main.tf (README: Adding a function), or remove the directory"
    )
    assert not (tmp_path / "manifest.json").exists()


def test_a_declared_function_without_its_folder_is_refused(tmp_path, lambdas):
    declare(lambdas, "worker")
    with pytest.raises(package.PackagingError, match=r"declares app function 'worker' but "):
        build(tmp_path, lambdas)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("deploy",), "not a usable key"),  # a pipeline function's name
        (("Worker",), "not a usable key"),
        (("worker", "worker"), "not a usable key"),
    ],
)
def test_unusable_keys_are_refused(tmp_path, lambdas, keys, message):
    declare(lambdas, *keys)
    with pytest.raises(package.PackagingError, match=message):
        build(tmp_path, lambdas)


def test_the_primary_function_stays_first(tmp_path, lambdas):
    names = lambdas.parent / NAMES
    text = names.read_text(encoding="utf-8")
    names.write_text(
        text.replace('app_function_keys = ["app"]', 'app_function_keys = ["worker", "app"]')
    )
    add_function(lambdas, "worker")
    with pytest.raises(package.PackagingError, match='must start with "app"'):
        build(tmp_path, lambdas)


def test_builds_are_byte_identical_and_ignore_caches(tmp_path, lambdas):
    first = build(tmp_path / "one", lambdas)
    # Caches, test dirs, dotfiles and new mtimes must not change the output.
    (lambdas / "deploy" / "__pycache__").mkdir()
    (lambdas / "deploy" / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"junk")
    (lambdas / "shared" / "stale.pyc").write_bytes(b"junk")
    (lambdas / "app" / "tests").mkdir()
    (lambdas / "app" / "tests" / "test_x.py").write_text("x = 1\n")
    (lambdas / "app" / ".DS_Store").write_bytes(b"junk")
    for path in lambdas.rglob("*.py"):
        path.touch()
    second = build(tmp_path / "two", lambdas)
    assert first["artifacts"] == second["artifacts"]
    for name in first["artifacts"]:
        assert (tmp_path / "one" / f"{name}.zip").read_bytes() == (
            tmp_path / "two" / f"{name}.zip"
        ).read_bytes()


def test_source_change_changes_the_zip(tmp_path, lambdas):
    first = build(tmp_path / "one", lambdas)
    with (lambdas / "app" / "handler.py").open("a") as handle:
        handle.write("\n# change\n")
    second = build(tmp_path / "two", lambdas)
    assert first["artifacts"]["app"]["sha256"] != second["artifacts"]["app"]["sha256"]
    assert first["artifacts"]["deploy"] == second["artifacts"]["deploy"]


def test_manifest_describes_every_zip(tmp_path, lambdas):
    manifest = build(tmp_path, lambdas)
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["commit"] == COMMIT
    expected = sorted(p.name for p in lambdas.iterdir() if p.is_dir() and p.name != "shared")
    assert sorted(manifest["artifacts"]) == expected
    for name, entry in manifest["artifacts"].items():
        data = (tmp_path / entry["file"]).read_bytes()
        assert entry == {
            "file": f"{name}.zip",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "handler": "handler.handler",
        }
        assert len(data) <= 64 * 1024, f"{name}.zip is {len(data)} bytes"


def test_zip_entries_are_normalised(tmp_path, lambdas):
    (lambdas / "deploy" / "__pycache__").mkdir()
    (lambdas / "deploy" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    manifest = build(tmp_path, lambdas)
    for entry in manifest["artifacts"].values():
        with zipfile.ZipFile(tmp_path / entry["file"]) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
            for info in archive.infolist():
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                assert info.external_attr >> 16 == 0o100644
                assert info.compress_type == zipfile.ZIP_DEFLATED


def test_pipeline_zips_carry_shared_and_app_does_not(tmp_path, lambdas):
    manifest = build(tmp_path, lambdas)
    for name, entry in manifest["artifacts"].items():
        names = zipfile.ZipFile(tmp_path / entry["file"]).namelist()
        assert "handler.py" in names
        assert ("shared/log.py" in names) == (name != "app")


@pytest.mark.parametrize(
    "name", ["validate_artifact", "deploy", "deployment_status", "smoke_tests", "rollback"]
)
def test_pipeline_zip_imports_on_its_own(tmp_path, lambdas, name):
    build(tmp_path / "build", lambdas)
    target = tmp_path / "unzipped"
    zipfile.ZipFile(tmp_path / "build" / f"{name}.zip").extractall(target)
    proc = subprocess.run(
        [sys.executable, "-E", "-s", "-c", "import handler; assert callable(handler.handler)"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_missing_handler_is_an_error(tmp_path, lambdas):
    (lambdas / "rollback" / "handler.py").unlink()
    with pytest.raises(package.PackagingError, match=r"lambdas/rollback/handler.py is missing"):
        build(tmp_path, lambdas)


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("app/environ", "/proc/self/environ"),  # the packaging process's environment
        ("shared/secrets", "/etc"),  # a directory
        ("deploy/config.py", "../app/handler.py"),  # even inside the tree
    ],
)
def test_symlinks_are_refused_not_followed(tmp_path, lambdas, link, target):
    (lambdas / link).symlink_to(target)
    with pytest.raises(package.PackagingError, match=rf"{link} is a symbolic link") as err:
        build(tmp_path / "out", lambdas)
    assert "regular files only" in str(err.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_symlinked_lambda_directory_is_refused(tmp_path, lambdas):
    declare(lambdas, "extra")
    (lambdas / "extra").symlink_to(tmp_path)
    with pytest.raises(package.PackagingError, match=r"extra is a symbolic link"):
        build(tmp_path / "out", lambdas)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    package.atomic_write(tmp_path / "x.zip", b"one")
    package.atomic_write(tmp_path / "x.zip", b"two")
    assert [p.name for p in tmp_path.iterdir()] == ["x.zip"]
    assert (tmp_path / "x.zip").read_bytes() == b"two"


def test_commit_outside_git_is_a_clear_error(tmp_path):
    with pytest.raises(package.PackagingError, match="pass --commit SHA"):
        package.git_commit(cwd=tmp_path)


def test_commit_from_git(tmp_path):
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    sha = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert package.git_commit(cwd=tmp_path) == sha


@pytest.mark.parametrize("bad", ["abc123", "F" * 40, "g" * 40, ""])
def test_commit_must_be_full_sha(bad):
    with pytest.raises(package.PackagingError, match="40-character"):
        package.resolve_commit(bad)


def test_cli_build(tmp_path, capsys):
    assert package.main(["--out", str(tmp_path), "--commit", COMMIT]) == 0
    assert (tmp_path / "manifest.json").exists()
    assert "app.zip" in capsys.readouterr().out


def test_cli_reports_bad_commit(tmp_path, capsys):
    assert package.main(["build", "--out", str(tmp_path), "--commit", "nope"]) == 1
    assert "package.py: error: commit 'nope'" in capsys.readouterr().err


def test_built_at_honours_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert package.built_at() == "1970-01-01T00:00:00Z"


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    return s3


def read_source_zip(s3):
    data = s3.get_object(Bucket="artifacts", Key="pipeline/source.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["execution-input.json"]
        return json.loads(archive.read("execution-input.json"))


def test_upload_writes_release_and_trigger(bucket, tmp_path, capsys):
    assert (
        package.main(
            [
                "upload",
                "--bucket",
                "artifacts",
                "--commit",
                COMMIT,
                "--out",
                str(tmp_path),
                "--poll-interval",
                "1",
                "--max-polls",
                "5",
            ]
        )
        == 0
    )
    app = bucket.get_object(Bucket="artifacts", Key=f"releases/{COMMIT}/app.zip")
    data = app["Body"].read()
    assert data == (tmp_path / "app.zip").read_bytes()
    assert app["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest(), "commit": COMMIT}
    manifest = json.loads(
        bucket.get_object(Bucket="artifacts", Key=f"releases/{COMMIT}/manifest.json")["Body"].read()
    )
    assert manifest["artifacts"]["app"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert read_source_zip(bucket) == {
        "contract": SCHEMA_VERSION,
        "commit_sha": COMMIT,
        "artifact_bucket": "artifacts",
        "artifact_key": f"releases/{COMMIT}/app.zip",
        "manifest_key": f"releases/{COMMIT}/manifest.json",
        "poll_interval_seconds": 1,
        "max_polls": 5,
    }
    assert (
        json.loads(capsys.readouterr().out)["objects"][f"releases/{COMMIT}/app.zip"] == "uploaded"
    )


def test_upload_is_idempotent(bucket, tmp_path):
    package.upload("artifacts", COMMIT, tmp_path, poll_interval=15, max_polls=80, s3=bucket)
    again = package.upload("artifacts", COMMIT, tmp_path, poll_interval=15, max_polls=80, s3=bucket)
    assert again["objects"][f"releases/{COMMIT}/app.zip"] == "unchanged"
    # The trigger is always rewritten: running upload again is how a release is retried.
    assert again["objects"]["pipeline/source.zip"] == "uploaded"


def test_upload_refuses_to_replace_different_release(bucket, tmp_path):
    bucket.put_object(
        Bucket="artifacts",
        Key=f"releases/{COMMIT}/app.zip",
        Body=b"other",
        Metadata={"sha256": "0" * 64},
    )
    with pytest.raises(package.PackagingError, match="immutable"):
        package.upload("artifacts", COMMIT, tmp_path, poll_interval=15, max_polls=80, s3=bucket)
    # Nothing was triggered for the refused release.
    with pytest.raises(bucket.exceptions.NoSuchKey):
        bucket.get_object(Bucket="artifacts", Key="pipeline/source.zip")
    forced = package.upload(
        "artifacts", COMMIT, tmp_path, poll_interval=15, max_polls=80, s3=bucket, force=True
    )
    assert forced["objects"][f"releases/{COMMIT}/app.zip"] == "uploaded"


def test_upload_requires_bucket(capsys):
    with pytest.raises(SystemExit):
        package.main(["upload", "--commit", COMMIT])
    assert "--bucket" in capsys.readouterr().err


def test_build_without_a_commit_records_a_working_tree_id(tmp_path, lambdas):
    first = package.build(tmp_path / "one", None, lambdas_dir=lambdas)
    again = package.build(tmp_path / "two", None, lambdas_dir=lambdas)
    with (lambdas / "app" / "handler.py").open("a") as handle:
        handle.write("\n# change\n")
    changed = package.build(tmp_path / "three", None, lambdas_dir=lambdas)

    assert len(first["commit"]) == 40
    assert int(first["commit"], 16) >= 0
    assert first["commit"] == again["commit"]
    assert changed["commit"] != first["commit"]


def test_build_in_a_repository_without_commits_still_packages(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(
        ROOT / "lambdas", project / "lambdas", ignore=shutil.ignore_patterns("__pycache__")
    )
    (project / "terraform" / "names").mkdir(parents=True)
    shutil.copy(ROOT / "terraform" / "variables.tf", project / "terraform" / "variables.tf")
    shutil.copy(ROOT / NAMES, project / NAMES)
    (project / "state_machine.asl.json").write_text("{}", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)

    result = subprocess.run(
        [sys.executable, "-m", "release_tooling", "package", "--out", "build"],
        cwd=project,
        env={**os.environ, project_paths.ROOT_ENV: str(project)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "working-tree id" in result.stderr
    manifest = json.loads((project / "build" / "manifest.json").read_text())
    assert len(manifest["commit"]) == 40


def test_upload_puts_every_app_function_zip_before_the_trigger(bucket, tmp_path, lambdas):
    declare(lambdas, "worker")
    add_function(lambdas, "worker")
    manifest = build(tmp_path, lambdas)
    order = []
    real_put = bucket.put_object

    def put_object(**kwargs):
        order.append(kwargs["Key"])
        return real_put(**kwargs)

    bucket.put_object = put_object
    result = package.upload(
        "artifacts", COMMIT, tmp_path, poll_interval=1, max_polls=1, s3=bucket, manifest=manifest
    )
    prefix = f"releases/{COMMIT}"
    assert order == [f"{prefix}/app.zip", f"{prefix}/worker.zip", f"{prefix}/manifest.json"] + [
        "pipeline/source.zip"
    ]
    worker = bucket.get_object(Bucket="artifacts", Key=f"{prefix}/worker.zip")["Body"].read()
    assert worker == (tmp_path / "worker.zip").read_bytes()
    assert result["objects"][f"{prefix}/worker.zip"] == "uploaded"
    # The execution input is unchanged: validate_artifact finds worker.zip next to the manifest.
    assert read_source_zip(bucket)["artifact_key"] == f"{prefix}/app.zip"


def test_a_tree_without_the_names_module_has_the_one_app_function(tmp_path, lambdas):
    (lambdas.parent / NAMES).unlink()  # a bare lambdas/ tree, not a service repository
    assert build(tmp_path / "one", lambdas)["app_functions"] == ["app"]
    shutil.rmtree(lambdas / "app")
    with pytest.raises(package.PackagingError, match="app is missing"):
        build(tmp_path / "two", lambdas)
