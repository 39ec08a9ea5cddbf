"""pytest fixtures for a repository's rehearsal scenarios (installed as a pytest11 plugin).

`rehearsal` is the repository, copied to a scratch directory and brought up with
`release-tooling local up`, shared by the whole session. Tests that use it run last, and the
environment is started in the background as soon as collection ends, so a cold apply overlaps the
rest of the suite; an unchanged tree is restored from the snapshot the first cold apply saved
(release_tooling.local.snapshot), shared by every scratch copy of the repository, in seconds.
Nothing here is imported until a test asks for it.
"""

from __future__ import annotations

import shutil

import pytest

FAKE_REGION = "us-east-1"


@pytest.hookimpl(trylast=True)  # after conftest files have pointed the package at a repository
def pytest_configure(config):
    """Tests that run terraform use the provider source the runner picks (a mirror it finds, else
    the registry), so `make test` needs no TF_PROVIDER_MIRROR on machines that carry a mirror."""
    import os

    if os.environ.get("TF_PROVIDER_MIRROR"):
        return
    from .terraform import provider_source

    mirror, _ = provider_source(os.environ)
    if mirror:
        os.environ["TF_PROVIDER_MIRROR"] = mirror


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    """Fake credentials and region, so no test can ever reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", FAKE_REGION)
    monkeypatch.setenv("AWS_REGION", FAKE_REGION)


def _uses_rehearsal(item) -> bool:
    return "rehearsal" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: start nothing for deselected scenarios
def pytest_collection_modifyitems(config, items):
    scenarios = [item for item in items if _uses_rehearsal(item)]
    if not scenarios or config.option.collectonly or shutil.which("terraform") is None:
        return
    from .rehearsal import PIPELINE_ENVIRONMENT, PipelineEnvironment

    items[:] = [item for item in items if not _uses_rehearsal(item)] + scenarios
    config.stash[PIPELINE_ENVIRONMENT] = PipelineEnvironment().start()


def pytest_unconfigure(config):
    import sys

    rehearsal = sys.modules.get("release_tooling.rehearsal")  # imported only if one was started
    environment = config.stash.get(rehearsal.PIPELINE_ENVIRONMENT, None) if rehearsal else None
    if environment is not None:
        environment.close()


@pytest.fixture(scope="session")
def rehearsal(request):
    """The scratch copy of this repository, up on the embedded endpoint (IAM enforced)."""
    from .rehearsal import PIPELINE_ENVIRONMENT, PipelineEnvironment

    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed (needed by release-tooling local up)")
    environment = request.config.stash.get(PIPELINE_ENVIRONMENT, None)
    if environment is None:  # collection did not start it (collect-only, or terraform missing)
        environment = PipelineEnvironment().start()
        request.config.stash[PIPELINE_ENVIRONMENT] = environment
    return environment.ready()


@pytest.fixture(scope="session")
def rehearsal_environment(request, rehearsal):
    """The environment behind `rehearsal`: what `release` and `plan` said before `up`."""
    from .rehearsal import PIPELINE_ENVIRONMENT

    return request.config.stash[PIPELINE_ENVIRONMENT]
