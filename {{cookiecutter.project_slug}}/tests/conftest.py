"""Shared fixtures: import paths, fake AWS credentials, and per-Lambda module loading.

Every Lambda's module is called ``handler``; ``load_lambda("deploy")`` imports
lambdas/deploy/handler.py under the unique name ``lambda_deploy_handler`` so they never collide
in sys.modules.
"""

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))


@pytest.fixture(autouse=True)
def aws_env(fake_aws_credentials) -> None:
    """Fake credentials for every test (release-tooling's fixture), so none reaches real AWS."""


@pytest.fixture
def load_lambda() -> Iterator[Callable[[str], ModuleType]]:
    """Import lambdas/<name>/handler.py as module ``lambda_<name>_handler``."""
    import shared.clients

    loaded: list[str] = []

    def load(name: str) -> ModuleType:
        module_name = f"lambda_{name}_handler"
        path = LAMBDAS / name / "handler.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        loaded.append(module_name)
        return module

    shared.clients.reset()
    yield load
    shared.clients.reset()
    for module_name in loaded:
        sys.modules.pop(module_name, None)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-memory AWS for the duration of one test."""
    import shared.clients
    from moto import mock_aws

    shared.clients.reset()
    with mock_aws():
        yield
    shared.clients.reset()


class FakeContext:
    aws_request_id = "test-request-id"
    function_name = "test-function"
    function_version = "$LATEST"


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()
