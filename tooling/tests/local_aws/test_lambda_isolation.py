"""A local invocation imports what the function's zip holds, the runtime's boto3 and the standard
library, never the development virtualenv: an undeclared import fails as it does on AWS."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from pathlib import Path

import pytest
from _helpers import payload

from release_tooling import package
from release_tooling.local_aws import lambda_runtime
from release_tooling.local_aws.lambda_runtime import FunctionSpec, LambdaRuntime

# Lambda developer guide, "Defined runtime environment variables": what every function sees.
RESERVED = {
    "_HANDLER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
    "LANG",
    "PATH",
    "LD_LIBRARY_PATH",
}
# What the local endpoint adds: where AWS is, empty shared config files, the invocation's own
# data for _bootstrap.py, and a private temporary directory.
LOCAL = {
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "LOCAL_AWS_REQUEST_ID",
    "LOCAL_AWS_DEADLINE_MS",
    "LOCAL_AWS_INVOKED_FUNCTION_ARN",
    "TMPDIR",
}


def invoke(aws, name: str) -> tuple[dict, object]:
    response = aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    return response, payload(response)


@pytest.mark.parametrize("module", ["yaml", "moto", "pytest"])
def test_a_module_only_the_dev_virtualenv_has_fails_to_import_as_on_aws(aws, make_function, module):
    __import__(module)  # the test process (the development virtualenv) has it
    name = make_function(f"import {module}\ndef handler(event, context):\n    return 'imported'\n")
    response, body = invoke(aws, name)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == (
        f"Unable to import module 'handler': No module named '{module}'"
    )


def test_boto3_comes_from_the_runtime_dir_at_the_tooling_pin(aws, make_function):
    name = make_function(
        """
        import os, sys
        import boto3, botocore
        def handler(event, context):
            return {
                "boto3": boto3.__version__,
                "boto3_file": boto3.__file__,
                "botocore": botocore.__version__,
                "runtime_dir": os.environ["LAMBDA_RUNTIME_DIR"],
                "task_root": os.environ["LAMBDA_TASK_ROOT"],
                "path": sys.path,
                "isolated": sys.flags.isolated,
                "no_site": sys.flags.no_site,
                "site_loaded": "site" in sys.modules,
            }
        """
    )
    response, body = invoke(aws, name)
    assert "FunctionError" not in response, body
    assert body["boto3"] == lambda_runtime.boto3_pin()
    assert body["boto3_file"].startswith(body["runtime_dir"] + os.sep)
    assert ".venv" not in body["boto3_file"] and "site-packages" not in body["boto3_file"]
    assert Path(body["runtime_dir"]).name.startswith(f"runtime-boto3-{body['boto3']}-py")
    # The function's code first, the runtime's libraries next, then only the standard library.
    assert body["path"][:2] == [body["task_root"], body["runtime_dir"]]
    assert not [p for p in body["path"] if "site-packages" in p or ".venv" in p]
    assert (body["isolated"], body["no_site"], body["site_loaded"]) == (1, 1, False)


def test_the_reserved_variables_are_set_and_nothing_else_of_the_host(aws, make_function):
    name = make_function(
        "import os\ndef handler(event, context):\n    return dict(os.environ)\n",
        env={"GREETING": "hello"},
    )
    response, env = invoke(aws, name)
    assert "FunctionError" not in response, env
    assert set(env) >= RESERVED
    # LC_CTYPE: the interpreter's own locale coercion (PEP 538) when the host lacks en_US.UTF-8.
    assert set(env) - RESERVED - LOCAL - {"SYSTEMROOT", "LC_CTYPE"} == {"GREETING"}
    assert env["_HANDLER"] == "handler.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-2"
    assert (env["TZ"], env["LANG"]) == (":UTC", "en_US.UTF-8")
    assert env["LD_LIBRARY_PATH"].split(os.pathsep)[-2:] == [
        env["LAMBDA_TASK_ROOT"],
        str(Path(env["LAMBDA_TASK_ROOT"]) / "lib"),
    ]
    assert ".venv" not in env["PATH"]


def test_a_dependency_declared_in_requirements_txt_imports_from_the_zip(aws, lambda_role, tmp_path):
    """The packaged path end to end: requirements.txt -> build -> zip -> local Lambda."""
    lambdas = tmp_path / "lambdas"
    (lambdas / "fn").mkdir(parents=True)
    (lambdas / "app").mkdir()
    (lambdas / "app" / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    (lambdas / "fn" / "requirements.txt").write_text("fastjsonschema==2.22.3\n")
    (lambdas / "fn" / "handler.py").write_text(
        "import fastjsonschema\n"
        "check = fastjsonschema.compile({'type': 'object', 'required': ['n']})\n"
        "def handler(event, context):\n"
        "    check(event)\n"
        "    return fastjsonschema.__file__\n"
    )
    package.build(tmp_path / "build", "0" * 40, lambdas_dir=lambdas, python_runtime="python3.12")
    name = f"fn-{uuid.uuid4().hex[:10]}"
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=lambda_role,
        Handler="handler.handler",
        Code={"ZipFile": (tmp_path / "build" / "fn.zip").read_bytes()},
    )
    lam = aws("lambda")
    ok = lam.invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    source = json.loads(ok["Payload"].read())
    assert "FunctionError" not in ok, source
    task_root = Path(source).parent.parent
    assert source == str(task_root / "fastjsonschema" / "__init__.py")
    bad = lam.invoke(FunctionName=name, Payload=b"{}")
    assert bad["FunctionError"] == "Unhandled"
    assert payload(bad)["errorType"] == "JsonSchemaValueException"


# The interpreter choice, without an endpoint.


def _runtime(tmp_path, **kwargs) -> LambdaRuntime:
    return LambdaRuntime(
        tmp_path / "code",
        endpoint_url="http://127.0.0.1:1",
        credentials=lambda *a: {},
        config_dir=tmp_path / "config",
        **kwargs,
    )


CURRENT = f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_the_runtimes_python_is_used_when_it_is_on_path(tmp_path, monkeypatch, caplog):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / f"python{CURRENT}").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))
    runtime = _runtime(tmp_path)
    with caplog.at_level(logging.INFO, logger="local_aws.lambda"):
        python, version = runtime.interpreter(f"python{CURRENT}")
        assert runtime.interpreter(f"python{CURRENT}") == (python, version)
    assert version == CURRENT
    assert Path(python).resolve() == Path(sys.executable).resolve()
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"local Lambda runtime: python{CURRENT} functions run on {python}"]


def test_a_missing_or_broken_runtime_python_falls_back_and_says_so_once(
    tmp_path, monkeypatch, caplog
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python3.99"  # as a pyenv shim for a version not selected: it fails
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.99: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    runtime = _runtime(tmp_path)
    with caplog.at_level(logging.INFO, logger="local_aws.lambda"):
        assert runtime.interpreter("python3.99") == (sys.executable, CURRENT)
        assert runtime.interpreter("python3.99") == (sys.executable, CURRENT)
        assert runtime.interpreter("python3.98") == (sys.executable, CURRENT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        f"local Lambda runtime: python3.99 is not installed (or does not run), so python3.99 "
        f"functions run on this Python {CURRENT} ({sys.executable})"
    )


def test_the_runtime_boto3_is_installed_once_and_reused(tmp_path, caplog):
    cache = Path(lambda_runtime.default_cache_root())
    runtime = _runtime(tmp_path, python=sys.executable, runtime_cache=cache)
    first = runtime.runtime_dir(sys.executable, CURRENT)  # installed by the endpoint's tests
    again = _runtime(tmp_path, python=sys.executable, runtime_cache=cache)
    with caplog.at_level(logging.INFO, logger="local_aws.lambda"):
        assert again.runtime_dir(sys.executable, CURRENT) == first
    assert [r.getMessage() for r in caplog.records] == [
        f"local Lambda runtime: boto3 {lambda_runtime.boto3_pin()} from {first}"
    ]
    assert (first / "boto3" / "__init__.py").is_file()
    assert list(first.glob("botocore/__pycache__/*.pyc"))  # compiled once, not per invocation


def test_spec_runtime_reaches_the_execution_env(tmp_path):
    spec = FunctionSpec(
        function_name="f",
        function_arn="arn:aws:lambda:us-east-2:123456789012:function:f",
        version="$LATEST",
        handler="handler.handler",
        runtime="python3.13",
        timeout=3,
        memory_size=256,
        region="us-east-2",
        code_sha256="",
        environment={"AWS_REGION": "eu-west-1", "OWN": "1"},
        role_arn="arn:aws:iam::123456789012:role/r",
    )
    env = _runtime(tmp_path).sandbox_env(spec, "req", 0, "stream")
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["AWS_REGION"] == "us-east-2"  # reserved names win over the function's own
    assert env["OWN"] == "1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
