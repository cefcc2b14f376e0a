"""Suite-wide: every async test runs on asyncio and on trio, and no test writes to the
user's own run store: runs are recorded (the store is on, as it is by default) in a file
of this session's temporary directory."""

import os
import tempfile

import pytest

_STORE_DIR = tempfile.TemporaryDirectory(prefix="plait-test-store-")
os.environ["PLAIT_STORE"] = os.path.join(_STORE_DIR.name, "runs.db")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
