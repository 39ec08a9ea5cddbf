"""lambdas/<name>/requirements.txt: installed into that Lambda's zip for Lambda's platform,
byte-identical for identical inputs, cached, with one-line errors for what cannot be packaged."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from release_tooling import package
from release_tooling import project as project_paths

ROOT = project_paths.ROOT
COMMIT = "e" * 40
PIN = "fastjsonschema==2.22.3"
PIN_HASH = "sha256:f670b443830b75aca3f00b75949efa20f4b2a80302ec7a21505c28dd54cffd43"


def make_project(tmp_path: Path, requirements: str | None, runtime: str = "python3.12") -> Path:
    """lambdas/app (with requirements.txt unless None) and lambdas/deploy, and the variables.tf
    that names the runtime. Returns the lambdas directory."""
    lambdas = tmp_path / "lambdas"
    for name in ("app", "deploy"):
        (lambdas / name).mkdir(parents=True)
        (lambdas / name / "handler.py").write_text(f"def handler(e, c):\n    return {name!r}\n")
    (lambdas / "shared").mkdir()
    (lambdas / "shared" / "__init__.py").write_text("")
    if requirements is not None:
        (lambdas / "app" / "requirements.txt").write_text(requirements)
    (tmp_path / "terraform" / "names").mkdir(parents=True)
    # The declaration packaging checks the folders against (terraform/names/main.tf).
    (tmp_path / "terraform" / "names" / "main.tf").write_text(
        'locals {\n  pipeline_function_keys = ["deploy"]\n  app_function_keys = ["app"]\n}\n'
    )
    (tmp_path / "terraform" / "variables.tf").write_text(
        'variable "region" {\n  default = "us-east-1"\n}\n\n'
        'variable "python_runtime" {\n  type        = string\n'
        f'  default     = "{runtime}"\n\n  validation {{\n    condition = true\n  }}\n}}\n'
    )
    return lambdas


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


@pytest.fixture
def count_pip(monkeypatch):
    calls: list[str] = []
    real = package._pip_install

    def counting(requirements, python_version, target):
        calls.append(python_version)
        return real(requirements, python_version, target)

    monkeypatch.setattr(package, "_pip_install", counting)
    return calls


def test_requirements_are_installed_into_that_zip_only(tmp_path, count_pip):
    lambdas = make_project(tmp_path, f"{PIN}\n")
    manifest = package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    app = names(tmp_path / "out" / "app.zip")
    assert "handler.py" in app and "requirements.txt" in app
    assert "fastjsonschema/__init__.py" in app
    assert "fastjsonschema-2.22.3.dist-info/METADATA" in app
    # Per-installation files and bytecode stay out; the wheel's own files (licence...) stay in.
    assert not [n for n in app if n.rsplit("/", 1)[-1] in package.INSTALL_NOISE]
    assert not [n for n in app if "__pycache__" in n or n.endswith(".pyc") or n.startswith("bin/")]
    assert names(tmp_path / "out" / "deploy.zip") == ["handler.py", "shared/__init__.py"]
    assert manifest["artifacts"]["app"]["size"] > 10_000
    assert count_pip == ["3.12"]
    with zipfile.ZipFile(tmp_path / "out" / "app.zip") as archive:
        assert archive.namelist() == sorted(archive.namelist())
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644


def test_two_fresh_installs_give_byte_identical_zips(tmp_path):
    one = make_project(tmp_path / "one", f"{PIN} \\\n    --hash={PIN_HASH}\n")
    two = make_project(tmp_path / "two", f"{PIN} \\\n    --hash={PIN_HASH}\n")
    first = package.build(tmp_path / "one" / "out", COMMIT, lambdas_dir=one)
    second = package.build(tmp_path / "two" / "out", COMMIT, lambdas_dir=two)
    # Two separate caches: two pip runs, at different paths and times.
    assert len(list((tmp_path / "one" / "build" / package.DEPS_CACHE).iterdir())) == 1
    assert first["artifacts"] == second["artifacts"]
    assert (tmp_path / "one" / "out" / "app.zip").read_bytes() == (
        tmp_path / "two" / "out" / "app.zip"
    ).read_bytes()


def test_an_unchanged_requirements_file_costs_no_pip_run(tmp_path, count_pip):
    lambdas = make_project(tmp_path, f"{PIN}\n")
    first = package.build(tmp_path / "a", COMMIT, lambdas_dir=lambdas)
    again = package.build(tmp_path / "b", COMMIT, lambdas_dir=lambdas)
    assert count_pip == ["3.12"]
    assert first["artifacts"] == again["artifacts"]
    # Another runtime, or any change of the file, is another cache entry.
    package.build(tmp_path / "c", COMMIT, lambdas_dir=lambdas, python_runtime="python3.13")
    (lambdas / "app" / "requirements.txt").write_text(f"# validation\n{PIN}\n")
    changed = package.build(tmp_path / "d", COMMIT, lambdas_dir=lambdas)
    assert count_pip == ["3.12", "3.13", "3.12"]
    assert len(list((tmp_path / "build" / package.DEPS_CACHE).iterdir())) == 3
    assert changed["artifacts"]["app"]["sha256"] != first["artifacts"]["app"]["sha256"]


def test_the_runtime_comes_from_terraform_variables(tmp_path, count_pip):
    lambdas = make_project(tmp_path, f"{PIN}\n", runtime="python3.13")
    assert package.project_python_runtime(tmp_path) == "python3.13"
    package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert count_pip == ["3.13"]


def test_the_template_names_its_runtime(tmp_path):
    assert package.project_python_runtime(ROOT) in ("python3.12", "python3.13")


def test_a_missing_runtime_is_a_clear_error(tmp_path):
    lambdas = make_project(tmp_path, f"{PIN}\n")
    (tmp_path / "terraform" / "variables.tf").write_text('variable "region" {}\n')
    with pytest.raises(package.PackagingError, match=r'no variable "python_runtime"'):
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    (tmp_path / "terraform" / "variables.tf").unlink()
    with pytest.raises(package.PackagingError, match=r"pass --python-runtime"):
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    with pytest.raises(package.PackagingError, match=r"'nodejs20.x' is not a Lambda Python"):
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas, python_runtime="nodejs20.x")


def test_without_requirements_a_lambda_packages_as_before(tmp_path, count_pip):
    lambdas = make_project(tmp_path, None)
    (tmp_path / "terraform" / "variables.tf").unlink()  # not read when nothing needs it
    package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert names(tmp_path / "out" / "app.zip") == ["handler.py"]
    assert count_pip == []
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        ("fastjsonschema\n", r"'fastjsonschema' is not pinned exactly; write NAME==VERSION"),
        ("fastjsonschema>=2.20\n", r"'fastjsonschema>=2.20' is not pinned exactly"),
        ("fastjsonschema==2.*\n", r"'fastjsonschema==2.\*' is not pinned exactly"),
        ("-r other.txt\n", r"-r is not supported; list every requirement in this one file"),
        ("-e ./lib\n", r"-e is not supported"),
    ],
)
def test_requirements_must_be_exact_pins(tmp_path, count_pip, requirements, message):
    lambdas = make_project(tmp_path, requirements)
    with pytest.raises(package.PackagingError, match=r"^lambdas/app/requirements.txt: " + message):
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert count_pip == []


def test_pins_accept_extras_markers_hashes_and_comments(tmp_path):
    path = tmp_path / "lambdas" / "app" / "requirements.txt"
    path.parent.mkdir(parents=True)
    path.write_text(
        "# comment\n--index-url https://pypi.org/simple\n"
        f"Fast_JSONSchema[extra]==2.22.3 ; python_version >= '3.12' \\\n    --hash={PIN_HASH}\n"
        "six==1.17.0  # inline\n"
    )
    assert package.pinned_requirements(path) == {"fast-jsonschema": "2.22.3", "six": "1.17.0"}


def test_a_package_without_a_wheel_for_lambda_is_one_line_naming_it(tmp_path):
    # PyYAML 5.3 (2020) published wheels for Windows only: none for manylinux / CPython 3.12.
    lambdas = make_project(tmp_path, "PyYAML==5.3\n")
    with pytest.raises(package.PackagingError) as caught:
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "lambdas/app/requirements.txt: no wheel of PyYAML==5.3 for Lambda's platform "
        "(manylinux2014_x86_64, CPython 3.12); versions with a usable wheel: "
    )
    assert "6.0.3" in message and "Pin one of those" in message
    assert not (tmp_path / "build" / package.DEPS_CACHE).exists() or not list(
        (tmp_path / "build" / package.DEPS_CACHE).iterdir()
    )


def test_a_wrong_hash_is_one_line(tmp_path):
    lambdas = make_project(tmp_path, f"{PIN} --hash=sha256:{'0' * 64}\n")
    with pytest.raises(package.PackagingError) as caught:
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert str(caught.value) == (
        "lambdas/app/requirements.txt: the download of fastjsonschema==2.22.3 does not match "
        "its --hash; fix the hash (take it from PyPI) or the pinned version"
    )


def test_an_unpinned_dependency_of_a_dependency_is_refused(tmp_path):
    # python-dateutil depends on six: left to the resolver, six could change between builds.
    lambdas = make_project(tmp_path, "python-dateutil==2.9.0.post0\n")
    with pytest.raises(package.PackagingError) as caught:
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert str(caught.value).startswith(
        "lambdas/app/requirements.txt: six==1.17.0 is installed as a dependency of another "
        "requirement but is not pinned; add the line six==1.17.0"
    )
    (lambdas / "app" / "requirements.txt").write_text("python-dateutil==2.9.0.post0\nsix==1.17.0\n")
    package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert "six.py" in names(tmp_path / "out" / "app.zip")


def test_a_source_file_shadowed_by_a_dependency_is_refused(tmp_path):
    lambdas = make_project(tmp_path, f"{PIN}\n")
    (lambdas / "app" / "fastjsonschema").mkdir()
    (lambdas / "app" / "fastjsonschema" / "__init__.py").write_text("# mine\n")
    with pytest.raises(package.PackagingError, match=r"lambdas/app/fastjsonschema/__init__.py is"):
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)


def test_sizes_over_lambdas_quotas_are_refused(tmp_path, monkeypatch):
    # What Lambda's errors say: "Unzipped size must be smaller than 262144000 bytes".
    assert (package.MAX_ZIPPED_BYTES, package.MAX_UNZIPPED_BYTES) == (52_428_800, 262_144_000)
    lambdas = make_project(tmp_path, f"{PIN}\n")
    built = package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    zipped = built["artifacts"]["app"]["size"]
    monkeypatch.setattr(package, "MAX_ZIPPED_BYTES", zipped - 1)
    with pytest.raises(package.PackagingError) as caught:
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    assert str(caught.value).startswith(f"lambdas/app zips to 0.0 MiB ({zipped} bytes), over ")
    assert "limit for a .zip package uploaded directly" in str(caught.value)
    monkeypatch.setattr(package, "MAX_ZIPPED_BYTES", 50 * 1024 * 1024)
    with zipfile.ZipFile(tmp_path / "out" / "app.zip") as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    monkeypatch.setattr(package, "MAX_UNZIPPED_BYTES", unzipped - 1)
    with pytest.raises(package.PackagingError, match=rf"lambdas/app holds .* \({unzipped} bytes\)"):
        package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)


def test_the_packaged_dependency_imports_on_the_lambda_python(tmp_path):
    """The app zip alone (no virtualenv) imports its dependency and validates with it."""
    lambdas = make_project(tmp_path, f"{PIN}\n")
    (lambdas / "app" / "handler.py").write_text(
        "import fastjsonschema\ncheck = fastjsonschema.compile({'type': 'integer'})\n"
    )
    package.build(tmp_path / "out", COMMIT, lambdas_dir=lambdas)
    target = tmp_path / "unzipped"
    zipfile.ZipFile(tmp_path / "out" / "app.zip").extractall(target)
    code = "import handler; handler.check(1); print(handler.fastjsonschema.__file__)"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, '.'); {code}"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == target / "fastjsonschema" / "__init__.py"


def test_the_cli_takes_the_runtime(tmp_path, capsys):
    out = tmp_path / "out"
    assert package.main(["--out", str(out), "--commit", COMMIT, "--python-runtime", "py3"]) == 1
    assert "'py3' is not a Lambda Python runtime name" in capsys.readouterr().err
    assert package.main(["--out", str(out), "--commit", COMMIT]) == 0
    digest = hashlib.sha256((out / "app.zip").read_bytes()).hexdigest()
    assert f"sha256 {digest}  (app)" in capsys.readouterr().out
    assert "fastjsonschema/__init__.py" in names(out / "app.zip")


def test_the_cache_is_git_ignored_in_the_generated_repository():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "build/.deps-cache/x/fastjsonschema/__init__.py"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0
