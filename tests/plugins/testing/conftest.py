"""Inner pytest sessions (pytester) go without plugins they do not need: pytester restores
``sys.modules`` after each session, so hypothesis would be imported afresh every time."""

import pytest


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:cacheprovider")
    return pytester
